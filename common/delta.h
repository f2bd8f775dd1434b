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
 * snapshot of a lineage owns its own copy of them. */
#ifndef PT_DELTA_H
#define PT_DELTA_H

#include "common/snapshot.h"

enum pt_delta_kind {
    PT_DELTA_BACKEND = 1,
    PT_DELTA_DOMAIN = 2,
    PT_DELTA_TOKEN = 3, /* an ACME HTTP-01 answer */
};

struct pt_delta_change {
    enum pt_delta_kind kind;
    bool remove;
    char *name;                /* owned: the object's name (normalised) */
    struct pt_backend backend; /* owned: kind BACKEND and !remove */
    struct pt_domain domain;   /* owned: kind DOMAIN and !remove */
    struct pt_acme_token token; /* owned: kind TOKEN and !remove */
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
void pt_delta_remove(struct pt_delta *d, enum pt_delta_kind kind, const char *name);

/* Appends the wire form of <d> to <out> (the payload of a PT_IPC_CONFIG). */
void pt_delta_encode(const struct pt_delta *d, struct pt_wbuf *out);
/* Decodes a delta into <out> (cleared first). 0 or PT_EMALFORMED (then <out>
 * is empty). Checks what the route table trusts: names are normalised. */
int pt_delta_decode(const uint8_t *buf, size_t len, struct pt_delta *out);
void pt_delta_clear(struct pt_delta *d);

/* Applies <d> to *snap: on success *snap is the snapshot with the changes
 * (the same one, changed in place, or a derived successor: the caller's
 * reference then moved to it) at d->version, the change objects are moved
 * out of <d>, and *backends_changed says whether any backend changed.
 * Refuses the whole delta, changing nothing, with PT_ENOTFOUND for a domain
 * naming a backend that does not exist then, or a remove of a name that does
 * not exist; PT_EINUSE for removing a backend a domain still uses. */
int pt_delta_apply(struct pt_snapshot **snap, struct pt_delta *d, bool *backends_changed);

#endif
