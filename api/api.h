/* The REST API and web page server (libmicrohttpd, one internal thread).
 *
 * Requests are handled one at a time on MHD's thread, which is also the only
 * thread that writes the store after start-up: mutations are serialised by
 * construction. What the API needs from the daemon (publishing a snapshot,
 * worker status) comes in through struct pt_api_hooks, so api/ never includes
 * daemon/. */
#ifndef PT_API_H
#define PT_API_H

#include "common/pt.h"
#include "common/delta.h"
#include "common/snapshot.h"
#include "db/store.h"

#include "common/wbuf.h"

#include <jansson.h>
#include <pthread.h>
#include <sys/socket.h>

#define PT_API_BODY_MAX (1u << 20)
/* POST /api/v1/batch: up to PT_API_BATCH_MAX changes in one body. */
#define PT_API_BATCH_BODY_MAX (64u << 20)
#define PT_API_BATCH_MAX 100000

struct pt_api_hooks {
    void *arg;
    /* Inside the mutation's transaction, after the change: compiles the
     * snapshot for <version> from <store>. Returns an opaque handle or NULL
     * (the mutation is then rolled back with a 500). */
    void *(*compile)(void *arg, struct pt_store *store, uint64_t version);
    /* The same for a ban write: compiles the delta <ch>[0..n) for <version>
     * (or a whole snapshot when deltas piled up); same handle as compile. */
    void *(*compile_bans)(void *arg, struct pt_store *store, uint64_t version,
                          const struct pt_ban_change *ch, size_t n);
    /* After commit: sends the compiled snapshot (ownership passes) to every
     * worker and waits for their acks, bounded. Returns true when all live
     * workers applied it. */
    bool (*publish)(void *arg, void *snapshot);
    /* Drops a compiled snapshot that will not be published (rollback). */
    void (*discard)(void *arg, void *snapshot);
    /* Returns a new JSON array of {"pid","config_version","connections"}. */
    json_t *(*workers)(void *arg);
    /* True when the daemon and every worker are up and current. */
    bool (*healthy)(void *arg);
    /* Appends the daemon's and workers' Prometheus families for /metrics. */
    void (*metrics)(void *arg, struct pt_wbuf *out);
    /* Wakes the ACME client: a domain or certificate changed, or <cert_id>
     * (may be NULL) should be renewed now. Never blocks. NULL when ACME is
     * not built in. */
    void (*acme_kick)(void *arg, const char *cert_id);
    /* Makes sure the daemon listens on <sa> for a stream route (binding it
     * now when it does not yet). 0, or -1 with the reason in <why>. NULL:
     * stream addresses are not checked. */
    int (*listen)(void *arg, const struct sockaddr *sa, socklen_t len, char *why,
                  size_t size);
    /* The same for a backend and domain write: compiles the delta <d> (its
     * version set to <version>) or, when deltas piled up, a whole snapshot. */
    void *(*compile_config)(void *arg, struct pt_store *store, uint64_t version,
                            struct pt_delta *d);
    /* Returns a new JSON array of the backend servers' health as the
     * workers see it, of <backend> only unless NULL. May be NULL. */
    json_t *(*servers)(void *arg, const char *backend);
};

struct pt_api_config {
    int listen_fd;             /* bound and listening; the API takes it */
    const char *admin_token;   /* borrowed for the server's lifetime */
    struct pt_store *store;    /* borrowed */
    pthread_mutex_t *lock;     /* borrowed: held around every /api/ request,
                                  since other threads write the store too */
    struct pt_api_hooks hooks;
    /* Borrowed for the server's lifetime, NUL-terminated PEM; both NULL: plain
     * HTTP. Served by libmicrohttpd's own TLS. */
    const char *tls_cert_pem;
    const char *tls_key_pem;
};

struct pt_api;

/* Starts serving on cfg->listen_fd. Returns 0 or PT_EIO with <err> set. */
int pt_api_start(const struct pt_api_config *cfg, struct pt_api **out, char *err,
                 size_t errlen);

/* Stops the thread and closes the socket. NULL is fine. */
void pt_api_stop(struct pt_api *api);

#endif
