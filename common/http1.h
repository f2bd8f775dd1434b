/* HTTP/1.1 request heads: framing checks and the head portier sends on.
 *
 * The head (request line and headers, up to the blank line) is buffered by
 * the caller and parsed at once with Debian's libhttp-parser; before that the
 * raw bytes are checked for what http-parser tolerates but a proxy must not
 * (bare LF, obs-fold), and after it the framing headers are checked for the
 * request smuggling shapes (CL+TE, duplicate or invalid Content-Length, TE on
 * HTTP/1.0, a transfer coding other than chunked, missing or repeated Host).
 * Pure: no I/O, no allocation; results point into the caller's buffer. */
#ifndef PT_HTTP1_H
#define PT_HTTP1_H

#include "common/pt.h"
#include "common/wbuf.h"

#define PT_HTTP_HEAD_MAX 16384  /* request line + headers: 431 beyond */
#define PT_HTTP_LINE_MAX 8192   /* request line: 414 beyond */
#define PT_HTTP_HEADERS_MAX 100 /* header fields: 431 beyond */

struct pt_http_hdr {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

struct pt_http_req {
    const char *method;        /* static string from http-parser ("GET") */
    bool is_head;              /* HEAD: the response has no body */
    const char *url;           /* request target as received */
    size_t url_len;
    unsigned short major, minor;
    struct pt_http_hdr hdrs[PT_HTTP_HEADERS_MAX];
    size_t n_hdrs;
    const char *host;          /* Host header value, NULL when absent */
    size_t host_len;
    bool has_content_length;
    uint64_t content_length;
    bool chunked;              /* Transfer-Encoding: chunked */
    bool keep_alive;           /* the client wants to keep the connection */
    bool upgrade;              /* Connection: upgrade + Upgrade header */
    size_t head_len;           /* bytes of the head, blank line included */
    int status;                /* on refusal: the status to answer (400, 414, 431) */
    const char *why;           /* on refusal: static reason for logs */
};

/* Parses the request head at <buf>[0..len). Returns head_len (> 0) when the
 * head is complete and acceptable; PT_ENEEDMORE; or PT_EMALFORMED with
 * out->status and out->why set (answer that status and close). */
int pt_http1_parse_request(const uint8_t *buf, size_t len, struct pt_http_req *out);

/* Finds header <name> (case-insensitive); returns it or NULL. */
const struct pt_http_hdr *pt_http1_header(const struct pt_http_req *r, const char *name);

struct pt_http_fwd {
    const char *client_ip;  /* the real client address, text */
    const char *proto;      /* "http" or "https" */
    bool close;             /* send Connection: close rather than keep-alive */
};

/* Appends the head to send to the backend: request line as received;
 * headers minus hop-by-hop ones (Connection, Keep-Alive, Proxy-Connection,
 * TE, Trailer, Upgrade unless upgrading, and those Connection names) and
 * minus X-Real-IP / X-Forwarded-Proto / X-Forwarded-Host from the client;
 * then X-Forwarded-For (the client's value with our client appended),
 * X-Real-IP, X-Forwarded-Proto, X-Forwarded-Host and Connection. */
void pt_http1_write_request(const struct pt_http_req *r, const struct pt_http_fwd *f,
                            struct pt_wbuf *out);

/* Appends a complete small response (status line, Content-Type text/html or
 * text/plain, Content-Length, Connection: close, <extra> header lines ending
 * in CRLF or NULL, body). */
void pt_http1_write_response(struct pt_wbuf *out, int status, const char *extra,
                             const char *type, const char *body, size_t body_len);

/* "Not Found" etc.; "" for unknown codes. */
const char *pt_http1_reason(int status);

#endif
