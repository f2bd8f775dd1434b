/* The configuration a worker runs on: an immutable, versioned snapshot.
 *
 * The daemon compiles one from the store after every committed change,
 * encodes it (pt_snap_encode) and sends it to every worker; the worker decodes
 * it (pt_snap_decode), swaps its current pointer and acks the version.
 * Connections hold a reference to the snapshot they were routed with, so a
 * swap never changes a connection in flight. The same structs are the model
 * the API validates into, so there is one definition of a backend or domain. */
#ifndef PT_SNAPSHOT_H
#define PT_SNAPSHOT_H

#include "common/addr.h"
#include "common/banlist.h"
#include "common/proxyproto.h"
#include "common/pt.h"
#include "common/route.h"
#include "common/stream.h"
#include "common/wbuf.h"

#define PT_SERVERS_MAX 16
#define PT_HEADERS_MAX 64

enum pt_mode {
    PT_MODE_PASSTHROUGH = 0, /* TLS bytes go to the backend untouched */
    PT_MODE_OFFLOAD = 1,     /* portier terminates TLS, proxies HTTP */
};

/* An active health check of a backend's servers (worker/health.h): every
 * <interval_ms>, a probe bounded by <timeout_ms>; a server goes down after
 * <fall> failures in a row and comes back after <rise> successes. */
enum pt_check_kind {
    PT_CHECK_NONE = 0, /* passive only: failures of real connections */
    PT_CHECK_TCP,      /* a TCP connect */
    PT_CHECK_TLS,      /* a TLS handshake (the certificate is not verified) */
    PT_CHECK_HTTP,     /* GET <path>: a 2xx or 3xx status (over TLS with "tls") */
};
#define PT_CHECK_PATH_MAX 255

struct pt_check {
    enum pt_check_kind kind;
    uint32_t interval_ms;
    uint32_t timeout_ms;
    uint8_t rise, fall;
    char path[PT_CHECK_PATH_MAX + 1]; /* HTTP: starts with '/', visible ASCII */
};

struct pt_backend {
    char *name;                        /* owned */
    struct pt_hostport *servers;       /* owned array, tried in order */
    size_t n_servers;                  /* 1..PT_SERVERS_MAX */
    struct pt_hostport *http_servers;  /* owned, port-80 target; may be empty */
    size_t n_http_servers;
    enum pt_pp_version proxy_protocol; /* header sent first, or none */
    bool tls;                          /* offload: TLS to the servers */
    bool tls_verify;                   /* offload+tls: verify their certificate */
    struct pt_check check;             /* active health check, or PT_CHECK_NONE */
};

struct pt_header {
    char *name;  /* owned, an HTTP token */
    char *value; /* owned, no CR/LF/NUL */
};

struct pt_domain {
    char *name;         /* owned, normalised (pt_dname_normalize) */
    enum pt_mode mode;
    char *backend;      /* owned, a backend name */
    uint32_t backend_ix; /* index into pt_snapshot.backends (snapshot only) */
    bool cert_manual;   /* "certificate": "manual" rather than "acme" */
    bool redirect_http; /* offload: port 80 answers 301 to https */
    bool hsts;          /* offload: add Strict-Transport-Security */
    bool http2;         /* offload: ALPN offers h2 (API default: true) */
    struct pt_header *headers; /* owned, response_headers in API order */
    size_t n_headers;
};

/* A certificate the workers may present (TLS offload). */
struct pt_cert {
    char *id;        /* owned */
    char *cert_pem;  /* owned: leaf first, then the chain */
    char *key_pem;   /* owned: private key (PEM) */
    char **names;    /* owned: DNS names of the leaf (SANs), normalised */
    size_t n_names;
    int64_t not_after;
};

/* An ACME HTTP-01 answer: GET /.well-known/acme-challenge/<token> on port 80
 * gets <key_authorization>. */
struct pt_acme_token {
    char *token;             /* owned */
    char *key_authorization; /* owned */
};

/* Daemon-wide settings the data plane needs (from flags, not the API). */
struct pt_settings {
    uint32_t hello_timeout_ms;   /* ClientHello / PROXY header read */
    uint32_t connect_timeout_ms; /* per backend server */
    uint32_t idle_timeout_ms;    /* relay with no byte either way */
    uint32_t body_timeout_ms;    /* HTTP: between two reads of a request body */
    uint32_t send_timeout_ms;    /* HTTP: between two writes to a client that
                                    has a response queued */
    uint32_t grace_ms;           /* drain time when stopping */
    uint16_t https_port;         /* port of the first --https listener */
    bool access_log;             /* write one JSON line per connection to fd 1 */
    uint8_t ticket_key[80];      /* TLS session tickets: name, HMAC and AES keys,
                                    shared by every worker, rotated by the daemon */
    struct pt_cidr *trusted;     /* owned: --trusted-proxy */
    size_t n_trusted;
};

