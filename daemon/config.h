/* Daemon settings from flags and the optional --config file (API.md,
 * "Starting the daemon"). Everything is validated here, before any socket is
 * bound, so a bad setting is one line on stderr and exit status 2. */
#ifndef PT_CONFIG_H
#define PT_CONFIG_H

#include "common/addr.h"
#include "common/pt.h"

#define PT_LISTEN_MAX 16
#define PT_TRUSTED_MAX 64

struct pt_listen {
    char text[PT_ADDRSTR_MAX];  /* as the user wrote it, for messages */
    struct sockaddr_storage sa;
    socklen_t salen;
};

struct pt_config {
    char *state_dir;       /* owned */
    char *token_file;      /* owned; default STATE_DIR/api.token */
    struct pt_listen https[PT_LISTEN_MAX];
    size_t n_https;
    struct pt_listen http[PT_LISTEN_MAX];
    size_t n_http;
    struct pt_listen api;
    char *api_tls_cert;    /* owned or NULL: the API speaks plain HTTP */
    char *api_tls_key;     /* owned; set exactly when api_tls_cert is */
    unsigned workers;      /* 1..256; default: number of CPUs */
    struct pt_cidr trusted[PT_TRUSTED_MAX];
    size_t n_trusted;
    char *acme_directory;  /* owned or NULL: ACME off */
    char *acme_email;      /* owned or NULL */
    char *acme_ca_bundle;  /* owned or NULL: system bundle */
    char *user;            /* owned or NULL: stay */
    unsigned grace_s;          /* SIGTERM / daemon loss drain time */
    unsigned hello_timeout_s;  /* ClientHello / PROXY header / request head */
    unsigned connect_timeout_s;
    unsigned idle_timeout_s;
    unsigned body_timeout_s;   /* HTTP engine: between two request body reads */
    unsigned send_timeout_s;   /* HTTP engine: between two writes to the client */
    unsigned ack_timeout_ms;   /* how long a mutation waits for workers */
    char *access_log;          /* owned: "-" stdout (default), "off", or a file */
    bool verbose;
};

enum pt_config_result {
    PT_CONFIG_RUN = 0,   /* start the daemon */
    PT_CONFIG_EXIT = 1,  /* --help or --version was printed: exit 0 */
    PT_CONFIG_ERROR = 2, /* <err> holds one line: exit 2 */
};

/* Fills <c> from defaults, then the --config file, then the other flags.
 * Returns an enum pt_config_result; on error <err> says what and where. */
enum pt_config_result pt_config_parse(struct pt_config *c, int argc, char **argv,
                                      char *err, size_t errlen);

void pt_config_free(struct pt_config *c);

#endif
