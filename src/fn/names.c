/* fn/names.c -- function names, ARNs, qualifiers and settings: parsing
 * and validation.
 *
 * Why: every name and setting a client sends is checked here, before the
 * registry takes a lock, with the messages Lambda answers, so that bad
 * input gets a clear error and changes nothing.
 *
 * Invariants:
 *   (1) Nothing here touches the registry or takes a lock: the checks are
 *       functions of their input only.
 *   (2) A name accepted here fits fn_entry.name (64 characters); a numeric
 *       qualifier has at most 10 digits; an alias name is never all digits
 *       (it would read as a version).
 *
 * Start reading at fn_name_parse() and fn__validate().
 */
#include "fn/internal.h"
#include "fn/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reserved_env[] = {
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", NULL};

/* ---- names and validation ---- */

bool fn__name_ok(const char *n)
{
  size_t len = strlen(n);
  if (len == 0 || len > 64)
    return false;
  for (const char *c = n; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
          *c == '-' || *c == '_'))
      return false;
  return true;
}

bool fn__all_digits(const char *s)
{
  if (*s == '\0')
    return false;
  for (; *s; s++)
    if (*s < '0' || *s > '9')
      return false;
  return true;
}

/* A listing's page: the decimal marker (NULL or "": the start) into
 * *start, and max (0 or over 50: 50, as Lambda) into *max. */
int fn__page_args(const char *marker, size_t *start, size_t *max, err *e)
{
  *start = 0;
  if (marker != NULL && *marker) {
    if (!fn__all_digits(marker))
      return err_set(e, ERR_INVALID, "invalid marker '%s'", marker);
    *start = strtoul(marker, NULL, 10);
  }
  if (*max == 0 || *max > 50)
    *max = 50;
  return 0;
}

bool fn__alias_name_ok(const char *n)
{
  return strlen(n) <= 128 && fn__name_ok(n) && !fn__all_digits(n);
}

static bool qualifier_ok(const char *q)
{
  if (strcmp(q, "$LATEST") == 0)
    return true;
  if (fn__all_digits(q))
    return strlen(q) <= 10;
  return fn__alias_name_ok(q);
}

int fn_name_parse(const char *ref, const char *qualifier, arena *a, const char **name,
                  const char **qual, err *e)
{
  if (ref == NULL || *ref == '\0' || strlen(ref) > 170)
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at 'functionName' "
                                   "failed to satisfy constraint: Member must satisfy regular "
                                   "expression pattern", ref ? ref : "");
  char *parts[8];
  size_t n = 0;
  char *copy = arena_strdup(a, ref);
  for (char *p = copy;;) {
    if (n == 8)
      return err_set(e, ERR_INVALID, "invalid function name '%s'", ref);
    parts[n++] = p;
    char *colon = strchr(p, ':');
    if (colon == NULL)
      break;
    *colon = '\0';
    p = colon + 1;
  }
  const char *nm = NULL;
  const char *q = NULL;
  if (strcmp(parts[0], "arn") == 0) {
    if (n < 7 || n > 8 || strcmp(parts[2], "lambda") != 0 || strcmp(parts[5], "function") != 0)
      return err_set(e, ERR_INVALID, "invalid function ARN '%s'", ref);
    nm = parts[6];
    q = n == 8 ? parts[7] : NULL;
  } else if (n >= 3 && strcmp(parts[1], "function") == 0) {
    if (n > 4)
      return err_set(e, ERR_INVALID, "invalid function name '%s'", ref);
    nm = parts[2];
    q = n == 4 ? parts[3] : NULL;
  } else if (n <= 2) {
    nm = parts[0];
    q = n == 2 ? parts[1] : NULL;
  } else {
    return err_set(e, ERR_INVALID, "invalid function name '%s'", ref);
  }
  if (!fn__name_ok(nm))
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at 'functionName' "
                                   "failed to satisfy constraint: Member must satisfy regular "
                                   "expression pattern", ref);
  if (qualifier != NULL && *qualifier != '\0') {
    if (q != NULL && strcmp(q, qualifier) != 0)
      return err_set(e, ERR_INVALID, "The derived qualifier from the function name does not "
                                     "match the specified qualifier.");
    q = qualifier;
  }
  if (q != NULL && !qualifier_ok(q))
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at 'qualifier' failed "
                                   "to satisfy constraint: Member must satisfy regular "
                                   "expression pattern: (|[a-zA-Z0-9$_-]+)", q);
  *name = nm;
  *qual = q;
  return 0;
}

