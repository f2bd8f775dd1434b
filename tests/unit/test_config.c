#include <criterion/criterion.h>

#include "tests/unit/tmpdir.h"
#include "daemon/config.h"

#include <arpa/inet.h>
#include <pwd.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------- */

static char dir[64];

static void setup(void)
{
    pt_tmpdir_make(dir, sizeof(dir), "config");
}

static void teardown(void)
{
    pt_tmpdir_remove(dir);
}

TestSuite(config, .init = setup, .fini = teardown);

static char errbuf[512];

/* Runs pt_config_parse on "portierd" followed by the NULL-terminated args. */
static enum pt_config_result parse(struct pt_config *c, ...)
{
    char *argv[64];
    int argc = 0;
    va_list ap;
    argv[argc++] = "portierd";
    va_start(ap, c);
    char *a;
    while ((a = va_arg(ap, char *)) != NULL) {
        cr_assert_lt(argc, 63);
        argv[argc++] = a;
    }
    va_end(ap);
    argv[argc] = NULL;
    memset(errbuf, 0, sizeof(errbuf));
    return pt_config_parse(c, argc, argv, errbuf, sizeof(errbuf));
}

/* Writes <text> to DIR/<name> and returns the path (static buffer per slot). */
static const char *write_file(const char *name, const char *text)
{
    static char paths[4][160];
    static int slot;
    char *p = paths[slot++ % 4];
    snprintf(p, 160, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

/* A failed parse: PT_CONFIG_ERROR and one line naming <flag>. */
static void expect_error(enum pt_config_result r, struct pt_config *c, const char *flag,
                         const char *what)
{
    cr_expect_eq(r, PT_CONFIG_ERROR, "%s: accepted", what);
    cr_expect_neq(errbuf[0], '\0', "%s: empty message", what);
    cr_expect_null(strchr(errbuf, '\n'), "%s: more than one line: %s", what, errbuf);
    if (flag)
        cr_expect_not_null(strstr(errbuf, flag), "%s: message '%s' does not name '%s'", what,
                           errbuf, flag);
    pt_config_free(c);
}

static void expect_listen(const struct pt_listen *l, const char *ip, uint16_t port,
                          const char *text)
{
    char buf[INET6_ADDRSTRLEN];
    if (strchr(ip, ':')) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&l->sa;
        cr_assert_eq(s6->sin6_family, AF_INET6, "%s", text);
        cr_expect_eq(l->salen, sizeof(struct sockaddr_in6));
        inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof(buf));
        cr_expect_str_eq(buf, ip);
        cr_expect_eq(ntohs(s6->sin6_port), port, "%s", text);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&l->sa;
        cr_assert_eq(s4->sin_family, AF_INET, "%s", text);
        cr_expect_eq(l->salen, sizeof(struct sockaddr_in));
        inet_ntop(AF_INET, &s4->sin_addr, buf, sizeof(buf));
        cr_expect_str_eq(buf, ip);
        cr_expect_eq(ntohs(s4->sin_port), port, "%s", text);
    }
    cr_expect_str_eq(l->text, text);
}

/* ---- defaults ------------------------------------------------------------ */

