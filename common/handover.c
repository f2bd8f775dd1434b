#include "common/handover.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

/* The payload next to the descriptors: a tag and the count, so a taker can
 * tell a hand-over from anything else that answers on that name. */
#define HANDOVER_TAG 0x50544830u /* "PTH0" */

struct handover_msg {
    uint32_t tag;
    uint32_t n;
};

void pt_handover_addr(const char *state_dir, unsigned slot, struct sockaddr_un *sa,
                      socklen_t *len)
{
    /* FNV-1a: the name only has to tell state directories apart. */
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)state_dir; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    int n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "portier-handover/%016llx/%u",
                     (unsigned long long)h, slot);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

int pt_handover_listen(const struct sockaddr_un *sa, socklen_t len)
{
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return PT_EIO;
    if (bind(fd, (const struct sockaddr *)sa, len) != 0) {
        int e = errno;
        close(fd);
        return e == EADDRINUSE ? PT_EINUSE : PT_EIO;
    }
    if (listen(fd, 4) != 0) {
        close(fd);
        return PT_EIO;
    }
    return fd;
}

int pt_handover_give(int lfd, const int *fds, size_t n)
{
    PT_ASSERT(n <= PT_HANDOVER_MAX_FDS);
    int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? PT_ENEEDMORE
                                                                         : PT_EIO;
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 ||
        (cred.uid != 0 && cred.uid != geteuid())) {
        close(c);
        return PT_EINVAL;
    }
    struct handover_msg m = {HANDOVER_TAG, (uint32_t)n};
    struct iovec iov = {&m, sizeof(m)};
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int) * PT_HANDOVER_MAX_FDS)];
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (n > 0) {
        msg.msg_control = ctl.space;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
    }
    /* The taker is blocked in recvmsg: a seqpacket this small never blocks. */
    ssize_t rc = sendmsg(c, &msg, MSG_NOSIGNAL);
    close(c);
    return rc == (ssize_t)sizeof(m) ? 0 : PT_EIO;
}

size_t pt_handover_take(const struct sockaddr_un *sa, socklen_t len, int *fds, size_t max,
                        unsigned timeout_ms)
{
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct timeval tv = {timeout_ms / 1000, (suseconds_t)(timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    size_t got = 0;
    if (connect(fd, (const struct sockaddr *)sa, len) != 0)
        goto out;
    struct handover_msg m;
    struct iovec iov = {&m, sizeof(m)};
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int) * PT_HANDOVER_MAX_FDS)];
    } ctl;
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = ctl.space,
                         .msg_controllen = sizeof(ctl.space)};
    ssize_t rc = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (rc != (ssize_t)sizeof(m))
        goto out;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int tmp[PT_HANDOVER_MAX_FDS];
        memcpy(tmp, CMSG_DATA(cm), k * sizeof(int));
        for (size_t i = 0; i < k; i++) {
            /* Only what the tag announced and the caller has room for. */
            if (m.tag == HANDOVER_TAG && got < max && got < m.n)
                fds[got++] = tmp[i];
            else
                close(tmp[i]);
        }
    }
out:
    close(fd);
    return got;
}
