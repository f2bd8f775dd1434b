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

/* What a committed change sends to the workers: a delta when it can (the
 * cost of what changed), else the whole configuration as a snapshot. */
enum pt_commit_kind {
    PT_COMMIT_WHOLE = 0, /* certificates, streams, settings, ACME tokens */
    PT_COMMIT_BANS,      /* bans[0..n_bans) */
    PT_COMMIT_CONFIG,    /* backends and domains: delta */
    PT_COMMIT_STORE,     /* nothing for the workers (tokens, ACME state): committed
                            with its group, no version, nothing sent */
};

struct pt_commit {
    enum pt_commit_kind kind;
    const struct pt_ban_change *bans; /* borrowed */
    size_t n_bans;
    struct pt_delta *delta;           /* borrowed (its version is set, its
                                         objects moved out): CONFIG's changes,
                                         or a WHOLE change's backend and domain
                                         changes; NULL: none */
    /* pt_mono_us() when the request was read and when it got the store's
     * lock (0: not an API request): the commit trace's first phases. */
    uint64_t arrived_us, locked_us;
};

struct pt_api_hooks {
    void *arg;
    /* Inside the mutation's transaction, after the change: commits it
     * (pt_publish_commit: new version, what the workers need, commit, publish,
     * wait for their acks). Returns 0 with *version and *applied, or a
     * negative pt_err after rolling back. The one path every change takes. */
    int (*commit)(void *arg, const struct pt_commit *c, uint64_t *version, bool *applied);
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
