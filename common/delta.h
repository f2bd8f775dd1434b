/* Configuration deltas: what one committed write changed among the backends
 * and domains, sent to the workers instead of a whole snapshot
 * (PT_IPC_CONFIG), so that a write costs neither the daemon nor the workers
 * anything proportional to the size of the configuration.
 *
 * A worker applies a delta to its current snapshot. When no connection holds
 * that snapshot (refs == 1) it changes it in place; otherwise it derives a
 * successor that shares every unchanged object (one copy of the domain and
 * backend arrays and of the route table's slots, no per-object copy), so
 * connections in flight keep the configuration they were routed with
 * (common/snapshot.h, "next"). Certificates, ACME tokens, streams and
 * settings still travel in whole snapshots; bans in their own deltas. ACME
 * HTTP-01 answers (tokens) travel in deltas too: they are few, so each
 * snapshot of a lineage owns its own copy of them.
 *
 * Certificates travel in deltas too (one upload, renewal or removal: that
 * certificate and its key only). They are read only to build the worker's
 * TLS contexts, never through a connection's snapshot, so a successor takes
 * them over from its predecessor and a delta changes them in place; the
 * worker then rebuilds only the context of the certificate that changed
 * (worker/tls.c). The removal of a certificate the snapshot does not hold
 * is no change, not an error: the daemon leaves expired ones out of a whole
 * snapshot, so a worker that started since may lack one that others have.
 *
 * Stream routes travel as one change holding the whole stream table: they
 * are few (each binds its own port), so that costs nothing proportional to
 * the domains, and a worker replaces its table at once (linked against the
 * backends after the delta). The session ticket key rotation is a change of
 * its own: the worker's TLS contexts read the key through a callback
 * (worker/tls.c), so no context is rebuilt. Certificates are found by id
 * through a hash (the snapshot's cert_ids). */
#ifndef PT_DELTA_H
#define PT_DELTA_H

#include "common/snapshot.h"

enum pt_delta_kind {
    PT_DELTA_BACKEND = 1,
    PT_DELTA_DOMAIN = 2,
    PT_DELTA_TOKEN = 3, /* an ACME HTTP-01 answer */
    PT_DELTA_CERT = 4,  /* a certificate and its key, by id */
    PT_DELTA_STREAMS = 5, /* the whole stream table (few routes: no finer grain) */
    PT_DELTA_TICKET = 6,  /* the session ticket key (settings.ticket_key) */
};

struct pt_delta_change {
    enum pt_delta_kind kind;
    bool remove;
    char *name;                /* owned: the object's name (normalised) */
    struct pt_backend backend; /* owned: kind BACKEND and !remove */
    struct pt_domain domain;   /* owned: kind DOMAIN and !remove */
    struct pt_acme_token token; /* owned: kind TOKEN and !remove */
    struct pt_cert cert;        /* owned: kind CERT and !remove */
    struct pt_streams streams;  /* owned: kind STREAMS (with listener ids) */
    uint8_t ticket_key[80];     /* kind TICKET */
};

/* Changes in order: a later change of the same name wins. */
struct pt_delta {
    uint64_t version;
    struct pt_delta_change *v; /* owned */
    size_t n, cap;
};

/* Appends a change; the objects are moved in (<b>/<d> are zeroed), <b> or
 * <d> NULL for a remove. */
void pt_delta_put_backend(struct pt_delta *d, struct pt_backend *b);
void pt_delta_put_domain(struct pt_delta *d, struct pt_domain *dm);
void pt_delta_put_token(struct pt_delta *d, const char *token, const char *key_authorization);
void pt_delta_put_cert(struct pt_delta *d, struct pt_cert *ct); /* moved in */
/* The stream table as committed, moved in (<ss> is zeroed). The API adds an
 * empty one to mark a stream write; the daemon's publisher fills it (only it
 * knows the listener ids). */
void pt_delta_put_streams(struct pt_delta *d, struct pt_streams *ss);
void pt_delta_put_ticket(struct pt_delta *d, const uint8_t key[80]);
void pt_delta_remove(struct pt_delta *d, enum pt_delta_kind kind, const char *name);

/* Appends the wire form of <d> to <out> (the payload of a PT_IPC_CONFIG). */
void pt_delta_encode(const struct pt_delta *d, struct pt_wbuf *out);
/* Decodes a delta into <out> (cleared first). 0 or PT_EMALFORMED (then <out>
 * is empty). Checks what the route table trusts: names are normalised. */
int pt_delta_decode(const uint8_t *buf, size_t len, struct pt_delta *out);
void pt_delta_clear(struct pt_delta *d);
/* Whether <d> has a change of <kind> (also after pt_delta_apply). */
bool pt_delta_has(const struct pt_delta *d, enum pt_delta_kind kind);

/* Applies <d> to *snap: on success *snap is the snapshot with the changes
 * (the same one, changed in place, or a derived successor: the caller's
 * reference then moved to it) at d->version, the change objects are moved
 * out of <d>, and *backends_changed says whether any backend changed.
 * A snapshot marked objects_only (the daemon's model) takes only the backend
 * and domain changes.
 * Refuses the whole delta, changing nothing, with PT_ENOTFOUND for a domain
 * or stream naming a backend that does not exist then, or a remove of a name
 * that does not exist; PT_EINUSE for removing a backend a domain or stream
 * still uses; PT_EMALFORMED for a stream table that does not link (a name
 * twice on one port, a tcp stream sharing its port). */
int pt_delta_apply(struct pt_snapshot **snap, struct pt_delta *d, bool *backends_changed);

#endif
