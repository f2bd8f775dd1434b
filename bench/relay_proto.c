/* relay_proto: a standalone TCP relay to measure what an event model costs per
 * relayed record, outside portier (bench/PROFILE.md, "Passthrough keep-alive: what
 * an event model can give").
 *
 *   relay_proto MODE LISTEN_PORT BACKEND_PORT
 *
 * MODE: lt     epoll level-triggered, one read(2) per readiness event, send(2)
 *              (what libuv gives portier's relay today)
 *       et     epoll edge-triggered, sockets registered once with
 *              EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET, recv/send (what nginx does)
 *       uring  io_uring (SINGLE_ISSUER|DEFER_TASKRUN), multishot recv into a
 *              provided buffer ring, send straight from that buffer, one
 *              io_uring_enter per batch (submit + wait)
 *       uringf uring, and the sockets are registered files (IOSQE_FIXED_FILE: no
 *              fget/fput per operation) and so is the ring's own descriptor
 *       urings uring with a kernel submission thread (SQPOLL, idle after 2 ms;
 *              it excludes DEFER_TASKRUN): it is a thread of the process and
 *              its CPU is counted with the process's
 *       uringw uring, and each wait asks for up to 32 completions within 50 us
 *              (min_wait, kernel 6.12): fewer, bigger batches for some latency
 *       sockmap the relay reads the client's first bytes (the ClientHello, as
 *              portier and nginx's ssl_preread must, to route), dials, sends the
 *              PROXY line, puts both sockets into a BPF sockmap whose SK_SKB
 *              stream-verdict program redirects every skb to the peer socket's
 *              egress, then sends the first bytes on: from there on the bytes
 *              never reach user space. The process only watches for the end
 *              (EPOLLRDHUP, HUP, ERR) and closes both, which loses whatever a
 *              kworker had not yet sent of the last bytes (bench/PROFILE.md: fine
 *              for keep-alive measurements, not for a proxy). Needs root (CAP_BPF
 *              and CAP_NET_ADMIN); raw bpf(2), a hand-assembled program, no libbpf.
 *
 * Every accepted connection dials 127.0.0.1:BACKEND_PORT (blocking connect: on
 * loopback it completes at once), sends a PROXY v1 line as nginx stream does, and
 * relays bytes both ways until either side ends; then both are closed. No
 * half-close, no timeouts: a measuring tool, not a proxy. Backpressure: a
 * direction reads again only once what it read was sent. Raw syscalls and
 * <linux/io_uring.h>: no liburing, so no new package for a bench tool (Debian 12's
 * header lacks kernel 6.12's min_wait field: defined below).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BUF 16384
#define MAXC 4096

static int backend_port;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int listen_on(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (void *)&a, sizeof a) || listen(fd, 4096))
		die("listen");
	return fd;
}

/* Dials the backend for client cfd and sends the PROXY line: fds = {cfd, backend}
 * and 0, or -1 with cfd closed. */
static int dial(int cfd, int *fds)
{
	struct sockaddr_in pa, la;
	socklen_t pl = sizeof pa, ll = sizeof la;
	struct sockaddr_in b = {.sin_family = AF_INET, .sin_port = htons(backend_port)};
	char hdr[128];
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	b.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (void *)&b, sizeof b))
		goto fail;
	getpeername(cfd, (void *)&pa, &pl);
	getsockname(cfd, (void *)&la, &ll);
	int n = snprintf(hdr, sizeof hdr, "PROXY TCP4 127.0.0.1 127.0.0.1 %u %u\r\n",
			 ntohs(pa.sin_port), ntohs(la.sin_port));
	if (write(fd, hdr, n) != n)
		goto fail;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	fcntl(fd, F_SETFL, O_NONBLOCK | O_RDWR);
	fds[0] = cfd;
	fds[1] = fd;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	close(cfd);
	return -1;
}

/* ---- epoll (lt, et) ------------------------------------------------------ */

/* One direction: bytes read from fd[src] waiting to go to fd[!src]. */
struct dir {
	char buf[BUF];
	int off, len;
	int readable; /* et: not yet drained since the last edge */
};

