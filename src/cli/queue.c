/* cli/queue.c -- `tarn queue` and `tarn topic`: create, list and remove
 * queues and topics, send, receive and tail messages, publish and subscribe
 * (DESIGN.md §3).
 *
 * Why: the common cases of queues and topics should take one short command,
 * not the AWS CLI's URLs and ARNs. Every subcommand is a plain signed call:
 * SQS through its JSON protocol, SNS through its query protocol (XML
 * answers), so the CLI can do nothing an SDK cannot. Names stand for URLs
 * and ARNs (NAME -> TARN_ENDPOINT/000000000000/NAME, arn:aws:sns:...:NAME).
 *
 * Invariants:
 *   (1) A failure is one line on stderr ("tarn queue: ...") and exit code 1;
 *       bad usage exits 2.
 *   (2) Every answer is read into a buffer with a limit (RESP_MAX).
 *   (3) receive and tail delete what they printed (unless --keep), so a
 *       message is shown once; tail long-polls until interrupted.
 *
 * Start reading at cli_queue() and cli_topic().
 */
#include "cli/queue.h"

#include "base/arena.h"
#include "base/buf.h"
#include "base/text.h"
#include "base/xml.h"
#include "cli/client.h"
#include "cli/command.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESP_MAX (16u << 20)
#define BODY_MAX 262144u
#define ACCOUNT "000000000000"
#define REGION "us-east-1"

static const char queue_usage[] =
    "usage: tarn queue [--data DIR] <command>\n"
    "\n"
    "  ls [PREFIX]                     list the queues\n"
    "  create NAME [--fifo] [--attr K=V ...]\n"
    "                                  create a queue (NAME.fifo with --fifo) and print its URL\n"
    "  rm NAME                         delete a queue and its messages\n"
    "  send NAME BODY|- [--group G] [--dedup ID] [--delay S] [--attr K=V ...]\n"
    "                                  send a message (- reads stdin); prints its id\n"
    "  receive NAME [--max N] [--wait S] [--keep] [--json]\n"
    "                                  print messages (one per line) and delete them\n"
    "  tail NAME [--keep] [--json]     print messages as they come, until interrupted\n"
    "  purge NAME                      delete every message\n"
    "  stats NAME                      print the queue's attributes\n"
    "\n"
    "The server is TARN_ENDPOINT (default http://127.0.0.1:9000); credentials come\n"
    "from TARN_ACCESS_KEY/TARN_SECRET_KEY, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or\n"
    "DIR/credentials (default ./tarn-data).\n";

static const char topic_usage[] =
    "usage: tarn topic [--data DIR] <command>\n"
    "\n"
    "  ls                              list the topics\n"
    "  create NAME                     create a topic and print its ARN\n"
    "  rm NAME                         delete a topic and its subscriptions\n"
    "  publish NAME MESSAGE|- [--subject S] [--attr K=V ...]\n"
    "                                  publish (- reads stdin); prints the message id\n"
    "  subscribe NAME PROTOCOL ENDPOINT [--raw] [--filter JSON]\n"
    "                                  sqs (a queue name or ARN), lambda (a function ARN),\n"
    "                                  http or https (a URL); prints the subscription ARN\n"
    "  subs NAME                       list the topic's subscriptions\n"
    "\n"
    "Server and credentials as for `tarn queue`.\n";

typedef struct ctx {
  cli_target t;
  arena *a;
  const char *who;         /* "queue" or "topic", for messages */
  const char *usage;
} ctx;

/* ---- options ---- */

typedef struct opts {
  const char *pos[4];      /* positional arguments */
  int npos;
  const char *group, *dedup, *subject, *filter;
  int delay, max, wait;
  bool fifo, keep, json, raw;
  str_pair attrs[10];
  int nattrs;
} opts;

