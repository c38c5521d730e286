"""A private PostgreSQL primary and streaming standby for the read replica's tests, started by
infra/devstack.py's own Postgres and PostgresReplica on ports 22432 and 22433, its data in a
temporary folder (or the postgres user's, when it cannot enter that one)."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from feed_adapters.postgres.replica import PRIMARY_POSITION_SQL
from feed_wiring.settings import Settings
from infra import devstack, init_db
from tests.stack.devstack_cli import listening

PRIMARY_PORT, STANDBY_PORT = 22432, 22433
DB = "feed"


def dsn(port: int) -> str:
    return f"postgresql://feed:feed@127.0.0.1:{port}/{DB}"


class PgPair:
    def __init__(self, state: Path) -> None:
        self.layout = devstack.Layout(state)
        settings = Settings(postgres_port=PRIMARY_PORT, postgres_replica_port=STANDBY_PORT)
        self.primary = devstack.Postgres(settings, self.layout)
        self.standby = devstack.PostgresReplica(settings, self.layout)

    def start(self) -> PgPair:
        busy = [p for p in (PRIMARY_PORT, STANDBY_PORT) if listening(p)]
        assert not busy, f"ports {busy} are taken: the replica tests need them free"
        self.layout.state.mkdir(parents=True, exist_ok=True)
        self.primary.start()
        init_db.apply_postgres_migrations(dsn(PRIMARY_PORT))
        with psycopg.connect(dsn(PRIMARY_PORT), autocommit=True) as conn:
            # No WAL but the tests' own: an autovacuum between two LSN samples would look
            # like lag to the router (it is, for a moment) and make timing assertions flaky.
            conn.execute("ALTER SYSTEM SET autovacuum = off")
            conn.execute("SELECT pg_reload_conf()")
        self.standby.start()
        return self

    def close(self) -> None:
        devstack.stop_postgres(self.layout, "replica")
        devstack.stop_postgres(self.layout)
        devstack.remove_state(self.layout)

    # -- the standby -------------------------------------------------------------------------

    def _standby_sql(self, sql: str) -> None:
        with psycopg.connect(dsn(STANDBY_PORT), autocommit=True) as conn:
            conn.execute(sql)

    def pause(self) -> None:
        """Stop replaying WAL (the standby keeps receiving it and answering queries)."""
        self._standby_sql("SELECT pg_wal_replay_pause()")

    def resume(self) -> None:
        self._standby_sql("SELECT pg_wal_replay_resume()")

    def stop_standby(self) -> None:
        devstack.stop_postgres(self.layout, "replica")

    def ensure_standby(self) -> None:
        """Running, replaying, and caught up with the primary."""
        if self.standby.our_pid() is None:
            self.standby.start()
        self.resume()
        self.wait_replayed()

    def wait_replayed(self, timeout: float = 10.0) -> float:
        """Wait until the standby has replayed everything committed so far; the seconds it
        took."""
        started = time.monotonic()
        with (
            psycopg.connect(dsn(PRIMARY_PORT), autocommit=True) as primary,
            psycopg.connect(dsn(STANDBY_PORT), autocommit=True) as standby,
        ):
            position = primary.execute(PRIMARY_POSITION_SQL).fetchone()[0]
            while time.monotonic() - started < timeout:
                row = standby.execute("SELECT (pg_last_wal_replay_lsn() - '0/0')::bigint")
                if row.fetchone()[0] >= position:
                    return time.monotonic() - started
                time.sleep(0.005)
        raise AssertionError(f"the standby did not replay the primary's WAL in {timeout} s")

    def on_standby(self, sql: str, *params: object) -> list[tuple]:
        with psycopg.connect(dsn(STANDBY_PORT), autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def on_primary(self, sql: str, *params: object) -> None:
        with psycopg.connect(dsn(PRIMARY_PORT), autocommit=True) as conn:
            conn.execute(sql, params)
