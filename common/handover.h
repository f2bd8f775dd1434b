/* Listening sockets handed from orphaned workers to a new daemon.
 *
 * When the daemon dies (crash, OOM killer, kill -9), its workers keep
 * accepting on their listening sockets and offer them on an abstract Unix
 * socket named after the state directory and the worker's slot. A daemon
 * started on the same state directory takes them before it binds anything:
 * the same kernel sockets, so no connection waiting in an accept queue is
 * lost and no client is refused while the daemons change. The orphan then
 * stops accepting and drains. Only the same user (or root) may take them:
 * the peer's credentials are checked (abstract sockets have no file mode). */
#ifndef PT_HANDOVER_H
#define PT_HANDOVER_H

#include "common/pt.h"

#include <sys/socket.h>
#include <sys/un.h>

#define PT_HANDOVER_MAX_FDS 64

/* Fills <sa>/<len> with the abstract address of <slot> for the state
 * directory whose canonical path is <state_dir>. */
void pt_handover_addr(const char *state_dir, unsigned slot, struct sockaddr_un *sa,
                      socklen_t *len);

/* Orphan side: a non-blocking listening socket on <sa>, or a negative
 * pt_err (PT_EINUSE when another process offers that slot already). */
int pt_handover_listen(const struct sockaddr_un *sa, socklen_t len);

/* Orphan side: accepts one taker on <lfd> and sends it <fds>[0..n).
 * Returns 0 when handed over; PT_ENEEDMORE when nobody is waiting;
 * PT_EINVAL when the taker is another user (refused, nothing sent);
 * PT_EIO on a send error. The caller keeps its own copies of <fds>. */
int pt_handover_give(int lfd, const int *fds, size_t n);

/* Daemon side, blocking for at most <timeout_ms>: takes the sockets offered
 * on <sa>. Returns how many were stored in <fds> (close-on-exec; the caller
 * owns them), 0 when nobody offers that slot. */
size_t pt_handover_take(const struct sockaddr_un *sa, socklen_t len, int *fds, size_t max,
                        unsigned timeout_ms);

#endif
