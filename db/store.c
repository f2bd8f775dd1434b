#include "db/store_internal.h"

#include "common/embed.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIGRATIONS_MAX 64


static const char *const tables[] = {"backends", "domains", "streams"};

static int exec(struct pt_store *s, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "portierd: sqlite: %s: %s\n", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return PT_EDB;
    }
    return 0;
}

int pt_store_embedded_migrations(struct pt_migration *out, size_t max)
{
    size_t n = 0;
    static const char prefix[] = "db/migrations/";
    for (const struct pt_embed_file *f = pt_embed_files; f->path; f++) {
        if (strncmp(f->path, prefix, sizeof(prefix) - 1) != 0)
            continue;
        const char *base = f->path + sizeof(prefix) - 1;
        if (n == max || strlen(base) < 6 || base[4] != '_')
            return PT_EINVAL;
        unsigned num = 0;
        for (int i = 0; i < 4; i++) {
            if (base[i] < '0' || base[i] > '9')
                return PT_EINVAL;
            num = num * 10 + (unsigned)(base[i] - '0');
        }
        /* The table is sorted by path, so numbers must come out 1, 2, 3... */
        if (num != n + 1)
            return PT_EINVAL;
        out[n].number = num;
        out[n].name = base;
        out[n].sql = (const char *)f->data;
        n++;
    }
    return (int)n;
}

