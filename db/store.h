/* The store: SQLite, the single source of truth for configuration.
 *
 * WAL mode with synchronous=FULL, so a committed change survives kill -9 and
 * power loss. The schema comes from db/migrations/NNNN_*.sql (embedded at build
 * time), applied in order inside transactions and tracked by PRAGMA
 * user_version; a database written by a newer portierd is refused. Objects
 * are stored as canonical JSON documents; this module does not interpret them.
 * One connection, serialised (SQLITE_OPEN_FULLMUTEX): callers may be the API
 * thread and the daemon's main thread. */
#ifndef PT_STORE_H
#define PT_STORE_H

#include "common/pt.h"

struct pt_store;

struct pt_migration {
    unsigned number;  /* 1, 2, 3 ... contiguous */
    const char *name; /* for messages */
    const char *sql;
};

/* Opens (creating mode 0600) the database at <path> and applies the embedded
 * migrations. Returns 0, or a negative pt_err with one line in <err>. */
int pt_store_open(const char *path, struct pt_store **out, char *err, size_t errlen);

/* Same with an explicit migration list (tests). */
int pt_store_open_with(const char *path, const struct pt_migration *m, size_t n,
                       struct pt_store **out, char *err, size_t errlen);

/* Collects the embedded migrations in order; checks names are NNNN_x.sql and
 * numbered 1..n without gaps. Returns the count, or PT_EINVAL (a build bug).
 * <out> holds up to <max> entries. */
int pt_store_embedded_migrations(struct pt_migration *out, size_t max);

void pt_store_close(struct pt_store *s); /* NULL is fine */

/* Schema version (PRAGMA user_version). */
unsigned pt_store_schema_version(struct pt_store *s);

/* Transactions, shared by writers for a group commit (daemon/publish.c):
 * pt_store_begin opens the transaction (BEGIN IMMEDIATE) unless one is open,
 * and a savepoint for this writer in it when other writers' changes are kept
 * there. Then one of:
 * - pt_store_keep: the writer's changes stay in the transaction, to be
 *   committed with the others' by one pt_store_commit (one fsync);
 * - pt_store_rollback: undoes the writer's changes only (the whole
 *   transaction when no writer kept any); called after pt_store_keep, with
 *   no writer under way, it undoes the whole transaction;
 * - pt_store_commit: keeps the writer's changes and commits, unless other
 *   writers' changes are kept (then they are durable when their group
 *   commits, which its waiting writers do next); with no writer under way,
 *   commits the transaction. */
int pt_store_begin(struct pt_store *s);
void pt_store_keep(struct pt_store *s);
int pt_store_commit(struct pt_store *s);
void pt_store_rollback(struct pt_store *s);
/* Writers whose changes the open transaction keeps (0: none open). */
unsigned pt_store_kept(const struct pt_store *s);

/* The configuration version: bumped by every committed mutation. */
uint64_t pt_store_config_version(struct pt_store *s);
/* Inside a transaction: increments and returns the new version in *out. */
int pt_store_bump_version(struct pt_store *s, uint64_t *out);

enum pt_store_kind {
    PT_STORE_BACKEND = 0,
    PT_STORE_DOMAIN = 1,
    PT_STORE_STREAM = 2,
};

/* Inserts or replaces object <name>. For domains and streams <backend> and
 * <mode> fill their columns (NULL for backends). *created tells insert from replace.
 * Returns 0, or PT_ENOTFOUND when a domain names a missing backend. */
int pt_store_put(struct pt_store *s, enum pt_store_kind k, const char *name,
                 const char *doc, const char *backend, const char *mode,
                 bool *created);

/* Returns 0 and *doc (caller frees), or PT_ENOTFOUND. */
int pt_store_get(struct pt_store *s, enum pt_store_kind k, const char *name,
                 char **doc);

/* Calls <cb> for every object ordered by name; <doc> is borrowed for the call.
 * A non-zero return from <cb> stops the walk and is returned. */
int pt_store_each(struct pt_store *s, enum pt_store_kind k,
                  int (*cb)(void *arg, const char *name, const char *doc), void *arg);

