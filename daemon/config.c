#include "daemon/config.h"

#include <errno.h>
#include <stdarg.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: portierd [options]\n"
    "  --state-dir DIR          database, API token, ACME account key (./var)\n"
    "  --https ADDR:PORT        TLS listener, repeatable (127.0.0.1:8443, [::1]:8443)\n"
    "  --http ADDR:PORT         plain HTTP listener, repeatable (127.0.0.1:8080, [::1]:8080)\n"
    "  --api ADDR:PORT          REST API and web page (127.0.0.1:9180)\n"
    "  --api-token-file FILE    admin token (STATE_DIR/api.token, created if missing)\n"
    "  --api-tls-cert FILE      serve the API over TLS with this certificate (PEM) ...\n"
    "  --api-tls-key FILE       ... and key; both missing: made once, self-signed\n"
    "  --workers N              worker processes (number of CPUs)\n"
    "  --trusted-proxy CIDR     may send a PROXY header, repeatable (none)\n"
    "  --acme-directory URL     ACME directory (none: ACME off)\n"
    "  --acme-email ADDR        ACME account contact\n"
    "  --acme-ca-bundle FILE    CA bundle for the ACME server's HTTPS\n"
    "  --user NAME              drop privileges after binding\n"
    "  --config FILE            the same settings as key = value lines\n"
    "  --grace SECONDS          drain time on stop (30)\n"
    "  --hello-timeout SECONDS  first bytes of a connection (10)\n"
    "  --connect-timeout SECONDS backend connect, per server (5)\n"
    "  --idle-timeout SECONDS   relay idle time (600)\n"
    "  --body-timeout SECONDS   HTTP: between two reads of a request body (60)\n"
    "  --send-timeout SECONDS   HTTP: between two writes to a slow client (60)\n"
    "  --ack-timeout MS         wait for workers after a change (2000)\n"
    "  --access-log FILE|-|off  one JSON line per connection (- = stdout)\n"
    "  --verbose                debug logging\n"
    "  --version, --help\n";

struct source {
    const char *where; /* "--config FILE:LINE" or NULL for the command line */
    bool cli;
};

static __attribute__((format(printf, 5, 6))) int
fail(char *err, size_t errlen, const struct source *src, const char *key,
     const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (src->cli)
        snprintf(err, errlen, "--%s: %s", key, what);
    else
        snprintf(err, errlen, "%s: %s: %s", src->where, key, what);
    return -1;
}

static int parse_uint(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    if (*v < '0' || *v > '9')
        return -1;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || *end || n < lo || n > hi)
        return -1;
    *out = (unsigned)n;
    return 0;
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = pt_xstrdup(v);
}

static int add_listen(struct pt_listen *arr, size_t *n, bool *reset, const char *v,
                      char *err, size_t errlen, const struct source *src,
                      const char *key)
{
    const char *why = NULL;
    if (*reset) {
        *n = 0;
        *reset = false;
    }
    if (*n == PT_LISTEN_MAX)
        return fail(err, errlen, src, key, "at most 16 listeners");
    struct pt_listen *l = &arr[*n];
    if (pt_listen_parse(v, strlen(v), &l->sa, &l->salen, &why) != 0)
        return fail(err, errlen, src, key, "%s", why ? why : "invalid address");
    for (size_t i = 0; i < *n; i++)
        if (arr[i].salen == l->salen && memcmp(&arr[i].sa, &l->sa, l->salen) == 0)
            return fail(err, errlen, src, key, "%s given twice", v);
    pt_sockaddr_format((struct sockaddr *)&l->sa, l->text, sizeof(l->text));
    (*n)++;
    return 0;
}

/* Per-list "the first value from this source replaces the defaults" flags. */
struct resets {
    bool https, http, trusted;
};

