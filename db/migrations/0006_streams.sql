-- Stream routes (issue 14): mail, XMPP, SSH or any TCP service on listen
-- addresses of their own. Stored like domains: the canonical document plus
-- the backend column, so a backend in use cannot be deleted.
CREATE TABLE streams (
    name       TEXT PRIMARY KEY,
    backend    TEXT NOT NULL REFERENCES backends(name) ON DELETE RESTRICT,
    mode       TEXT NOT NULL CHECK (mode IN ('tcp', 'tls')),
    doc        TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX streams_backend ON streams(backend);