struct econn {
	int fd[2]; /* 0 client, 1 backend */
	struct dir d[2]; /* d[i]: from fd[i] to fd[!i] */
	int writable[2];
	uint32_t mask[2]; /* lt: the events registered for fd[i] */
	int dead;
	struct econn *next_dead;
};

/* Closed in this epoll batch: freed after it, as later events may name them. */
static struct econn *graveyard;

static int ep, et;

static void e_close(struct econn *c)
{
	close(c->fd[0]);
	close(c->fd[1]);
	c->dead = 1;
	c->next_dead = graveyard;
	graveyard = c;
}

static void lt_watch(struct econn *c, int i)
{
	/* fd[i] reads while its direction is empty, and waits for EPOLLOUT while
	 * the other direction has bytes left. */
	struct epoll_event ev;
	ev.events = (c->d[i].len ? 0 : EPOLLIN) | (c->d[!i].len ? EPOLLOUT : 0);
	if (ev.events == c->mask[i])
		return; /* as libuv: epoll_ctl only when the mask changes */
	c->mask[i] = ev.events;
	ev.data.u64 = (uint64_t)(uintptr_t)c | (uint64_t)i;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd[i], &ev);
}

/* Sends what direction i holds; 0 ok (maybe partial), -1 dead. */
static int e_flush(struct econn *c, int i)
{
	struct dir *d = &c->d[i];
	while (d->len) {
		ssize_t n = send(c->fd[!i], d->buf + d->off, d->len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN) {
				c->writable[!i] = 0;
				return 0;
			}
			return -1;
		}
		d->off += n;
		d->len -= n;
	}
	d->off = 0;
	return 0;
}

/* Reads once from fd[i] into its direction and sends it; -1 dead. */
static int e_read(struct econn *c, int i)
{
	struct dir *d = &c->d[i];
	ssize_t n = et ? recv(c->fd[i], d->buf, BUF, 0) : read(c->fd[i], d->buf, BUF);
	if (n == 0)
		return -1;
	if (n < 0) {
		if (errno == EAGAIN) {
			d->readable = 0;
			return 0;
		}
		return -1;
	}
	if (n < BUF)
		d->readable = 0; /* drained: the next segment brings a new edge */
	d->off = 0;
	d->len = n;
	return e_flush(c, i);
}

static void e_accept(int lfd)
{
	for (;;) {
		int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0)
			return;
		struct econn *c = calloc(1, sizeof *c);
		if (dial(cfd, c->fd)) {
			free(c);
			continue;
		}
		c->writable[0] = c->writable[1] = 1;
		for (int i = 0; i < 2; i++) {
			struct epoll_event ev;
			c->mask[i] = EPOLLIN;
			ev.events = et ? EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET : EPOLLIN;
			ev.data.u64 = (uint64_t)(uintptr_t)c | (uint64_t)i;
			epoll_ctl(ep, EPOLL_CTL_ADD, c->fd[i], &ev);
		}
	}
}

static void e_event(struct econn *c, int i, uint32_t ev)
{
	if (c->dead)
		return;
	if (ev & (EPOLLERR | EPOLLHUP)) {
		e_close(c);
		return;
	}
	if (!et) {
		if ((ev & EPOLLOUT) && e_flush(c, !i))
			goto dead;
		if ((ev & EPOLLIN) && !c->d[i].len && e_read(c, i))
			goto dead;
		lt_watch(c, 0);
		lt_watch(c, 1);
		return;
	}
	if (ev & (EPOLLIN | EPOLLRDHUP))
		c->d[i].readable = 1;
	if (ev & EPOLLOUT)
		c->writable[i] = 1;
	/* Run both directions until each is drained or blocked on its writer. */
	int progress = 1;
	while (progress) {
		progress = 0;
		for (int k = 0; k < 2; k++) {
			struct dir *d = &c->d[k];
			if (d->len && c->writable[!k]) {
				if (e_flush(c, k))
					goto dead;
				progress |= !d->len;
			}
			if (!d->len && d->readable) {
				if (e_read(c, k))
					goto dead;
				progress = 1;
			}
		}
	}
	return;
dead:
	e_close(c);
}

