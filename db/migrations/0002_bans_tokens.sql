-- Bans (refused at accept by every worker) and scoped API tokens.
CREATE TABLE bans (
    ip         TEXT PRIMARY KEY,          -- normalised: "203.0.113.7", "2001:db8::/64"
    reason     TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,          -- unix seconds
    expires_at INTEGER                    -- unix seconds, NULL = until removed
) STRICT;
CREATE INDEX bans_expires ON bans(expires_at) WHERE expires_at IS NOT NULL;

-- Secrets are never stored: only their SHA-256, hex.
CREATE TABLE tokens (
    name       TEXT PRIMARY KEY,
    scope      TEXT NOT NULL CHECK (scope IN ('admin', 'bans')),
    hash       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_used  INTEGER
) STRICT;
