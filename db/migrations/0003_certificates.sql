-- Certificates (uploaded or obtained by ACME) and ACME state.
CREATE TABLE certificates (
    id          TEXT PRIMARY KEY,         -- random hex, stable across renewals
    source      TEXT NOT NULL CHECK (source IN ('acme', 'manual')),
    domains     TEXT NOT NULL,            -- JSON array of DNS names (SANs)
    cert_pem    TEXT,                     -- leaf + chain; NULL while pending
    key_pem     TEXT,                     -- never leaves the daemon but in snapshots
    status      TEXT NOT NULL CHECK (status IN ('pending', 'valid', 'renewing',
                                                'failed', 'expired')),
    not_before  INTEGER,                  -- unix seconds
    not_after   INTEGER,
    renew_after INTEGER,
    last_error  TEXT,
    retry_at    INTEGER,                  -- ACME: next attempt after a failure
    failures    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

-- HTTP-01 key authorizations every worker answers on port 80.
CREATE TABLE acme_challenges (
    token             TEXT PRIMARY KEY,
    key_authorization TEXT NOT NULL,
    created_at        INTEGER NOT NULL
) STRICT;

-- Small ACME client state: account URL, orders in flight (by certificate id).
CREATE TABLE acme_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
