"""Shared test configuration.

Tests run against the real local services started by `make test` (infra/devstack.py). They use
their own databases so a developer's data under `make up` is never touched: PostgreSQL database
`feed_test`, MongoDB database `feed_test`, Redis logical database 15. The application's environment
names (POSTGRES_HOST, REDIS_PORT, ...) point them at other servers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from feed_wiring.settings import Settings

# Every statement the graph adapter sends during the session is checked against the shard rule
# (tests/shard_rule.py, feed_adapters/postgres/sharding.py).
pytest_plugins = ("tests.shard_rule",)

TEST_ENV_DEFAULTS = {
    "POSTGRES_DB": "feed_test",
    "MONGODB_DB": "feed_test",
    "REDIS_DB": "15",
}


def make_test_settings() -> Settings:
    # TEST_POSTGRES_DB and friends choose other test databases; the plain names stay the app's.
    overrides = {k: os.environ.get(f"TEST_{k}", v) for k, v in TEST_ENV_DEFAULTS.items()}
    return Settings.from_env({**os.environ, **overrides})


if Settings.from_env(os.environ).aws_endpoint_url:
    # The emulator takes any credentials, but AWS clients refuse to sign without some
    # (devstack.py sets the same defaults for `make test`; this covers a bare `pytest`).
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(scope="session")
def settings() -> Settings:
    return make_test_settings()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`run_last` tests wait for something that happens by itself (the deployed stack's
    schedules fire a minute after it is created): run them at the end, so that minute passes
    while the other tests run. The sort is stable: everything else keeps its order."""
    # In the cluster pass (REDIS_CLUSTER=true) the deployed stack's tests go after every other:
    # its scheduled jobs would share the cluster's only database with them (tests/e2e).
    cluster = make_test_settings().redis_cluster
    e2e = Path(__file__).parent / "e2e"

    def late(item: pytest.Item) -> tuple[bool, bool]:
        last = item.get_closest_marker("run_last") is not None
        return (cluster and e2e in Path(item.path).parents, last)

    items.sort(key=late)
    # `TOPOLOGY=scaled make test` runs these again with REDIS_CLUSTER=true (infra/devstack.py):
    # every test of the stores' integration suite and of the deployed stack (their services are
    # built from the test settings, whose Redis is the cluster then) and every other user of
    # the Redis fixture. Not those marked own_redis: they start a Redis (Cluster) of their own.
    stores = (Path(__file__).parent / "integration", e2e)
    for item in items:
        if item.get_closest_marker("own_redis"):
            continue
        if any(d in Path(item.path).parents for d in stores) or "redis_client" in getattr(
            item, "fixturenames", ()
        ):
            item.add_marker(pytest.mark.uses_redis)
