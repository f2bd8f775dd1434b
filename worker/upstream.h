/* Reaching backend servers: what the passthrough relay and the offload
 * proxy share. Servers are tried in order by the callers; DNS names are
 * resolved on libuv's thread pool, never on the loop thread. */
#ifndef PT_UPSTREAM_H
#define PT_UPSTREAM_H

#include "common/addr.h"

#include <uv.h>

/* Starts resolving DNS server <hp> (its port included). Returns 0 (the
 * callback will run, also when cancelled) or a libuv error (it will not). */
int pt_upstream_lookup(uv_loop_t *loop, uv_getaddrinfo_t *req, uv_getaddrinfo_cb cb,
                       const struct pt_hostport *hp);

/* In the lookup callback: frees <res> and, when the lookup succeeded, puts
 * its first address with <port> in <out>. Returns false on failure. */
bool pt_upstream_take(int status, struct addrinfo *res, uint16_t port,
                      struct sockaddr_storage *out);

#endif
