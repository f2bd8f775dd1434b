/* The HTTP/1.1 proxy engine: TLS offload on the --https listeners and the
 * plain HTTP side of port 80 (--http listeners), one engine over two
 * transports (TLS through memory BIOs, or the plain socket). Keep-alive on
 * both sides, requests checked against the route (421), bodies framed
 * strictly, bounded memory per connection whatever the peer does. */
#ifndef PT_HTTPPROXY_H
#define PT_HTTPPROXY_H

#include "common/http1.h"
#include "worker/tls.h"
#include "worker/worker.h"

struct pt_httpproxy_info {
    struct sockaddr_storage peer;  /* real client (after a trusted PROXY header) */
    struct sockaddr_storage local;
    bool tls;                      /* offload: TLS with the client; else port 80 */
    bool trusted;                  /* the socket's peer is a --trusted-proxy: its
                                      X-Forwarded-* are appended to, not replaced */
    struct pt_snapshot *snap;      /* the snapshot the front stage routed with
                                      (borrowed: the engine takes its own reference) */
    int route;                     /* TLS: the SNI's route in snap (the front stage
                                      looked it up once); -1 on port 80 */
    const char *sni;               /* TLS: as received; copied */
    size_t sni_len;
    const uint8_t *pre;            /* bytes read so far (the ClientHello, or the
                                      start of the first request); copied */
    size_t pre_len;
};

/* Takes over the accepted, non-blocking socket <fd> (ownership passes: the
 * engine closes it; it counts the connection with pt_worker_conn_opened).
 * TLS: handshakes with the certificate chosen by SNI, then proxies HTTP/1.1;
 * plain: proxies HTTP/1.1 from the first byte (port 80: ACME answers, 301 to
 * https for offload domains, proxy to http_servers). */
void pt_httpproxy_start(struct pt_listener *l, int fd, const struct pt_httpproxy_info *info);

/* Whether a backend response field goes on to the client: not the
 * hop-by-hop ones (Upgrade stays on a 101 <tunnel>), nor those the domain
 * <d> sets itself (its response headers, HSTS); <d> NULL: the backend's
 * fields as they are (port 80). */
bool pt_httpproxy_resp_field_kept(const struct pt_http_hdr *h, const struct pt_domain *d,
                                  bool tunnel);

/* The worker's pool of idle backend connections, for plain HTTP servers
 * (worker/h2.c's streams share it with HTTP/1.1 clients). <fd> is the
 * caller's, duplicated when parked; take returns a descriptor the caller
 * owns, or -1. */
void pt_httpproxy_pool_put(int fd, const struct pt_hostport *hp, uint64_t now);
int pt_httpproxy_pool_take(const struct pt_hostport *hp, uint64_t now);

#endif
