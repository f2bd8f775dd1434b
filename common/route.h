/* Route table: maps a server name (SNI on 443, Host on 80) to a route index.
 *
 * Built once per snapshot from the configured names, then read-only. Lookup
 * order: exact name, then the longest wildcard suffix ("*.example.org" matches
 * one or more labels under example.org), then the catch-all "*". Cost is a
 * hash probe per label of the key, independent of the number of routes. */
#ifndef PT_ROUTE_H
#define PT_ROUTE_H

#include "common/pt.h"

struct pt_route_table;

/* Builds a table over <n> names (already normalised by pt_dname_normalize,
 * wildcards allowed); names[i] maps to value i. Names are copied. Duplicate
 * names are a caller bug (PT_ASSERT). Caller frees with pt_route_free. */
struct pt_route_table *pt_route_build(const char *const *names, size_t n);

void pt_route_free(struct pt_route_table *t);

/* Incremental changes, for configuration deltas: a copy costs one memcpy of
 * the slots, a change a hash probe (and now and then a doubling).
 *
 * pt_route_clone returns an independent copy of <t> (free both). */
struct pt_route_table *pt_route_clone(const struct pt_route_table *t);
/* Maps configured name <name> (normalised, wildcards and "*" allowed) to
 * <value>, replacing its value (and key) when present. <name> is borrowed:
 * it must outlive <t> and every clone of <t> that still holds it. */
void pt_route_set(struct pt_route_table *t, const char *name, int value);
/* Removes configured name <name>; false when it was absent. */
bool pt_route_del(struct pt_route_table *t, const char *name);
/* The value of configured name <name> itself (not routing: "*.a.b" finds
 * only the wildcard entry), or -1. */
int pt_route_find(const struct pt_route_table *t, const char *name);

/* Looks up <name>[0..len) as received from the network: ASCII case is
 * ignored, one trailing dot is ignored, no other normalisation (a key that is
 * not a valid name simply matches nothing but "*"). len == 0 (absent SNI)
 * matches only "*". Returns the route index or -1. Never allocates. */
int pt_route_lookup(const struct pt_route_table *t, const char *name, size_t len);

#endif