Test(config, defaults)
{
    struct pt_config c;
    cr_assert_eq(parse(&c, NULL), PT_CONFIG_RUN, "%s", errbuf);
    cr_expect_str_eq(c.state_dir, "./var");
    cr_expect_str_eq(c.token_file, "./var/api.token");
    cr_assert_eq(c.n_https, 2);
    expect_listen(&c.https[0], "127.0.0.1", 8443, "127.0.0.1:8443");
    expect_listen(&c.https[1], "::1", 8443, "[::1]:8443");
    cr_assert_eq(c.n_http, 2);
    expect_listen(&c.http[0], "127.0.0.1", 8080, "127.0.0.1:8080");
    expect_listen(&c.http[1], "::1", 8080, "[::1]:8080");
    expect_listen(&c.api, "127.0.0.1", 9180, "127.0.0.1:9180");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cr_expect_eq(c.workers, cpus < 1 ? 1u : cpus > 256 ? 256u : (unsigned)cpus);
    cr_expect_eq(c.n_trusted, 0);
    cr_expect_null(c.acme_directory);
    cr_expect_null(c.acme_email);
    cr_expect_null(c.acme_ca_bundle);
    cr_expect_null(c.user);
    cr_expect_not(c.verbose);
    cr_expect_eq(c.ack_timeout_ms, 2000, "API.md: the wait is bounded, 2 s by default");
    cr_expect_gt(c.grace_s, 0);
    cr_expect_gt(c.hello_timeout_s, 0);
    cr_expect_gt(c.connect_timeout_s, 0);
    cr_expect_gt(c.idle_timeout_s, 0);
    pt_config_free(&c);
}

Test(config, token_file_follows_state_dir)
{
    struct pt_config c;
    cr_assert_eq(parse(&c, "--state-dir", "/srv/portier", NULL), PT_CONFIG_RUN, "%s", errbuf);
    cr_expect_str_eq(c.state_dir, "/srv/portier");
    cr_expect_str_eq(c.token_file, "/srv/portier/api.token");
    pt_config_free(&c);

    /* Order does not matter, and an explicit file wins. */
    cr_assert_eq(parse(&c, "--api-token-file", "/etc/portier/token", "--state-dir", "/x",
                       NULL),
                 PT_CONFIG_RUN);
    cr_expect_str_eq(c.state_dir, "/x");
    cr_expect_str_eq(c.token_file, "/etc/portier/token");
    pt_config_free(&c);
}

/* ---- flags --------------------------------------------------------------- */

Test(config, repeated_https_replaces_defaults)
{
    struct pt_config c;
    cr_assert_eq(parse(&c, "--https", "0.0.0.0:443", "--https", "[::]:443", NULL),
                 PT_CONFIG_RUN, "%s", errbuf);
    cr_assert_eq(c.n_https, 2);
    expect_listen(&c.https[0], "0.0.0.0", 443, "0.0.0.0:443");
    expect_listen(&c.https[1], "::", 443, "[::]:443");
    /* The other lists keep their defaults. */
    cr_expect_eq(c.n_http, 2);
    expect_listen(&c.http[0], "127.0.0.1", 8080, "127.0.0.1:8080");
    pt_config_free(&c);

    cr_assert_eq(parse(&c, "--http", "192.0.2.1:80", NULL), PT_CONFIG_RUN, "%s", errbuf);
    cr_expect_eq(c.n_http, 1);
    expect_listen(&c.http[0], "192.0.2.1", 80, "192.0.2.1:80");
    cr_expect_eq(c.n_https, 2);
    pt_config_free(&c);

    /* A default given again explicitly is not a duplicate of the default. */
    cr_assert_eq(parse(&c, "--https", "127.0.0.1:8443", NULL), PT_CONFIG_RUN, "%s", errbuf);
    cr_expect_eq(c.n_https, 1);
    pt_config_free(&c);
}

