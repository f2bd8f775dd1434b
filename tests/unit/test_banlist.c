#include "common/banlist.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <time.h>

static struct sockaddr_storage ip(const char *s)
{
    struct sockaddr_storage ss = {0};
    if (strchr(s, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        cr_assert_eq(inet_pton(AF_INET6, s, &a->sin6_addr), 1);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        cr_assert_eq(inet_pton(AF_INET, s, &a->sin_addr), 1);
    }
    return ss;
}

/* Each ban's reason becomes its index, so a match tells which ban answered. */
static void number(struct pt_ban *bans, size_t n)
{
    static const char *const ixs[] = {"0", "1", "2", "3", "4", "5", "6", "7"};
    for (size_t i = 0; i < n; i++)
        bans[i].reason = (char *)ixs[i];
}

static struct pt_ban ban(const char *cidr, int64_t expires)
{
    struct pt_ban b = {0};
    cr_assert_eq(pt_cidr_parse(cidr, strlen(cidr), &b.net, NULL), 0, "%s", cidr);
    b.expires = expires;
    return b;
}

static int match(const struct pt_banlist *l, const char *addr, int64_t now)
{
    struct sockaddr_storage ss = ip(addr);
    const char *r = pt_banlist_match(l, (struct sockaddr *)&ss, now);
    return r ? atoi(r) : -1;
}

Test(banlist, addresses_prefixes_and_families)
{
    struct pt_ban bans[] = {ban("203.0.113.7", 0), ban("10.0.0.0/8", 0),
                            ban("2001:db8::/64", 0), ban("::1", 0), ban("0.0.0.0/0", 50)};
    number(bans, 5);
    struct pt_banlist *l = pt_banlist_build(bans, 5);
    cr_expect_eq(match(l, "203.0.113.7", 100), 0);
    cr_expect_eq(match(l, "203.0.113.8", 100), -1);
    cr_expect_eq(match(l, "10.200.1.1", 100), 1);
    cr_expect_eq(match(l, "11.0.0.1", 100), -1);
    cr_expect_eq(match(l, "2001:db8::1234", 100), 2);
    cr_expect_eq(match(l, "2001:db8:0:1::1", 100), -1);
    cr_expect_eq(match(l, "::1", 100), 3);
    cr_expect_eq(match(l, "::2", 100), -1);
    /* A dual-stack socket reports IPv4 clients as mapped addresses. */
    cr_expect_eq(match(l, "::ffff:203.0.113.7", 100), 0);
    cr_expect_eq(match(l, "::ffff:10.1.2.3", 100), 1);
    /* The expired /0 stops matching; before expiry it catches everything. */
    cr_expect_eq(match(l, "192.0.2.1", 49), 4);
    cr_expect_eq(match(l, "192.0.2.1", 50), -1);
    pt_banlist_free(l);
}

Test(banlist, longest_live_prefix_wins_over_expired_one)
{
    struct pt_ban bans[] = {ban("192.0.2.1", 10), ban("192.0.2.0/24", 0)};
    number(bans, 2);
    struct pt_banlist *l = pt_banlist_build(bans, 2);
    cr_expect_eq(match(l, "192.0.2.1", 5), 0);
    cr_expect_eq(match(l, "192.0.2.1", 11), 1, "expired /32 must fall through to the /24");
    pt_banlist_free(l);
}

Test(banlist, empty_and_null)
{
    struct pt_banlist *l = pt_banlist_build(NULL, 0);
    cr_expect_eq(match(l, "192.0.2.1", 0), -1);
    pt_banlist_free(l);
    pt_banlist_free(NULL);
    struct sockaddr_storage ss = ip("192.0.2.1");
    cr_expect_null(pt_banlist_match(NULL, (struct sockaddr *)&ss, 0));
}

static double ns_per_lookup(const struct pt_banlist *l, int rounds)
{
    struct timespec a, b;
    volatile int sink = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < rounds; i++) {
        struct sockaddr_in sin = {.sin_family = AF_INET};
        sin.sin_addr.s_addr = htonl(0xC6000000u + ((uint32_t)i * 7919u) % 200000u);
        sink ^= pt_banlist_match(l, (struct sockaddr *)&sin, 1) != NULL;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    (void)sink;
    return ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / rounds;
}

/* 100,000 bans: every one found, neighbours not, and the lookup does not
 * scan (cost printed next to a 1-ban list; timing is informative only). */
Test(banlist, hundred_thousand_bans)
{
    enum { N = 100000 };
    struct pt_ban *bans = calloc(N, sizeof(*bans));
    for (uint32_t i = 0; i < N; i++) {
        bans[i].net.family = AF_INET;
        uint32_t a = htonl(0xC6000000u + 2 * i); /* 198.0.0.0 + even offsets */
        memcpy(bans[i].net.addr, &a, 4);
        bans[i].net.bits = 32;
    }
    struct pt_banlist *l = pt_banlist_build(bans, N);
    for (uint32_t i = 0; i < N; i++) {
        struct sockaddr_in sin = {.sin_family = AF_INET};
        sin.sin_addr.s_addr = htonl(0xC6000000u + 2 * i);
        cr_assert_not_null(pt_banlist_match(l, (struct sockaddr *)&sin, 1));
        sin.sin_addr.s_addr = htonl(0xC6000000u + 2 * i + 1);
        cr_assert_null(pt_banlist_match(l, (struct sockaddr *)&sin, 1));
    }
    struct pt_banlist *one = pt_banlist_build(bans, 1);
    double big = ns_per_lookup(l, 200000), small = ns_per_lookup(one, 200000);
    cr_log_info("banlist lookup: %.0f ns with 100000 bans, %.0f ns with 1", big, small);
    pt_banlist_free(one);
    pt_banlist_free(l);
    free(bans);
}

/* Deltas: bans added and removed one by one behave like a list built from
 * the result, including removals in the middle of probe runs. */
Test(banlist, add_and_remove_in_place)
{
    enum { N = 5000 };
    struct pt_banlist *l = pt_banlist_build(NULL, 0);
    struct pt_ban b = {.net = {.family = AF_INET, .bits = 32}, .reason = "r"};
    for (uint32_t i = 0; i < N; i++) {
        uint32_t a = htonl(0xC0000200u + i);
        memcpy(b.net.addr, &a, 4);
        pt_banlist_add(l, &b);
    }
    cr_expect_eq(pt_banlist_count(l), N);
    for (uint32_t i = 0; i < N; i += 2) {
        uint32_t a = htonl(0xC0000200u + i);
        memcpy(b.net.addr, &a, 4);
        cr_assert(pt_banlist_remove(l, &b.net));
        cr_assert(!pt_banlist_remove(l, &b.net), "removed twice");
    }
    cr_expect_eq(pt_banlist_count(l), N / 2);
    for (uint32_t i = 0; i < N; i++) {
        struct sockaddr_in sin = {.sin_family = AF_INET};
        sin.sin_addr.s_addr = htonl(0xC0000200u + i);
        const char *r = pt_banlist_match(l, (struct sockaddr *)&sin, 1);
        if (i % 2)
            cr_assert_str_eq(r, "r", "odd %u must stay banned", i);
        else
            cr_assert_null(r, "even %u was removed", i);
    }
    /* Replacing keeps one entry and takes the new reason and expiry. */
    struct pt_ban net = ban("198.51.100.0/24", 0);
    net.reason = "first";
    pt_banlist_add(l, &net);
    net.reason = "again";
    net.expires = 10;
    pt_banlist_add(l, &net);
    cr_expect_eq(pt_banlist_count(l), N / 2 + 1);
    struct sockaddr_storage ss = ip("198.51.100.9");
    cr_expect_str_eq(pt_banlist_match(l, (struct sockaddr *)&ss, 5), "again");
    cr_expect_null(pt_banlist_match(l, (struct sockaddr *)&ss, 10));
    /* The last /24 gone: its prefix length is no longer probed. */
    cr_assert(pt_banlist_remove(l, &net.net));
    cr_expect_null(pt_banlist_match(l, (struct sockaddr *)&ss, 5));
    pt_banlist_free(l);
}