static int parse_opts(ctx *c, int argc, char **argv, opts *o)
{
  memset(o, 0, sizeof *o);
  o->delay = -1;
  o->max = 10;
  o->wait = -1;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    bool more = i + 1 < argc;
    if (strcmp(a, "--fifo") == 0)
      o->fifo = true;
    else if (strcmp(a, "--keep") == 0)
      o->keep = true;
    else if (strcmp(a, "--json") == 0)
      o->json = true;
    else if (strcmp(a, "--raw") == 0)
      o->raw = true;
    else if (strcmp(a, "--group") == 0 && more)
      o->group = argv[++i];
    else if (strcmp(a, "--dedup") == 0 && more)
      o->dedup = argv[++i];
    else if (strcmp(a, "--subject") == 0 && more)
      o->subject = argv[++i];
    else if (strcmp(a, "--filter") == 0 && more)
      o->filter = argv[++i];
    else if (strcmp(a, "--delay") == 0 && more)
      o->delay = atoi(argv[++i]);
    else if (strcmp(a, "--max") == 0 && more)
      o->max = atoi(argv[++i]);
    else if (strcmp(a, "--wait") == 0 && more)
      o->wait = atoi(argv[++i]);
    else if (strcmp(a, "--attr") == 0 && more) {
      const char *kv = argv[++i];
      const char *eq = strchr(kv, '=');
      if (eq == NULL || eq == kv)
        return cli_usage_error(c->who, c->usage, "--attr wants K=V, not '%s'", kv);
      if (o->nattrs == 10)
        return cli_usage_error(c->who, c->usage, "at most 10 --attr");
      o->attrs[o->nattrs].name = arena_strndup(c->a, kv, (size_t)(eq - kv));
      o->attrs[o->nattrs].value = eq + 1;
      o->nattrs++;
    } else if (a[0] == '-' && a[1] == '-') {
      return cli_usage_error(c->who, c->usage, "unknown option '%s'", a);
    } else if (o->npos < 4) {
      o->pos[o->npos++] = a;
    } else {
      return cli_usage_error(c->who, c->usage, "too many arguments");
    }
  }
  return 0;
}

/* The text of an argument, or all of stdin for "-". */
static const char *arg_text(ctx *c, const char *a)
{
  if (strcmp(a, "-") != 0)
    return a;
  buf b;
  buf_init(&b, BODY_MAX + 1);
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
    if (buf_append(&b, chunk, n) != 0)
      break;
  char *out = arena_strndup(c->a, b.data != NULL ? b.data : "", b.len);
  buf_release(&b);
  return out;
}

/* ---- calls ---- */

static int send_raw(ctx *c, const char *service, const str_pair *h, size_t nh,
                    const char *body, long *status, buf *out, err *e)
{
  buf_reset(out);
  cli_sink s = {.b = out};
  cli_call cc = {.method = "POST", .path = "/", .service = service, .headers = h,
                 .nheaders = nh, .body = body, .body_len = strlen(body), .on_body = cli_sink_body,
                 .ctx = &s};
  int rc = cli_send(&c->t, &cc, status, e);
  if (rc == 0 && s.over)
    rc = err_set(e, ERR_ENTITY_TOO_LARGE, "the answer is larger than %u bytes", RESP_MAX);
  return rc;
}

/* One SQS call (JSON protocol): the answer object, or NULL after printing
 * the failure. in is consumed. */
static json_t *sqs_call(ctx *c, const char *action, json_t *in, int *rc)
{
  char *text = json_dumps(in, JSON_COMPACT);
  json_decref(in);
  str_pair h[2] = {{"content-type", "application/x-amz-json-1.0"},
                   {"x-amz-target", arena_sprintf(c->a, "AmazonSQS.%s", action)}};
  buf out;
  buf_init(&out, RESP_MAX);
  long status = 0;
  err e = {0};
  json_t *j = NULL;
  if (send_raw(c, "sqs", h, 2, text, &status, &out, &e) != 0) {
    *rc = cli_fail(c->who, "%s failed: %s", action, e.msg);
  } else {
    j = json_loadb(out.data != NULL ? out.data : "{}", out.len ? out.len : 2, 0, NULL);
    if (status != 200 || j == NULL) {
      const char *m = json_string_value(json_object_get(j, "message"));
      *rc = cli_fail(c->who, "%s failed: %s", action,
                 m != NULL ? m : arena_sprintf(c->a, "the server answered %ld", status));
      json_decref(j);
      j = NULL;
    }
  }
  free(text);
  buf_release(&out);
  return j;
}

