#include "worker/worker.h"

#include "common/handover.h"

#include "common/delta.h"
#include "common/cursor.h"
#include "worker/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STATS_INTERVAL_MS 1000
#define ACCEPT_BURST 64          /* accepts per wakeup, so one busy listener
                                    cannot starve the others */
#define EMFILE_PAUSE_MS 100
#define FDS_PER_CONN 2           /* client + backend */
#define FDS_RESERVED 64          /* IPC, listeners, resolver, logs */

uint64_t pt_worker_now_ms(struct pt_worker *w)
{
    return uv_now(w->loop);
}

static void send_frame(struct pt_worker *w, enum pt_ipc_type type, const uint64_t *v,
                       size_t n);

static void stop_polling(struct pt_worker *w)
{
    for (size_t i = 0; i < w->n_listeners; i++)
        if (w->listeners[i].open)
            uv_poll_stop(&w->listeners[i].poll);
    for (size_t i = 0; i < w->n_stream_ls; i++)
        uv_poll_stop(&w->stream_ls[i]->poll);
}

static void on_accept(uv_poll_t *p, int status, int events);

static void start_polling(struct pt_worker *w)
{
    if (w->draining || !w->accepting)
        return;
    for (size_t i = 0; i < w->n_listeners; i++)
        if (w->listeners[i].open)
            uv_poll_start(&w->listeners[i].poll, UV_READABLE, on_accept);
    /* A stream listener that came ahead of its snapshot waits for it. */
    for (size_t i = 0; i < w->n_stream_ls; i++)
        if (pt_streams_port(&w->snap->streams, w->stream_ls[i]->lid))
            uv_poll_start(&w->stream_ls[i]->poll, UV_READABLE, on_accept);
}

static void on_resume(uv_timer_t *t)
{
    struct pt_worker *w = t->data;
    if (w->conns < w->max_conns)
        w->paused = false;
    if (!w->paused)
        start_polling(w);
}

static void overload(struct pt_worker *w, const char *why)
{
    if (pt_ratelimit_ok(&w->overload_log, pt_worker_now_ms(w)))
        pt_log(PT_LOG_WARN, "not accepting for now: %s (%llu open connections)", why,
               (unsigned long long)w->conns);
}

static void on_accept(uv_poll_t *p, int status, int events)
{
    struct pt_listener *l = p->data;
    struct pt_worker *w = l->w;
    (void)events;
    if (status < 0)
        return;
    for (int i = 0; i < ACCEPT_BURST; i++) {
        if (w->conns >= w->max_conns) {
            /* At the limit: leave connections queued in the kernel (not
             * accepted-and-closed as libuv's EMFILE trick would) and wait
             * for room. */
            w->paused = true;
            w->refused++;
            stop_polling(w);
            overload(w, "connection limit reached");
            return;
        }
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        int fd = accept4(l->fd, (struct sockaddr *)&peer, &plen,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
                errno == ECONNABORTED)
                return;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM) {
                w->refused++;
                stop_polling(w);
                uv_timer_start(&w->resume_timer, on_resume, EMFILE_PAUSE_MS, 0);
                overload(w, strerror(errno));
                return;
            }
            pt_log(PT_LOG_WARN, "accept: %s", strerror(errno));
            return;
        }
        w->accepted++;
        if (l->kind == 's')
            pt_pass_accept(l, fd, &peer);
        else if (l->kind == 't')
            pt_stream_accept(l, fd, &peer);
        else
            pt_http80_accept(l, fd, &peer);
    }
}

void pt_worker_conn_opened(struct pt_worker *w)
{
    w->conns++;
}

static void maybe_exit(struct pt_worker *w);

void pt_worker_conn_closed(struct pt_worker *w)
{
    PT_ASSERT(w->conns > 0);
    w->conns--;
    /* Resume below 90% so the worker does not flap at the limit. */
    if (w->paused && w->conns < w->max_conns - w->max_conns / 10) {
        w->paused = false;
        start_polling(w);
    }
    if (w->draining)
        maybe_exit(w);
}

/* ---- daemon link ------------------------------------------------------- */

struct ipc_write {
    uv_write_t req;
    struct pt_wbuf b;
};

static void on_ipc_written(uv_write_t *req, int status)
{
    struct ipc_write *iw = (struct ipc_write *)req;
    (void)status;
    pt_wbuf_free(&iw->b);
    free(iw);
}

