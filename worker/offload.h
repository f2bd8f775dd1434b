/* TLS offload and HTTP/1.1 reverse proxy for "offload" domains. */
#ifndef PT_OFFLOAD_H
#define PT_OFFLOAD_H

#include "worker/tls.h"
#include "worker/worker.h"

struct pt_offload_info {
    struct sockaddr_storage peer;  /* real client */
    struct sockaddr_storage local;
    const char *sni;               /* as received; copied */
    size_t sni_len;
    const uint8_t *hello;          /* bytes read so far (the ClientHello); copied */
    size_t hello_len;
};

/* Takes over the accepted, non-blocking socket <fd> whose ClientHello named
 * an offload domain: handshakes with the certificate chosen by SNI, then
 * proxies HTTP/1.1. */
void pt_offload_start(struct pt_listener *l, int fd, const struct pt_offload_info *info);

#endif