/* One SNS call (query protocol): the XML answer's root, or NULL after
 * printing the failure. params: name, value pairs. */
static xml_node *sns_call(ctx *c, const char *action, const str_pair *params, size_t n, int *rc)
{
  char *body = arena_sprintf(c->a, "Action=%s&Version=2010-03-31", action);
  for (size_t i = 0; i < n; i++)
    body = arena_sprintf(c->a, "%s&%s=%s", body,
                         uri_encode(c->a, params[i].name, strlen(params[i].name), false),
                         uri_encode(c->a, params[i].value, strlen(params[i].value), false));
  str_pair h = {"content-type", "application/x-www-form-urlencoded; charset=utf-8"};
  buf out;
  buf_init(&out, RESP_MAX);
  long status = 0;
  err e = {0};
  xml_node *root = NULL;
  if (send_raw(c, "sns", &h, 1, body, &status, &out, &e) != 0) {
    *rc = cli_fail(c->who, "%s failed: %s", action, e.msg);
  } else if (out.len == 0 || xml_parse(out.data, out.len, c->a, &root, &e) != 0) {
    *rc = cli_fail(c->who, "%s failed: the server answered %ld", action, status);
    root = NULL;
  } else if (status != 200) {
    xml_node *er = xml_child(root, "Error");
    const char *m = er != NULL ? xml_child_text(er, "Message") : NULL;
    *rc = cli_fail(c->who, "%s failed: %s", action,
               m != NULL ? m : arena_sprintf(c->a, "the server answered %ld", status));
    root = NULL;
  }
  buf_release(&out);
  return root;
}

static const char *queue_url(ctx *c, const char *name)
{
  if (strstr(name, "://") != NULL)
    return name;
  return arena_sprintf(c->a, "%s/%s/%s", c->t.endpoint, ACCOUNT, name);
}

static const char *topic_arn(ctx *c, const char *name)
{
  if (str_starts(name, "arn:"))
    return name;
  return arena_sprintf(c->a, "arn:aws:sns:%s:%s:%s", REGION, ACCOUNT, name);
}

/* ---- tarn queue ---- */

static int q_ls(ctx *c, opts *o)
{
  int rc = 0;
  json_t *in = json_object();
  if (o->npos > 0)
    json_object_set_new(in, "QueueNamePrefix", json_string(o->pos[0]));
  json_t *j = sqs_call(c, "ListQueues", in, &rc);
  size_t i;
  json_t *u;
  json_array_foreach(json_object_get(j, "QueueUrls"), i, u) {
    const char *url = json_string_value(u);
    const char *slash = url != NULL ? strrchr(url, '/') : NULL;
    puts(slash != NULL ? slash + 1 : "");
  }
  json_decref(j);
  return rc;
}

static int q_create(ctx *c, opts *o)
{
  if (o->npos != 1)
    return cli_usage_error(c->who, c->usage, "create needs a NAME");
  const char *name = o->pos[0];
  json_t *attrs = json_object();
  if (o->fifo) {
    if (!str_ends(name, ".fifo"))
      name = arena_sprintf(c->a, "%s.fifo", name);
    json_object_set_new(attrs, "FifoQueue", json_string("true"));
  }
  for (int i = 0; i < o->nattrs; i++)
    json_object_set_new(attrs, o->attrs[i].name, json_string(o->attrs[i].value));
  int rc = 0;
  json_t *j = sqs_call(c, "CreateQueue",
                       json_pack("{s:s, s:o}", "QueueName", name, "Attributes", attrs), &rc);
  if (j != NULL)
    puts(json_string_value(json_object_get(j, "QueueUrl")));
  json_decref(j);
  return rc;
}

static int q_simple(ctx *c, opts *o, const char *action)
{
  if (o->npos != 1)
    return cli_usage_error(c->who, c->usage, "%s needs a NAME", action);
  int rc = 0;
  json_decref(sqs_call(c, action, json_pack("{s:s}", "QueueUrl", queue_url(c, o->pos[0])), &rc));
  return rc;
}

static int q_rm(ctx *c, opts *o)
{
  return q_simple(c, o, "DeleteQueue");
}

