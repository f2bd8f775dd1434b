-- Which certificates name a DNS name, indexed (issue 15): an offload
-- domain's answer shows its certificate, and finding it must not read the
-- whole certificates table when there are thousands. Kept by triggers, so
-- every writer (API uploads, the ACME client) keeps it true without knowing.
-- The names are stored as written in certificates.domains (normalised by
-- the writers); a wildcard SAN is stored as "*.rest".
CREATE TABLE certificate_names (
    name    TEXT NOT NULL,
    cert_id TEXT NOT NULL,
    PRIMARY KEY (name, cert_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX certificate_names_cert ON certificate_names(cert_id);

-- INSERT OR REPLACE deletes without firing delete triggers (recursive
-- triggers are off), so the insert trigger drops the old names itself.
CREATE TRIGGER certificates_names_insert AFTER INSERT ON certificates BEGIN
    DELETE FROM certificate_names WHERE cert_id = NEW.id;
    INSERT OR IGNORE INTO certificate_names (name, cert_id)
        SELECT value, NEW.id FROM json_each(
            CASE WHEN json_valid(NEW.domains) THEN NEW.domains ELSE '[]' END)
        WHERE type = 'text';
END;
-- Rows are written whole (pt_store_cert_put): an UPDATE that changes the
-- names would leave the index behind, so it is refused.
CREATE TRIGGER certificates_names_update BEFORE UPDATE OF id, domains ON certificates BEGIN
    SELECT RAISE(ABORT, 'certificates: write the row again to change its id or names');
END;
CREATE TRIGGER certificates_names_delete AFTER DELETE ON certificates BEGIN
    DELETE FROM certificate_names WHERE cert_id = OLD.id;
END;

INSERT OR IGNORE INTO certificate_names (name, cert_id)
    SELECT j.value, c.id FROM certificates c,
        json_each(CASE WHEN json_valid(c.domains) THEN c.domains ELSE '[]' END) j
    WHERE j.type = 'text';
