/* Files compiled into the binary by tools/embed.c: SQL migrations
 * (db/migrations/NNNN_*.sql) and the web admin page (web/...). */
#ifndef PT_EMBED_H
#define PT_EMBED_H

#include <stddef.h>

struct pt_embed_file {
    const char *path;          /* as given at build time, e.g. "web/index.html" */
    const unsigned char *data; /* static; NUL-terminated for convenience */
    size_t len;                /* without the terminating NUL */
};

/* Terminated by an entry whose path is NULL. Sorted by path. */
extern const struct pt_embed_file pt_embed_files[];

/* Returns the file named <path> (static storage) or NULL. */
const struct pt_embed_file *pt_embed_find(const char *path);

#endif
