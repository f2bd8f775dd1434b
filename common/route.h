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

/* Looks up <name>[0..len) as received from the network: ASCII case is
 * ignored, one trailing dot is ignored, no other normalisation (a key that is
 * not a valid name simply matches nothing but "*"). len == 0 (absent SNI)
 * matches only "*". Returns the route index or -1. Never allocates. */
int pt_route_lookup(const struct pt_route_table *t, const char *name, size_t len);

#endif
