/* Store: certificates, ACME HTTP-01 answers and ACME client state.
 * Same connection and transaction rules as db/store.h. */
#ifndef PT_CERTS_H
#define PT_CERTS_H

#include "db/store.h"

struct pt_store_cert {
    const char *id;
    const char *source;       /* "acme" | "manual" */
    const char *domains_json; /* JSON array of names */
    const char *cert_pem;     /* NULL while pending */
    const char *key_pem;      /* NULL while pending */
    const char *status;       /* pending | valid | renewing | failed | expired */
    int64_t not_before, not_after, renew_after; /* unix seconds, 0 = unknown */
    const char *last_error;   /* NULL = none */
    int64_t retry_at;         /* 0 = none */
    int64_t failures;
    int64_t created, updated;
};

/* Inserts or replaces every column of certificate <c->id>. */
int pt_store_cert_put(struct pt_store *s, const struct pt_store_cert *c);
/* Calls <cb> with each certificate (strings borrowed for the call), ordered
 * by id; a non-zero return from <cb> stops and is returned. */
int pt_store_cert_each(struct pt_store *s,
                       int (*cb)(void *arg, const struct pt_store_cert *c), void *arg);
/* Calls <cb> once with certificate <id>; PT_ENOTFOUND when absent. */
int pt_store_cert_get(struct pt_store *s, const char *id,
                      int (*cb)(void *arg, const struct pt_store_cert *c), void *arg);
int pt_store_cert_delete(struct pt_store *s, const char *id); /* 0 | PT_ENOTFOUND */

/* Which certificates cover a domain name, by the certificate_names index
 * (one probe per name, whatever the number of certificates): a query
 * prepared once and run for many names (a domain list). */
struct pt_store_certq;
/* 0 and *q (caller closes), or PT_EDB. */
int pt_store_certq_open(struct pt_store *s, struct pt_store_certq **q);
/* Calls <cb> with each certificate naming <name> (normalised) exactly or by a
 * wildcard "*.rest" covering its first label; only id, status and not_after
 * are set (borrowed for the call). 0, PT_EDB or what <cb> returned. */
int pt_store_certq_each(struct pt_store_certq *q, const char *name,
                        int (*cb)(void *arg, const struct pt_store_cert *c), void *arg);
void pt_store_certq_close(struct pt_store_certq *q); /* NULL is fine */

int pt_store_acme_token_put(struct pt_store *s, const char *token, const char *keyauth,
                            int64_t now);
int pt_store_acme_token_delete(struct pt_store *s, const char *token);
int pt_store_acme_token_each(struct pt_store *s,
                             int (*cb)(void *arg, const char *token, const char *keyauth),
                             void *arg);

/* Key/value state of the ACME client. get: 0 and *value (caller frees) or
 * PT_ENOTFOUND. */
int pt_store_acme_state_get(struct pt_store *s, const char *key, char **value);
int pt_store_acme_state_set(struct pt_store *s, const char *key, const char *value);
int pt_store_acme_state_delete(struct pt_store *s, const char *key);

#endif