/* The loop of the epoll modes and of sockmap: the listener's event carries 0,
 * a connection's its pointer with the side in bit 0. */
static void epoll_loop(int lfd, void (*accept_all)(int), void (*event)(uint64_t, uint32_t),
		       void (*reap)(void))
{
	struct epoll_event evs[1024];
	ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = {.events = EPOLLIN, .data.u64 = 0};
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
	for (;;) {
		int n = epoll_wait(ep, evs, 1024, -1);
		for (int k = 0; k < n; k++) {
			if (!evs[k].data.u64)
				accept_all(lfd);
			else
				event(evs[k].data.u64, evs[k].events);
		}
		reap();
	}
}

static void e_event_u(uint64_t u, uint32_t ev)
{
	e_event((struct econn *)(uintptr_t)(u & ~1ULL), (int)(u & 1), ev);
}

static void e_reap(void)
{
	while (graveyard) {
		struct econn *c = graveyard;
		graveyard = c->next_dead;
		free(c);
	}
}

static void run_epoll(int lfd)
{
	epoll_loop(lfd, e_accept, e_event_u, e_reap);
}

/* ---- io_uring -------------------------------------------------------------- */

#define QD 4096
#define NBUF 4096 /* provided buffers of BUF bytes, one group */
#define BGID 1

enum { OP_ACCEPT = 1, OP_RECV, OP_SEND };

struct uconn {
	int fd[2];
	int refs; /* operations in flight */
	int dead;
	/* Per direction i (fd[i] -> fd[!i]): the buffer being sent, and any
	 * buffers received while it is in flight (at most a few: recv is not
	 * re-armed while one is queued, see u_recv_done). */
	int sending[2]; /* bid or -1 */
	int soff[2], slen[2];
	int qbid[2][8], qlen[2][8], qn[2];
	int recv_armed[2];
	int slot; /* uringf: fd[i] is registered file 2 * slot + i */
};

static int ufd;
static unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
static unsigned sq_local_tail, to_submit;
static struct io_uring_sqe *sqes;
static struct io_uring_cqe *cqes;
static struct io_uring_buf_ring *br;
static char *bufs;
static unsigned br_tail;
static int ulfd;
static int batch_wait; /* uringw */
static int fixed; /* uringf */
static int sqpoll; /* urings */
static unsigned *sq_flags;
static int enter_fd; /* ufd, or its registered index (uringf) */
static unsigned enter_flags;
static int free_slots[MAXC], n_free;

static void files_update(int slot, int a, int b)
{
	int fds[2] = {a, b};
	struct io_uring_rsrc_update u = {.offset = 2 * slot, .data = (uint64_t)(uintptr_t)fds};
	if (syscall(__NR_io_uring_register, ufd, IORING_REGISTER_FILES_UPDATE, &u, 2) != 2)
		die("IORING_REGISTER_FILES_UPDATE");
}

static void sqe_fd(struct io_uring_sqe *s, const int *fd, int slot, int i)
{
	if (fixed) {
		s->fd = 2 * slot + i;
		s->flags |= IOSQE_FIXED_FILE;
	} else {
		s->fd = fd[i];
	}
}

/* Kernel 6.12's layout of the extended wait argument (Debian 12's header has a
 * pad where min_wait_usec is). */
struct getevents_arg {
	uint64_t sigmask;
	uint32_t sigmask_sz;
	uint32_t min_wait_usec;
	uint64_t ts;
};
#define FEAT_MIN_TIMEOUT (1U << 15)

static struct io_uring_sqe *sqe_get(void)
{
	unsigned idx = sq_local_tail & *sq_mask;
	struct io_uring_sqe *s = &sqes[idx];
	memset(s, 0, sizeof *s);
	sq_array[idx] = idx;
	sq_local_tail++;
	to_submit++;
	return s;
}