Test(config, equals_and_separate_forms)
{
    struct pt_config a, b;
    cr_assert_eq(parse(&a, "--state-dir=/s", "--https=192.0.2.1:443", "--http=[2001:db8::1]:80",
                       "--api=[::1]:9000", "--workers=7", "--trusted-proxy=10.0.0.0/8",
                       "--acme-directory=https://acme.test/dir", "--acme-email=ops@example.org",
                       "--grace=5", "--hello-timeout=3", "--connect-timeout=2",
                       "--idle-timeout=60", "--body-timeout=7", "--send-timeout=8",
                       "--ack-timeout=500", NULL),
                 PT_CONFIG_RUN, "%s", errbuf);
    cr_assert_eq(parse(&b, "--state-dir", "/s", "--https", "192.0.2.1:443", "--http",
                       "[2001:db8::1]:80", "--api", "[::1]:9000", "--workers", "7",
                       "--trusted-proxy", "10.0.0.0/8", "--acme-directory",
                       "https://acme.test/dir", "--acme-email", "ops@example.org", "--grace",
                       "5", "--hello-timeout", "3", "--connect-timeout", "2",
                       "--idle-timeout", "60", "--body-timeout", "7", "--send-timeout", "8",
                       "--ack-timeout", "500", NULL),
                 PT_CONFIG_RUN, "%s", errbuf);
    struct pt_config *cs[] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        struct pt_config *c = cs[i];
        cr_expect_str_eq(c->state_dir, "/s");
        cr_expect_eq(c->n_https, 1);
        expect_listen(&c->https[0], "192.0.2.1", 443, "192.0.2.1:443");
        cr_expect_eq(c->n_http, 1);
        expect_listen(&c->http[0], "2001:db8::1", 80, "[2001:db8::1]:80");
        expect_listen(&c->api, "::1", 9000, "[::1]:9000");
        cr_expect_eq(c->workers, 7);
        cr_expect_eq(c->n_trusted, 1);
        cr_expect_eq(c->trusted[0].family, AF_INET);
        cr_expect_eq(c->trusted[0].bits, 8);
        cr_expect_str_eq(c->acme_directory, "https://acme.test/dir");
        cr_expect_str_eq(c->acme_email, "ops@example.org");
        cr_expect_eq(c->grace_s, 5);
        cr_expect_eq(c->hello_timeout_s, 3);
        cr_expect_eq(c->connect_timeout_s, 2);
        cr_expect_eq(c->idle_timeout_s, 60);
        cr_expect_eq(c->body_timeout_s, 7);
        cr_expect_eq(c->send_timeout_s, 8);
        cr_expect_eq(c->ack_timeout_ms, 500);
        pt_config_free(c);
    }
}

Test(config, value_may_contain_equals)
{
    struct pt_config c;
    cr_assert_eq(parse(&c, "--acme-directory=https://ca.test/dir?a=b", NULL), PT_CONFIG_RUN,
                 "%s", errbuf);
    cr_expect_str_eq(c.acme_directory, "https://ca.test/dir?a=b");
    pt_config_free(&c);
}

Test(config, trusted_proxies_accumulate)
{
    struct pt_config c;
    cr_assert_eq(parse(&c, "--trusted-proxy", "10.0.0.0/8", "--trusted-proxy",
                       "2001:db8::/32", "--trusted-proxy", "192.0.2.7", NULL),
                 PT_CONFIG_RUN, "%s", errbuf);
    cr_assert_eq(c.n_trusted, 3);
    cr_expect_eq(c.trusted[1].family, AF_INET6);
    cr_expect_eq(c.trusted[1].bits, 32);
    cr_expect_eq(c.trusted[2].bits, 32);
    pt_config_free(&c);
}

Test(config, workers_bounds)
{
    struct pt_config c;
    cr_assert_eq(parse(&c, "--workers", "1", NULL), PT_CONFIG_RUN);
    cr_expect_eq(c.workers, 1);
    pt_config_free(&c);
    cr_assert_eq(parse(&c, "--workers", "256", NULL), PT_CONFIG_RUN);
    cr_expect_eq(c.workers, 256);
    pt_config_free(&c);

    static const char *const bad[] = {"0",  "abc", "257", "-1", "",   "+4",
                                      "4x", " 4",  "4 ",  "1e2", "99999999999999999999"};
    for (size_t i = 0; i < PT_ARRAY_LEN(bad); i++) {
        char what[64];
        snprintf(what, sizeof(what), "--workers '%s'", bad[i]);
        expect_error(parse(&c, "--workers", bad[i], NULL), &c, "--workers", what);
    }
}

