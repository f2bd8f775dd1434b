#include "daemon/listeners.h"

#include "common/addr.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <unistd.h>

struct entry {
    uint32_t lid;
    int fd;
    struct sockaddr_storage sa;
    uint64_t gen; /* the compile that last used it */
};

struct pt_listeners {
    pthread_mutex_t lock;
    struct entry *v; /* in lid order */
    size_t n, cap;
    uint32_t next;   /* last lid given */
    uint64_t gen;    /* current compile */
};

int pt_listeners_bind(const struct sockaddr *sa, socklen_t len, bool reuseport,
                      const char *text, char *why, size_t size)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0)
        goto fail;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        goto fail;
    /* [::]:443 and 0.0.0.0:443 must be able to coexist. */
    if (sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, sa, len) != 0)
        goto fail;
    if (listen(fd, 4096) != 0)
        goto fail;
    return fd;
fail:
    snprintf(why, size, "cannot listen on %s: %s", text, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

int pt_listeners_client_first(int fd, int secs)
{
    return setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof(secs));
}

struct pt_listeners *pt_listeners_new(void)
{
    struct pt_listeners *r = pt_xcalloc(1, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

void pt_listeners_free(struct pt_listeners *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        close(r->v[i].fd);
    free(r->v);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

void pt_listeners_begin(struct pt_listeners *r)
{
    pthread_mutex_lock(&r->lock);
    r->gen++;
    pthread_mutex_unlock(&r->lock);
}

int pt_listeners_get(struct pt_listeners *r, const struct sockaddr *sa, socklen_t len,
                     bool use, uint32_t *lid, char *why, size_t size)
{
    char text[PT_ADDRSTR_MAX];
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n; i++)
        if (pt_sockaddr_same((const struct sockaddr *)&r->v[i].sa, sa)) {
            if (use)
                r->v[i].gen = r->gen;
            *lid = r->v[i].lid;
            pthread_mutex_unlock(&r->lock);
            return 0;
        }
    pt_sockaddr_format(sa, text, sizeof(text));
    int fd = pt_listeners_bind(sa, len, false, text, why, size);
    if (fd < 0) {
        pthread_mutex_unlock(&r->lock);
        return PT_EIO;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->v = pt_xrealloc(r->v, r->cap * sizeof(*r->v));
    }
    struct entry *e = &r->v[r->n++];
    memset(e, 0, sizeof(*e));
    e->lid = ++r->next;
    e->fd = fd;
    memcpy(&e->sa, sa, len);
    /* A socket bound for a change that is not compiled yet stays until the
     * sweep after the next publish. */
    e->gen = use ? r->gen : r->gen - 1;
    *lid = e->lid;
    pthread_mutex_unlock(&r->lock);
    pt_log(PT_LOG_INFO, "streams: listening on %s", text);
    return 0;
}

uint32_t pt_listeners_lid_max(struct pt_listeners *r)
{
    pthread_mutex_lock(&r->lock);
    uint32_t v = r->next;
    pthread_mutex_unlock(&r->lock);
    return v;
}

void pt_listeners_sweep(struct pt_listeners *r)
{
    char text[PT_ADDRSTR_MAX];
    pthread_mutex_lock(&r->lock);
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i].gen == r->gen) {
            r->v[k++] = r->v[i];
            continue;
        }
        pt_sockaddr_format((const struct sockaddr *)&r->v[i].sa, text, sizeof(text));
        pt_log(PT_LOG_INFO, "streams: no longer listening on %s", text);
        close(r->v[i].fd);
    }
    r->n = k;
    pthread_mutex_unlock(&r->lock);
}

uint32_t pt_listeners_each_after(struct pt_listeners *r, uint32_t after,
                                 void (*cb)(void *arg, uint32_t lid, int fd), void *arg)
{
    uint32_t top = after;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i].lid <= after)
            continue;
        int fd = fcntl(r->v[i].fd, F_DUPFD_CLOEXEC, 0);
        if (fd >= 0)
            cb(arg, r->v[i].lid, fd);
        top = r->v[i].lid;
    }
    pthread_mutex_unlock(&r->lock);
    return top;
}