static bool runtime_ok(const char *r)
{
  if (strcmp(r, "provided") == 0 || strcmp(r, "provided.al2") == 0 ||
      strcmp(r, "provided.al2023") == 0)
    return true;
  if (str_starts(r, "python3.") && fn__all_digits(r + 8))
    return true;
  /* Lambda's Ruby runtimes; each runs on the host's Ruby (registry.c) */
  if (strcmp(r, "ruby3.2") == 0 || strcmp(r, "ruby3.3") == 0 || strcmp(r, "ruby3.4") == 0)
    return true;
  /* and Java's, run on the host's JDK */
  if (strcmp(r, "java17") == 0 || strcmp(r, "java21") == 0)
    return true;
  size_t n = strlen(r);
  if (str_starts(r, "nodejs") && n > 8 && strcmp(r + n - 2, ".x") == 0) {
    for (size_t i = 6; i < n - 2; i++)
      if (r[i] < '0' || r[i] > '9')
        return false;
    return true;
  }
  return false;
}

int fn__validate(const fn_settings *set, bool creating, err *e)
{
  if (set->runtime != NULL && !runtime_ok(set->runtime))
    return err_set(e, ERR_INVALID,
                   "Value %s at 'runtime' failed to satisfy constraint: Member must satisfy "
                   "enum value set: [python3.x, nodejs*.x, ruby3.2, ruby3.3, ruby3.4, java17, java21, provided, provided.al2, "
                   "provided.al2023] or be a valid ARN",
                   set->runtime);
  if (creating && set->runtime == NULL)
    return err_set(e, ERR_INVALID, "Runtime is required for .zip file packages");
  if (set->handler != NULL) {
    size_t n = strlen(set->handler);
    if (n > 128 || strpbrk(set->handler, " \t\r\n") != NULL)
      return err_set(e, ERR_INVALID, "Value '%s' at 'handler' failed to satisfy constraint: "
                                     "Member must satisfy regular expression pattern: [^\\s]+",
                     set->handler);
  }
  if (set->memory_mb != 0 && (set->memory_mb < 128 || set->memory_mb > 10240))
    return err_set(e, ERR_INVALID, "'MemorySize' value failed to satisfy constraint: Member must "
                                   "have value greater than or equal to 128 and less than or "
                                   "equal to 10240");
  if (set->timeout_s != 0 && set->timeout_s > 900)
    return err_set(e, ERR_INVALID, "Value '%u' at 'timeout' failed to satisfy constraint: Member "
                                   "must have value less than or equal to 900", set->timeout_s);
  if (set->ephemeral_mb != 0 && (set->ephemeral_mb < 512 || set->ephemeral_mb > 10240))
    return err_set(e, ERR_INVALID, "Value '%u' at 'ephemeralStorage.size' failed to satisfy "
                                   "constraint: Member must have value between 512 and 10240",
                   set->ephemeral_mb);
  if (set->description != NULL && strlen(set->description) > 256)
    return err_set(e, ERR_INVALID, "Value at 'description' failed to satisfy constraint: Member "
                                   "must have length less than or equal to 256");
  if (set->role != NULL && strlen(set->role) > 2048)
    return err_set(e, ERR_INVALID, "Value at 'role' failed to satisfy constraint: Member must "
                                   "have length less than or equal to 2048");
  if (set->architecture != NULL && strcmp(set->architecture, "x86_64") != 0 &&
      strcmp(set->architecture, "arm64") != 0)
    return err_set(e, ERR_INVALID, "Value '%s' at 'architectures' failed to satisfy constraint: "
                                   "Member must satisfy enum value set: [x86_64, arm64]",
                   set->architecture);
  if (set->set_env) {
    size_t total = 0;
    for (size_t i = 0; i < set->nenv; i++) {
      const char *k = set->env[i].name;
      const char *v = set->env[i].value ? set->env[i].value : "";
      bool ok = (k[0] >= 'a' && k[0] <= 'z') || (k[0] >= 'A' && k[0] <= 'Z');
      for (const char *c = k; *c && ok; c++)
        ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
             *c == '_';
      if (!ok || strlen(k) < 2)
        return err_set(e, ERR_INVALID, "Lambda was unable to configure your environment "
                                       "variables because the environment variables you have "
                                       "provided contains invalid keys: '%s'", k);
      for (size_t r = 0; reserved_env[r] != NULL; r++)
        if (strcmp(k, reserved_env[r]) == 0)
          return err_set(e, ERR_INVALID,
                         "Lambda was unable to configure your environment variables because "
                         "the environment variables you have provided contains reserved keys "
                         "that are currently not supported for modification. Reserved keys "
                         "used in this request: %s", k);
      total += strlen(k) + strlen(v);
    }
    if (total > FN_MAX_ENV_BYTES)
      return err_set(e, ERR_INVALID, "Lambda was unable to configure your environment variables "
                                     "because the environment variables you have provided "
                                     "exceeded the 4KB limit. String measured: %zu bytes", total);
  }
  return 0;
}
