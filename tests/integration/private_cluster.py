"""A Redis Cluster of the test's own (devstack's, on private ports and a temporary state folder),
for the tests that stop its nodes: the suite's cluster of `TOPOLOGY=scaled` is never touched."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from feed_wiring.settings import Settings
from infra import devstack


@dataclass
class PrivateCluster:
    ports: list[int]
    env: dict[str, str]  # devstack reads its cluster settings from the environment
    layout: devstack.Layout
    settings: Settings

    @contextlib.contextmanager
    def environment(self) -> Iterator[None]:
        with pytest.MonkeyPatch.context() as mp:
            for name, value in self.env.items():
                mp.setenv(name, value)
            yield

    def pid(self, port: int) -> int:
        pid = devstack.read_pid(self.layout.pidfile(f"{devstack.CLUSTER_NODE_PREFIX}{port}"))
        assert pid is not None, f"node {port} does not run"
        return pid

    def kill(self, port: int) -> None:
        """The node dies at once (no shutdown, no save): a crashed or lost master."""
        os.kill(self.pid(port), signal.SIGKILL)

    def restart_stopped(self) -> list[str]:
        """Start the nodes that do not run; they rejoin (nodes.conf) and the cluster settles with
        a replica for every master again."""
        with self.environment():
            return devstack.up_redis_cluster(self.settings, self.layout)

    def stop(self) -> None:
        devstack.stop_redis_cluster(self.layout)


def private_cluster(
    tmp_path_factory: pytest.TempPathFactory, ports: list[int], node_timeout_ms: int
) -> Iterator[PrivateCluster]:
    """Start a 3-master cluster on `ports` (a fixture body: yields it, stops it after)."""
    busy = [p for p in ports if devstack.port_open("127.0.0.1", p)]
    assert not busy, f"ports {busy} are taken: this test needs them free"
    state: Path = tmp_path_factory.mktemp("redis-cluster")
    env = {
        "TOPOLOGY": "scaled",
        "REDIS_CLUSTER_PORTS": f"{ports[0]}-{ports[-1]}",
        "REDIS_CLUSTER_NODE_TIMEOUT_MS": str(node_timeout_ms),
        "FEED_STATE_DIR": str(state),
    }
    cluster = PrivateCluster(
        ports,
        env,
        devstack.Layout(state),
        Settings.from_env({"REDIS_PORT": str(ports[0]), "REDIS_CLUSTER": "true"}),
    )
    try:
        cluster.restart_stopped()  # none runs: starts and creates the cluster
        yield cluster
    finally:
        cluster.stop()
