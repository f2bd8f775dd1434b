-- portier schema v1: backends and domains. Objects are stored as their
-- canonical JSON document (what GET returns) plus the columns that queries
-- and constraints need; the API codec is the one place that reads them.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
INSERT INTO meta (key, value) VALUES ('config_version', '1');

CREATE TABLE backends (
    name       TEXT PRIMARY KEY,
    doc        TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE domains (
    name       TEXT PRIMARY KEY,
    backend    TEXT NOT NULL REFERENCES backends(name) ON DELETE RESTRICT,
    mode       TEXT NOT NULL CHECK (mode IN ('passthrough', 'offload')),
    doc        TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX domains_backend ON domains(backend);