/* Sends a frame whose payload is <b> (consumed). */
static void send_payload(struct pt_worker *w, enum pt_ipc_type type, struct pt_wbuf *b)
{
    if (!w->ipc_open) {
        pt_wbuf_free(b);
        return;
    }
    struct ipc_write *iw = pt_xcalloc(1, sizeof(*iw));
    size_t off = pt_ipc_begin(&iw->b, type);
    pt_wbuf_put(&iw->b, b->data, b->len);
    pt_ipc_end(&iw->b, off);
    pt_wbuf_free(b);
    uv_buf_t buf = uv_buf_init((char *)iw->b.data, (unsigned)iw->b.len);
    if (uv_write(&iw->req, (uv_stream_t *)&w->ipc, &buf, 1, on_ipc_written) != 0) {
        pt_wbuf_free(&iw->b);
        free(iw);
    }
}

static void send_frame(struct pt_worker *w, enum pt_ipc_type type, const uint64_t *v,
                       size_t n)
{
    struct pt_wbuf b = {0};
    for (size_t i = 0; i < n; i++)
        pt_wbuf_u64(&b, v[i]);
    send_payload(w, type, &b);
}

static void send_stats(struct pt_worker *w)
{
    struct pt_wbuf b = {0};
    pt_wbuf_u64(&b, w->version);
    pt_wbuf_u64(&b, w->conns);
    pt_wbuf_u64(&b, w->accepted);
    pt_wbuf_u64(&b, w->refused);
    pt_wbuf_u32(&b, (uint32_t)w->n_bans_hit);
    for (size_t i = 0; i < w->n_bans_hit; i++) {
        pt_wbuf_str(&b, w->bans_hit[i].reason);
        pt_wbuf_u64(&b, w->bans_hit[i].n);
        pt_wbuf_u64(&b, w->bans_hit[i].cut);
    }
    pt_wbuf_u64(&b, w->requests[0]);
    pt_wbuf_u64(&b, w->requests[1]);
    pt_health_encode(&w->health, w->snap, &b);
    pt_wbuf_u64(&b, w->alog_dropped);
    pt_tally_encode(&w->tally, &b);
    send_payload(w, PT_IPC_STATS, &b);
}

/* Looks <sa> up in the bans and counts a hit under the ban's reason, as a
 * refusal or as a cut of an open connection. */
static bool ban_hit(struct pt_worker *w, const struct sockaddr *sa, bool cut)
{
    const char *reason = pt_banlist_match(w->bans, sa, (int64_t)time(NULL));
    if (reason == NULL)
        return false;
    size_t i;
    for (i = 0; i < w->n_bans_hit; i++)
        if (strncmp(w->bans_hit[i].reason, reason, sizeof(w->bans_hit[i].reason) - 1) == 0)
            break;
    if (i == w->n_bans_hit) {
        if (i == PT_ARRAY_LEN(w->bans_hit))
            reason = "(other)", i--; /* bounded: the last slot collects the rest */
        else
            w->n_bans_hit++;
        snprintf(w->bans_hit[i].reason, sizeof(w->bans_hit[i].reason), "%s", reason);
    }
    if (cut) {
        w->bans_hit[i].cut++;
    } else {
        w->bans_hit[i].n++;
        w->refused++;
    }
    return true;
}

bool pt_worker_banned(struct pt_worker *w, const struct sockaddr *sa)
{
    return ban_hit(w, sa, false);
}

static bool banned_open(void *arg, const struct sockaddr *sa)
{
    return ban_hit(arg, sa, true);
}

void pt_worker_reject_fd(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

static void on_stats(uv_timer_t *t)
{
    send_stats(t->data);
    pt_worker_access_flush(t->data);
}

/* Writes what fits without waiting: a reader that stalls (a full pipe) must
 * not stop the loop. What is not taken stays buffered for the next flush. */
void pt_worker_access_flush(struct pt_worker *w)
{
    size_t off = 0;
    while (off < w->alog.len) {
        ssize_t n = w->alog_sock
                        ? send(STDOUT_FILENO, w->alog.data + off, w->alog.len - off,
                               MSG_DONTWAIT | MSG_NOSIGNAL)
                        : write(STDOUT_FILENO, w->alog.data + off, w->alog.len - off);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break; /* kept: the reader is slow */
        /* A full disk or a closed stdout must not stop the proxy: the
         * lines are lost, and counted. */
        w->alog_dropped += w->alog_lines;
        off = w->alog.len;
        w->alog_lines = 0;
        break;
    }
    if (off == 0)
        return;
    memmove(w->alog.data, w->alog.data + off, w->alog.len - off);
    w->alog.len -= off;
    if (w->alog.len == 0)
        w->alog_lines = 0;
}

/* stdout may be a pipe whose reader stalls: writes to it must not block.
 * A pipe is reopened (a new open file description, so the daemon's flags
 * stay as they are) non-blocking; a socket gets MSG_DONTWAIT per send; a
 * file never blocks for long. */
static void access_log_open(struct pt_worker *w)
{
    struct stat st;
    if (fstat(STDOUT_FILENO, &st) != 0)
        return;
    if (S_ISSOCK(st.st_mode)) {
        w->alog_sock = true;
    } else if (S_ISFIFO(st.st_mode)) {
        int fd = open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            close(fd);
        } else {
            pt_log(PT_LOG_WARN, "access log: cannot make stdout non-blocking: %s",
                   strerror(errno));
        }
    }
}

