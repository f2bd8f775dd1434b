-- Reserved for the "bans" branch's migration 0004 (migrations must be
-- numbered without gaps). Replaced by that file when both branches merge.
SELECT 1;
