#include <criterion/criterion.h>

#include "tests/unit/tmpdir.h"
#include "db/certs.h"
#include "db/store.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

/* Every test gets its own directory under /tmp, removed afterwards. */
static char dir[64];
static char dbpath[128];

static void setup(void)
{
    pt_tmpdir_make(dir, sizeof(dir), "store");
    snprintf(dbpath, sizeof(dbpath), "%s/portier.db", dir);
}

static void teardown(void)
{
    pt_tmpdir_remove(dir);
}

TestSuite(store, .init = setup, .fini = teardown);

static struct pt_store *open_default(void)
{
    struct pt_store *s = NULL;
    char err[256] = "";
    int rc = pt_store_open(dbpath, &s, err, sizeof(err));
    cr_assert_eq(rc, 0, "pt_store_open: %s (%s)", pt_strerror(rc), err);
    cr_assert_not_null(s);
    return s;
}

/* Reads a single integer or text with a separate SQLite connection: what a
 * second process (or the daemon after a restart) would see. */
static long long peek_int(const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    cr_assert_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static bool table_exists(const char *name)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='%s'", name);
    return peek_int(sql) == 1;
}

static void set_user_version(unsigned v)
{
    sqlite3 *db = NULL;
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %u", v);
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static mode_t file_mode(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s", path);
    return st.st_mode & 07777;
}

/* ---- open, migrations ---------------------------------------------------- */

Test(store, embedded_migrations)
{
    struct pt_migration m[64];
    int n = pt_store_embedded_migrations(m, 64);
    cr_assert_geq(n, 1);
    for (int i = 0; i < n; i++) {
        cr_expect_eq(m[i].number, (unsigned)i + 1);
        cr_expect_not_null(m[i].sql);
        cr_expect_eq(strlen(m[i].name) > 5 && m[i].name[4] == '_', true, "%s", m[i].name);
    }
    cr_expect_str_eq(m[0].name, "0001_init.sql");
    /* Not enough room is a build bug, reported rather than overflowed. */
    cr_expect_eq(pt_store_embedded_migrations(m, 0), PT_EINVAL);
    if (n > 1)
        cr_expect_eq(pt_store_embedded_migrations(m, (size_t)n - 1), PT_EINVAL);
}

Test(store, open_creates_private_wal_database)
{
    mode_t old = umask(0);
    struct pt_store *s = open_default();
    cr_expect_eq(file_mode(dbpath), 0600, "database mode %o", file_mode(dbpath));

    struct pt_migration m[64];
    int n = pt_store_embedded_migrations(m, 64);
    cr_expect_eq(pt_store_schema_version(s), (unsigned)n);
    cr_expect_eq(peek_int("PRAGMA user_version"), n);
    cr_expect(table_exists("backends"));
    cr_expect(table_exists("domains"));
    cr_expect(table_exists("meta"));

    /* WAL is recorded in the file header: another connection sees it. */
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* A write goes through the -wal file, which is as private as the db. */
    bool created;
    cr_assert_eq(pt_store_put(s, PT_STORE_BACKEND, "b", "{}", NULL, NULL, &created), 0);
    char wal[160], shm[160];
    snprintf(wal, sizeof(wal), "%s-wal", dbpath);
    snprintf(shm, sizeof(shm), "%s-shm", dbpath);
    cr_expect_eq(access(wal, F_OK), 0, "no -wal file");
    if (access(wal, F_OK) == 0)
        cr_expect_eq(file_mode(wal), 0600, "-wal mode %o", file_mode(wal));
    if (access(shm, F_OK) == 0)
        cr_expect_eq(file_mode(shm), 0600, "-shm mode %o", file_mode(shm));
    pt_store_close(s);
    umask(old);
}

Test(store, open_unwritable_path)
{
    struct pt_store *s = (struct pt_store *)0x1;
    char err[256] = "";
    char bad[160];
    snprintf(bad, sizeof(bad), "%s/missing/dir/portier.db", dir);
    int rc = pt_store_open(bad, &s, err, sizeof(err));
    cr_expect_lt(rc, 0);
    cr_expect_null(s);
    cr_expect_neq(err[0], '\0');
    cr_expect_eq(strchr(err, '\n'), NULL, "one line: %s", err);
}

Test(store, open_twice_is_idempotent)
{
    struct pt_store *s = open_default();
    pt_store_close(s);
    s = open_default();
    struct pt_migration m[64];
    int n = pt_store_embedded_migrations(m, 64);
    cr_expect_eq(pt_store_schema_version(s), (unsigned)n);
    cr_expect_eq(pt_store_config_version(s), 1);
    pt_store_close(s);
    pt_store_close(NULL);
}

static const struct pt_migration test_migs[] = {
    {1, "0001_a.sql", "CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1);"},
    {2, "0002_b.sql", "INSERT INTO a SELECT max(x) + 1 FROM a;"},
    {3, "0003_c.sql", "ALTER TABLE a ADD COLUMN y TEXT; UPDATE a SET y = 'v' || x;"},
    {4, "0004_d.sql", "CREATE TABLE d (z TEXT); INSERT INTO d SELECT group_concat(y) FROM a;"},
};

static int open_with(const struct pt_migration *m, size_t n, struct pt_store **s,
                     char *err, size_t errlen)
{
    *s = (struct pt_store *)0x1;
    err[0] = '\0';
    return pt_store_open_with(dbpath, m, n, s, err, errlen);
}

Test(store, migrations_apply_in_order_once)
{
    struct pt_store *s;
    char err[256];
    cr_assert_eq(open_with(test_migs, 2, &s, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(pt_store_schema_version(s), 2);
    pt_store_close(s);
    cr_expect_eq(peek_int("SELECT count(*) FROM a"), 2);
    cr_expect_eq(peek_int("SELECT max(x) FROM a"), 2);

    /* Reopening with more migrations applies only the new ones, in order. */
    cr_assert_eq(open_with(test_migs, 4, &s, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(pt_store_schema_version(s), 4);
    pt_store_close(s);
    cr_expect_eq(peek_int("PRAGMA user_version"), 4);
    cr_expect_eq(peek_int("SELECT count(*) FROM a"), 2);
    cr_expect_eq(peek_int("SELECT count(*) FROM d WHERE z = 'v1,v2'"), 1);

    /* And reopening with the same list runs nothing again. */
    cr_assert_eq(open_with(test_migs, 4, &s, err, sizeof(err)), 0, "%s", err);
    pt_store_close(s);
    cr_expect_eq(peek_int("SELECT count(*) FROM a"), 2);
    cr_expect_eq(peek_int("SELECT count(*) FROM d"), 1);
}

Test(store, refuses_newer_database)
{
    struct pt_store *s;
    char err[256];
    cr_assert_eq(open_with(test_migs, 3, &s, err, sizeof(err)), 0, "%s", err);
    pt_store_close(s);

    int rc = open_with(test_migs, 2, &s, err, sizeof(err));
    cr_expect_eq(rc, PT_EVERSION);
    cr_expect_null(s);
    cr_expect_not_null(strstr(err, "newer"), "message: %s", err);
    cr_expect_eq(strchr(err, '\n'), NULL);
    /* Nothing was touched. */
    cr_expect_eq(peek_int("PRAGMA user_version"), 3);

    /* The embedded list refuses a database stamped past it. */
    set_user_version(99);
    s = (struct pt_store *)0x1;
    err[0] = '\0';
    rc = pt_store_open(dbpath, &s, err, sizeof(err));
    cr_expect_eq(rc, PT_EVERSION);
    cr_expect_null(s);
    cr_expect_not_null(strstr(err, "newer"), "message: %s", err);
    cr_expect_eq(peek_int("PRAGMA user_version"), 99);
}

Test(store, failing_migration_rolls_back)
{
    static const struct pt_migration bad[] = {
        {1, "0001_a.sql", "CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1);"},
        {2, "0002_bad.sql",
         "CREATE TABLE half (x INTEGER); INSERT INTO a VALUES (2); "
         "INSERT INTO no_such_table VALUES (3);"},
        {3, "0003_c.sql", "CREATE TABLE never (x INTEGER);"},
    };
    struct pt_store *s;
    char err[256];
    int rc = open_with(bad, 3, &s, err, sizeof(err));
    cr_expect_lt(rc, 0);
    cr_expect_null(s);
    cr_expect_not_null(strstr(err, "0002_bad.sql"), "message: %s", err);
    cr_expect_eq(strchr(err, '\n'), NULL);
    /* Migration 1 committed, migration 2 left no trace, 3 never ran. */
    cr_expect_eq(peek_int("PRAGMA user_version"), 1);
    cr_expect(table_exists("a"));
    cr_expect_not(table_exists("half"));
    cr_expect_not(table_exists("never"));
    cr_expect_eq(peek_int("SELECT count(*) FROM a"), 1);

    /* A fixed migration 2 then applies cleanly. */
    cr_assert_eq(open_with(test_migs, 2, &s, err, sizeof(err)), 0, "%s", err);
    pt_store_close(s);
    cr_expect_eq(peek_int("PRAGMA user_version"), 2);
    cr_expect_eq(peek_int("SELECT count(*) FROM a"), 2);
}

Test(store, failing_first_migration_leaves_empty_database)
{
    static const struct pt_migration bad[] = {
        {1, "0001_bad.sql", "CREATE TABLE t (x INTEGER); CREATE TABLE ("},
    };
    struct pt_store *s;
    char err[256];
    cr_expect_lt(open_with(bad, 1, &s, err, sizeof(err)), 0);
    cr_expect_null(s);
    cr_expect_eq(peek_int("PRAGMA user_version"), 0);
    cr_expect_not(table_exists("t"));
}

/* ---- objects ------------------------------------------------------------- */

struct collected {
    char names[16][64];
    char docs[16][128];
    int n;
    int stop_at; /* return 7 from the callback at this index, -1 never */
};

static int collect(void *arg, const char *name, const char *doc)
{
    struct collected *c = arg;
    cr_assert_lt(c->n, 16);
    snprintf(c->names[c->n], sizeof(c->names[0]), "%s", name);
    snprintf(c->docs[c->n], sizeof(c->docs[0]), "%s", doc);
    c->n++;
    return c->n - 1 == c->stop_at ? 7 : 0;
}

Test(store, put_get_each_delete)
{
    struct pt_store *s = open_default();
    bool created = false;
    char *doc = (char *)0x1;

    cr_expect_eq(pt_store_get(s, PT_STORE_BACKEND, "b1", &doc), PT_ENOTFOUND);
    cr_expect_null(doc);

    cr_assert_eq(pt_store_put(s, PT_STORE_BACKEND, "b2", "{\"v\":2}", NULL, NULL, &created),
                 0);
    cr_expect(created);
    cr_assert_eq(pt_store_put(s, PT_STORE_BACKEND, "b1", "{\"v\":1}", NULL, NULL, &created),
                 0);
    cr_expect(created);
    cr_assert_eq(pt_store_put(s, PT_STORE_BACKEND, "b1", "{\"v\":11}", NULL, NULL, &created),
                 0);
    cr_expect_not(created, "a replace is not a create");

    cr_assert_eq(pt_store_get(s, PT_STORE_BACKEND, "b1", &doc), 0);
    cr_expect_str_eq(doc, "{\"v\":11}");
    free(doc);
    /* Names are exact: no case folding. */
    cr_expect_eq(pt_store_get(s, PT_STORE_BACKEND, "B1", &doc), PT_ENOTFOUND);
    /* Kinds are separate namespaces. */
    cr_expect_eq(pt_store_get(s, PT_STORE_DOMAIN, "b1", &doc), PT_ENOTFOUND);

    cr_assert_eq(pt_store_put(s, PT_STORE_DOMAIN, "z.example.org", "{\"d\":\"z\"}", "b1",
                              "offload", &created),
                 0);
    cr_expect(created);
    cr_assert_eq(pt_store_put(s, PT_STORE_DOMAIN, "a.example.org", "{\"d\":\"a\"}", "b2",
                              "passthrough", &created),
                 0);

    struct collected c = {.stop_at = -1};
    cr_assert_eq(pt_store_each(s, PT_STORE_BACKEND, collect, &c), 0);
    cr_assert_eq(c.n, 2);
    cr_expect_str_eq(c.names[0], "b1");
    cr_expect_str_eq(c.docs[0], "{\"v\":11}");
    cr_expect_str_eq(c.names[1], "b2");

    memset(&c, 0, sizeof(c));
    c.stop_at = -1;
    cr_assert_eq(pt_store_each(s, PT_STORE_DOMAIN, collect, &c), 0);
    cr_assert_eq(c.n, 2);
    cr_expect_str_eq(c.names[0], "a.example.org"); /* ordered by name */
    cr_expect_str_eq(c.names[1], "z.example.org");

    /* A non-zero return stops the walk and is passed back. */
    memset(&c, 0, sizeof(c));
    c.stop_at = 0;
    cr_expect_eq(pt_store_each(s, PT_STORE_BACKEND, collect, &c), 7);
    cr_expect_eq(c.n, 1);

    cr_expect_eq(pt_store_delete(s, PT_STORE_DOMAIN, "a.example.org", NULL), 0);
    cr_expect_eq(pt_store_delete(s, PT_STORE_DOMAIN, "a.example.org", NULL), PT_ENOTFOUND);
    cr_expect_eq(pt_store_get(s, PT_STORE_DOMAIN, "a.example.org", &doc), PT_ENOTFOUND);
    cr_expect_eq(pt_store_delete(s, PT_STORE_BACKEND, "b2", NULL), 0);
    cr_expect_eq(pt_store_delete(s, PT_STORE_BACKEND, "nope", NULL), PT_ENOTFOUND);

    memset(&c, 0, sizeof(c));
    c.stop_at = -1;
    cr_assert_eq(pt_store_each(s, PT_STORE_BACKEND, collect, &c), 0);
    cr_expect_eq(c.n, 1);
    pt_store_close(s);
}

Test(store, each_on_empty_table)
{
    struct pt_store *s = open_default();
    struct collected c = {.stop_at = -1};
    cr_expect_eq(pt_store_each(s, PT_STORE_DOMAIN, collect, &c), 0);
    cr_expect_eq(c.n, 0);
    pt_store_close(s);
}

Test(store, domain_needs_existing_backend)
{
    struct pt_store *s = open_default();
    bool created = true;
    char *doc = NULL;
    cr_expect_eq(pt_store_put(s, PT_STORE_DOMAIN, "a.example.org", "{}", "ghost",
                              "passthrough", &created),
                 PT_ENOTFOUND);
    cr_expect_eq(pt_store_get(s, PT_STORE_DOMAIN, "a.example.org", &doc), PT_ENOTFOUND);
    cr_expect_eq(peek_int("SELECT count(*) FROM domains"), 0);

    /* Replacing an existing domain with a missing backend fails too and
     * leaves the old row alone. */
    cr_assert_eq(pt_store_put(s, PT_STORE_BACKEND, "real", "{}", NULL, NULL, &created), 0);
    cr_assert_eq(pt_store_put(s, PT_STORE_DOMAIN, "a.example.org", "{\"v\":1}", "real",
                              "passthrough", &created),
                 0);
    cr_expect_eq(pt_store_put(s, PT_STORE_DOMAIN, "a.example.org", "{\"v\":2}", "ghost",
                              "passthrough", &created),
                 PT_ENOTFOUND);
    cr_assert_eq(pt_store_get(s, PT_STORE_DOMAIN, "a.example.org", &doc), 0);
    cr_expect_str_eq(doc, "{\"v\":1}");
    free(doc);
    pt_store_close(s);
}

Test(store, delete_backend_in_use)
{
    struct pt_store *s = open_default();
    bool created;
    cr_assert_eq(pt_store_put(s, PT_STORE_BACKEND, "b", "{}", NULL, NULL, &created), 0);
    cr_assert_eq(pt_store_put(s, PT_STORE_BACKEND, "other", "{}", NULL, NULL, &created), 0);
    cr_assert_eq(pt_store_put(s, PT_STORE_DOMAIN, "m.example.org", "{}", "b", "offload",
                              &created),
                 0);
    cr_assert_eq(pt_store_put(s, PT_STORE_DOMAIN, "c.example.org", "{}", "b",
                              "passthrough", &created),
                 0);

    char *user = (char *)0x1;
    cr_expect_eq(pt_store_delete(s, PT_STORE_BACKEND, "b", &user), PT_EINUSE);
    cr_assert_not_null(user);
    cr_expect_str_eq(user, "domain 'c.example.org'"); /* the first by name */
    free(user);
    cr_expect_eq(pt_store_delete(s, PT_STORE_BACKEND, "b", NULL), PT_EINUSE);
    char *doc = NULL;
    cr_expect_eq(pt_store_get(s, PT_STORE_BACKEND, "b", &doc), 0);
    free(doc);

    /* Move one domain away, delete the other: then the backend can go. */
    cr_assert_eq(pt_store_put(s, PT_STORE_DOMAIN, "c.example.org", "{}", "other",
                              "passthrough", &created),
                 0);
    cr_expect_not(created);
    user = NULL;
    cr_expect_eq(pt_store_delete(s, PT_STORE_BACKEND, "b", &user), PT_EINUSE);
    cr_expect_str_eq(user, "domain 'm.example.org'");
    free(user);
    cr_assert_eq(pt_store_delete(s, PT_STORE_DOMAIN, "m.example.org", NULL), 0);
    user = (char *)0x1;
    cr_expect_eq(pt_store_delete(s, PT_STORE_BACKEND, "b", &user), 0);
    cr_expect_null(user);
    pt_store_close(s);
}

Test(store, bad_mode_refused_by_schema)
{
    struct pt_store *s = open_default();
    bool created;
    cr_assert_eq(pt_store_put(s, PT_STORE_BACKEND, "b", "{}", NULL, NULL, &created), 0);
    cr_expect_eq(pt_store_put(s, PT_STORE_DOMAIN, "x.example.org", "{}", "b", "bogus",
                              &created),
                 PT_EDB);
    cr_expect_eq(peek_int("SELECT count(*) FROM domains"), 0);
    pt_store_close(s);
}

/* ---- transactions and config_version ------------------------------------- */

Test(store, config_version_bump_commit_rollback)
{
    struct pt_store *s = open_default();
    uint64_t v = 0;
    cr_expect_eq(pt_store_config_version(s), 1);

    cr_assert_eq(pt_store_begin(s), 0);
    cr_assert_eq(pt_store_bump_version(s, &v), 0);
    cr_expect_eq(v, 2);
    cr_expect_eq(pt_store_config_version(s), 2); /* visible inside */
    cr_expect_eq(peek_int("SELECT value FROM meta WHERE key='config_version'"), 1,
                 "not visible to others before commit");
    cr_assert_eq(pt_store_commit(s), 0);
    cr_expect_eq(pt_store_config_version(s), 2);
    cr_expect_eq(peek_int("SELECT value FROM meta WHERE key='config_version'"), 2);

    /* A mutation that fails rolls back object and version together. */
    bool created;
    cr_assert_eq(pt_store_begin(s), 0);
    cr_assert_eq(pt_store_put(s, PT_STORE_BACKEND, "b", "{}", NULL, NULL, &created), 0);
    cr_assert_eq(pt_store_bump_version(s, &v), 0);
    cr_expect_eq(v, 3);
    pt_store_rollback(s);
    cr_expect_eq(pt_store_config_version(s), 2);
    char *doc = NULL;
    cr_expect_eq(pt_store_get(s, PT_STORE_BACKEND, "b", &doc), PT_ENOTFOUND);

    /* Two bumps in one transaction are two versions. */
    cr_assert_eq(pt_store_begin(s), 0);
    cr_assert_eq(pt_store_bump_version(s, &v), 0);
    cr_assert_eq(pt_store_bump_version(s, &v), 0);
    cr_expect_eq(v, 4);
    cr_assert_eq(pt_store_commit(s), 0);
    cr_expect_eq(pt_store_config_version(s), 4);

    /* Rollback outside a transaction is harmless. */
    pt_store_rollback(s);
    cr_expect_eq(pt_store_config_version(s), 4);
    pt_store_close(s);
}

Test(store, commit_is_visible_to_another_connection)
{
    struct pt_store *a = open_default();
    struct pt_store *b = open_default();
    bool created;
    uint64_t v;
    cr_assert_eq(pt_store_begin(a), 0);
    cr_assert_eq(pt_store_put(a, PT_STORE_BACKEND, "b", "{\"x\":1}", NULL, NULL, &created),
                 0);
    cr_assert_eq(pt_store_bump_version(a, &v), 0);
    cr_assert_eq(pt_store_commit(a), 0);
    char *doc = NULL;
    cr_assert_eq(pt_store_get(b, PT_STORE_BACKEND, "b", &doc), 0);
    cr_expect_str_eq(doc, "{\"x\":1}");
    free(doc);
    cr_expect_eq(pt_store_config_version(b), v);
    pt_store_close(a);
    pt_store_close(b);
}

Test(store, persists_across_reopen)
{
    struct pt_store *s = open_default();
    bool created;
    uint64_t v;
    cr_assert_eq(pt_store_begin(s), 0);
    cr_assert_eq(pt_store_put(s, PT_STORE_BACKEND, "yunohost1",
                              "{\"name\":\"yunohost1\",\"servers\":[\"192.168.99.11:443\"]}",
                              NULL, NULL, &created),
                 0);
    cr_assert_eq(pt_store_put(s, PT_STORE_DOMAIN, "cloud.example.org", "{\"d\":1}",
                              "yunohost1", "passthrough", &created),
                 0);
    cr_assert_eq(pt_store_bump_version(s, &v), 0);
    cr_assert_eq(pt_store_commit(s), 0);
    /* An uncommitted change at close time is lost. */
    cr_assert_eq(pt_store_begin(s), 0);
    cr_assert_eq(pt_store_put(s, PT_STORE_BACKEND, "lost", "{}", NULL, NULL, &created), 0);
    pt_store_close(s);

    s = open_default();
    char *doc = NULL;
    cr_assert_eq(pt_store_get(s, PT_STORE_BACKEND, "yunohost1", &doc), 0);
    cr_expect_str_eq(doc, "{\"name\":\"yunohost1\",\"servers\":[\"192.168.99.11:443\"]}");
    free(doc);
    cr_assert_eq(pt_store_get(s, PT_STORE_DOMAIN, "cloud.example.org", &doc), 0);
    cr_expect_str_eq(doc, "{\"d\":1}");
    free(doc);
    cr_expect_eq(pt_store_get(s, PT_STORE_BACKEND, "lost", &doc), PT_ENOTFOUND);
    cr_expect_eq(pt_store_config_version(s), v);
    /* The domain -> backend link survived too. */
    cr_expect_eq(pt_store_delete(s, PT_STORE_BACKEND, "yunohost1", NULL), PT_EINUSE);
    pt_store_close(s);
}

Test(store, odd_names_and_documents)
{
    struct pt_store *s = open_default();
    bool created;
    /* Quotes and percent signs go through bound parameters, not SQL text. */
    const char *name = "x'); DROP TABLE backends; --%s";
    const char *doc = "{\"s\":\"it's \\\"quoted\\\" %d\"}";
    cr_assert_eq(pt_store_put(s, PT_STORE_BACKEND, name, doc, NULL, NULL, &created), 0);
    char *got = NULL;
    cr_assert_eq(pt_store_get(s, PT_STORE_BACKEND, name, &got), 0);
    cr_expect_str_eq(got, doc);
    free(got);
    cr_expect(table_exists("backends"));
    cr_expect_eq(pt_store_delete(s, PT_STORE_BACKEND, name, NULL), 0);
    pt_store_close(s);
}

/* ---- token scopes (migration 0005) ----------------------------------------- */

Test(store, token_scopes)
{
    struct pt_store *s = open_default();
    const char *scope = NULL;
    cr_assert_eq(pt_store_token_add(s, "a", "admin", "11", 1, NULL), 0);
    cr_assert_eq(pt_store_token_add(s, "b", "bans", "22", 1, NULL), 0);
    cr_assert_eq(pt_store_token_add(s, "y", "backend:yuno1", "33", 1, NULL), 0);
    /* The schema refuses what the API would not mint either. */
    cr_expect_neq(pt_store_token_add(s, "e", "backend:", "44", 1, NULL), 0);
    cr_expect_neq(pt_store_token_add(s, "r", "root", "55", 1, NULL), 0);
    cr_expect_neq(pt_store_token_add(s, "u", "backend:Yuno", "66", 1, NULL), 0);
    cr_assert_eq(pt_store_token_check(s, "33", 2, &scope), 0);
    cr_expect_str_eq(scope, "backend:yuno1");
    cr_assert_eq(pt_store_token_check(s, "22", 2, &scope), 0);
    cr_expect_str_eq(scope, "bans");
    cr_assert_eq(pt_store_token_check(s, "11", 2, &scope), 0);
    cr_expect_str_eq(scope, "admin");
    cr_expect_eq(pt_store_token_check(s, "99", 2, &scope), PT_ENOTFOUND);
    pt_store_close(s);
}

/* 0005 edits the CHECK constraint in place: the columns 0004 added to
 * tokens (max_prefix4, max_prefix6, quota) and their rows survive. */
Test(store, backend_scope_migration_keeps_columns)
{
    struct pt_migration m[64];
    int n = pt_store_embedded_migrations(m, 64);
    cr_assert_geq(n, 5);
    struct pt_store *s;
    char err[256];
    cr_assert_eq(pt_store_open_with(dbpath, m, 4, &s, err, sizeof(err)), 0, "%s", err);
    pt_store_close(s);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db,
                              "INSERT INTO tokens(name, scope, hash, created_at, quota) "
                              "VALUES ('old', 'bans', 'aa', 1, 7);",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    cr_expect_neq(sqlite3_exec(db,
                               "INSERT INTO tokens(name, scope, hash, created_at) "
                               "VALUES ('early', 'backend:x', 'bb', 1)",
                               NULL, NULL, NULL),
                  SQLITE_OK, "before 0005 the scope is refused");
    sqlite3_close(db);
    s = open_default();
    cr_expect_eq(pt_store_token_add(s, "y", "backend:yuno1", "33", 1, NULL), 0);
    pt_store_close(s);
    cr_expect_eq(peek_int("SELECT quota FROM tokens WHERE name = 'old'"), 7);
    cr_expect_eq(peek_int("SELECT count(*) FROM pragma_integrity_check "
                          "WHERE integrity_check = 'ok'"),
                 1);
}

static uint64_t held_by(struct pt_store *s, const char *who)
{
    uint64_t n = 99;
    cr_assert_eq(pt_store_ban_count(s, who, &n), 0);
    return n;
}

static int count_cb(void *arg, const struct pt_store_ban *b)
{
    (void)b;
    (*(int *)arg)++;
    return 0;
}

/* The per-creator count the quota reads is kept by triggers: inserts,
 * deletes, purges of expired bans and a change of owner all move it; the
 * list filters by creator. */
Test(store, ban_owners_and_counts)
{
    struct pt_store *s = open_default();
    bool created;
    struct pt_store_ban a1 = {"192.0.2.1", "x", 10, 0, "f2b"};
    struct pt_store_ban a2 = {"192.0.2.2", "x", 10, 50, "f2b"};
    struct pt_store_ban b1 = {"192.0.2.3", "x", 10, 0, NULL};
    cr_assert_eq(pt_store_ban_put(s, &a1, &created), 0);
    cr_assert_eq(pt_store_ban_put(s, &a2, &created), 0);
    cr_assert_eq(pt_store_ban_put(s, &b1, &created), 0);
    cr_expect_eq(held_by(s, "f2b"), 2);
    cr_expect_eq(held_by(s, "admin"), 1, "no creator reads as admin");
    cr_expect_eq(held_by(s, "nobody"), 0);
    char owner[64];
    cr_assert_eq(pt_store_ban_owner(s, "192.0.2.3", owner, sizeof(owner)), 0);
    cr_expect_str_eq(owner, "admin");
    cr_expect_eq(pt_store_ban_owner(s, "192.0.2.9", owner, sizeof(owner)), PT_ENOTFOUND);
    /* a re-ban by the same creator changes nothing; by the admin, the owner */
    cr_assert_eq(pt_store_ban_put(s, &a1, &created), 0);
    cr_expect(!created);
    cr_expect_eq(held_by(s, "f2b"), 2);
    a1.created_by = "admin";
    cr_assert_eq(pt_store_ban_put(s, &a1, &created), 0);
    cr_expect_eq(held_by(s, "f2b"), 1);
    cr_expect_eq(held_by(s, "admin"), 2);
    int n = 0;
    cr_assert_eq(pt_store_ban_each(s, 0, "f2b", count_cb, &n), 0);
    cr_expect_eq(n, 1);
    n = 0;
    cr_assert_eq(pt_store_ban_each(s, 0, NULL, count_cb, &n), 0);
    cr_expect_eq(n, 3);
    /* the expired one is purged and stops counting */
    unsigned purged = 0;
    cr_assert_eq(pt_store_ban_purge(s, 60, &purged), 0);
    cr_expect_eq(purged, 1);
    cr_expect_eq(held_by(s, "f2b"), 0);
    cr_assert_eq(pt_store_ban_delete(s, "192.0.2.3"), 0);
    cr_expect_eq(held_by(s, "admin"), 1);
    pt_store_close(s);
}

/* ---- certificate_names: which certificates cover a name ------------------- */

struct found {
    char ids[4][16];
    size_t n;
};

static int found_cb(void *arg, const struct pt_store_cert *c)
{
    struct found *f = arg;
    cr_assert_lt(f->n, 4);
    snprintf(f->ids[f->n++], sizeof(f->ids[0]), "%s", c->id);
    cr_assert_not_null(c->status);
    return 0;
}

static size_t covering(struct pt_store_certq *q, const char *name, struct found *f)
{
    memset(f, 0, sizeof(*f));
    cr_assert_eq(pt_store_certq_each(q, name, found_cb, f), 0);
    return f->n;
}

static void put_cert_row(struct pt_store *s, const char *id, const char *domains)
{
    struct pt_store_cert c = {.id = id, .source = "manual", .domains_json = domains,
                              .status = "valid", .created = 1, .updated = 1};
    cr_assert_eq(pt_store_begin(s), 0);
    cr_assert_eq(pt_store_cert_put(s, &c), 0);
    cr_assert_eq(pt_store_commit(s), 0);
}

Test(store, certificates_are_found_by_name_through_the_index)
{
    struct pt_store *s = open_default();
    put_cert_row(s, "c1", "[\"a.example.org\",\"b.example.org\"]");
    put_cert_row(s, "c2", "[\"*.example.org\"]");
    put_cert_row(s, "c3", "[\"other.test\"]");
    struct pt_store_certq *q = NULL;
    cr_assert_eq(pt_store_certq_open(s, &q), 0);
    struct found f;
    cr_expect_eq(covering(q, "a.example.org", &f), 2); /* c1 exactly, c2 by wildcard */
    cr_expect_eq(covering(q, "c.example.org", &f), 1);
    cr_expect_str_eq(f.ids[0], "c2");
    cr_expect_eq(covering(q, "x.a.example.org", &f), 0, "a wildcard covers one label");
    cr_expect_eq(covering(q, "example.org", &f), 0);
    cr_expect_eq(covering(q, "*.example.org", &f), 1, "the same wildcard, not another");
    cr_expect_eq(covering(q, "*.a.example.org", &f), 0);
    cr_expect_eq(covering(q, "other.test", &f), 1);
    pt_store_certq_close(q);

    /* Replaced (INSERT OR REPLACE) and deleted rows leave no stale names. */
    put_cert_row(s, "c1", "[\"z.example.net\"]");
    cr_assert_eq(pt_store_begin(s), 0);
    cr_assert_eq(pt_store_cert_delete(s, "c3"), 0);
    cr_assert_eq(pt_store_commit(s), 0);
    cr_assert_eq(pt_store_certq_open(s, &q), 0);
    cr_expect_eq(covering(q, "b.example.org", &f), 1);
    cr_expect_str_eq(f.ids[0], "c2");
    cr_expect_eq(covering(q, "z.example.net", &f), 1);
    cr_expect_eq(covering(q, "other.test", &f), 0);
    pt_store_certq_close(q);
    pt_store_close(s);
    cr_expect_eq(peek_int("SELECT count(*) FROM certificate_names"), 2);
    /* An UPDATE of the names would leave the index behind: refused. */
    sqlite3 *raw = NULL;
    cr_assert_eq(sqlite3_open(dbpath, &raw), SQLITE_OK);
    cr_expect_neq(sqlite3_exec(raw, "UPDATE certificates SET domains = '[\"q.test\"]'", NULL,
                               NULL, NULL),
                  SQLITE_OK);
    cr_expect_eq(sqlite3_exec(raw, "UPDATE certificates SET failures = 1", NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(raw);
}

static void put_backend(struct pt_store *s, const char *name)
{
    bool created;
    cr_assert_eq(pt_store_put(s, PT_STORE_BACKEND, name, "{}", NULL, NULL, &created), 0);
}

/* One writer of a group: its savepoint, backend <name>, then <end>
 * (pt_store_keep or pt_store_rollback). */
static void group_write(struct pt_store *s, const char *name, void (*end)(struct pt_store *))
{
    cr_assert_eq(pt_store_begin(s), 0);
    put_backend(s, name);
    end(s);
}

static long long backends_seen_elsewhere(void)
{
    return peek_int("SELECT count(*) FROM backends");
}

/* A group commit: writers share a transaction, each in its savepoint; one
 * that fails undoes only its own changes; one commit makes all durable. */
Test(store, group_transaction_savepoints)
{
    struct pt_store *s = open_default();
    group_write(s, "a", pt_store_keep);
    cr_assert_eq(pt_store_kept(s), 1);
    group_write(s, "b", pt_store_rollback); /* it fails: "b" goes, "a" stays */
    cr_assert_eq(pt_store_kept(s), 1);
    group_write(s, "c", pt_store_keep);
    cr_expect_eq(backends_seen_elsewhere(), 0, "nothing is committed before the group");
    cr_assert_eq(pt_store_commit(s), 0);
    cr_expect_eq(pt_store_kept(s), 0);
    cr_expect_eq(backends_seen_elsewhere(), 2);
    char *doc = NULL;
    cr_expect_eq(pt_store_get(s, PT_STORE_BACKEND, "b", &doc), PT_ENOTFOUND);
    free(doc);
    pt_store_close(s);
}

Test(store, group_rollback_and_join)
{
    struct pt_store *s = open_default();
    /* A lone writer that fails leaves no transaction open. */
    group_write(s, "x", pt_store_rollback);
    cr_expect_eq(pt_store_kept(s), 0);
    /* Rolling back with no savepoint open undoes the whole group. */
    group_write(s, "a", pt_store_keep);
    group_write(s, "b", pt_store_keep);
    pt_store_rollback(s);
    cr_expect_eq(pt_store_kept(s), 0);
    cr_expect_eq(backends_seen_elsewhere(), 0);
    /* A direct commit while others' changes are kept joins them... */
    group_write(s, "a", pt_store_keep);
    cr_assert_eq(pt_store_begin(s), 0);
    put_backend(s, "b");
    cr_assert_eq(pt_store_commit(s), 0);
    cr_expect_eq(pt_store_kept(s), 2);
    cr_expect_eq(backends_seen_elsewhere(), 0);
    /* ...and the group's commit makes both durable. */
    cr_assert_eq(pt_store_commit(s), 0);
    cr_expect_eq(backends_seen_elsewhere(), 2);
    pt_store_close(s);
}

/* The checkpointer keeps the WAL from growing while nothing reads it: a
 * thread checkpoints past 1000 pages, so the WAL restarts long before the
 * 16,000 pages at which a commit would checkpoint inline. */
Test(store, wal_checkpointed_off_the_commit_path)
{
    struct pt_store *s = open_default();
    char name[32], big[4096];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    for (int i = 0; i < 400; i++) {
        bool created;
        big[0] = (char)('a' + i % 26); /* an unchanged document writes nothing */
        cr_assert_eq(pt_store_begin(s), 0);
        for (int j = 0; j < 50; j++) {
            snprintf(name, sizeof(name), "b%d", j);
            cr_assert_eq(pt_store_put(s, PT_STORE_BACKEND, name, big, NULL, NULL, &created),
                         0);
        }
        cr_assert_eq(pt_store_commit(s), 0);
        usleep(1000);
    }
    char wal[160];
    struct stat st;
    snprintf(wal, sizeof(wal), "%s-wal", dbpath);
    cr_assert_eq(stat(wal, &st), 0);
    /* 400 commits: about 6,000 pages without checkpoints. */
    cr_expect_lt(st.st_size, 2500 * 4120, "WAL of %lld bytes", (long long)st.st_size);
    pt_store_close(s);
}
