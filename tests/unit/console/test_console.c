/* tests/unit/console/test_console.c -- the embedded console files
 * (console/console.c and the table embed.py generates): every file is
 * there with its type and its bytes, and no name outside the table (a path,
 * a dot-dot, an empty name) is ever found. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "console/console.h"

#include <string.h>

static void test_files(void **state)
{
  static const char *const names[] = {"index.html", "style.css", "sigv4.js", "aws.js", "app.js"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    const console_asset *a = console_asset_find(names[i]);
    assert_non_null(a);
    assert_string_equal(a->name, names[i]);
    assert_true(a->len > 100);
    assert_int_equal(a->data[a->len], 0); /* NUL after the bytes */
    assert_int_equal(strlen((const char *)a->data), a->len); /* text: no NUL inside */
  }
  assert_string_equal(console_asset_find("index.html")->content_type, "text/html; charset=utf-8");
  assert_string_equal(console_asset_find("app.js")->content_type, "text/javascript; charset=utf-8");
  assert_string_equal(console_asset_find("style.css")->content_type, "text/css; charset=utf-8");
  assert_non_null(strstr((const char *)console_asset_find("index.html")->data, "app.js"));
}

static void test_names_outside(void **state)
{
  static const char *const bad[] = {"", "/", "../index.html", "x/app.js", "/app.js", "app.js/",
                                    "APP.JS", "app", "app.js ", "meson.build", "embed.py"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_null(console_asset_find(bad[i]));
  assert_null(console_asset_find(NULL));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_files),
      cmocka_unit_test(test_names_outside),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