/* A JSON string holding <s> escaped as in every log (pt_log_escape): the
 * same bytes read the same in the access log as in stderr. Inputs are at
 * most an SNI or a Host (255 bytes), 4 output bytes each at worst. */
static void json_str(struct pt_wbuf *b, const char *s, size_t n)
{
    char esc[1024 + 8];
    size_t len = pt_log_escape(esc, sizeof(esc), s, n);
    pt_wbuf_u8(b, '"');
    for (size_t i = 0; i < len; i++) {
        if (esc[i] == '"' || esc[i] == '\\')
            pt_wbuf_u8(b, '\\');
        pt_wbuf_u8(b, (uint8_t)esc[i]);
    }
    pt_wbuf_u8(b, '"');
}

static void json_addr(struct pt_wbuf *b, const struct sockaddr *sa)
{
    char buf[PT_ADDRSTR_MAX];
    if (sa == NULL || sa->sa_family == AF_UNSPEC) {
        pt_wbuf_put(b, "null", 4);
        return;
    }
    size_t n = pt_sockaddr_format(sa, buf, sizeof(buf));
    json_str(b, buf, n);
}

/* The record counted in the worker's tally (common/tally.h). */
static void tally(struct pt_worker *w, const struct pt_access *a)
{
    char server[PT_ADDRSTR_MAX] = "";
    if (a->server != NULL && a->server->sa_family != AF_UNSPEC)
        pt_sockaddr_format(a->server, server, sizeof(server));
    struct pt_tally_rec r = {a->route, a->mode, a->backend, server, a->result,
                             a->bytes_in, a->bytes_out, a->duration_ms * 1000};
    pt_tally_add(&w->tally, &r);
    if (a->mode && a->result && strcmp(a->mode, "offload") == 0 &&
        (strncmp(a->result, "handshake_", 10) == 0 || strcmp(a->result, "no_certificate") == 0))
        w->tally.tls_failed++;
}

void pt_worker_access(struct pt_worker *w, const struct pt_access *a)
{
    tally(w, a);
    if (w->snap == NULL || !w->snap->settings.access_log)
        return;
    if (w->alog.len >= PT_ACCESS_LOG_MAX) {
        w->alog_dropped++; /* bounded: the reader cannot keep up */
        return;
    }
    w->alog_lines++;
    struct pt_wbuf *b = &w->alog;
    char tmp[160];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(tmp, sizeof(tmp),
                     "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"worker\":%u,"
                     "\"client\":",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, w->id);
    pt_wbuf_put(b, tmp, (size_t)n);
    json_addr(b, a->client);
    pt_wbuf_put(b, ",\"listener\":", 12);
    json_addr(b, a->listener);
    pt_wbuf_put(b, ",\"sni\":", 7);
    if (a->sni_len)
        json_str(b, a->sni, a->sni_len);
    else
        pt_wbuf_put(b, "null", 4);
    pt_wbuf_put(b, ",\"route\":", 9);
    if (a->route)
        json_str(b, a->route, strlen(a->route));
    else
        pt_wbuf_put(b, "null", 4);
    n = snprintf(tmp, sizeof(tmp), ",\"mode\":\"%s\"", a->mode);
    pt_wbuf_put(b, tmp, (size_t)n);
    n = a->proto ? snprintf(tmp, sizeof(tmp), ",\"proto\":\"%s\"", a->proto) : 0;
    pt_wbuf_put(b, tmp, (size_t)n);
    n = snprintf(tmp, sizeof(tmp), ",\"backend\":");
    pt_wbuf_put(b, tmp, (size_t)n);
    if (a->backend)
        json_str(b, a->backend, strlen(a->backend));
    else
        pt_wbuf_put(b, "null", 4);
    pt_wbuf_put(b, ",\"server\":", 10);
    json_addr(b, a->server);
    n = snprintf(tmp, sizeof(tmp),
                 ",\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration_ms\":%llu,"
                 "\"result\":\"%s\"}\n",
                 (unsigned long long)a->bytes_in, (unsigned long long)a->bytes_out,
                 (unsigned long long)a->duration_ms, a->result);
    pt_wbuf_put(b, tmp, (size_t)n);
    if (b->len >= 32 * 1024)
        pt_worker_access_flush(w);
}

