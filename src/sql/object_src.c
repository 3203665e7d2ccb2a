/* sql/object_src.c -- one given object as the engine's only object source
 * (sql_options.object: S3 Select's `FROM S3Object`).
 *
 * Why: S3 Select runs a query over exactly one object that the caller was
 * allowed to read (s3:GetObject), with the reader's options from the
 * request; the binder resolves the table name to this source
 * (bind_from.c, bind_object_source), and the rest of the engine reads it
 * as any other object.
 *
 * Invariants:
 *   (1) Nothing but the given object can be listed or opened: a query that
 *       names another table ('s3://...', read_csv(...)) fails, so S3 Select
 *       never reads past what its caller was authorized for.
 *   (2) Read-only: COPY has no writer here.
 */
#include "exec.h"

#include <fcntl.h>
#include <string.h>

static int object_list(void *ctx, const char *bucket, const char *prefix, objsrc_list_fn fn,
                       void *arg, err *e)
{
  const sql_object_source *o = ctx;
  if (strcmp(bucket, SQL__OBJECT_BUCKET) != 0)
    return err_set(e, ERR_INVALID, "only the table '%s' can be read here, not 's3://%s/%s'",
                   o->name, bucket, prefix);
  if (strncmp("object", prefix, strlen(prefix)) != 0)
    return 0;
  return fn(arg, "object", o->size);
}

static int object_open(void *ctx, const char *bucket, const char *key, int *fd, uint64_t *size,
                       err *e)
{
  const sql_object_source *o = ctx;
  if (strcmp(bucket, SQL__OBJECT_BUCKET) != 0 || strcmp(key, "object") != 0)
    return err_set(e, ERR_INVALID, "only the table '%s' can be read here", o->name);
  *fd = fcntl(o->fd, F_DUPFD_CLOEXEC, 0);
  if (*fd < 0)
    return err_set(e, ERR_IO, "cannot open the object of '%s'", o->name);
  *size = o->size;
  return 0;
}

void sql__objsrc_object(sql_objsrc *out, const sql_object_source *o)
{
  memset(out, 0, sizeof *out);
  out->ctx = (void *)o;
  out->list = object_list;
  out->open = object_open;
}