static void sq_publish(void)
{
	__atomic_store_n(sq_tail, sq_local_tail, __ATOMIC_RELEASE);
}

static uint64_t ud(void *p, int op, int side)
{
	return (uint64_t)(uintptr_t)p | (uint64_t)op << 56 | (uint64_t)side << 60;
}

static void buf_return(int bid)
{
	struct io_uring_buf *b = &br->bufs[br_tail & (NBUF - 1)];
	b->addr = (uint64_t)(uintptr_t)(bufs + (size_t)bid * BUF);
	b->len = BUF;
	b->bid = bid;
	br_tail++;
	__atomic_store_n(&br->tail, (uint16_t)br_tail, __ATOMIC_RELEASE);
}

static void u_recv(struct uconn *c, int i)
{
	struct io_uring_sqe *s = sqe_get();
	s->opcode = IORING_OP_RECV;
	s->ioprio = IORING_RECV_MULTISHOT;
	s->flags = IOSQE_BUFFER_SELECT;
	sqe_fd(s, c->fd, c->slot, i);
	s->buf_group = BGID;
	s->user_data = ud(c, OP_RECV, i);
	c->recv_armed[i] = 1;
	c->refs++;
}

static void u_send(struct uconn *c, int i)
{
	struct io_uring_sqe *s = sqe_get();
	s->opcode = IORING_OP_SEND;
	sqe_fd(s, c->fd, c->slot, !i);
	s->addr = (uint64_t)(uintptr_t)(bufs + (size_t)c->sending[i] * BUF + c->soff[i]);
	s->len = c->slen[i];
	s->msg_flags = MSG_NOSIGNAL;
	s->user_data = ud(c, OP_SEND, i);
	c->refs++;
}

static void u_kill(struct uconn *c)
{
	if (!c->dead) {
		c->dead = 1;
		/* Ends the multishot receives and any send in flight; the fds are
		 * closed when the last completion is in. */
		shutdown(c->fd[0], SHUT_RDWR);
		shutdown(c->fd[1], SHUT_RDWR);
	}
}

static void u_put(struct uconn *c)
{
	if (--c->refs == 0 && c->dead) {
		for (int i = 0; i < 2; i++) {
			if (c->sending[i] >= 0)
				buf_return(c->sending[i]);
			for (int k = 0; k < c->qn[i]; k++)
				buf_return(c->qbid[i][k]);
		}
		if (fixed) {
			files_update(c->slot, -1, -1);
			free_slots[n_free++] = c->slot;
		}
		close(c->fd[0]);
		close(c->fd[1]);
		free(c);
	}
}

static void u_accept(void)
{
	struct io_uring_sqe *s = sqe_get();
	s->opcode = IORING_OP_ACCEPT;
	s->fd = ulfd;
	s->ioprio = IORING_ACCEPT_MULTISHOT;
	s->accept_flags = SOCK_CLOEXEC;
	s->user_data = ud(NULL, OP_ACCEPT, 0);
}

static void u_accepted(int cfd)
{
	struct uconn *c = calloc(1, sizeof *c);
	if (dial(cfd, c->fd)) {
		free(c);
		return;
	}
	c->sending[0] = c->sending[1] = -1;
	if (fixed) {
		if (!n_free) {
			close(c->fd[0]);
			close(c->fd[1]);
			free(c);
			return;
		}
		c->slot = free_slots[--n_free];
		files_update(c->slot, c->fd[0], c->fd[1]);
	}
	u_recv(c, 0);
	u_recv(c, 1);
}