void pt_worker_request(struct pt_worker *w, int version)
{
    w->requests[version == 2 ? 1 : 0]++;
}

static void close_cb_noop(uv_handle_t *h)
{
    (void)h;
}

uint32_t *pt_worker_stream_count(struct pt_worker *w, const char *name)
{
    struct pt_stream_count *c;
    for (c = w->stream_counts; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return &c->n;
    size_t n = strlen(name);
    c = pt_xcalloc(1, sizeof(*c) + n + 1);
    memcpy(c->name, name, n + 1);
    c->next = w->stream_counts;
    w->stream_counts = c;
    return &c->n;
}

static void on_tmp_closed(uv_handle_t *h)
{
    free(h->data);
}

void pt_worker_listener_hold(struct pt_listener *l)
{
    if (l->kind == 't')
        l->refs++;
}

void pt_worker_listener_release(struct pt_listener *l)
{
    if (l->kind == 't' && --l->refs == 0)
        free(l);
}

static void on_stream_l_closed(uv_handle_t *h)
{
    pt_worker_listener_release(h->data);
}

/* Closes stream listener <i>: connections it accepted go on. */
static void close_stream_l(struct pt_worker *w, size_t i)
{
    struct pt_listener *l = w->stream_ls[i];
    uv_close((uv_handle_t *)&l->poll, on_stream_l_closed);
    close(l->fd); /* uv_poll does not own the fd */
    w->stream_ls[i] = w->stream_ls[--w->n_stream_ls];
}

/* Stream listeners up to the snapshot's lid_max that none of its streams
 * uses are gone from the configuration; higher ids came for a snapshot
 * still on its way. */
static void prune_stream_ls(struct pt_worker *w)
{
    const struct pt_streams *ss = &w->snap->streams;
    for (size_t i = w->n_stream_ls; i-- > 0;) {
        uint32_t lid = w->stream_ls[i]->lid;
        if (lid <= ss->lid_max && pt_streams_port(ss, lid) == NULL)
            close_stream_l(w, i);
    }
}

static void close_listeners(struct pt_worker *w)
{
    while (w->n_stream_ls)
        close_stream_l(w, w->n_stream_ls - 1);
    for (size_t i = 0; i < w->n_listeners; i++) {
        struct pt_listener *l = &w->listeners[i];
        if (!l->open)
            continue;
        l->open = false;
        uv_close((uv_handle_t *)&l->poll, close_cb_noop);
        close(l->fd); /* uv_poll does not own the fd */
        l->fd = -1;
    }
}

static void stop_offering(struct pt_worker *w);

static void close_all(struct pt_worker *w)
{
    close_listeners(w);
    stop_offering(w);
    uv_timer_stop(&w->stats_timer);
    uv_timer_stop(&w->drain_timer);
    uv_timer_stop(&w->resume_timer);
    uv_close((uv_handle_t *)&w->stats_timer, close_cb_noop);
    uv_close((uv_handle_t *)&w->drain_timer, close_cb_noop);
    uv_close((uv_handle_t *)&w->resume_timer, close_cb_noop);
    uv_close((uv_handle_t *)&w->sigterm, close_cb_noop);
    uv_close((uv_handle_t *)&w->sigint, close_cb_noop);
    pt_health_close(&w->health);
    if (w->ipc_open) {
        w->ipc_open = false;
        uv_close((uv_handle_t *)&w->ipc, close_cb_noop);
    }
}

static void maybe_exit(struct pt_worker *w)
{
    if (w->conns == 0)
        uv_stop(w->loop);
}

static void on_drain_timeout(uv_timer_t *t)
{
    struct pt_worker *w = t->data;
    pt_log(PT_LOG_INFO, "grace period over: closing %llu connections",
           (unsigned long long)w->conns);
    uv_stop(w->loop);
}

/* Stop taking new connections at once (a restarted daemon must be able to
 * bind the ports), finish the ones we have within the grace period. */
static void begin_drain(struct pt_worker *w, const char *why)
{
    if (w->draining)
        return;
    w->draining = true;
    pt_log(PT_LOG_INFO, "%s: closing listeners, draining %llu connections", why,
           (unsigned long long)w->conns);
    close_listeners(w);
    uint64_t grace = w->snap ? w->snap->settings.grace_ms : 0;
    uv_timer_start(&w->drain_timer, on_drain_timeout, grace, 0);
    maybe_exit(w);
}

static void start_accepting(struct pt_worker *w)
{
    bool first = !w->accepting;
    w->accepting = true;
    if (first || (w->n_stream_ls && !w->paused))
        start_polling(w); /* and the stream listeners the snapshot names */
}

/* SSL objects hold their own SSL_CTX references: the old set can go (a
 * whole snapshot; unchanged certificates are known by their PEM). */
static void rebuild_tls(struct pt_worker *w)
{
    struct pt_tls *tls = pt_tls_build(w->snap, w->tls);
    pt_tls_free(w->tls);
    w->tls = tls;
}

static void apply_snapshot(struct pt_worker *w, const uint8_t *p, size_t n)
{
    struct pt_snapshot *s = NULL;
    /* The daemon is trusted: a snapshot that does not decode is a bug, and
     * going on with a half-understood config would be worse than dying. */
    if (pt_snap_decode(p, n, &s) != 0)
        pt_panic(__FILE__, __LINE__, "undecodable snapshot from the daemon");
    struct pt_snapshot *old = w->snap;
    w->snap = s;
    rebuild_tls(w);
    /* The ban table leaves the (otherwise immutable) snapshot: deltas change
     * it in place until the next snapshot replaces it. */
    pt_banlist_free(w->bans);
    w->bans = s->banlist;
    s->banlist = NULL;
    w->version = s->version;
    pt_health_configure(&w->health, s);
    pt_snap_unref(old); /* connections keep their own references */
    pt_log(PT_LOG_DEBUG, "applied config version %llu (%zu domains)",
           (unsigned long long)s->version, s->n_domains);
    prune_stream_ls(w);
    if (w->caught_up)
        start_accepting(w);
}

static void listener_init(struct pt_worker *w, struct pt_listener *l, int fd, char kind)
{
    l->w = w;
    l->kind = kind;
    l->fd = fd;
    socklen_t alen = sizeof(l->addr);
    getsockname(l->fd, (struct sockaddr *)&l->addr, &alen);
    static const struct in6_addr any6 = IN6ADDR_ANY_INIT;
    l->wildcard =
        (l->addr.ss_family == AF_INET &&
         ((struct sockaddr_in *)&l->addr)->sin_addr.s_addr == htonl(INADDR_ANY)) ||
        (l->addr.ss_family == AF_INET6 &&
         memcmp(&((struct sockaddr_in6 *)&l->addr)->sin6_addr, &any6, sizeof(any6)) == 0);
    fcntl(l->fd, F_SETFD, FD_CLOEXEC);
    if (uv_poll_init(w->loop, &l->poll, l->fd) != 0)
        pt_panic(__FILE__, __LINE__, "listening socket is not pollable");
    l->poll.data = l;
    l->open = true;
}

/* A stream listener from the daemon: the socket came with the frame's first
 * byte, so it is queued on the pipe by now. libuv gives it as a handle; the
 * listener keeps a duplicate and the handle goes. */
static void add_stream_l(struct pt_worker *w, const uint8_t *p, size_t n)
{
    struct pt_cursor c = pt_cursor_make(p, n);
    uint32_t lid = pt_rd_u32(&c);
    uv_tcp_t *tmp = pt_xcalloc(1, sizeof(*tmp));
    uv_os_fd_t fd = -1;
    if (!c.ok || pt_cursor_left(&c) != 0 || uv_pipe_pending_count(&w->ipc) < 1 ||
        uv_tcp_init(w->loop, tmp) != 0 || uv_accept((uv_stream_t *)&w->ipc,
                                                     (uv_stream_t *)tmp) != 0 ||
        uv_fileno((uv_handle_t *)tmp, &fd) != 0 || (fd = dup(fd)) < 0)
        pt_panic(__FILE__, __LINE__, "bad stream listener from the daemon");
    tmp->data = tmp;
    uv_close((uv_handle_t *)tmp, on_tmp_closed);
    if (w->draining) {
        close(fd);
        return;
    }
    struct pt_listener *l = pt_xcalloc(1, sizeof(*l));
    listener_init(w, l, fd, 't');
    l->lid = lid;
    l->refs = 1;
    w->stream_ls = pt_xrealloc(w->stream_ls, (w->n_stream_ls + 1) * sizeof(*w->stream_ls));
    w->stream_ls[w->n_stream_ls++] = l;
    if (w->accepting && !w->paused)
        start_polling(w);
}

/* Returns true when the delta added a ban (open connections to check). */
static bool apply_bans(struct pt_worker *w, const uint8_t *p, size_t n)
{
    struct pt_ban_change *ch;
    size_t nch;
    uint64_t version;
    if (pt_snap_bans_decode(p, n, &version, &ch, &nch) != 0 || w->bans == NULL)
        pt_panic(__FILE__, __LINE__, "bad ban delta from the daemon");
    bool added = false;
    for (size_t i = 0; i < nch; i++) {
        if (ch[i].remove) {
            pt_banlist_remove(w->bans, &ch[i].ban.net);
        } else {
            pt_banlist_add(w->bans, &ch[i].ban);
            added = true;
        }
    }
    pt_snap_bans_free(ch, nch);
    if (version > w->version)
        w->version = version;
    return added;
}

/* With a large configuration, a delta applied while connections hold the
 * snapshot copies its domain array and route slots (about 12 MiB at 100,000
 * domains). From glibc's default mmap threshold up, each copy would be fresh
 * pages, zeroed by the kernel one fault at a time, and given back when the
 * old snapshot goes: keep such blocks on the heap for reuse instead (the
 * worker's memory is mostly configuration by then). bench/delta_bench.c
 * measures it: p99 4.1 ms of CPU per held write at 100,000 domains before,
 * 1.2 ms after. */
static void tune_malloc(const struct pt_snapshot *s)
{
    static bool done;
    if (done || s->n_domains < 10000)
        return;
    done = true;
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
}

/* A delta that does not fit this worker's configuration changed nothing
 * (pt_delta_apply checks first): the worker goes on with what it has and
 * asks for the whole configuration again. */
static void resync(struct pt_worker *w, const char *why, uint64_t version)
{
    pt_log(PT_LOG_ERROR, "configuration delta %llu %s (at version %llu): asking the daemon "
                         "for the whole configuration",
           (unsigned long long)version, why, (unsigned long long)w->version);
    w->resyncing = true;
    send_frame(w, PT_IPC_RESYNC, NULL, 0);
}

static void apply_config(struct pt_worker *w, const uint8_t *p, size_t n)
{
    struct pt_delta d;
    bool backends_changed;
    if (w->resyncing)
        return; /* the snapshot it asked for supersedes it */
    if (w->snap == NULL || pt_delta_decode(p, n, &d) != 0)
        pt_panic(__FILE__, __LINE__, "undecodable configuration delta from the daemon");
    bool refuse = w->refuse_every > 0 && d.version % w->refuse_every == 0 &&
                  d.version > w->refused_delta;
    if (refuse)
        w->refused_delta = d.version;
    int rc = d.version <= w->version ? PT_EVERSION
             : refuse                ? PT_ECONFLICT
                                     : pt_delta_apply(&w->snap, &d, &backends_changed);
    if (rc != 0) {
        resync(w, rc == PT_EVERSION ? "is not newer" : "does not apply", d.version);
        pt_delta_clear(&d);
        return;
    }
    if (pt_delta_has(&d, PT_DELTA_CERT)) {
        const char **ids = pt_xcalloc(d.n, sizeof(*ids));
        size_t n_ids = 0;
        for (size_t i = 0; i < d.n; i++)
            if (d.v[i].kind == PT_DELTA_CERT)
                ids[n_ids++] = d.v[i].name;
        pt_tls_update(w->tls, w->snap, ids, n_ids);
        free(ids);
    }
    if (pt_delta_has(&d, PT_DELTA_TICKET))
        pt_tls_set_ticket_key(w->snap->settings.ticket_key);
    bool streams = pt_delta_has(&d, PT_DELTA_STREAMS);
    pt_delta_clear(&d);
    tune_malloc(w->snap);
    w->version = w->snap->version;
    if (backends_changed)
        pt_health_configure(&w->health, w->snap);
    if (streams) { /* listeners of new ports came ahead of the delta */
        prune_stream_ls(w);
        if (w->accepting && !w->paused)
            start_polling(w);
    }
}

static void ipc_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    static char space[65536];
    *buf = uv_buf_init(space, sizeof(space));
}