Test(config, bad_listen_addresses)
{
    struct pt_config c;
    static const char *const bad[] = {"127.0.0.1:99999", "nohost", "127.0.0.1",
                                      "127.0.0.1:0",     "localhost:443", "::1:443",
                                      "[::1]",           "256.0.0.1:443", ":443",
                                      ""};
    static const char *const flags[] = {"https", "http", "api"};
    for (size_t f = 0; f < PT_ARRAY_LEN(flags); f++) {
        char flag[16];
        snprintf(flag, sizeof(flag), "--%s", flags[f]);
        for (size_t i = 0; i < PT_ARRAY_LEN(bad); i++) {
            char what[64];
            snprintf(what, sizeof(what), "%s '%s'", flag, bad[i]);
            expect_error(parse(&c, flag, bad[i], NULL), &c, flag, what);
        }
    }
    expect_error(parse(&c, "--https", "127.0.0.1:99999", NULL), &c, "port out of range",
                 "message says why");
}

Test(config, duplicate_and_too_many_listeners)
{
    struct pt_config c;
    expect_error(parse(&c, "--https", "0.0.0.0:443", "--https", "0.0.0.0:443", NULL), &c,
                 "--https", "duplicate");
    char *argv[40];
    char addrs[17][32];
    int n = 0;
    for (int i = 0; i < 17; i++) {
        snprintf(addrs[i], sizeof(addrs[i]), "127.0.0.%d:443", i + 1);
        argv[n++] = "--http";
        argv[n++] = addrs[i];
    }
    char *full[40];
    full[0] = "portierd";
    for (int i = 0; i < 32; i++) /* 16 listeners */
        full[i + 1] = argv[i];
    cr_assert_eq(pt_config_parse(&c, 33, full, errbuf, sizeof(errbuf)), PT_CONFIG_RUN, "%s",
                 errbuf);
    cr_expect_eq(c.n_http, 16);
    pt_config_free(&c);
    for (int i = 0; i < 34; i++)
        full[i + 1] = argv[i];
    expect_error(pt_config_parse(&c, 35, full, errbuf, sizeof(errbuf)), &c, "--http",
                 "17 listeners");
}

Test(config, unknown_flags_and_arguments)
{
    struct pt_config c;
    expect_error(parse(&c, "--nope", "1", NULL), &c, "--nope", "unknown flag");
    expect_error(parse(&c, "--nope=1", NULL), &c, "--nope", "unknown flag with =");
    expect_error(parse(&c, "--Workers", "2", NULL), &c, "--Workers", "flags are lowercase");
    expect_error(parse(&c, "--", NULL), &c, NULL, "bare --");
    expect_error(parse(&c, "-x", NULL), &c, "-x", "single dash");
    expect_error(parse(&c, "stray", NULL), &c, "stray", "positional argument");
    expect_error(parse(&c, "--workers", "2", "extra", NULL), &c, "extra", "trailing word");
}

Test(config, missing_values)
{
    static const char *const flags[] = {
        "--state-dir", "--https", "--http", "--api", "--api-token-file", "--workers",
        "--trusted-proxy", "--acme-directory", "--acme-email", "--acme-ca-bundle", "--user",
        "--config"};
    for (size_t i = 0; i < PT_ARRAY_LEN(flags); i++) {
        struct pt_config c;
        expect_error(parse(&c, "--verbose", (char *)flags[i], NULL), &c, flags[i],
                     flags[i]);
    }
    struct pt_config c;
    expect_error(parse(&c, "--state-dir=", NULL), &c, "--state-dir", "empty state dir");
    expect_error(parse(&c, "--api-token-file=", NULL), &c, "--api-token-file",
                 "empty token file");
}

