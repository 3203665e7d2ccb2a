/* aws/errors.c -- the bodies of AWS's error shapes (see errors.h).
 *
 * Why: SQS, SNS and IAM write the same query-protocol error document, and
 * every JSON service the same {"__type","message"}; one writer each keeps
 * the escaping and the element order the same everywhere.
 *
 * Invariants:
 *   (1) Every text is escaped for its format (XML entities, JSON strings).
 *   (2) Element order is AWS's: clients that read errors with a streaming
 *       parser (older SDKs) find Code before Message.
 */
#include "aws/errors.h"

#include <jansson.h>
#include <stdlib.h>

const char *aws_error_fault(int status)
{
  return status >= 500 ? "Receiver" : "Sender";
}

void aws_error_query_xml(buf *b, const char *ns, int status, const char *code, const char *msg,
                         bool detail, const char *request_id)
{
  buf_printf(b, "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"%s\"><Error>", ns);
  buf_xml_elem(b, "Type", aws_error_fault(status));
  buf_xml_elem(b, "Code", code);
  buf_xml_elem(b, "Message", msg);
  if (detail)
    buf_puts(b, "<Detail/>");
  buf_puts(b, "</Error>");
  buf_xml_elem(b, "RequestId", request_id);
  buf_puts(b, "</ErrorResponse>");
}

void aws_error_json(buf *b, const char *type, const char *msg)
{
  json_t *j = json_pack("{s:s, s:s}", "__type", type, "message", msg);
  char *text = json_dumps(j, JSON_COMPACT);
  buf_puts(b, text);
  free(text);
  json_decref(j);
}

void aws_error_rest_xml(buf *b, const char *code, const char *msg, const str_pair *extra,
                        size_t nextra, const char *request_id)
{
  buf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
  buf_xml_elem(b, "Code", code);
  buf_xml_elem(b, "Message", msg);
  for (size_t i = 0; i < nextra; i++)
    buf_xml_elem(b, extra[i].name, extra[i].value);
  buf_xml_elem(b, "RequestId", request_id);
  buf_puts(b, "</Error>");
}