static void stop_offering(struct pt_worker *w)
{
    if (w->handover_fd < 0)
        return;
    uv_close((uv_handle_t *)&w->handover, close_cb_noop);
    close(w->handover_fd); /* uv_poll does not own the fd */
    w->handover_fd = -1;
}

static void on_orphan_timeout(uv_timer_t *t)
{
    struct pt_worker *w = t->data;
    stop_offering(w);
    begin_drain(w, "no new daemon took the listeners");
}

static void on_handover(uv_poll_t *p, int status, int events)
{
    struct pt_worker *w = p->data;
    (void)events;
    if (status < 0)
        return;
    int fds[PT_HANDOVER_MAX_FDS];
    size_t n = 0;
    for (size_t i = 0; i < w->n_listeners && n < PT_HANDOVER_MAX_FDS; i++)
        if (w->listeners[i].open)
            fds[n++] = w->listeners[i].fd;
    int rc = pt_handover_give(w->handover_fd, fds, n);
    if (rc == PT_EINVAL) {
        pt_log(PT_LOG_WARN, "refused to hand the listeners to a process of another user");
        return;
    }
    if (rc != 0)
        return;
    /* The new daemon holds the sockets now: connections that arrive from here
     * on wait in the same accept queues for its workers. */
    stop_offering(w);
    begin_drain(w, "listeners handed to a new daemon");
}

