#include "common/snapshot.h"

#include "common/cursor.h"
#include "common/dname.h"

#include <arpa/inet.h>

/* Wire format (all integers big-endian):
 *   "PTS1" u64 version
 *   settings: u32 hello, u32 connect, u32 idle, u32 grace, u16 https_port,
 *             u32 n_trusted, n x (u8 family, 16 bytes addr, u8 bits)
 *   u32 n_backends, n x backend: str name, u8 pp, u8 tls, u8 tls_verify,
 *             u32 n, n x str server, u32 n, n x str http_server,
 *             u8 check kind, u32 interval, u32 timeout, u8 rise, u8 fall,
 *             str path
 *   u32 n_domains, n x domain: str name, u8 mode, str backend, u8 flags,
 *             u32 n, n x (str name, str value)
 *   u32 n_bans, n x ban: u8 family, 16 bytes addr, u8 bits, u64 expires,
 *             str reason
 *   u32 n_certs, n x cert: str id, str cert_pem, str key_pem, u64 not_after,
 *             u32 n, n x str name
 *   u32 n_tokens, n x (str token, str key_authorization)
 *   streams: u32 lid_max, u32 n, n x (str name, u8 mode, str backend,
 *             u32 idle_timeout_s, u32 max_connections,
 *             u32 n, n x (str listen, u32 lid), u32 n, n x str name,
 *             u32 n, n x str alpn)
 * Strings are u32 length + bytes. Servers travel as text and are parsed again
 * on decode: the parser is the one the API validated them with. */

#define SNAP_MAGIC "PTS1"
#define FLAG_CERT_MANUAL 1
#define FLAG_REDIRECT 2
#define FLAG_HSTS 4
#define FLAG_HTTP2 8

static void put_ban(struct pt_wbuf *out, const struct pt_ban *b)
{
    pt_wbuf_u8(out, b->net.family == AF_INET6 ? 6 : 4);
    pt_wbuf_put(out, b->net.addr, 16);
    pt_wbuf_u8(out, b->net.bits);
    pt_wbuf_u64(out, (uint64_t)b->expires);
    pt_wbuf_str(out, b->reason ? b->reason : "");
}

void pt_snap_streams_encode(const struct pt_streams *ss, struct pt_wbuf *out)
{
    char tmp[PT_HOST_MAX + 16];
    pt_wbuf_u32(out, ss->lid_max);
    pt_wbuf_u32(out, (uint32_t)ss->n);
    for (size_t i = 0; i < ss->n; i++) {
        const struct pt_stream *st = &ss->v[i];
        pt_wbuf_str(out, st->name);
        pt_wbuf_u8(out, (uint8_t)st->mode);
        pt_wbuf_str(out, st->backend);
        pt_wbuf_u32(out, st->idle_timeout_s);
        pt_wbuf_u32(out, st->max_connections);
        pt_wbuf_u32(out, (uint32_t)st->n_listen);
        for (size_t j = 0; j < st->n_listen; j++) {
            pt_hostport_format(&st->listen[j], tmp, sizeof(tmp));
            pt_wbuf_str(out, tmp);
            pt_wbuf_u32(out, st->lids ? st->lids[j] : 0);
        }
        pt_wbuf_u32(out, (uint32_t)st->n_names);
        for (size_t j = 0; j < st->n_names; j++)
            pt_wbuf_str(out, st->names[j]);
        pt_wbuf_u32(out, (uint32_t)st->n_alpn);
        for (size_t j = 0; j < st->n_alpn; j++)
            pt_wbuf_str(out, st->alpn[j]);
    }
}

static void put_servers(struct pt_wbuf *out, const struct pt_hostport *v, size_t n)
{
    char tmp[PT_HOST_MAX + 16];
    pt_wbuf_u32(out, (uint32_t)n);
    for (size_t j = 0; j < n; j++) {
        pt_hostport_format(&v[j], tmp, sizeof(tmp));
        pt_wbuf_str(out, tmp);
    }
}

