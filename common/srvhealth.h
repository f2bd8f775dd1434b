/* Backend server health as workers report it to the daemon (in STATS) and
 * as the daemon shows it (API, /metrics).
 *
 * Each worker keeps its own memory of servers that failed (worker/health.h);
 * the daemon merges the workers' views: per (backend, server) the state of
 * the most recent change any worker saw, and the failures summed. */
#ifndef PT_SRVHEALTH_H
#define PT_SRVHEALTH_H

#include "common/cursor.h"
#include "common/wbuf.h"

#define PT_SRVHEALTH_MAX 65536 /* entries in one report */

struct pt_srvhealth {
    char backend[64];
    char server[272];    /* "host:port" as configured */
    bool up;
    uint32_t fails;      /* consecutive failures, as of the last change */
    uint64_t failures;   /* connects and probes that failed */
    uint64_t changed_ms; /* wall clock ms of the last change, 0: never failed */
};

struct pt_srvhealth_list {
    struct pt_srvhealth *v; /* owned */
    size_t n;
};

/* Appends one entry of a report (the count is written by the caller). */
void pt_srvhealth_put(struct pt_wbuf *b, const struct pt_srvhealth *e);

/* Reads a report (u32 n, n entries) from <c> into <out> (replaced).
 * Returns 0 or PT_EMALFORMED (<out> left empty). */
int pt_srvhealth_read(struct pt_cursor *c, struct pt_srvhealth_list *out);

/* Merges <from> into <into>: entries are matched by backend and server. */
void pt_srvhealth_merge(struct pt_srvhealth_list *into, const struct pt_srvhealth_list *from);

void pt_srvhealth_free(struct pt_srvhealth_list *l);

#endif
