"""`TOPOLOGY=scaled`: devstack's PostgreSQL streaming standby on private ports (primary 22432,
standby 22433): cloned from the primary and streaming, read-only, seen by `status`, restarted
from its own data (no new clone), cloned again when the WAL it needs is gone, and `down`
(without TOPOLOGY) stopping it with the primary."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg
import pytest

from feed_adapters.postgres.replica import PRIMARY_POSITION_SQL
from feed_wiring.settings import Settings
from infra import devstack
from tests.stack.devstack_cli import alive, listening
from tests.stack.devstack_cli import devstack as devstack_cli

pytestmark = pytest.mark.integration

PRIMARY, STANDBY = 22432, 22433
# The rest of the stack, for `status` and `down` in the CLI: ports where nothing listens.
ELSEWHERE = {
    "REDIS_PORT": "22441",
    "MONGODB_URL": "mongodb://127.0.0.1:22442/",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:22444",
    "FEED_API_PORT": "22445",
    "PROMETHEUS_PORT": "22446",
    "PUSHGATEWAY_PORT": "22447",
    "FANOUT_WORKER_METRICS_PORT": "22448",
    "REDIS_EXPORTER_PORT": "22449",
    "POSTGRES_EXPORTER_PORT": "22450",
}


def dsn(port: int) -> str:
    return f"postgresql://feed:feed@127.0.0.1:{port}/feed"


def postmaster_pid(datadir: Path) -> int | None:
    try:
        return int((datadir / "postmaster.pid").read_text().split()[0])
    except OSError:
        return None


def wait_replayed(primary: psycopg.Connection, standby: psycopg.Connection) -> None:
    position = primary.execute(PRIMARY_POSITION_SQL).fetchone()[0]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        row = standby.execute("SELECT (pg_last_wal_replay_lsn() - '0/0')::bigint").fetchone()
        if row[0] >= position:
            return
        time.sleep(0.02)
    raise AssertionError("the standby did not replay the primary's WAL within 10 s")


def test_scaled_topology_runs_a_streaming_standby(tmp_path, monkeypatch, capsys):
    busy = [p for p in (PRIMARY, STANDBY) if listening(p)]
    assert not busy, f"ports {busy} are taken: this test needs them free"
    state = tmp_path / "state"
    state.mkdir()
    env = {
        **ELSEWHERE,
        "TOPOLOGY": "scaled",
        "POSTGRES_PORT": str(PRIMARY),
        "POSTGRES_REPLICA_PORT": str(STANDBY),
        "FEED_STATE_DIR": str(state),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("POSTGRES_DB", raising=False)
    layout = devstack.layout_from_env()
    settings = Settings.from_env(os.environ)
    primary_svc = devstack.Postgres(settings, layout)
    replica_svc = devstack.PostgresReplica(settings, layout)
    cli_env = {**os.environ}
    try:
        primary_svc.start()
        assert devstack.up_postgres_replica(settings, layout) == ["postgres-replica"]
        assert "cloning the PostgreSQL primary" in capsys.readouterr().out
        assert replica_svc.datadir.parent == primary_svc.datadir.parent
        assert replica_svc.receiver_status() == "streaming"
        assert devstack.up_postgres_replica(settings, layout) == [], "running: not started again"

        with (
            psycopg.connect(dsn(PRIMARY), autocommit=True) as primary,
            psycopg.connect(dsn(STANDBY), autocommit=True) as standby,
        ):
            assert primary.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
            assert standby.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
            primary.execute("CREATE TABLE replicated (n int)")
            primary.execute("INSERT INTO replicated VALUES (1)")
            wait_replayed(primary, standby)
            assert standby.execute("SELECT n FROM replicated").fetchall() == [(1,)]
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                standby.execute("INSERT INTO replicated VALUES (2)")

        # `status` lists the standby as ours and says how the app reads from it.
        status = devstack_cli(cli_env, "status")
        assert "postgres-replica" in status.stdout and " ours " in status.stdout, status.stdout
        assert f"REPLICA   127.0.0.1:{STANDBY} (standby, WAL receiver streaming" in status.stdout

        # A restart keeps its data: no new clone, and it catches up from the primary's WAL.
        first_pid = replica_svc.our_pid()
        assert replica_svc.stop()
        assert replica_svc.our_pid() is None and not listening(STANDBY)
        with psycopg.connect(dsn(PRIMARY), autocommit=True) as primary:
            primary.execute("INSERT INTO replicated VALUES (3)")
        assert devstack.up_postgres_replica(settings, layout) == ["postgres-replica"]
        assert "cloning" not in capsys.readouterr().out
        assert replica_svc.our_pid() not in (None, first_pid)
        with (
            psycopg.connect(dsn(PRIMARY), autocommit=True) as primary,
            psycopg.connect(dsn(STANDBY), autocommit=True) as standby,
        ):
            wait_replayed(primary, standby)
            assert standby.execute("SELECT n FROM replicated ORDER BY n").fetchall() == [(1,), (3,)]

        # Stopped while the primary recycled the WAL it needs: it cannot catch up, so `up`
        # clones it again (there is no replication slot keeping WAL for it).
        assert replica_svc.stop()
        with psycopg.connect(dsn(PRIMARY), autocommit=True) as primary:
            first_wal = primary.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()
            for n in range(12):
                primary.execute("INSERT INTO replicated VALUES (%s)", (10 + n,))
                primary.execute("SELECT pg_switch_wal()")
            primary.execute("CHECKPOINT")
            primary.execute("CHECKPOINT")
            names = {r[0] for r in primary.execute("SELECT name FROM pg_ls_waldir()")}
            assert first_wal[0] not in names, "the test needs the standby's WAL recycled"
        replica_svc.start(catch_up_seconds=3)
        assert "cloning it again" in capsys.readouterr().out
        assert replica_svc.receiver_status() == "streaming"
        with psycopg.connect(dsn(STANDBY), autocommit=True) as standby:
            assert standby.execute("SELECT count(*) FROM replicated").fetchone() == (14,)
    finally:
        pids = [pid for pid in (primary_svc.our_pid(), replica_svc.our_pid()) if pid]
        # `down` without TOPOLOGY stops the standby this state folder started, then the primary.
        down_env = {k: v for k, v in cli_env.items() if k != "TOPOLOGY"}
        down = devstack_cli(down_env, "down")
        devstack.remove_state(layout)
    assert down.returncode == 0, down.stdout + down.stderr
    lines = down.stdout.splitlines()
    assert "[devstack] stopped postgres-replica" in lines, down.stdout
    assert lines.index("[devstack] stopped postgres-replica") < lines.index(
        "[devstack] stopped postgres"
    )
    assert not [p for p in pids if alive(p)]
    assert not [p for p in (PRIMARY, STANDBY) if listening(p)]
