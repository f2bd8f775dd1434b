/* The ACME client (RFC 8555, HTTP-01): one dedicated thread of the daemon
 * that obtains and renews a certificate for every offload domain with
 * "certificate": "acme".
 *
 * It talks to the CA with libcurl and never touches a worker directly: the
 * HTTP-01 answers and the issued certificates go into the store and reach
 * the workers through pt_publish_commit, like an API change. The store lock
 * is taken around store work only, never around network I/O.
 *
 * One certificate row per domain (source "acme", domains [name]), id stable
 * across renewals. Row states, as the client drives them:
 *   pending   no certificate yet; an order is due (retry_at 0 or passed)
 *   valid     served; renewed from renew_after on
 *   renewing  still served while a new order runs or waits for its retry
 *   failed    no usable certificate and the last order failed (last_error,
 *             failures, retry_at: exponential backoff); wildcards and "*"
 *             are failed for good, HTTP-01 cannot validate them
 *   expired   not renewed in time; ordered again like a failed one
 * A domain that is removed (or becomes passthrough or manual) stops being
 * renewed: its row is deleted at once unless it still holds an unexpired
 * certificate, which is left until it expires (re-adding the domain in the
 * meantime reuses it), then deleted. A daemon restarted mid-order simply
 * places a new order for its pending rows; HTTP-01 answers left in the store
 * by the previous process are removed at start. */
#ifndef PT_ACME_H
#define PT_ACME_H

#include "common/pt.h"

struct pt_publisher;
struct pt_acme;

struct pt_acme_config {
    const char *directory_url; /* required */
    const char *email;         /* NULL: account without contact */
    const char *ca_bundle;     /* NULL: the system's trust store */
    const char *state_dir;     /* acme-account.pem lives here */
    struct pt_publisher *publisher; /* borrowed; outlives the client */
    unsigned interval_ms;      /* look for work this often; 0: 5000 */
};

/* Loads (or creates, mode 0600) STATE_DIR/acme-account.pem and starts the
 * thread. Returns 0, or a negative pt_err with one line in <err>. The
 * strings in <cfg> are copied. */
int pt_acme_start(const struct pt_acme_config *cfg, struct pt_acme **out, char *err,
                  size_t errlen);

/* Wakes the client: a domain or certificate changed, or certificate
 * <cert_id> (NULL: none) must be renewed now, whatever its schedule and
 * backoff. Never blocks on the network or the store: safe from the API
 * thread with the store lock held. */
void pt_acme_kick(struct pt_acme *a, const char *cert_id);

/* Stops the thread (an exchange in flight is aborted) and frees everything.
 * NULL is fine. */
void pt_acme_stop(struct pt_acme *a);

/* ---- scheduling rules (pure, for tests) ---------------------------------- */

/* When to start renewing a certificate valid from <not_before> to
 * <not_after>: when a third of its lifetime is left, i.e.
 * not_before + 2/3 (not_after - not_before). */
int64_t pt_acme_renew_after(int64_t not_before, int64_t not_after);

/* Same, moved earlier by an ARI suggestedWindow (RFC 9773) when <has_window>:
 * the time picked is start + (rnd mod (end - start + 1)), a uniformly random
 * point of the window, and wins when it is earlier than the 2/3 rule. A
 * window with end < start is ignored. */
int64_t pt_acme_renew_time(int64_t not_before, int64_t not_after, bool has_window,
                           int64_t window_start, int64_t window_end, uint64_t rnd);

/* Backoff after <failures> consecutive failed attempts (>= 1): one minute,
 * doubling, at most one day. */
int64_t pt_acme_backoff_s(int64_t failures);

/* When to try again after a failure at <now>: the backoff, or the CA's
 * Retry-After (<retry_after_s>, 0: none) when longer, itself capped at one
 * week. */
int64_t pt_acme_retry_at(int64_t now, int64_t failures, int64_t retry_after_s);

#endif
