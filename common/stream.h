/* Stream routes: mail, XMPP, SSH or any TCP service relayed byte for byte.
 *
 * A stream listens on its own addresses (bound live by the daemon, handed to
 * the workers as "listener ids"), and either sends every connection to its
 * backend ("tcp") or routes TLS connections by the ClientHello's SNI among
 * the "tls" streams that share an address. A "tls" stream with "alpn" and no
 * "listen" applies on the --https listeners instead: it takes the
 * connections of its names that offer one of its ALPN protocols (XEP-0368).
 * This module holds the model and the lookups; the snapshot codec
 * (common/snapshot.c) carries them to the workers. */
#ifndef PT_STREAM_H
#define PT_STREAM_H

#include "common/addr.h"
#include "common/clienthello.h"
#include "common/pt.h"
#include "common/route.h"

#define PT_STREAM_LISTEN_MAX 16
#define PT_STREAM_NAMES_MAX 64
#define PT_STREAM_ALPN_MAX 8
#define PT_STREAM_ALPN_LEN 64

enum pt_stream_mode {
    PT_STREAM_TCP = 0, /* every connection goes to the backend */
    PT_STREAM_TLS = 1, /* routed by SNI among the streams of one address */
};

struct pt_stream {
    char *name;                   /* owned, [a-z0-9][a-z0-9_-]{0,62} */
    enum pt_stream_mode mode;
    struct pt_hostport *listen;   /* owned, IP literals; may be empty (alpn) */
    size_t n_listen;
    uint32_t *lids;               /* owned, snapshot only: the daemon's listener
                                     id of each listen address */
    char **names;                 /* owned, normalised; tls only ("*" default) */
    size_t n_names;
    char **alpn;                  /* owned; tls only */
    size_t n_alpn;
    char *backend;                /* owned, a backend name */
    uint32_t backend_ix;          /* snapshot only */
    uint32_t idle_timeout_s;      /* 0: the daemon's --idle-timeout */
    uint32_t max_connections;     /* per worker process; 0: no limit */
};

/* One listening socket of the streams, with the streams it carries (built
 * by pt_streams_link). */
struct pt_stream_port {
    uint32_t lid;
    int tcp;                      /* the tcp stream on it, or -1 */
    struct pt_route_table *routes; /* names of its tls streams */
    uint32_t *stream_of;          /* route index -> stream index */
};

struct pt_streams {
    struct pt_stream *v;          /* owned */
    size_t n;
    uint32_t lid_max;             /* highest listener id the daemon had bound
                                     when it compiled this: a worker closes its
                                     listeners up to it that no stream uses */
    struct pt_stream_port *ports; /* built by link */
    size_t n_ports;
    struct pt_route_table *alpn_routes; /* names of the alpn streams (443) */
    uint32_t *alpn_of;            /* route index -> stream index */
};

void pt_stream_clear(struct pt_stream *st);     /* contents, not the struct */
void pt_streams_clear(struct pt_streams *ss);   /* contents, not the struct */

/* Resolves backend names with <find> (index or -1) and builds the ports and
 * the ALPN table. Returns 0, PT_ENOTFOUND or PT_EMALFORMED (a name given
 * twice on one port, or a tcp stream sharing its port). */
int pt_streams_link(struct pt_streams *ss, int (*find)(void *arg, const char *backend),
                    void *arg);

/* The port of listener <lid>, or NULL. */
const struct pt_stream_port *pt_streams_port(const struct pt_streams *ss, uint32_t lid);

/* The stream that takes a connection on port <p> with SNI <sni> (len 0:
 * none), or -1. */
int pt_streams_route(const struct pt_streams *ss, const struct pt_stream_port *p,
                     const char *sni, size_t sni_len);

/* On the --https listeners: the stream with ALPN whose names match <sni> and
 * one of whose protocols <ch> offers, or -1. */
int pt_streams_alpn(const struct pt_streams *ss, const struct pt_clienthello *ch);

/* True when streams <a> and <b> may not share listen address <addr> of <a>:
 * either is tcp, or a name is in both. Fills <why> (what overlaps). */
bool pt_stream_conflict(const struct pt_stream *a, const struct pt_stream *b,
                        char *why, size_t size);

const char *pt_stream_mode_name(enum pt_stream_mode m);

#endif