unsigned pt_store_schema_version(struct pt_store *s)
{
    sqlite3_stmt *st;
    unsigned v = 0;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = (unsigned)sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int migrate(struct pt_store *s, const struct pt_migration *m, size_t n,
                   char *err, size_t errlen)
{
    unsigned have = pt_store_schema_version(s);
    if (have > n) {
        snprintf(err, errlen,
                 "database schema version %u is newer than this portierd knows (%zu): "
                 "run a newer portierd or restore a backup",
                 have, n);
        return PT_EVERSION;
    }
    for (size_t i = have; i < n; i++) {
        char *msg = NULL;
        char pragma[64];
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %u", m[i].number);
        /* Schema change and version stamp commit together or not at all. */
        if (exec(s, "BEGIN IMMEDIATE") != 0)
            goto fail;
        if (sqlite3_exec(s->db, m[i].sql, NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(s->db, pragma, NULL, NULL, &msg) != SQLITE_OK) {
            snprintf(err, errlen, "migration %s failed: %s", m[i].name,
                     msg ? msg : "?");
            sqlite3_free(msg);
            exec(s, "ROLLBACK");
            return PT_EDB;
        }
        if (exec(s, "COMMIT") != 0)
            goto fail;
    }
    return 0;
fail:
    snprintf(err, errlen, "migration failed: %s", sqlite3_errmsg(s->db));
    return PT_EDB;
}

/* WAL checkpoints off the commit path. SQLite's automatic checkpoint runs
 * inside the COMMIT that takes the WAL past 1000 pages: that write then
 * copies the pages into the database file and fsyncs it, milliseconds on
 * the path of an API answer (bench/PROFILE.md, "write tail"). Instead the
 * committing connection only signals a thread, which runs a PASSIVE
 * checkpoint on its own connection (it waits for no lock and blocks no
 * writer; the next write after a complete one restarts the WAL from its
 * start). Durability is unchanged: a commit is durable once its WAL frames
 * are fsynced (synchronous=FULL), checkpointed or not. Should the thread
 * fall behind, the commit that takes the WAL past CKPT_INLINE pages
 * checkpoints itself, as SQLite would, so the WAL stays bounded. */
#define CKPT_PAGES 1000
#define CKPT_INLINE (16 * CKPT_PAGES)

struct pt_store_ckpt {
    sqlite3 *db; /* its own connection */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool due, stop; /* under mu */
    bool trace;     /* PORTIER_COMMIT_TRACE=1: a log line per checkpoint */
};

static int on_wal(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct pt_store_ckpt *c = arg;
    if (pages >= CKPT_INLINE)
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    else if (pages >= CKPT_PAGES) {
        pthread_mutex_lock(&c->mu);
        c->due = true;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    return SQLITE_OK;
}

static void *ckpt_main(void *arg)
{
    struct pt_store_ckpt *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->due && !c->stop)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->stop)
            break;
        c->due = false;
        pthread_mutex_unlock(&c->mu);
        uint64_t t0 = pt_mono_us();
        int wal = 0, copied = 0;
        int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &wal, &copied);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            fprintf(stderr, "portierd: sqlite: checkpoint: %s\n", sqlite3_errmsg(c->db));
        else if (c->trace) /* to see whether a slow commit ran beside one */
            pt_log(PT_LOG_INFO, "checkpoint trace: pages %d copied %d start_us %llu took_us %llu",
                   wal, copied, (unsigned long long)t0,
                   (unsigned long long)(pt_mono_us() - t0));
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Starts the checkpointer of <s> (open on <path>); without one (a failure
 * here), SQLite's automatic checkpoint stays on. */
static void ckpt_start(struct pt_store *s, const char *path)
{
    struct pt_store_ckpt *c = pt_xcalloc(1, sizeof(*c));
    if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(c->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close_v2(c->db);
        free(c);
        return;
    }
    c->trace = pt_log_commit_trace();
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (pthread_create(&c->thread, NULL, ckpt_main, c) != 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        sqlite3_close_v2(c->db);
        free(c);
        return;
    }
    s->ckpt = c;
    sqlite3_wal_hook(s->db, on_wal, c); /* replaces the automatic checkpoint */
}

static void ckpt_stop(struct pt_store *s)
{
    struct pt_store_ckpt *c = s->ckpt;
    if (c == NULL)
        return;
    sqlite3_wal_hook(s->db, NULL, NULL);
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    sqlite3_close_v2(c->db);
    free(c);
    s->ckpt = NULL;
}

int pt_store_open_with(const char *path, const struct pt_migration *m, size_t n,
                       struct pt_store **out, char *err, size_t errlen)
{
    *out = NULL;
    /* Create the file ourselves so it is 0600 whatever the umask; SQLite gives
     * the -wal and -shm files the same mode. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open database %s: %s", path, strerror(errno));
        return PT_EIO;
    }
    close(fd);

    struct pt_store *s = pt_xcalloc(1, sizeof(*s));
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX;
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open database %s: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : "out of memory");
        pt_store_close(s);
        return PT_EDB;
    }
    sqlite3_busy_timeout(s->db, 5000);
    sqlite3_stmt *st = NULL;
    const char *mode = NULL;
    if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        mode = (const char *)sqlite3_column_text(st, 0);
    if (mode == NULL || strcmp(mode, "wal") != 0) {
        snprintf(err, errlen, "database %s: cannot use WAL mode: %s", path,
                 sqlite3_errmsg(s->db));
        sqlite3_finalize(st);
        pt_store_close(s);
        return PT_EDB;
    }
    sqlite3_finalize(st);
    if (exec(s, "PRAGMA synchronous=FULL") != 0 || exec(s, "PRAGMA foreign_keys=ON") != 0) {
        snprintf(err, errlen, "database %s: %s", path, sqlite3_errmsg(s->db));
        pt_store_close(s);
        return PT_EDB;
    }
    int rc = migrate(s, m, n, err, errlen);
    if (rc != 0) {
        pt_store_close(s);
        return rc;
    }
    ckpt_start(s, path);
    *out = s;
    return 0;
}

int pt_store_open(const char *path, struct pt_store **out, char *err, size_t errlen)
{
    struct pt_migration m[MIGRATIONS_MAX];
    int n = pt_store_embedded_migrations(m, MIGRATIONS_MAX);
    PT_ASSERT(n > 0);
    return pt_store_open_with(path, m, (size_t)n, out, err, errlen);
}

void pt_store_close(struct pt_store *s)
{
    if (s == NULL)
        return;
    ckpt_stop(s);
    sqlite3_close_v2(s->db);
    free(s);
}

int pt_store_begin(struct pt_store *s)
{
    if (s->in_write) { /* a writer that neither kept nor rolled back: a bug */
        fprintf(stderr, "portierd: store: a write was left open; undoing it\n");
        pt_store_rollback(s);
    }
    if (s->in_txn && sqlite3_get_autocommit(s->db)) { /* SQLite ended it (an I/O error) */
        s->in_txn = false;
        s->kept = 0;
    }
    if (!s->in_txn) {
        if (exec(s, "BEGIN IMMEDIATE") != 0)
            return PT_EDB;
        s->in_txn = true;
        s->kept = 0;
    }
    /* A savepoint costs a sub-journal copy of every page the writer changes
     * (a 10,000-domain batch: thousands): taken only when there are others'
     * changes to keep should this writer fail. */
    if (s->kept > 0) {
        if (exec(s, "SAVEPOINT w") != 0)
            return PT_EDB;
        s->in_savepoint = true;
    }
    s->in_write = true;
    return 0;
}

