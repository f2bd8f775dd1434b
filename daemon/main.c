/* portierd: the control daemon, and (with the hidden --worker flag, when the
 * supervisor execs itself) a data-plane worker.
 *
 * Start-up order matters: everything that can be refused (flags, state dir,
 * token, database) is checked before a single socket is bound, then the
 * listeners are bound, privileges dropped, workers started with the current
 * snapshot, and only then does the API accept changes. */
#include "api/api.h"
#include "common/addr.h"
#include "common/handover.h"
#include "common/log.h"
#include "common/metrics.h"
#include "daemon/acme.h"
#include "daemon/apitls.h"
#include "daemon/config.h"
#include "daemon/listeners.h"
#include "daemon/publish.h"
#include "daemon/sdnotify.h"
#include "daemon/supervisor.h"
#include "db/store.h"
#include "worker/worker.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

#define EXIT_USAGE 2

struct pt_daemon {
    struct pt_config cfg;
    struct pt_settings settings;
    struct pt_store *store;
    struct pt_supervisor *sup;
    struct pt_api *api;
    uv_loop_t *loop;
    uv_signal_t sigterm, sigint, sighup, sigusr1;
    char token[256];
    int *fds;          /* workers x listeners */
    char kinds[2 * PT_LISTEN_MAX + 1];
    size_t n_listeners;
    int api_fd;
    struct pt_apitls api_tls;  /* cert_pem NULL: the API speaks plain HTTP */
    char *state_real;          /* canonical --state-dir: names the hand-over */
    pthread_mutex_t lock;      /* store transactions: API thread, ACME thread */
    struct pt_publisher publisher;
    struct pt_listeners *listeners; /* the stream routes' sockets */
    struct pt_acme *acme;      /* NULL: ACME off (no --acme-directory) */
    pthread_t rotator;         /* session ticket key rotation */
    pthread_cond_t rotator_cv;
    bool rotate_now;           /* under lock: SIGUSR1 asked for a rotation */
    bool stopping;             /* under lock */
    struct pt_sdnotify sd;     /* READY=1 / WATCHDOG=1 to systemd */
};

#define TICKET_KEY_LIFETIME_S (12 * 3600)

/* Rotates the session ticket key shared by the workers. Tickets issued with
 * the old key stop resuming: clients then do one full handshake. */
static void *rotate_tickets(void *arg)
{
    struct pt_daemon *d = arg;
    pthread_mutex_lock(&d->lock);
    while (!d->stopping) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += TICKET_KEY_LIFETIME_S;
        /* A SIGUSR1 while a rotation was being published is not lost. */
        int rc = d->rotate_now ? 0 : pthread_cond_timedwait(&d->rotator_cv, &d->lock, &dl);
        if (d->stopping || (rc != ETIMEDOUT && !d->rotate_now))
            continue;
        d->rotate_now = false;
        bool applied;
        uint64_t version;
        struct pt_delta delta = {0};
        RAND_bytes(d->settings.ticket_key, sizeof(d->settings.ticket_key));
        pt_delta_put_ticket(&delta, d->settings.ticket_key);
        struct pt_commit c = {.kind = PT_COMMIT_CONFIG, .delta = &delta};
        if (pt_store_begin(d->store) == 0 &&
            pt_publish_commit(&d->publisher, &c, &version, &applied) == 0)
            pt_log(PT_LOG_INFO, "session ticket key rotated");
        pt_delta_clear(&delta);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

static __attribute__((format(printf, 1, 2))) _Noreturn void die_usage(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "portierd: %s\n", msg);
    exit(EXIT_USAGE);
}