static int q_purge(ctx *c, opts *o)
{
  return q_simple(c, o, "PurgeQueue");
}

static int q_send(ctx *c, opts *o)
{
  if (o->npos != 2)
    return cli_usage_error(c->who, c->usage, "send needs a NAME and a BODY");
  json_t *in = json_pack("{s:s, s:s}", "QueueUrl", queue_url(c, o->pos[0]), "MessageBody",
                         arg_text(c, o->pos[1]));
  if (o->group != NULL)
    json_object_set_new(in, "MessageGroupId", json_string(o->group));
  if (o->dedup != NULL)
    json_object_set_new(in, "MessageDeduplicationId", json_string(o->dedup));
  if (o->delay >= 0)
    json_object_set_new(in, "DelaySeconds", json_integer(o->delay));
  if (o->nattrs > 0) {
    json_t *ma = json_object();
    for (int i = 0; i < o->nattrs; i++)
      json_object_set_new(ma, o->attrs[i].name,
                          json_pack("{s:s, s:s}", "DataType", "String", "StringValue",
                                    o->attrs[i].value));
    json_object_set_new(in, "MessageAttributes", ma);
  }
  int rc = 0;
  json_t *j = sqs_call(c, "SendMessage", in, &rc);
  if (j != NULL)
    puts(json_string_value(json_object_get(j, "MessageId")));
  json_decref(j);
  return rc;
}

/* Receives once; prints and (unless keep) deletes. *got gets the count. */
static int receive_once(ctx *c, opts *o, const char *url, int wait, size_t *got)
{
  json_t *in = json_pack("{s:s, s:i, s:i, s:[s], s:[s]}", "QueueUrl", url, "MaxNumberOfMessages",
                         o->max < 1 ? 1 : o->max > 10 ? 10 : o->max, "WaitTimeSeconds", wait,
                         "MessageAttributeNames", "All", "AttributeNames", "All");
  int rc = 0;
  json_t *j = sqs_call(c, "ReceiveMessage", in, &rc);
  if (j == NULL)
    return rc;
  json_t *msgs = json_object_get(j, "Messages");
  *got = json_array_size(msgs);
  json_t *entries = json_array();
  size_t i;
  json_t *m;
  json_array_foreach(msgs, i, m) {
    if (o->json) {
      json_t *line = json_pack("{s:O, s:O, s:O}", "id", json_object_get(m, "MessageId"),
                               "body", json_object_get(m, "Body"), "attributes",
                               json_object_get(m, "Attributes"));
      if (json_object_get(m, "MessageAttributes") != NULL)
        json_object_set(line, "messageAttributes", json_object_get(m, "MessageAttributes"));
      char *s = json_dumps(line, JSON_COMPACT);
      puts(s);
      free(s);
      json_decref(line);
    } else {
      puts(json_string_value(json_object_get(m, "Body")));
    }
    json_array_append_new(entries, json_pack("{s:s, s:O}", "Id", arena_sprintf(c->a, "m%zu", i),
                                             "ReceiptHandle",
                                             json_object_get(m, "ReceiptHandle")));
  }
  fflush(stdout);
  if (!o->keep && json_array_size(entries) > 0)
    json_decref(sqs_call(c, "DeleteMessageBatch",
                         json_pack("{s:s, s:o}", "QueueUrl", url, "Entries", entries), &rc));
  else
    json_decref(entries);
  json_decref(j);
  return rc;
}

static int q_receive(ctx *c, opts *o)
{
  if (o->npos != 1)
    return cli_usage_error(c->who, c->usage, "receive needs a NAME");
  size_t got = 0;
  return receive_once(c, o, queue_url(c, o->pos[0]), o->wait < 0 ? 1 : o->wait, &got);
}

static int q_tail(ctx *c, opts *o)
{
  if (o->npos != 1)
    return cli_usage_error(c->who, c->usage, "tail needs a NAME");
  const char *url = queue_url(c, o->pos[0]);
  for (;;) {
    size_t got = 0;
    int rc = receive_once(c, o, url, 20, &got);
    if (rc != 0)
      return rc;
  }
}

