-- When the current crossing's backfill was started: the repair job re-queues a backfill still
-- pending minutes later (its job was never queued, or died), not one that is merely running.
ALTER TABLE users ADD COLUMN backfill_at timestamptz;
CREATE INDEX users_pending_backfill_idx ON users (backfill_at) WHERE fanout_mode = 'push_pending';
