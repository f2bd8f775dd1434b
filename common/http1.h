/* HTTP/1.1 message heads: a strict parser for requests and responses, and
 * the heads portier sends on.
 *
 * The head (start line and fields, up to the blank line) is buffered by the
 * caller and parsed at once, by our own parser (RFC 9112, strict): CRLF only,
 * no NUL, no obs-fold, field names are tokens with ":" right after them,
 * values without control bytes. Then the framing fields are checked for the
 * request smuggling shapes (CL+TE, duplicate or invalid Content-Length, TE on
 * HTTP/1.0, a transfer coding other than chunked, missing or repeated Host),
 * and a response's body framing is decided per RFC 9112 6.3. Bodies are
 * framed by common/h1body.h. Pure: no I/O, no allocation; results point
 * into the caller's buffer. */
#ifndef PT_HTTP1_H
#define PT_HTTP1_H

#include "common/h1body.h"
#include "common/pt.h"
#include "common/wbuf.h"

#define PT_HTTP_HEAD_MAX 16384  /* request line + fields: 431 beyond */
#define PT_HTTP_LINE_MAX 8192   /* start line: 414 beyond (responses: refused) */
#define PT_HTTP_HEADERS_MAX 100 /* header fields: 431 beyond (responses: refused) */
#define PT_HTTP_RESP_HEAD_MAX 32768 /* a response head: refused beyond (backends send big cookies) */

