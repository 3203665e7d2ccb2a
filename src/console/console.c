/* console/console.c -- finds the web console's embedded files by name.
 *
 * Why: the HTTP side (api/console.c) asks for a file by the last part of
 * the path; this keeps the generated table behind one lookup.
 *
 * Invariants:
 *   (1) Only names in console_assets[] are ever answered: a name with '/'
 *       or anything not embedded is not found, so no path reaches the disk.
 */
#include "console/console.h"

#include <string.h>

const console_asset *console_asset_find(const char *name)
{
  if (name == NULL || strchr(name, '/') != NULL)
    return NULL;
  for (const console_asset *a = console_assets; a->name != NULL; a++)
    if (strcmp(a->name, name) == 0)
      return a;
  return NULL;
}
