#include "daemon/supervisor.h"

#include "common/cursor.h"
#include "common/ipc.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/srvhealth.h"
#include "common/tally.h"
#include "daemon/listeners.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A worker that dies sooner than this after its start is respawned after a
 * pause, so a crash loop cannot spin the CPU. */
#define FAST_DEATH_MS 1000
#define RESPAWN_PAUSE_MS 1000
#define RESPAWN_PAUSE_MAX_MS 30000
#define WORKER_EXIT_START 127 /* the child could not become a worker */
#define KILL_MARGIN_MS 5000

/* Encoded snapshot frame shared by the writes in flight to every worker. */
struct blob {
    struct pt_wbuf frame;
    uint64_t version;
    unsigned refs; /* under sup->lock */
};

struct ban_count {
    char reason[64];
    uint64_t n;   /* refused */
    uint64_t cut; /* open connections cut */
};

struct slot {
    struct pt_supervisor *sup;
    unsigned ix;
    pid_t pid;          /* 0 while not running */
    bool pipe_open;
    uv_pipe_t pipe;
    uv_timer_t respawn;
    struct pt_ipc_rx rx;
    uint64_t sent;      /* version of the last snapshot written */
    bool ready_sent;    /* PT_IPC_READY written to this process */
    uint32_t lid_sent;  /* highest stream listener id handed over */
    uint64_t acked;     /* under lock */
    uint64_t conns;     /* under lock: from the last STATS */
    uint64_t accepted;  /* under lock */
    uint64_t refused;   /* under lock */
    uint64_t requests[2]; /* under lock: HTTP requests over HTTP/1.x, HTTP/2 */
    struct ban_count bans[32]; /* under lock: refusals per ban reason */
    size_t n_bans;
    struct pt_srvhealth_list health; /* under lock: servers as the worker sees them */
    uint64_t log_dropped; /* under lock: access log lines the worker dropped */
    struct pt_tally tally; /* under lock: the worker's traffic counters */
    uint64_t started_ms;
    unsigned fast_deaths; /* deaths in a row within FAST_DEATH_MS of the
                             start: the respawn pause doubles with each */
    char **argv;        /* built before fork: the child may not allocate */
};

struct write_req {
    uv_write_t req;
    struct pt_supervisor *sup;
    struct blob *blob;
    uint8_t small[PT_IPC_HDR]; /* for frames without a blob */
};

struct pt_supervisor {
    uv_loop_t *loop;
    struct pt_supervisor_config cfg;
    int *fds;           /* owned copy */
    char *kinds;
    char exe[4096];
    int exe_fd;         /* our own binary, opened at start: a respawned worker
                           runs this daemon's code even after an upgrade
                           replaced the file on disk */
    struct slot *slots;
    uv_async_t wake;
    uv_signal_t sigchld;
    uv_timer_t kill_timer;
    unsigned open_handles;
    bool stopping;
    bool finishing;     /* every handle is being closed: on_stopped next */
    uint64_t restarts;  /* under lock */
    uint64_t published[2]; /* under lock: whole snapshots, deltas */
    uint64_t resyncs;      /* under lock: whole configurations sent again */
    uint64_t pending_version;  /* under lock: published, not yet applied by all */
    uint64_t published_us;     /* under lock: when pending_version was published */
    struct pt_histo apply;     /* under lock: publish -> every live worker acked */
    double last_apply_s;       /* under lock */
    uint64_t sent_us;          /* under lock: when the loop last wrote to the workers */
    uint64_t applied_us;       /* under lock: when every live worker last caught up */

    pthread_mutex_t lock;
    pthread_cond_t acked_cv;
    struct blob *current; /* under lock: the last full snapshot */
    struct blob **deltas; /* under lock: ban deltas published since, in
                             version order; a worker gets current + these */
    size_t n_deltas, cap_deltas;
    size_t delta_bytes;
};

/* Under lock: once every live worker applied the pending version, records
 * how long that took. */
