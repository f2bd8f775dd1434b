/* Ban list: is this client address banned right now?
 *
 * A hash table of bans (addresses and CIDR prefixes, each with an optional
 * expiry and a reason). A worker builds one from every full snapshot and then
 * applies ban deltas to it in place (add, remove), so a ban write costs the
 * worker one insertion, not a rebuild. A lookup masks the address once per
 * prefix length that occurs in the list and probes the table, so its cost
 * depends on the number of distinct prefix lengths (at most 33 + 129), never
 * on the number of bans. */
#ifndef PT_BANLIST_H
#define PT_BANLIST_H

#include "common/addr.h"

struct pt_ban {
    struct pt_cidr net;
    int64_t expires; /* unix seconds; 0 = until removed */
    char *reason;    /* owned by whoever owns the array */
};

struct pt_banlist;

/* Builds a list holding copies of <bans>[0..n) (borrowed only during the
 * call). A later duplicate prefix replaces an earlier one. Caller frees with
 * pt_banlist_free. */
struct pt_banlist *pt_banlist_build(const struct pt_ban *bans, size_t n);
void pt_banlist_free(struct pt_banlist *b); /* NULL is fine */

/* Adds <ban> (copied), replacing a ban on the same prefix. */
void pt_banlist_add(struct pt_banlist *b, const struct pt_ban *ban);
/* Removes the ban on exactly <net>; returns false when there was none. */
bool pt_banlist_remove(struct pt_banlist *b, const struct pt_cidr *net);
/* Number of bans held (expired ones included until removed). */
size_t pt_banlist_count(const struct pt_banlist *b);

/* Returns the reason (borrowed, valid until the list changes) of the
 * longest-prefix ban covering the IP of <sa> (AF_INET or AF_INET6, v4-mapped
 * counts as IPv4) that has not expired at <now>, or NULL when none does. */
const char *pt_banlist_match(const struct pt_banlist *b, const struct sockaddr *sa,
                             int64_t now);

#endif
