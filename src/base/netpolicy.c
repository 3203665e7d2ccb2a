/* base/netpolicy.c -- the outbound-address policy: which addresses tarn may
 * connect to on a caller's behalf (see netpolicy.h for why).
 *
 * Every address is compared in one form: IPv6, with IPv4 as ::ffff:a.b.c.d.
 * An IPv6 address that carries an IPv4 one (mapped ::ffff:0:0/96,
 * compatible ::/96, NAT64 64:ff9b::/96, 6to4 2002::/16) is judged by the
 * IPv4 address inside as well, since that is where the packets may go.
 *
 * Invariants:
 *   (1) Refusing is the default: an address is allowed only when it is in
 *       no range of the table, or an allowed entry matches it.
 *   (2) An allowed entry without a port never allows the server's own
 *       listen address: only an entry that names that port does.
 *   (3) The policy is read-only once built; checks take no lock.
 *
 * Start reading at netpolicy_addr_check().
 */
#include "netpolicy.h"

#include "base/mem.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct allow_entry {
  char host[NETPOLICY_HOST_MAX];          /* a name, lower-case, no trailing dot; "" for addresses */
  bool is_addr;                           /* addr is set, host is not */
  struct in6_addr addr;                   /* the allowed address (IPv4 mapped) */
  unsigned port;                          /* 0: any port but the server's own (2) */
} allow_entry;

struct netpolicy {
  allow_entry allow[NETPOLICY_MAX_ALLOW];
  size_t nallow;
  unsigned self_port;                     /* 0: no self address known */
  bool self_any;                          /* listening on every local address */
  struct in6_addr self_addr;              /* when !self_any */
};

/* IPv4 special-purpose ranges (RFC 6890 and friends), most specific first. */
static const struct {
  uint32_t net;
  unsigned bits;
  const char *name;
} v4_ranges[] = {
  {0xffffffffu, 32, "broadcast"},
  {0x00000000u, 8, "unspecified (0.0.0.0/8)"},
  {0x0a000000u, 8, "private (RFC 1918)"},
  {0x64400000u, 10, "shared carrier-grade NAT (100.64.0.0/10)"},
  {0x7f000000u, 8, "loopback"},
  {0xa9fe0000u, 16, "link-local"},
  {0xac100000u, 12, "private (RFC 1918)"},
  {0xc0000000u, 24, "IETF protocol assignments (192.0.0.0/24)"},
  {0xc0a80000u, 16, "private (RFC 1918)"},
  {0xc6120000u, 15, "benchmarking (198.18.0.0/15)"},
  {0xe0000000u, 4, "multicast"},
  {0xf0000000u, 4, "reserved (240.0.0.0/4)"},
};

static const char *v4_range(uint32_t a)
{
  for (size_t i = 0; i < sizeof v4_ranges / sizeof v4_ranges[0]; i++) {
    uint32_t mask = v4_ranges[i].bits == 0 ? 0 : 0xffffffffu << (32 - v4_ranges[i].bits);
    if ((a & mask) == v4_ranges[i].net)
      return v4_ranges[i].name;
  }
  return NULL;
}

static uint32_t be32_at(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool zero(const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0)
      return false;
  return true;
}

static const char *v6_range(const struct in6_addr *in)
{
  const uint8_t *b = in->s6_addr;
  if (zero(b, 16))
    return "unspecified";
  if (zero(b, 15) && b[15] == 1)
    return "loopback";
  if (zero(b, 10) && b[10] == 0xff && b[11] == 0xff) /* IPv4-mapped */
    return v4_range(be32_at(b + 12));
  if (zero(b, 12)) /* IPv4-compatible (deprecated) */
    return v4_range(be32_at(b + 12));
  static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
  if (memcmp(b, nat64, 12) == 0)
    return v4_range(be32_at(b + 12));
  if (b[0] == 0x20 && b[1] == 0x02) /* 6to4: the IPv4 gateway in bits 16-47 */
    return v4_range(be32_at(b + 2));
  if ((b[0] & 0xfe) == 0xfc)
    return "unique-local (fc00::/7)";
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
    return "link-local (fe80::/10)";
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
    return "site-local (fec0::/10)";
  if (b[0] == 0xff)
    return "multicast";
  return NULL;
}

/* sa as one IPv6 address (IPv4 mapped) and its port; false for other families. */
static bool normalize(const struct sockaddr *sa, socklen_t len, struct in6_addr *out,
                      unsigned *port)
{
  if (sa == NULL)
    return false;
  if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
    memset(out, 0, sizeof *out);
    out->s6_addr[10] = 0xff;
    out->s6_addr[11] = 0xff;
    memcpy(out->s6_addr + 12, &s4->sin_addr, 4);
    *port = ntohs(s4->sin_port);
    return true;
  }
  if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    *out = s6->sin6_addr;
    *port = ntohs(s6->sin6_port);
    return true;
  }
  return false;
}