static void note_applied(struct pt_supervisor *s)
{
    if (s->pending_version == 0)
        return;
    for (unsigned i = 0; i < s->cfg.workers; i++)
        if (s->slots[i].pid != 0 && s->slots[i].acked < s->pending_version)
            return;
    s->applied_us = pt_mono_us();
    uint64_t us = s->applied_us - s->published_us;
    pt_histo_add(&s->apply, us);
    s->last_apply_s = (double)us / 1e6;
    s->pending_version = 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void blob_unref(struct pt_supervisor *s, struct blob *b)
{
    if (b == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    bool last = --b->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (last) {
        pt_wbuf_free(&b->frame);
        free(b);
    }
}

static void handle_gone(struct pt_supervisor *s)
{
    if (--s->open_handles == 0 && s->finishing && s->cfg.on_stopped)
        s->cfg.on_stopped(s->cfg.arg);
}

static void on_handle_closed(uv_handle_t *h)
{
    handle_gone(h->data);
}

static void close_handle(struct pt_supervisor *s, uv_handle_t *h)
{
    if (uv_is_closing(h))
        return;
    h->data = s;
    s->open_handles++;
    uv_close(h, on_handle_closed);
}

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    (void)status; /* a worker that went away is reaped through SIGCHLD */
    blob_unref(w->sup, w->blob);
    free(w);
}

static void send_blob(struct slot *sl, struct blob *b)
{
    struct pt_supervisor *s = sl->sup;
    struct write_req *w = pt_xcalloc(1, sizeof(*w));
    w->sup = s;
    w->blob = b;
    uv_buf_t buf = uv_buf_init((char *)b->frame.data, (unsigned)b->frame.len);
    if (uv_write(&w->req, (uv_stream_t *)&sl->pipe, &buf, 1, on_written) != 0) {
        blob_unref(s, b);
        free(w);
        return;
    }
    sl->sent = b->version;
}

/* A stream listening socket on its way to a worker: libuv passes a
 * descriptor only as a handle's, so the duplicate lives in a handle of its
 * own, closed once written. */
struct fd_write {
    uv_write_t req;
    uv_tcp_t tcp;
    uint8_t frame[PT_IPC_HDR + 4];
};

static void on_fd_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_fd_written(uv_write_t *req, int status)
{
    struct fd_write *f = (struct fd_write *)req;
    (void)status; /* a worker that went away is reaped through SIGCHLD */
    f->tcp.data = f;
    uv_close((uv_handle_t *)&f->tcp, on_fd_closed);
}

static void send_listener(void *arg, uint32_t lid, int fd)
{
    struct slot *sl = arg;
    struct fd_write *f = pt_xcalloc(1, sizeof(*f));
    struct pt_wbuf b = {0};
    size_t off = pt_ipc_begin(&b, PT_IPC_LISTENER);
    pt_wbuf_u32(&b, lid);
    pt_ipc_end(&b, off);
    memcpy(f->frame, b.data, sizeof(f->frame));
    pt_wbuf_free(&b);
    uv_tcp_init(sl->sup->loop, &f->tcp);
    f->tcp.data = f;
    if (uv_tcp_open(&f->tcp, fd) != 0) {
        close(fd);
        uv_close((uv_handle_t *)&f->tcp, on_fd_closed);
        return;
    }
    uv_buf_t buf = uv_buf_init((char *)f->frame, sizeof(f->frame));
    if (uv_write2(&f->req, (uv_stream_t *)&sl->pipe, &buf, 1, (uv_stream_t *)&f->tcp,
                  on_fd_written) != 0) {
        pt_log(PT_LOG_ERROR, "cannot hand stream listener %u to worker %u", lid, sl->ix);
        uv_close((uv_handle_t *)&f->tcp, on_fd_closed);
    }
}

/* A frame without payload. */
static void send_small(struct slot *sl, enum pt_ipc_type type)
{
    if (!sl->pipe_open)
        return;
    struct write_req *w = pt_xcalloc(1, sizeof(*w));
    struct pt_wbuf b = {0};
    size_t off = pt_ipc_begin(&b, type);
    pt_ipc_end(&b, off);
    memcpy(w->small, b.data, PT_IPC_HDR);
    pt_wbuf_free(&b);
    w->sup = sl->sup;
    uv_buf_t buf = uv_buf_init((char *)w->small, PT_IPC_HDR);
    if (uv_write(&w->req, (uv_stream_t *)&sl->pipe, &buf, 1, on_written) != 0)
        free(w);
}

/* Brings worker <sl> up to date: the stream listeners it has not got (they
 * go first: the snapshot names them), the snapshot if it has not got it,
 * then every delta newer than what it got; a worker that just started then
 * gets PT_IPC_READY, so it accepts only once all of that is applied. */
static void send_snapshot(struct slot *sl)
{
    struct pt_supervisor *s = sl->sup;
    if (!sl->pipe_open)
        return;
    if (s->cfg.listeners)
        sl->lid_sent = pt_listeners_each_after(s->cfg.listeners, sl->lid_sent,
                                               send_listener, sl);
    pthread_mutex_lock(&s->lock);
    size_t n = 0;
    struct blob **todo = pt_xcalloc(s->n_deltas + 1, sizeof(*todo));
    if (s->current->version > sl->sent)
        todo[n++] = s->current;
    for (size_t i = 0; i < s->n_deltas; i++)
        if (s->deltas[i]->version > sl->sent)
            todo[n++] = s->deltas[i];
    for (size_t i = 0; i < n; i++)
        todo[i]->refs++;
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < n; i++)
        send_blob(sl, todo[i]);
    free(todo);
    if (!sl->ready_sent && sl->sent > 0) {
        send_small(sl, PT_IPC_READY);
        sl->ready_sent = true;
    }
}

static void send_stop(struct slot *sl)
{
    send_small(sl, PT_IPC_STOP);
}

