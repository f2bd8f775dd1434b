/* Private to db/: the store's connection and statement helpers, shared by
 * store.c and certs.c. */
#ifndef PT_STORE_INTERNAL_H
#define PT_STORE_INTERNAL_H

#include "db/store.h"

#include <sqlite3.h>

struct pt_store {
    sqlite3 *db;
    /* The scope pt_store_token_check found last ("backend:NAME" is not a
     * static string); the API reads it under its lock, before the next call. */
    char token_scope[80];
    /* The open transaction (pt_store_begin): a group commit's, shared by
     * several writers one after the other, each in its savepoint. */
    bool in_txn;
    bool in_write;     /* a writer is between pt_store_begin and its end */
    bool in_savepoint; /* its savepoint "w" is open (only when others' changes
                          are kept: a lone writer's failure rolls back all) */
    unsigned kept;     /* writers whose changes the transaction keeps */
    struct pt_store_ckpt *ckpt; /* owned: the WAL checkpointer, or NULL */
};

/* Prepares <sql>; logs and returns PT_EDB on failure. */
int pt_store__prep(struct pt_store *s, const char *sql, sqlite3_stmt **st);
/* Steps a statement that returns no rows, finalizes it; 0 or PT_EDB. */
int pt_store__done(struct pt_store *s, sqlite3_stmt *st);

#endif
