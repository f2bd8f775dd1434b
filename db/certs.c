#include "db/certs.h"

#include "db/store_internal.h"

#include "common/dname.h"

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bind_time(sqlite3_stmt *st, int i, int64_t v)
{
    if (v)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

int pt_store_cert_put(struct pt_store *s, const struct pt_store_cert *c)
{
    sqlite3_stmt *st;
    if (pt_store__prep(s,
                       "INSERT OR REPLACE INTO certificates (id, source, domains, cert_pem, "
                       "key_pem, status, not_before, not_after, renew_after, last_error, "
                       "retry_at, failures, created_at, updated_at) "
                       "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       &st) != 0)
        return PT_EDB;
    sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->domains_json, -1, SQLITE_STATIC);
    bind_text_or_null(st, 4, c->cert_pem);
    bind_text_or_null(st, 5, c->key_pem);
    sqlite3_bind_text(st, 6, c->status, -1, SQLITE_STATIC);
    bind_time(st, 7, c->not_before);
    bind_time(st, 8, c->not_after);
    bind_time(st, 9, c->renew_after);
    bind_text_or_null(st, 10, c->last_error);
    bind_time(st, 11, c->retry_at);
    sqlite3_bind_int64(st, 12, c->failures);
    sqlite3_bind_int64(st, 13, c->created);
    sqlite3_bind_int64(st, 14, c->updated);
    return pt_store__done(s, st);
}

static int64_t col_time(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, i);
}

static int walk(sqlite3_stmt *st, int (*cb)(void *arg, const struct pt_store_cert *c),
                void *arg, bool *any)
{
    int rc = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        struct pt_store_cert c = {
            .id = (const char *)sqlite3_column_text(st, 0),
            .source = (const char *)sqlite3_column_text(st, 1),
            .domains_json = (const char *)sqlite3_column_text(st, 2),
            .cert_pem = (const char *)sqlite3_column_text(st, 3),
            .key_pem = (const char *)sqlite3_column_text(st, 4),
            .status = (const char *)sqlite3_column_text(st, 5),
            .not_before = col_time(st, 6),
            .not_after = col_time(st, 7),
            .renew_after = col_time(st, 8),
            .last_error = (const char *)sqlite3_column_text(st, 9),
            .retry_at = col_time(st, 10),
            .failures = sqlite3_column_int64(st, 11),
            .created = sqlite3_column_int64(st, 12),
            .updated = sqlite3_column_int64(st, 13),
        };
        *any = true;
        rc = cb(arg, &c);
    }
    sqlite3_finalize(st);
    return rc;
}

#define CERT_COLUMNS                                                               \
    "SELECT id, source, domains, cert_pem, key_pem, status, not_before, not_after, " \
    "renew_after, last_error, retry_at, failures, created_at, updated_at FROM certificates "

int pt_store_cert_each(struct pt_store *s,
                       int (*cb)(void *arg, const struct pt_store_cert *c), void *arg)
{
    sqlite3_stmt *st;
    bool any = false;
    if (pt_store__prep(s, CERT_COLUMNS "ORDER BY id", &st) != 0)
        return PT_EDB;
    return walk(st, cb, arg, &any);
}

int pt_store_cert_get(struct pt_store *s, const char *id,
                      int (*cb)(void *arg, const struct pt_store_cert *c), void *arg)
{
    sqlite3_stmt *st;
    bool any = false;
    if (pt_store__prep(s, CERT_COLUMNS "WHERE id = ?", &st) != 0)
        return PT_EDB;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = walk(st, cb, arg, &any);
    return rc ? rc : any ? 0 : PT_ENOTFOUND;
}

static int delete_where(struct pt_store *s, const char *sql, const char *key)
{
    sqlite3_stmt *st;
    if (pt_store__prep(s, sql, &st) != 0)
        return PT_EDB;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = pt_store__done(s, st);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        return PT_ENOTFOUND;
    return rc;
}

int pt_store_cert_delete(struct pt_store *s, const char *id)
{
    return delete_where(s, "DELETE FROM certificates WHERE id = ?", id);
}