void pt_store_keep(struct pt_store *s)
{
    PT_ASSERT(s->in_write);
    if (s->in_savepoint)
        exec(s, "RELEASE w");
    s->in_savepoint = s->in_write = false;
    s->kept++;
}

unsigned pt_store_kept(const struct pt_store *s)
{
    return s->in_txn ? s->kept : 0;
}

int pt_store_commit(struct pt_store *s)
{
    if (s->in_write) {
        pt_store_keep(s);
        if (s->kept > 1)
            return 0;
    }
    s->in_txn = false;
    s->kept = 0;
    if (exec(s, "COMMIT") != 0) {
        exec(s, "ROLLBACK");
        return PT_EDB;
    }
    return 0;
}

void pt_store_rollback(struct pt_store *s)
{
    bool own = s->in_savepoint;
    s->in_savepoint = s->in_write = false;
    if (own && !sqlite3_get_autocommit(s->db) && exec(s, "ROLLBACK TO w") == 0 &&
        exec(s, "RELEASE w") == 0)
        return;
    s->in_txn = false;
    s->kept = 0;
    if (!sqlite3_get_autocommit(s->db))
        exec(s, "ROLLBACK");
}

uint64_t pt_store_config_version(struct pt_store *s)
{
    sqlite3_stmt *st;
    uint64_t v = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key='config_version'",
                           -1, &st, NULL) != SQLITE_OK)
        return 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

int pt_store_bump_version(struct pt_store *s, uint64_t *out)
{
    uint64_t v = pt_store_config_version(s) + 1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "UPDATE meta SET value = ? WHERE key='config_version'",
                           -1, &st, NULL) != SQLITE_OK)
        return PT_EDB;
    char buf[24];
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
    sqlite3_bind_text(st, 1, buf, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : PT_EDB;
    sqlite3_finalize(st);
    if (rc == 0)
        *out = v;
    return rc;
}

/* Statements are shared by both object tables: "%s" stands for the table. */
static int prepare(struct pt_store *s, const char *tmpl, enum pt_store_kind k,
                   sqlite3_stmt **st)
{
    char sql[512];
    const char *mark = strstr(tmpl, "%s");
    PT_ASSERT(mark != NULL);
    snprintf(sql, sizeof(sql), "%.*s%s%s", (int)(mark - tmpl), tmpl, tables[k], mark + 2);
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
        fprintf(stderr, "portierd: sqlite: %s: %s\n", sql, sqlite3_errmsg(s->db));
        return PT_EDB;
    }
    return 0;
}

