#include "common/srvhealth.h"

#include "common/pt.h"

#include <string.h>

void pt_srvhealth_put(struct pt_wbuf *b, const struct pt_srvhealth *e)
{
    pt_wbuf_str(b, e->backend);
    pt_wbuf_str(b, e->server);
    pt_wbuf_u8(b, e->up ? 1 : 0);
    pt_wbuf_u32(b, e->fails);
    pt_wbuf_u64(b, e->failures);
    pt_wbuf_u64(b, e->changed_ms);
}

int pt_srvhealth_read(struct pt_cursor *c, struct pt_srvhealth_list *out)
{
    pt_srvhealth_free(out);
    uint32_t n = pt_rd_u32(c);
    if (!c->ok || n > PT_SRVHEALTH_MAX || n > pt_cursor_left(c))
        return PT_EMALFORMED;
    out->v = n ? pt_xcalloc(n, sizeof(*out->v)) : NULL;
    for (uint32_t i = 0; i < n; i++) {
        struct pt_srvhealth *e = &out->v[i];
        if (!pt_rd_cstr(c, e->backend, sizeof(e->backend)) ||
            !pt_rd_cstr(c, e->server, sizeof(e->server)))
            goto bad;
        uint8_t up = pt_rd_u8(c);
        e->up = up == 1;
        e->fails = pt_rd_u32(c);
        e->failures = pt_rd_u64(c);
        e->changed_ms = pt_rd_u64(c);
        if (!c->ok || up > 1)
            goto bad;
    }
    out->n = n;
    return 0;
bad:
    pt_srvhealth_free(out);
    return PT_EMALFORMED;
}

void pt_srvhealth_merge(struct pt_srvhealth_list *into, const struct pt_srvhealth_list *from)
{
    for (size_t i = 0; i < from->n; i++) {
        const struct pt_srvhealth *f = &from->v[i];
        struct pt_srvhealth *t = NULL;
        for (size_t j = 0; j < into->n && t == NULL; j++)
            if (strcmp(into->v[j].backend, f->backend) == 0 &&
                strcmp(into->v[j].server, f->server) == 0)
                t = &into->v[j];
        if (t == NULL) {
            into->v = pt_xrealloc(into->v, (into->n + 1) * sizeof(*into->v));
            into->v[into->n++] = *f;
            continue;
        }
        t->failures += f->failures;
        if (f->changed_ms > t->changed_ms) {
            t->changed_ms = f->changed_ms;
            t->up = f->up;
            t->fails = f->fails;
        }
    }
}

void pt_srvhealth_free(struct pt_srvhealth_list *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}
