/* base/xml.c -- a small DOM over expat for AWS request bodies.
 *
 * Why: the XML bodies of the AWS APIs are small (CompleteMultipartUpload,
 * DeleteObjects, Tagging, ...) and are read by walking children by name, so
 * a tree in the request's arena is the simplest thing their handlers can use.
 *
 * Invariants:
 *   (1) A document type declaration or an entity declaration stops the parse:
 *       nothing is ever expanded beyond the five predefined entities and
 *       character references (no billion laughs, no external entities).
 *   (2) Depth <= XML_MAX_DEPTH and nodes <= XML_MAX_NODES; passing either
 *       stops the parse with ERR_MALFORMED_XML.
 *   (3) Element names keep only their local part (after the last ':');
 *       attributes, comments and processing instructions are dropped.
 *   (4) Every node's text is NUL-terminated and never NULL; text is the
 *       element's own character data, not its descendants'.
 *   (5) On error, *root is left NULL and the arena may hold a partial tree.
 *
 * Start reading at xml_parse().
 */
#include "xml.h"

#include "buf.h"

#include <expat.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define XML_MAX_DEPTH 32
#define XML_MAX_NODES 100000

typedef struct frame {
  xml_node *node;      /* the open element */
  xml_node *last;      /* its last child so far, to append in order */
  buf text;            /* its character data so far (heap, released at close) */
} frame;

typedef struct parse_state {
  XML_Parser parser;
  arena *a;
  size_t doc_len;                      /* bound for any one node's text */
  frame stack[XML_MAX_DEPTH];
  int depth;                           /* open elements */
  size_t nodes;
  xml_node *root;
  int code;                            /* our own reason to stop, or 0 */
  err *e;
} parse_state;

static void stop(parse_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void stop(parse_state *st, const char *fmt, ...)
{
  if (st->code == 0) {
    char msg[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    st->code = ERR_MALFORMED_XML;
    err_set(st->e, ERR_MALFORMED_XML, "%s", msg);
  }
  XML_StopParser(st->parser, XML_FALSE);
}

static const char *local_name(const XML_Char *name)
{
  const char *colon = strrchr(name, ':');
  return colon != NULL ? colon + 1 : name;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
  (void)attrs;
  parse_state *st = ud;
  if (st->code != 0)
    return;
  if (st->depth >= XML_MAX_DEPTH) {
    stop(st, "xml element '%s' is nested deeper than 32 levels", local_name(name));
    return;
  }
  if (++st->nodes > XML_MAX_NODES) {
    stop(st, "xml document has more than 100000 elements (at '%s')", local_name(name));
    return;
  }
  xml_node *n = arena_alloc(st->a, sizeof *n);
  n->name = arena_strdup(st->a, local_name(name));
  n->text = "";
  if (st->depth == 0) {
    st->root = n;
  } else {
    frame *parent = &st->stack[st->depth - 1];
    n->parent = parent->node;
    if (parent->last == NULL)
      parent->node->child = n;
    else
      parent->last->next = n;
    parent->last = n;
  }
  frame *f = &st->stack[st->depth++];
  f->node = n;
  f->last = NULL;
  buf_init(&f->text, st->doc_len);
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
  (void)name;
  parse_state *st = ud;
  if (st->code != 0 || st->depth == 0)
    return;
  frame *f = &st->stack[--st->depth];
  if (f->text.len > 0) {
    f->node->text = arena_strndup(st->a, f->text.data, f->text.len);
    f->node->text_len = f->text.len;
  }
  buf_release(&f->text);
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
  parse_state *st = ud;
  if (st->code != 0 || st->depth == 0 || len <= 0)
    return;
  frame *f = &st->stack[st->depth - 1];
  if (buf_append(&f->text, s, (size_t)len) != 0)
    stop(st, "xml text of element '%s' is too large", f->node->name);
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
  (void)sysid;
  (void)pubid;
  (void)has_internal_subset;
  stop(ud, "xml document type declaration '%s' is not allowed", name);
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
                              int value_len, const XML_Char *base, const XML_Char *sysid,
                              const XML_Char *pubid, const XML_Char *notation)
{
  (void)is_param;
  (void)value;
  (void)value_len;
  (void)base;
  (void)sysid;
  (void)pubid;
  (void)notation;
  stop(ud, "xml entity declaration '%s' is not allowed", name);
}

int xml_parse(const char *doc, size_t len, arena *a, xml_node **root, err *e)
{
  *root = NULL;
  parse_state st;
  memset(&st, 0, sizeof st);
  st.a = a;
  st.doc_len = len;
  st.e = e;
  st.parser = XML_ParserCreate(NULL);
  if (st.parser == NULL)
    return err_set(e, ERR_INTERNAL, "cannot create the xml parser");
  XML_SetUserData(st.parser, &st);
  XML_SetElementHandler(st.parser, on_start, on_end);
  XML_SetCharacterDataHandler(st.parser, on_text);
  XML_SetStartDoctypeDeclHandler(st.parser, on_doctype);
  XML_SetEntityDeclHandler(st.parser, on_entity);
  XML_SetParamEntityParsing(st.parser, XML_PARAM_ENTITY_PARSING_NEVER);

  int rc = 0;
  size_t off = 0;
  do {
    size_t step = len - off > (size_t)INT_MAX / 2 ? (size_t)INT_MAX / 2 : len - off;
    bool final = off + step == len;
    if (XML_Parse(st.parser, doc + off, (int)step, final) != XML_STATUS_OK) {
      if (st.code != 0) {
        rc = st.code;
      } else {
        rc = err_set(e, ERR_MALFORMED_XML, "malformed xml at line %lu, column %lu: '%s'",
                     (unsigned long)XML_GetCurrentLineNumber(st.parser),
                     (unsigned long)XML_GetCurrentColumnNumber(st.parser),
                     XML_ErrorString(XML_GetErrorCode(st.parser)));
      }
      break;
    }
    off += step;
  } while (off < len);

  for (int i = 0; i < st.depth; i++)
    buf_release(&st.stack[i].text);
  XML_ParserFree(st.parser);
  if (rc == 0 && st.root == NULL)
    rc = err_set(e, ERR_MALFORMED_XML, "xml document has no root element");
  if (rc == 0)
    *root = st.root;
  return rc;
}

xml_node *xml_child(const xml_node *n, const char *name)
{
  if (n == NULL)
    return NULL;
  for (xml_node *c = n->child; c != NULL; c = c->next)
    if (strcmp(c->name, name) == 0)
      return c;
  return NULL;
}

const char *xml_child_text(const xml_node *n, const char *name)
{
  xml_node *c = xml_child(n, name);
  return c != NULL ? c->text : NULL;
}

xml_node *xml_next_same(const xml_node *n)
{
  if (n == NULL)
    return NULL;
  for (xml_node *c = n->next; c != NULL; c = c->next)
    if (strcmp(c->name, n->name) == 0)
      return c;
  return NULL;
}
