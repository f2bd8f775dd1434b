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
struct pt_publish_member;

/* What a writer other than the API (the ACME client) needs to change the
 * configuration the same way the API does. */
struct pt_publisher {
    struct pt_store *store;
    pthread_mutex_t *lock;     /* serialises every store transaction: API
                                  threads hold it per request, others per
                                  change; pt_publish_commit waits on it */
    const struct pt_settings *settings;
    struct pt_listeners *listeners; /* stream listeners, or NULL */
    struct pt_supervisor *sup;
    unsigned ack_timeout_ms;
    struct pt_snapshot *model; /* owned, or NULL: see pt_publish_commit; kept
                                  current by the configuration deltas */
    /* The group commit, under *lock (pt_publish_init/pt_publish_fini): */
    pthread_cond_t done_cv;          /* a group's publish finished */
    bool inflight;                   /* a leader is publishing a group */
    struct pt_publish_member *group; /* the writers queued for the next
                                        publish, in order (theirs) */
    struct pt_publish_member **group_tail;
    uint64_t publishes, writes;      /* since start: groups published, and
                                        the writes they carried */
    bool trace; /* PORTIER_COMMIT_TRACE=1: one log line per group commit
                   with the time of each phase (docs/operations.md) */
};

void pt_publish_init(struct pt_publisher *p);
void pt_publish_fini(struct pt_publisher *p);

/* The one path every change takes (API writes, ACME results, session ticket
 * key rotation). With p->lock held and pt_store_begin called: keeps the
 * change in the store's transaction and queues <c> (NULL: whole). A group
 * commit: when no publish is under way, this writer leads at once (no
 * delay for a lone write): bumps the config version, encodes every queued
 * change as deltas (or one whole snapshot), commits them in one transaction
 * (one fsync), sends them to the workers, and waits for their acks
 * (bounded) with p->lock released, while the next writers queue behind it;
 * one of those leads the next group. Otherwise it waits for the leader
 * that takes its change. Returns 0 with *version (the group's, shared by
 * every change in it) and *applied, or a negative pt_err after rolling back
 * the group. p->lock is released while it waits. */
int pt_publish_commit(struct pt_publisher *p, const struct pt_commit *c, uint64_t *version,
                      bool *applied);
/* pt_publish_commit of a change the workers do not see (PT_COMMIT_STORE):
 * durable when it returns 0, with no new version. */
int pt_publish_store(struct pt_publisher *p);

#endif
