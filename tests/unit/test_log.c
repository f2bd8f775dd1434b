/* The log writers against forged lines: pt_log (stderr) and the JSON access
 * log (pt_worker_access), and the one escaping function both use. */
#include "common/log.h"
#include "worker/worker.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <unistd.h>

static const char *esc(const char *in, size_t n)
{
    static char out[256];
    pt_log_escape(out, sizeof(out), in, n);
    return out;
}
#define ESC(lit) esc(lit, sizeof(lit) - 1)

Test(log, escape_table)
{
    cr_expect_str_eq(ESC("a.test"), "a.test");
    cr_expect_str_eq(ESC("a\nb"), "a\\x0ab");
    cr_expect_str_eq(ESC("\r\t\x1b[31m"), "\\x0d\\x09\\x1b[31m");
    cr_expect_str_eq(ESC("x\x7f"), "x\\x7f");
    cr_expect_str_eq(ESC("a\0b"), "a\\x00b");
    cr_expect_str_eq(ESC("c:\\x0a"), "c:\\x5cx0a", "a literal \\x0a cannot pass for an escape");
    /* valid UTF-8 passes, whatever is not UTF-8 does not */
    cr_expect_str_eq(ESC("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
                     "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    cr_expect_str_eq(ESC("\xc3"), "\\xc3", "truncated sequence");
    cr_expect_str_eq(ESC("\xc3("), "\\xc3(", "bad continuation");
    cr_expect_str_eq(ESC("\xc0\x8a"), "\\xc0\\x8a", "overlong newline");
    cr_expect_str_eq(ESC("\xe0\x80\x8a"), "\\xe0\\x80\\x8a", "overlong, 3 bytes");
    cr_expect_str_eq(ESC("\xed\xa0\x80"), "\\xed\\xa0\\x80", "surrogate");
    cr_expect_str_eq(ESC("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80", "over U+10FFFF");
    cr_expect_str_eq(ESC("\xff\xfe"), "\\xff\\xfe");
    /* bounded: stops before an item that does not fit, always terminated */
    char small[6];
    cr_expect_eq(pt_log_escape(small, sizeof(small), "ab\ncd", 5), 2);
    cr_expect_str_eq(small, "ab");
    cr_expect_eq(pt_log_escape(small, sizeof(small), "\xc3\xa9\xc3\xa9\xc3\xa9", 6), 4);
    cr_expect_eq(pt_log_escape(small, 0, "x", 1), 0);
}

/* Runs pt_log with stderr on a pipe and returns what it wrote. */
static char *capture(const char *sni, size_t sni_len)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    pt_log(PT_LOG_WARN, "backend 'b': no server reachable for '%.*s'", (int)sni_len, sni);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    static char buf[4096];
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    cr_assert_gt(n, 0);
    buf[n] = '\0';
    return buf;
}

Test(log, stderr_line_cannot_be_forged)
{
    static const char sni[] = "x\nportierd[1] daemon: error: forged\r\xff\0tail";
    pt_log_role("worker 0");
    char *out = capture(sni, sizeof(sni) - 1);
    char *nl = strchr(out, '\n');
    cr_assert_not_null(nl);
    cr_expect_eq(nl[1], '\0', "one line only: %s", out);
    /* (%.*s stops at the NUL: printf's rule, not a way to forge a line) */
    cr_expect(strstr(out, "x\\x0aportierd[1] daemon: error: forged\\x0d\\xff'\n") != NULL,
              "%s", out);
    cr_expect(strncmp(out, "portierd[", 9) == 0 && strstr(out, " worker 0: warn: "), "%s", out);
}

Test(log, access_log_json_cannot_be_forged)
{
    struct pt_worker w;
    memset(&w, 0, sizeof(w));
    struct pt_snapshot snap;
    memset(&snap, 0, sizeof(snap));
    snap.settings.access_log = true;
    w.snap = &snap;
    struct sockaddr_in cli = {.sin_family = AF_INET, .sin_port = htons(4000)};
    inet_pton(AF_INET, "192.0.2.1", &cli.sin_addr);
    static const char sni[] = "a\n{\"forged\":1}\"\\\xc3\xa9\xff";
    struct pt_access a = {.client = (struct sockaddr *)&cli,
                          .listener = (struct sockaddr *)&cli,
                          .sni = sni,
                          .sni_len = sizeof(sni) - 1,
                          .mode = "passthrough",
                          .result = "ok"};
    pt_worker_access(&w, &a);
    pt_wbuf_u8(&w.alog, 0);
    const char *line = (const char *)w.alog.data;
    const char *nl = strchr(line, '\n');
    cr_assert_not_null(nl);
    cr_expect_eq(nl[1], '\0', "one line only: %s", line);
    json_error_t err;
    json_t *j = json_loadb(line, (size_t)(nl - line), 0, &err);
    cr_assert_not_null(j, "valid JSON: %s (%s)", line, err.text);
    cr_expect_str_eq(json_string_value(json_object_get(j, "sni")),
                     "a\\x0a{\"forged\":1}\"\\x5c\xc3\xa9\\xff",
                     "the same escaping as stderr, then JSON quoting");
    cr_expect_null(json_object_get(j, "forged"));
    json_decref(j);
    pt_wbuf_free(&w.alog);
}
