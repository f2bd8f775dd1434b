#include "worker/conntrack.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>

/* A stand-in connection: the registry only ever sees the embedded node. */
struct conn {
    struct sockaddr_storage peer;
    int kills;
    struct pt_conntrack ct;
};

static void kill_conn(struct pt_conntrack *ct)
{
    PT_CONNTRACK_OWNER(ct, struct conn, ct)->kills++;
}

static bool banned_is_192(void *arg, const struct sockaddr *sa)
{
    (*(int *)arg)++;
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    return sa->sa_family == AF_INET && (ntohl(in->sin_addr.s_addr) >> 24) == 192;
}

static void set_ip(struct conn *c, const char *ip)
{
    struct sockaddr_in *in = (struct sockaddr_in *)&c->peer;
    in->sin_family = AF_INET;
    cr_assert_eq(inet_pton(AF_INET, ip, &in->sin_addr), 1);
}

Test(conntrack, sweep_cuts_banned_once_and_skips_unknown)
{
    struct pt_conntrack_list l;
    pt_conntrack_init(&l);
    struct conn c[4] = {0};
    set_ip(&c[0], "192.0.2.1");
    set_ip(&c[1], "198.51.100.1");
    set_ip(&c[2], "192.0.2.2");
    set_ip(&c[3], "192.0.2.3");
    for (int i = 0; i < 4; i++)
        pt_conntrack_add(&l, &c[i].ct, i == 3 ? NULL : &c[i].peer, kill_conn);
    cr_expect_eq(l.n, 4);
    int asked = 0;
    cr_expect_eq(pt_conntrack_sweep(&l, banned_is_192, &asked), 2);
    cr_expect_eq(asked, 3, "the connection without a known address is not judged");
    cr_expect_eq(c[0].kills, 1);
    cr_expect_eq(c[1].kills, 0);
    cr_expect_eq(c[2].kills, 1);
    cr_expect_eq(c[3].kills, 0);
    /* Its PROXY header arrived: judged from now on; the cut ones not again. */
    c[3].ct.addr = &c[3].peer;
    asked = 0;
    cr_expect_eq(pt_conntrack_sweep(&l, banned_is_192, &asked), 1);
    cr_expect_eq(c[0].kills, 1, "killed at most once");
    cr_expect_eq(c[3].kills, 1);
    pt_conntrack_remove(&l, &c[1].ct);
    pt_conntrack_remove(&l, &c[1].ct); /* twice is harmless */
    pt_conntrack_remove(&l, &c[0].ct);
    cr_expect_eq(l.n, 2);
    asked = 0;
    pt_conntrack_sweep(&l, banned_is_192, &asked);
    cr_expect_eq(asked, 0, "only live, uncut connections are looked at");
    pt_conntrack_remove(&l, &c[2].ct);
    pt_conntrack_remove(&l, &c[3].ct);
    cr_expect_eq(l.n, 0);
    cr_expect_eq(l.head.next, &l.head);
    struct conn never = {0};
    pt_conntrack_remove(&l, &never.ct); /* never added: fine */
}