static void on_pipe_closed(uv_handle_t *h)
{
    struct slot *sl = h->data;
    pt_ipc_rx_free(&sl->rx);
    handle_gone(sl->sup);
}

static void close_pipe(struct slot *sl)
{
    if (!sl->pipe_open)
        return;
    sl->pipe_open = false;
    sl->pipe.data = sl;
    sl->sup->open_handles++;
    uv_close((uv_handle_t *)&sl->pipe, on_pipe_closed);
}

static void handle_frame(struct slot *sl, uint32_t type, const uint8_t *p, size_t n)
{
    struct pt_supervisor *s = sl->sup;
    struct pt_cursor c = pt_cursor_make(p, n);
    if (type == PT_IPC_ACK) {
        uint64_t v = pt_rd_u64(&c);
        if (!c.ok)
            goto bad;
        pthread_mutex_lock(&s->lock);
        if (v > sl->acked)
            sl->acked = v;
        note_applied(s);
        pthread_cond_broadcast(&s->acked_cv);
        pthread_mutex_unlock(&s->lock);
    } else if (type == PT_IPC_RESYNC) {
        if (n != 0)
            goto bad;
        pt_log(PT_LOG_WARN, "worker %u could not apply a configuration delta: sending it the "
                            "whole configuration again",
               (unsigned)(sl - s->slots));
        pthread_mutex_lock(&s->lock);
        s->resyncs++;
        pthread_mutex_unlock(&s->lock);
        sl->sent = 0; /* the current snapshot, then every delta since */
        send_snapshot(sl);
    } else if (type == PT_IPC_STATS) {
        uint64_t v = pt_rd_u64(&c), conns = pt_rd_u64(&c);
        uint64_t acc = pt_rd_u64(&c), ref = pt_rd_u64(&c);
        uint32_t nb = pt_rd_u32(&c);
        if (!c.ok || nb > PT_ARRAY_LEN(sl->bans))
            goto bad;
        struct ban_count tmp[PT_ARRAY_LEN(sl->bans)];
        for (uint32_t i = 0; i < nb; i++) {
            if (!pt_rd_cstr(&c, tmp[i].reason, sizeof(tmp[i].reason)))
                goto bad;
            tmp[i].n = pt_rd_u64(&c);
            tmp[i].cut = pt_rd_u64(&c);
        }
        uint64_t req1 = pt_rd_u64(&c), req2 = pt_rd_u64(&c);
        struct pt_srvhealth_list health = {0};
        if (!c.ok || pt_srvhealth_read(&c, &health) != 0)
            goto bad;
        uint64_t log_dropped = pt_rd_u64(&c);
        struct pt_tally tally = {0};
        if (!c.ok || pt_tally_read(&c, &tally) != 0) {
            pt_srvhealth_free(&health);
            goto bad;
        }
        pthread_mutex_lock(&s->lock);
        memcpy(sl->bans, tmp, nb * sizeof(tmp[0]));
        sl->n_bans = nb;
        pt_srvhealth_free(&sl->health);
        sl->health = health;
        sl->log_dropped = log_dropped;
        pt_tally_free(&sl->tally);
        sl->tally = tally;
        if (v > sl->acked)
            sl->acked = v;
        sl->conns = conns;
        sl->accepted = acc;
        sl->refused = ref;
        sl->requests[0] = req1;
        sl->requests[1] = req2;
        pthread_cond_broadcast(&s->acked_cv);
        pthread_mutex_unlock(&s->lock);
    } else {
        goto bad;
    }
    return;
bad:
    pt_log(PT_LOG_ERROR, "worker %u sent a bad message (type %u): restarting it",
           sl->ix, type);
    if (sl->pid > 0)
        kill(sl->pid, SIGKILL);
    close_pipe(sl);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    static char space[65536]; /* loop thread only; consumed before returning */
    *buf = uv_buf_init(space, sizeof(space));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct slot *sl = st->data;
    if (n < 0) {
        /* EOF: the worker is exiting (or crashed); SIGCHLD does the rest. */
        close_pipe(sl);
        return;
    }
    pt_ipc_rx_push(&sl->rx, buf->base, (size_t)n);
    uint32_t type;
    const uint8_t *p;
    size_t plen;
    int rc;
    while (sl->pipe_open && (rc = pt_ipc_rx_next(&sl->rx, &type, &p, &plen)) != 0) {
        if (rc < 0) {
            handle_frame(sl, 0, NULL, 0);
            break;
        }
        handle_frame(sl, type, p, plen);
    }
}

/* Builds the worker's argv before fork: between fork and exec only
 * async-signal-safe calls are allowed, and the API thread may hold malloc's
 * or OpenSSL's locks at that moment. */
static char **worker_argv(struct pt_supervisor *s, unsigned ix)
{
    char **argv = pt_xcalloc(6, sizeof(*argv));
    char num[16];
    snprintf(num, sizeof(num), "%u", ix);
    argv[0] = pt_xstrdup(s->exe);
    argv[1] = pt_xstrdup("--worker");
    argv[2] = pt_xstrdup(num);
    argv[3] = pt_xstrdup(s->kinds[0] ? s->kinds : "-");
    if (s->cfg.state_dir)
        argv[4] = pt_xstrdup(s->cfg.state_dir);
    return argv;
}

