/* tests/unit/base/test_netpolicy.c -- unit tests of base/netpolicy.c: the
 * ranges refused by default (IPv4, IPv6 and the IPv6 forms that carry an
 * IPv4 address), literal hosts in the forms getaddrinfo accepts, allowed
 * entries by name, address and port, and the server's own address.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/netpolicy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* A sockaddr for a literal address and port. */
static socklen_t sa_of(const char *ip, unsigned port, struct sockaddr_storage *ss)
{
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    return sizeof *s4;
  }
  assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
  s6->sin6_family = AF_INET6;
  s6->sin6_port = htons((uint16_t)port);
  return sizeof *s6;
}

static int check(const netpolicy *p, const char *host, const char *ip, unsigned port)
{
  struct sockaddr_storage ss;
  socklen_t len = sa_of(ip, port, &ss);
  err e = {0};
  int rc = netpolicy_addr_check(p, host, (struct sockaddr *)&ss, len, &e);
  if (rc != 0)
    assert_non_null(strstr(e.msg, "--allow-endpoint"));
  return rc;
}

static void test_refused_by_default(void **state)
{
  (void)state;
  static const char *const refused[] = {
    "127.0.0.1", "127.255.255.254", "0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255",
    "172.16.0.1", "172.31.255.255", "192.168.1.1", "100.64.0.1", "100.127.255.255",
    "169.254.169.254", "224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1",
    "::", "::1", "fc00::1", "fd12:3456::1", "fe80::1", "febf::1", "ff02::1", "fec0::1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "::ffff:0.0.0.0",
    "::127.0.0.1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "2002:a00:1::",
  };
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    if (check(NULL, NULL, refused[i], 80) != ERR_DENIED)
      fail_msg("'%s' was not refused", refused[i]);
  }
}

static void test_public_allowed(void **state)
{
  (void)state;
  static const char *const public[] = {
    "93.184.216.34", "8.8.8.8", "172.15.255.255", "172.32.0.1", "100.63.255.255",
    "100.128.0.1", "11.0.0.1", "192.169.0.1", "169.253.0.1", "2606:4700::1111",
    "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
  };
  for (size_t i = 0; i < sizeof public / sizeof public[0]; i++) {
    if (check(NULL, NULL, public[i], 443) != 0)
      fail_msg("'%s' was refused", public[i]);
  }
}

static void test_literal_hosts(void **state)
{
  (void)state;
  netpolicy *p = netpolicy_new();
  err e = {0};
  /* every spelling getaddrinfo turns into 127.0.0.1 */
  static const char *const loop[] = {"127.0.0.1", "127.1", "2130706433", "0x7f000001",
                                     "0177.0.0.1", "[::1]", "[::ffff:127.0.0.1]",
                                     "[0:0:0:0:0:ffff:7f00:1]", "127.0.0.1.", "[fe80::1%25eth0]"};
  for (size_t i = 0; i < sizeof loop / sizeof loop[0]; i++) {
    memset(&e, 0, sizeof e);
    if (netpolicy_host_check(p, loop[i], 80, &e) != ERR_DENIED)
      fail_msg("host '%s' was not refused", loop[i]);
  }
  /* names wait for their resolved address */
  assert_int_equal(netpolicy_host_check(p, "localhost", 80, &e), 0);
  assert_int_equal(netpolicy_host_check(p, "example.com", 80, &e), 0);
  assert_int_equal(netpolicy_host_check(p, "8.8.8.8", 80, &e), 0);
  const char *r = NULL;
  struct sockaddr_storage ss;
  socklen_t len = sa_of("169.254.169.254", 80, &ss);
  r = netpolicy_addr_range((struct sockaddr *)&ss, len);
  assert_string_equal(r, "link-local");
  netpolicy_free(p);
}

static void test_allow_entries(void **state)
{
  (void)state;
  netpolicy *p = netpolicy_new();
  err e = {0};
  assert_int_equal(netpolicy_allow(p, "localhost, 10.1.2.3:8080 [::1]:9999,fd00::7", &e), 0);
  /* a name allows whatever it resolves to, on any port */
  assert_int_equal(check(p, "localhost", "127.0.0.1", 1234), 0);
  assert_int_equal(check(p, "LOCALHOST.", "::1", 1234), 0);
  assert_int_equal(check(p, "other.test", "127.0.0.1", 1234), ERR_DENIED);
  /* an address with a port: that port only */
  assert_int_equal(check(p, "x", "10.1.2.3", 8080), 0);
  assert_int_equal(check(p, "x", "::ffff:10.1.2.3", 8080), 0);
  assert_int_equal(check(p, "x", "10.1.2.3", 8081), ERR_DENIED);
  assert_int_equal(check(p, NULL, "::1", 9999), 0);
  assert_int_equal(check(p, NULL, "::1", 80), ERR_DENIED);
  assert_int_equal(check(p, NULL, "fd00::7", 80), 0);
  assert_int_equal(netpolicy_host_check(p, "[fd00::7]", 80, &e), 0);
  assert_int_equal(netpolicy_host_check(p, "127.0.0.1", 80, &e), ERR_DENIED);

  static const char *const bad[] = {"a:b", "[::1", "[::1]x", "h:0", "h:70000", "h/x", ":80"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(&e, 0, sizeof e);
    if (netpolicy_allow(p, bad[i], &e) != ERR_INVALID)
      fail_msg("entry '%s' was accepted", bad[i]);
  }
  netpolicy_free(p);
}

static void test_self_refused(void **state)
{
  (void)state;
  netpolicy *p = netpolicy_new();
  err e = {0};
  assert_int_equal(netpolicy_allow(p, "127.0.0.1", &e), 0);
  assert_int_equal(netpolicy_self(p, "127.0.0.1", 9000, &e), 0);
  assert_int_equal(check(p, NULL, "127.0.0.1", 8000), 0);
  assert_int_equal(check(p, NULL, "127.0.0.1", 9000), ERR_DENIED); /* (2) */
  assert_int_equal(netpolicy_allow(p, "127.0.0.1:9000", &e), 0);
  assert_int_equal(check(p, NULL, "127.0.0.1", 9000), 0); /* named explicitly */
  netpolicy_free(p);

  p = netpolicy_new();
  assert_int_equal(netpolicy_allow(p, "localhost", &e), 0);
  assert_int_equal(netpolicy_self(p, "0.0.0.0", 9000, &e), 0);
  assert_int_equal(check(p, "localhost", "127.0.0.1", 9000), ERR_DENIED);
  assert_int_equal(check(p, "localhost", "127.0.0.1", 9001), 0);
  assert_int_equal(netpolicy_self(p, "not-an-ip", 9000, &e), ERR_INVALID);
  netpolicy_free(p);
  assert_null(netpolicy_free(NULL));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_refused_by_default),
    cmocka_unit_test(test_public_allowed),
    cmocka_unit_test(test_literal_hosts),
    cmocka_unit_test(test_allow_entries),
    cmocka_unit_test(test_self_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