/* mkdir -p with mode 0700 for what it creates. */
static int make_dirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(buf, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static void check_state_dir(const char *dir)
{
    if (make_dirs(dir) != 0)
        die_usage("--state-dir %s: %s", dir, strerror(errno));
    /* access() lies for root on read-only mounts; a real file does not. */
    char probe[4200];
    snprintf(probe, sizeof(probe), "%s/.probe-%d", dir, (int)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        die_usage("--state-dir %s: not writable: %s", dir, strerror(errno));
    close(fd);
    unlink(probe);
}

/* The API's address without port or brackets, "" for a wildcard: what a
 * self-made certificate names. */
static void api_host(const struct pt_listen *l, char *out, size_t size)
{
    const char *t = l->text;
    const char *colon = strrchr(t, ':');
    size_t n = colon ? (size_t)(colon - t) : strlen(t);
    if (n >= 2 && t[0] == '[' && t[n - 1] == ']') {
        t++;
        n -= 2;
    }
    snprintf(out, size, "%.*s", (int)n, t);
    if (strcmp(out, "0.0.0.0") == 0 || strcmp(out, "::") == 0)
        out[0] = '\0';
}

static void load_token(struct pt_daemon *d)
{
    const char *path = d->cfg.token_file;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        uint8_t raw[32];
        char hex[65];
        if (RAND_bytes(raw, sizeof(raw)) != 1)
            die_usage("cannot get random bytes for the API token");
        for (size_t i = 0; i < sizeof(raw); i++)
            snprintf(hex + 2 * i, 3, "%02x", raw[i]);
        int wfd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (wfd < 0)
            die_usage("--api-token-file %s: cannot create: %s", path, strerror(errno));
        hex[64] = '\n';
        if (write(wfd, hex, 65) != 65 || fsync(wfd) != 0)
            die_usage("--api-token-file %s: cannot write: %s", path, strerror(errno));
        close(wfd);
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0)
        die_usage("--api-token-file %s: %s", path, strerror(errno));
    char buf[sizeof(d->token) + 1];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0)
        die_usage("--api-token-file %s: %s", path, strerror(errno));
    buf[n] = '\0';
    char *s = buf;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    size_t len = strlen(s);
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' ||
                   s[len - 1] == '\r'))
        s[--len] = '\0';
    if (len < 16)
        die_usage("--api-token-file %s: token too short (at least 16 characters)", path);
    if ((size_t)n >= sizeof(d->token) - 1 || len >= sizeof(d->token))
        die_usage("--api-token-file %s: token too long", path);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
            die_usage("--api-token-file %s: token has spaces or control characters",
                      path);
    memcpy(d->token, s, len + 1); /* len < sizeof(d->token) checked above */
}

static int bind_one(const struct pt_listen *l, bool reuseport, char *why, size_t whylen)
{
    return pt_listeners_bind((const struct sockaddr *)&l->sa, l->salen, reuseport, l->text,
                             why, whylen);
}

/* One socket per worker and listener, all SO_REUSEPORT: the kernel spreads
 * connections over the workers, and no worker wakes for another's. The
 * first bind of each address also proves that nobody else holds it. */
/* Takes the listening sockets that orphaned workers of a previous daemon on
 * this state directory offer (common/handover.h) before binding anything:
 * the same kernel sockets, so connections waiting in their accept queues are
 * served by our workers and no client is refused while daemons change. A
 * socket that matches no configured listener is closed. */
static void adopt_listeners(struct pt_daemon *d)
{
    size_t nl = d->n_listeners;
    for (unsigned k = 0; k < d->cfg.workers; k++) {
        struct sockaddr_un sa;
        socklen_t salen;
        pt_handover_addr(d->state_real, k, &sa, &salen);
        int got[PT_HANDOVER_MAX_FDS];
        size_t n = pt_handover_take(&sa, salen, got, PT_HANDOVER_MAX_FDS, 2000);
        size_t used = 0;
        for (size_t j = 0; j < n; j++) {
            struct sockaddr_storage have;
            socklen_t hl = sizeof(have);
            int *slot = NULL;
            if (getsockname(got[j], (struct sockaddr *)&have, &hl) == 0)
                for (size_t i = 0; i < nl && slot == NULL; i++) {
                    bool tls = i < d->cfg.n_https;
                    const struct pt_listen *l =
                        tls ? &d->cfg.https[i] : &d->cfg.http[i - d->cfg.n_https];
                    int *cell = &d->fds[(size_t)k * nl + i];
                    if (*cell < 0 && pt_sockaddr_same((struct sockaddr *)&have,
                                                      (const struct sockaddr *)&l->sa))
                        slot = cell;
                }
            if (slot == NULL) {
                close(got[j]);
                continue;
            }
            *slot = got[j];
            used++;
        }
        if (n > 0)
            pt_log(PT_LOG_INFO,
                   "took over %zu of %zu listening sockets from worker %u of the previous "
                   "daemon",
                   used, n, k);
    }
}