static void u_recv_done(struct uconn *c, int i, int res, unsigned flags)
{
	int ended = !(flags & IORING_CQE_F_MORE);
	if (ended)
		c->recv_armed[i] = 0;
	if (res <= 0 || c->dead) {
		if (flags & IORING_CQE_F_BUFFER)
			buf_return(flags >> IORING_CQE_BUFFER_SHIFT);
		if (res == -ENOBUFS && !c->dead)
			u_recv(c, i); /* ring ran dry: re-arm (a real relay would wait) */
		else
			u_kill(c);
		if (ended)
			u_put(c);
		return;
	}
	int bid = flags >> IORING_CQE_BUFFER_SHIFT;
	if (c->sending[i] < 0) {
		c->sending[i] = bid;
		c->soff[i] = 0;
		c->slen[i] = res;
		u_send(c, i);
	} else if (c->qn[i] < 8) {
		c->qbid[i][c->qn[i]] = bid;
		c->qlen[i][c->qn[i]++] = res;
	} else {
		/* Backpressure bound exceeded; the prototype drops the connection. */
		buf_return(bid);
		u_kill(c);
	}
	if (ended) {
		if (!c->dead)
			u_recv(c, i);
		u_put(c);
	}
}

static void u_send_done(struct uconn *c, int i, int res)
{
	if (res < 0 || c->dead) {
		u_kill(c);
		u_put(c);
		return;
	}
	if (res < c->slen[i]) {
		c->soff[i] += res;
		c->slen[i] -= res;
		u_send(c, i);
		u_put(c);
		return;
	}
	buf_return(c->sending[i]);
	c->sending[i] = -1;
	if (c->qn[i]) {
		c->sending[i] = c->qbid[i][0];
		c->soff[i] = 0;
		c->slen[i] = c->qlen[i][0];
		c->qn[i]--;
		memmove(c->qbid[i], c->qbid[i] + 1, c->qn[i] * sizeof(int));
		memmove(c->qlen[i], c->qlen[i] + 1, c->qn[i] * sizeof(int));
		u_send(c, i);
	}
	u_put(c);
}

