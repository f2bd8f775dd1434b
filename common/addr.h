/* Addresses as users write them and as sockets carry them.
 *
 * host:port endpoints ("192.0.2.1:443", "[2001:db8::1]:443", "app.lan:8080"),
 * listen addresses (IP literals only), CIDR prefixes for bans and trusted
 * proxies, and formatting of socket addresses for logs, headers and the API.
 * Pure functions: no DNS, no allocation; inputs are (buf, len), not C strings,
 * so an embedded NUL is simply an invalid byte. */
#ifndef PT_ADDR_H
#define PT_ADDR_H

#include "common/pt.h"

#include <netinet/in.h>
#include <sys/socket.h>

#define PT_HOST_MAX 253 /* longest DNS name; IPv6 text is shorter */
#define PT_ADDRSTR_MAX 64 /* "[ffff:...:255.255.255.255]:65535" fits */

enum pt_host_kind {
    PT_HOST_IPV4 = 0, /* host is a dotted quad, sa holds it */
    PT_HOST_IPV6,     /* host is IPv6 text without brackets, sa holds it */
    PT_HOST_DNS,      /* host is a lowercase DNS name: resolve before use */
};

struct pt_hostport {
    enum pt_host_kind kind;
    char host[PT_HOST_MAX + 1]; /* NUL-terminated, lowercase for DNS names */
    uint16_t port;              /* 1..65535 */
    struct sockaddr_storage sa; /* filled (with port) for IPV4/IPV6 only */
    socklen_t salen;            /* 0 for DNS */
};

/* Parses "<host>:<port>" where host is an IPv4 dotted quad (no leading zeros),
 * a bracketed IPv6 literal, or a DNS name (LDH labels, 1..63 bytes each, total
 * <= 253, case folded to lowercase, no trailing dot). Port 1..65535, decimal,
 * no sign or leading zero. Returns 0, or PT_EMALFORMED with *why set to a
 * static message suitable for an API error ("port out of range", "missing
 * port", "invalid IPv6 address", "invalid host name", ...). <why> may be NULL. */
int pt_hostport_parse(const char *s, size_t len, struct pt_hostport *out,
                      const char **why);

/* Formats <hp> back as "host:port" or "[v6]:port" into <buf> (>= PT_HOST_MAX+9
 * bytes). Returns the length written (excluding NUL). */
size_t pt_hostport_format(const struct pt_hostport *hp, char *buf, size_t size);

/* Parses a listen address "IPv4:port" or "[IPv6]:port" (IP literals only,
 * port 1..65535) into <sa>. Returns 0 or PT_EMALFORMED (*why as above). */
int pt_listen_parse(const char *s, size_t len, struct sockaddr_storage *sa,
                    socklen_t *salen, const char **why);

/* An IPv4 or IPv6 prefix. IPv4 is kept as IPv4 (family AF_INET, 4 bytes). */
struct pt_cidr {
    int family;        /* AF_INET or AF_INET6 */
    uint8_t addr[16];  /* network byte order; bits past <bits> are zero */
    uint8_t bits;      /* 0..32 or 0..128 */
};

/* Parses "203.0.113.7", "203.0.113.0/24", "2001:db8::1", "2001:db8::/64".
 * A single address gets /32 or /128. Host bits set beyond the prefix are
 * cleared (as iptables does) rather than refused. An IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d, with prefix >= 96) is stored as IPv4. Returns 0 or
 * PT_EMALFORMED (*why set). */
int pt_cidr_parse(const char *s, size_t len, struct pt_cidr *out, const char **why);

/* Formats as the API shows it: a single address without "/32" or "/128",
 * otherwise "net/bits"; IPv6 in RFC 5952 form. Returns the length. <size>
 * must be >= PT_ADDRSTR_MAX. */
size_t pt_cidr_format(const struct pt_cidr *c, char *buf, size_t size);

/* True when the IP of <sa> (AF_INET or AF_INET6; a v4-mapped v6 address counts
 * as IPv4) lies in <c>. */
bool pt_cidr_contains(const struct pt_cidr *c, const struct sockaddr *sa);

/* If <sa> is an IPv4-mapped IPv6 address (::ffff:a.b.c.d) rewrite it in place
 * as AF_INET with the same port, as PROXY headers and logs want it. Returns
 * true when it did. */
bool pt_sockaddr_unmap(struct sockaddr_storage *sa);

/* Formats the IP only ("192.0.2.1", "2001:db8::1"; a mapped address as IPv4)
 * into <buf> (>= PT_ADDRSTR_MAX). Returns the length, 0 for other families. */
size_t pt_sockaddr_ip(const struct sockaddr *sa, char *buf, size_t size);

/* Formats "ip:port" or "[ip6]:port" into <buf> (>= PT_ADDRSTR_MAX). */
size_t pt_sockaddr_format(const struct sockaddr *sa, char *buf, size_t size);

/* Port of an AF_INET/AF_INET6 address in host order, 0 otherwise. */
uint16_t pt_sockaddr_port(const struct sockaddr *sa);

/* True when <a> and <b> are the same IPv4 or IPv6 address and port. */
bool pt_sockaddr_same(const struct sockaddr *a, const struct sockaddr *b);

#endif
