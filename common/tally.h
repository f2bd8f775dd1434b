/* Traffic counters a worker keeps and the daemon shows in /metrics: per
 * flow (route, mode, backend, server) the connections (passthrough) or
 * requests (offload, port 80) and their bytes, a request latency histogram
 * for the HTTP modes; outcomes by mode and result (the access log's
 * "result": ok, banned, bad_hello, unknown_sni, no_server, an HTTP status
 * such as 400 for a refused request shape, ...); TLS handshakes.
 *
 * Workers fill one from their access records and send it in every STATS
 * frame; the daemon keeps each worker's last one and merges them. Bounded:
 * past PT_TALLY_ROWS_MAX rows, new keys are counted under "(other)". */
#ifndef PT_TALLY_H
#define PT_TALLY_H

#include "common/cursor.h"
#include "common/metrics.h"
#include "common/wbuf.h"

#define PT_TALLY_ROWS_MAX 2048

struct pt_tally_flow {
    char route[256];   /* matched domain, "" for none */
    char mode[16];     /* passthrough, offload, http */
    char backend[64];  /* "" for none */
    char server[64];   /* address connected to, "" for none */
    uint64_t n;        /* connections or requests */
    uint64_t bytes_in, bytes_out; /* from the client, to the client */
    struct pt_histo latency;      /* HTTP modes only */
};

struct pt_tally_result {
    char mode[16];
    char result[32];
    uint64_t n;
};

#define PT_TALLY_SLOTS 4096 /* hash slots over flows: twice the rows, a power of 2 */

struct pt_tally {
    struct pt_tally_flow *flows; /* owned */
    size_t n_flows;
    uint16_t *slot;              /* owned, PT_TALLY_SLOTS: flow index + 1, 0 empty;
                                    built on first use (one per connection costs
                                    no scan of every flow) */
    struct pt_tally_result *results; /* owned */
    size_t n_results;
    uint64_t tls_ok, tls_failed; /* client handshakes on offload */
    uint64_t tls_handovers; /* of tls_ok: handed to worker/tlsrec.c */
};

/* One access record (strings may be NULL). <latency_us> counts for the
 * HTTP modes only. */
struct pt_tally_rec {
    const char *route, *mode, *backend, *server, *result;
    uint64_t bytes_in, bytes_out, latency_us;
};
void pt_tally_add(struct pt_tally *t, const struct pt_tally_rec *r);

/* STATS section: u32 flows, each (str route, mode, backend, server, u64 n,
 * bytes_in, bytes_out, 13 x u64 buckets, u64 count, u64 sum_us); u32
 * results, each (str mode, result, u64 n); u64 tls_ok, u64 tls_failed,
 * u64 tls_handovers. */
void pt_tally_encode(const struct pt_tally *t, struct pt_wbuf *b);
/* Reads that section into <out> (replaced). Returns 0 or PT_EMALFORMED
 * (<out> left empty). */
int pt_tally_read(struct pt_cursor *c, struct pt_tally *out);

/* Adds <from> into <into>. */
void pt_tally_merge(struct pt_tally *into, const struct pt_tally *from);

/* Appends the families portier_route_total, portier_route_received_bytes_total,
 * portier_route_sent_bytes_total, portier_http_request_duration_seconds,
 * portier_results_total and portier_tls_handshakes_total. */
void pt_tally_metrics(const struct pt_tally *t, struct pt_wbuf *out);

void pt_tally_free(struct pt_tally *t);

#endif
