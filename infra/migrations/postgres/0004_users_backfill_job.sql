-- The backfill that will finish an author's current pull -> push crossing: set with the
-- crossing to push_pending, cleared when that backfill switches the author to push. A backfill
-- job of an earlier crossing finds another id here and changes nothing.
ALTER TABLE users ADD COLUMN backfill_job text;
-- Crossings pending when this runs have no named job: their authors go back to pull, which
-- reads are always correct with (the next count change below the low mark crosses again).
UPDATE users SET fanout_mode = 'pull' WHERE fanout_mode = 'push_pending';