static int q_stats(ctx *c, opts *o)
{
  if (o->npos != 1)
    return cli_usage_error(c->who, c->usage, "stats needs a NAME");
  int rc = 0;
  json_t *j = sqs_call(c, "GetQueueAttributes",
                       json_pack("{s:s, s:[s]}", "QueueUrl", queue_url(c, o->pos[0]),
                                 "AttributeNames", "All"), &rc);
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(j, "Attributes"), k, v) {
    printf("%-40s %s\n", k, json_string_value(v));
  }
  json_decref(j);
  return rc;
}

/* ---- tarn topic ---- */

static int t_ls(ctx *c, opts *o)
{
  int rc = 0;
  const char *next = NULL;
  do {
    str_pair p = {"NextToken", next};
    xml_node *root = sns_call(c, "ListTopics", &p, next != NULL ? 1 : 0, &rc);
    xml_node *res = root != NULL ? xml_child(root, "ListTopicsResult") : NULL;
    if (res == NULL)
      break;
    xml_node *topics = xml_child(res, "Topics");
    for (xml_node *m = topics != NULL ? xml_child(topics, "member") : NULL; m != NULL;
         m = xml_next_same(m)) {
      const char *arn = xml_child_text(m, "TopicArn");
      const char *colon = arn != NULL ? strrchr(arn, ':') : NULL;
      puts(colon != NULL ? colon + 1 : "");
    }
    next = xml_child_text(res, "NextToken");
  } while (next != NULL && *next);
  return rc;
}

static int t_create(ctx *c, opts *o)
{
  if (o->npos != 1)
    return cli_usage_error(c->who, c->usage, "create needs a NAME");
  int rc = 0;
  str_pair p = {"Name", o->pos[0]};
  xml_node *root = sns_call(c, "CreateTopic", &p, 1, &rc);
  if (root != NULL)
    puts(xml_child_text(xml_child(root, "CreateTopicResult"), "TopicArn"));
  return rc;
}

static int t_rm(ctx *c, opts *o)
{
  if (o->npos != 1)
    return cli_usage_error(c->who, c->usage, "rm needs a NAME");
  int rc = 0;
  str_pair p = {"TopicArn", topic_arn(c, o->pos[0])};
  sns_call(c, "DeleteTopic", &p, 1, &rc);
  return rc;
}

static int t_publish(ctx *c, opts *o)
{
  if (o->npos != 2)
    return cli_usage_error(c->who, c->usage, "publish needs a NAME and a MESSAGE");
  str_pair p[3 + 3 * 10];
  size_t n = 0;
  p[n++] = (str_pair){"TopicArn", topic_arn(c, o->pos[0])};
  p[n++] = (str_pair){"Message", arg_text(c, o->pos[1])};
  if (o->subject != NULL)
    p[n++] = (str_pair){"Subject", o->subject};
  for (int i = 0; i < o->nattrs; i++) {
    p[n++] = (str_pair){arena_sprintf(c->a, "MessageAttributes.entry.%d.Name", i + 1),
                        o->attrs[i].name};
    p[n++] = (str_pair){arena_sprintf(c->a, "MessageAttributes.entry.%d.Value.DataType", i + 1),
                        "String"};
    p[n++] = (str_pair){arena_sprintf(c->a, "MessageAttributes.entry.%d.Value.StringValue",
                                      i + 1), o->attrs[i].value};
  }
  int rc = 0;
  xml_node *root = sns_call(c, "Publish", p, n, &rc);
  if (root != NULL)
    puts(xml_child_text(xml_child(root, "PublishResult"), "MessageId"));
  return rc;
}