static void run_uring(int lfd)
{
	struct io_uring_params p = {0};
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE |
		  (sqpoll ? IORING_SETUP_SQPOLL : IORING_SETUP_DEFER_TASKRUN);
	p.sq_thread_idle = 2;
	p.cq_entries = QD * 4;
	ufd = (int)syscall(__NR_io_uring_setup, QD, &p);
	if (ufd < 0)
		die("io_uring_setup");
	size_t sl = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	size_t cl = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (!(p.features & IORING_FEAT_SINGLE_MMAP))
		die("no IORING_FEAT_SINGLE_MMAP");
	if (batch_wait && !(p.features & FEAT_MIN_TIMEOUT))
		die("no IORING_FEAT_MIN_TIMEOUT");
	if (cl > sl)
		sl = cl;
	char *sq = mmap(0, sl, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ufd,
			IORING_OFF_SQ_RING);
	if (sq == MAP_FAILED)
		die("mmap sq");
	char *cq = sq;
	sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_POPULATE, ufd, IORING_OFF_SQES);
	if (sqes == MAP_FAILED)
		die("mmap sqes");
	sq_tail = (unsigned *)(sq + p.sq_off.tail);
	sq_flags = (unsigned *)(sq + p.sq_off.flags);
	sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	sq_array = (unsigned *)(sq + p.sq_off.array);
	cq_head = (unsigned *)(cq + p.cq_off.head);
	cq_tail = (unsigned *)(cq + p.cq_off.tail);
	cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	sq_local_tail = *sq_tail;

	br = mmap(0, NBUF * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bufs = mmap(0, (size_t)NBUF * BUF, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	if (br == MAP_FAILED || bufs == MAP_FAILED)
		die("mmap buffers");
	struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)br,
				       .ring_entries = NBUF, .bgid = BGID};
	if (syscall(__NR_io_uring_register, ufd, IORING_REGISTER_PBUF_RING, &reg, 1))
		die("IORING_REGISTER_PBUF_RING");
	for (int b = 0; b < NBUF; b++)
		buf_return(b);

	enter_fd = ufd;
	if (fixed) {
		static int none[2 * MAXC];
		memset(none, 0xff, sizeof none);
		if (syscall(__NR_io_uring_register, ufd, IORING_REGISTER_FILES, none, 2 * MAXC))
			die("IORING_REGISTER_FILES");
		for (int k = MAXC - 1; k >= 0; k--)
			free_slots[n_free++] = k;
		struct io_uring_rsrc_update u = {.offset = -1U, .data = (uint64_t)ufd};
		if (syscall(__NR_io_uring_register, ufd, IORING_REGISTER_RING_FDS, &u, 1) != 1)
			die("IORING_REGISTER_RING_FDS");
		enter_fd = (int)u.offset;
		enter_flags = IORING_ENTER_REGISTERED_RING;
	}
	ulfd = lfd;
	u_accept();
	for (;;) {
		sq_publish();
		int r;
		if (batch_wait) {
			struct __kernel_timespec ts = {.tv_sec = 1};
			struct getevents_arg ga = {.min_wait_usec = 50,
						   .ts = (uint64_t)(uintptr_t)&ts};
			r = (int)syscall(__NR_io_uring_enter, enter_fd, to_submit, 32,
					 enter_flags | IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &ga,
					 sizeof ga);
			if (r < 0 && errno == ETIME)
				r = 0;
		} else if (sqpoll) {
			/* The kernel thread submits; wake it if it went idle. */
			unsigned fl = IORING_ENTER_GETEVENTS;
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (__atomic_load_n(sq_flags, __ATOMIC_RELAXED) & IORING_SQ_NEED_WAKEUP)
				fl |= IORING_ENTER_SQ_WAKEUP;
			to_submit = 0;
			r = (int)syscall(__NR_io_uring_enter, enter_fd, 0, 1, fl, NULL, 0);
		} else {
			r = (int)syscall(__NR_io_uring_enter, enter_fd, to_submit, 1,
					 enter_flags | IORING_ENTER_GETEVENTS, NULL, 0);
		}
		if (r < 0 && errno != ETIME && errno != EINTR && errno != EAGAIN && errno != EBUSY)
			die("io_uring_enter");
		if (r > 0)
			to_submit -= (unsigned)r < to_submit ? (unsigned)r : to_submit;
		unsigned head = *cq_head, tail = __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE);
		for (; head != tail; head++) {
			struct io_uring_cqe *e = &cqes[head & *cq_mask];
			int op = (int)(e->user_data >> 56 & 0xf), side = (int)(e->user_data >> 60);
			struct uconn *c = (void *)(uintptr_t)(e->user_data & ((1ULL << 56) - 1));
			if (op == OP_ACCEPT) {
				if (e->res >= 0)
					u_accepted(e->res);
				if (!(e->flags & IORING_CQE_F_MORE))
					u_accept();
			} else if (op == OP_RECV) {
				u_recv_done(c, side, e->res, e->flags);
			} else if (op == OP_SEND) {
				u_send_done(c, side, e->res);
			}
		}
		__atomic_store_n(cq_head, head, __ATOMIC_RELEASE);
	}
}

/* ---- sockmap ---------------------------------------------------------------- */

/* Both sockets of connection slot k sit in the sockmap at 2k (client) and 2k+1
 * (backend); a hash map gives each socket's peer index by its socket cookie
 * (SO_COOKIE), which the program reads with bpf_get_socket_cookie. */
struct sconn {
	int fd[2];
	int slot; /* -1 while the client's first bytes are awaited */
	uint64_t cookie[2];
	int dead;
	struct sconn *next_dead;
};

static int smap, peers;
static struct sconn *s_graveyard;

static long sys_bpf(int cmd, union bpf_attr *a)
{
	return syscall(__NR_bpf, cmd, a, sizeof *a);
}

static int map_create(int type, int ksz, int vsz, int n)
{
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.map_type = type;
	a.key_size = ksz;
	a.value_size = vsz;
	a.max_entries = n;
	int fd = (int)sys_bpf(BPF_MAP_CREATE, &a);
	if (fd < 0)
		die("BPF_MAP_CREATE");
	return fd;
}

static int map_update(int map, const void *k, const void *v)
{
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.map_fd = map;
	a.key = (uint64_t)(uintptr_t)k;
	a.value = (uint64_t)(uintptr_t)v;
	a.flags = BPF_ANY;
	return (int)sys_bpf(BPF_MAP_UPDATE_ELEM, &a);
}