void pt_snap_backend_encode(const struct pt_backend *b, struct pt_wbuf *out)
{
    pt_wbuf_str(out, b->name);
    pt_wbuf_u8(out, (uint8_t)b->proxy_protocol);
    pt_wbuf_u8(out, b->tls);
    pt_wbuf_u8(out, b->tls_verify);
    put_servers(out, b->servers, b->n_servers);
    put_servers(out, b->http_servers, b->n_http_servers);
    pt_wbuf_u8(out, (uint8_t)b->check.kind);
    pt_wbuf_u32(out, b->check.interval_ms);
    pt_wbuf_u32(out, b->check.timeout_ms);
    pt_wbuf_u8(out, b->check.rise);
    pt_wbuf_u8(out, b->check.fall);
    pt_wbuf_str(out, b->check.path);
}

void pt_snap_domain_encode(const struct pt_domain *d, struct pt_wbuf *out)
{
    pt_wbuf_str(out, d->name);
    pt_wbuf_u8(out, (uint8_t)d->mode);
    pt_wbuf_str(out, d->backend);
    pt_wbuf_u8(out, (uint8_t)((d->cert_manual ? FLAG_CERT_MANUAL : 0) |
                              (d->redirect_http ? FLAG_REDIRECT : 0) |
                              (d->hsts ? FLAG_HSTS : 0) | (d->http2 ? FLAG_HTTP2 : 0)));
    pt_wbuf_u32(out, (uint32_t)d->n_headers);
    for (size_t j = 0; j < d->n_headers; j++) {
        pt_wbuf_str(out, d->headers[j].name);
        pt_wbuf_str(out, d->headers[j].value);
    }
}

void pt_snap_token_encode(const struct pt_acme_token *t, struct pt_wbuf *out)
{
    pt_wbuf_str(out, t->token);
    pt_wbuf_str(out, t->key_authorization);
}

void pt_snap_cert_encode(const struct pt_cert *ct, struct pt_wbuf *out)
{
    pt_wbuf_str(out, ct->id);
    pt_wbuf_str(out, ct->cert_pem);
    pt_wbuf_str(out, ct->key_pem);
    pt_wbuf_u64(out, (uint64_t)ct->not_after);
    pt_wbuf_u32(out, (uint32_t)ct->n_names);
    for (size_t j = 0; j < ct->n_names; j++)
        pt_wbuf_str(out, ct->names[j]);
}

void pt_snap_encode(const struct pt_snapshot *s, struct pt_wbuf *out)
{
    pt_wbuf_put(out, SNAP_MAGIC, 4);
    pt_wbuf_u64(out, s->version);
    const struct pt_settings *st = &s->settings;
    pt_wbuf_u32(out, st->hello_timeout_ms);
    pt_wbuf_u32(out, st->connect_timeout_ms);
    pt_wbuf_u32(out, st->idle_timeout_ms);
    pt_wbuf_u32(out, st->body_timeout_ms);
    pt_wbuf_u32(out, st->send_timeout_ms);
    pt_wbuf_u32(out, st->grace_ms);
    pt_wbuf_u16(out, st->https_port);
    pt_wbuf_u8(out, st->access_log);
    pt_wbuf_put(out, st->ticket_key, sizeof(st->ticket_key));
    pt_wbuf_u32(out, (uint32_t)st->n_trusted);
    for (size_t i = 0; i < st->n_trusted; i++) {
        pt_wbuf_u8(out, st->trusted[i].family == AF_INET6 ? 6 : 4);
        pt_wbuf_put(out, st->trusted[i].addr, 16);
        pt_wbuf_u8(out, st->trusted[i].bits);
    }

    pt_wbuf_u32(out, (uint32_t)s->n_backends);
    for (size_t i = 0; i < s->n_backends; i++)
        pt_snap_backend_encode(&s->backends[i], out);

    pt_wbuf_u32(out, (uint32_t)s->n_domains);
    for (size_t i = 0; i < s->n_domains; i++)
        pt_snap_domain_encode(&s->domains[i], out);

    pt_wbuf_u32(out, (uint32_t)s->n_bans);
    for (size_t i = 0; i < s->n_bans; i++)
        put_ban(out, &s->bans[i]);

    pt_wbuf_u32(out, (uint32_t)s->n_certs);
    for (size_t i = 0; i < s->n_certs; i++)
        pt_snap_cert_encode(&s->certs[i], out);
    pt_wbuf_u32(out, (uint32_t)s->n_tokens);
    for (size_t i = 0; i < s->n_tokens; i++)
        pt_snap_token_encode(&s->tokens[i], out);
    pt_snap_streams_encode(&s->streams, out);
}