/* In the forked child before exec: no allocation, no stdio; says why on
 * stderr with the errno value and exits with WORKER_EXIT_START, which the
 * daemon reports and answers with a growing backoff. */
static _Noreturn void child_fail(const char *why)
{
    int e = errno;
    char num[16];
    size_t n = sizeof(num);
    num[--n] = '\0';
    do {
        num[--n] = (char)('0' + e % 10);
        e /= 10;
    } while (e > 0 && n > 0);
    static const char head[] = "portierd: worker: ";
    static const char mid[] = " (errno ";
    static const char tail[] = ")\n";
    struct iovec v[] = {
        {(void *)head, sizeof(head) - 1}, {(void *)why, strlen(why)},
        {(void *)mid, sizeof(mid) - 1},   {num + n, sizeof(num) - 1 - n},
        {(void *)tail, sizeof(tail) - 1},
    };
    ssize_t rc = writev(STDERR_FILENO, v, 5);
    (void)rc;
    _exit(WORKER_EXIT_START);
}

static int spawn(struct slot *sl)
{
    struct pt_supervisor *s = sl->sup;
    size_t nl = s->cfg.n_listeners;
    const int *lfds = s->fds + (size_t)sl->ix * nl;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        pt_log(PT_LOG_ERROR, "socketpair: %s", strerror(errno));
        return PT_EIO;
    }
    pid_t pid = fork();
    if (pid < 0) {
        pt_log(PT_LOG_ERROR, "fork: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return PT_EIO;
    }
    if (pid == 0) {
        /* Child. Fixed layout: fd 3 = daemon socket, 4.. = listeners, then
         * our binary. Every source first moves just above that range (the
         * lowest free descriptors there: a fixed high base such as 1024 is
         * past a user's soft limit), so no dup2 clobbers another source. */
        int tmp[1 + 64];
        int base = 5 + (int)nl;
        if (s->cfg.access_fd >= 0 && dup2(s->cfg.access_fd, STDOUT_FILENO) < 0)
            child_fail("cannot set up the access log descriptor");
        int exe = s->exe_fd >= 0 ? fcntl(s->exe_fd, F_DUPFD_CLOEXEC, base) : -1;
        tmp[0] = fcntl(sv[1], F_DUPFD, base);
        for (size_t i = 0; i < nl && i < 64; i++)
            tmp[1 + i] = fcntl(lfds[i], F_DUPFD, base);
        for (size_t i = 0; i <= nl && i <= 64; i++)
            if (tmp[i] < 0 || dup2(tmp[i], 3 + (int)i) < 0)
                child_fail("cannot arrange its descriptors (open-file limit too low?)");
        /* Our binary stays reachable until exec, then closes itself. */
        if (exe >= 0)
            exe = dup3(exe, 4 + (int)nl, O_CLOEXEC);
        close_range((unsigned)base, ~0U, 0);
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        extern char **environ;
        if (exe >= 0)
            fexecve(exe, sl->argv, environ);
        execv(sl->argv[0], sl->argv);
        child_fail("cannot execute the worker binary");
    }
    close(sv[1]);
    sl->pid = pid;
    sl->sent = 0;
    sl->ready_sent = false;
    sl->lid_sent = 0;
    sl->started_ms = now_ms();
    pthread_mutex_lock(&s->lock);
    sl->acked = 0;
    sl->conns = 0;
    pthread_mutex_unlock(&s->lock);
    uv_pipe_init(s->loop, &sl->pipe, 1); /* ipc: carries stream listeners */
    sl->pipe.data = sl;
    uv_pipe_open(&sl->pipe, sv[0]);
    sl->pipe_open = true;
    uv_read_start((uv_stream_t *)&sl->pipe, alloc_cb, on_read);
    send_snapshot(sl);
    if (s->stopping)
        send_stop(sl);
    return 0;
}

static void on_respawn(uv_timer_t *t)
{
    struct slot *sl = t->data;
    if (sl->sup->stopping || sl->pid != 0)
        return;
    if (spawn(sl) != 0)
        uv_timer_start(&sl->respawn, on_respawn, RESPAWN_PAUSE_MS, 0);
}

static bool all_gone(struct pt_supervisor *s)
{
    for (unsigned i = 0; i < s->cfg.workers; i++)
        if (s->slots[i].pid != 0)
            return false;
    return true;
}

static void finish_stop(struct pt_supervisor *s)
{
    if (s->finishing)
        return;
    s->finishing = true;
    uv_timer_stop(&s->kill_timer);
    close_handle(s, (uv_handle_t *)&s->kill_timer);
    close_handle(s, (uv_handle_t *)&s->sigchld);
    close_handle(s, (uv_handle_t *)&s->wake);
    for (unsigned i = 0; i < s->cfg.workers; i++) {
        close_pipe(&s->slots[i]);
        close_handle(s, (uv_handle_t *)&s->slots[i].respawn);
    }
}

