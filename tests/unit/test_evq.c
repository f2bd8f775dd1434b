/* The relay's edge-triggered event queue (worker/evq.c) on a real libuv
 * loop and real sockets: an edge is reported once per change, a socket is
 * added once and leaves with its close, again runs are in order, once, on
 * the next loop turn, and forgetting one keeps the others. */
#include "worker/evq.h"

#include <criterion/criterion.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct rec {
    struct pt_evq_item it;
    struct pt_evq *q;
    unsigned calls;
    uint32_t last, all;
    int order[8];
    int *log; /* shared order log */
    int *n_log;
    int id;
    bool ask_again; /* asks again from its own run */
    struct rec *forget; /* forgets this one's again run from its own run */
};

static void on_ready(struct pt_evq_item *it, uint32_t events)
{
    struct rec *r = (struct rec *)it;
    r->calls++;
    r->last = events;
    r->all |= events;
    if (r->log)
        r->log[(*r->n_log)++] = r->id;
    if (r->ask_again)
        pt_evq_again(r->q, it);
    if (r->forget)
        pt_evq_forget(r->q, &r->forget->it);
}

struct rig {
    uv_loop_t loop;
    struct pt_evq q;
    int fd, peer;
};

static void rig_open(struct rig *g)
{
    int sv[2];
    memset(g, 0, sizeof(*g));
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    g->fd = sv[0];
    g->peer = sv[1];
    cr_assert_eq(uv_loop_init(&g->loop), 0);
    cr_assert_eq(pt_evq_init(&g->q, &g->loop), 0);
}

static void rig_close(struct rig *g)
{
    pt_evq_close(&g->q);
    uv_run(&g->loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&g->loop), 0);
    if (g->fd >= 0)
        close(g->fd);
    close(g->peer);
}

static void turn(struct rig *g)
{
    uv_run(&g->loop, UV_RUN_NOWAIT);
}

static struct rec rec_new(struct pt_evq *q)
{
    struct rec r;
    memset(&r, 0, sizeof(r));
    r.it.ready = on_ready;
    r.q = q;
    return r;
}

Test(evq, an_edge_is_reported_once_per_change)
{
    struct rig g;
    rig_open(&g);
    struct rec r = rec_new(&g.q);
    cr_assert_eq(pt_evq_add(&g.q, g.fd, &r.it), 0);
    turn(&g);
    cr_assert_eq(r.calls, 1, "the add reports what is due: writable");
    cr_assert(r.last & EPOLLOUT);
    cr_assert_not(r.last & EPOLLIN);
    turn(&g);
    turn(&g);
    cr_assert_eq(r.calls, 1, "no change, no event (not level-triggered)");
    cr_assert_eq(write(g.peer, "ab", 2), 2);
    turn(&g);
    cr_assert_eq(r.calls, 2);
    cr_assert(r.last & EPOLLIN);
    turn(&g);
    cr_assert_eq(r.calls, 2, "bytes left unread do not wake it again");
    cr_assert_eq(write(g.peer, "c", 1), 1);
    turn(&g);
    cr_assert_eq(r.calls, 3, "more bytes are a new edge");
    cr_assert_eq(shutdown(g.peer, SHUT_WR), 0);
    turn(&g);
    cr_assert_eq(r.calls, 4);
    cr_assert(r.last & EPOLLRDHUP, "the peer's half-close is signalled");
    cr_assert_eq(g.q.dispatched, 4);
    rig_close(&g);
}

/* A rig with its socket added and the add's first edge delivered. */
static void rig_added(struct rig *g, struct rec *r)
{
    rig_open(g);
    *r = rec_new(&g->q);
    cr_assert_eq(pt_evq_add(&g->q, g->fd, &r->it), 0);
    uv_run(&g->loop, UV_RUN_NOWAIT);
    cr_assert_eq(r->calls, 1);
}

Test(evq, a_closed_socket_leaves_the_instance)
{
    struct rig g;
    struct rec r;
    rig_added(&g, &r);
    cr_assert_eq(write(g.peer, "x", 1), 1);
    close(g.fd); /* before the edge is delivered */
    g.fd = -1;
    unsigned before = r.calls;
    turn(&g);
    cr_assert_eq(r.calls, before, "nothing for a closed socket");
    rig_close(&g);
}