static void bind_all(struct pt_daemon *d)
{
    char why[512];
    unsigned w = d->cfg.workers;
    d->n_listeners = d->cfg.n_https + d->cfg.n_http;
    d->fds = pt_xcalloc((size_t)w * d->n_listeners, sizeof(int));
    for (size_t j = 0; j < (size_t)w * d->n_listeners; j++)
        d->fds[j] = -1;
    adopt_listeners(d);
    for (size_t i = 0; i < d->n_listeners; i++) {
        bool tls = i < d->cfg.n_https;
        const struct pt_listen *l = tls ? &d->cfg.https[i] : &d->cfg.http[i - d->cfg.n_https];
        d->kinds[i] = tls ? 's' : 'h';
        for (unsigned k = 0; k < w; k++) {
            int *cell = &d->fds[(size_t)k * d->n_listeners + i];
            if (*cell < 0 && (*cell = bind_one(l, true, why, sizeof(why))) < 0)
                die_usage("%s", why);
            /* Adopted sockets too: a previous daemon may not have set it. */
            if (tls && pt_listeners_client_first(*cell, PT_WORKER_DEFER_ACCEPT_S) != 0)
                pt_log(PT_LOG_WARN, "%s: TCP_DEFER_ACCEPT: %s", l->text, strerror(errno));
        }
    }
    d->kinds[d->n_listeners] = '\0';
    d->api_fd = bind_one(&d->cfg.api, false, why, sizeof(why));
    if (d->api_fd < 0)
        die_usage("%s (--api)", why);
}

/* Refuses <path> (relative to <dirfd>) when it is a symbolic link. */
static void refuse_link(int dirfd, const char *name, const char *shown)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        die_usage("--user: cannot stat %s: %s", shown, strerror(errno));
    if (S_ISLNK(st.st_mode))
        die_usage("--user: %s is a symbolic link; refusing to hand it over (root would "
                  "chown its target): remove it",
                  shown);
}

/* Hands <dir> and its entries to uid:gid. Nothing is followed: a link
 * planted in the state directory would otherwise make root chown any file
 * on the next start. The directory is opened with O_NOFOLLOW and its entries
 * are changed through that descriptor with AT_SYMLINK_NOFOLLOW, so a link
 * swapped in after the check changes only itself. */
static void chown_tree(const char *dir, uid_t uid, gid_t gid)
{
    refuse_link(AT_FDCWD, dir, dir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0 || fchown(dfd, uid, gid) != 0)
        die_usage("--user: cannot chown %s: %s", dir, strerror(errno));
    int lfd = dup(dfd);
    DIR *dh = lfd >= 0 ? fdopendir(lfd) : NULL;
    if (dh == NULL)
        die_usage("--user: cannot read %s: %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(dh)) != NULL) {
        char p[4400];
        if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || e->d_name[1] == '.'))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        refuse_link(dfd, e->d_name, p);
        if (fchownat(dfd, e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
            die_usage("--user: cannot chown %s: %s", p, strerror(errno));
    }
    closedir(dh);
    close(dfd);
}

static void drop_privileges(struct pt_daemon *d)
{
    if (d->cfg.user == NULL)
        return;
    struct passwd *pw = getpwnam(d->cfg.user);
    if (pw == NULL)
        die_usage("--user: no such user '%s'", d->cfg.user);
    if (getuid() == pw->pw_uid)
        return;
    chown_tree(d->cfg.state_dir, pw->pw_uid, pw->pw_gid);
    refuse_link(AT_FDCWD, d->cfg.token_file, d->cfg.token_file);
    if (fchownat(AT_FDCWD, d->cfg.token_file, pw->pw_uid, pw->pw_gid,
                 AT_SYMLINK_NOFOLLOW) != 0)
        die_usage("--user: cannot chown %s: %s", d->cfg.token_file, strerror(errno));
    if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
        die_usage("--user %s: cannot switch: %s", d->cfg.user, strerror(errno));
}