static void on_sigchld(uv_signal_t *h, int sig)
{
    struct pt_supervisor *s = h->data;
    (void)sig;
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct slot *sl = NULL;
        for (unsigned i = 0; i < s->cfg.workers; i++)
            if (s->slots[i].pid == pid)
                sl = &s->slots[i];
        if (sl == NULL)
            continue;
        sl->pid = 0;
        close_pipe(sl);
        pthread_mutex_lock(&s->lock);
        sl->conns = 0;
        pthread_cond_broadcast(&s->acked_cv);
        pthread_mutex_unlock(&s->lock);
        if (s->stopping)
            continue;
        bool fast = now_ms() - sl->started_ms < FAST_DEATH_MS;
        sl->fast_deaths = fast ? sl->fast_deaths + 1 : 0;
        unsigned pause = 0;
        if (fast) {
            unsigned shift = sl->fast_deaths - 1 < 5 ? sl->fast_deaths - 1 : 5;
            pause = RESPAWN_PAUSE_MS << shift;
            if (pause > RESPAWN_PAUSE_MAX_MS)
                pause = RESPAWN_PAUSE_MAX_MS;
        }
        char why[96];
        if (WIFSIGNALED(status))
            snprintf(why, sizeof(why), "killed by signal %d", WTERMSIG(status));
        else if (WEXITSTATUS(status) == WORKER_EXIT_START)
            snprintf(why, sizeof(why), "could not start (reason above)");
        else
            snprintf(why, sizeof(why), "exited with status %d", WEXITSTATUS(status));
        pt_log(PT_LOG_WARN, "worker %u (pid %d) %s: respawning in %u ms", sl->ix, (int)pid,
               why, pause);
        pthread_mutex_lock(&s->lock);
        s->restarts++;
        pthread_mutex_unlock(&s->lock);
        uv_timer_start(&sl->respawn, on_respawn, pause, 0);
    }
    if (s->stopping && all_gone(s))
        finish_stop(s);
}

static void on_wake(uv_async_t *a)
{
    struct pt_supervisor *s = a->data;
    for (unsigned i = 0; i < s->cfg.workers; i++)
        send_snapshot(&s->slots[i]);
    pthread_mutex_lock(&s->lock);
    s->sent_us = pt_mono_us();
    pthread_mutex_unlock(&s->lock);
}

void pt_supervisor_timing(struct pt_supervisor *s, uint64_t *sent_us, uint64_t *applied_us)
{
    pthread_mutex_lock(&s->lock);
    *sent_us = s->sent_us;
    *applied_us = s->applied_us;
    pthread_mutex_unlock(&s->lock);
}

int pt_supervisor_start(uv_loop_t *loop, const struct pt_supervisor_config *cfg,
                        struct pt_wbuf *frame, uint64_t version,
                        struct pt_supervisor **out)
{
    struct pt_supervisor *s = pt_xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->cfg = *cfg;
    size_t nfds = (size_t)cfg->workers * cfg->n_listeners;
    s->fds = pt_xcalloc(nfds, sizeof(int));
    memcpy(s->fds, cfg->fds, nfds * sizeof(int));
    s->kinds = pt_xstrdup(cfg->kinds);
    s->cfg.fds = s->fds;
    s->cfg.kinds = s->kinds;
    PT_ASSERT(cfg->n_listeners <= 64);
    ssize_t n = readlink("/proc/self/exe", s->exe, sizeof(s->exe) - 1);
    if (n <= 0) {
        pt_log(PT_LOG_ERROR, "cannot find my own executable: %s", strerror(errno));
        free(s->fds);
        free(s->kinds);
        free(s);
        return PT_EIO;
    }
    s->exe[n] = '\0';
    s->exe_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->acked_cv, &ca);
    pthread_condattr_destroy(&ca);

    s->current = pt_xcalloc(1, sizeof(*s->current));
    s->current->frame = *frame;
    s->current->version = version;
    s->current->refs = 1;
    memset(frame, 0, sizeof(*frame));

    uv_async_init(loop, &s->wake, on_wake);
    s->wake.data = s;
    uv_signal_init(loop, &s->sigchld);
    s->sigchld.data = s;
    uv_signal_start(&s->sigchld, on_sigchld, SIGCHLD);
    uv_timer_init(loop, &s->kill_timer);
    s->kill_timer.data = s;

    s->slots = pt_xcalloc(cfg->workers, sizeof(*s->slots));
    for (unsigned i = 0; i < cfg->workers; i++) {
        struct slot *sl = &s->slots[i];
        sl->sup = s;
        sl->ix = i;
        sl->argv = worker_argv(s, i);
        uv_timer_init(loop, &sl->respawn);
        sl->respawn.data = sl;
    }
    for (unsigned i = 0; i < cfg->workers; i++)
        if (spawn(&s->slots[i]) != 0)
            uv_timer_start(&s->slots[i].respawn, on_respawn, RESPAWN_PAUSE_MS, 0);
    *out = s;
    return 0;
}

