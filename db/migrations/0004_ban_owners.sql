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
