/* portierd: the control daemon, and (with the hidden --worker flag, when the
 * supervisor execs itself) a data-plane worker.
 *
 * Start-up order matters: everything that can be refused (flags, state dir,
 * token, database) is checked before a single socket is bound, then the
 * listeners are bound, privileges dropped, workers started with the current
 * snapshot, and only then does the API accept changes. */
#include "api/api.h"
#include "common/addr.h"
#include "common/log.h"
#include "daemon/acme.h"
#include "daemon/config.h"
#include "daemon/publish.h"
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
#include <unistd.h>

#define EXIT_USAGE 2

struct pt_daemon {
    struct pt_config cfg;
    struct pt_settings settings;
    struct pt_store *store;
    struct pt_supervisor *sup;
    struct pt_api *api;
    uv_loop_t *loop;
    uv_signal_t sigterm, sigint, sighup;
    char token[256];
    int *fds;          /* workers x listeners */
    char kinds[2 * PT_LISTEN_MAX + 1];
    size_t n_listeners;
    int api_fd;
    pthread_mutex_t lock;      /* store transactions: API thread, ACME thread */
    struct pt_publisher publisher;
    struct pt_acme *acme;      /* NULL: ACME off (no --acme-directory) */
    pthread_t rotator;         /* session ticket key rotation */
    pthread_cond_t rotator_cv;
    bool stopping;             /* under lock */
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
        if (pthread_cond_timedwait(&d->rotator_cv, &d->lock, &dl) != ETIMEDOUT || d->stopping)
            continue;
        bool applied;
        RAND_bytes(d->settings.ticket_key, sizeof(d->settings.ticket_key));
        if (pt_store_begin(d->store) == 0 && pt_publish_commit(&d->publisher, &applied) == 0)
            pt_log(PT_LOG_INFO, "session ticket key rotated");
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

struct pending {
    struct pt_wbuf frame;
    uint64_t version;
};

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
    int fd = socket(l->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0)
        goto fail;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        goto fail;
    /* [::]:443 and 0.0.0.0:443 must be able to coexist. */
    if (l->sa.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&l->sa, l->salen) != 0)
        goto fail;
    if (listen(fd, 4096) != 0)
        goto fail;
    return fd;
fail:
    snprintf(why, whylen, "cannot listen on %s: %s", l->text, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

/* One socket per worker and listener, all SO_REUSEPORT: the kernel spreads
 * connections over the workers, and no worker wakes for another's. The
 * first bind of each address also proves that nobody else holds it. */
static void bind_all(struct pt_daemon *d)
{
    char why[512];
    unsigned w = d->cfg.workers;
    d->n_listeners = d->cfg.n_https + d->cfg.n_http;
    d->fds = pt_xcalloc((size_t)w * d->n_listeners, sizeof(int));
    for (size_t i = 0; i < d->n_listeners; i++) {
        bool tls = i < d->cfg.n_https;
        const struct pt_listen *l = tls ? &d->cfg.https[i] : &d->cfg.http[i - d->cfg.n_https];
        d->kinds[i] = tls ? 's' : 'h';
        for (unsigned k = 0; k < w; k++) {
            int fd = bind_one(l, true, why, sizeof(why));
            if (fd < 0)
                die_usage("%s", why);
            d->fds[(size_t)k * d->n_listeners + i] = fd;
        }
    }
    d->kinds[d->n_listeners] = '\0';
    d->api_fd = bind_one(&d->cfg.api, false, why, sizeof(why));
    if (d->api_fd < 0)
        die_usage("%s (--api)", why);
}

static void chown_tree(const char *dir, uid_t uid, gid_t gid)
{
    if (chown(dir, uid, gid) != 0)
        die_usage("--user: cannot chown %s: %s", dir, strerror(errno));
    DIR *dh = opendir(dir);
    struct dirent *e;
    while (dh && (e = readdir(dh)) != NULL) {
        char p[4400];
        if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || e->d_name[1] == '.'))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (chown(p, uid, gid) != 0)
            die_usage("--user: cannot chown %s: %s", p, strerror(errno));
    }
    if (dh)
        closedir(dh);
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
    if (chown(d->cfg.token_file, pw->pw_uid, pw->pw_gid) != 0)
        die_usage("--user: cannot chown %s: %s", d->cfg.token_file, strerror(errno));
    if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
        die_usage("--user %s: cannot switch: %s", d->cfg.user, strerror(errno));
}