Test(config, bad_values)
{
    struct pt_config c;
    expect_error(parse(&c, "--trusted-proxy", "10.0.0.0/33", NULL), &c, "--trusted-proxy",
                 "prefix 33");
    expect_error(parse(&c, "--trusted-proxy", "not-a-cidr", NULL), &c, "--trusted-proxy",
                 "word");
    expect_error(parse(&c, "--trusted-proxy", "2001:db8::/129", NULL), &c,
                 "--trusted-proxy", "prefix 129");
    expect_error(parse(&c, "--trusted-proxy", "", NULL), &c, "--trusted-proxy", "empty");
    expect_error(parse(&c, "--acme-directory", "acme.test/dir", NULL), &c, "--acme-directory",
                 "not a URL");
    expect_error(parse(&c, "--acme-email", "nobody", NULL), &c, "--acme-email", "no @");
    expect_error(parse(&c, "--acme-email", "a@", NULL), &c, "--acme-email", "no domain");
    expect_error(parse(&c, "--acme-email", "a b@example.org", NULL), &c, "--acme-email",
                 "space");
    expect_error(parse(&c, "--grace", "3601", NULL), &c, "--grace", "grace");
    expect_error(parse(&c, "--hello-timeout", "0", NULL), &c, "--hello-timeout", "hello 0");
    expect_error(parse(&c, "--ack-timeout", "60001", NULL), &c, "--ack-timeout", "ack");
}

Test(config, acme_ca_bundle)
{
    struct pt_config c;
    const char *bundle = write_file("ca.pem", "-----BEGIN CERTIFICATE-----\n");
    cr_assert_eq(parse(&c, "--acme-ca-bundle", bundle, NULL), PT_CONFIG_RUN, "%s", errbuf);
    cr_expect_str_eq(c.acme_ca_bundle, bundle);
    pt_config_free(&c);

    char missing[160];
    snprintf(missing, sizeof(missing), "%s/nope.pem", dir);
    expect_error(parse(&c, "--acme-ca-bundle", missing, NULL), &c, "--acme-ca-bundle",
                 "missing file");
    expect_error(parse(&c, "--acme-ca-bundle", "", NULL), &c, "--acme-ca-bundle",
                 "empty path");

    /* Unreadable: a mode 000 file only counts as unreadable for non-root. */
    if (geteuid() != 0) {
        const char *locked = write_file("locked.pem", "x\n");
        cr_assert_eq(chmod(locked, 0), 0);
        expect_error(parse(&c, "--acme-ca-bundle", locked, NULL), &c, "--acme-ca-bundle",
                     "mode 000 file");
    }
}

/* A directory passes access(R_OK) but is no CA bundle: "an unusable setting"
 * must be refused before anything is bound, not when ACME first runs. */
Test(config, acme_ca_bundle_directory)
{
    struct pt_config c;
    expect_error(parse(&c, "--acme-ca-bundle", dir, NULL), &c, "--acme-ca-bundle",
                 "a directory");
}

Test(config, user)
{
    struct pt_config c;
    expect_error(parse(&c, "--user", "nosuchuser", NULL), &c, "--user", "nosuchuser");
    expect_error(parse(&c, "--user", "", NULL), &c, "--user", "empty user");
    struct passwd *pw = getpwuid(geteuid());
    cr_assert_not_null(pw);
    cr_assert_eq(parse(&c, "--user", pw->pw_name, NULL), PT_CONFIG_RUN, "%s", errbuf);
    cr_expect_str_eq(c.user, pw->pw_name);
    pt_config_free(&c);
}

Test(config, help_and_version)
{
    struct pt_config c;
    cr_expect_eq(parse(&c, "--help", NULL), PT_CONFIG_EXIT);
    pt_config_free(&c);
    cr_expect_eq(parse(&c, "-h", NULL), PT_CONFIG_EXIT);
    pt_config_free(&c);
    cr_expect_eq(parse(&c, "--version", NULL), PT_CONFIG_EXIT);
    pt_config_free(&c);
    cr_expect_eq(parse(&c, "--workers", "2", "--version", NULL), PT_CONFIG_EXIT);
    pt_config_free(&c);
}

Test(config, verbose)
{
    struct pt_config c;
    cr_assert_eq(parse(&c, "--verbose", NULL), PT_CONFIG_RUN);
    cr_expect(c.verbose);
    pt_config_free(&c);
}

