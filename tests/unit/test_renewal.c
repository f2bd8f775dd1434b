#include <criterion/criterion.h>

#include "daemon/acme.h"

#define DAY 86400

/* ---- when to renew -------------------------------------------------------- */

Test(renewal, a_third_of_the_lifetime_left)
{
    /* Let's Encrypt: 90 days -> renew after 60 */
    cr_assert_eq(pt_acme_renew_after(1700000000, 1700000000 + 90 * DAY),
                 1700000000 + 60 * DAY);
    /* 6-day short-lived certificates -> after 4 days */
    cr_assert_eq(pt_acme_renew_after(0, 6 * DAY), 4 * DAY);
    /* pebble with certificateValidityPeriod 3600: notAfter = notBefore + 3599 */
    cr_assert_eq(pt_acme_renew_after(1000, 1000 + 3599), 1000 + 2399);
    /* floors, never past the 2/3 point */
    cr_assert_eq(pt_acme_renew_after(0, 1), 0);
    cr_assert_eq(pt_acme_renew_after(0, 2), 1);
    cr_assert_eq(pt_acme_renew_after(0, 3), 2);
    cr_assert_eq(pt_acme_renew_after(0, 5), 3);
}

Test(renewal, degenerate_and_huge_validity)
{
    cr_assert_eq(pt_acme_renew_after(500, 500), 500);
    cr_assert_eq(pt_acme_renew_after(500, 100), 500, "not_after before not_before: now");
    /* no overflow for absurd (but parseable) dates */
    int64_t nb = 0, na = INT64_MAX;
    int64_t r = pt_acme_renew_after(nb, na);
    cr_assert(r > na / 3 * 2 - 2 && r <= na / 3 * 2 + 1);
    int64_t big = (int64_t)253402300799; /* 9999-12-31 */
    cr_assert_eq(pt_acme_renew_after(0, big), big / 3 * 2 + (big % 3) * 2 / 3);
}

Test(renewal, every_point_is_two_thirds)
{
    for (int64_t life = 1; life < 3000; life += 7) {
        int64_t r = pt_acme_renew_after(10000, 10000 + life);
        /* renew_after - nb = floor(2 life / 3) */
        cr_assert_eq(r - 10000, 2 * life / 3, "life %lld", (long long)life);
        /* at renew_after, at least a third is left */
        cr_assert_geq(10000 + life - r, life / 3);
    }
}

/* ---- ARI (RFC 9773) ------------------------------------------------------- */

Test(renewal, ari_window_earlier_wins)
{
    int64_t nb = 0, na = 90 * DAY; /* rule: day 60 */
    int64_t ws = 10 * DAY, we = 11 * DAY; /* e.g. the CA plans a revocation */
    cr_assert_eq(pt_acme_renew_time(nb, na, true, ws, we, 0), ws);
    cr_assert_eq(pt_acme_renew_time(nb, na, true, ws, we, (uint64_t)(we - ws)), we);
    cr_assert_eq(pt_acme_renew_time(nb, na, true, ws, we, (uint64_t)(we - ws) + 1), ws,
                 "wraps inside the window");
    for (uint64_t rnd = 0; rnd < 1000000; rnd += 9973) {
        int64_t t = pt_acme_renew_time(nb, na, true, ws, we, rnd * 2654435761u);
        cr_assert(t >= ws && t <= we);
    }
}

Test(renewal, ari_window_later_or_absent_keeps_the_rule)
{
    int64_t nb = 0, na = 90 * DAY, rule = 60 * DAY;
    cr_assert_eq(pt_acme_renew_time(nb, na, true, 61 * DAY, 62 * DAY, 12345), rule);
    cr_assert_eq(pt_acme_renew_time(nb, na, false, 1, 2, 0), rule);
    /* straddling window: the pick may land on either side */
    int64_t t1 = pt_acme_renew_time(nb, na, true, 59 * DAY, 61 * DAY, 0);
    int64_t t2 = pt_acme_renew_time(nb, na, true, 59 * DAY, 61 * DAY, (uint64_t)(2 * DAY));
    cr_assert_eq(t1, 59 * DAY);
    cr_assert_eq(t2, rule);
    /* end before start: not a window */
    cr_assert_eq(pt_acme_renew_time(nb, na, true, 10 * DAY, 9 * DAY, 0), rule);
    /* a one-second window */
    cr_assert_eq(pt_acme_renew_time(nb, na, true, 5, 5, 999), 5);
    /* a window entirely in the past: renew now (the caller compares with now) */
    cr_assert_eq(pt_acme_renew_time(100 * DAY, 190 * DAY, true, 1, 2, 0), 1);
}

/* ---- backoff -------------------------------------------------------------- */

Test(renewal, backoff_doubles_from_a_minute_to_a_day)
{
    cr_assert_eq(pt_acme_backoff_s(1), 60);
    cr_assert_eq(pt_acme_backoff_s(2), 120);
    cr_assert_eq(pt_acme_backoff_s(3), 240);
    cr_assert_eq(pt_acme_backoff_s(11), 60 * 1024);
    cr_assert_eq(pt_acme_backoff_s(12), DAY, "capped at a day");
    cr_assert_eq(pt_acme_backoff_s(63), DAY);
    cr_assert_eq(pt_acme_backoff_s(INT64_MAX), DAY);
    cr_assert_eq(pt_acme_backoff_s(0), 60, "no failure yet: the first step");
    cr_assert_eq(pt_acme_backoff_s(-5), 60);
    for (int64_t f = 1; f < 100; f++)
        cr_assert_geq(pt_acme_backoff_s(f + 1), pt_acme_backoff_s(f), "monotonic at %lld",
                      (long long)f);
}

Test(renewal, retry_at_honours_retry_after)
{
    int64_t now = 1700000000;
    cr_assert_eq(pt_acme_retry_at(now, 1, 0), now + 60);
    cr_assert_eq(pt_acme_retry_at(now, 3, 0), now + 240);
    cr_assert_eq(pt_acme_retry_at(now, 1, 3600), now + 3600, "429 Retry-After wins");
    cr_assert_eq(pt_acme_retry_at(now, 12, 3600), now + DAY, "unless the backoff is longer");
    cr_assert_eq(pt_acme_retry_at(now, 1, 365 * DAY), now + 7 * DAY, "capped at a week");
    cr_assert_eq(pt_acme_retry_at(now, 1, -10), now + 60);
}

/* A domain that always fails does not hammer the CA: a dozen attempts on
 * the first day, then one a day. */
Test(renewal, failing_domain_attempts_per_day)
{
    int64_t t = 0, failures = 0;
    int day1 = 0, day5 = 0;
    while (t < 6 * DAY) {
        if (t < DAY)
            day1++;
        if (t >= 5 * DAY && t < 6 * DAY)
            day5++;
        failures++;
        t = pt_acme_retry_at(t, failures, 0);
    }
    cr_assert_leq(day1, 12, "%d attempts on day one", day1);
    cr_assert_geq(day1, 8);
    cr_assert_eq(day5, 1, "%d attempts on day five", day5);
}
