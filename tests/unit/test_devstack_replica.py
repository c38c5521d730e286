"""The PostgreSQL standby of `TOPOLOGY=scaled` as infra/devstack.py lays it out (no server)."""

from __future__ import annotations

import pytest

from feed_wiring.settings import DEFAULT_POSTGRES_REPLICA_PORT, Settings
from infra import devstack


@pytest.fixture
def layout(tmp_path, monkeypatch):
    monkeypatch.setattr(devstack, "postgres_root", lambda layout: layout.state / "postgres")
    return devstack.Layout(tmp_path)


def test_single_topology_has_no_replica_and_scaled_has_one(layout, monkeypatch):
    monkeypatch.delenv("TOPOLOGY", raising=False)
    assert devstack.postgres_replicas(Settings(), layout) == []
    monkeypatch.setenv("TOPOLOGY", "scaled")
    (replica,) = devstack.postgres_replicas(Settings(), layout)
    assert (replica.name, replica.host, replica.port) == (
        "postgres-replica",
        "127.0.0.1",
        DEFAULT_POSTGRES_REPLICA_PORT,
    )
    # Beside the primary's data, so `make clean` deletes both.
    assert replica.datadir == layout.state / "postgres" / "replica"
    assert devstack.Postgres(Settings(), layout).datadir == layout.state / "postgres" / "data"


def test_the_replica_follows_its_settings_and_is_external_elsewhere(layout):
    settings = Settings(postgres_replica_port=22433)
    assert devstack.PostgresReplica(settings, layout).port == 22433
    remote = devstack.PostgresReplica(Settings(postgres_replica_host="db-ro.internal"), layout)
    assert not remote.local  # someone else's: used as it is, never started here


def test_the_default_replica_port_is_below_the_ephemeral_range():
    assert DEFAULT_POSTGRES_REPLICA_PORT < devstack.EPHEMERAL_PORTS_START
    assert Settings().postgres_port != DEFAULT_POSTGRES_REPLICA_PORT


def test_down_and_status_see_a_running_replica_whatever_topology_says(layout, monkeypatch):
    monkeypatch.delenv("TOPOLOGY", raising=False)
    pidfile = layout.state / "postgres" / "replica" / "postmaster.pid"
    pidfile.parent.mkdir(parents=True)
    pidfile.write_text("1\n")  # a live PID (init): what a running standby leaves
    (replica,) = devstack.postgres_replicas(Settings(), layout)
    assert replica.our_pid() == 1