/* ---- --config FILE ------------------------------------------------------- */

Test(config, file_settings)
{
    const char *path = write_file("portier.conf",
                                  "# portier settings\n"
                                  "\n"
                                  "state-dir = /var/lib/portier\n"
                                  "   workers=3   \n"
                                  "\thttps = 0.0.0.0:443\n"
                                  "https = [::]:443\n"
                                  "  # indented comment\n"
                                  "trusted-proxy = 192.0.2.0/24\r\n"
                                  "acme-email = ops@example.org\n"
                                  "api-token-file = /etc/portier/token\n");
    struct pt_config c;
    cr_assert_eq(parse(&c, "--config", path, NULL), PT_CONFIG_RUN, "%s", errbuf);
    cr_expect_str_eq(c.state_dir, "/var/lib/portier");
    cr_expect_eq(c.workers, 3);
    cr_assert_eq(c.n_https, 2);
    expect_listen(&c.https[0], "0.0.0.0", 443, "0.0.0.0:443");
    expect_listen(&c.https[1], "::", 443, "[::]:443");
    cr_expect_eq(c.n_http, 2); /* untouched defaults */
    cr_expect_eq(c.n_trusted, 1);
    cr_expect_eq(c.trusted[0].bits, 24);
    cr_expect_str_eq(c.acme_email, "ops@example.org");
    cr_expect_str_eq(c.token_file, "/etc/portier/token");
    pt_config_free(&c);

    /* --config=FILE works the same. */
    char arg[200];
    snprintf(arg, sizeof(arg), "--config=%s", path);
    cr_assert_eq(parse(&c, arg, NULL), PT_CONFIG_RUN, "%s", errbuf);
    cr_expect_eq(c.workers, 3);
    pt_config_free(&c);
}

Test(config, file_token_default_uses_file_state_dir)
{
    const char *path = write_file("p.conf", "state-dir = /data\n");
    struct pt_config c;
    cr_assert_eq(parse(&c, "--config", path, NULL), PT_CONFIG_RUN, "%s", errbuf);
    cr_expect_str_eq(c.token_file, "/data/api.token");
    pt_config_free(&c);
}

Test(config, flags_override_file)
{
    const char *path = write_file("p.conf",
                                  "workers = 3\n"
                                  "state-dir = /from/file\n"
                                  "https = 0.0.0.0:443\n"
                                  "https = [::]:443\n"
                                  "trusted-proxy = 10.0.0.0/8\n");
    struct pt_config c;
    /* Flags win whether they come before or after --config. */
    cr_assert_eq(parse(&c, "--workers", "5", "--config", path, "--https", "192.0.2.1:8443",
                       NULL),
                 PT_CONFIG_RUN, "%s", errbuf);
    cr_expect_eq(c.workers, 5);
    cr_expect_str_eq(c.state_dir, "/from/file");
    cr_assert_eq(c.n_https, 1, "--https on the command line replaces the file's list");
    expect_listen(&c.https[0], "192.0.2.1", 8443, "192.0.2.1:8443");
    cr_expect_eq(c.n_trusted, 1);
    pt_config_free(&c);

    cr_assert_eq(parse(&c, "--config", path, "--trusted-proxy", "192.0.2.0/24",
                       "--state-dir", "/cli", NULL),
                 PT_CONFIG_RUN, "%s", errbuf);
    cr_expect_str_eq(c.state_dir, "/cli");
    cr_expect_eq(c.n_https, 2);
    cr_assert_eq(c.n_trusted, 1, "--trusted-proxy replaces the file's list");
    cr_expect_eq(c.trusted[0].bits, 24);
    pt_config_free(&c);
}

