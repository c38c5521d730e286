-- Users. Ids are snowflakes made by the application (no sequence).
CREATE TABLE users (
    id              bigint PRIMARY KEY,
    auth_subject    text NOT NULL,
    handle          text NOT NULL,
    display_name    text NOT NULL,
    follower_count  bigint NOT NULL DEFAULT 0 CHECK (follower_count >= 0),
    following_count bigint NOT NULL DEFAULT 0 CHECK (following_count >= 0),
    -- push below the celebrity threshold, pull at or above, push_pending while a backfill runs.
    fanout_mode     text NOT NULL DEFAULT 'push'
                    CHECK (fanout_mode IN ('push', 'pull', 'push_pending')),
    last_active_at  timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_auth_subject_key UNIQUE (auth_subject),
    CONSTRAINT users_handle_chars CHECK (handle ~ '^[A-Za-z0-9_]{3,30}$')
);

-- Handles are unique case-insensitively (citext-like without the extension).
CREATE UNIQUE INDEX users_handle_lower_key ON users (lower(handle));