/* ---- hooks the API calls ------------------------------------------------ */

static void *hook_compile(void *arg, struct pt_store *store, uint64_t version)
{
    struct pt_daemon *d = arg;
    struct pending *p = pt_xcalloc(1, sizeof(*p));
    p->version = version;
    if (pt_publish_compile(store, version, &d->settings, &p->frame) != 0) {
        pt_wbuf_free(&p->frame);
        free(p);
        return NULL;
    }
    return p;
}

static bool hook_publish(void *arg, void *snap)
{
    struct pt_daemon *d = arg;
    struct pending *p = snap;
    uint64_t v = p->version;
    pt_supervisor_publish(d->sup, &p->frame, v);
    free(p);
    return pt_supervisor_wait(d->sup, v, d->cfg.ack_timeout_ms);
}

static void hook_discard(void *arg, void *snap)
{
    struct pending *p = snap;
    (void)arg;
    pt_wbuf_free(&p->frame);
    free(p);
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

static char *hook_metrics(void *arg)
{
    struct pt_daemon *d = arg;
    return pt_supervisor_metrics(d->sup);
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
}

static void on_signal(uv_signal_t *h, int sig)
{
    struct pt_daemon *d = h->data;
    if (sig == SIGHUP) {
        pt_log(PT_LOG_INFO, "SIGHUP: nothing to reload (the API changes are live)");
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
    pt_supervisor_stop(d->sup);
    /* The workers close theirs on STOP; once ours are gone too, new clients
     * are refused at once instead of waiting in a queue nobody accepts. */
    for (size_t i = 0; i < (size_t)d->cfg.workers * d->n_listeners; i++) {
        close(d->fds[i]);
        d->fds[i] = -1;
    }
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

    check_state_dir(d.cfg.state_dir);
    load_token(&d);
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
    if (pt_publish_compile(d.store, version, &d.settings, &frame) != 0)
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
        .on_stopped = on_stopped,
        .arg = &d,
    };
    if (pt_supervisor_start(d.loop, &sc, &frame, version, &d.sup) != 0)
        die_usage("cannot start the workers");

    pthread_mutex_init(&d.lock, NULL);
    pthread_cond_init(&d.rotator_cv, NULL);
    d.publisher = (struct pt_publisher){d.store, &d.lock, &d.settings, d.sup,
                                        d.cfg.ack_timeout_ms};
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
        .hooks = {&d, hook_compile, hook_publish, hook_discard, hook_workers, hook_healthy,
                  hook_metrics, d.acme ? hook_acme_kick : NULL},
    };
    if (pt_api_start(&ac, &d.api, err, sizeof(err)) != 0)
        die_usage("%s", err);

    pthread_create(&d.rotator, NULL, rotate_tickets, &d);
    uv_signal_init(d.loop, &d.sigterm);
    uv_signal_init(d.loop, &d.sigint);
    uv_signal_init(d.loop, &d.sighup);
    d.sigterm.data = d.sigint.data = d.sighup.data = &d;
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    uv_signal_start(&d.sighup, on_signal, SIGHUP);

    pt_log(PT_LOG_INFO, "portier %s: API on http://%s/ (admin token in %s), %u workers",
           PT_VERSION, d.cfg.api.text, d.cfg.token_file, d.cfg.workers);
    uv_run(d.loop, UV_RUN_DEFAULT);

    pt_supervisor_free(d.sup);
    for (size_t i = 0; i < (size_t)d.cfg.workers * d.n_listeners; i++)
        if (d.fds[i] >= 0)
            close(d.fds[i]);
    free(d.fds);
    pt_store_close(d.store);
    uv_loop_close(d.loop);
    pt_config_free(&d.cfg);
    pt_log(PT_LOG_INFO, "stopped");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--worker") == 0)
        return pt_worker_main(argc, argv);
    return run_daemon(argc, argv);
}
