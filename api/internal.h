/* Shared by the files of api/ only: the request context and reply helpers. */
#ifndef PT_API_INTERNAL_H
#define PT_API_INTERNAL_H

#include "api/api.h"
#include "api/model.h"

#include <microhttpd.h>
#include <time.h>

struct pt_api {
    struct MHD_Daemon *mhd;
    struct pt_api_config cfg;
    uint8_t token_hash[32]; /* SHA-256 of the admin token */
    time_t started;
    int64_t last_ban_purge;
    bool trace; /* PORTIER_COMMIT_TRACE=1: a log line per write request */
};

struct pt_req {
    struct pt_api *api;
    struct MHD_Connection *conn;
    const char *method;
    char *body;     /* owned, accumulated upload */
    size_t len;
    size_t cap;
    size_t max;     /* body limit: PT_API_BODY_MAX, or the batch's */
    bool too_large; /* body went over <max>: answer 413 */
    uint64_t began_us, arrived_us, locked_us; /* pt_mono_us(): headers read,
                                                 body read, got the lock */
    /* A "backend:NAME" token's NAME (borrowed from the store, valid for the
     * request): domain handlers then only show and change passthrough
     * domains routed to that backend. NULL for every other scope. */
    const char *only_backend;
    /* Who asks: "admin" for the admin token, else the stored token's name
     * (what bans record as created_by), and for a "bans" token (limited) the
     * limits api/bans.c enforces. */
    char caller[64];
    bool limited;
    struct pt_store_token_limits lim;
};

/* Replies. Each queues a response and returns MHD's result. */
enum MHD_Result pt_api__json(struct pt_req *r, unsigned status, json_t *body);
enum MHD_Result pt_api__error(struct pt_req *r, const struct pt_apierr *e);
__attribute__((format(printf, 5, 6))) enum MHD_Result
pt_api__errorf(struct pt_req *r, int status, const char *code, const char *field,
               const char *fmt, ...);
enum MHD_Result pt_api__text(struct pt_req *r, unsigned status, const char *type,
                             const void *data, size_t len, bool copy);
/* 204 for a mutation without a body: the version travels in headers. */
enum MHD_Result pt_api__no_content(struct pt_req *r, uint64_t version, bool applied);
enum MHD_Result pt_api__method_not_allowed(struct pt_req *r, const char *allow);

/* Percent-decodes one path segment <in> into <out> (<size> bytes). Refuses
 * (returns -1) bad escapes, an encoded or literal NUL, and results that do
 * not fit. libmicrohttpd is told not to decode paths, so that an encoded
 * "/" or NUL cannot change how a path splits into segments. */
int pt_api__unescape(const char *in, size_t len, char *out, size_t size);

/* Runs the end of a mutation already written inside an open transaction:
 * bumps the version, publishes the delta <d> (see docs/operations.md,
 * "Configuration at scale"), or with <whole> (a stream changed too) a whole
 * snapshot, <d> then only keeping the daemon's copy of the configuration
 * current; commits and waits. On failure the transaction is rolled back and
 * <e> set (500). */
int pt_api__finish_delta(struct pt_req *r, struct pt_delta *d, bool whole, uint64_t *version,
                         bool *applied, struct pt_apierr *e);

/* The same for a ban write: publishes the delta <ch>[0..n) instead of a
 * whole snapshot (see docs/operations.md, "Bans"). */
/* Commits a write the workers do not see (a token) with the group. */
int pt_api__finish_store(struct pt_req *r, struct pt_apierr *e);
int pt_api__finish_bans(struct pt_req *r, const struct pt_ban_change *ch, size_t n,
                        uint64_t *version, bool *applied, struct pt_apierr *e);

/* Resource handlers: <rest> is the path after "/api/v1/<resource>" ("" or
 * "/NAME..."). */
enum MHD_Result pt_api__backends(struct pt_req *r, const char *rest);
enum MHD_Result pt_api__domains(struct pt_req *r, const char *rest);
enum MHD_Result pt_api__streams(struct pt_req *r, const char *rest);
/* POST /api/v1/batch: many backend, domain and stream changes in one
 * transaction and one config version (api/objects.c). */
enum MHD_Result pt_api__batch(struct pt_req *r);
enum MHD_Result pt_api__bans(struct pt_req *r, const char *rest);
enum MHD_Result pt_api__tokens(struct pt_req *r, const char *rest);
enum MHD_Result pt_api__certificates(struct pt_req *r, const char *rest);
enum MHD_Result pt_api__status(struct pt_req *r);
/* Workers in all, and those that applied a snapshot and accept (for /healthz). */
void pt_api__count_serving(struct pt_api *api, size_t *serving, size_t *total);
/* GET /api/v1/backends/NAME/snippet?for=nginx|apache|yunohost (api/snippet.c) */
enum MHD_Result pt_api__snippet(struct pt_req *r, const char *backend);

/* What offload domains show (certificate_id, certificate_status): the
 * certificates naming a domain, found by the store's certificate_names
 * index, so one domain costs one probe however many certificates there are
 * (api/certs.c). Opened once per request. */
struct pt_store_certq;
struct pt_certidx {
    struct pt_store_certq *q; /* owned */
    int64_t now;
    char id[72];         /* the last match's id */
    const char *status;  /* static */
};
/* 0 or PT_EDB; <ix> is then valid (matching nothing on failure). */
int pt_api__certidx_load(struct pt_store *store, struct pt_certidx *ix);
/* The certificate for domain <name> (normalised): exact SAN, or a "*.x.y"
 * SAN covering one label; best status first (valid, renewing, pending,
 * failed, expired), then the latest not_after. False when none matches;
 * *id and *status are borrowed from <ix> until its next match. */
bool pt_api__certidx_match(struct pt_certidx *ix, const char *name, const char **id,
                           const char **status);
void pt_api__certidx_free(struct pt_certidx *ix);

/* "2026-11-29T10:00:00Z" */
void pt_api__rfc3339(int64_t t, char *buf, size_t size);
/* The same as a JSON string; 0 (unknown, never) becomes null. */
json_t *pt_api__time_json(int64_t t);
void pt_api__sha256_hex(const char *s, size_t len, char out[65]);
enum MHD_Result pt_api__metrics(struct pt_req *r);

#endif
