-- Token scope "backend:NAME" (a YunoHost server's own domains, issue 12).
-- Only the CHECK constraint changes, so the table is not rebuilt: the
-- procedure SQLite documents for changing a CHECK constraint edits the stored
-- CREATE TABLE text and keeps every column added by earlier migrations.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
   SET sql = replace(sql, 'CHECK (scope IN (''admin'', ''bans''))',
                     'CHECK (scope IN (''admin'', ''bans'') OR scope GLOB ''backend:[a-z0-9]*'')')
 WHERE type = 'table' AND name = 'tokens';
PRAGMA writable_schema = RESET;
