/* Compiles the store's configuration into a snapshot IPC frame: reads every
 * backend and domain document, decodes them with the API's codec (the one
 * that validated them), adds the daemon's settings and encodes the result. */
#ifndef PT_PUBLISH_H
#define PT_PUBLISH_H

#include "common/snapshot.h"
#include "db/store.h"

/* Returns 0 and a complete PT_IPC_SNAPSHOT frame appended to <out>, or a
 * negative pt_err (a stored document that no longer decodes). */
int pt_publish_compile(struct pt_store *store, uint64_t version,
                       const struct pt_settings *settings, struct pt_wbuf *out);

#endif
