/* cli/cli.c -- credentials and the `tarn env` command.
 *
 * Why: the server and every client command must agree on where the keys
 * live; the credentials file uses the AWS shared-credentials format, so
 * AWS_SHARED_CREDENTIALS_FILE can point at it directly.
 *
 * Invariants:
 *   (1) The credentials file is created with mode 0600 by O_EXCL and
 *       written whole, then fsync'd; an existing file is never rewritten.
 */
#include "cli/cli.h"
#include "cli/command.h"

#include "base/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_make_dir(const char *dir, err *e)
{
  char path[4096];
  if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
    return err_set(e, ERR_INVALID, "data directory path '%s' is too long", dir);
  for (char *p = path + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
      return err_set(e, ERR_IO, "cannot create '%s': %s", path, strerror(errno));
    *p = '/';
  }
  if (mkdir(path, 0700) != 0 && errno != EEXIST)
    return err_set(e, ERR_IO, "cannot create '%s': %s", path, strerror(errno));
  return 0;
}

static bool copy_key(char *dst, const char *src)
{
  size_t n = strlen(src);
  if (n == 0 || n > CLI_KEY_MAX)
    return false;
  memcpy(dst, src, n + 1);
  return true;
}

/* Reads aws_access_key_id / aws_secret_access_key from an AWS-style file. */
static int read_file(const char *path, cli_credentials *out, err *e)
{
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return err_set(e, errno == ENOENT ? ERR_NOT_FOUND : ERR_IO, "cannot read '%s': %s", path,
                   strerror(errno));
  char line[512];
  bool ak = false, sk = false;
  while (fgets(line, sizeof line, f) != NULL) {
    char *eq = strchr(line, '=');
    if (eq == NULL)
      continue;
    char *name = line, *value = eq + 1;
    *eq = '\0';
    while (*name == ' ' || *name == '\t')
      name++;
    for (char *t = eq - 1; t >= name && (*t == ' ' || *t == '\t'); t--)
      *t = '\0';
    while (*value == ' ' || *value == '\t')
      value++;
    value[strcspn(value, " \t\r\n")] = '\0';
    if (strcmp(name, "aws_access_key_id") == 0)
      ak = copy_key(out->access_key, value);
    else if (strcmp(name, "aws_secret_access_key") == 0)
      sk = copy_key(out->secret_key, value);
  }
  fclose(f);
  if (!ak || !sk)
    return err_set(e, ERR_INVALID, "'%s' lacks aws_access_key_id or aws_secret_access_key", path);
  return 0;
}

static void random_text(char *out, size_t n, const char *alphabet)
{
  size_t m = strlen(alphabet);
  uint8_t r[64];
  if (n > sizeof r)
    abort();
  random_bytes(r, n);
  for (size_t i = 0; i < n; i++)
    out[i] = alphabet[r[i] % m]; /* 256 % m bias is negligible for keys this long */
  out[n] = '\0';
}

static int create_file(const char *path, cli_credentials *out, err *e)
{
  memcpy(out->access_key, "TARN", 4);
  random_text(out->access_key + 4, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
  random_text(out->secret_key, 40,
              "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return err_set(e, ERR_IO, "cannot create '%s': %s", path, strerror(errno));
  char text[512];
  int n = snprintf(text, sizeof text,
                   "# tarn credentials (AWS shared-credentials format)\n"
                   "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
                   out->access_key, out->secret_key);
  bool ok = write(fd, text, (size_t)n) == n && fsync(fd) == 0;
  close(fd);
  if (!ok) {
    unlink(path);
    return err_set(e, ERR_IO, "cannot write '%s'", path);
  }
  return 0;
}

int cli_credentials_load(const char *dir, bool create, cli_credentials *out, bool *created,
                         err *e)
{
  if (created)
    *created = false;
  const char *ak = getenv("TARN_ACCESS_KEY");
  const char *sk = getenv("TARN_SECRET_KEY");
  if (ak != NULL && sk != NULL) {
    if (!copy_key(out->access_key, ak) || !copy_key(out->secret_key, sk))
      return err_set(e, ERR_INVALID, "TARN_ACCESS_KEY and TARN_SECRET_KEY must be 1-%d characters",
                     CLI_KEY_MAX);
    return 0;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/credentials", dir);
  int rc = read_file(path, out, e);
  if (rc != ERR_NOT_FOUND || !create)
    return rc;
  err_clear(e);
  if ((rc = create_file(path, out, e)) != 0)
    return rc;
  if (created)
    *created = true;
  return 0;
}

int cli_credentials_client(const char *dir, cli_credentials *out, err *e)
{
  const char *pairs[][2] = {{"TARN_ACCESS_KEY", "TARN_SECRET_KEY"},
                            {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}};
  for (size_t i = 0; i < 2; i++) {
    const char *ak = getenv(pairs[i][0]), *sk = getenv(pairs[i][1]);
    if (ak != NULL && sk != NULL && copy_key(out->access_key, ak) && copy_key(out->secret_key, sk))
      return 0;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/credentials", dir);
  return read_file(path, out, e);
}

int cli_env(int argc, char **argv)
{
  const char *dir = "./tarn-data";
  const char *endpoint = getenv("TARN_ENDPOINT");
  char url[300];
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
      dir = argv[++i];
    } else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
      snprintf(url, sizeof url, "http://%s", argv[++i]);
      endpoint = url;
    } else {
      cli_fail("env", "unknown argument '%s'", argv[i]);
      return 2;
    }
  }
  if (endpoint == NULL)
    endpoint = "http://127.0.0.1:9000";
  cli_credentials c;
  err e = {0};
  /* The server's own keys (TARN_* or the file), never a stray AWS_* pair. */
  if (cli_credentials_load(dir, false, &c, NULL, &e) != 0)
    return cli_fail("env", "%s", e.msg);
  printf("export AWS_ACCESS_KEY_ID=%s\n"
         "export AWS_SECRET_ACCESS_KEY=%s\n"
         "export AWS_DEFAULT_REGION=us-east-1\n"
         "export AWS_REGION=us-east-1\n"
         "export AWS_ENDPOINT_URL=%s\n"
         "export TARN_ENDPOINT=%s\n",
         c.access_key, c.secret_key, endpoint, endpoint);
  return 0;
}
