/* A TLS 1.3 record layer of our own, for a server connection whose
 * handshake OpenSSL did: what the kernel's TLS offload does (the kernel
 * owns the records, the SSL object can go), in user space, so an idle
 * offload connection keeps ~200 bytes of keys instead of OpenSSL's ~14 KB
 * (SSL object, record layer, cipher contexts, session).
 *
 * Per direction: the traffic secret (for KeyUpdate), the key, the IV and
 * the sequence number (RFC 8446 5.3, 7.1-7.3). The AEAD runs on one cipher
 * context per suite and direction per process, re-keyed for each record:
 * nothing per connection while idle.
 *
 * Opening is pure over (buf, len): one record per call, done / need more /
 * invalid (with the alert to send). Sealing appends records of at most
 * 2^14 plaintext bytes to a struct pt_wbuf. */
#ifndef PT_TLSREC_H
#define PT_TLSREC_H

#include "common/wbuf.h"

/* The largest record on the wire (RFC 8446 5.2) and the most plaintext
 * one can open to: the inner plaintext with its type byte and padding. */
#define PT_TLSREC_WIRE_MAX (5 + 16384 + 256)
#define PT_TLSREC_PLAIN_MAX (16384 + 256)

enum pt_tlsrec_suite {
    PT_TLSREC_AES_128_GCM_SHA256 = 0x1301,
    PT_TLSREC_AES_256_GCM_SHA384 = 0x1302,
    PT_TLSREC_CHACHA20_POLY1305_SHA256 = 0x1303,
};

struct pt_tlsrec_dir {
    uint8_t secret[48]; /* the current traffic secret, hash-length bytes */
    uint8_t key[32];
    uint8_t iv[12];
    uint64_t seq;
};

/* Records in a row that carry no application byte (empty ones, KeyUpdates)
 * a peer may send before the connection ends: each KeyUpdate it requests
 * makes us queue an answer whether it reads or not, and an empty record
 * costs a decryption for nothing (OpenSSL and BoringSSL cap them alike). */
#define PT_TLSREC_NONDATA_MAX 32

struct pt_tlsrec {
    uint16_t suite;  /* enum pt_tlsrec_suite */
    uint8_t hash_len; /* 32 or 48 */
    uint8_t key_len;  /* 16 or 32 */
    uint8_t nondata;  /* records in a row without application bytes */
    struct pt_tlsrec_dir rx, tx;
};

/* Sets up <r> from the two application traffic secrets (hash-length bytes
 * each: 32, or 48 for the SHA-384 suite). Returns false for another suite
 * or a wrong length. */
bool pt_tlsrec_init(struct pt_tlsrec *r, uint16_t suite, const uint8_t *rx_secret,
                    const uint8_t *tx_secret, size_t secret_len);

/* What one pt_tlsrec_open found. */
enum pt_tlsrec_res {
    PT_TLSREC_NEED = 0, /* no whole record in the buffer yet */
    PT_TLSREC_DATA,     /* application data (maybe zero bytes) */
    PT_TLSREC_KEYUPDATE, /* a KeyUpdate was handled (an answer may be in <out>) */
    PT_TLSREC_EOF,      /* close_notify */
    PT_TLSREC_INVALID,  /* the connection is over; *alert says why */
};

/* Opens the record at the start of <in>[0..len): on DATA the plaintext is
 * plain[0..*plain_len) (<plain> holds PT_TLSREC_PLAIN_MAX bytes), and
 * *used is the record's size whenever one was complete. A KeyUpdate with
 * update_requested seals the answer into <out> and switches the sending
 * key. On INVALID, *alert is the fatal alert to send (pt_tlsrec_alert); a
 * received alert other than close_notify gives INVALID with *alert 0
 * (nothing to send back). */
enum pt_tlsrec_res pt_tlsrec_open(struct pt_tlsrec *r, const uint8_t *in, size_t len,
                                  uint8_t *plain, size_t *plain_len, size_t *used,
                                  struct pt_wbuf *out, uint8_t *alert);

/* Seals <p>[0..n) as application data into <out>, in records of at most
 * 2^14 bytes. Returns false when the sequence number would wrap (the
 * connection must close; nothing was added). */
bool pt_tlsrec_seal(struct pt_tlsrec *r, const void *p, size_t n, struct pt_wbuf *out);

/* Seals an alert: close_notify (0) as a warning, any other as fatal. */
bool pt_tlsrec_alert(struct pt_tlsrec *r, uint8_t desc, struct pt_wbuf *out);

/* Takes the records <p>[0..n) the handshake's last step wrote after the
 * sending key was installed (the server's NewSessionTickets): each must
 * open with the sending key at sequence 0, 1, ... and be a handshake
 * message; the sending sequence continues after them. Returns false
 * (and <r> must not be used) when any does not: the keys are not the ones
 * OpenSSL used. */
bool pt_tlsrec_adopt(struct pt_tlsrec *r, const uint8_t *p, size_t n);

#endif
