/* JSON <-> model for the API's objects (backends, domains).
 *
 * from_json validates everything API.md says about a field and reports the
 * first problem as a 400 with the field's path ("servers[0]"); the same code
 * decodes the documents the store holds, so stored and submitted objects can
 * never disagree. to_json gives the canonical document (defaults filled in). */
#ifndef PT_API_MODEL_H
#define PT_API_MODEL_H

#include "common/snapshot.h"

#include <jansson.h>

struct pt_apierr {
    int status;        /* HTTP status */
    const char *code;  /* "invalid_argument", "not_found", ... */
    char field[160];   /* "" when the error is not about one field */
    char message[320];
};

/* Sets <e> and returns -1, so callers can "return pt_apierr_set(...)". */
__attribute__((format(printf, 5, 6))) int pt_apierr_set(struct pt_apierr *e, int status,
                                                        const char *code,
                                                        const char *field,
                                                        const char *fmt, ...);

/* Who may ban what. A /0 (every address of a family) is refused for every
 * caller, admin included (400). A caller limited to prefixes of <max4> (IPv4)
 * or <max6> (IPv6) bits or longer, as a "bans" token is, may not ban a wider
 * prefix (403); 0 means no such limit. Returns 0 or -1 with <e> set. */
int pt_model_ban_allowed(const struct pt_cidr *net, unsigned max4, unsigned max6,
                         struct pt_apierr *e);

/* True for [a-z0-9][a-z0-9_-]{0,62}. */
bool pt_model_backend_name_ok(const char *s);

/* Validates <j> into <out> (caller clears it with pt_backend_clear). <name> is
 * the name from the URL: a "name" member must equal it. Returns 0 or -1 with
 * <e> set (400). */
int pt_model_backend_from_json(const json_t *j, const char *name,
                               struct pt_backend *out, struct pt_apierr *e);
json_t *pt_model_backend_to_json(const struct pt_backend *b); /* new reference */

/* As above for domains. <name> must already be normalised by the caller with
 * pt_dname_normalize; a "name" member is compared after normalisation. */
int pt_model_domain_from_json(const json_t *j, const char *name,
                              struct pt_domain *out, struct pt_apierr *e);
json_t *pt_model_domain_to_json(const struct pt_domain *d);

/* As above for stream routes (common/stream.h); <name> follows the backend
 * name rules. Conflicts with other streams are the caller's to check. */
int pt_model_stream_from_json(const json_t *j, const char *name, struct pt_stream *out,
                              struct pt_apierr *e);
json_t *pt_model_stream_to_json(const struct pt_stream *st);

/* Parses a request body: JSON object, duplicate keys refused, nesting depth
 * at most 16. Returns a new reference or NULL with <e> set. */
/* Certificate row <sc> as the workers serve it: true and <out> (owned by the
 * caller, pt_cert_clear) for a certificate with a key, "valid" or
 * "renewing" (still served until its successor replaces it) and not expired
 * at <now>; false for one the workers must not have. Names that do not
 * normalise are left out. */
struct pt_store_cert;
bool pt_model_cert_served(const struct pt_store_cert *sc, int64_t now, struct pt_cert *out);
/* Appends to <d> what the workers must change for row <sc> as written now:
 * the certificate (served) or its removal (not served, or gone: <sc> NULL
 * and <id>). */
struct pt_delta;
void pt_model_cert_delta(struct pt_delta *d, const char *id, const struct pt_store_cert *sc,
                         int64_t now);

json_t *pt_model_parse_body(const char *body, size_t len, struct pt_apierr *e);

#endif