/* The daemon died: keep serving, and offer the listening sockets to the next
 * daemon for up to the grace period, so a restart refuses nobody. */
static void orphaned(struct pt_worker *w)
{
    if (w->draining)
        return;
    /* Stream listeners are not handed over: the next daemon binds them
     * again from its store, so they must be free at once. */
    while (w->n_stream_ls)
        close_stream_l(w, w->n_stream_ls - 1);
    int fd = PT_EINVAL;
    if (w->state_dir && w->accepting) {
        struct sockaddr_un sa;
        socklen_t len;
        pt_handover_addr(w->state_dir, w->id, &sa, &len);
        fd = pt_handover_listen(&sa, len);
    }
    if (fd < 0 || uv_poll_init(w->loop, &w->handover, fd) != 0) {
        if (fd >= 0)
            close(fd);
        begin_drain(w, "daemon gone");
        return;
    }
    w->handover_fd = fd;
    w->handover.data = w;
    uv_poll_start(&w->handover, UV_READABLE, on_handover);
    uint64_t grace = w->snap ? w->snap->settings.grace_ms : 0;
    pt_log(PT_LOG_WARN,
           "daemon gone: still accepting; the listeners wait %llu ms for a new daemon",
           (unsigned long long)grace);
    uv_timer_start(&w->drain_timer, on_orphan_timeout, grace, 0);
}

