-- Recently active users, newest first: the cache prewarm job pages through them by
-- (last_active_at, id) descending.
CREATE INDEX users_last_active_idx ON users (last_active_at DESC, id DESC);
