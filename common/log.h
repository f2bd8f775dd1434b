/* Logging to stderr, one line per event, prefixed with the process role.
 * Workers and the daemon share stderr (systemd's journal adds timestamps). */
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

__attribute__((format(printf, 2, 3))) void pt_log(enum pt_log_level lvl,
                                                  const char *fmt, ...);

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
