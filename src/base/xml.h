/* base/xml.h -- a small DOM over expat for the XML request bodies of the
 * AWS APIs (CompleteMultipartUpload, DeleteObjects, Tagging, ...).
 *
 * The tree lives in the caller's arena. Namespaces are dropped from element
 * names (the `xmlns` of S3 bodies is optional), attributes are ignored, and
 * DTDs / entity declarations are refused (no entity expansion attacks).
 * Limits: document bytes are the caller's limit; depth <= 32, nodes <= 100,000.
 */
#ifndef TARN_BASE_XML_H
#define TARN_BASE_XML_H

#include "arena.h"
#include "err.h"

#include <stddef.h>

typedef struct xml_node {
  const char *name;          /* local name, without any namespace prefix */
  const char *text;          /* concatenated character data (never NULL) */
  size_t text_len;
  struct xml_node *parent;
  struct xml_node *child;    /* first child element */
  struct xml_node *next;     /* next sibling element */
} xml_node;

/* Parses a whole document; on error returns ERR_MALFORMED_XML with e set. */
int xml_parse(const char *doc, size_t len, arena *a, xml_node **root, err *e);

/* First child element called name, or NULL. */
xml_node *xml_child(const xml_node *n, const char *name);
/* Text of the first child called name, or NULL when there is none. */
const char *xml_child_text(const xml_node *n, const char *name);
/* Next sibling with the same name as n, or NULL (to loop over repeats). */
xml_node *xml_next_same(const xml_node *n);

#endif