/* ---- hooks the API calls ------------------------------------------------ */

static int hook_commit(void *arg, const struct pt_commit *c, uint64_t *version, bool *applied)
{
    struct pt_daemon *d = arg;
    return pt_publish_commit(&d->publisher, c, version, applied);
}

/* A stream's listen address: bound now, so a port that is taken or needs a
 * privilege the daemon lacks is refused with the change, not after it. */
static int hook_listen(void *arg, const struct sockaddr *sa, socklen_t len, char *why,
                       size_t size)
{
    struct pt_daemon *d = arg;
    uint32_t lid;
    return pt_listeners_get(d->listeners, sa, len, false, &lid, why, size);
}

static json_t *hook_workers(void *arg)
{
    struct pt_daemon *d = arg;
    return pt_supervisor_workers_json(d->sup);
}

static bool hook_healthy(void *arg)
{
    struct pt_daemon *d = arg;
    return pt_supervisor_healthy(d->sup);
}

/* Called by the API with the lock held, which guards the counters. */
static void hook_metrics(void *arg, struct pt_wbuf *out)
{
    struct pt_daemon *d = arg;
    pt_supervisor_metrics(d->sup, out);
    pt_metrics_family(out, "portier_config_commits_total", PT_METRIC_COUNTER,
                      "Group commits that published configuration writes (the writes queued "
                      "behind the previous publish go in one).");
    pt_metrics_u64(out, "portier_config_commits_total", NULL, 0, d->publisher.publishes);
    pt_metrics_family(out, "portier_config_writes_total", PT_METRIC_COUNTER,
                      "Configuration writes committed (API, ACME, key rotation).");
    pt_metrics_u64(out, "portier_config_writes_total", NULL, 0, d->publisher.writes);
}

static json_t *hook_servers(void *arg, const char *backend)
{
    struct pt_daemon *d = arg;
    return pt_supervisor_servers_json(d->sup, backend);
}

static void hook_acme_kick(void *arg, const char *cert_id)
{
    struct pt_daemon *d = arg;
    pt_acme_kick(d->acme, cert_id);
}

/* ---- lifecycle ---------------------------------------------------------- */

static void on_stopped(void *arg)
{
    struct pt_daemon *d = arg;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
    uv_close((uv_handle_t *)&d->sigusr1, NULL);
}

static void on_signal(uv_signal_t *h, int sig)
{
    struct pt_daemon *d = h->data;
    if (sig == SIGHUP) {
        pt_log(PT_LOG_INFO, "SIGHUP: nothing to reload (the API changes are live)");
        return;
    }
    if (sig == SIGUSR1) { /* a key that may have leaked, or a test */
        pt_log(PT_LOG_INFO, "SIGUSR1: rotating the session ticket key");
        pthread_mutex_lock(&d->lock);
        d->rotate_now = true;
        pthread_cond_signal(&d->rotator_cv);
        pthread_mutex_unlock(&d->lock);
        return;
    }
    pt_log(PT_LOG_INFO, "%s: stopping (grace %us)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
           d->cfg.grace_s);
    /* No more changes: stop the API and the key rotation before the workers. */
    pt_api_stop(d->api);
    d->api = NULL;
    pthread_mutex_lock(&d->lock);
    d->stopping = true;
    pthread_cond_signal(&d->rotator_cv);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->rotator, NULL);
    pt_acme_stop(d->acme); /* its publishes need the workers: before them */
    d->acme = NULL;
    pt_sdnotify_stop(&d->sd);
    pt_supervisor_stop(d->sup);
    /* The workers close theirs on STOP; once ours are gone too, new clients
     * are refused at once instead of waiting in a queue nobody accepts. */
    for (size_t i = 0; i < (size_t)d->cfg.workers * d->n_listeners; i++) {
        close(d->fds[i]);
        d->fds[i] = -1;
    }
}