static int t_subscribe(ctx *c, opts *o)
{
  if (o->npos != 3)
    return cli_usage_error(c->who, c->usage, "subscribe needs a NAME, a PROTOCOL and an ENDPOINT");
  const char *protocol = o->pos[1];
  const char *endpoint = o->pos[2];
  if (strcmp(protocol, "sqs") == 0 && !str_starts(endpoint, "arn:"))
    endpoint = arena_sprintf(c->a, "arn:aws:sqs:%s:%s:%s", REGION, ACCOUNT, endpoint);
  str_pair p[8];
  size_t n = 0;
  p[n++] = (str_pair){"TopicArn", topic_arn(c, o->pos[0])};
  p[n++] = (str_pair){"Protocol", protocol};
  p[n++] = (str_pair){"Endpoint", endpoint};
  p[n++] = (str_pair){"ReturnSubscriptionArn", "true"};
  int k = 1;
  if (o->raw) {
    p[n++] = (str_pair){arena_sprintf(c->a, "Attributes.entry.%d.key", k), "RawMessageDelivery"};
    p[n++] = (str_pair){arena_sprintf(c->a, "Attributes.entry.%d.value", k++), "true"};
  }
  if (o->filter != NULL) {
    p[n++] = (str_pair){arena_sprintf(c->a, "Attributes.entry.%d.key", k), "FilterPolicy"};
    p[n++] = (str_pair){arena_sprintf(c->a, "Attributes.entry.%d.value", k++), o->filter};
  }
  int rc = 0;
  xml_node *root = sns_call(c, "Subscribe", p, n, &rc);
  if (root != NULL)
    puts(xml_child_text(xml_child(root, "SubscribeResult"), "SubscriptionArn"));
  return rc;
}

static int t_subs(ctx *c, opts *o)
{
  if (o->npos != 1)
    return cli_usage_error(c->who, c->usage, "subs needs a NAME");
  int rc = 0;
  str_pair p = {"TopicArn", topic_arn(c, o->pos[0])};
  xml_node *root = sns_call(c, "ListSubscriptionsByTopic", &p, 1, &rc);
  xml_node *res = root != NULL ? xml_child(root, "ListSubscriptionsByTopicResult") : NULL;
  xml_node *subs = res != NULL ? xml_child(res, "Subscriptions") : NULL;
  for (xml_node *m = subs != NULL ? xml_child(subs, "member") : NULL; m != NULL;
       m = xml_next_same(m))
    printf("%-8s %-60s %s\n", xml_child_text(m, "Protocol"), xml_child_text(m, "Endpoint"),
           xml_child_text(m, "SubscriptionArn"));
  return rc;
}

/* ---- dispatch ---- */

typedef struct command {
  const char *name;
  int (*run)(ctx *c, opts *o);
} command;

static int run(const char *who, const char *usage, const command *cmds, size_t ncmds,
               int argc, char **argv)
{
  cli_args args;
  int rc = cli_args_init(&args, who, usage, argc, argv);
  const command *cmd = NULL;
  for (size_t i = 0; rc < 0 && i < ncmds && cmd == NULL; i++)
    if (strcmp(args.argv[0], cmds[i].name) == 0)
      cmd = &cmds[i];
  if (rc < 0 && cmd == NULL)
    rc = cli_usage_error(who, usage, "unknown command '%s'", args.argv[0]);
  ctx c = {.a = arena_new(), .who = who, .usage = usage};
  opts o;
  if (rc < 0) {
    int prc = parse_opts(&c, args.argc - 1, args.argv + 1, &o);
    if (prc != 0)
      rc = prc;
  }
  if (rc < 0) {
    err e = {0};
    if (cli_target_init(&c.t, args.dir, &e) != 0)
      rc = cli_fail(who, "%s", e.msg);
    else
      rc = cmd->run(&c, &o);
  }
  cli_args_release(&args);
  arena_free(c.a);
  return rc;
}

int cli_queue(int argc, char **argv)
{
  static const command cmds[] = {
      {"ls", q_ls},       {"create", q_create}, {"rm", q_rm},       {"send", q_send},
      {"receive", q_receive}, {"tail", q_tail}, {"purge", q_purge}, {"stats", q_stats},
  };
  return run("queue", queue_usage, cmds, sizeof cmds / sizeof cmds[0], argc, argv);
}

int cli_topic(int argc, char **argv)
{
  static const command cmds[] = {
      {"ls", t_ls}, {"create", t_create}, {"rm", t_rm}, {"publish", t_publish},
      {"subscribe", t_subscribe}, {"subs", t_subs},
  };
  return run("topic", topic_usage, cmds, sizeof cmds / sizeof cmds[0], argc, argv);
}
