"""`up` twice then `down` leaves no process behind (a private stack on its own ports)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.stack.devstack_cli import alive, devstack, listening

pytestmark = pytest.mark.integration

# Ports of this private stack: below 32768 and apart from the default ones (15432, 16379,
# 17017, 4566) so the stack under test never touches the one the other tests use.
PRIVATE = {
    "POSTGRES_PORT": "25432",
    "REDIS_PORT": "26379",
    "MONGODB_URL": "mongodb://127.0.0.1:27019/",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:24566",
    "FEED_API_PORT": "28000",
    "PROMETHEUS_PORT": "28090",
    "PUSHGATEWAY_PORT": "28091",
    "FANOUT_WORKER_METRICS_PORT": "28102",
    "REDIS_EXPORTER_PORT": "28121",
    "POSTGRES_EXPORTER_PORT": "28187",
}
PORTS = [int(v.rsplit(":", 1)[-1].strip("/")) for k, v in PRIVATE.items()]
SERVICES = {
    "postgres",
    "redis",
    "ferretdb",
    "emulator",
    "api",
    "fanout-worker",
    "pushgateway",
    "redis-exporter",
    "postgres-exporter",
    "prometheus",
}


def pids_of(state: Path) -> dict[str, int]:
    found = {p.stem: int(p.read_text().split()[0]) for p in (state / "run").glob("*.pid")}
    # PostgreSQL's data sits in .state unless the postgres user cannot reach it (devstack.py).
    moved = state / "postgres-location"
    pgroot = Path(moved.read_text().strip()) if moved.exists() else state / "postgres"
    pg = pgroot / "data" / "postmaster.pid"
    if pg.exists():
        found["postgres"] = int(pg.read_text().split()[0])
    return found


def test_up_twice_then_down_leaves_nothing_running(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(tmp_path, 0o755)  # the postgres system user must reach its data folder
    env = {**os.environ, **PRIVATE, "FEED_STATE_DIR": str(state)}
    for name in ("POSTGRES_DB", "MONGODB_DB", "REDIS_DB"):
        env.pop(name, None)

    try:
        first = devstack(env, "up")
        assert first.returncode == 0, first.stdout + first.stderr
        started = pids_of(state)
        assert set(started) == SERVICES
        assert all(alive(p) for p in started.values())
        for port in PORTS:
            assert listening(port), port
        # `up` also deploys template.yaml to the emulator and prints that API beside the dev one.
        assert "/_aws/execute-api/" in first.stdout and "stack feed-local" in first.stdout

        second = devstack(env, "up")
        assert second.returncode == 0, second.stdout + second.stderr
        assert "everything was running" in second.stdout
        assert pids_of(state) == started, "a second `up` must not start anything again"

        status = devstack(env, "status")
        ours = status.stdout.count(" ours ")
        assert status.returncode == 0 and ours == len(SERVICES), status.stdout

    finally:
        down = devstack(env, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not [n for n, p in started.items() if alive(p)]
    assert not [p for p in PORTS if listening(p)]
    assert devstack(env, "status").returncode == 3
    clean = devstack(env, "clean")
    assert clean.returncode == 0 and not state.exists(), clean.stdout + clean.stderr
