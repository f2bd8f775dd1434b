#include "common/log.h"

#include <time.h>
#include <unistd.h>

/* File-static by necessity: the log sink is process-wide by nature. */
static char log_role[32] = "portierd";
static enum pt_log_level log_max = PT_LOG_INFO;

void pt_log_role(const char *role)
{
    snprintf(log_role, sizeof(log_role), "%s", role);
}

void pt_log_level_set(enum pt_log_level max)
{
    log_max = max;
}

void pt_log(enum pt_log_level lvl, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    if (lvl > log_max)
        return;
    char line[1024];
    int n = snprintf(line, sizeof(line), "portierd[%d] %s: %s: ", (int)getpid(),
                     log_role, names[lvl]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = strnlen(line, sizeof(line) - 2);
    line[len++] = '\n';
    /* One write per line so lines from several processes do not interleave. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

bool pt_ratelimit_ok(struct pt_ratelimit *rl, uint64_t now_ms)
{
    if (rl->burst == 0)
        rl->burst = 5;
    if (rl->interval_ms == 0)
        rl->interval_ms = 1000;
    if (rl->last_ms == 0) {
        rl->last_ms = now_ms;
        rl->tokens = rl->burst;
    }
    uint64_t refill = (now_ms - rl->last_ms) / rl->interval_ms;
    if (refill) {
        rl->tokens = (uint32_t)(rl->tokens + refill > rl->burst ? rl->burst
                                                                : rl->tokens + refill);
        rl->last_ms += refill * rl->interval_ms;
    }
    if (rl->tokens == 0) {
        rl->suppressed++;
        return false;
    }
    rl->tokens--;
    return true;
}
