/* cli/batch.c -- `tarn batch`: S3 Batch Operations jobs from the command
 * line (DESIGN.md §3), over the S3 Control API the AWS CLI and SDKs use.
 *
 * Why: the everyday cases (tag everything under a prefix, see how a job is
 * doing, confirm or cancel it) should take one short command each, without
 * the SDKs' ACCOUNT.HOST endpoint (README). Every subcommand is a plain
 * signed S3 Control call of account 000000000000.
 *
 * Invariants:
 *   (1) A failure is one line on stderr ("tarn batch: ...") and exit code 1;
 *       bad usage exits 2.
 *   (2) Every answer is read into a buffer with a limit (RESP_MAX).
 *
 * Start reading at cli_batch().
 */
#include "cli/batch.h"

#include "base/arena.h"
#include "base/buf.h"
#include "base/hash.h"
#include "base/text.h"
#include "base/xml.h"
#include "cli/client.h"
#include "cli/command.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESP_MAX (16u << 20)
#define ACCOUNT "000000000000"
#define ROLE "arn:aws:iam::000000000000:role/tarn-batch"
#define MAX_TAGS 10

static const char usage[] =
    "usage: tarn batch [--data DIR] <command>\n"
    "\n"
    "  ls                              list the jobs: id, status, operation, tasks done\n"
    "  show ID                         print a job's status, counts and failure reasons\n"
    "  tag BUCKET[/PREFIX] K=V...      tag every object under the prefix (a job; prints its id)\n"
    "  confirm ID                      run a job that waits for confirmation\n"
    "  cancel ID                       cancel a job\n"
    "\n"
    "The server is TARN_ENDPOINT (default http://127.0.0.1:9000); credentials come\n"
    "from TARN_ACCESS_KEY/TARN_SECRET_KEY, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or\n"
    "DIR/credentials (default ./tarn-data).\n";

typedef struct ctx {
  cli_target t;
  arena *a;
  char **args;   /* the command's operands */
  int nargs;
} ctx;

/* One call: the answer's root element, or NULL after printing the failure
 * (*rc = 1). */
static xml_node *call(ctx *c, const char *what, const char *method, const char *path,
                      const char *body, int *rc)
{
  str_pair h[1] = {{"x-amz-account-id", ACCOUNT}};
  buf out;
  buf_init(&out, RESP_MAX);
  cli_sink sink = {.b = &out};
  cli_call cc = {.method = method, .path = path, .service = "s3", .headers = h, .nheaders = 1,
                 .body = body, .body_len = body != NULL ? strlen(body) : 0,
                 .on_body = cli_sink_body, .ctx = &sink};
  long status = 0;
  err e = {0};
  xml_node *root = NULL;
  if (cli_send(&c->t, &cc, &status, &e) != 0) {
    *rc = cli_fail("batch", "%s failed: %s", what, e.msg);
  } else if (sink.over) {
    *rc = cli_fail("batch", "%s failed: the answer is larger than %u bytes", what, RESP_MAX);
  } else if (xml_parse(out.data != NULL ? out.data : "", out.len, c->a, &root, &e) != 0) {
    *rc = cli_fail("batch", "%s failed: the server answered %ld without XML", what, status);
    root = NULL;
  } else if (status != 200) {
    const char *m = xml_child_text(root, "Message");
    if (m != NULL)
      *rc = cli_fail("batch", "%s failed: %s", what, m);
    else
      *rc = cli_fail("batch", "%s failed: the server answered %ld", what, status);
    root = NULL;
  }
  buf_release(&out);
  return root;
}

static const char *text_at(const xml_node *n, const char *a, const char *b)
{
  const xml_node *x = xml_child(n, a);
  const char *t = x != NULL && b != NULL ? xml_child_text(x, b) : xml_child_text(n, a);
  return t != NULL ? t : "";
}

static const char *job_path(ctx *c, const char *tail)
{
  return arena_sprintf(c->a, "/v20180820/jobs/%s%s",
                       uri_encode(c->a, c->args[0], strlen(c->args[0]), false), tail);
}

