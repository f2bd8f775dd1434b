/* Logging to stderr, one line per event, prefixed with the process role.
 * Workers and the daemon share stderr (systemd's journal adds timestamps).
 *
 * Log lines carry bytes from the network (SNI, Host, paths, header values,
 * PROXY addresses). So that none of them can end a line early and forge the
 * next one, every writer passes them through pt_log_escape: pt_log escapes
 * the whole message, the JSON access log each string it writes. */
#ifndef PT_LOG_H
#define PT_LOG_H

#include "common/pt.h"

#include <stdarg.h>

enum pt_log_level {
    PT_LOG_ERROR = 0,
    PT_LOG_WARN,
    PT_LOG_INFO,
    PT_LOG_DEBUG,
};

/* Sets the role shown in every line ("daemon", "worker 2"); copied. */
void pt_log_role(const char *role);
void pt_log_level_set(enum pt_log_level max);

/* Whether PORTIER_COMMIT_TRACE=1 is set: the daemon then logs the time of
 * each phase of every configuration write (docs/operations.md). */
bool pt_log_commit_trace(void);

__attribute__((format(printf, 2, 3))) void pt_log(enum pt_log_level lvl,
                                                  const char *fmt, ...);

/* Writes <in>[0..n) to <out> (<size> bytes, NUL-terminated) with control
 * bytes, DEL, backslash and every byte that is not part of a valid UTF-8
 * sequence (overlong forms and surrogates included) as \xHH; valid UTF-8
 * passes as is. Stops before an item that would not fit. Returns the length
 * written. */
size_t pt_log_escape(char *out, size_t size, const void *in, size_t n);

/* A token bucket for messages that a flood could repeat (overload, bad
 * clients): at most <burst> lines, refilled at one per <interval_ms>. */
struct pt_ratelimit {
    uint64_t last_ms;
    uint32_t tokens;
    uint32_t burst;
    uint32_t interval_ms;
    uint64_t suppressed; /* lines dropped since the last one printed */
};

/* Returns true when a line may be printed now (now_ms: a monotonic clock). */
bool pt_ratelimit_ok(struct pt_ratelimit *rl, uint64_t now_ms);

#endif
