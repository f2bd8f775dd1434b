#include "daemon/acme.h"

#include "api/model.h"
#include "common/log.h"
#include "daemon/jws.h"
#include "daemon/publish.h"
#include "db/certs.h"
#include "db/store.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ACME_BODY_MAX (1u << 20)    /* a certificate chain is a few KB */
#define ACME_NONCE_TRIES 20         /* badNonce retries per request */
#define ACME_POLL_S 120             /* per authorization / order wait */
#define ACME_ARI_DEFAULT_S (6 * 3600)
#define ACME_PROBLEM "urn:ietf:params:acme:error:"

/* ---- scheduling rules ----------------------------------------------------- */

int64_t pt_acme_renew_after(int64_t not_before, int64_t not_after)
{
    if (not_after <= not_before)
        return not_before;
    /* 2/3 of the lifetime, floored, without overflowing for any input. */
    int64_t d = not_after - not_before;
    return not_before + d / 3 * 2 + d % 3 * 2 / 3;
}

int64_t pt_acme_renew_time(int64_t not_before, int64_t not_after, bool has_window,
                           int64_t window_start, int64_t window_end, uint64_t rnd)
{
    int64_t t = pt_acme_renew_after(not_before, not_after);
    if (has_window && window_end >= window_start) {
        uint64_t span = (uint64_t)(window_end - window_start) + 1;
        int64_t pick = window_start + (int64_t)(rnd % span);
        if (pick < t)
            t = pick;
    }
    return t;
}

int64_t pt_acme_backoff_s(int64_t failures)
{
    const int64_t cap = 86400;
    if (failures < 1)
        failures = 1;
    if (failures > 20) /* 60 << 19 is far past the cap already */
        return cap;
    int64_t d = (int64_t)60 << (failures - 1);
    return d < cap ? d : cap;
}

int64_t pt_acme_retry_at(int64_t now, int64_t failures, int64_t retry_after_s)
{
    const int64_t week = 7 * 86400;
    int64_t d = pt_acme_backoff_s(failures);
    if (retry_after_s > week)
        retry_after_s = week;
    if (retry_after_s > d)
        d = retry_after_s;
    return now + d;
}

/* ---- state ---------------------------------------------------------------- */

struct ari_next {
    char *id;
    int64_t at; /* next renewalInfo look-up */
};

struct pt_acme {
    char *directory_url, *email, *ca_bundle, *key_path;
    struct pt_publisher *pub;
    unsigned interval_ms;
    EVP_PKEY *key; /* account key */
    char thumb[44];
    pthread_t thread;
    bool started;

    pthread_mutex_t qlock; /* guards the fields below: never held for long */
    pthread_cond_t qcond;
    bool stop;
    bool kicked;
    char **force; /* certificate ids to renew now */
    size_t n_force, cap_force;
    int stopping; /* atomic copy of <stop> for curl's progress callback */

    /* the thread's own */
    CURL *curl;
    json_t *dir;
    char *nonce;
    char *account_url;
    bool tokens_cleared;
    struct ari_next *ari;
    size_t n_ari;
};

/* What went wrong with one order: the CA's problem, or ours. */
struct fail {
    char msg[1024];
    int64_t retry_after; /* from a 429/503, seconds */
    bool account_gone;   /* the CA does not know our account (any more) */
};

static __attribute__((format(printf, 2, 3))) int failf(struct fail *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
    va_end(ap);
    return PT_EIO;
}

static bool stopping(struct pt_acme *a)
{
    return __atomic_load_n(&a->stopping, __ATOMIC_RELAXED) != 0;
}

/* Sleeps <ms> unless asked to stop. Returns false when stopping. */
static bool nap(struct pt_acme *a, unsigned ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (long)(ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&a->qlock);
    while (!a->stop && pthread_cond_timedwait(&a->qcond, &a->qlock, &dl) != ETIMEDOUT)
        ;
    bool go = !a->stop;
    pthread_mutex_unlock(&a->qlock);
    return go;
}

/* ---- HTTP ----------------------------------------------------------------- */

struct resp {
    long status;
    char *body;
    size_t len, cap;
    bool too_big;
    char *location;
    char *nonce;
    char *ctype;
    int64_t retry_after; /* seconds, 0 = none */
};

static void resp_free(struct resp *r)
{
    free(r->body);
    free(r->location);
    free(r->nonce);
    free(r->ctype);
    memset(r, 0, sizeof(*r));
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    size_t len = size * n;
    if (r->len + len > ACME_BODY_MAX) {
        r->too_big = true;
        return 0;
    }
    if (r->len + len + 1 > r->cap) {
        r->cap = (r->len + len + 1) * 2;
        r->body = pt_xrealloc(r->body, r->cap);
    }
    memcpy(r->body + r->len, p, len);
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

/* "Name: value\r\n" -> value (trimmed, malloc'ed) when the name matches. */
static char *header_value(const char *line, size_t len, const char *name)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return NULL;
    const char *v = line + nl + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return pt_xstrndup(v, (size_t)(end - v));
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    size_t len = size * n;
    char *v;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) { /* a new response (after 100) */
        PT_FREE(r->location);
        PT_FREE(r->nonce);
        PT_FREE(r->ctype);
        r->retry_after = 0;
    } else if ((v = header_value(p, len, "Location")) != NULL) {
        free(r->location);
        r->location = v;
    } else if ((v = header_value(p, len, "Replay-Nonce")) != NULL) {
        free(r->nonce);
        r->nonce = v;
    } else if ((v = header_value(p, len, "Content-Type")) != NULL) {
        free(r->ctype);
        r->ctype = v;
    } else if ((v = header_value(p, len, "Retry-After")) != NULL) {
        char *end;
        long long s = strtoll(v, &end, 10);
        if (end != v && *end == '\0' && s >= 0) {
            r->retry_after = s;
        } else { /* an HTTP-date */
            time_t t = curl_getdate(v, NULL);
            time_t now = time(NULL);
            if (t != (time_t)-1 && t > now)
                r->retry_after = (int64_t)(t - now);
        }
        free(v);
    }
    return len;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    return stopping(arg) ? 1 : 0;
}

enum http_method {
    HTTP_GET = 0,
    HTTP_HEAD,
    HTTP_POST, /* application/jose+json */
};

/* One exchange with the CA. Returns 0 with <r> filled (any HTTP status), or
 * PT_EIO (transport failure, <f> set, <r> freed). */
