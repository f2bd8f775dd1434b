-- Who made each ban, and what a scoped token may ban (issue 11).
-- Bans made before this migration are attributed to 'admin': a "bans" token
-- can no longer list or delete them, which errs on the safe side.
ALTER TABLE bans ADD COLUMN created_by TEXT NOT NULL DEFAULT 'admin';
CREATE INDEX bans_created_by ON bans(created_by);

-- Widest prefix a "bans" token may ban (a prefix length: 24 allows /24 up to
-- /32) and how many live bans it may hold.
ALTER TABLE tokens ADD COLUMN max_prefix4 INTEGER NOT NULL DEFAULT 24;
ALTER TABLE tokens ADD COLUMN max_prefix6 INTEGER NOT NULL DEFAULT 64;
ALTER TABLE tokens ADD COLUMN quota INTEGER NOT NULL DEFAULT 100000;

-- Bans held per creator, kept by triggers: the quota check on every ban
-- write must not count 100,000 rows (14 ms each) under the API's lock.
-- Expired bans count until purged; the quota check purges before refusing.
-- (No INSERT OR IGNORE in the triggers: inside a trigger run by the UPSERT
-- of a ban, SQLite applies the outer statement's conflict policy instead.)
CREATE TABLE ban_counts (
    created_by TEXT PRIMARY KEY,
    n          INTEGER NOT NULL
) STRICT;
INSERT INTO ban_counts (created_by, n) SELECT created_by, COUNT(*) FROM bans GROUP BY created_by;
CREATE TRIGGER bans_counted_insert AFTER INSERT ON bans BEGIN
    INSERT INTO ban_counts (created_by, n) SELECT NEW.created_by, 0
        WHERE NOT EXISTS (SELECT 1 FROM ban_counts WHERE created_by = NEW.created_by);
    UPDATE ban_counts SET n = n + 1 WHERE created_by = NEW.created_by;
END;
CREATE TRIGGER bans_counted_delete AFTER DELETE ON bans BEGIN
    UPDATE ban_counts SET n = n - 1 WHERE created_by = OLD.created_by;
END;
CREATE TRIGGER bans_counted_owner AFTER UPDATE OF created_by ON bans
WHEN OLD.created_by IS NOT NEW.created_by BEGIN
    UPDATE ban_counts SET n = n - 1 WHERE created_by = OLD.created_by;
    INSERT INTO ban_counts (created_by, n) SELECT NEW.created_by, 0
        WHERE NOT EXISTS (SELECT 1 FROM ban_counts WHERE created_by = NEW.created_by);
    UPDATE ban_counts SET n = n + 1 WHERE created_by = NEW.created_by;
END;
