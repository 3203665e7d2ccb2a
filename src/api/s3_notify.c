/* api/s3_notify.c -- PutBucketNotificationConfiguration and
 * GetBucketNotificationConfiguration (PUT/GET /bucket?notification): the
 * XML of S3's NotificationConfiguration to events_config and back.
 *
 * Why a file of its own: the checks and the storage are the events part's
 * (events/notify.c); this is only the wire format, and it is the one S3
 * bucket subresource with nested, repeated elements.
 *
 * Wire format (botocore's s3 model; element names as on the wire):
 *   <NotificationConfiguration>
 *     <QueueConfiguration> <Id/> <Queue>arn</Queue> <Event/>... <Filter>
 *       <S3Key><FilterRule><Name>prefix</Name><Value>raw/</Value></FilterRule>
 *       </S3Key></Filter> </QueueConfiguration>
 *     <TopicConfiguration> ... <Topic>arn</Topic> ...
 *     <CloudFunctionConfiguration> ... <CloudFunction>arn</CloudFunction> ...
 *     <EventBridgeConfiguration/>
 *   </NotificationConfiguration>
 * Filter rule names are case-insensitive on input and answered as
 * "Prefix" / "Suffix", as S3 does.
 *
 * Invariants:
 *   (1) Nothing changes unless the whole document parsed and passed the
 *       events part's checks.
 *
 * Start reading at s3_put_notification().
 */
#include "api/s3_internal.h"

#include "base/xml.h"
#include "events/events.h"

#include <string.h>
#include <strings.h>

static const struct {
  const char *element;   /* XxxConfiguration */
  const char *arn;       /* the element naming the target */
  enum events_target target;
} kinds[] = {
  {"QueueConfiguration", "Queue", EVENTS_QUEUE},
  {"TopicConfiguration", "Topic", EVENTS_TOPIC},
  {"CloudFunctionConfiguration", "CloudFunction", EVENTS_FUNCTION},
};

static int parse_filter(const xml_node *f, arena *a, events_rule *r, err *e)
{
  const xml_node *key = xml_child(f, "S3Key");
  if (key == NULL)
    return 0;
  for (const xml_node *fr = xml_child(key, "FilterRule"); fr != NULL; fr = xml_next_same(fr)) {
    const char *name = xml_child_text(fr, "Name");
    const char *value = xml_child_text(fr, "Value");
    if (name == NULL || value == NULL)
      return err_set(e, ERR_MALFORMED_XML, "a FilterRule needs a Name and a Value");
    const char **slot = NULL;
    if (strcasecmp(name, "prefix") == 0)
      slot = &r->prefix;
    else if (strcasecmp(name, "suffix") == 0)
      slot = &r->suffix;
    else
      return err_set(e, ERR_INVALID, "filter rule name must be either prefix or suffix");
    if (*slot != NULL)
      return err_set(e, ERR_INVALID, "Cannot specify more than one %s rule in a filter.",
                     slot == &r->prefix ? "prefix" : "suffix");
    *slot = arena_strdup(a, value);
  }
  return 0;
}

static int parse_config(http_req *req, events_config *out, err *e)
{
  memset(out, 0, sizeof *out);
  xml_node *root = NULL;
  int rc = s3_body_xml(req, "NotificationConfiguration", &root, e);
  if (rc != 0)
    return rc;
  size_t cap = 0;
  for (const xml_node *n = root->child; n != NULL; n = n->next)
    cap++;
  out->rules = arena_alloc(req->arena, (cap + 1) * sizeof *out->rules);
  for (const xml_node *n = root->child; n != NULL; n = n->next) {
    if (strcmp(n->name, "EventBridgeConfiguration") == 0) {
      out->eventbridge = true;
      continue;
    }
    size_t k = 0;
    while (k < sizeof kinds / sizeof kinds[0] && strcmp(kinds[k].element, n->name) != 0)
      k++;
    if (k == sizeof kinds / sizeof kinds[0])
      return err_set(e, ERR_MALFORMED_XML, "unknown element '%s' in NotificationConfiguration",
                     n->name);
    events_rule *r = &out->rules[out->nrules++];
    r->target = kinds[k].target;
    r->id = xml_child_text(n, "Id");
    r->arn = xml_child_text(n, kinds[k].arn);
    size_t nev = 0;
    for (const xml_node *x = xml_child(n, "Event"); x != NULL; x = xml_next_same(x))
      nev++;
    r->events = arena_alloc(req->arena, (nev + 1) * sizeof *r->events);
    for (const xml_node *x = xml_child(n, "Event"); x != NULL; x = xml_next_same(x))
      r->events[r->nevents++] = x->text;
    const xml_node *f = xml_child(n, "Filter");
    if (f != NULL && (rc = parse_filter(f, req->arena, r, e)) != 0)
      return rc;
  }
  return 0;
}

int s3_put_notification(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  if (s->ev == NULL)
    return err_set(e, ERR_NOT_IMPLEMENTED, "bucket notifications are not running");
  events_config cfg;
  int rc = parse_config(req, &cfg, e);
  if (rc != 0)
    return rc;
  const char *skip = http_req_header(req, "x-amz-skip-destination-validation");
  bool skip_validation = skip != NULL && str_ieq(skip, "true");
  return events_config_put(s->ev, c->bucket, &cfg, skip_validation, req->request_id,
                           req->arena, e);
}

int s3_get_notification(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  if (s->ev == NULL)
    return err_set(e, ERR_NOT_IMPLEMENTED, "bucket notifications are not running");
  events_config cfg;
  int rc = events_config_get(s->ev, c->bucket, req->arena, &cfg, e);
  if (rc != 0)
    return rc;
  s3_xml x;
  s3_xml_open(&x, req, "NotificationConfiguration");
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    for (size_t i = 0; i < cfg.nrules; i++) {
      const events_rule *r = &cfg.rules[i];
      if (r->target != kinds[k].target)
        continue;
      s3_xml_start(&x, kinds[k].element);
      if (r->id != NULL)
        s3_xml_text(&x, "Id", r->id);
      s3_xml_text(&x, kinds[k].arn, r->arn);
      for (size_t j = 0; j < r->nevents; j++)
        s3_xml_text(&x, "Event", r->events[j]);
      if (r->prefix != NULL || r->suffix != NULL) {
        s3_xml_start(&x, "Filter");
        s3_xml_start(&x, "S3Key");
        if (r->prefix != NULL) {
          s3_xml_start(&x, "FilterRule");
          s3_xml_text(&x, "Name", "Prefix");
          s3_xml_text(&x, "Value", r->prefix);
          s3_xml_end(&x, "FilterRule");
        }
        if (r->suffix != NULL) {
          s3_xml_start(&x, "FilterRule");
          s3_xml_text(&x, "Name", "Suffix");
          s3_xml_text(&x, "Value", r->suffix);
          s3_xml_end(&x, "FilterRule");
        }
        s3_xml_end(&x, "S3Key");
        s3_xml_end(&x, "Filter");
      }
      s3_xml_end(&x, kinds[k].element);
    }
  }
  if (cfg.eventbridge) {
    s3_xml_start(&x, "EventBridgeConfiguration");
    s3_xml_end(&x, "EventBridgeConfiguration");
  }
  s3_xml_close(&x, "NotificationConfiguration");
  return s3_xml_done(&x, e);
}