static void on_ipc_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct pt_worker *w = st->data;
    if (n < 0) {
        w->ipc_open = false;
        uv_close((uv_handle_t *)&w->ipc, close_cb_noop);
        orphaned(w);
        return;
    }
    pt_ipc_rx_push(&w->rx, buf->base, (size_t)n);
    uint32_t type;
    const uint8_t *p;
    size_t plen;
    int rc;
    uint64_t before = w->version;
    bool sweep = false;
    while ((rc = pt_ipc_rx_next(&w->rx, &type, &p, &plen)) != 0) {
        if (rc < 0)
            pt_panic(__FILE__, __LINE__, "malformed frame from the daemon");
        if (type == PT_IPC_SNAPSHOT) {
            apply_snapshot(w, p, plen);
            w->resyncing = false;
            sweep = true;
        } else if (type == PT_IPC_BANS && w->resyncing) {
            continue; /* the snapshot asked for holds them */
        } else if (type == PT_IPC_BANS) {
            sweep |= apply_bans(w, p, plen);
        } else if (type == PT_IPC_CONFIG) {
            apply_config(w, p, plen);
        } else if (type == PT_IPC_READY) {
            if (w->snap == NULL || plen != 0)
                pt_panic(__FILE__, __LINE__, "ready before any snapshot");
            w->caught_up = true;
            start_accepting(w);
        } else if (type == PT_IPC_LISTENER) {
            add_stream_l(w, p, plen);
        } else if (type == PT_IPC_STOP) {
            begin_drain(w, "stop requested");
        } else {
            pt_panic(__FILE__, __LINE__, "unexpected frame type from the daemon");
        }
    }
    /* Bans reach connections already open (as a firewall's would): one walk
     * for every frame this read brought, before the version is acked, so
     * "applied" means the banned clients are gone. */
    if (sweep && w->tracked.n) {
        size_t cut = pt_conntrack_sweep(&w->tracked, banned_open, w);
        if (cut)
            pt_log(PT_LOG_INFO, "bans: cut %zu open connections", cut);
    }
    if (w->version != before) {
        uint64_t v = w->version;
        send_frame(w, PT_IPC_ACK, &v, 1);
    }
}