/* Reads a length-prefixed string as a new NUL-terminated copy; NULL when the
 * cursor ran out or the string holds a NUL. */
static char *rd_str(struct pt_cursor *c, size_t max)
{
    uint32_t n = pt_rd_u32(c);
    if (n > max)
        c->ok = false;
    const uint8_t *p = pt_rd_bytes(c, n);
    if (p == NULL || memchr(p, 0, n) != NULL) {
        c->ok = false;
        return NULL;
    }
    return pt_xstrndup((const char *)p, n);
}

/* Reads a count whose items each need at least <min_item> bytes, so a lying
 * count cannot make us allocate more than the buffer could describe. */
static size_t rd_count(struct pt_cursor *c, size_t min_item, size_t max)
{
    uint32_t n = pt_rd_u32(c);
    if (n > max || (size_t)n * min_item > pt_cursor_left(c)) {
        c->ok = false;
        return 0;
    }
    return n;
}

static int rd_ban(struct pt_cursor *c, struct pt_ban *b)
{
    uint8_t fam = pt_rd_u8(c);
    const uint8_t *a = pt_rd_bytes(c, 16);
    uint8_t bits = pt_rd_u8(c);
    b->expires = (int64_t)pt_rd_u64(c);
    b->reason = rd_str(c, 1024);
    if (a == NULL || (fam != 4 && fam != 6) || bits > (fam == 4 ? 32 : 128)) {
        c->ok = false;
        return PT_EMALFORMED;
    }
    b->net.family = fam == 4 ? AF_INET : AF_INET6;
    memcpy(b->net.addr, a, 16);
    b->net.bits = bits;
    return c->ok ? 0 : PT_EMALFORMED;
}

static int rd_servers(struct pt_cursor *c, struct pt_hostport **out, size_t *n)
{
    *n = rd_count(c, 4, PT_SERVERS_MAX);
    *out = pt_xcalloc(*n, sizeof(**out));
    for (size_t j = 0; j < *n && c->ok; j++) {
        char *s = rd_str(c, PT_HOST_MAX + 16);
        if (s == NULL || pt_hostport_parse(s, strlen(s), &(*out)[j], NULL) != 0)
            c->ok = false;
        free(s);
    }
    return c->ok ? 0 : PT_EMALFORMED;
}

static char **rd_strs(struct pt_cursor *c, size_t *n, size_t max_n, size_t max_len)
{
    *n = rd_count(c, 4, max_n);
    char **v = pt_xcalloc(*n ? *n : 1, sizeof(*v));
    for (size_t i = 0; i < *n && c->ok; i++)
        v[i] = rd_str(c, max_len);
    return v;
}

static int rd_streams(struct pt_cursor *c, struct pt_streams *ss)
{
    ss->lid_max = pt_rd_u32(c);
    ss->n = rd_count(c, 24, 1u << 16);
    ss->v = pt_xcalloc(ss->n ? ss->n : 1, sizeof(*ss->v));
    for (size_t i = 0; i < ss->n && c->ok; i++) {
        struct pt_stream *st = &ss->v[i];
        st->name = rd_str(c, 64);
        uint8_t mode = pt_rd_u8(c);
        st->backend = rd_str(c, 64);
        st->idle_timeout_s = pt_rd_u32(c);
        st->max_connections = pt_rd_u32(c);
        if (mode > PT_STREAM_TLS)
            c->ok = false;
        st->mode = (enum pt_stream_mode)mode;
        st->n_listen = rd_count(c, 8, PT_STREAM_LISTEN_MAX);
        st->listen = pt_xcalloc(st->n_listen ? st->n_listen : 1, sizeof(*st->listen));
        st->lids = pt_xcalloc(st->n_listen ? st->n_listen : 1, sizeof(*st->lids));
        for (size_t j = 0; j < st->n_listen && c->ok; j++) {
            char *a = rd_str(c, PT_HOST_MAX + 16);
            if (a == NULL || pt_hostport_parse(a, strlen(a), &st->listen[j], NULL) != 0 ||
                st->listen[j].salen == 0)
                c->ok = false;
            free(a);
            st->lids[j] = pt_rd_u32(c);
        }
        st->names = rd_strs(c, &st->n_names, PT_STREAM_NAMES_MAX, PT_DNAME_MAX);
        st->alpn = rd_strs(c, &st->n_alpn, PT_STREAM_ALPN_MAX, PT_STREAM_ALPN_LEN);
    }
    return c->ok ? 0 : PT_EMALFORMED;
}

