#include "worker/upstream.h"

int pt_upstream_lookup(uv_loop_t *loop, uv_getaddrinfo_t *req, uv_getaddrinfo_cb cb,
                       const struct pt_hostport *hp)
{
    char port[8];
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    snprintf(port, sizeof(port), "%u", hp->port);
    return uv_getaddrinfo(loop, req, cb, hp->host, port, &hints);
}

bool pt_upstream_take(int status, struct addrinfo *res, uint16_t port,
                      struct sockaddr_storage *out)
{
    bool ok = status == 0 && res != NULL && res->ai_addrlen <= sizeof(*out);
    if (ok) {
        memcpy(out, res->ai_addr, res->ai_addrlen);
        if (out->ss_family == AF_INET)
            ((struct sockaddr_in *)out)->sin_port = htons(port);
        else
            ((struct sockaddr_in6 *)out)->sin6_port = htons(port);
    }
    uv_freeaddrinfo(res);
    return ok;
}