static int apply(struct pt_config *c, const char *key, const char *v,
                 const struct source *src, struct resets *rs, char *err, size_t errlen)
{
    const char *why = NULL;
    if (strcmp(key, "state-dir") == 0) {
        if (*v == '\0')
            return fail(err, errlen, src, key, "empty path");
        set_str(&c->state_dir, v);
    } else if (strcmp(key, "api-token-file") == 0) {
        if (*v == '\0')
            return fail(err, errlen, src, key, "empty path");
        set_str(&c->token_file, v);
    } else if (strcmp(key, "api-tls-cert") == 0 || strcmp(key, "api-tls-key") == 0) {
        if (*v == '\0')
            return fail(err, errlen, src, key, "empty path");
        set_str(key[8] == 'c' ? &c->api_tls_cert : &c->api_tls_key, v);
    } else if (strcmp(key, "https") == 0) {
        return add_listen(c->https, &c->n_https, &rs->https, v, err, errlen, src, key);
    } else if (strcmp(key, "http") == 0) {
        return add_listen(c->http, &c->n_http, &rs->http, v, err, errlen, src, key);
    } else if (strcmp(key, "api") == 0) {
        size_t one = 0;
        bool r = true;
        if (add_listen(&c->api, &one, &r, v, err, errlen, src, key) != 0)
            return -1;
    } else if (strcmp(key, "workers") == 0) {
        if (parse_uint(v, 1, 256, &c->workers) != 0)
            return fail(err, errlen, src, key, "expected a number 1..256, got '%s'", v);
    } else if (strcmp(key, "trusted-proxy") == 0) {
        if (rs->trusted) {
            c->n_trusted = 0;
            rs->trusted = false;
        }
        if (c->n_trusted == PT_TRUSTED_MAX)
            return fail(err, errlen, src, key, "at most 64 entries");
        if (pt_cidr_parse(v, strlen(v), &c->trusted[c->n_trusted], &why) != 0)
            return fail(err, errlen, src, key, "%s", why ? why : "invalid CIDR");
        c->n_trusted++;
    } else if (strcmp(key, "acme-directory") == 0) {
        if (strncmp(v, "https://", 8) != 0 && strncmp(v, "http://", 7) != 0)
            return fail(err, errlen, src, key, "expected an https:// URL, got '%s'", v);
        set_str(&c->acme_directory, v);
    } else if (strcmp(key, "acme-email") == 0) {
        const char *at = strchr(v, '@');
        if (at == NULL || at == v || at[1] == '\0' || strpbrk(v, " \t<>,") != NULL)
            return fail(err, errlen, src, key, "not an e-mail address: '%s'", v);
        set_str(&c->acme_email, v);
    } else if (strcmp(key, "acme-ca-bundle") == 0) {
        struct stat st;
        if (access(v, R_OK) != 0 || stat(v, &st) != 0 || !S_ISREG(st.st_mode))
            return fail(err, errlen, src, key, "cannot read '%s' as a file", v);
        set_str(&c->acme_ca_bundle, v);
    } else if (strcmp(key, "user") == 0) {
        if (getpwnam(v) == NULL)
            return fail(err, errlen, src, key, "no such user '%s'", v);
        set_str(&c->user, v);
    } else if (strcmp(key, "grace") == 0) {
        if (parse_uint(v, 0, 3600, &c->grace_s) != 0)
            return fail(err, errlen, src, key, "expected seconds 0..3600, got '%s'", v);
    } else if (strcmp(key, "hello-timeout") == 0) {
        if (parse_uint(v, 1, 300, &c->hello_timeout_s) != 0)
            return fail(err, errlen, src, key, "expected seconds 1..300, got '%s'", v);
    } else if (strcmp(key, "connect-timeout") == 0) {
        if (parse_uint(v, 1, 300, &c->connect_timeout_s) != 0)
            return fail(err, errlen, src, key, "expected seconds 1..300, got '%s'", v);
    } else if (strcmp(key, "idle-timeout") == 0) {
        if (parse_uint(v, 1, 86400, &c->idle_timeout_s) != 0)
            return fail(err, errlen, src, key, "expected seconds 1..86400, got '%s'", v);
    } else if (strcmp(key, "body-timeout") == 0) {
        if (parse_uint(v, 1, 86400, &c->body_timeout_s) != 0)
            return fail(err, errlen, src, key, "expected seconds 1..86400, got '%s'", v);
    } else if (strcmp(key, "send-timeout") == 0) {
        if (parse_uint(v, 1, 86400, &c->send_timeout_s) != 0)
            return fail(err, errlen, src, key, "expected seconds 1..86400, got '%s'", v);
    } else if (strcmp(key, "access-log") == 0) {
        if (*v == '\0')
            return fail(err, errlen, src, key, "empty path (use - or off)");
        set_str(&c->access_log, v);
    } else if (strcmp(key, "ack-timeout") == 0) {
        if (parse_uint(v, 0, 60000, &c->ack_timeout_ms) != 0)
            return fail(err, errlen, src, key, "expected milliseconds 0..60000, got '%s'", v);
    } else {
        return fail(err, errlen, src, key, "unknown setting");
    }
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
                 s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

static int load_file(struct pt_config *c, const char *path, struct resets *rs,
                     char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "--config: cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    char line[4096], where[512];
    unsigned lineno = 0;
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        snprintf(where, sizeof(where), "%s:%u", path, lineno);
        if (strchr(line, '\n') == NULL && !feof(f)) {
            snprintf(err, errlen, "%s: line too long", where);
            rc = -1;
            break;
        }
        struct source src = {where, false};
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "%s: expected 'key = value'", where);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        if (strcmp(key, "config") == 0) {
            snprintf(err, errlen, "%s: config files do not nest", where);
            rc = -1;
            break;
        }
        rc = apply(c, key, val, &src, rs, err, errlen);
    }
    fclose(f);
    return rc;
}

