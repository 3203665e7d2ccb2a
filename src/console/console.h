/* console/console.h -- the web console's files, embedded in the binary.
 *
 * The files of src/console/ (HTML, CSS, JavaScript) are compiled into
 * console_assets[] at build time (embed.py), so the console needs nothing on
 * disk and always matches the server that serves it. The page holds no
 * secret and no private API: it signs the same AWS calls the CLI makes.
 */
#ifndef TARN_CONSOLE_CONSOLE_H
#define TARN_CONSOLE_CONSOLE_H

#include <stddef.h>

typedef struct console_asset {
  const char *name;                 /* base name: "index.html", "app.js" */
  const char *content_type;         /* from the file's extension */
  const unsigned char *data;        /* the file's bytes (NUL after the end) */
  size_t len;                       /* bytes, without that NUL */
} console_asset;

/* Every embedded file, ended by an entry whose name is NULL. */
extern const console_asset console_assets[];

/* The file called name (a base name, no '/'), or NULL. */
const console_asset *console_asset_find(const char *name);

#endif