struct pt_snapshot {
    uint64_t version;
    struct pt_settings settings;
    struct pt_backend *backends; /* owned */
    size_t n_backends;
    struct pt_domain *domains;   /* owned */
    size_t n_domains;
    struct pt_route_table *routes; /* domains by name (built by decode/build) */
    struct pt_ban *bans;         /* owned, with their reasons */
    size_t n_bans;
    struct pt_banlist *banlist;  /* built by link */
    struct pt_cert *certs;       /* owned; valid ones only. Read only to build
                                    the worker's TLS contexts (worker/tls.c),
                                    never through a connection's snapshot:
                                    a successor takes them over (delta.c) */
    size_t n_certs;
    struct pt_acme_token *tokens; /* owned, by each snapshot of a lineage */
    size_t n_tokens;
    struct pt_streams streams;   /* owned: stream routes (common/stream.h) */
    unsigned refs;               /* owners: the worker's current pointer and
                                    each connection routed with it */
    /* Configuration deltas (common/delta.h) derive a successor that shares
     * this snapshot's objects: then <next> holds a reference on it and this
     * one owns only its arrays, its route table and what the delta replaced
     * or removed (retired_*), freed with it. Without <next> it owns all. */
    size_t cap_backends, cap_domains, cap_tokens, cap_certs;
    struct pt_route_table *cert_ids; /* certificate id -> index in certs, built
                                        by the first delta that needs it and
                                        taken over with the certificates */
    bool streams_replaced; /* a successor has a stream table of its own:
                              this one still frees its <streams> */
    bool objects_only; /* the daemon's model (daemon/publish.c): backends and
                          domains only; the certificate and ACME answer
                          changes of a delta pass it by */
    struct pt_snapshot *next;
    struct pt_backend *retired_backends;
    size_t n_retired_backends, cap_retired_backends;
    struct pt_domain *retired_domains;
    size_t n_retired_domains, cap_retired_domains;
};

/* Encodes <s> into <out> (appended). Backends referenced by domains must exist
 * (PT_ASSERT). */
void pt_snap_encode(const struct pt_snapshot *s, struct pt_wbuf *out);

/* One backend / domain as in a snapshot (and a configuration delta). read
 * returns 0 or PT_EMALFORMED; the object is then to be cleared either way. */
struct pt_cursor;
void pt_snap_backend_encode(const struct pt_backend *b, struct pt_wbuf *out);
void pt_snap_domain_encode(const struct pt_domain *d, struct pt_wbuf *out);
int pt_snap_backend_read(struct pt_cursor *c, struct pt_backend *b);
int pt_snap_domain_read(struct pt_cursor *c, struct pt_domain *d);
void pt_snap_token_encode(const struct pt_acme_token *t, struct pt_wbuf *out);
int pt_snap_token_read(struct pt_cursor *c, struct pt_acme_token *t);
void pt_snap_token_clear(struct pt_acme_token *t);
void pt_snap_cert_encode(const struct pt_cert *ct, struct pt_wbuf *out);
int pt_snap_cert_read(struct pt_cursor *c, struct pt_cert *ct);
/* The stream table as in a snapshot (with the listener ids). read: <ss> is
 * overwritten, to be cleared either way. */
void pt_snap_streams_encode(const struct pt_streams *ss, struct pt_wbuf *out);
int pt_snap_streams_read(struct pt_cursor *c, struct pt_streams *ss);
/* Checks that <ss>'s names are normalised and links it (pt_streams_link). */
int pt_snap_streams_link(struct pt_streams *ss, int (*find)(void *arg, const char *backend),
                         void *arg);

/* Decodes <buf>[0..len) into a new snapshot with refs = 1 and its route table
 * built. Returns 0, or PT_EMALFORMED for any inconsistency (the daemon is
 * trusted, so callers treat that as a bug). Caller owns *out. */
int pt_snap_decode(const uint8_t *buf, size_t len, struct pt_snapshot **out);

/* Resolves domain backend names to indexes and builds the route table.
 * Returns 0 or PT_ENOTFOUND if a domain names a missing backend. */
int pt_snap_link(struct pt_snapshot *s);

struct pt_snapshot *pt_snap_ref(struct pt_snapshot *s);
/* Drops one reference; frees everything on the last one. NULL is fine. */
void pt_snap_unref(struct pt_snapshot *s);

/* Frees the contents of one backend / domain / settings (not the struct). */
void pt_backend_clear(struct pt_backend *b);
void pt_domain_clear(struct pt_domain *d);
void pt_settings_clear(struct pt_settings *st);
void pt_cert_clear(struct pt_cert *ct);

/* Deep copy of <src> into <dst>. */
void pt_backend_copy(struct pt_backend *dst, const struct pt_backend *src);
void pt_domain_copy(struct pt_domain *dst, const struct pt_domain *src);

/* Finds a domain by its exact normalised name (for port-80 and API use);
 * routing goes through routes. Returns NULL when absent. */
const struct pt_domain *pt_snap_domain(const struct pt_snapshot *s, const char *name);

/* A ban delta: what one committed ban write changed. The daemon sends it
 * instead of a whole snapshot (PT_IPC_BANS), so a ban costs neither the
 * daemon nor the workers a re-encode of domains and certificates. */
struct pt_ban_change {
    bool remove;       /* drop the ban on ban.net (expires, reason unused) */
    struct pt_ban ban; /* reason owned by the array's owner */
};

/* Appends the delta for config <version> to <out>. */
void pt_snap_bans_encode(uint64_t version, const struct pt_ban_change *ch, size_t n,
                         struct pt_wbuf *out);
/* Decodes a delta. Returns 0 with *out (caller frees with pt_snap_bans_free)
 * or PT_EMALFORMED. */
int pt_snap_bans_decode(const uint8_t *buf, size_t len, uint64_t *version,
                        struct pt_ban_change **out, size_t *n);
void pt_snap_bans_free(struct pt_ban_change *ch, size_t n); /* NULL is fine */

const char *pt_mode_name(enum pt_mode m);
const char *pt_pp_name(enum pt_pp_version v);

#endif
