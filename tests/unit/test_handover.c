#include <criterion/criterion.h>

#include "common/handover.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

struct taker {
    struct sockaddr_un sa;
    socklen_t len;
    int fds[PT_HANDOVER_MAX_FDS];
    size_t max, got;
};

static void *take_thread(void *arg)
{
    struct taker *t = arg;
    t->got = pt_handover_take(&t->sa, t->len, t->fds, t->max, 3000);
    return NULL;
}

/* Gives <fds> on <lfd> once a taker connects (polls up to 3 s). */
static int give_when_ready(int lfd, const int *fds, size_t n)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    if (poll(&p, 1, 3000) != 1)
        return PT_ETIMEOUT;
    return pt_handover_give(lfd, fds, n);
}

static ino_t inode_of(int fd)
{
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    return st.st_ino;
}

Test(handover, names_differ_by_directory_and_slot)
{
    struct sockaddr_un a, b, c;
    socklen_t la, lb, lc;
    pt_handover_addr("/var/lib/portier", 0, &a, &la);
    pt_handover_addr("/var/lib/portier", 1, &b, &lb);
    pt_handover_addr("/var/lib/portier2", 0, &c, &lc);
    cr_assert_eq(a.sun_path[0], '\0', "abstract namespace");
    cr_assert(la != lb || memcmp(a.sun_path, b.sun_path, la - 2) != 0);
    cr_assert(la != lc || memcmp(a.sun_path, c.sun_path, la - 2) != 0);
    pt_handover_addr("/var/lib/portier", 0, &b, &lb);
    cr_assert(la == lb && memcmp(&a, &b, la) == 0, "stable");
}

Test(handover, gives_the_same_sockets)
{
    struct taker t = {.max = PT_HANDOVER_MAX_FDS};
    char dir[64];
    snprintf(dir, sizeof(dir), "/test/handover/%d", (int)getpid());
    pt_handover_addr(dir, 3, &t.sa, &t.len);
    int lfd = pt_handover_listen(&t.sa, t.len);
    cr_assert_geq(lfd, 0);
    cr_assert_eq(pt_handover_listen(&t.sa, t.len), PT_EINUSE, "one offer per slot");
    cr_assert_eq(pt_handover_give(lfd, NULL, 0), PT_ENEEDMORE, "nobody waiting");

    int pipes[2][2];
    cr_assert_eq(pipe(pipes[0]), 0);
    cr_assert_eq(pipe(pipes[1]), 0);
    int give[3] = {pipes[0][0], pipes[1][0], pipes[1][1]};
    pthread_t th;
    pthread_create(&th, NULL, take_thread, &t);
    cr_assert_eq(give_when_ready(lfd, give, 3), 0);
    pthread_join(th, NULL);
    cr_assert_eq(t.got, 3);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_neq(t.fds[i], give[i], "new descriptors");
        cr_assert_eq(inode_of(t.fds[i]), inode_of(give[i]), "the same open files");
        cr_assert(fcntl(t.fds[i], F_GETFD) & FD_CLOEXEC);
    }
    /* Bytes written to the original arrive through the taken copy. */
    cr_assert_eq(write(pipes[0][1], "x", 1), 1);
    char c = 0;
    cr_assert_eq(read(t.fds[0], &c, 1), 1);
    cr_assert_eq(c, 'x');
    close(lfd);
}

Test(handover, taker_keeps_only_what_it_has_room_for)
{
    struct taker t = {.max = 1};
    char dir[64];
    snprintf(dir, sizeof(dir), "/test/handover-room/%d", (int)getpid());
    pt_handover_addr(dir, 0, &t.sa, &t.len);
    int lfd = pt_handover_listen(&t.sa, t.len);
    cr_assert_geq(lfd, 0);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pthread_t th;
    pthread_create(&th, NULL, take_thread, &t);
    cr_assert_eq(give_when_ready(lfd, p, 2), 0);
    pthread_join(th, NULL);
    cr_assert_eq(t.got, 1);
    close(lfd);
}

Test(handover, nobody_offers)
{
    struct sockaddr_un sa;
    socklen_t len;
    pt_handover_addr("/test/handover/nobody-here", 0, &sa, &len);
    int fds[4];
    cr_assert_eq(pt_handover_take(&sa, len, fds, 4, 500), 0);
}