static int b_ls(ctx *c)
{
  int rc = 0;
  const char *token = NULL;
  do {
    const char *path = token == NULL ? "/v20180820/jobs"
                                     : arena_sprintf(c->a, "/v20180820/jobs?nextToken=%s", token);
    xml_node *r = call(c, "ListJobs", "GET", path, NULL, &rc);
    if (r == NULL)
      return rc;
    xml_node *jobs = xml_child(r, "Jobs");
    for (xml_node *j = jobs != NULL ? jobs->child : NULL; j != NULL; j = j->next) {
      xml_node *p = xml_child(j, "ProgressSummary");
      printf("%s  %-10s  %-22s  %s/%s\n", text_at(j, "JobId", NULL), text_at(j, "Status", NULL),
             text_at(j, "Operation", NULL),
             p != NULL ? text_at(p, "NumberOfTasksSucceeded", NULL) : "0",
             p != NULL ? text_at(p, "TotalNumberOfTasks", NULL) : "0");
    }
    token = xml_child_text(r, "NextToken");
  } while (token != NULL);
  return 0;
}

static int b_show(ctx *c)
{
  int rc = 0;
  xml_node *r = call(c, "DescribeJob", "GET", job_path(c, ""), NULL, &rc);
  xml_node *j = r != NULL ? xml_child(r, "Job") : NULL;
  if (j == NULL)
    return rc ? rc : cli_fail("batch", "DescribeJob failed: no job in the answer");
  xml_node *p = xml_child(j, "ProgressSummary");
  const xml_node *op = xml_child(j, "Operation");
  printf("job        %s\nstatus     %s\noperation  %s\npriority   %s\ncreated    %s\n",
         text_at(j, "JobId", NULL), text_at(j, "Status", NULL),
         op != NULL && op->child != NULL ? op->child->name : "", text_at(j, "Priority", NULL),
         text_at(j, "CreationTime", NULL));
  if (xml_child(j, "TerminationDate") != NULL)
    printf("ended      %s\n", text_at(j, "TerminationDate", NULL));
  if (p != NULL)
    printf("tasks      %s total, %s succeeded, %s failed (%ss active)\n",
           text_at(p, "TotalNumberOfTasks", NULL), text_at(p, "NumberOfTasksSucceeded", NULL),
           text_at(p, "NumberOfTasksFailed", NULL), text_at(p, "Timers", "ElapsedTimeInActiveSeconds"));
  xml_node *rep = xml_child(j, "Report");
  if (rep != NULL && strcmp(text_at(rep, "Enabled", NULL), "true") == 0)
    printf("report     %s/%s\n", text_at(rep, "Bucket", NULL), text_at(rep, "Prefix", NULL));
  xml_node *f = xml_child(j, "FailureReasons");
  for (xml_node *m = f != NULL ? f->child : NULL; m != NULL; m = m->next)
    printf("failure    %s: %s\n", text_at(m, "FailureCode", NULL), text_at(m, "FailureReason", NULL));
  return 0;
}

static int b_status(ctx *c, const char *to)
{
  int rc = 0;
  xml_node *r = call(c, "UpdateJobStatus", "POST",
                     job_path(c, arena_sprintf(c->a, "/status?requestedJobStatus=%s", to)), NULL,
                     &rc);
  if (r == NULL)
    return rc;
  printf("%s\n", text_at(r, "Status", NULL));
  return 0;
}

static int b_confirm(ctx *c)
{
  return b_status(c, "Ready");
}

static int b_cancel(ctx *c)
{
  return b_status(c, "Cancelled");
}