int pt_snap_streams_read(struct pt_cursor *c, struct pt_streams *ss)
{
    memset(ss, 0, sizeof(*ss));
    return rd_streams(c, ss);
}

int pt_snap_backend_read(struct pt_cursor *c, struct pt_backend *b)
{
    memset(b, 0, sizeof(*b));
    b->name = rd_str(c, 64);
    uint8_t pp = pt_rd_u8(c);
    b->tls = pt_rd_u8(c) != 0;
    b->tls_verify = pt_rd_u8(c) != 0;
    if (pp > PT_PP_V2)
        c->ok = false;
    b->proxy_protocol = (enum pt_pp_version)pp;
    if (rd_servers(c, &b->servers, &b->n_servers) != 0 ||
        rd_servers(c, &b->http_servers, &b->n_http_servers) != 0)
        return PT_EMALFORMED;
    uint8_t kind = pt_rd_u8(c);
    b->check.interval_ms = pt_rd_u32(c);
    b->check.timeout_ms = pt_rd_u32(c);
    b->check.rise = pt_rd_u8(c);
    b->check.fall = pt_rd_u8(c);
    if (kind > PT_CHECK_HTTP || !pt_rd_cstr(c, b->check.path, sizeof(b->check.path)))
        c->ok = false;
    b->check.kind = (enum pt_check_kind)kind;
    return c->ok && b->name ? 0 : PT_EMALFORMED;
}

int pt_snap_domain_read(struct pt_cursor *c, struct pt_domain *d)
{
    memset(d, 0, sizeof(*d));
    d->name = rd_str(c, PT_DNAME_MAX);
    uint8_t mode = pt_rd_u8(c);
    d->backend = rd_str(c, 64);
    uint8_t flags = pt_rd_u8(c);
    if (mode > PT_MODE_OFFLOAD)
        c->ok = false;
    d->mode = (enum pt_mode)mode;
    d->cert_manual = flags & FLAG_CERT_MANUAL;
    d->redirect_http = flags & FLAG_REDIRECT;
    d->hsts = flags & FLAG_HSTS;
    d->http2 = flags & FLAG_HTTP2;
    d->n_headers = rd_count(c, 8, PT_HEADERS_MAX);
    d->headers = pt_xcalloc(d->n_headers, sizeof(*d->headers));
    for (size_t j = 0; j < d->n_headers && c->ok; j++) {
        d->headers[j].name = rd_str(c, 256);
        d->headers[j].value = rd_str(c, 8192);
    }
    return c->ok && d->name && d->backend ? 0 : PT_EMALFORMED;
}

int pt_snap_token_read(struct pt_cursor *c, struct pt_acme_token *t)
{
    t->token = rd_str(c, 256);
    t->key_authorization = rd_str(c, 512);
    return c->ok && t->token && t->key_authorization ? 0 : PT_EMALFORMED;
}

int pt_snap_cert_read(struct pt_cursor *c, struct pt_cert *ct)
{
    ct->id = rd_str(c, 128);
    ct->cert_pem = rd_str(c, 1u << 20);
    ct->key_pem = rd_str(c, 1u << 16);
    ct->not_after = (int64_t)pt_rd_u64(c);
    ct->n_names = rd_count(c, 4, 1000);
    ct->names = pt_xcalloc(ct->n_names, sizeof(*ct->names));
    for (size_t j = 0; j < ct->n_names && c->ok; j++)
        ct->names[j] = rd_str(c, PT_DNAME_MAX);
    return c->ok && ct->id && ct->cert_pem && ct->key_pem ? 0 : PT_EMALFORMED;
}

void pt_snap_token_clear(struct pt_acme_token *t)
{
    PT_FREE(t->token);
    PT_FREE(t->key_authorization);
}