static int http(struct pt_acme *a, enum http_method m, const char *url, const char *body,
                const char *accept, struct resp *r, struct fail *f)
{
    struct curl_slist *hdrs = NULL;
    char acc[128];
    memset(r, 0, sizeof(*r));
    curl_easy_reset(a->curl); /* keeps the connection cache */
    curl_easy_setopt(a->curl, CURLOPT_URL, url);
    curl_easy_setopt(a->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(a->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(a->curl, CURLOPT_CONNECTTIMEOUT, 15L);
    curl_easy_setopt(a->curl, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(a->curl, CURLOPT_USERAGENT, "portier/" PT_VERSION);
    curl_easy_setopt(a->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(a->curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(a->curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(a->curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(a->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(a->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(a->curl, CURLOPT_XFERINFODATA, a);
    if (a->ca_bundle)
        curl_easy_setopt(a->curl, CURLOPT_CAINFO, a->ca_bundle);
    snprintf(acc, sizeof(acc), "Accept: %s", accept ? accept : "application/json");
    hdrs = curl_slist_append(hdrs, acc);
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (m == HTTP_POST) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/jose+json");
        curl_easy_setopt(a->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(a->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else if (m == HTTP_HEAD) {
        curl_easy_setopt(a->curl, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(a->curl, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(a->curl, CURLOPT_HTTPHEADER, hdrs);
    CURLcode cc = curl_easy_perform(a->curl);
    curl_slist_free_all(hdrs);
    if (cc != CURLE_OK) {
        if (r->too_big)
            failf(f, "%s: response larger than %u bytes", url, ACME_BODY_MAX);
        else
            failf(f, "%s: %s", url, curl_easy_strerror(cc));
        resp_free(r);
        return PT_EIO;
    }
    curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &r->status);
    return 0;
}

static json_t *resp_json(const struct resp *r)
{
    return r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
}

static bool problem_is(const json_t *p, const char *type)
{
    const char *t = json_string_value(json_object_get(p, "type"));
    return t && strncmp(t, ACME_PROBLEM, strlen(ACME_PROBLEM)) == 0 &&
           strcmp(t + strlen(ACME_PROBLEM), type) == 0;
}

/* "<detail> (<type>)" of RFC 7807 problem <p>, with the first subproblem's
 * detail when there is one, into <out>. */
static void problem_text(const json_t *p, char *out, size_t len)
{
    const char *type = json_string_value(json_object_get(p, "type"));
    const char *detail = json_string_value(json_object_get(p, "detail"));
    const json_t *sub = json_array_get(json_object_get(p, "subproblems"), 0);
    const char *sdetail = json_string_value(json_object_get(sub, "detail"));
    snprintf(out, len, "%s%s%s (%s)", detail ? detail : "no detail", sdetail ? ": " : "",
             sdetail ? sdetail : "", type ? type : "no type");
}

/* Turns a non-2xx answer into <f>; frees <r>. Returns PT_EIO. */
static int fail_resp(struct fail *f, struct resp *r, const char *what)
{
    json_t *p = resp_json(r);
    char text[900];
    if (json_is_object(p)) {
        problem_text(p, text, sizeof(text));
        if (problem_is(p, "accountDoesNotExist"))
            f->account_gone = true;
    } else {
        snprintf(text, sizeof(text), "HTTP %ld", r->status);
    }
    failf(f, "%s: %s", what, text);
    if (r->retry_after > 0 && (r->status == 429 || r->status == 503))
        f->retry_after = r->retry_after;
    json_decref(p);
    resp_free(r);
    return PT_EIO;
}

/* ---- ACME requests -------------------------------------------------------- */

static int ensure_directory(struct pt_acme *a, struct fail *f)
{
    struct resp r;
    if (a->dir)
        return 0;
    if (http(a, HTTP_GET, a->directory_url, NULL, NULL, &r, f) != 0)
        return PT_EIO;
    if (r.status != 200)
        return fail_resp(f, &r, "ACME directory");
    json_t *d = resp_json(&r);
    resp_free(&r);
    if (!json_is_object(d) || !json_is_string(json_object_get(d, "newNonce")) ||
        !json_is_string(json_object_get(d, "newAccount")) ||
        !json_is_string(json_object_get(d, "newOrder"))) {
        json_decref(d);
        return failf(f, "%s is not an ACME directory (no newNonce/newAccount/newOrder)",
                     a->directory_url);
    }
    a->dir = d;
    return 0;
}

static const char *dir_url(struct pt_acme *a, const char *name)
{
    return json_string_value(json_object_get(a->dir, name));
}

static int fresh_nonce(struct pt_acme *a, struct fail *f)
{
    struct resp r;
    if (a->nonce)
        return 0;
    if (http(a, HTTP_HEAD, dir_url(a, "newNonce"), NULL, NULL, &r, f) != 0)
        return PT_EIO;
    if ((r.status != 200 && r.status != 204) || r.nonce == NULL)
        return fail_resp(f, &r, "newNonce");
    a->nonce = r.nonce;
    r.nonce = NULL;
    resp_free(&r);
    return 0;
}

/* A JWS-signed POST: with the account's "kid", or the "jwk" when <use_jwk>
 * (newAccount). <payload> NULL is a POST-as-GET. Every attempt uses a nonce
 * once; a badNonce answer is retried with the nonce it carries. Returns 0
 * with a 2xx <r>, or PT_EIO with <f> set. */
static int acme_post(struct pt_acme *a, const char *url, const char *payload, bool use_jwk,
                     const char *accept, struct resp *r, struct fail *f, const char *what)
{
    for (int attempt = 0; attempt < ACME_NONCE_TRIES; attempt++) {
        if (stopping(a))
            return failf(f, "%s: stopping", what);
        if (fresh_nonce(a, f) != 0)
            return PT_EIO;
        char *jws = pt_jws_sign(a->key, use_jwk ? NULL : a->account_url, a->nonce, url,
                                payload);
        PT_FREE(a->nonce); /* used: never again */
        if (jws == NULL)
            return failf(f, "%s: cannot sign the request", what);
        int rc = http(a, HTTP_POST, url, jws, accept, r, f);
        free(jws);
        if (rc != 0)
            return PT_EIO;
        if (r->nonce) {
            a->nonce = r->nonce;
            r->nonce = NULL;
        }
        if (r->status >= 200 && r->status < 300)
            return 0;
        if (r->status == 400) {
            json_t *p = resp_json(r);
            bool bad_nonce = problem_is(p, "badNonce");
            json_decref(p);
            if (bad_nonce) {
                pt_log(PT_LOG_DEBUG, "acme: badNonce on %s, retrying", what);
                resp_free(r);
                continue;
            }
        }
        return fail_resp(f, r, what);
    }
    return failf(f, "%s: the CA refused %d nonces in a row (badNonce)", what,
                 ACME_NONCE_TRIES);
}

/* POST-as-GET returning the JSON body (new reference). */
static json_t *acme_get_json(struct pt_acme *a, const char *url, struct fail *f,
                             const char *what, int64_t *retry_after)
{
    struct resp r;
    if (acme_post(a, url, NULL, false, NULL, &r, f, what) != 0)
        return NULL;
    json_t *j = resp_json(&r);
    if (retry_after)
        *retry_after = r.retry_after;
    resp_free(&r);
    if (!json_is_object(j)) {
        json_decref(j);
        failf(f, "%s: the CA's answer is not a JSON object", what);
        return NULL;
    }
    return j;
}

/* ---- store access (always under the publisher's lock) --------------------- */

static void db_lock(struct pt_acme *a)
{
    pthread_mutex_lock(a->pub->lock);
}

static void db_unlock(struct pt_acme *a)
{
    pthread_mutex_unlock(a->pub->lock);
}

static char *state_key(const char *prefix, const char *rest)
{
    size_t lp = strlen(prefix), lr = strlen(rest);
    char *k = pt_xmalloc(lp + lr + 1);
    memcpy(k, prefix, lp);
    memcpy(k + lp, rest, lr + 1);
    return k;
}

/* Writes (value) or deletes (NULL) one acme_state key in its own transaction. */
static int state_write(struct pt_acme *a, const char *key, const char *value)
{
    db_lock(a);
    int rc = pt_store_begin(a->pub->store);
    if (rc == 0) {
        if (value)
            rc = pt_store_acme_state_set(a->pub->store, key, value);
        else if (pt_store_acme_state_delete(a->pub->store, key) == PT_EDB)
            rc = PT_EDB;
        if (rc == 0)
            rc = pt_publish_store(a->pub);
        else
            pt_store_rollback(a->pub->store);
    }
    db_unlock(a);
    return rc;
}

/* An owned copy of a certificate row. */
struct row {
    char *id, *source, *domains_json, *cert_pem, *key_pem, *status, *last_error;
    int64_t not_before, not_after, renew_after, retry_at, failures, created, updated;
    char *name; /* the one domain of an ACME row, NULL otherwise */
};

static char *dup_or_null(const char *s)
{
    return s ? pt_xstrdup(s) : NULL;
}

static void row_clear(struct row *r)
{
    free(r->id);
    free(r->source);
    free(r->domains_json);
    free(r->cert_pem);
    free(r->key_pem);
    free(r->status);
    free(r->last_error);
    free(r->name);
    memset(r, 0, sizeof(*r));
}

static void row_copy(struct row *r, const struct pt_store_cert *c)
{
    memset(r, 0, sizeof(*r));
    r->id = pt_xstrdup(c->id);
    r->source = pt_xstrdup(c->source ? c->source : "");
    r->domains_json = pt_xstrdup(c->domains_json ? c->domains_json : "[]");
    r->cert_pem = dup_or_null(c->cert_pem);
    r->key_pem = dup_or_null(c->key_pem);
    r->status = pt_xstrdup(c->status ? c->status : "pending");
    r->last_error = dup_or_null(c->last_error);
    r->not_before = c->not_before;
    r->not_after = c->not_after;
    r->renew_after = c->renew_after;
    r->retry_at = c->retry_at;
    r->failures = c->failures;
    r->created = c->created;
    r->updated = c->updated;
    json_t *names = json_loads(r->domains_json, 0, NULL);
    if (json_is_array(names) && json_array_size(names) == 1 &&
        json_is_string(json_array_get(names, 0)))
        r->name = pt_xstrdup(json_string_value(json_array_get(names, 0)));
    json_decref(names);
}

static struct pt_store_cert row_view(const struct row *r)
{
    return (struct pt_store_cert){
        .id = r->id,
        .source = r->source,
        .domains_json = r->domains_json,
        .cert_pem = r->cert_pem,
        .key_pem = r->key_pem,
        .status = r->status,
        .not_before = r->not_before,
        .not_after = r->not_after,
        .renew_after = r->renew_after,
        .last_error = r->last_error,
        .retry_at = r->retry_at,
        .failures = r->failures,
        .created = r->created,
        .updated = r->updated,
    };
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = dup_or_null(v);
}

static int on_row_get(void *arg, const struct pt_store_cert *c)
{
    row_copy(arg, c);
    return 0;
}

/* In one transaction: re-reads row <id> (the API may have changed or
 * deleted it since we looked), lets <fn> change it and writes it back, and
 * deletes HTTP-01 <tokens>. <publish>: the change matters to the workers, so
 * it goes through pt_publish_commit. Returns 0, PT_ENOTFOUND when the row is
 * gone (tokens deleted all the same), or PT_EDB. */
static int row_update(struct pt_acme *a, const char *id, void (*fn)(struct row *, void *),
                      void *ctx, bool publish, char *const *tokens, size_t n_tokens)
{
    struct pt_store *s = a->pub->store;
    struct row r = {0};
    bool applied = false;
    uint64_t version;
    db_lock(a);
    int rc = pt_store_begin(s);
    if (rc != 0) {
        db_unlock(a);
        return PT_EDB;
    }
    /* What the workers get: this row's certificate (or its removal) and
     * the answers that go, never every other certificate again. */
    struct pt_delta delta = {0};
    int got = id ? pt_store_cert_get(s, id, on_row_get, &r) : PT_ENOTFOUND;
    if (got == 0 && fn) {
        fn(&r, ctx);
        r.updated = (int64_t)time(NULL);
        struct pt_store_cert v = row_view(&r);
        rc = pt_store_cert_put(s, &v);
        pt_model_cert_delta(&delta, r.id, &v, r.updated);
    } else if (got == PT_EDB) {
        rc = PT_EDB;
    }
    for (size_t i = 0; rc == 0 && i < n_tokens; i++) {
        int del = pt_store_acme_token_delete(s, tokens[i]);
        if (del == PT_EDB)
            rc = PT_EDB;
        else if (del == 0) /* the workers have every stored answer */
            pt_delta_remove(&delta, PT_DELTA_TOKEN, tokens[i]);
    }
    struct pt_commit c = {.kind = PT_COMMIT_CONFIG, .delta = &delta};
    if (rc != 0)
        pt_store_rollback(s);
    else if (publish && delta.n)
        rc = pt_publish_commit(a->pub, &c, &version, &applied);
    else
        rc = pt_publish_store(a->pub);
    db_unlock(a);
    pt_delta_clear(&delta);
    row_clear(&r);
    return rc != 0 ? rc : got == PT_ENOTFOUND ? PT_ENOTFOUND : 0;
}

/* ---- the account ---------------------------------------------------------- */

static int load_or_create_key(struct pt_acme *a, char *err, size_t errlen)
{
    FILE *fp = fopen(a->key_path, "re");
    if (fp == NULL && errno == ENOENT) {
        EVP_PKEY *k = pt_jws_p256_new();
        int fd = -1;
        if (k == NULL) {
            snprintf(err, errlen, "cannot generate the ACME account key");
            return PT_EIO;
        }
        /* O_EXCL: created once; a key that exists is never overwritten. */
        fd = open(a->key_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
        bool ok = out && PEM_write_PrivateKey(out, k, NULL, NULL, 0, NULL, NULL) == 1 &&
                  fflush(out) == 0 && fsync(fd) == 0;
        int e = errno;
        if (out)
            fclose(out);
        else if (fd >= 0)
            close(fd);
        if (!ok) {
            snprintf(err, errlen, "%s: cannot write the ACME account key: %s", a->key_path,
                     strerror(e));
            if (fd >= 0)
                unlink(a->key_path);
            EVP_PKEY_free(k);
            return PT_EIO;
        }
        a->key = k;
        pt_log(PT_LOG_INFO, "acme: new account key in %s", a->key_path);
        return 0;
    }
    if (fp == NULL) {
        snprintf(err, errlen, "%s: %s", a->key_path, strerror(errno));
        return PT_EIO;
    }
    a->key = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    if (a->key == NULL || !pt_jws_is_p256(a->key)) {
        snprintf(err, errlen, "%s: not an ECDSA P-256 private key in PEM", a->key_path);
        EVP_PKEY_free(a->key);
        a->key = NULL;
        return PT_EINVAL;
    }
    return 0;
}

static int ensure_account(struct pt_acme *a, struct fail *f)
{
    if (a->account_url)
        return 0;
    /* Keyed by directory: another CA (staging -> production) is another account. */
    char *key = state_key("account:", a->directory_url);
    char *url = NULL;
    db_lock(a);
    int rc = pt_store_acme_state_get(a->pub->store, key, &url);
    db_unlock(a);
    if (rc == 0) {
        a->account_url = url;
        free(key);
        return 0;
    }
    json_t *meta = json_object_get(a->dir, "meta");
    if (json_is_true(json_object_get(meta, "externalAccountRequired"))) {
        free(key);
        return failf(f, "the CA requires external account binding, which portier does not "
                        "support");
    }
    json_t *req = json_pack("{s:b}", "termsOfServiceAgreed", 1);
    if (a->email) {
        char *mailto = state_key("mailto:", a->email);
        json_object_set_new(req, "contact", json_pack("[s]", mailto));
        free(mailto);
    }
    char *payload = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    struct resp r;
    rc = acme_post(a, dir_url(a, "newAccount"), payload, true, NULL, &r, f, "newAccount");
    free(payload);
    if (rc != 0) {
        free(key);
        return rc;
    }
    if (r.location == NULL) {
        resp_free(&r);
        free(key);
        return failf(f, "newAccount: the CA gave no account URL (Location)");
    }
    a->account_url = r.location;
    r.location = NULL;
    resp_free(&r);
    if (state_write(a, key, a->account_url) != 0)
        pt_log(PT_LOG_WARN, "acme: cannot store the account URL (will register again)");
    pt_log(PT_LOG_INFO, "acme: account %s", a->account_url);
    free(key);
    return 0;
}

static void forget_account(struct pt_acme *a)
{
    char *key = state_key("account:", a->directory_url);
    state_write(a, key, NULL);
    free(key);
    PT_FREE(a->account_url);
}

/* ---- one order ------------------------------------------------------------ */

struct order {
    char **tokens; /* HTTP-01 tokens we put in the store */
    size_t n_tokens;
    char *cert_pem, *key_pem; /* the result */
    int64_t not_before, not_after;
};

static void order_clear(struct order *o)
{
    for (size_t i = 0; i < o->n_tokens; i++)
        free(o->tokens[i]);
    free(o->tokens);
    free(o->cert_pem);
    free(o->key_pem);
    memset(o, 0, sizeof(*o));
}

/* Poll delay for the <n>th look (from 0), or the server's Retry-After. */
static unsigned poll_ms(unsigned n, int64_t retry_after)
{
    if (retry_after > 0)
        return retry_after > 30 ? 30000u : (unsigned)retry_after * 1000u;
    static const unsigned steps[] = {250, 500, 1000, 1000, 2000, 2000, 3000};
    return n < PT_ARRAY_LEN(steps) ? steps[n] : 5000u;
}

static const json_t *find_http01(const json_t *authz)
{
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(authz, "challenges"), i, c) {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t && strcmp(t, "http-01") == 0)
            return c;
    }
    return NULL;
}

/* The error of a failed authorization: its http-01 challenge's problem. */
static int fail_authz(struct fail *f, const json_t *authz, const char *name, const char *st)
{
    const json_t *c = find_http01(authz);
    const json_t *p = json_object_get(c, "error");
    char text[900];
    if (json_is_object(p)) {
        problem_text(p, text, sizeof(text));
        return failf(f, "%s: authorization %s: %s", name, st, text);
    }
    return failf(f, "%s: authorization %s", name, st);
}

/* Token characters (RFC 8555 §8.3: base64url) only, so it can be a path. */
static bool token_ok(const char *t)
{
    size_t n = strlen(t);
    if (n < 16 || n > 256)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)t[i];
        if (!(ch >= 'A' && ch <= 'Z') && !(ch >= 'a' && ch <= 'z') &&
            !(ch >= '0' && ch <= '9') && ch != '-' && ch != '_')
            return false;
    }
    return true;
}

/* Makes every worker answer <token> before the CA is told to look. */
static int publish_token(struct pt_acme *a, struct order *o, const char *token, struct fail *f)
{
    char *keyauth = pt_jws_key_authorization(token, a->thumb);
    bool applied = false;
    uint64_t version;
    db_lock(a);
    int rc = pt_store_begin(a->pub->store);
    if (rc == 0) {
        rc = pt_store_acme_token_put(a->pub->store, token, keyauth, (int64_t)time(NULL));
        /* A delta: an answer costs the same whatever the configuration's size. */
        struct pt_delta delta = {0};
        pt_delta_put_token(&delta, token, keyauth);
        struct pt_commit c = {.kind = PT_COMMIT_CONFIG, .delta = &delta};
        if (rc == 0)
            rc = pt_publish_commit(a->pub, &c, &version, &applied);
        else
            pt_store_rollback(a->pub->store);
        pt_delta_clear(&delta);
    }
    db_unlock(a);
    free(keyauth);
    if (rc != 0)
        return failf(f, "cannot store the HTTP-01 answer: %s", pt_strerror(rc));
    o->tokens = pt_xrealloc(o->tokens, (o->n_tokens + 1) * sizeof(*o->tokens));
    o->tokens[o->n_tokens++] = pt_xstrdup(token);
    if (!applied)
        pt_log(PT_LOG_WARN, "acme: not every worker acknowledged the HTTP-01 answer in time; "
                            "asking the CA to validate anyway");
    return 0;
}

static int do_authz(struct pt_acme *a, struct order *o, const char *url, const char *name,
                    struct fail *f)
{
    int64_t ra = 0;
    json_t *authz = acme_get_json(a, url, f, "authorization", &ra);
    int rc = PT_EIO;
    if (authz == NULL)
        return PT_EIO;
    const char *st = json_string_value(json_object_get(authz, "status"));
    const char *ident =
        json_string_value(json_object_get(json_object_get(authz, "identifier"), "value"));
    /* a copy: <authz> is replaced by every poll */
    char *who = pt_xstrdup(ident ? ident : name);
    name = who;
    if (st && strcmp(st, "valid") == 0) { /* reused by the CA */
        rc = 0;
        goto out;
    }
    if (st == NULL || strcmp(st, "pending") != 0) {
        rc = fail_authz(f, authz, name, st ? st : "without status");
        goto out;
    }
    const json_t *ch = find_http01(authz);
    const char *token = json_string_value(json_object_get(ch, "token"));
    const char *ch_url = json_string_value(json_object_get(ch, "url"));
    const char *ch_st = json_string_value(json_object_get(ch, "status"));
    if (ch == NULL || token == NULL || ch_url == NULL) {
        rc = failf(f, "%s: the CA offers no http-01 challenge", name);
        goto out;
    }
    if (!token_ok(token)) {
        rc = failf(f, "%s: the CA's http-01 token is not base64url", name);
        goto out;
    }
    if (publish_token(a, o, token, f) != 0)
        goto out;
    if (ch_st == NULL || strcmp(ch_st, "pending") == 0) {
        struct resp r;
        if (acme_post(a, ch_url, "{}", false, NULL, &r, f, "challenge") != 0)
            goto out;
        resp_free(&r);
    }
    pt_log(PT_LOG_DEBUG, "acme: %s: http-01 challenge posted", name);
    time_t deadline = time(NULL) + ACME_POLL_S;
    for (unsigned n = 0;; n++) {
        if (!nap(a, poll_ms(n, ra))) {
            rc = failf(f, "%s: stopping", name);
            goto out;
        }
        json_decref(authz);
        authz = acme_get_json(a, url, f, "authorization", &ra);
        if (authz == NULL)
            goto out;
        st = json_string_value(json_object_get(authz, "status"));
        if (st && strcmp(st, "valid") == 0) {
            rc = 0;
            goto out;
        }
        if (st == NULL || strcmp(st, "pending") != 0) {
            rc = fail_authz(f, authz, name, st ? st : "without status");
            goto out;
        }
        if (time(NULL) > deadline) {
            rc = failf(f, "%s: the CA did not validate the http-01 challenge within %d s",
                       name, ACME_POLL_S);
            goto out;
        }
    }
out:
    json_decref(authz);
    free(who);
    return rc;
}

/* Polls <order_url> while its status is one of <wait1>/<wait2>; returns the
 * final order (new reference) or NULL with <f> set. */
static json_t *poll_order(struct pt_acme *a, const char *order_url, json_t *order,
                          const char *wait1, const char *wait2, int64_t ra, struct fail *f)
{
    time_t deadline = time(NULL) + ACME_POLL_S;
    for (unsigned n = 0;; n++) {
        const char *st = json_string_value(json_object_get(order, "status"));
        if (st == NULL || (strcmp(st, wait1) != 0 && (wait2 == NULL || strcmp(st, wait2) != 0)))
            return order;
        if (time(NULL) > deadline) {
            json_decref(order);
            failf(f, "order still %s after %d s", st, ACME_POLL_S);
            return NULL;
        }
        if (!nap(a, poll_ms(n, ra))) {
            json_decref(order);
            failf(f, "stopping");
            return NULL;
        }
        json_decref(order);
        order = acme_get_json(a, order_url, f, "order", &ra);
        if (order == NULL)
            return NULL;
    }
}

static int order_error(struct fail *f, const json_t *order, const char *name, const char *what)
{
    const json_t *p = json_object_get(order, "error");
    const char *st = json_string_value(json_object_get(order, "status"));
    char text[900];
    if (json_is_object(p)) {
        problem_text(p, text, sizeof(text));
        return failf(f, "%s: %s: order %s: %s", name, what, st ? st : "?", text);
    }
    return failf(f, "%s: %s: order %s", name, what, st ? st : "without status");
}

/* Checks the chain the CA sent: PEM, leaf for our key and for <name>. */
static int check_chain(const char *pem, EVP_PKEY *key, const char *name, struct order *o,
                       struct fail *f)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *leaf = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    int rc = PT_EIO;
    BIO_free(bio);
    if (leaf == NULL) {
        failf(f, "%s: the CA's certificate is not PEM", name);
        goto out;
    }
    if (X509_check_private_key(leaf, key) != 1) {
        failf(f, "%s: the CA's certificate is not for our key", name);
        goto out;
    }
    if (X509_check_host(leaf, name, strlen(name), 0, NULL) != 1) {
        failf(f, "%s: the CA's certificate does not name %s", name, name);
        goto out;
    }
    if (pt_jws_cert_times(pem, &o->not_before, &o->not_after) != 0) {
        failf(f, "%s: the CA's certificate has no readable validity", name);
        goto out;
    }
    rc = 0;
out:
    X509_free(leaf);
    return rc;
}

static char *key_to_pem(EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *out = NULL, *data;
    if (bio && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1) {
        long n = BIO_get_mem_data(bio, &data);
        if (n > 0)
            out = pt_xstrndup(data, (size_t)n);
    }
    BIO_free(bio);
    return out;
}

/* newOrder -> authorizations -> finalize -> certificate, for <name>.
 * <replaces>: ARI id of the certificate this one replaces, or NULL. */
static int run_order(struct pt_acme *a, const char *cert_id, const char *name,
                     const char *replaces, struct order *o, struct fail *f)
{
    json_t *order = NULL;
    char *order_url = NULL, *okey = NULL, *payload = NULL;
    EVP_PKEY *ckey = NULL;
    uint8_t *der = NULL;
    int rc = PT_EIO;

    if (ensure_directory(a, f) != 0 || ensure_account(a, f) != 0)
        return PT_EIO;

    json_t *req = json_pack("{s:[{s:s, s:s}]}", "identifiers", "type", "dns", "value", name);
    if (replaces && dir_url(a, "renewalInfo"))
        json_object_set_new(req, "replaces", json_string(replaces));
    payload = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    struct resp r;
    if (acme_post(a, dir_url(a, "newOrder"), payload, false, NULL, &r, f, "newOrder") != 0)
        goto out;
    order = resp_json(&r);
    order_url = r.location;
    r.location = NULL;
    int64_t ra = r.retry_after;
    resp_free(&r);
    if (!json_is_object(order) || order_url == NULL) {
        failf(f, "%s: newOrder: no order object or URL from the CA", name);
        goto out;
    }
    /* For the record (and a human): a restarted daemon places a new order. */
    okey = state_key("order:", cert_id);
    state_write(a, okey, order_url);

    size_t i;
    json_t *az;
    json_t *authzs = json_object_get(order, "authorizations");
    if (!json_is_array(authzs) || json_array_size(authzs) == 0) {
        failf(f, "%s: newOrder: no authorizations", name);
        goto out;
    }
    const char *ost = json_string_value(json_object_get(order, "status"));
    if (ost && strcmp(ost, "invalid") == 0) {
        order_error(f, order, name, "newOrder");
        goto out;
    }
    json_array_foreach(authzs, i, az) {
        if (!json_is_string(az)) {
            failf(f, "%s: newOrder: bad authorization URL", name);
            goto out;
        }
        if (do_authz(a, o, json_string_value(az), name, f) != 0)
            goto out;
    }

    /* The order turns ready once its authorizations are valid. */
    json_decref(order);
    order = acme_get_json(a, order_url, f, "order", &ra);
    if (order == NULL)
        goto out;
    order = poll_order(a, order_url, order, "pending", NULL, ra, f);
    if (order == NULL)
        goto out;
    ost = json_string_value(json_object_get(order, "status"));
    if (ost == NULL || (strcmp(ost, "ready") != 0 && strcmp(ost, "valid") != 0 &&
                        strcmp(ost, "processing") != 0)) {
        order_error(f, order, name, "before finalize");
        goto out;
    }
    if (strcmp(ost, "ready") == 0) {
        const char *fin = json_string_value(json_object_get(order, "finalize"));
        if (fin == NULL) {
            failf(f, "%s: order without finalize URL", name);
            goto out;
        }
        /* A fresh key for every certificate: a renewal never reuses one. */
        ckey = pt_jws_p256_new();
        size_t derlen = 0;
        const char *names[1] = {name};
        if (ckey == NULL || pt_jws_csr(ckey, names, 1, &der, &derlen) != 0) {
            failf(f, "%s: cannot make the key and CSR", name);
            goto out;
        }
        char *csr64 = pt_jws_b64url(der, derlen);
        json_t *fr = json_pack("{s:s}", "csr", csr64);
        free(csr64);
        free(payload);
        payload = json_dumps(fr, JSON_COMPACT);
        json_decref(fr);
        if (acme_post(a, fin, payload, false, NULL, &r, f, "finalize") != 0)
            goto out;
        json_decref(order);
        order = resp_json(&r);
        ra = r.retry_after;
        resp_free(&r);
        if (!json_is_object(order)) {
            failf(f, "%s: finalize: no order object from the CA", name);
            goto out;
        }
    } else {
        /* "processing"/"valid" with no key of ours: only after a resumed
         * order, which we never do; start over rather than guess. */
        failf(f, "%s: order already %s before we finalized it", name, ost);
        goto out;
    }
    order = poll_order(a, order_url, order, "processing", "ready", ra, f);
    if (order == NULL)
        goto out;
    ost = json_string_value(json_object_get(order, "status"));
    const char *cert_url = json_string_value(json_object_get(order, "certificate"));
    if (ost == NULL || strcmp(ost, "valid") != 0 || cert_url == NULL) {
        order_error(f, order, name, "finalize");
        goto out;
    }
    if (acme_post(a, cert_url, NULL, false, "application/pem-certificate-chain", &r, f,
                  "certificate") != 0)
        goto out;
    if (r.body == NULL || r.len == 0 || strlen(r.body) != r.len) {
        resp_free(&r);
        failf(f, "%s: empty certificate from the CA", name);
        goto out;
    }
    o->cert_pem = r.body;
    r.body = NULL;
    resp_free(&r);
    if (check_chain(o->cert_pem, ckey, name, o, f) != 0)
        goto out;
    o->key_pem = key_to_pem(ckey);
    if (o->key_pem == NULL) {
        failf(f, "%s: cannot encode the private key", name);
        goto out;
    }
    rc = 0;
out:
    if (okey)
        state_write(a, okey, NULL);
    free(okey);
    free(order_url);
    free(payload);
    free(der);
    EVP_PKEY_free(ckey);
    json_decref(order);
    return rc;
}

/* ---- applying results to rows --------------------------------------------- */

static void mut_success(struct row *r, void *ctx)
{
    struct order *o = ctx;
    set_str(&r->cert_pem, o->cert_pem);
    set_str(&r->key_pem, o->key_pem);
    set_str(&r->status, "valid");
    set_str(&r->last_error, NULL);
    r->not_before = o->not_before;
    r->not_after = o->not_after;
    r->renew_after = pt_acme_renew_after(o->not_before, o->not_after);
    r->retry_at = 0;
    r->failures = 0;
}

struct failure_ctx {
    const struct fail *f;
    int64_t now;
};

static bool has_live_cert(const struct row *r, int64_t now)
{
    return r->cert_pem && r->key_pem && r->not_after > now;
}

static void mut_failure(struct row *r, void *ctx)
{
    struct failure_ctx *c = ctx;
    r->failures++;
    r->retry_at = pt_acme_retry_at(c->now, r->failures, c->f->retry_after);
    set_str(&r->last_error, c->f->msg);
    /* A renewal that fails keeps the old certificate in service. */
    set_str(&r->status, has_live_cert(r, c->now) ? "renewing" : "failed");
}

static void mut_status(struct row *r, void *ctx)
{
    set_str(&r->status, ctx);
}

static void mut_renew_after(struct row *r, void *ctx)
{
    r->renew_after = *(int64_t *)ctx;
}

/* Orders a certificate for row <r> and records the outcome. */
static void issue(struct pt_acme *a, struct row *r)
{
    int64_t now = (int64_t)time(NULL);
    bool renewal = has_live_cert(r, now);
    if (renewal && strcmp(r->status, "renewing") != 0)
        row_update(a, r->id, mut_status, "renewing", false, NULL, 0);
    pt_log(PT_LOG_INFO, "acme: %s certificate %s for %s", renewal ? "renewing" : "ordering",
           r->id, r->name);

    struct fail f = {0};
    if (renewal)
        ensure_directory(a, &f); /* for "replaces"; run_order reports a failure */
    char *replaces = renewal && a->dir && dir_url(a, "renewalInfo")
                         ? pt_jws_ari_cert_id(r->cert_pem)
                         : NULL;
    struct order o = {0};
    memset(&f, 0, sizeof(f));
    int rc = run_order(a, r->id, r->name, replaces, &o, &f);
    if (rc != 0 && f.account_gone && !stopping(a)) {
        /* The CA forgot us (a test CA restarted, a staging reset): register
         * again once and retry at once. */
        pt_log(PT_LOG_WARN, "acme: the CA does not know account %s: registering again",
               a->account_url ? a->account_url : "?");
        forget_account(a);
        char *const *toks = o.tokens;
        row_update(a, NULL, NULL, NULL, true, toks, o.n_tokens);
        order_clear(&o);
        memset(&f, 0, sizeof(f));
        rc = run_order(a, r->id, r->name, replaces, &o, &f);
    }
    free(replaces);
    if (stopping(a)) {
        /* Not the CA's fault: leave the row as it was; the next start
         * orders again. The tokens go with the process (cleared at start). */
        order_clear(&o);
        return;
    }
    if (rc == 0) {
        int u = row_update(a, r->id, mut_success, &o, true, o.tokens, o.n_tokens);
        if (u == 0)
            pt_log(PT_LOG_INFO, "acme: certificate %s for %s issued, valid until %lld",
                   r->id, r->name, (long long)o.not_after);
        else if (u == PT_ENOTFOUND)
            pt_log(PT_LOG_INFO, "acme: certificate %s was deleted during its order: "
                                "discarding the new one", r->id);
        else
            pt_log(PT_LOG_ERROR, "acme: cannot store certificate %s: %s", r->id,
                   pt_strerror(u));
    } else {
        struct failure_ctx c = {&f, (int64_t)time(NULL)};
        row_update(a, r->id, mut_failure, &c, true, o.tokens, o.n_tokens);
        pt_log(PT_LOG_WARN, "acme: certificate %s for %s failed (attempt %lld): %s", r->id,
               r->name, (long long)(r->failures + 1), f.msg);
        /* A transport failure may mean a stale directory or nonce. */
        PT_FREE(a->nonce);
        json_decref(a->dir);
        a->dir = NULL;
    }
    order_clear(&o);
}

/* ---- ARI (RFC 9773) ------------------------------------------------------- */

static struct ari_next *ari_slot(struct pt_acme *a, const char *id)
{
    for (size_t i = 0; i < a->n_ari; i++)
        if (strcmp(a->ari[i].id, id) == 0)
            return &a->ari[i];
    a->ari = pt_xrealloc(a->ari, (a->n_ari + 1) * sizeof(*a->ari));
    a->ari[a->n_ari] = (struct ari_next){pt_xstrdup(id), 0};
    return &a->ari[a->n_ari++];
}

/* Asks the CA for a suggested renewal window; moves renew_after earlier
 * when it says so. Looked up at most as often as its Retry-After asks. */
static void ari_check(struct pt_acme *a, struct row *r, int64_t now)
{
    const char *base = a->dir ? dir_url(a, "renewalInfo") : NULL;
    if (base == NULL || r->cert_pem == NULL)
        return;
    struct ari_next *slot = ari_slot(a, r->id);
    if (now < slot->at)
        return;
    slot->at = now + ACME_ARI_DEFAULT_S;
    char *cid = pt_jws_ari_cert_id(r->cert_pem);
    if (cid == NULL)
        return;
    size_t lb = strlen(base), lc = strlen(cid);
    char *url = pt_xmalloc(lb + 1 + lc + 1);
    memcpy(url, base, lb);
    size_t o = lb;
    if (lb == 0 || base[lb - 1] != '/')
        url[o++] = '/';
    memcpy(url + o, cid, lc + 1);
    free(cid);
    struct resp resp;
    struct fail f = {0};
    if (http(a, HTTP_GET, url, NULL, NULL, &resp, &f) != 0) {
        free(url);
        return;
    }
    free(url);
    if (resp.retry_after > 0)
        slot->at = now + (resp.retry_after < 60 ? 60 : resp.retry_after > 86400 ? 86400
                                                                                 : resp.retry_after);
    json_t *j = resp.status == 200 ? resp_json(&resp) : NULL;
    resp_free(&resp);
    json_t *w = json_object_get(j, "suggestedWindow");
    int64_t ws, we;
    if (pt_jws_parse_time(json_string_value(json_object_get(w, "start")), &ws) == 0 &&
        pt_jws_parse_time(json_string_value(json_object_get(w, "end")), &we) == 0) {
        uint64_t rnd = 0;
        RAND_bytes((unsigned char *)&rnd, sizeof(rnd));
        int64_t t = pt_acme_renew_time(r->not_before, r->not_after, true, ws, we, rnd);
        if (t < r->renew_after) {
            pt_log(PT_LOG_INFO, "acme: the CA suggests renewing %s (%s) earlier", r->id,
                   r->name);
            r->renew_after = t;
            row_update(a, r->id, mut_renew_after, &t, false, NULL, 0);
        }
    }
    json_decref(j);
}

/* ---- the loop ------------------------------------------------------------- */

struct view {
    char **names; /* offload domains with "certificate": "acme" */
    size_t n_names;
    struct row *rows; /* ACME certificate rows */
    size_t n_rows;
};

static void view_clear(struct view *v)
{
    for (size_t i = 0; i < v->n_names; i++)
        free(v->names[i]);
    free(v->names);
    for (size_t i = 0; i < v->n_rows; i++)
        row_clear(&v->rows[i]);
    free(v->rows);
    memset(v, 0, sizeof(*v));
}

static int on_domain(void *arg, const char *name, const char *doc)
{
    struct view *v = arg;
    json_t *j = json_loads(doc, 0, NULL);
    const char *mode = json_string_value(json_object_get(j, "mode"));
    const char *cert = json_string_value(json_object_get(j, "certificate"));
    if (mode && strcmp(mode, "offload") == 0 && (cert == NULL || strcmp(cert, "acme") == 0)) {
        v->names = pt_xrealloc(v->names, (v->n_names + 1) * sizeof(*v->names));
        v->names[v->n_names++] = pt_xstrdup(name);
    }
    json_decref(j);
    return 0;
}

static int on_cert(void *arg, const struct pt_store_cert *c)
{
    struct view *v = arg;
    if (c->source == NULL || strcmp(c->source, "acme") != 0)
        return 0;
    v->rows = pt_xrealloc(v->rows, (v->n_rows + 1) * sizeof(*v->rows));
    row_copy(&v->rows[v->n_rows++], c);
    return 0;
}

static int load_view(struct pt_acme *a, struct view *v)
{
    memset(v, 0, sizeof(*v));
    db_lock(a);
    int rc = pt_store_each(a->pub->store, PT_STORE_DOMAIN, on_domain, v);
    if (rc == 0)
        rc = pt_store_cert_each(a->pub->store, on_cert, v);
    db_unlock(a);
    return rc;
}

/* The view is read once per pass and orders take seconds each: the domain
 * may have gone (or turned manual) since. */
static bool domain_still_acme(struct pt_acme *a, const char *name)
{
    char *doc = NULL;
    struct view v = {0};
    db_lock(a);
    int rc = pt_store_get(a->pub->store, PT_STORE_DOMAIN, name, &doc);
    db_unlock(a);
    if (rc == 0)
        on_domain(&v, name, doc);
    bool ok = v.n_names == 1;
    view_clear(&v);
    free(doc);
    return ok;
}

static bool is_wildcard(const char *name)
{
    return name[0] == '*';
}

static void random_id(char out[33])
{
    uint8_t raw[16];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        pt_panic(__FILE__, __LINE__, "RAND_bytes");
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

/* A new row for <name>: pending, or failed for good for a wildcard. */
static void create_row(struct pt_acme *a, struct view *v, const char *name)
{
    char id[33];
    random_id(id);
    int64_t now = (int64_t)time(NULL);
    json_t *arr = json_pack("[s]", name);
    char *dj = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    bool wild = is_wildcard(name);
    struct pt_store_cert c = {
        .id = id,
        .source = "acme",
        .domains_json = dj,
        .status = wild ? "failed" : "pending",
        .last_error = wild ? "HTTP-01 cannot validate wildcard names: use a manual "
                             "certificate (DNS-01 is not supported)"
                           : NULL,
        .created = now,
        .updated = now,
    };
    db_lock(a);
    int rc = pt_store_begin(a->pub->store);
    if (rc == 0) {
        rc = pt_store_cert_put(a->pub->store, &c);
        if (rc == 0)
            rc = pt_publish_store(a->pub);
        else
            pt_store_rollback(a->pub->store);
    }
    db_unlock(a);
    if (rc == 0) {
        v->rows = pt_xrealloc(v->rows, (v->n_rows + 1) * sizeof(*v->rows));
        row_copy(&v->rows[v->n_rows++], &c);
        pt_log(PT_LOG_INFO, "acme: certificate %s for %s: %s", id, name,
               wild ? "failed (wildcard)" : "pending");
    } else {
        pt_log(PT_LOG_ERROR, "acme: cannot create the certificate row for %s: %s", name,
               pt_strerror(rc));
    }
    free(dj);
}

/* Deletes <r> in one transaction (published when it held a certificate). */
static void delete_row(struct pt_acme *a, const struct row *r)
{
    bool applied;
    uint64_t version;
    db_lock(a);
    int rc = pt_store_begin(a->pub->store);
    if (rc == 0) {
        rc = pt_store_cert_delete(a->pub->store, r->id);
        if (rc == PT_ENOTFOUND) {
            pt_store_rollback(a->pub->store);
            rc = 0;
        } else if (rc != 0) {
            pt_store_rollback(a->pub->store);
        } else if (r->cert_pem) {
            struct pt_delta delta = {0};
            pt_delta_remove(&delta, PT_DELTA_CERT, r->id);
            struct pt_commit c = {.kind = PT_COMMIT_CONFIG, .delta = &delta};
            rc = pt_publish_commit(a->pub, &c, &version, &applied);
            pt_delta_clear(&delta);
        } else {
            rc = pt_publish_store(a->pub);
        }
    }
    db_unlock(a);
    if (rc == 0)
        pt_log(PT_LOG_INFO, "acme: certificate %s (%s) removed: its domain is gone", r->id,
               r->name ? r->name : "?");
}

static int on_token(void *arg, const char *token, const char *keyauth)
{
    struct order *o = arg;
    (void)keyauth;
    o->tokens = pt_xrealloc(o->tokens, (o->n_tokens + 1) * sizeof(*o->tokens));
    o->tokens[o->n_tokens++] = pt_xstrdup(token);
    return 0;
}

/* HTTP-01 answers left by a previous process (killed mid-order) go. */
static void clear_stale_tokens(struct pt_acme *a)
{
    struct order o = {0};
    db_lock(a);
    int rc = pt_store_acme_token_each(a->pub->store, on_token, &o);
    db_unlock(a);
    if (rc == 0 && o.n_tokens) {
        if (row_update(a, NULL, NULL, NULL, true, o.tokens, o.n_tokens) == PT_EDB)
            rc = PT_EDB;
        else
            pt_log(PT_LOG_INFO, "acme: removed %zu stale HTTP-01 answer(s)", o.n_tokens);
    }
    if (rc == 0)
        a->tokens_cleared = true;
    order_clear(&o);
}

static bool take_force(struct pt_acme *a, const char *id)
{
    bool hit = false;
    pthread_mutex_lock(&a->qlock);
    for (size_t i = 0; i < a->n_force; i++) {
        if (strcmp(a->force[i], id) == 0) {
            free(a->force[i]);
            a->force[i] = a->force[--a->n_force];
            hit = true;
            break;
        }
    }
    pthread_mutex_unlock(&a->qlock);
    return hit;
}

static void tick(struct pt_acme *a)
{
    struct view v;
    if (!a->tokens_cleared)
        clear_stale_tokens(a);
    if (load_view(a, &v) != 0) {
        pt_log(PT_LOG_ERROR, "acme: cannot read the store");
        view_clear(&v);
        return;
    }
    int64_t now = (int64_t)time(NULL);

    /* One row per domain: create the missing ones. */
    size_t n_before = v.n_rows;
    for (size_t i = 0; i < v.n_names; i++) {
        bool found = false;
        for (size_t k = 0; k < n_before && !found; k++)
            found = v.rows[k].name && strcmp(v.rows[k].name, v.names[i]) == 0;
        if (!found)
            create_row(a, &v, v.names[i]);
    }

    for (size_t k = 0; k < v.n_rows && !stopping(a); k++) {
        struct row *r = &v.rows[k];
        /* Consumed whatever follows: a kick for a row we skip is moot. */
        bool forced = take_force(a, r->id);
        bool wanted = false;
        for (size_t i = 0; r->name && i < v.n_names && !wanted; i++)
            wanted = strcmp(v.names[i], r->name) == 0;
        if (!wanted) {
            /* Domain gone (or another row for it): not renewed any more. */
            bool dup = false;
            for (size_t j = 0; r->name && j < k && !dup; j++)
                dup = v.rows[j].name && strcmp(v.rows[j].name, r->name) == 0;
            if (r->name == NULL)
                continue; /* not one of ours: several names */
            if (!dup && has_live_cert(r, now))
                continue; /* served until it expires */
            delete_row(a, r);
            continue;
        }
        /* Two rows for one domain (never created by us): use the first. */
        bool dup = false;
        for (size_t j = 0; j < k && !dup; j++)
            dup = v.rows[j].name && strcmp(v.rows[j].name, r->name) == 0;
        if (dup)
            continue;
        if (is_wildcard(r->name))
            continue;
        bool due;
        if (forced) {
            due = true;
        } else if (strcmp(r->status, "valid") == 0 && has_live_cert(r, now)) {
            due = now >= r->renew_after;
            if (!due) {
                ari_check(a, r, now);
                due = now >= r->renew_after;
            }
        } else if (strcmp(r->status, "valid") == 0 || strcmp(r->status, "renewing") == 0) {
            if (!has_live_cert(r, now)) /* expired while we were away or failing */
                row_update(a, r->id, mut_status, "expired", false, NULL, 0);
            due = r->retry_at <= now;
        } else {
            due = r->retry_at <= now; /* pending, failed, expired */
        }
        if (due && domain_still_acme(a, r->name))
            issue(a, r);
    }

    /* ids kicked that are not ours (manual, unknown) are dropped */
    pthread_mutex_lock(&a->qlock);
    for (size_t i = 0; i < a->n_force; i++) {
        bool known = false;
        for (size_t k = 0; k < v.n_rows && !known; k++)
            known = strcmp(v.rows[k].id, a->force[i]) == 0;
        if (!known) {
            free(a->force[i]);
            a->force[i--] = a->force[--a->n_force];
        }
    }
    pthread_mutex_unlock(&a->qlock);
    view_clear(&v);
}

static void *acme_thread(void *arg)
{
    struct pt_acme *a = arg;
    pt_log(PT_LOG_INFO, "acme: client for %s started", a->directory_url);
    for (;;) {
        tick(a);
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += a->interval_ms / 1000;
        dl.tv_nsec += (long)(a->interval_ms % 1000) * 1000000;
        if (dl.tv_nsec >= 1000000000) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&a->qlock);
        while (!a->stop && !a->kicked &&
               pthread_cond_timedwait(&a->qcond, &a->qlock, &dl) != ETIMEDOUT)
            ;
        bool stop = a->stop;
        a->kicked = false;
        pthread_mutex_unlock(&a->qlock);
        if (stop)
            break;
    }
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------------ */

static void acme_free(struct pt_acme *a)
{
    if (a == NULL)
        return;
    if (a->curl)
        curl_easy_cleanup(a->curl);
    json_decref(a->dir);
    free(a->nonce);
    free(a->account_url);
    for (size_t i = 0; i < a->n_ari; i++)
        free(a->ari[i].id);
    free(a->ari);
    for (size_t i = 0; i < a->n_force; i++)
        free(a->force[i]);
    free(a->force);
    EVP_PKEY_free(a->key);
    free(a->directory_url);
    free(a->email);
    free(a->ca_bundle);
    free(a->key_path);
    pthread_cond_destroy(&a->qcond);
    pthread_mutex_destroy(&a->qlock);
    free(a);
}

int pt_acme_start(const struct pt_acme_config *cfg, struct pt_acme **out, char *err,
                  size_t errlen)
{
    *out = NULL;
    if (cfg->directory_url == NULL || cfg->publisher == NULL || cfg->state_dir == NULL) {
        snprintf(err, errlen, "acme: directory, publisher and state dir are required");
        return PT_EINVAL;
    }
    struct pt_acme *a = pt_xcalloc(1, sizeof(*a));
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->qcond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&a->qlock, NULL);
    a->directory_url = pt_xstrdup(cfg->directory_url);
    a->email = dup_or_null(cfg->email);
    a->ca_bundle = dup_or_null(cfg->ca_bundle);
    a->pub = cfg->publisher;
    a->interval_ms = cfg->interval_ms ? cfg->interval_ms : 5000;
    a->key_path = state_key(cfg->state_dir, "/acme-account.pem");
    int rc = load_or_create_key(a, err, errlen);
    if (rc != 0)
        goto fail;
    json_t *jwk = pt_jws_jwk(a->key);
    rc = jwk ? pt_jws_thumbprint(jwk, a->thumb) : PT_EIO;
    json_decref(jwk);
    if (rc != 0) {
        snprintf(err, errlen, "acme: cannot compute the account key's thumbprint");
        goto fail;
    }
    /* Not thread-safe, so here, before our thread exists. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        (a->curl = curl_easy_init()) == NULL) {
        snprintf(err, errlen, "acme: cannot initialise libcurl");
        rc = PT_EIO;
        goto fail;
    }
    if (pthread_create(&a->thread, NULL, acme_thread, a) != 0) {
        snprintf(err, errlen, "acme: cannot start the thread: %s", strerror(errno));
        rc = PT_EIO;
        goto fail;
    }
    a->started = true;
    *out = a;
    return 0;
fail:
    acme_free(a);
    return rc;
}

void pt_acme_kick(struct pt_acme *a, const char *cert_id)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->qlock);
    if (cert_id) {
        bool have = false;
        for (size_t i = 0; i < a->n_force && !have; i++)
            have = strcmp(a->force[i], cert_id) == 0;
        if (!have && a->n_force < 4096) {
            if (a->n_force == a->cap_force) {
                a->cap_force = a->cap_force ? a->cap_force * 2 : 8;
                a->force = pt_xrealloc(a->force, a->cap_force * sizeof(*a->force));
            }
            a->force[a->n_force++] = pt_xstrdup(cert_id);
        }
    }
    a->kicked = true;
    pthread_cond_broadcast(&a->qcond);
    pthread_mutex_unlock(&a->qlock);
}

void pt_acme_stop(struct pt_acme *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->qlock);
    a->stop = true;
    __atomic_store_n(&a->stopping, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&a->qcond);
    pthread_mutex_unlock(&a->qlock);
    if (a->started)
        pthread_join(a->thread, NULL);
    acme_free(a);
}
