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

/* Length of the valid UTF-8 sequence at <p> (2..4 bytes), or 0. */
static size_t utf8_len(const uint8_t *p, size_t n)
{
    size_t len;
    uint32_t cp;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2, cp = p[0] & 0x1f;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3, cp = p[0] & 0x0f;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4, cp = p[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

size_t pt_log_escape(char *out, size_t size, const void *in, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = in;
    size_t o = 0;
    if (size == 0)
        return 0;
    for (size_t i = 0; i < n;) {
        size_t u = p[i] >= 0x80 ? utf8_len(p + i, n - i) : 0;
        if (u) {
            if (o + u >= size)
                break;
            memcpy(out + o, p + i, u);
            o += u;
            i += u;
        } else if (p[i] < 0x20 || p[i] >= 0x7f || p[i] == '\\') {
            if (o + 4 >= size)
                break;
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[p[i] >> 4];
            out[o++] = hex[p[i] & 15];
            i++;
        } else {
            if (o + 1 >= size)
                break;
            out[o++] = (char)p[i++];
        }
    }
    out[o] = '\0';
    return o;
}

void pt_log(enum pt_log_level lvl, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    if (lvl > log_max)
        return;
    char msg[1024], line[1024];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    int n = snprintf(line, sizeof(line), "portierd[%d] %s: %s: ", (int)getpid(),
                     log_role, names[lvl]);
    size_t len = n > 0 && (size_t)n < sizeof(line) ? (size_t)n : 0;
    /* The message is escaped whole: whatever a caller formats into it, no
     * byte of it can end the line or start a fake one. */
    size_t mlen = (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1;
    len += pt_log_escape(line + len, sizeof(line) - 1 - len, msg, mlen);
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

bool pt_log_commit_trace(void)
{
    const char *v = getenv("PORTIER_COMMIT_TRACE");
    return v && strcmp(v, "1") == 0;
}