/* Takes <frame> over into a new blob with one reference. */
static struct blob *blob_new(struct pt_wbuf *frame, uint64_t version)
{
    struct blob *b = pt_xcalloc(1, sizeof(*b));
    b->frame = *frame;
    b->version = version;
    b->refs = 1;
    memset(frame, 0, sizeof(*frame));
    return b;
}

void pt_supervisor_publish(struct pt_supervisor *s, struct pt_wbuf *frame,
                           uint64_t version)
{
    struct blob *b = blob_new(frame, version);
    pthread_mutex_lock(&s->lock);
    struct blob *old = s->current;
    struct blob **deltas = s->deltas;
    size_t n = s->n_deltas;
    s->current = b;
    s->published[0]++;
    s->deltas = NULL; /* the snapshot holds every ban: deltas are history */
    s->n_deltas = s->cap_deltas = s->delta_bytes = 0;
    s->pending_version = version;
    s->published_us = pt_mono_us();
    pthread_mutex_unlock(&s->lock);
    blob_unref(s, old);
    for (size_t i = 0; i < n; i++)
        blob_unref(s, deltas[i]);
    free(deltas);
    if (s->cfg.listeners) /* the workers keep their copies until <frame> */
        pt_listeners_sweep(s->cfg.listeners);
    uv_async_send(&s->wake);
}

void pt_supervisor_publish_delta(struct pt_supervisor *s, struct pt_wbuf *frame,
                                 uint64_t version)
{
    struct blob *b = blob_new(frame, version);
    pthread_mutex_lock(&s->lock);
    if (s->n_deltas == s->cap_deltas) {
        s->cap_deltas = s->cap_deltas ? s->cap_deltas * 2 : 64;
        s->deltas = pt_xrealloc(s->deltas, s->cap_deltas * sizeof(*s->deltas));
    }
    s->deltas[s->n_deltas++] = b;
    s->published[1]++;
    s->delta_bytes += b->frame.len;
    s->pending_version = version; /* a delta's apply latency counts as well */
    s->published_us = pt_mono_us();
    pthread_mutex_unlock(&s->lock);
    uv_async_send(&s->wake);
}

bool pt_supervisor_deltas_due(struct pt_supervisor *s)
{
    pthread_mutex_lock(&s->lock);
    size_t limit = s->cfg.delta_limit ? s->cfg.delta_limit
                                      : s->current->frame.len + PT_SUPERVISOR_DELTA_SLACK;
    bool due = s->delta_bytes > limit;
    pthread_mutex_unlock(&s->lock);
    return due;
}

bool pt_supervisor_wait(struct pt_supervisor *s, uint64_t version, unsigned timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    bool done = false;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        done = true;
        for (unsigned i = 0; i < s->cfg.workers; i++)
            if (s->slots[i].pid != 0 && s->slots[i].acked < version)
                done = false;
        if (done || pthread_cond_timedwait(&s->acked_cv, &s->lock, &dl) == ETIMEDOUT)
            break;
    }
    if (!done) { /* one last look: the timeout may have raced an ack */
        done = true;
        for (unsigned i = 0; i < s->cfg.workers; i++)
            if (s->slots[i].pid != 0 && s->slots[i].acked < version)
                done = false;
    }
    pthread_mutex_unlock(&s->lock);
    return done;
}

json_t *pt_supervisor_workers_json(struct pt_supervisor *s)
{
    json_t *a = json_array();
    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < s->cfg.workers; i++) {
        struct slot *sl = &s->slots[i];
        /* A worker accepts once it has applied a snapshot. */
        bool serving = sl->pid != 0 && sl->acked > 0;
        json_t *w = json_pack("{s:i, s:I, s:I, s:b, s:b}", "id", (int)i, "config_version",
                              (json_int_t)sl->acked, "connections",
                              (json_int_t)sl->conns, "up", sl->pid != 0, "serving", serving);
        json_object_set_new(w, "pid", sl->pid ? json_integer(sl->pid) : json_null());
        json_array_append_new(a, w);
    }
    pthread_mutex_unlock(&s->lock);
    return a;
}

/* Under lock: the workers' views of the servers merged (caller frees). */
static struct pt_srvhealth_list merged_health(struct pt_supervisor *s)
{
    struct pt_srvhealth_list all = {0};
    for (unsigned i = 0; i < s->cfg.workers; i++)
        pt_srvhealth_merge(&all, &s->slots[i].health);
    return all;
}

