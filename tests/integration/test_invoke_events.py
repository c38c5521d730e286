"""Every sample event in events/ is accepted by its function through `make invoke`'s path
(infra/invoke.py): HTTP events get an HTTP response, the SQS batch no failures, the scheduled
events a job report. Real stores (the test databases); fan-out jobs go to a queue of their own
in the AWS emulator."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from infra import invoke

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

EVENTS = sorted((ROOT / "events").glob("*.json"))
REPORT_KEYS = {
    "prewarm": {"active_users", "warmed", "failed", "seconds"},
    "repair": {"delivered", "retracted", "backfills", "seconds"},
    "impressions": {"impressions", "buffered_events", "locked_out", "seconds"},
    "rollup": {"hours", "days", "rows", "seconds", "events_drained"},
    "cleanup": {"timelines_seen", "dropped", "seconds"},
}


def function_of(path: Path) -> str:
    return path.name.split("-", 1)[0]


@pytest.fixture(scope="module")
def local_env(settings) -> Any:
    env = {
        field.name.upper(): "" if (value := getattr(settings, field.name)) is None else str(value)
        for field in dataclasses.fields(settings)
    }
    from infra.local_queues import ensure_fanout_queues

    env["FANOUT_QUEUE_URL"], _ = ensure_fanout_queues(settings, name="feed-invoke-test-fanout")
    env["JWT_PUBLIC_KEY_FILE"] = ""  # as on a developer's machine: the local key pair
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        for name, value in invoke.local_environment("invoke-test").items():
            mp.setenv(name, value)
        yield


def test_every_function_has_sample_events():
    assert {function_of(p) for p in EVENTS} == set(invoke.function_names())


def test_every_route_has_a_sample_event():
    import importlib

    routes = set()
    for module in ("users", "posts", "feed"):
        router = importlib.import_module(f"feed_api.routers.{module}").router
        routes |= {f"{m} {r.path}" for r in router.routes for m in r.methods}
    samples = {json.loads(p.read_text()).get("routeKey") for p in EVENTS}
    assert routes <= samples


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: p.name)
def test_sample_event_is_accepted(path: Path, local_env, clean_stores):
    function = function_of(path)
    response = invoke.invoke(function, json.loads(path.read_text()))
    if "routeKey" in path.read_text():
        assert response["statusCode"] < 500, response
        assert response["statusCode"] != 401, "the token placeholder was not replaced"
        assert isinstance(json.loads(response["body"] or "{}"), dict)
    elif function == "fanout":
        assert response == {"batchItemFailures": []}
    else:
        assert set(response) == REPORT_KEYS[function]