static int b_tag(ctx *c)
{
  if (c->nargs < 2 || c->nargs > 1 + MAX_TAGS)
    return cli_usage_error("batch", usage, "tag needs BUCKET[/PREFIX] and 1 to %d K=V tags",
                           MAX_TAGS);
  const char *where = c->args[0];
  const char *slash = strchr(where, '/');
  const char *bucket = slash != NULL ? arena_strndup(c->a, where, (size_t)(slash - where)) : where;
  const char *prefix = slash != NULL && slash[1] != '\0' ? slash + 1 : NULL;
  buf b;
  buf_init(&b, 1u << 20);
  buf_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CreateJobRequest "
               "xmlns=\"http://awss3control.amazonaws.com/doc/2018-08-20/\">"
               "<ConfirmationRequired>false</ConfirmationRequired>"
               "<Operation><S3PutObjectTagging><TagSet>");
  for (int i = 1; i < c->nargs; i++) {
    const char *eq = strchr(c->args[i], '=');
    if (eq == NULL || eq == c->args[i]) {
      buf_release(&b);
      return cli_usage_error("batch", usage, "'%s' is not a KEY=VALUE tag", c->args[i]);
    }
    buf_puts(&b, "<member>");
    buf_xml_elem(&b, "Key", arena_strndup(c->a, c->args[i], (size_t)(eq - c->args[i])));
    buf_xml_elem(&b, "Value", eq + 1);
    buf_puts(&b, "</member>");
  }
  buf_puts(&b, "</TagSet></S3PutObjectTagging></Operation>"
               "<Report><Enabled>false</Enabled></Report>");
  char token[37];
  uuid_v4(token);
  buf_xml_elem(&b, "ClientRequestToken", token);
  buf_xml_elem(&b, "Priority", "10");
  buf_xml_elem(&b, "RoleArn", ROLE);
  buf_puts(&b, "<ManifestGenerator><S3JobManifestGenerator>");
  buf_xml_elem(&b, "SourceBucket", arena_sprintf(c->a, "arn:aws:s3:::%s", bucket));
  buf_puts(&b, "<EnableManifestOutput>false</EnableManifestOutput>");
  if (prefix != NULL) {
    buf_puts(&b, "<Filter><KeyNameConstraint><MatchAnyPrefix>");
    buf_xml_elem(&b, "Prefix", prefix);
    buf_puts(&b, "</MatchAnyPrefix></KeyNameConstraint></Filter>");
  }
  buf_puts(&b, "</S3JobManifestGenerator></ManifestGenerator></CreateJobRequest>");
  int rc = 0;
  xml_node *r = call(c, "CreateJob", "POST", "/v20180820/jobs", b.data, &rc);
  buf_release(&b);
  if (r == NULL)
    return rc;
  printf("%s\n", text_at(r, "JobId", NULL));
  return 0;
}

int cli_batch(int argc, char **argv)
{
  cli_args args;
  int rc = cli_args_init(&args, "batch", usage, argc, argv);
  if (rc >= 0) {
    cli_args_release(&args);
    return rc;
  }
  static const struct {
    const char *name;
    int (*run)(ctx *c);
    int min_args;
  } cmds[] = {{"ls", b_ls, 0},           {"show", b_show, 1},     {"tag", b_tag, 2},
              {"confirm", b_confirm, 1}, {"cancel", b_cancel, 1}};
  const char *cmd = args.argv[0];
  int found = -1;
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (strcmp(cmds[i].name, cmd) == 0)
      found = (int)i;
  ctx c = {.a = arena_new(), .args = args.argv + 1, .nargs = args.argc - 1};
  if (found < 0)
    rc = cli_usage_error("batch", usage, "unknown command '%s'", cmd);
  else if (c.nargs < cmds[found].min_args)
    rc = cli_usage_error("batch", usage, "%s needs %s", cmd,
                         strcmp(cmd, "tag") == 0 ? "BUCKET[/PREFIX] and K=V tags" : "a job ID");
  else if (strcmp(cmd, "tag") != 0 && c.nargs > cmds[found].min_args)
    rc = cli_usage_error("batch", usage, "too many arguments");
  if (rc < 0) {
    err e = {0};
    if (cli_target_init(&c.t, args.dir, &e) != 0)
      rc = cli_fail("batch", "%s", e.msg);
    else
      rc = cmds[found].run(&c);
  }
  arena_free(c.a);
  cli_args_release(&args);
  return rc;
}
