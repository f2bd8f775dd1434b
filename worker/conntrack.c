#include "worker/conntrack.h"

void pt_conntrack_init(struct pt_conntrack_list *l)
{
    l->head.prev = l->head.next = &l->head;
    l->n = 0;
}

void pt_conntrack_add(struct pt_conntrack_list *l, struct pt_conntrack *ct,
                      const struct sockaddr_storage *addr,
                      void (*kill)(struct pt_conntrack *ct))
{
    ct->addr = addr;
    ct->kill = kill;
    ct->killed = false;
    ct->prev = l->head.prev;
    ct->next = &l->head;
    l->head.prev->next = ct;
    l->head.prev = ct;
    l->n++;
}

void pt_conntrack_remove(struct pt_conntrack_list *l, struct pt_conntrack *ct)
{
    if (ct->next == NULL)
        return;
    ct->prev->next = ct->next;
    ct->next->prev = ct->prev;
    ct->prev = ct->next = NULL;
    l->n--;
}

size_t pt_conntrack_sweep(struct pt_conntrack_list *l,
                          bool (*banned)(void *arg, const struct sockaddr *sa), void *arg)
{
    size_t cut = 0;
    for (struct pt_conntrack *ct = l->head.next, *next; ct != &l->head; ct = next) {
        next = ct->next; /* a kill that closes at once must not break the walk */
        if (ct->killed || ct->addr == NULL || !banned(arg, (const struct sockaddr *)ct->addr))
            continue;
        ct->killed = true;
        ct->kill(ct);
        cut++;
    }
    return cut;
}