static bool exists(struct pt_store *s, enum pt_store_kind k, const char *name)
{
    sqlite3_stmt *st;
    if (prepare(s, "SELECT 1 FROM %s WHERE name = ?", k, &st) != 0)
        return false;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    bool found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

int pt_store_put(struct pt_store *s, enum pt_store_kind k, const char *name,
                 const char *doc, const char *backend, const char *mode,
                 bool *created)
{
    sqlite3_stmt *st;
    int64_t now = (int64_t)time(NULL);
    /* Routes (domains, streams) name a backend; backends name nothing. */
    bool routed = k != PT_STORE_BACKEND;
    if (routed && !exists(s, PT_STORE_BACKEND, backend))
        return PT_ENOTFOUND;
    *created = !exists(s, k, name);
    int rc;
    if (routed)
        rc = prepare(s,
                     "INSERT INTO %s (name, doc, created_at, updated_at, backend, mode) "
                     "VALUES (?1, ?2, ?3, ?3, ?4, ?5) ON CONFLICT(name) DO UPDATE SET "
                     "doc = ?2, updated_at = ?3, backend = ?4, mode = ?5",
                     k, &st);
    else
        rc = prepare(s,
                     "INSERT INTO %s (name, doc, created_at, updated_at) "
                     "VALUES (?1, ?2, ?3, ?3) ON CONFLICT(name) DO UPDATE SET "
                     "doc = ?2, updated_at = ?3",
                     k, &st);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, doc, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    if (routed) {
        sqlite3_bind_text(st, 4, backend, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, mode, -1, SQLITE_STATIC);
    }
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : PT_EDB;
    if (rc != 0)
        fprintf(stderr, "portierd: sqlite: put %s: %s\n", name, sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return rc;
}

int pt_store_get(struct pt_store *s, enum pt_store_kind k, const char *name, char **doc)
{
    sqlite3_stmt *st;
    *doc = NULL;
    if (prepare(s, "SELECT doc FROM %s WHERE name = ?", k, &st) != 0)
        return PT_EDB;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = PT_ENOTFOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *doc = pt_xstrdup((const char *)sqlite3_column_text(st, 0));
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

int pt_store_each(struct pt_store *s, enum pt_store_kind k,
                  int (*cb)(void *arg, const char *name, const char *doc), void *arg)
{
    sqlite3_stmt *st;
    if (prepare(s, "SELECT name, doc FROM %s ORDER BY name", k, &st) != 0)
        return PT_EDB;
    int rc = 0, step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = cb(arg, (const char *)sqlite3_column_text(st, 0),
                (const char *)sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    return rc;
}

int pt_store_delete(struct pt_store *s, enum pt_store_kind k, const char *name,
                    char **user)
{
    sqlite3_stmt *st;
    if (user)
        *user = NULL;
    if (!exists(s, k, name))
        return PT_ENOTFOUND;
    if (k == PT_STORE_BACKEND) {
        if (sqlite3_prepare_v2(s->db,
                               "SELECT 'domain ''' || name || '''', 1, name "
                               "FROM domains WHERE backend = ?1 UNION ALL "
                               "SELECT 'stream ''' || name || '''', 2, name "
                               "FROM streams WHERE backend = ?1 ORDER BY 2, 3 LIMIT 1",
                               -1, &st, NULL) != SQLITE_OK)
            return PT_EDB;
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            if (user)
                *user = pt_xstrdup((const char *)sqlite3_column_text(st, 0));
            sqlite3_finalize(st);
            return PT_EINUSE;
        }
        sqlite3_finalize(st);
    }
    if (prepare(s, "DELETE FROM %s WHERE name = ?", k, &st) != 0)
        return PT_EDB;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : PT_EDB;
    sqlite3_finalize(st);
    return rc;
}

/* ---- bans ------------------------------------------------------------------ */

int pt_store__done(struct pt_store *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : PT_EDB;
    if (rc != 0)
        fprintf(stderr, "portierd: sqlite: %s\n", sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return rc;
}

int pt_store__prep(struct pt_store *s, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
        fprintf(stderr, "portierd: sqlite: %s: %s\n", sql, sqlite3_errmsg(s->db));
        return PT_EDB;
    }
    return 0;
}

int pt_store_ban_put(struct pt_store *s, const struct pt_store_ban *b, bool *created)
{
    sqlite3_stmt *st;
    if (pt_store__prep(s, "SELECT 1 FROM bans WHERE ip = ?", &st) != 0)
        return PT_EDB;
    sqlite3_bind_text(st, 1, b->ip, -1, SQLITE_STATIC);
    *created = sqlite3_step(st) != SQLITE_ROW;
    sqlite3_finalize(st);
    if (pt_store__prep(s,
             "INSERT INTO bans (ip, reason, created_at, expires_at, created_by) "
             "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(ip) DO UPDATE SET reason = ?2, "
             "created_at = ?3, expires_at = ?4, created_by = ?5",
             &st) != 0)
        return PT_EDB;
    sqlite3_bind_text(st, 5, b->created_by ? b->created_by : "admin", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 1, b->ip, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, b->reason ? b->reason : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, b->created);
    if (b->expires)
        sqlite3_bind_int64(st, 4, b->expires);
    else
        sqlite3_bind_null(st, 4);
    return pt_store__done(s, st);
}

int pt_store_ban_delete(struct pt_store *s, const char *ip)
{
    sqlite3_stmt *st;
    if (pt_store__prep(s, "DELETE FROM bans WHERE ip = ?", &st) != 0)
        return PT_EDB;
    sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
    int rc = pt_store__done(s, st);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        return PT_ENOTFOUND;
    return rc;
}

int pt_store_ban_owner(struct pt_store *s, const char *ip, char *owner, size_t size)
{
    sqlite3_stmt *st;
    if (pt_store__prep(s, "SELECT created_by FROM bans WHERE ip = ?", &st) != 0)
        return PT_EDB;
    sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
    int rc = PT_ENOTFOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(owner, size, "%s", (const char *)sqlite3_column_text(st, 0));
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

int pt_store_ban_count(struct pt_store *s, const char *created_by, uint64_t *n)
{
    sqlite3_stmt *st;
    if (pt_store__prep(s, "SELECT n FROM ban_counts WHERE created_by = ?", &st) != 0)
        return PT_EDB;
    sqlite3_bind_text(st, 1, created_by, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *n = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : PT_EDB;
}

int pt_store_ban_each(struct pt_store *s, int64_t now, const char *created_by,
                      int (*cb)(void *arg, const struct pt_store_ban *b), void *arg)
{
    sqlite3_stmt *st;
    if (pt_store__prep(s,
             "SELECT ip, reason, created_at, expires_at, created_by FROM bans "
             "WHERE (?1 = 0 OR expires_at IS NULL OR expires_at > ?1) "
             "AND (?2 IS NULL OR created_by = ?2) ORDER BY ip",
             &st) != 0)
        return PT_EDB;
    sqlite3_bind_int64(st, 1, now);
    if (created_by)
        sqlite3_bind_text(st, 2, created_by, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    int rc = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        struct pt_store_ban b = {
            (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
            sqlite3_column_int64(st, 2),
            sqlite3_column_type(st, 3) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 3),
            (const char *)sqlite3_column_text(st, 4)};
        rc = cb(arg, &b);
    }
    sqlite3_finalize(st);
    return rc;
}

int pt_store_ban_purge(struct pt_store *s, int64_t now, unsigned *n)
{
    sqlite3_stmt *st;
    if (pt_store__prep(s, "DELETE FROM bans WHERE expires_at IS NOT NULL AND expires_at <= ?", &st) != 0)
        return PT_EDB;
    sqlite3_bind_int64(st, 1, now);
    int rc = pt_store__done(s, st);
    *n = rc == 0 ? (unsigned)sqlite3_changes(s->db) : 0;
    return rc;
}

int64_t pt_store_ban_next_expiry(struct pt_store *s, int64_t now)
{
    sqlite3_stmt *st;
    int64_t v = 0;
    if (pt_store__prep(s, "SELECT MIN(expires_at) FROM bans WHERE expires_at > ?", &st) != 0)
        return 0;
    sqlite3_bind_int64(st, 1, now);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* ---- tokens ---------------------------------------------------------------- */

int pt_store_token_add(struct pt_store *s, const char *name, const char *scope,
                       const char *hash_hex, int64_t now,
                       const struct pt_store_token_limits *lim)
{
    struct pt_store_token_limits def = PT_TOKEN_LIMITS_DEFAULT;
    if (lim == NULL)
        lim = &def;
    sqlite3_stmt *st;
    if (pt_store__prep(s, "SELECT 1 FROM tokens WHERE name = ?1 OR hash = ?2", &st) != 0)
        return PT_EDB;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, hash_hex, -1, SQLITE_STATIC);
    bool exists = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    if (exists)
        return PT_ECONFLICT;
    if (pt_store__prep(s, "INSERT INTO tokens (name, scope, hash, created_at, max_prefix4, "
                          "max_prefix6, quota) VALUES (?, ?, ?, ?, ?, ?, ?)",
             &st) != 0)
        return PT_EDB;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, hash_hex, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int(st, 5, lim->max_prefix4);
    sqlite3_bind_int(st, 6, lim->max_prefix6);
    sqlite3_bind_int64(st, 7, lim->quota);
    return pt_store__done(s, st);
}

static struct pt_store_token_limits limits_at(sqlite3_stmt *st, int col)
{
    return (struct pt_store_token_limits){(uint8_t)sqlite3_column_int(st, col),
                                          (uint8_t)sqlite3_column_int(st, col + 1),
                                          (uint32_t)sqlite3_column_int64(st, col + 2)};
}

int pt_store_token_limits(struct pt_store *s, const char *hash_hex, char *name,
                          size_t size, struct pt_store_token_limits *lim)
{
    sqlite3_stmt *st;
    if (pt_store__prep(s, "SELECT name, max_prefix4, max_prefix6, quota FROM tokens "
                          "WHERE hash = ?",
                       &st) != 0)
        return PT_EDB;
    sqlite3_bind_text(st, 1, hash_hex, -1, SQLITE_STATIC);
    int rc = PT_ENOTFOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(name, size, "%s", (const char *)sqlite3_column_text(st, 0));
        *lim = limits_at(st, 1);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

int pt_store_token_check(struct pt_store *s, const char *hash_hex, int64_t now,
                         const char **scope)
{
    sqlite3_stmt *st;
    if (pt_store__prep(s, "SELECT scope FROM tokens WHERE hash = ?", &st) != 0)
        return PT_EDB;
    sqlite3_bind_text(st, 1, hash_hex, -1, SQLITE_STATIC);
    int rc = PT_ENOTFOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *sc = (const char *)sqlite3_column_text(st, 0);
        /* the API allows nothing to a scope it does not know */
        snprintf(s->token_scope, sizeof(s->token_scope), "%s", sc ? sc : "");
        *scope = s->token_scope;
        rc = 0;
    }
    sqlite3_finalize(st);
    /* At most one write a minute per token: a commit (and its fsync) per
     * request would double the cost of a ban burst from fail2ban. */
    if (rc == 0 && pt_store__prep(s, "UPDATE tokens SET last_used = ?1 WHERE hash = ?2 AND "
                                     "(last_used IS NULL OR last_used < ?1 - 60)",
                                  &st) == 0) {
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_text(st, 2, hash_hex, -1, SQLITE_STATIC);
        pt_store__done(s, st);
    }
    return rc;
}

int pt_store_token_delete(struct pt_store *s, const char *name)
{
    sqlite3_stmt *st;
    if (pt_store__prep(s, "DELETE FROM tokens WHERE name = ?", &st) != 0)
        return PT_EDB;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = pt_store__done(s, st);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        return PT_ENOTFOUND;
    return rc;
}

int pt_store_token_each(struct pt_store *s,
                        int (*cb)(void *arg, const struct pt_store_token *t), void *arg)
{
    sqlite3_stmt *st;
    if (pt_store__prep(s, "SELECT name, scope, created_at, last_used, max_prefix4, "
                          "max_prefix6, quota FROM tokens ORDER BY name",
                       &st) != 0)
        return PT_EDB;
    int rc = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        struct pt_store_token t = {
            (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
            sqlite3_column_int64(st, 2),
            sqlite3_column_type(st, 3) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 3),
            limits_at(st, 4)};
        rc = cb(arg, &t);
    }
    sqlite3_finalize(st);
    return rc;
}