static void map_delete(int map, const void *k)
{
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.map_fd = map;
	a.key = (uint64_t)(uintptr_t)k;
	sys_bpf(BPF_MAP_DELETE_ELEM, &a);
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define MOV64_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV64_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define ADD64_IMM(d, i) INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define JEQ_IMM(d, i, o) INSN(BPF_JMP | BPF_JEQ | BPF_K, d, 0, o, i)
#define STX64(d, s, o) INSN(BPF_STX | BPF_MEM | BPF_DW, d, s, o, 0)
#define LDX32(d, s, o) INSN(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
/* A map's fd into a register: two instructions. */
#define LD_MAP(d, fd) INSN(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd), INSN(0, 0, 0, 0, 0)

/* The stream verdict: look the socket's peer index up by cookie, redirect the
 * skb to that socket's egress (flags 0); unknown sockets drop. */
static int load_verdict(void)
{
	struct bpf_insn prog[] = {
		MOV64_REG(BPF_REG_6, BPF_REG_1),
		CALL(BPF_FUNC_get_socket_cookie),
		STX64(BPF_REG_10, BPF_REG_0, -8),
		LD_MAP(BPF_REG_1, peers),
		MOV64_REG(BPF_REG_2, BPF_REG_10),
		ADD64_IMM(BPF_REG_2, -8),
		CALL(BPF_FUNC_map_lookup_elem),
		JEQ_IMM(BPF_REG_0, 0, 7),
		LDX32(BPF_REG_3, BPF_REG_0, 0),
		MOV64_REG(BPF_REG_1, BPF_REG_6),
		LD_MAP(BPF_REG_2, smap),
		MOV64_IMM(BPF_REG_4, 0),
		CALL(BPF_FUNC_sk_redirect_map),
		EXIT(),
		MOV64_IMM(BPF_REG_0, SK_DROP),
		EXIT(),
	};
	static char log[65536];
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.prog_type = BPF_PROG_TYPE_SK_SKB;
	a.insns = (uint64_t)(uintptr_t)prog;
	a.insn_cnt = sizeof prog / sizeof prog[0];
	a.license = (uint64_t)(uintptr_t)"GPL";
	a.log_buf = (uint64_t)(uintptr_t)log;
	a.log_size = sizeof log;
	a.log_level = 1;
	int fd = (int)sys_bpf(BPF_PROG_LOAD, &a);
	if (fd < 0) {
		fprintf(stderr, "%s\n", log);
		die("BPF_PROG_LOAD");
	}
	return fd;
}

static int s_free[MAXC], s_nfree;

static void s_close(struct sconn *c)
{
	if (c->dead)
		return;
	/* close() takes a socket out of the sockmap; its cookie entry goes by hand. */
	if (c->slot >= 0) {
		map_delete(peers, &c->cookie[0]);
		map_delete(peers, &c->cookie[1]);
		s_free[s_nfree++] = c->slot;
		close(c->fd[1]);
	}
	close(c->fd[0]);
	c->dead = 1;
	c->next_dead = s_graveyard;
	s_graveyard = c;
}

static int send_all(int fd, const char *p, ssize_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EAGAIN) {
			struct timespec ts = {0, 100000};
			nanosleep(&ts, NULL); /* a bench tool: the peer's buffer is empty here */
			continue;
		}
		if (w <= 0)
			return -1;
		p += w;
		n -= w;
	}
	return 0;
}

/* Bytes that reached a socket before it entered the map stay in its receive
 * queue until more arrive (the verdict runs on data_ready): relay them here.
 * In a request/response protocol nothing else is in flight at this point. */
static int s_drain(struct sconn *c, int i)
{
	char buf[BUF];
	int q = 0;
	while (!ioctl(c->fd[i], FIONREAD, &q) && q > 0) {
		ssize_t n = recv(c->fd[i], buf, sizeof buf, MSG_DONTWAIT);
		if (n <= 0)
			return n < 0 && errno == EAGAIN ? 0 : -1;
		if (send_all(c->fd[!i], buf, n))
			return -1;
	}
	return 0;
}

