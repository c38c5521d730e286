-- The authors not in push mode (pull, push_pending), beside users.fanout_mode, which stays the
-- truth. The feed's graph read takes its followees' modes from here instead of joining the
-- followees' users rows, so it reads only rows keyed by the reader: one shard once users are
-- sharded by id (docs/sharding.md), where this table becomes a reference table, copied to every
-- node. It holds the few authors above the celebrity threshold (40 in the bench graph).
-- PostgresGraphStore writes it in the same transaction as every change of users.fanout_mode (the
-- same transactions move graph_epoch.mode_epoch). The foreign key holds on one PostgreSQL only
-- (a reference table cannot reference a sharded one): users are never deleted.
-- A mode changed by code older than this file after it ran would be missing here: apply it with
-- the code that writes it, or run its INSERT again, as an upsert, after the deploy.
CREATE TABLE author_modes (
    author_id   bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    fanout_mode text NOT NULL CHECK (fanout_mode IN ('pull', 'push_pending'))
);
INSERT INTO author_modes (author_id, fanout_mode)
SELECT id, fanout_mode FROM users WHERE fanout_mode <> 'push';
