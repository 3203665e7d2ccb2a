/* base/netpolicy.h -- which network addresses tarn may connect to when it
 * fetches a URL on a caller's behalf (SNS HTTP/HTTPS deliveries today;
 * HTTP integrations, webhooks and code URLs later).
 *
 * A caller names the URL, tarn makes the connection: without a policy a
 * caller reaches what only the server can reach (its loopback services,
 * the cloud metadata endpoint, the private network). By default every
 * address of a special-purpose range (loopback, link-local, private,
 * carrier-grade NAT, unique-local, multicast, broadcast, unspecified,
 * reserved, and the IPv4-mapped, -compatible, NAT64 and 6to4 IPv6 forms of
 * them) and the server's own listen address are refused. The operator
 * allows hosts for local development ("tarn server --allow-endpoint
 * HOST[:PORT]", TARN_ALLOW_ENDPOINTS).
 *
 * The check that counts is on the resolved address at connect time
 * (netpolicy_addr_check, from libcurl's open-socket callback): a name that
 * resolves, or rebinds, to a refused address is refused there. The literal
 * check (netpolicy_host_check) lets an API refuse an endpoint early.
 *
 * A policy is built once at start-up and read-only afterwards: any thread
 * may check against it without a lock.
 */
#ifndef TARN_BASE_NETPOLICY_H
#define TARN_BASE_NETPOLICY_H

#include "err.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define NETPOLICY_MAX_ALLOW 64            /* allowed entries, at most */
#define NETPOLICY_HOST_MAX 256            /* bytes of a host name in an entry */

typedef struct netpolicy netpolicy;

/* An empty policy: every special-purpose address refused, no self. */
netpolicy *netpolicy_new(void);
/* Accepts NULL; returns NULL. */
netpolicy *netpolicy_free(netpolicy *p);

/* Adds allowed hosts: entries "HOST[:PORT]" separated by commas or spaces;
 * HOST is a name (matched against the URL's host, case-insensitively, so
 * "localhost" allows whatever it resolves to), an IPv4 address, or an IPv6
 * address (bare, or in brackets when a port follows). An entry without a
 * port allows every port but the server's own. */
int netpolicy_allow(netpolicy *p, const char *list, err *e);

/* The server's own listen address. host NULL, "", "0.0.0.0" or "::" means
 * every address of this machine (looked up at check time). */
int netpolicy_self(netpolicy *p, const char *host, unsigned port, err *e);

/* Connect time: may tarn connect to sa (the resolved address of the URL's
 * host, as given)? 0, or ERR_DENIED with the reason in e. */
int netpolicy_addr_check(const netpolicy *p, const char *host, const struct sockaddr *sa,
                         socklen_t len, err *e);

/* Request time: when host (as in a URL: brackets around IPv6 allowed) is
 * an address literal, checks it as netpolicy_addr_check would; a name
 * passes (it is checked once resolved). 0 or ERR_DENIED. */
int netpolicy_host_check(const netpolicy *p, const char *host, unsigned port, err *e);

/* The special-purpose range sa is in ("loopback", "private", ...), or
 * NULL for a public address. */
const char *netpolicy_addr_range(const struct sockaddr *sa, socklen_t len);

/* One sentence for error messages: how an operator allows a host. */
#define NETPOLICY_HINT                                                        \
  "tarn does not connect to loopback, link-local, private or other special-" \
  "purpose addresses on a caller's behalf unless the server allows the host " \
  "(tarn server --allow-endpoint HOST[:PORT], or TARN_ALLOW_ENDPOINTS)"

#endif