static void defaults(struct pt_config *c)
{
    memset(c, 0, sizeof(*c));
    c->state_dir = pt_xstrdup("./var");
    static const char *const https[] = {"127.0.0.1:8443", "[::1]:8443"};
    static const char *const http[] = {"127.0.0.1:8080", "[::1]:8080"};
    for (size_t i = 0; i < 2; i++) {
        pt_listen_parse(https[i], strlen(https[i]), &c->https[i].sa,
                        &c->https[i].salen, NULL);
        snprintf(c->https[i].text, sizeof(c->https[i].text), "%s", https[i]);
        pt_listen_parse(http[i], strlen(http[i]), &c->http[i].sa, &c->http[i].salen,
                        NULL);
        snprintf(c->http[i].text, sizeof(c->http[i].text), "%s", http[i]);
    }
    c->n_https = c->n_http = 2;
    pt_listen_parse("127.0.0.1:9180", 14, &c->api.sa, &c->api.salen, NULL);
    snprintf(c->api.text, sizeof(c->api.text), "127.0.0.1:9180");
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    c->workers = n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
    c->grace_s = 30;
    c->hello_timeout_s = 10;
    c->connect_timeout_s = 5;
    c->idle_timeout_s = 600;
    c->body_timeout_s = 60; /* nginx's client_body_timeout and send_timeout */
    c->send_timeout_s = 60;
    c->ack_timeout_ms = 2000;
    c->access_log = pt_xstrdup("-");
}

enum pt_config_result pt_config_parse(struct pt_config *c, int argc, char **argv,
                                      char *err, size_t errlen)
{
    struct resets file_rs = {true, true, true}, cli_rs = {true, true, true};
    struct source cli = {NULL, true};
    defaults(c);

    /* The file first, so that flags given next to --config override it. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0 || strncmp(a, "--config=", 9) == 0) {
            const char *path = a[8] == '=' ? a + 9 : (i + 1 < argc ? argv[++i] : NULL);
            if (path == NULL) {
                snprintf(err, errlen, "--config: missing value");
                return PT_CONFIG_ERROR;
            }
            if (load_file(c, path, &file_rs, err, errlen) != 0)
                return PT_CONFIG_ERROR;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return PT_CONFIG_EXIT;
        }
        if (strcmp(a, "--version") == 0) {
            printf("portierd %s\n", PT_VERSION);
            return PT_CONFIG_EXIT;
        }
        if (strcmp(a, "--verbose") == 0) {
            c->verbose = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s' (see --help)", a);
            return PT_CONFIG_ERROR;
        }
        char key[64];
        const char *val;
        const char *eq = strchr(a + 2, '=');
        size_t klen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (klen == 0 || klen >= sizeof(key)) {
            snprintf(err, errlen, "unknown option '%s' (see --help)", a);
            return PT_CONFIG_ERROR;
        }
        memcpy(key, a + 2, klen);
        key[klen] = '\0';
        static const char *const known[] = {
            "state-dir", "api-token-file", "api-tls-cert", "api-tls-key", "https", "http", "api", "workers",
            "trusted-proxy", "acme-directory", "acme-email", "acme-ca-bundle",
            "user", "config", "grace", "hello-timeout", "connect-timeout",
            "idle-timeout", "body-timeout", "send-timeout", "ack-timeout", "access-log"};
        size_t k;
        for (k = 0; k < PT_ARRAY_LEN(known); k++)
            if (strcmp(key, known[k]) == 0)
                break;
        if (k == PT_ARRAY_LEN(known)) {
            snprintf(err, errlen, "unknown option '--%s' (see --help)", key);
            return PT_CONFIG_ERROR;
        }
        if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            snprintf(err, errlen, "--%s: missing value", key);
            return PT_CONFIG_ERROR;
        }
        if (strcmp(key, "config") == 0)
            continue;
        if (apply(c, key, val, &cli, &cli_rs, err, errlen) != 0)
            return PT_CONFIG_ERROR;
    }
    if (c->n_https + c->n_http == 0) {
        snprintf(err, errlen, "no --https or --http listener");
        return PT_CONFIG_ERROR;
    }
    if ((c->api_tls_cert == NULL) != (c->api_tls_key == NULL)) {
        snprintf(err, errlen, "--api-tls-cert and --api-tls-key go together");
        return PT_CONFIG_ERROR;
    }
    if (c->token_file == NULL) {
        size_t n = strlen(c->state_dir) + sizeof("/api.token");
        c->token_file = pt_xmalloc(n);
        snprintf(c->token_file, n, "%s/api.token", c->state_dir);
    }
    return PT_CONFIG_RUN;
}

void pt_config_free(struct pt_config *c)
{
    PT_FREE(c->state_dir);
    PT_FREE(c->token_file);
    PT_FREE(c->api_tls_cert);
    PT_FREE(c->api_tls_key);
    PT_FREE(c->acme_directory);
    PT_FREE(c->acme_email);
    PT_FREE(c->acme_ca_bundle);
    PT_FREE(c->user);
    PT_FREE(c->access_log);
}