/* Deletes <name>. Returns 0, PT_ENOTFOUND, or PT_EINUSE for a backend that a
 * domain or stream still uses (*user, when not NULL, names one such user as
 * "domain 'NAME'" or "stream 'NAME'", domains first: caller frees). */
int pt_store_delete(struct pt_store *s, enum pt_store_kind k, const char *name,
                    char **user);


/* ---- bans ---------------------------------------------------------------- */

struct pt_store_ban {
    const char *ip;     /* normalised CIDR text (pt_cidr_format) */
    const char *reason;
    int64_t created;    /* unix seconds */
    int64_t expires;    /* unix seconds, 0 = permanent */
    const char *created_by; /* token name, or "admin"; NULL reads as "admin" */
};

/* Inserts or replaces the ban on <b->ip>; *created tells which. */
int pt_store_ban_put(struct pt_store *s, const struct pt_store_ban *b, bool *created);
/* Returns 0 or PT_ENOTFOUND. */
int pt_store_ban_delete(struct pt_store *s, const char *ip);
/* Copies into <owner> (<size> bytes) who made the ban on <ip>. 0 or
 * PT_ENOTFOUND. */
int pt_store_ban_owner(struct pt_store *s, const char *ip, char *owner, size_t size);
/* Bans held by <created_by> (expired ones included until purged), in *n;
 * a counter kept by triggers, so it costs the same at 100,000 bans. */
int pt_store_ban_count(struct pt_store *s, const char *created_by, uint64_t *n);
/* Calls <cb> for every ban not expired at <now> (0: all) made by <created_by>
 * (NULL: anyone), ordered by ip; the strings are borrowed for the call. */
int pt_store_ban_each(struct pt_store *s, int64_t now, const char *created_by,
                      int (*cb)(void *arg, const struct pt_store_ban *b), void *arg);
/* Deletes bans expired at <now>; *n gets how many. */
int pt_store_ban_purge(struct pt_store *s, int64_t now, unsigned *n);
/* Earliest expiry in the future of <now>, 0 when none. */
int64_t pt_store_ban_next_expiry(struct pt_store *s, int64_t now);

/* ---- tokens -------------------------------------------------------------- */

/* What a token may do with bans (a "bans" token; admin tokens ignore it). */
struct pt_store_token_limits {
    uint8_t max_prefix4; /* widest IPv4 prefix it may ban: 24 = /24../32 */
    uint8_t max_prefix6; /* the same for IPv6 */
    uint32_t quota;      /* live bans it may hold */
};
#define PT_TOKEN_LIMITS_DEFAULT ((struct pt_store_token_limits){24, 64, 100000})

struct pt_store_token {
    const char *name;
    const char *scope;  /* "admin" | "bans" | "backend:NAME" */
    int64_t created;
    int64_t last_used;  /* 0 = never */
    struct pt_store_token_limits lim;
};

/* Returns 0, or PT_ECONFLICT when <name> or <hash_hex> exists. <lim> NULL:
 * the defaults. */
int pt_store_token_add(struct pt_store *s, const char *name, const char *scope,
                       const char *hash_hex, int64_t now,
                       const struct pt_store_token_limits *lim);
/* The name (copied into <name>, <size> bytes) and ban limits of the token
 * whose secret hashes to <hash_hex>. 0 or PT_ENOTFOUND. */
int pt_store_token_limits(struct pt_store *s, const char *hash_hex, char *name,
                          size_t size, struct pt_store_token_limits *lim);
/* Looks a token up by the hex SHA-256 of its secret; fills *scope ("admin",
 * "bans" or "backend:NAME", owned by <s> and valid until the next call of
 * this function) and records last use. 0 or PT_ENOTFOUND. */
int pt_store_token_check(struct pt_store *s, const char *hash_hex, int64_t now,
                         const char **scope);
int pt_store_token_delete(struct pt_store *s, const char *name);
int pt_store_token_each(struct pt_store *s,
                        int (*cb)(void *arg, const struct pt_store_token *t), void *arg);

#endif
