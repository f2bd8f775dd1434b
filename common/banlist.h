/* Ban list: is this client address banned right now?
 *
 * Built once per snapshot from the bans (addresses and CIDR prefixes, each
 * with an optional expiry), then read-only. A lookup masks the address once
 * per prefix length that occurs in the list and probes a hash table, so its
 * cost depends on the number of distinct prefix lengths (at most 33 + 129),
 * never on the number of bans. */
#ifndef PT_BANLIST_H
#define PT_BANLIST_H

#include "common/addr.h"

struct pt_ban {
    struct pt_cidr net;
    int64_t expires; /* unix seconds; 0 = until removed */
    char *reason;    /* owned by whoever owns the array */
};

struct pt_banlist;

/* Builds a list over <bans>[0..n) (borrowed only during the call; the match
 * returns indexes into the same array). Duplicate prefixes keep the first.
 * Caller frees with pt_banlist_free. */
struct pt_banlist *pt_banlist_build(const struct pt_ban *bans, size_t n);
void pt_banlist_free(struct pt_banlist *b); /* NULL is fine */

/* Returns the index of a ban covering the IP of <sa> (AF_INET or AF_INET6,
 * v4-mapped counts as IPv4) that has not expired at <now>, or -1. */
int pt_banlist_match(const struct pt_banlist *b, const struct sockaddr *sa, int64_t now);

#endif
