/* Compiles the store's configuration into a snapshot IPC frame: reads every
 * backend and domain document, decodes them with the API's codec (the one
 * that validated them), adds the daemon's settings and encodes the result. */
#ifndef PT_PUBLISH_H
#define PT_PUBLISH_H

#include "api/api.h"
#include "common/snapshot.h"
#include "db/store.h"

/* Returns 0 and a complete PT_IPC_SNAPSHOT frame appended to <out>, or a
 * negative pt_err (a stored document that no longer decodes). The stream
 * routes' addresses are bound through <listeners> (NULL: none are).
 * <model> (NULL: none) holds the backends and domains as committed, decoded:
 * when *model is set they come from it, not from the store (at 100,000
 * domains, re-reading and decoding every stored document is most of the
 * cost of a whole snapshot); when it is NULL they are read from the store
 * and *model is built from them. */
struct pt_listeners;
int pt_publish_compile(struct pt_store *store, uint64_t version,
                       const struct pt_settings *settings, struct pt_listeners *listeners,
                       struct pt_snapshot **model, struct pt_wbuf *out);

#include <pthread.h>

struct pt_supervisor;

/* What a writer other than the API (the ACME client) needs to change the
 * configuration the same way the API does. */
struct pt_publisher {
    struct pt_store *store;
    pthread_mutex_t *lock;     /* serialises every store transaction: the API
                                  thread holds it per request, others per change */
    const struct pt_settings *settings;
    struct pt_listeners *listeners; /* stream listeners, or NULL */
    struct pt_supervisor *sup;
    unsigned ack_timeout_ms;
    struct pt_snapshot *model; /* owned, or NULL: see pt_publish_compile; kept
                                  current by the configuration deltas */
};

/* The one path every change takes (API writes, ACME results, session ticket
 * key rotation). With p->lock held and a transaction open (pt_store_begin):
 * bumps the config version, encodes change <c> (NULL: whole) as a delta or a
 * whole snapshot, commits, sends it to the workers and waits for their acks
 * (bounded). Returns 0 with *version and *applied, or a negative pt_err
 * after rolling back. */
int pt_publish_commit(struct pt_publisher *p, const struct pt_commit *c, uint64_t *version,
                      bool *applied);

#endif
