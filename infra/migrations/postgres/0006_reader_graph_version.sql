-- Versions of what a feed read needs from PostgreSQL, so a process may keep a reader's graph in
-- memory and reuse it, checking on every read that nothing changed (one row, not every edge):
-- - users.graph_version takes a new value with every change to the user's follows, mutes and
--   blocks (either side of a block);
-- - graph_epoch.mode_epoch takes a new value with every change of any user's fanout_mode, which
--   lands in every follower's graph (crossings are rare: a new epoch clears every cache once).
-- Both change in the same transaction as the change itself. Values come from one sequence, so a
-- value is never reused, not even by rows re-created after a TRUNCATE (the bench reloads users).
-- Existing rows start at 0 through a constant default (no table rewrite); new rows draw from the
-- sequence.
CREATE SEQUENCE graph_version_seq;
ALTER TABLE users ADD COLUMN graph_version bigint NOT NULL DEFAULT 0;
ALTER TABLE users ALTER COLUMN graph_version SET DEFAULT nextval('graph_version_seq');
CREATE TABLE graph_epoch (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    mode_epoch bigint NOT NULL DEFAULT nextval('graph_version_seq')
);
INSERT INTO graph_epoch DEFAULT VALUES;