const char *netpolicy_addr_range(const struct sockaddr *sa, socklen_t len)
{
  struct in6_addr a;
  unsigned port;
  if (!normalize(sa, len, &a, &port))
    return "not an internet address";
  return v6_range(&a);
}

/* "[::1]" -> "::1", "Example.COM." -> "example.com"; false when too long. */
static bool host_clean(const char *host, char *out, size_t n)
{
  size_t l = strlen(host);
  if (l >= 2 && host[0] == '[' && host[l - 1] == ']') {
    host++;
    l -= 2;
  }
  const char *zone = memchr(host, '%', l); /* fe80::1%eth0 */
  if (zone != NULL)
    l = (size_t)(zone - host);
  if (l > 0 && host[l - 1] == '.')
    l--;
  if (l == 0 || l >= n)
    return false;
  for (size_t i = 0; i < l; i++)
    out[i] = (char)tolower((unsigned char)host[i]);
  out[l] = '\0';
  return true;
}

/* An address literal, in every form getaddrinfo accepts ("127.1" and
 * "0x7f000001" included, through inet_aton). */
static bool literal(const char *clean, struct in6_addr *out)
{
  if (inet_pton(AF_INET6, clean, out) == 1)
    return true;
  struct in_addr v4;
  if (inet_aton(clean, &v4) == 1) {
    memset(out, 0, sizeof *out);
    out->s6_addr[10] = 0xff;
    out->s6_addr[11] = 0xff;
    memcpy(out->s6_addr + 12, &v4, 4);
    return true;
  }
  return false;
}

netpolicy *netpolicy_new(void)
{
  netpolicy *p = xcalloc(1, sizeof *p);
  return p;
}

netpolicy *netpolicy_free(netpolicy *p)
{
  free(p);
  return NULL;
}

static int allow_one(netpolicy *p, const char *entry, size_t n, err *e)
{
  char text[NETPOLICY_HOST_MAX + 16];
  if (n >= sizeof text)
    return err_set(e, ERR_INVALID, "allowed endpoint '%.*s' is too long", (int)n, entry);
  memcpy(text, entry, n);
  text[n] = '\0';
  if (p->nallow >= NETPOLICY_MAX_ALLOW)
    return err_set(e, ERR_INVALID, "too many allowed endpoints (at most %d)", NETPOLICY_MAX_ALLOW);
  char *host = text;
  char *port_text = NULL;
  if (text[0] == '[') {
    char *close = strchr(text, ']');
    if (close == NULL || (close[1] != '\0' && close[1] != ':'))
      return err_set(e, ERR_INVALID, "allowed endpoint '%s' is not HOST[:PORT]", text);
    host = text + 1;
    *close = '\0';
    if (close[1] == ':')
      port_text = close + 2;
  } else {
    char *colon = strchr(text, ':');
    if (colon != NULL && strchr(colon + 1, ':') == NULL) { /* one colon: HOST:PORT */
      *colon = '\0';
      port_text = colon + 1;
    }
  }
  allow_entry *a = &p->allow[p->nallow];
  memset(a, 0, sizeof *a);
  if (port_text != NULL) {
    char *end = NULL;
    unsigned long v = strtoul(port_text, &end, 10);
    if (port_text[0] == '\0' || *end != '\0' || v == 0 || v > 65535)
      return err_set(e, ERR_INVALID, "allowed endpoint '%.*s' has a bad port", (int)n, entry);
    a->port = (unsigned)v;
  }
  char clean[NETPOLICY_HOST_MAX];
  if (!host_clean(host, clean, sizeof clean))
    return err_set(e, ERR_INVALID, "allowed endpoint '%.*s' has no host", (int)n, entry);
  for (const char *c = clean; *c != '\0'; c++)
    if (!isalnum((unsigned char)*c) && strchr(".-_:", *c) == NULL)
      return err_set(e, ERR_INVALID, "allowed endpoint '%.*s' is not HOST[:PORT]", (int)n, entry);
  if (literal(clean, &a->addr))
    a->is_addr = true;
  else
    snprintf(a->host, sizeof a->host, "%s", clean);
  p->nallow++;
  return 0;
}

int netpolicy_allow(netpolicy *p, const char *list, err *e)
{
  const char *s = list;
  while (*s != '\0') {
    size_t skip = strspn(s, ", \t\n");
    s += skip;
    size_t n = strcspn(s, ", \t\n");
    if (n == 0)
      break;
    int rc = allow_one(p, s, n, e);
    if (rc != 0)
      return rc;
    s += n;
  }
  return 0;
}