int pt_snap_decode(const uint8_t *buf, size_t len, struct pt_snapshot **out)
{
    struct pt_cursor c = pt_cursor_make(buf, len);
    struct pt_snapshot *s = pt_xcalloc(1, sizeof(*s));
    s->refs = 1;
    *out = NULL;

    const uint8_t *magic = pt_rd_bytes(&c, 4);
    if (magic == NULL || memcmp(magic, SNAP_MAGIC, 4) != 0)
        goto bad;
    s->version = pt_rd_u64(&c);
    struct pt_settings *st = &s->settings;
    st->hello_timeout_ms = pt_rd_u32(&c);
    st->connect_timeout_ms = pt_rd_u32(&c);
    st->idle_timeout_ms = pt_rd_u32(&c);
    st->body_timeout_ms = pt_rd_u32(&c);
    st->send_timeout_ms = pt_rd_u32(&c);
    st->grace_ms = pt_rd_u32(&c);
    st->https_port = pt_rd_u16(&c);
    st->access_log = pt_rd_u8(&c) != 0;
    const uint8_t *tk = pt_rd_bytes(&c, sizeof(st->ticket_key));
    if (tk)
        memcpy(st->ticket_key, tk, sizeof(st->ticket_key));
    st->n_trusted = rd_count(&c, 18, 4096);

    st->trusted = pt_xcalloc(st->n_trusted, sizeof(*st->trusted));
    for (size_t i = 0; i < st->n_trusted && c.ok; i++) {
        uint8_t fam = pt_rd_u8(&c);
        const uint8_t *a = pt_rd_bytes(&c, 16);
        uint8_t bits = pt_rd_u8(&c);
        if (a == NULL || (fam != 4 && fam != 6) || bits > (fam == 4 ? 32 : 128))
            goto bad;
        st->trusted[i].family = fam == 4 ? AF_INET : AF_INET6;
        memcpy(st->trusted[i].addr, a, 16);
        st->trusted[i].bits = bits;
    }

    s->n_backends = rd_count(&c, 19, 1u << 20);
    s->cap_backends = s->n_backends;
    s->backends = pt_xcalloc(s->n_backends, sizeof(*s->backends));
    for (size_t i = 0; i < s->n_backends && c.ok; i++)
        if (pt_snap_backend_read(&c, &s->backends[i]) != 0)
            goto bad;

    s->n_domains = rd_count(&c, 16, 1u << 24);
    s->cap_domains = s->n_domains;
    s->domains = pt_xcalloc(s->n_domains, sizeof(*s->domains));
    for (size_t i = 0; i < s->n_domains && c.ok; i++)
        if (pt_snap_domain_read(&c, &s->domains[i]) != 0)
            goto bad;
    s->n_bans = rd_count(&c, 30, 1u << 24);
    s->bans = pt_xcalloc(s->n_bans, sizeof(*s->bans));
    for (size_t i = 0; i < s->n_bans && c.ok; i++)
        if (rd_ban(&c, &s->bans[i]) != 0)
            goto bad;
    s->n_certs = rd_count(&c, 24, 1u << 20);
    s->certs = pt_xcalloc(s->n_certs, sizeof(*s->certs));
    for (size_t i = 0; i < s->n_certs && c.ok; i++)
        pt_snap_cert_read(&c, &s->certs[i]);
    s->n_tokens = rd_count(&c, 8, 1u << 16);
    s->cap_tokens = s->n_tokens;
    s->tokens = pt_xcalloc(s->n_tokens, sizeof(*s->tokens));
    for (size_t i = 0; i < s->n_tokens && c.ok; i++)
        pt_snap_token_read(&c, &s->tokens[i]);
    if (rd_streams(&c, &s->streams) != 0)
        goto bad;
    if (!c.ok || pt_cursor_left(&c) != 0)
        goto bad;
    if (pt_snap_link(s) != 0)
        goto bad;
    *out = s;
    return 0;
bad:
    s->refs = 1;
    pt_snap_unref(s);
    return PT_EMALFORMED;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int find_backend(void *arg, const char *name)
{
    const struct pt_snapshot *s = arg;
    for (size_t j = 0; j < s->n_backends; j++)
        if (s->backends[j].name && strcmp(s->backends[j].name, name) == 0)
            return (int)j;
    return -1;
}

int pt_snap_link(struct pt_snapshot *s)
{
    char norm[PT_DNAME_MAX + 1];
    for (size_t i = 0; i < s->n_domains; i++) {
        struct pt_domain *d = &s->domains[i];
        if (d->name == NULL || d->backend == NULL)
            return PT_EMALFORMED;
        /* The route table trusts its keys: refuse what it would abort on. */
        if (pt_dname_normalize(d->name, strlen(d->name), norm, PT_DNAME_ALLOW_WILDCARD,
                               NULL) < 0 ||
            strcmp(norm, d->name) != 0)
            return PT_EMALFORMED;
        int j = find_backend(s, d->backend);
        if (j < 0)
            return PT_ENOTFOUND;
        d->backend_ix = (uint32_t)j;
    }
    const char **names = pt_xcalloc(s->n_domains, sizeof(*names));
    for (size_t i = 0; i < s->n_domains; i++)
        names[i] = s->domains[i].name;
    const char **sorted = pt_xcalloc(s->n_domains, sizeof(*sorted));
    if (s->n_domains)
        memcpy(sorted, names, s->n_domains * sizeof(*names));
    qsort(sorted, s->n_domains, sizeof(*sorted), cmp_str);
    for (size_t i = 1; i < s->n_domains; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) {
            free(sorted);
            free(names);
            return PT_EMALFORMED;
        }
    free(sorted);
    pt_route_free(s->routes);
    s->routes = pt_route_build(names, s->n_domains);
    free(names);
    pt_banlist_free(s->banlist);
    s->banlist = pt_banlist_build(s->bans, s->n_bans);
    return pt_snap_streams_link(&s->streams, find_backend, s);
}

int pt_snap_streams_link(struct pt_streams *ss, int (*find)(void *arg, const char *backend),
                         void *arg)
{
    char norm[PT_DNAME_MAX + 1];
    for (size_t i = 0; i < ss->n; i++)
        for (size_t j = 0; j < ss->v[i].n_names; j++) {
            const char *n = ss->v[i].names[j];
            if (n == NULL ||
                pt_dname_normalize(n, strlen(n), norm, PT_DNAME_ALLOW_WILDCARD, NULL) < 0 ||
                strcmp(norm, n) != 0)
                return PT_EMALFORMED;
        }
    return pt_streams_link(ss, find, arg);
}

const struct pt_domain *pt_snap_domain(const struct pt_snapshot *s, const char *name)
{
    for (size_t i = 0; i < s->n_domains; i++)
        if (strcmp(s->domains[i].name, name) == 0)
            return &s->domains[i];
    return NULL;
}

struct pt_snapshot *pt_snap_ref(struct pt_snapshot *s)
{
    s->refs++;
    return s;
}

void pt_backend_clear(struct pt_backend *b)
{
    PT_FREE(b->name);
    PT_FREE(b->servers);
    PT_FREE(b->http_servers);
    b->n_servers = b->n_http_servers = 0;
}

void pt_domain_clear(struct pt_domain *d)
{
    PT_FREE(d->name);
    PT_FREE(d->backend);
    for (size_t j = 0; j < d->n_headers; j++) {
        free(d->headers[j].name);
        free(d->headers[j].value);
    }
    PT_FREE(d->headers);
    d->n_headers = 0;
}

void pt_cert_clear(struct pt_cert *ct)
{
    PT_FREE(ct->id);
    PT_FREE(ct->cert_pem);
    PT_FREE(ct->key_pem);
    for (size_t j = 0; j < ct->n_names; j++)
        free(ct->names[j]);
    PT_FREE(ct->names);
    ct->n_names = 0;
}

void pt_settings_clear(struct pt_settings *st)
{
    PT_FREE(st->trusted);
    st->n_trusted = 0;
}

static struct pt_hostport *dup_servers(const struct pt_hostport *src, size_t n)
{
    struct pt_hostport *p = pt_xcalloc(n, sizeof(*p));
    if (n)
        memcpy(p, src, n * sizeof(*p));
    return p;
}

void pt_backend_copy(struct pt_backend *dst, const struct pt_backend *src)
{
    *dst = *src;
    dst->name = src->name ? pt_xstrdup(src->name) : NULL;
    dst->servers = dup_servers(src->servers, src->n_servers);
    dst->http_servers = dup_servers(src->http_servers, src->n_http_servers);
}

void pt_domain_copy(struct pt_domain *dst, const struct pt_domain *src)
{
    *dst = *src;
    dst->name = src->name ? pt_xstrdup(src->name) : NULL;
    dst->backend = src->backend ? pt_xstrdup(src->backend) : NULL;
    dst->headers = pt_xcalloc(src->n_headers, sizeof(*dst->headers));
    for (size_t j = 0; j < src->n_headers; j++) {
        dst->headers[j].name = pt_xstrdup(src->headers[j].name);
        dst->headers[j].value = pt_xstrdup(src->headers[j].value);
    }
}

void pt_snap_unref(struct pt_snapshot *s)
{
    if (s == NULL)
        return;
    PT_ASSERT(s->refs > 0);
    if (--s->refs > 0)
        return;
    for (size_t i = 0; i < s->n_retired_backends; i++)
        pt_backend_clear(&s->retired_backends[i]);
    for (size_t i = 0; i < s->n_retired_domains; i++)
        pt_domain_clear(&s->retired_domains[i]);
    free(s->retired_backends);
    free(s->retired_domains);
    for (size_t i = 0; i < s->n_tokens; i++) /* every snapshot owns its own */
        pt_snap_token_clear(&s->tokens[i]);
    free(s->tokens);
    if (s->next) {
        /* Everything but the arrays and the retired objects is shared with
         * the successor, which outlives this one (it holds a reference). */
        free(s->backends);
        free(s->domains);
        pt_route_free(s->routes);
        pt_banlist_free(s->banlist); /* a successor starts without one */
        if (s->streams_replaced)
            pt_streams_clear(&s->streams);
        struct pt_snapshot *next = s->next;
        free(s);
        pt_snap_unref(next);
        return;
    }
    for (size_t i = 0; i < s->n_backends; i++)
        pt_backend_clear(&s->backends[i]);
    for (size_t i = 0; i < s->n_domains; i++)
        pt_domain_clear(&s->domains[i]);
    free(s->backends);
    free(s->domains);
    pt_settings_clear(&s->settings);
    pt_route_free(s->routes);
    for (size_t i = 0; i < s->n_bans; i++)
        free(s->bans[i].reason);
    free(s->bans);
    for (size_t i = 0; i < s->n_certs; i++)
        pt_cert_clear(&s->certs[i]);
    free(s->certs);
    pt_route_free(s->cert_ids);
    pt_streams_clear(&s->streams);
    pt_banlist_free(s->banlist);
    free(s);
}

const char *pt_mode_name(enum pt_mode m)
{
    return m == PT_MODE_OFFLOAD ? "offload" : "passthrough";
}

const char *pt_pp_name(enum pt_pp_version v)
{
    switch (v) {
    case PT_PP_V1:
        return "v1";
    case PT_PP_V2:
        return "v2";
    default:
        return "none";
    }
}

/* Ban delta wire format: "PTB1" u64 version, u32 n, n x (u8 op, ban as in a
 * snapshot); op 1 adds or replaces, 0 removes. */
#define BANS_MAGIC "PTB1"

void pt_snap_bans_encode(uint64_t version, const struct pt_ban_change *ch, size_t n,
                         struct pt_wbuf *out)
{
    pt_wbuf_put(out, BANS_MAGIC, 4);
    pt_wbuf_u64(out, version);
    pt_wbuf_u32(out, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        pt_wbuf_u8(out, ch[i].remove ? 0 : 1);
        put_ban(out, &ch[i].ban);
    }
}

int pt_snap_bans_decode(const uint8_t *buf, size_t len, uint64_t *version,
                        struct pt_ban_change **out, size_t *n)
{
    struct pt_cursor c = pt_cursor_make(buf, len);
    const uint8_t *magic = pt_rd_bytes(&c, 4);
    *version = pt_rd_u64(&c);
    *n = rd_count(&c, 31, 1u << 24);
    *out = pt_xcalloc(*n, sizeof(**out));
    if (magic == NULL || memcmp(magic, BANS_MAGIC, 4) != 0)
        c.ok = false;
    for (size_t i = 0; i < *n && c.ok; i++) {
        uint8_t op = pt_rd_u8(&c);
        if (rd_ban(&c, &(*out)[i].ban) != 0 || op > 1)
            c.ok = false;
        (*out)[i].remove = op == 0;
    }
    if (!c.ok || pt_cursor_left(&c) != 0) {
        pt_snap_bans_free(*out, *n);
        *out = NULL;
        *n = 0;
        return PT_EMALFORMED;
    }
    return 0;
}

void pt_snap_bans_free(struct pt_ban_change *ch, size_t n)
{
    for (size_t i = 0; ch && i < n; i++)
        free(ch[i].ban.reason);
    free(ch);
}