/* A user's shell on Debian starts us with a soft open-file limit of 1024:
 * every proxied connection costs two descriptors, so take what the hard
 * limit allows (the workers inherit it) and say so. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        pt_log(PT_LOG_INFO, "open-file limit raised from %llu to %llu (the hard limit)",
               (unsigned long long)old, (unsigned long long)rl.rlim_max);
}

static int run_daemon(int argc, char **argv)
{
    struct pt_daemon d;
    char err[1024];
    memset(&d, 0, sizeof(d));
    d.api_fd = -1;

    enum pt_config_result cr = pt_config_parse(&d.cfg, argc, argv, err, sizeof(err));
    if (cr == PT_CONFIG_EXIT)
        return 0;
    if (cr == PT_CONFIG_ERROR)
        die_usage("%s", err);
    pt_log_role("daemon");
    if (d.cfg.verbose)
        pt_log_level_set(PT_LOG_DEBUG);
    umask(077);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    check_state_dir(d.cfg.state_dir);
    d.state_real = realpath(d.cfg.state_dir, NULL);
    if (d.state_real == NULL)
        die_usage("--state-dir %s: %s", d.cfg.state_dir, strerror(errno));
    load_token(&d);
    if (d.cfg.api_tls_cert) {
        /* Before privileges drop: the key may be readable by root only. */
        char host[PT_ADDRSTR_MAX];
        api_host(&d.cfg.api, host, sizeof(host));
        if (pt_apitls_load(d.cfg.api_tls_cert, d.cfg.api_tls_key, host, &d.api_tls, err,
                           sizeof(err)) != 0)
            die_usage("%s", err);
        if (d.api_tls.made)
            pt_log(PT_LOG_INFO, "made the API's TLS certificate %s (key %s)",
                   d.cfg.api_tls_cert, d.cfg.api_tls_key);
    }
    char dbpath[4200];
    snprintf(dbpath, sizeof(dbpath), "%s/portier.db", d.cfg.state_dir);
    if (pt_store_open(dbpath, &d.store, err, sizeof(err)) != 0)
        die_usage("%s", err);

    d.settings.hello_timeout_ms = d.cfg.hello_timeout_s * 1000;
    d.settings.connect_timeout_ms = d.cfg.connect_timeout_s * 1000;
    d.settings.idle_timeout_ms = d.cfg.idle_timeout_s * 1000;
    d.settings.body_timeout_ms = d.cfg.body_timeout_s * 1000;
    d.settings.send_timeout_ms = d.cfg.send_timeout_s * 1000;
    d.settings.grace_ms = d.cfg.grace_s * 1000;
    d.settings.https_port =
        d.cfg.n_https ? pt_sockaddr_port((struct sockaddr *)&d.cfg.https[0].sa) : 443;
    d.settings.access_log = strcmp(d.cfg.access_log, "off") != 0;
    int access_fd = -1;
    if (d.settings.access_log && strcmp(d.cfg.access_log, "-") != 0) {
        access_fd = open(d.cfg.access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (access_fd < 0)
            die_usage("--access-log %s: %s", d.cfg.access_log, strerror(errno));
    }
    if (RAND_bytes(d.settings.ticket_key, sizeof(d.settings.ticket_key)) != 1)
        die_usage("cannot get random bytes for the session ticket key");
    d.settings.trusted = d.cfg.trusted;
    d.settings.n_trusted = d.cfg.n_trusted;

    uint64_t version = pt_store_config_version(d.store);
    struct pt_wbuf frame = {0};
    d.listeners = pt_listeners_new();
    struct pt_snapshot *model = NULL;
    if (pt_publish_compile(d.store, version, &d.settings, d.listeners, &model, &frame) != 0)
        die_usage("the stored configuration does not decode (see above)");

    bind_all(&d);
    drop_privileges(&d);

    d.loop = uv_default_loop();
    struct pt_supervisor_config sc = {
        .workers = d.cfg.workers,
        .n_listeners = d.n_listeners,
        .fds = d.fds,
        .kinds = d.kinds,
        .grace_ms = d.settings.grace_ms,
        .access_fd = access_fd,
        .state_dir = d.state_real,
        /* Tests of the switch from deltas to a whole snapshot. */
        .delta_limit = getenv("PORTIER_BAN_DELTA_LIMIT")
                           ? (size_t)strtoull(getenv("PORTIER_BAN_DELTA_LIMIT"), NULL, 10)
                           : 0,
        .listeners = d.listeners,
        .on_stopped = on_stopped,
        .arg = &d,
    };
    if (pt_supervisor_start(d.loop, &sc, &frame, version, &d.sup) != 0)
        die_usage("cannot start the workers");

    pthread_mutex_init(&d.lock, NULL);
    pthread_cond_init(&d.rotator_cv, NULL);
    d.publisher = (struct pt_publisher){d.store, &d.lock, &d.settings, d.listeners, d.sup,
                                        d.cfg.ack_timeout_ms, model};
    pt_publish_init(&d.publisher);
    if (d.cfg.acme_directory) {
        /* Before the API, so the API thread only ever sees d.acme set. */
        struct pt_acme_config acme = {
            .directory_url = d.cfg.acme_directory,
            .email = d.cfg.acme_email,
            .ca_bundle = d.cfg.acme_ca_bundle,
            .state_dir = d.cfg.state_dir,
            .publisher = &d.publisher,
        };
        if (pt_acme_start(&acme, &d.acme, err, sizeof(err)) != 0)
            die_usage("%s", err);
    }
    struct pt_api_config ac = {
        .listen_fd = d.api_fd,
        .admin_token = d.token,
        .store = d.store,
        .lock = &d.lock,
        .hooks = {&d, hook_commit, hook_workers, hook_healthy, hook_metrics,
                  d.acme ? hook_acme_kick : NULL},
        .tls_cert_pem = d.api_tls.cert_pem,
        .tls_key_pem = d.api_tls.key_pem,
    };
    ac.hooks.listen = hook_listen;
    ac.hooks.servers = hook_servers;
    if (pt_api_start(&ac, &d.api, err, sizeof(err)) != 0)
        die_usage("%s", err);

    pthread_create(&d.rotator, NULL, rotate_tickets, &d);
    uv_signal_init(d.loop, &d.sigterm);
    uv_signal_init(d.loop, &d.sigint);
    uv_signal_init(d.loop, &d.sighup);
    uv_signal_init(d.loop, &d.sigusr1);
    d.sigterm.data = d.sigint.data = d.sighup.data = d.sigusr1.data = &d;
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    uv_signal_start(&d.sighup, on_signal, SIGHUP);
    uv_signal_start(&d.sigusr1, on_signal, SIGUSR1);

    pt_log(PT_LOG_INFO, "portier %s: API on %s://%s/ (admin token in %s), %u workers",
           PT_VERSION, d.api_tls.cert_pem ? "https" : "http", d.cfg.api.text,
           d.cfg.token_file, d.cfg.workers);
    if (d.api_tls.cert_pem)
        pt_log(PT_LOG_INFO, "API certificate %s: SHA-256 fingerprint %s, public key pin %s",
               d.cfg.api_tls_cert, d.api_tls.fingerprint, d.api_tls.pin);
    pt_sdnotify_start(&d.sd, d.loop, hook_healthy, &d);
    uv_run(d.loop, UV_RUN_DEFAULT);

    pt_supervisor_free(d.sup);
    pt_listeners_free(d.listeners);
    pt_snap_unref(d.publisher.model);
    pt_publish_fini(&d.publisher);
    for (size_t i = 0; i < (size_t)d.cfg.workers * d.n_listeners; i++)
        if (d.fds[i] >= 0)
            close(d.fds[i]);
    free(d.fds);
    pt_store_close(d.store);
    pt_apitls_free(&d.api_tls);
    uv_loop_close(d.loop);
    pt_config_free(&d.cfg);
    free(d.state_real);
    pt_log(PT_LOG_INFO, "stopped");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--worker") == 0)
        return pt_worker_main(argc, argv);
    return run_daemon(argc, argv);
}
