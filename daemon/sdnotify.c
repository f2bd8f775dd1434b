#include "daemon/sdnotify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define READY_POLL_MS 20

bool pt_sdnotify_send(const char *msg)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || (path[0] != '/' && path[0] != '@'))
        return false;
    struct sockaddr_un sa;
    size_t plen = strlen(path);
    if (plen >= sizeof(sa.sun_path))
        return false;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, plen);
    if (path[0] == '@') /* abstract namespace */
        sa.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
    ssize_t rc = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
    close(fd);
    return rc == (ssize_t)strlen(msg);
}

static void on_tick(uv_timer_t *t)
{
    struct pt_sdnotify *n = t->data;
    uint64_t now = uv_now(t->loop);
    if (!n->ready && n->serving(n->arg)) {
        n->ready = true;
        pt_sdnotify_send("READY=1\nSTATUS=every worker serves");
        if (n->watchdog_ms) /* from now on only the watchdog wakes us */
            uv_timer_set_repeat(t, n->watchdog_ms);
    }
    if (n->watchdog_ms && now - n->last_ping_ms >= n->watchdog_ms) {
        n->last_ping_ms = now;
        pt_sdnotify_send("WATCHDOG=1");
    }
    if (n->ready && n->watchdog_ms == 0)
        uv_timer_stop(t);
}

void pt_sdnotify_start(struct pt_sdnotify *n, uv_loop_t *loop, bool (*serving)(void *arg),
                       void *arg)
{
    memset(n, 0, sizeof(*n));
    n->serving = serving;
    n->arg = arg;
    const char *wd = getenv("WATCHDOG_USEC");
    if (wd && getenv("NOTIFY_SOCKET")) {
        char *end;
        errno = 0;
        unsigned long long us = strtoull(wd, &end, 10);
        if (errno == 0 && *end == '\0' && us >= 2000)
            n->watchdog_ms = us / 2000;
    }
    uv_timer_init(loop, &n->timer);
    n->timer.data = n;
    if (getenv("NOTIFY_SOCKET"))
        uv_timer_start(&n->timer, on_tick, 0, READY_POLL_MS);
}

void pt_sdnotify_stop(struct pt_sdnotify *n)
{
    pt_sdnotify_send("STOPPING=1");
    uv_timer_stop(&n->timer);
    if (!uv_is_closing((uv_handle_t *)&n->timer))
        uv_close((uv_handle_t *)&n->timer, NULL);
}
