"""`TOPOLOGY=scaled`: devstack's Redis Cluster (3 masters, a replica each) on private ports,
the application's cluster client against it, a restart that keeps the cluster, and `down`
(without TOPOLOGY) leaving nothing running."""

from __future__ import annotations

import os
from pathlib import Path
from unittest.mock import Mock

import pytest
import redis
from redis.cluster import RedisCluster
from redis.exceptions import MovedError

from feed_adapters.redis.client import make_redis
from feed_wiring.root import build_services
from feed_wiring.settings import Settings
from infra import devstack
from tests.fakes.queues import RecordingFanoutQueue
from tests.stack.devstack_cli import alive, listening
from tests.stack.devstack_cli import devstack as devstack_cli

pytestmark = pytest.mark.integration

# Below 32768 and apart from every other stack's ports; bus ports 23101-23106.
PORTS = list(range(23001, 23007))
BUS_PORTS = [p + devstack.DEFAULT_REDIS_CLUSTER_BUS_OFFSET for p in PORTS]
CLUSTER_ENV = {"TOPOLOGY": "scaled", "REDIS_CLUSTER_PORTS": f"{PORTS[0]}-{PORTS[-1]}"}
# The rest of the stack, for `status` and `down` in the CLI: ports where nothing listens (this
# test starts only the cluster; `status` just looks, `down` stops only this state's PIDs).
ELSEWHERE = {
    "POSTGRES_PORT": "23010",
    "REDIS_PORT": "23011",
    "MONGODB_URL": "mongodb://127.0.0.1:23012/",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:23013",
    "FEED_API_PORT": "23014",
    "PROMETHEUS_PORT": "23015",
    "PUSHGATEWAY_PORT": "23016",
    "FANOUT_WORKER_METRICS_PORT": "23017",
    "REDIS_EXPORTER_PORT": "23018",
    "POSTGRES_EXPORTER_PORT": "23019",
}


def node_pids(state: Path) -> dict[str, int]:
    return {
        p.stem: int(p.read_text().split()[0]) for p in (state / "run").glob("redis-cluster-*.pid")
    }


def topology(port: int) -> tuple[dict[str, int], dict[int, str]]:
    """CLUSTER NODES seen from `port` (redis-py parses it): each master owning slots -> its
    replicas, and port -> node id."""
    nodes = redis.Redis(port=port, decode_responses=True).execute_command("CLUSTER NODES")
    masters = {n["node_id"]: 0 for n in nodes.values() if "master" in n["flags"] and n["slots"]}
    for n in nodes.values():
        if "slave" in n["flags"]:
            masters[n["master_id"]] += 1
    ids = {int(addr.rsplit(":", 1)[1].split("@")[0]): n["node_id"] for addr, n in nodes.items()}
    return masters, ids


def keys_on_every_master(client: RedisCluster) -> dict[int, str]:
    """A key per master (master port -> key), found by the client's own slot map."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < 3:
        key = f"tl:{i}"
        found.setdefault(client.get_node_from_key(key).port, key)
        i += 1
    return found


def test_scaled_topology_runs_a_redis_cluster_the_app_client_uses(tmp_path, monkeypatch):
    busy = [p for p in PORTS + BUS_PORTS if listening(p)]
    assert not busy, f"ports {busy} are taken: this test needs them free"
    state = tmp_path / "state"
    for name, value in {**ELSEWHERE, **CLUSTER_ENV, "FEED_STATE_DIR": str(state)}.items():
        monkeypatch.setenv(name, value)
    layout = devstack.layout_from_env()
    settings = Settings.from_env({"REDIS_PORT": str(PORTS[0]), "REDIS_CLUSTER": "true"})
    cli_env = {**os.environ}  # the monkeypatched environment
    pids: dict[str, int] = {}
    try:
        started = devstack.up_redis_cluster(settings, layout)
        pids = node_pids(state)
        assert sorted(started) == sorted(pids) == [f"redis-cluster-{p}" for p in PORTS]
        for port in PORTS:
            info = devstack.cluster_info(port)
            assert info["cluster_state"] == "ok", (port, info)
            assert info["cluster_known_nodes"] == "6" and info["cluster_size"] == "3"
            assert (state / "redis-cluster" / str(port) / "nodes.conf").exists()
        for port in PORTS:
            masters, ids = topology(port)
            assert sorted(masters.values()) == [1, 1, 1], (port, masters)
            assert len(ids) == 6

        # The application's client, as the composition root builds it with REDIS_CLUSTER=true.
        client = make_redis(
            settings.redis_host, settings.redis_port, settings.redis_db, cluster=True
        )
        assert isinstance(client, RedisCluster)
        per_master = keys_on_every_master(client)
        assert {ids[p] for p in per_master} == set(masters)
        for port, key in per_master.items():
            assert client.set(key, f"on {port}")
        for port, key in per_master.items():
            assert client.get(key) == f"on {port}"
            # Stored on that master itself; any other master answers MOVED.
            assert redis.Redis(port=port, decode_responses=True).get(key) == f"on {port}"
            other = next(p for p in per_master if p != port)
            with pytest.raises(MovedError, match=f"127.0.0.1:{port}$"):
                redis.Redis(port=other).get(key)
        client.close()

        # The composition root builds the same client from the settings (REDIS_CLUSTER=true).
        unused = Mock()  # the other stores are not called while wiring
        services = build_services(
            settings, graph=unused, posts=unused, engagement=unused, queue=RecordingFanoutQueue()
        )
        wired = services.timelines._r
        assert isinstance(wired, RedisCluster)
        assert wired.get(per_master[PORTS[0]]) == f"on {PORTS[0]}"
        wired.close()

        # `status` lists the nodes as ours and the cluster as ok.
        status = devstack_cli(cli_env, "status")
        assert status.stdout.count(" ours ") == 6, status.stdout
        assert "cluster_state:ok" in status.stdout, status.stdout

        # A restart keeps the cluster (nodes.conf): same node ids, not created again.
        assert len(devstack.stop_redis_cluster(layout)) == 6
        assert not [p for p in pids.values() if alive(p)]
        assert not [p for p in PORTS if listening(p)]
        again = devstack.up_redis_cluster(settings, layout)
        pids = node_pids(state)
        assert len(again) == 6
        assert topology(PORTS[0])[1] == ids
        assert devstack.up_redis_cluster(settings, layout) == [], "all running: none started"
        assert devstack.cluster_info(PORTS[-1])["cluster_state"] == "ok"
    finally:
        # `down` without TOPOLOGY still stops the nodes this state folder started.
        down_env = {k: v for k, v in cli_env.items() if k != "TOPOLOGY"}
        down = devstack_cli(down_env, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert down.stdout.count("stopped redis-cluster-") == 6, down.stdout
    assert not [p for p in pids.values() if alive(p)]
    assert not [p for p in PORTS + BUS_PORTS if listening(p)]
    assert not node_pids(state)