struct pt_http_hdr {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* The form of a request target (RFC 9112 3.2); authority-form (CONNECT) is refused. */
enum pt_http_target {
    PT_HTTP_TARGET_ORIGIN = 0, /* "/path?query" */
    PT_HTTP_TARGET_ABSOLUTE,   /* "http://authority/path?query" or https:// */
    PT_HTTP_TARGET_ASTERISK,   /* "*", OPTIONS only */
};

struct pt_http_req {
    const char *method;        /* static string from our method table ("GET") */
    bool is_head;              /* HEAD: the response has no body */
    const char *url;           /* request target as received */
    size_t url_len;
    enum pt_http_target target;
    const char *path;          /* the target in origin-form: origin-form as received; */
    size_t path_len;           /* absolute-form: its path and query, static "/" when empty; "*" */
    const char *abs_authority; /* absolute-form: the authority (host[:port]), else NULL */
    size_t abs_authority_len;
    bool abs_https;            /* absolute-form with the https scheme */
    bool authority_mismatch;   /* absolute-form authority differs from Host: answer 421 */
    unsigned short major, minor;
    struct pt_http_hdr hdrs[PT_HTTP_HEADERS_MAX];
    size_t n_hdrs;
    const char *host;          /* Host header value, NULL when absent */
    size_t host_len;
    bool has_content_length;
    uint64_t content_length;
    bool chunked;              /* Transfer-Encoding: chunked */
    enum pt_h1body_mode body;  /* NONE, LENGTH (content_length) or CHUNKED */
    bool keep_alive;           /* the client wants to keep the connection */
    bool upgrade;              /* Connection: upgrade + Upgrade header */
    size_t head_len;           /* bytes of the head, blank line included */
    int status;                /* on refusal: the status to answer (400, 414, 431, 505) */
    const char *why;           /* on refusal: static reason for logs */
};

/* Parses the request head at <buf>[0..len). Returns head_len (> 0) when the
 * head is complete and acceptable; PT_ENEEDMORE; or PT_EMALFORMED with
 * out->status and out->why set (answer that status and close).
 * Refused with 400: a method outside our table (the common ones and WebDAV's,
 * as http-parser knew them; method is then a static string), CONNECT, a
 * target that is not origin-, absolute- (http/https, no userinfo, a path
 * or nothing after the authority) or asterisk-form (OPTIONS only), a version
 * that is not "HTTP/" DIGIT "." DIGIT; with 505 a well-formed version other
 * than HTTP/1.0 and HTTP/1.1. Two Content-Length fields are refused even when
 * equal. An absolute-form authority that differs from Host (ASCII case
 * aside) is not refused here: authority_mismatch is set, the engine answers
 * 421 as for a Host of another route. */
int pt_http1_parse_request(const uint8_t *buf, size_t len, struct pt_http_req *out);

/* Finds header <name> (case-insensitive); returns it or NULL. */
const struct pt_http_hdr *pt_http1_header(const struct pt_http_req *r, const char *name);

struct pt_http_resp {
    unsigned short major, minor;
    int status;                /* status code, 100 to 599 */
    const char *reason;        /* reason phrase as received (may be empty) */
    size_t reason_len;
    struct pt_http_hdr hdrs[PT_HTTP_HEADERS_MAX];
    size_t n_hdrs;
    enum pt_h1body_mode body;  /* how the body is framed (RFC 9112 6.3) */
    uint64_t content_length;   /* LENGTH: the body's length; else 0 */
    bool keep_alive;           /* the backend connection can carry another request */
    bool interim;              /* 1xx other than 101: the final response follows */
    bool upgrade;              /* 101 with Upgrade: the connection carries raw bytes next */
    size_t head_len;           /* bytes of the head, blank line included */
    const char *why;           /* on refusal: static reason for logs */
};

/* Parses the response head at <buf>[0..len) to a request that was HEAD
 * (<req_was_head>) or not. Returns head_len (> 0), PT_ENEEDMORE, or
 * PT_EMALFORMED with out->why (the engine answers 502 and closes the backend
 * connection). Status line: HTTP/1.0 or HTTP/1.1, SP, three digits (100 to
 * 599), then SP and a reason phrase; the reason may be left out with its SP
 * (servers do; it frames nothing). Fields as for requests, at most
 * PT_HTTP_RESP_HEAD_MAX bytes and PT_HTTP_HEADERS_MAX fields.
 * Body framing: no body for 1xx, 204, 304 and responses to HEAD; chunked
 * when the last transfer coding is chunked; EOF (and close) for another
 * final coding; LENGTH for a valid Content-Length (equal duplicates and
 * lists of one value are one length); EOF (and close) when neither.
 * Refused: Content-Length and Transfer-Encoding together, Transfer-Encoding
 * on HTTP/1.0, chunked applied twice or not last but present, an invalid or
 * conflicting Content-Length, 101 without Upgrade. */
int pt_http1_parse_response(const uint8_t *buf, size_t len, bool req_was_head,
                            struct pt_http_resp *out);

/* Finds response header <name> (case-insensitive); returns it or NULL. */
const struct pt_http_hdr *pt_http1_resp_header(const struct pt_http_resp *r, const char *name);

struct pt_http_fwd {
    const char *client_ip;  /* the real client address, text */
    const char *proto;      /* "http" or "https" */
    bool close;             /* send Connection: close rather than keep-alive */
    bool trusted;           /* the peer is a --trusted-proxy: append to its forwarding fields */
};

/* Appends the head to send to the backend: the request line in origin-form
 * with the client's version ("method path HTTP/1.x"); the fields minus
 * hop-by-hop ones (Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
 * Upgrade unless upgrading, and the names any Connection field lists, but
 * never Host or the framing fields) and minus the forwarding fields
 * X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, X-Real-IP and
 * Forwarded; Host as received (the one the caller checked), or the authority
 * of an absolute-form target when there was none (HTTP/1.0). Then ours:
 * X-Forwarded-For and Forwarded (for=, host=, proto=) name the client, and
 * only a trusted peer's own X-Forwarded-For and Forwarded values come before
 * it: an untrusted client cannot choose what the backend reads as its
 * address. X-Real-IP, X-Forwarded-Proto, X-Forwarded-Host and Connection
 * are ours in both cases. */
void pt_http1_write_request(const struct pt_http_req *r, const struct pt_http_fwd *f,
                            struct pt_wbuf *out);

struct pt_http_resp_fwd {
    bool close;        /* Connection: close to the client, else keep-alive */
    bool chunk;        /* the body (EOF-framed) is re-framed as chunked by the caller */
    const char *extra; /* more header lines, each ending in CRLF, or NULL */
};

/* Appends the response head to send to the client: "HTTP/1.1 <status>
 * <reason>" (ours when the backend sent none), the fields minus hop-by-hop
 * ones as for requests (Upgrade stays on a 101), "Transfer-Encoding:
 * chunked" when f->chunk, then Connection (upgrade on a 101, else close or
 * keep-alive per f->close) and f->extra. Framing fields are kept as
 * received: the caller forwards the body as framed, or re-frames an
 * EOF-framed one as chunked. */
void pt_http1_write_response_head(const struct pt_http_resp *r, const struct pt_http_resp_fwd *f,
                                  struct pt_wbuf *out);

/* Appends a complete small response (status line, Content-Type text/html or
 * text/plain, Content-Length, Connection: close, <extra> header lines ending
 * in CRLF or NULL, body). */
void pt_http1_write_response(struct pt_wbuf *out, int status, const char *extra,
                             const char *type, const char *body, size_t body_len);

/* "Not Found" etc.; "" for unknown codes. */
const char *pt_http1_reason(int status);

#endif
