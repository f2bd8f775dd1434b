/* The stream routes' listening sockets, bound live by the daemon.
 *
 * The --https/--http listeners are bound once at start (daemon/main.c); a
 * stream route brings its own addresses, added and removed while running.
 * This registry binds each address once (the daemon keeps the capability to
 * bind low ports), names the socket with a listener id that is never reused,
 * and lets the supervisor hand a copy to every worker (SCM_RIGHTS) before the
 * snapshot that uses it. A socket no published snapshot uses is closed here;
 * the workers close their copies when a snapshot no longer names it. One
 * socket per address is shared by all workers (no SO_REUSEPORT): stream
 * connection rates are low, and one socket keeps a live removal simple.
 * Thread-safe: the API thread binds and compiles, the loop thread sends. */
#ifndef PT_LISTENERS_H
#define PT_LISTENERS_H

#include "common/pt.h"

#include <sys/socket.h>

struct pt_listeners;

/* Binds and listens on <sa> (non-blocking, close-on-exec, SO_REUSEADDR,
 * IPV6_V6ONLY for IPv6, SO_REUSEPORT when asked). Returns the socket, or -1
 * with "cannot listen on <text>: <reason>" in <why>. */
int pt_listeners_bind(const struct sockaddr *sa, socklen_t len, bool reuseport,
                      const char *text, char *why, size_t size);

/* For a listener whose clients speak first (TLS): accept4 returns a
 * connection only once its first bytes are there (TCP_DEFER_ACCEPT), or
 * after <secs> seconds of silence, so the worker reads it at once without
 * waiting for readiness. Returns 0 or -1 (errno); the socket stays usable. */
int pt_listeners_client_first(int fd, int secs);

struct pt_listeners *pt_listeners_new(void);
void pt_listeners_free(struct pt_listeners *r); /* closes every socket; NULL is fine */

/* Starts compiling a snapshot: from now on nothing counts as used until
 * pt_listeners_get marks it. */
void pt_listeners_begin(struct pt_listeners *r);

/* The id of the socket on <sa>, bound now if there is none yet; with <use>,
 * marks it used by the snapshot being compiled. Returns 0 with *lid, or
 * PT_EIO with <why> (address in use, permission denied...). */
int pt_listeners_get(struct pt_listeners *r, const struct sockaddr *sa, socklen_t len,
                     bool use, uint32_t *lid, char *why, size_t size);

/* The highest id given out so far (0: none). */
uint32_t pt_listeners_lid_max(struct pt_listeners *r);

/* After a snapshot is published: closes the sockets it does not use. */
void pt_listeners_sweep(struct pt_listeners *r);

/* Calls <cb> for each socket with an id above <after>, in id order, with a
 * duplicate of the socket (the callee owns it). Returns the highest id seen
 * (<after> when none). */
uint32_t pt_listeners_each_after(struct pt_listeners *r, uint32_t after,
                                 void (*cb)(void *arg, uint32_t lid, int fd), void *arg);

#endif
