/* cli/conf.c -- the server's configuration file, read as the flags it
 * stands for.
 *
 * Why: a server's settings (the object backend's endpoint, bucket, prefix
 * and keys among them) belong in a file an operator keeps, not on a command
 * line every user of the machine can read. Each setting is a flag's name
 * without its dashes, so the file and the flags can never drift apart.
 *
 * Format: one `name = value` per line; `#` starts a comment line; blank
 * lines are skipped; a value may be in double quotes (kept as written
 * inside them); `[section]` lines are ignored, so a TOML or INI editor
 * can be used. Names may use '_' for '-'.
 *
 * Invariants:
 *   (1) A name not in the caller's list is refused, naming the line: a
 *       typo never silently leaves a default in place.
 *   (2) The file is at most CONF_MAX bytes.
 */
#include "conf.h"

#include "base/mem.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONF_MAX (64u << 10)

static char *trim(char *p)
{
  while (*p == ' ' || *p == '\t')
    p++;
  size_t n = strlen(p);
  while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
    p[--n] = '\0';
  return p;
}

static void push(int *argc, char ***argv, size_t *cap, char *s)
{
  if ((size_t)*argc + 2 > *cap) {
    *cap = *cap ? *cap * 2 : 16;
    *argv = xrealloc(*argv, *cap * sizeof **argv);
  }
  (*argv)[(*argc)++] = s;
  (*argv)[*argc] = NULL;
}

void cli_conf_free(int argc, char **argv)
{
  for (int i = 0; i < argc; i++)
    free(argv[i]);
  free(argv);
}

int cli_conf_args(const char *path, const char *const *known, int *argc, char ***argv, err *e)
{
  *argc = 0;
  *argv = NULL;
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return err_set(e, ERR_IO, "cannot read the configuration file '%s': %s", path,
                   strerror(errno));
  char *text = xmalloc(CONF_MAX + 1);
  size_t n = fread(text, 1, CONF_MAX + 1, f);
  fclose(f);
  if (n > CONF_MAX) {
    free(text);
    return err_set(e, ERR_ENTITY_TOO_LARGE, "the configuration file '%s' is over %u bytes",
                   path, CONF_MAX);
  }
  text[n] = '\0';
  size_t cap = 0;
  int rc = 0;
  int lineno = 0;
  for (char *line = text, *next; rc == 0 && line != NULL; line = next) {
    next = strchr(line, '\n');
    if (next != NULL)
      *next++ = '\0';
    lineno++;
    char *l = trim(line);
    if (*l == '\0' || *l == '#' || *l == '[')
      continue;
    char *eq = strchr(l, '=');
    if (eq == NULL) {
      rc = err_set(e, ERR_INVALID, "%s:%d: not `name = value`", path, lineno);
      break;
    }
    *eq = '\0';
    char *name = trim(l);
    char *value = trim(eq + 1);
    size_t vl = strlen(value);
    bool quoted = vl >= 2 && value[0] == '"' && value[vl - 1] == '"';
    if (quoted) {
      value[vl - 1] = '\0';
      value++;
    }
    for (char *c = name; *c; c++)
      if (*c == '_')
        *c = '-';
    bool ok = false;
    for (size_t i = 0; known[i] != NULL && !ok; i++)
      ok = strcmp(known[i], name) == 0;
    if (!ok || *name == '\0') {
      rc = err_set(e, ERR_INVALID, "%s:%d: unknown setting '%s'", path, lineno, name);
      break;
    }
    if (!quoted && strcmp(value, "false") == 0)
      continue;
    size_t fl = strlen(name) + 3;
    char *flag = xmalloc(fl);
    snprintf(flag, fl, "--%s", name);
    push(argc, argv, &cap, flag);
    if (quoted || strcmp(value, "true") != 0)
      push(argc, argv, &cap, xstrdup(value));
  }
  free(text);
  if (rc != 0) {
    cli_conf_free(*argc, *argv);
    *argc = 0;
    *argv = NULL;
  }
  return rc;
}