Test(evq, remove_takes_it_out_and_a_second_add_fails_without_it)
{
    struct rig g;
    struct rec r;
    rig_added(&g, &r);
    cr_assert_eq(pt_evq_add(&g.q, g.fd, &r.it), -EEXIST, "added once");
    pt_evq_again(&g.q, &r.it);
    cr_assert_eq(pt_evq_remove(&g.q, g.fd, &r.it), 0);
    cr_assert_eq(write(g.peer, "x", 1), 1);
    unsigned before = r.calls;
    turn(&g);
    cr_assert_eq(r.calls, before, "no edge and no again run after remove");
    cr_assert_eq(pt_evq_remove(&g.q, g.fd, &r.it), -ENOENT);
    rig_close(&g);
}

Test(evq, again_runs_once_in_order_on_the_next_turn)
{
    struct rig g;
    rig_open(&g);
    int log[16], n = 0;
    struct rec r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = rec_new(&g.q);
        r[i].log = log;
        r[i].n_log = &n;
        r[i].id = i;
    }
    pt_evq_again(&g.q, &r[0].it);
    pt_evq_again(&g.q, &r[1].it);
    pt_evq_again(&g.q, &r[0].it); /* twice before the run: once */
    pt_evq_again(&g.q, &r[2].it);
    pt_evq_forget(&g.q, &r[2].it); /* the last: the list's end moves back */
    pt_evq_again(&g.q, &r[3].it);
    pt_evq_forget(&g.q, &r[1].it); /* one in the middle */
    turn(&g);
    cr_assert_eq(n, 2);
    cr_assert_eq(log[0], 0);
    cr_assert_eq(log[1], 3);
    cr_assert_eq(r[0].last, 0, "an again run has no events");
    turn(&g);
    cr_assert_eq(n, 2, "once");
    rig_close(&g);
}

/* A run that closes another connection whose again run is queued behind
 * it (it forgets that one): the forgotten one does not run, the rest do. */
Test(evq, a_run_forgets_one_queued_behind_it)
{
    struct rig g;
    rig_open(&g);
    int log[16], n = 0;
    struct rec r[3];
    for (int i = 0; i < 3; i++) {
        r[i] = rec_new(&g.q);
        r[i].log = log;
        r[i].n_log = &n;
        r[i].id = i;
        pt_evq_again(&g.q, &r[i].it);
    }
    r[0].forget = &r[1];
    r[0].ask_again = true; /* and queues itself again: for the next turn */
    turn(&g);
    cr_assert_eq(n, 2);
    cr_assert_eq(log[0], 0);
    cr_assert_eq(log[1], 2);
    r[0].ask_again = false;
    r[0].forget = NULL;
    turn(&g);
    cr_assert_eq(n, 3);
    cr_assert_eq(log[2], 0);
    cr_assert_eq(r[1].calls, 0);
    rig_close(&g);
}

Test(evq, asking_again_from_the_run_waits_for_the_next_turn)
{
    struct rig g;
    rig_open(&g);
    struct rec r = rec_new(&g.q);
    r.ask_again = true;
    pt_evq_again(&g.q, &r.it);
    turn(&g);
    cr_assert_eq(r.calls, 1, "not run twice in one turn");
    turn(&g);
    cr_assert_eq(r.calls, 2);
    r.ask_again = false;
    turn(&g);
    turn(&g);
    cr_assert_eq(r.calls, 3);
    cr_assert_not(uv_is_active((uv_handle_t *)&g.q.idle), "idle stops with the list empty");
    rig_close(&g);
}

Test(evq, modify_drops_an_interest_and_asking_again_reports_what_is_due)
{
    struct rig g;
    struct rec r;
    rig_added(&g, &r);
    cr_assert_eq(pt_evq_modify(&g.q, g.fd, &r.it, 0), 0);
    cr_assert_eq(write(g.peer, "x", 1), 1);
    turn(&g);
    cr_assert_eq(r.calls, 1, "not watched for input: no edge");
    cr_assert_eq(pt_evq_modify(&g.q, g.fd, &r.it, EPOLLIN | EPOLLRDHUP), 0);
    turn(&g);
    cr_assert_eq(r.calls, 2, "bytes already there are reported when asked again");
    cr_assert_eq(r.last & (EPOLLIN | EPOLLOUT), EPOLLIN, "writability was not asked");
    turn(&g);
    cr_assert_eq(r.calls, 2, "still edge-triggered");
    rig_close(&g);
}