/* The client's first bytes are in: dial, join the map, pass them on. */
static void s_hello(struct sconn *c)
{
	char buf[BUF];
	ssize_t n = recv(c->fd[0], buf, sizeof buf, MSG_DONTWAIT);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0 || !s_nfree) {
		s_close(c);
		return;
	}
	int cfd = c->fd[0];
	if (dial(cfd, c->fd)) {
		c->dead = 1; /* dial closed cfd */
		c->next_dead = s_graveyard;
		s_graveyard = c;
		return;
	}
	c->slot = s_free[--s_nfree];
	for (int i = 0; i < 2; i++) {
		socklen_t l = sizeof c->cookie[i];
		if (getsockopt(c->fd[i], SOL_SOCKET, SO_COOKIE, &c->cookie[i], &l))
			die("SO_COOKIE");
	}
	for (int i = 0; i < 2; i++) {
		uint32_t idx = 2 * c->slot + i, peer = 2 * c->slot + !i;
		if (map_update(peers, &c->cookie[i], &peer))
			die("peers update");
		if (map_update(smap, &idx, &c->fd[i])) {
			perror("sockmap update");
			s_close(c);
			return;
		}
	}
	if (send_all(c->fd[1], buf, n) || s_drain(c, 1) || s_drain(c, 0)) {
		s_close(c);
		return;
	}
	for (int i = 0; i < 2; i++) {
		struct epoll_event ev = {.events = EPOLLRDHUP,
					 .data.u64 = (uint64_t)(uintptr_t)c | (uint64_t)i};
		epoll_ctl(ep, i ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd[i], &ev);
	}
}

static void s_accept(int lfd)
{
	for (;;) {
		int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0)
			return;
		struct sconn *c = calloc(1, sizeof *c);
		c->fd[0] = cfd;
		c->slot = -1;
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP,
					 .data.u64 = (uint64_t)(uintptr_t)c};
		epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev);
	}
}

static void s_event(uint64_t u, uint32_t ev)
{
	struct sconn *c = (struct sconn *)(uintptr_t)(u & ~1ULL);
	if (c->dead)
		return;
	if (c->slot < 0 && (ev & EPOLLIN))
		s_hello(c);
	else
		s_close(c); /* RDHUP, HUP or ERR on either side: no half-close */
}

static void s_reap(void)
{
	while (s_graveyard) {
		struct sconn *c = s_graveyard;
		s_graveyard = c->next_dead;
		free(c);
	}
}

static void run_sockmap(int lfd)
{
	smap = map_create(BPF_MAP_TYPE_SOCKMAP, 4, 4, 2 * MAXC);
	peers = map_create(BPF_MAP_TYPE_HASH, 8, 4, 2 * MAXC);
	int prog = load_verdict();
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.target_fd = smap;
	a.attach_bpf_fd = prog;
	a.attach_type = BPF_SK_SKB_STREAM_VERDICT;
	if (sys_bpf(BPF_PROG_ATTACH, &a))
		die("BPF_PROG_ATTACH");
	for (int k = MAXC - 1; k >= 0; k--)
		s_free[s_nfree++] = k;
	epoll_loop(lfd, s_accept, s_event, s_reap);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: relay_proto lt|et|uring|uringf|urings|uringw|sockmap LISTEN_PORT BACKEND_PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	backend_port = atoi(argv[3]);
	int lfd = listen_on(atoi(argv[2]));
	batch_wait = !strcmp(argv[1], "uringw");
	fixed = !strcmp(argv[1], "uringf");
	sqpoll = !strcmp(argv[1], "urings");
	if (batch_wait || fixed || sqpoll || !strcmp(argv[1], "uring"))
		run_uring(lfd);
	if (!strcmp(argv[1], "sockmap"))
		run_sockmap(lfd);
	et = !strcmp(argv[1], "et");
	if (!et && strcmp(argv[1], "lt"))
		return 2;
	run_epoll(lfd);
	return 0;
}
