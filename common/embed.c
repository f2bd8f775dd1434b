#include "common/embed.h"

#include <string.h>

const struct pt_embed_file *pt_embed_find(const char *path)
{
    for (const struct pt_embed_file *f = pt_embed_files; f->path; f++)
        if (strcmp(f->path, path) == 0)
            return f;
    return NULL;
}