int netpolicy_self(netpolicy *p, const char *host, unsigned port, err *e)
{
  p->self_port = port;
  p->self_any = true;
  char clean[NETPOLICY_HOST_MAX];
  if (host == NULL || host[0] == '\0' || !host_clean(host, clean, sizeof clean))
    return 0;
  if (strcmp(clean, "localhost") == 0)
    snprintf(clean, sizeof clean, "127.0.0.1");
  struct in6_addr a;
  if (!literal(clean, &a))
    return err_set(e, ERR_INVALID, "listen address '%s' is not an IP address", host);
  const char *r = v6_range(&a);
  if (r != NULL && strncmp(r, "unspecified", 11) == 0)
    return 0; /* "::", "0.0.0.0" */
  p->self_any = false;
  p->self_addr = a;
  return 0;
}

/* Whether a is an address of this machine (for a server on every address). */
static bool local_address(const struct in6_addr *a)
{
  struct ifaddrs *list = NULL;
  if (getifaddrs(&list) != 0)
    return true; /* cannot tell: refuse rather than risk it */
  bool found = false;
  for (struct ifaddrs *i = list; i != NULL && !found; i = i->ifa_next) {
    struct in6_addr x;
    unsigned port;
    if (i->ifa_addr == NULL)
      continue;
    socklen_t len = i->ifa_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                       : sizeof(struct sockaddr_in);
    if (normalize(i->ifa_addr, len, &x, &port) && memcmp(&x, a, sizeof x) == 0)
      found = true;
  }
  freeifaddrs(list);
  return found;
}

static bool is_self(const netpolicy *p, const struct in6_addr *a, unsigned port)
{
  if (p->self_port == 0 || port != p->self_port)
    return false;
  if (!p->self_any)
    return memcmp(a, &p->self_addr, sizeof *a) == 0;
  return v6_range(a) != NULL || local_address(a);
}

static const allow_entry *allowed(const netpolicy *p, const char *host,
                                  const struct in6_addr *a, unsigned port)
{
  char clean[NETPOLICY_HOST_MAX];
  bool named = host != NULL && host_clean(host, clean, sizeof clean);
  const allow_entry *any_port = NULL;
  for (size_t i = 0; i < p->nallow; i++) {
    const allow_entry *x = &p->allow[i];
    if (x->port != 0 && x->port != port)
      continue;
    if (x->is_addr ? memcmp(&x->addr, a, sizeof *a) != 0 : !named || strcmp(x->host, clean) != 0)
      continue;
    if (x->port != 0)
      return x; /* names the port: wins (2) */
    any_port = x;
  }
  return any_port;
}

static int check(const netpolicy *p, const char *host, const struct in6_addr *a, unsigned port,
                 err *e)
{
  char text[INET6_ADDRSTRLEN];
  const uint8_t *b = a->s6_addr;
  if (zero(b, 10) && b[10] == 0xff && b[11] == 0xff)
    inet_ntop(AF_INET, b + 12, text, sizeof text);
  else
    inet_ntop(AF_INET6, a, text, sizeof text);
  const char *shown = host != NULL ? host : text;
  const allow_entry *x = allowed(p, host, a, port);
  bool self = is_self(p, a, port);
  if (x != NULL && (!self || x->port != 0)) /* (2) */
    return 0;
  if (self)
    return err_set(e, ERR_DENIED, "endpoint '%s' (%s port %u) is the server's own address; %s",
                   shown, text, port, NETPOLICY_HINT);
  const char *range = v6_range(a);
  if (range != NULL)
    return err_set(e, ERR_DENIED, "endpoint '%s' (%s) is a %s address; %s", shown, text, range,
                   NETPOLICY_HINT);
  return 0; /* (1): a public address */
}

int netpolicy_addr_check(const netpolicy *p, const char *host, const struct sockaddr *sa,
                         socklen_t len, err *e)
{
  struct in6_addr a;
  unsigned port = 0;
  if (!normalize(sa, len, &a, &port))
    return err_set(e, ERR_DENIED, "endpoint '%s' is not an internet address",
                   host != NULL ? host : "?");
  if (p == NULL) {
    static const netpolicy strict; /* no policy: the defaults */
    p = &strict;
  }
  return check(p, host, &a, port, e);
}

int netpolicy_host_check(const netpolicy *p, const char *host, unsigned port, err *e)
{
  char clean[NETPOLICY_HOST_MAX];
  struct in6_addr a;
  if (host == NULL || !host_clean(host, clean, sizeof clean))
    return err_set(e, ERR_DENIED, "endpoint has no host");
  if (!literal(clean, &a))
    return 0; /* a name: judged once resolved */
  if (p == NULL) {
    static const netpolicy strict;
    p = &strict;
  }
  return check(p, host, &a, port, e);
}