json_t *pt_supervisor_servers_json(struct pt_supervisor *s, const char *backend)
{
    pthread_mutex_lock(&s->lock);
    struct pt_srvhealth_list all = merged_health(s);
    pthread_mutex_unlock(&s->lock);
    json_t *a = json_array();
    for (size_t i = 0; i < all.n; i++) {
        const struct pt_srvhealth *e = &all.v[i];
        if (backend != NULL && strcmp(e->backend, backend) != 0)
            continue;
        json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:I}", "backend", e->backend, "server",
                              e->server, "state", e->up ? "up" : "down",
                              "consecutive_failures", (int)e->fails, "failures",
                              (json_int_t)e->failures);
        json_object_set_new(j, "changed_ms",
                            e->changed_ms ? json_integer((json_int_t)e->changed_ms)
                                          : json_null());
        json_array_append_new(a, j);
    }
    pt_srvhealth_free(&all);
    return a;
}

bool pt_supervisor_healthy(struct pt_supervisor *s)
{
    bool ok = true;
    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < s->cfg.workers; i++)
        if (s->slots[i].pid == 0 || s->slots[i].acked < s->current->version)
            ok = false;
    pthread_mutex_unlock(&s->lock);
    return ok && !s->stopping;
}

/* One counter family over the workers' per-reason ban counts (refusals, or
 * open connections cut), summed over the workers. */
static void ban_family(struct pt_supervisor *s, struct pt_wbuf *b, const char *name,
                       const char *help, bool cut)
{
    pt_metrics_family(b, name, PT_METRIC_COUNTER, help);
    for (unsigned i = 0; i < s->cfg.workers; i++) {
        for (size_t k = 0; k < s->slots[i].n_bans; k++) {
            const char *reason = s->slots[i].bans[k].reason;
            bool seen = false;
            for (unsigned j = 0; j < i && !seen; j++)
                for (size_t q = 0; q < s->slots[j].n_bans; q++)
                    if (strcmp(s->slots[j].bans[q].reason, reason) == 0)
                        seen = true;
            if (seen)
                continue;
            uint64_t total = 0;
            for (unsigned j = i; j < s->cfg.workers; j++)
                for (size_t q = 0; q < s->slots[j].n_bans; q++)
                    if (strcmp(s->slots[j].bans[q].reason, reason) == 0)
                        total += cut ? s->slots[j].bans[q].cut : s->slots[j].bans[q].n;
            const char *labels[] = {"reason", reason};
            pt_metrics_u64(b, name, labels, 1, total);
        }
    }
}

