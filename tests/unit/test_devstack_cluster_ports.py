"""REDIS_CLUSTER_PORTS and TOPOLOGY as infra/devstack.py reads them."""

from __future__ import annotations

import pytest

from infra import devstack
from infra.devstack import parse_cluster_ports


def test_a_range_a_list_and_a_mix_give_the_same_ports():
    expected = [17001, 17002, 17003, 17004, 17005, 17006]
    assert parse_cluster_ports("17001-17006") == expected
    assert parse_cluster_ports("17001,17002,17003,17004,17005,17006") == expected
    assert parse_cluster_ports(" 17001-17003, 17004 ,17005-17006,") == expected


def test_the_default_ports_are_valid_and_below_the_ephemeral_range():
    ports = parse_cluster_ports(devstack.DEFAULT_REDIS_CLUSTER_PORTS)
    assert len(ports) == 6
    assert max(ports) + devstack.DEFAULT_REDIS_CLUSTER_BUS_OFFSET < 32768


def test_eight_ports_make_four_masters_with_a_replica_each():
    assert len(parse_cluster_ports("23001-23008")) == 8


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("17001-17005", "at least 6 ports"),
        ("17001-17007", "a multiple of 2"),
        ("17001,17001,17002-17005", "listed twice"),
        ("17006-17001", "not a port or a range"),
        ("17001-17006x", "not a port or a range"),
        ("32700-32705", r"port 32700 \(bus 32800\) is outside"),
        ("1000-1005", "is outside"),
    ],
)
def test_bad_port_lists_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_cluster_ports(spec)


def test_a_bus_port_may_not_be_a_nodes_port():
    with pytest.raises(ValueError, match="bus port 17003 of 17001"):
        parse_cluster_ports("17001-17006", bus_offset=2)
    assert parse_cluster_ports("17001-17006", bus_offset=6)[-1] == 17006


def test_topology_defaults_to_single_and_refuses_unknown_values(monkeypatch):
    monkeypatch.delenv("TOPOLOGY", raising=False)
    assert devstack.topology() == "single"
    monkeypatch.setenv("TOPOLOGY", "Scaled")
    assert devstack.topology() == "scaled"
    monkeypatch.setenv("TOPOLOGY", "cluster")
    with pytest.raises(SystemExit, match="TOPOLOGY must be one of single, scaled"):
        devstack.topology()


def test_single_topology_has_no_cluster_nodes_and_scaled_has_one_per_port(tmp_path, monkeypatch):
    from feed_wiring.settings import Settings

    layout = devstack.Layout(tmp_path)
    monkeypatch.delenv("TOPOLOGY", raising=False)
    monkeypatch.setenv("REDIS_CLUSTER_PORTS", "23001-23006")
    assert devstack.cluster_nodes(Settings(), layout) == []
    monkeypatch.setenv("TOPOLOGY", "scaled")
    nodes = devstack.cluster_nodes(Settings(), layout)
    assert len(nodes) == 6
    first, last = nodes[0], nodes[-1]
    assert (first.name, first.port, first.bus_port) == ("redis-cluster-23001", 23001, 23101)
    assert last.workdir == tmp_path / "redis-cluster" / "23006"


def test_the_cluster_pass_points_the_test_settings_at_the_first_node(monkeypatch):
    monkeypatch.setenv("REDIS_CLUSTER_PORTS", "23001-23006")
    env = devstack.cluster_pass_env()
    assert env == {
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": "23001",
        "REDIS_CLUSTER": "true",
        "TEST_REDIS_DB": "0",
    }
    from tests.conftest import make_test_settings

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = make_test_settings()
    assert (settings.redis_port, settings.redis_cluster, settings.redis_db) == (23001, True, 0)


def test_the_cluster_pass_selects_the_store_and_stack_tests_and_no_unit_test():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    select = ["-m", devstack.CLUSTER_PASS_MARKER, "tests/e2e", "tests/integration", "tests/unit"]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", *select],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    selected = {line.split("::")[0] for line in out.stdout.splitlines() if "::" in line}
    assert "tests/integration/test_timeline_push.py" in selected, out.stdout[-2000:]
    assert "tests/integration/api/test_api_feed.py" in selected  # services from the settings
    assert "tests/e2e/test_deployed_stack.py" in selected  # the stack's functions: the cluster
    assert all(path.startswith(("tests/integration/", "tests/e2e/")) for path in selected)
