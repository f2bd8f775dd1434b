/* The worker's registry of open client connections, so a ban reaches
 * connections that were accepted before it.
 *
 * Each connection embeds one struct pt_conntrack (an intrusive list node:
 * registering costs no allocation) holding a pointer to its real client
 * address (the PROXY one behind a trusted front) and the function that cuts
 * it. When bans arrive, the worker sweeps the list and cuts every connection
 * whose address is now banned. Single-threaded, like the loop it serves. */
#ifndef PT_CONNTRACK_H
#define PT_CONNTRACK_H

#include "common/pt.h"

#include <sys/socket.h>

struct pt_conntrack {
    struct pt_conntrack *prev, *next;
    /* Borrowed from the connection; NULL while its real address is not known
     * yet (waiting for a trusted front's PROXY header): not judged then. */
    const struct sockaddr_storage *addr;
    /* Closes the connection with an RST. Called at most once per connection;
     * it may close handles but must not free the node before returning. */
    void (*kill)(struct pt_conntrack *ct);
    bool killed;
};

/* The connection struct of type <type> that embeds <ct> as <member>. */
#define PT_CONNTRACK_OWNER(ct, type, member) \
    ((type *)(void *)((char *)(ct) - offsetof(type, member)))

/* A circular list with a sentinel: an empty list points at itself. */
struct pt_conntrack_list {
    struct pt_conntrack head;
    size_t n;
};

void pt_conntrack_init(struct pt_conntrack_list *l);

/* Registers <ct> (owned by the caller, must stay put until removed). */
void pt_conntrack_add(struct pt_conntrack_list *l, struct pt_conntrack *ct,
                      const struct sockaddr_storage *addr,
                      void (*kill)(struct pt_conntrack *ct));

/* Unregisters <ct>; a node never added (zeroed) is fine. */
void pt_conntrack_remove(struct pt_conntrack_list *l, struct pt_conntrack *ct);

/* Calls ct->kill for every registered connection with a known address for
 * which <banned>(<arg>, address) is true. Returns how many were cut. */
size_t pt_conntrack_sweep(struct pt_conntrack_list *l,
                          bool (*banned)(void *arg, const struct sockaddr *sa), void *arg);

#endif