void pt_supervisor_metrics(struct pt_supervisor *s, struct pt_wbuf *b)
{
    pthread_mutex_lock(&s->lock);
    pt_metrics_family(b, "portier_config_version", PT_METRIC_GAUGE,
                      "The current configuration version.");
    pt_metrics_u64(b, "portier_config_version", NULL, 0, s->current->version);
    pt_metrics_family(b, "portier_config_apply_seconds", PT_METRIC_HISTOGRAM,
                      "Time from a configuration change to every live worker applying it.");
    pt_metrics_histo(b, "portier_config_apply_seconds", NULL, 0, &s->apply);
    pt_metrics_family(b, "portier_config_last_apply_seconds", PT_METRIC_GAUGE,
                      "How long the last configuration change took to reach every worker.");
    pt_metrics_f64(b, "portier_config_last_apply_seconds", NULL, 0, s->last_apply_s);
    pt_metrics_family(b, "portier_worker_restarts_total", PT_METRIC_COUNTER,
                      "Workers respawned after an unexpected exit.");
    pt_metrics_u64(b, "portier_worker_restarts_total", NULL, 0, s->restarts);
    pt_metrics_family(b, "portier_config_publishes_total", PT_METRIC_COUNTER,
                      "Configuration changes sent to the workers, by form: a whole "
                      "snapshot or a delta (a starting worker's own copy not counted).");
    for (int k = 0; k < 2; k++) {
        const char *labels[] = {"form", k ? "delta" : "snapshot"};
        pt_metrics_u64(b, "portier_config_publishes_total", labels, 1, s->published[k]);
    }
    pt_metrics_family(b, "portier_worker_resyncs_total", PT_METRIC_COUNTER,
                      "Whole configurations sent again to a worker that could not apply a "
                      "delta (it logs why).");
    pt_metrics_u64(b, "portier_worker_resyncs_total", NULL, 0, s->resyncs);

    static const struct {
        const char *name;
        enum pt_metric_type type;
        const char *help;
    } fams[] = {
        {"portier_worker_up", PT_METRIC_GAUGE,
         "1 when the worker runs and has applied a configuration (it accepts)."},
        {"portier_worker_config_version", PT_METRIC_GAUGE,
         "Configuration version the worker last applied."},
        {"portier_worker_connections", PT_METRIC_GAUGE, "Client connections open in the worker."},
        {"portier_worker_accepted_total", PT_METRIC_COUNTER, "Client connections accepted."},
        {"portier_worker_refused_total", PT_METRIC_COUNTER,
         "Connections refused at accept (bans, bad PROXY headers from trusted fronts) plus "
         "each time the worker paused accepting at its connection or descriptor limit."},
        {"portier_access_log_dropped_total", PT_METRIC_COUNTER,
         "Access log lines dropped because the log reader did not keep up (or stdout "
         "failed): the worker never waits for it."},
    };
    for (size_t m = 0; m < PT_ARRAY_LEN(fams); m++) {
        pt_metrics_family(b, fams[m].name, fams[m].type, fams[m].help);
        for (unsigned i = 0; i < s->cfg.workers; i++) {
            struct slot *sl = &s->slots[i];
            uint64_t v = m == 0   ? (sl->pid != 0 && sl->acked > 0)
                         : m == 1 ? sl->acked
                         : m == 2 ? sl->conns
                         : m == 3 ? sl->accepted
                         : m == 4 ? sl->refused
                                  : sl->log_dropped;
            char id[16];
            snprintf(id, sizeof(id), "%u", i);
            const char *labels[] = {"worker", id};
            pt_metrics_u64(b, fams[m].name, labels, 1, v);
        }
    }
    pt_metrics_family(b, "portier_http_requests_total", PT_METRIC_COUNTER,
                      "HTTP requests received (offload and port 80; HTTP/2: streams), "
                      "by worker and protocol (h1: HTTP/1.x, h2: HTTP/2).");
    for (unsigned i = 0; i < s->cfg.workers; i++)
        for (int p = 0; p < 2; p++) {
            char id[16];
            snprintf(id, sizeof(id), "%u", i);
            const char *labels[] = {"worker", id, "protocol", p ? "h2" : "h1"};
            pt_metrics_u64(b, "portier_http_requests_total", labels, 2, s->slots[i].requests[p]);
        }
    struct pt_srvhealth_list all = merged_health(s);
    pt_metrics_family(b, "portier_backend_server_up", PT_METRIC_GAUGE,
                      "0 while the backend server is skipped after failing (the latest "
                      "change any worker saw), 1 otherwise.");
    for (size_t i = 0; i < all.n; i++) {
        const char *labels[] = {"backend", all.v[i].backend, "server", all.v[i].server};
        pt_metrics_u64(b, "portier_backend_server_up", labels, 2, all.v[i].up);
    }
    pt_metrics_family(b, "portier_backend_server_failures_total", PT_METRIC_COUNTER,
                      "Connection attempts and health probes to the server that failed "
                      "(refused, timed out, unresolved).");
    for (size_t i = 0; i < all.n; i++) {
        const char *labels[] = {"backend", all.v[i].backend, "server", all.v[i].server};
        pt_metrics_u64(b, "portier_backend_server_failures_total", labels, 2,
                       all.v[i].failures);
    }
    pt_srvhealth_free(&all);
    struct pt_tally tally = {0};
    for (unsigned i = 0; i < s->cfg.workers; i++)
        pt_tally_merge(&tally, &s->slots[i].tally);
    pt_tally_metrics(&tally, b);
    pt_tally_free(&tally);
    ban_family(s, b, "portier_banned_connections_total",
               "Connections refused by a ban, by the ban's reason.", false);
    ban_family(s, b, "portier_ban_cut_connections_total",
               "Open connections cut when their client's ban arrived, by the ban's reason.",
               true);
    pthread_mutex_unlock(&s->lock);
}

static void on_kill_timer(uv_timer_t *t)
{
    struct pt_supervisor *s = t->data;
    for (unsigned i = 0; i < s->cfg.workers; i++)
        if (s->slots[i].pid > 0) {
            pt_log(PT_LOG_WARN, "worker %u still running after the grace period: killing",
                   i);
            kill(s->slots[i].pid, SIGKILL);
        }
}

void pt_supervisor_stop(struct pt_supervisor *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    for (unsigned i = 0; i < s->cfg.workers; i++) {
        uv_timer_stop(&s->slots[i].respawn);
        send_stop(&s->slots[i]);
    }
    uv_timer_start(&s->kill_timer, on_kill_timer, s->cfg.grace_ms + KILL_MARGIN_MS, 0);
    if (all_gone(s))
        finish_stop(s);
}

void pt_supervisor_free(struct pt_supervisor *s)
{
    if (s == NULL)
        return;
    for (unsigned i = 0; i < s->cfg.workers; i++) {
        for (char **a = s->slots[i].argv; a && *a; a++)
            free(*a);
        free(s->slots[i].argv);
        pt_ipc_rx_free(&s->slots[i].rx);
        pt_srvhealth_free(&s->slots[i].health);
        pt_tally_free(&s->slots[i].tally);
    }
    blob_unref(s, s->current);
    for (size_t i = 0; i < s->n_deltas; i++)
        blob_unref(s, s->deltas[i]);
    free(s->deltas);
    pthread_cond_destroy(&s->acked_cv);
    pthread_mutex_destroy(&s->lock);
    if (s->exe_fd >= 0)
        close(s->exe_fd);
    free(s->slots);
    free(s->fds);
    free(s->kinds);
    free(s);
}