Test(config, file_errors_name_file_and_line)
{
    struct pt_config c;
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/missing.conf", dir);
    expect_error(parse(&c, "--config", missing, NULL), &c, "--config", "missing file");
    expect_error(parse(&c, "--config=", NULL), &c, "--config", "empty path");

    const char *p = write_file("bad1.conf", "# ok\nworkers = 0\n");
    expect_error(parse(&c, "--config", p, NULL), &c, "workers", "workers 0");
    char where[200];
    snprintf(where, sizeof(where), "%s:2", p);
    cr_expect_not_null(strstr(errbuf, where), "'%s' lacks '%s'", errbuf, where);

    p = write_file("bad2.conf", "workers = 2\nthis line has no equals sign\n");
    expect_error(parse(&c, "--config", p, NULL), &c, ":2", "no '='");

    p = write_file("bad3.conf", "frobnicate = yes\n");
    expect_error(parse(&c, "--config", p, NULL), &c, "frobnicate", "unknown key");

    p = write_file("bad4.conf", "https = 127.0.0.1:99999\n");
    expect_error(parse(&c, "--config", p, NULL), &c, "https", "bad listener");

    p = write_file("bad5.conf", "config = /etc/other.conf\n");
    expect_error(parse(&c, "--config", p, NULL), &c, "config", "nested config");

    p = write_file("bad6.conf", "--workers = 2\n");
    expect_error(parse(&c, "--config", p, NULL), &c, NULL, "key with dashes");
}

/* A line longer than the reader's buffer must not be split into two lines:
 * here the tail of a long comment would be applied as a setting. */
Test(config, file_long_comment_line_is_not_split)
{
    size_t len = 5000;
    char *text = pt_xmalloc(len + 64);
    text[0] = '#';
    memset(text + 1, 'x', 4094);
    snprintf(text + 4095, len + 64 - 4095, "workers = 3\nstate-dir = /ok\n");
    const char *p = write_file("long.conf", text);
    free(text);
    struct pt_config c;
    enum pt_config_result r = parse(&c, "--config", p, NULL);
    if (r == PT_CONFIG_RUN) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        unsigned want = cpus < 1 ? 1u : cpus > 256 ? 256u : (unsigned)cpus;
        cr_expect_eq(c.workers, want,
                     "the end of a comment line was applied as a setting: workers = %u",
                     c.workers);
        cr_expect_str_eq(c.state_dir, "/ok");
    } else {
        /* Refusing the over-long line with a clear message is fine too. */
        cr_expect_not_null(strstr(errbuf, ":1"), "%s", errbuf);
    }
    pt_config_free(&c);
}

Test(config, api_tls_pair)
{
    struct pt_config c;
    cr_assert_eq(parse(&c, "--api-tls-cert", "/etc/p/api.crt", "--api-tls-key=/etc/p/api.key",
                       NULL),
                 PT_CONFIG_RUN, "%s", errbuf);
    cr_expect_str_eq(c.api_tls_cert, "/etc/p/api.crt");
    cr_expect_str_eq(c.api_tls_key, "/etc/p/api.key");
    pt_config_free(&c);
    cr_assert_eq(parse(&c, NULL), PT_CONFIG_RUN);
    cr_expect_null(c.api_tls_cert, "no TLS by default");
    cr_expect_null(c.api_tls_key);
    pt_config_free(&c);
    expect_error(parse(&c, "--api-tls-cert", "/etc/p/api.crt", NULL), &c, "--api-tls-key",
                 "cert without key");
    expect_error(parse(&c, "--api-tls-key", "/etc/p/api.key", NULL), &c, "--api-tls-cert",
                 "key without cert");
    expect_error(parse(&c, "--api-tls-cert=", "--api-tls-key=k", NULL), &c, "--api-tls-cert",
                 "empty cert path");
    const char *conf = write_file("tls.conf", "api-tls-cert = /a.crt\napi-tls-key = /a.key\n");
    cr_assert_eq(parse(&c, "--config", conf, NULL), PT_CONFIG_RUN, "%s", errbuf);
    cr_expect_str_eq(c.api_tls_key, "/a.key");
    pt_config_free(&c);
}
