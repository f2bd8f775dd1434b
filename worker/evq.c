/* The relay's edge-triggered event queue; see evq.h. */
#include "worker/evq.h"

#include <errno.h>
#include <unistd.h>

#define BATCH 64
/* Batches per wakeup of the loop: past it, the rest waits one loop turn so
 * that timers, accepts and the HTTP engine get their share. */
#define BATCHES 16

static void on_poll(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    pt_evq_dispatch(p->data);
}

static void run_again(struct pt_evq *q)
{
    /* Only the runs asked before now (an older turn): one asked again
     * during its run waits for the next turn (the loop polls meanwhile).
     * Taken off the list one at a time, so that a run may forget another
     * one queued behind it (it closed that connection): that one is simply
     * not there any more. */
    q->turn++;
    while (q->again && q->again->turn != q->turn) {
        struct pt_evq_item *it = q->again;
        q->again = it->next;
        if (q->again == NULL)
            q->again_end = &q->again;
        it->next = NULL;
        it->again = false;
        it->ready(it, 0);
    }
    if (!q->again)
        uv_idle_stop(&q->idle);
}

static void on_idle(uv_idle_t *h)
{
    run_again(h->data);
}

int pt_evq_init(struct pt_evq *q, uv_loop_t *loop)
{
    *q = (struct pt_evq){.fd = -1};
    q->again_end = &q->again;
    q->fd = epoll_create1(EPOLL_CLOEXEC);
    if (q->fd < 0)
        return -errno;
    int rc = uv_poll_init(loop, &q->poll, q->fd);
    if (rc != 0) {
        close(q->fd);
        q->fd = -1;
        return rc;
    }
    uv_idle_init(loop, &q->idle);
    q->poll.data = q->idle.data = q;
    uv_poll_start(&q->poll, UV_READABLE, on_poll);
    return 0;
}

void pt_evq_close(struct pt_evq *q)
{
    if (q->fd < 0)
        return;
    uv_close((uv_handle_t *)&q->poll, NULL);
    uv_close((uv_handle_t *)&q->idle, NULL);
    close(q->fd); /* uv_poll does not own it */
    q->fd = -1;
    q->again = NULL;
    q->again_end = &q->again;
}

int pt_evq_add(struct pt_evq *q, int fd, struct pt_evq_item *it)
{
    struct epoll_event ev = {.events = PT_EVQ_ALL | EPOLLET, .data.ptr = it};
    return epoll_ctl(q->fd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

int pt_evq_modify(struct pt_evq *q, int fd, struct pt_evq_item *it, uint32_t events)
{
    struct epoll_event ev = {.events = events | EPOLLET, .data.ptr = it};
    return epoll_ctl(q->fd, EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : -errno;
}

int pt_evq_remove(struct pt_evq *q, int fd, struct pt_evq_item *it)
{
    pt_evq_forget(q, it);
    return epoll_ctl(q->fd, EPOLL_CTL_DEL, fd, NULL) == 0 ? 0 : -errno;
}

void pt_evq_again(struct pt_evq *q, struct pt_evq_item *it)
{
    if (it->again)
        return;
    it->again = true;
    it->next = NULL;
    if (!q->again)
        uv_idle_start(&q->idle, on_idle);
    *q->again_end = it;
    q->again_end = &it->next;
    it->turn = q->turn;
}

void pt_evq_forget(struct pt_evq *q, struct pt_evq_item *it)
{
    if (!it->again)
        return;
    struct pt_evq_item **p = &q->again;
    while (*p != it)
        p = &(*p)->next;
    *p = it->next;
    if (q->again_end == &it->next)
        q->again_end = p;
    it->next = NULL;
    it->again = false;
    if (!q->again)
        uv_idle_stop(&q->idle);
}

void pt_evq_dispatch(struct pt_evq *q)
{
    struct epoll_event evs[BATCH];
    for (int b = 0; b < BATCHES; b++) {
        int n;
        do
            n = epoll_wait(q->fd, evs, BATCH, 0);
        while (n < 0 && errno == EINTR);
        for (int i = 0; i < n; i++) {
            struct pt_evq_item *it = evs[i].data.ptr;
            q->dispatched++;
            it->ready(it, evs[i].events);
        }
        if (n < BATCH)
            break;
    }
}