struct pt_store_certq {
    sqlite3_stmt *st;
};

int pt_store_certq_open(struct pt_store *s, struct pt_store_certq **q)
{
    *q = NULL;
    sqlite3_stmt *st;
    if (pt_store__prep(s,
                       "SELECT id, status, not_after FROM certificates WHERE id IN "
                       "(SELECT cert_id FROM certificate_names WHERE name IN (?1, ?2))",
                       &st) != 0)
        return PT_EDB;
    *q = pt_xcalloc(1, sizeof(**q));
    (*q)->st = st;
    return 0;
}

int pt_store_certq_each(struct pt_store_certq *q, const char *name,
                        int (*cb)(void *arg, const struct pt_store_cert *c), void *arg)
{
    /* "*.rest" covers exactly one label, never one that is itself "*". */
    const char *dot = strchr(name, '.');
    char wild[PT_DNAME_MAX + 3] = "";
    if (dot && dot != name && memchr(name, '*', (size_t)(dot - name)) == NULL &&
        strlen(dot) < sizeof(wild) - 1)
        snprintf(wild, sizeof(wild), "*%s", dot);
    sqlite3_reset(q->st);
    sqlite3_bind_text(q->st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q->st, 2, wild, -1, SQLITE_STATIC);
    int rc = 0, step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(q->st)) == SQLITE_ROW) {
        struct pt_store_cert c = {
            .id = (const char *)sqlite3_column_text(q->st, 0),
            .status = (const char *)sqlite3_column_text(q->st, 1),
            .not_after = col_time(q->st, 2),
        };
        rc = cb(arg, &c);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = PT_EDB;
    sqlite3_reset(q->st);
    sqlite3_clear_bindings(q->st);
    return rc;
}

void pt_store_certq_close(struct pt_store_certq *q)
{
    if (q == NULL)
        return;
    sqlite3_finalize(q->st);
    free(q);
}

int pt_store_acme_token_put(struct pt_store *s, const char *token, const char *keyauth,
                            int64_t now)
{
    sqlite3_stmt *st;
    if (pt_store__prep(s,
                       "INSERT OR REPLACE INTO acme_challenges (token, key_authorization, "
                       "created_at) VALUES (?, ?, ?)",
                       &st) != 0)
        return PT_EDB;
    sqlite3_bind_text(st, 1, token, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, keyauth, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    return pt_store__done(s, st);
}

int pt_store_acme_token_delete(struct pt_store *s, const char *token)
{
    return delete_where(s, "DELETE FROM acme_challenges WHERE token = ?", token);
}

int pt_store_acme_token_each(struct pt_store *s,
                             int (*cb)(void *arg, const char *token, const char *keyauth),
                             void *arg)
{
    sqlite3_stmt *st;
    if (pt_store__prep(s, "SELECT token, key_authorization FROM acme_challenges ORDER BY token",
                       &st) != 0)
        return PT_EDB;
    int rc = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW)
        rc = cb(arg, (const char *)sqlite3_column_text(st, 0),
                (const char *)sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    return rc;
}

int pt_store_acme_state_get(struct pt_store *s, const char *key, char **value)
{
    sqlite3_stmt *st;
    *value = NULL;
    if (pt_store__prep(s, "SELECT value FROM acme_state WHERE key = ?", &st) != 0)
        return PT_EDB;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = PT_ENOTFOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *value = pt_xstrdup((const char *)sqlite3_column_text(st, 0));
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

int pt_store_acme_state_set(struct pt_store *s, const char *key, const char *value)
{
    sqlite3_stmt *st;
    if (pt_store__prep(s, "INSERT OR REPLACE INTO acme_state (key, value) VALUES (?, ?)",
                       &st) != 0)
        return PT_EDB;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    return pt_store__done(s, st);
}

int pt_store_acme_state_delete(struct pt_store *s, const char *key)
{
    return delete_where(s, "DELETE FROM acme_state WHERE key = ?", key);
}
