/* fuzz_xml.c -- libFuzzer target for the XML request-body parser: any
 * input either parses into a tree or fails with ERR_MALFORMED_XML. */
#include "base/xml.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  arena *a = arena_new();
  xml_node *root = NULL;
  err e = {0};
  if (xml_parse((const char *)data, size, a, &root, &e) == 0) {
    for (xml_node *n = root->child; n != NULL; n = n->next)
      (void)xml_child_text(n, "ETag");
  }
  arena_free(a);
  return 0;
}