static void on_signal(uv_signal_t *h, int sig)
{
    struct pt_worker *w = h->data;
    stop_offering(w);
    begin_drain(w, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void set_limits(struct pt_worker *w)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    uint64_t fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
    w->max_conns = fds > FDS_RESERVED * 2 ? (fds - FDS_RESERVED) / FDS_PER_CONN : 16;
    const char *env = getenv("PORTIER_MAX_CONNS"); /* tests of the limit */
    if (env && atoi(env) > 0 && (uint64_t)atoi(env) < w->max_conns)
        w->max_conns = (uint64_t)atoi(env);
    env = getenv("PORTIER_REFUSE_DELTAS"); /* tests of the resync path */
    if (env && atoi(env) > 0)
        w->refuse_every = (uint64_t)atoi(env);
}

int pt_worker_main(int argc, char **argv)
{
    struct pt_worker wk;
    struct pt_worker *w = &wk;
    memset(w, 0, sizeof(*w));
    if (argc < 4)
        pt_panic(__FILE__, __LINE__, "worker started without its arguments");
    w->id = (unsigned)atoi(argv[2]);
    const char *kinds = strcmp(argv[3], "-") == 0 ? "" : argv[3];
    w->state_dir = argc > 4 ? argv[4] : NULL;
    w->handover_fd = -1;
    char role[32];
    snprintf(role, sizeof(role), "worker %u", w->id);
    pt_log_role(role);
    signal(SIGPIPE, SIG_IGN);
    set_limits(w);
    access_log_open(w);

    w->loop = uv_default_loop();
    pt_conntrack_init(&w->tracked);
    uv_pipe_init(w->loop, &w->ipc, 1); /* ipc: stream listeners come with frames */
    w->ipc.data = w;
    if (uv_pipe_open(&w->ipc, PT_WORKER_FD_IPC) != 0)
        pt_panic(__FILE__, __LINE__, "fd 3 is not the daemon socket");
    w->ipc_open = true;
    uv_read_start((uv_stream_t *)&w->ipc, ipc_alloc, on_ipc_read);

    w->n_listeners = strlen(kinds);
    w->listeners = pt_xcalloc(w->n_listeners, sizeof(*w->listeners));
    for (size_t i = 0; i < w->n_listeners; i++)
        listener_init(w, &w->listeners[i], PT_WORKER_FD_LISTEN0 + (int)i, kinds[i]);

    pt_health_init(&w->health, w->loop);
    uv_timer_init(w->loop, &w->stats_timer);
    uv_timer_init(w->loop, &w->drain_timer);
    uv_timer_init(w->loop, &w->resume_timer);
    w->stats_timer.data = w->drain_timer.data = w->resume_timer.data = w;
    uv_timer_start(&w->stats_timer, on_stats, STATS_INTERVAL_MS, STATS_INTERVAL_MS);
    uv_signal_init(w->loop, &w->sigterm);
    uv_signal_init(w->loop, &w->sigint);
    w->sigterm.data = w->sigint.data = w;
    uv_signal_start(&w->sigterm, on_signal, SIGTERM);
    uv_signal_start(&w->sigint, on_signal, SIGINT);

    uv_run(w->loop, UV_RUN_DEFAULT);

    /* Drained (or the grace period is over): whatever is still open is cut. */
    pt_worker_access_flush(w);
    pt_wbuf_free(&w->alog);
    pt_tally_free(&w->tally);
    close_all(w);
    uv_run(w->loop, UV_RUN_NOWAIT);
    pt_snap_unref(w->snap);
    pt_banlist_free(w->bans);
    pt_tls_free(w->tls);
    pt_ipc_rx_free(&w->rx);
    free(w->listeners);
    free(w->stream_ls);
    while (w->stream_counts) {
        struct pt_stream_count *c = w->stream_counts;
        w->stream_counts = c->next;
        free(c);
    }
    return 0;
}
