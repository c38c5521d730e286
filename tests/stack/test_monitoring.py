"""The monitoring, live: a private `up` (stores, emulator, dev API, fan-out worker, Prometheus,
Pushgateway, exporters) on its own ports, a short workload through the API and the scheduled
jobs, then every Prometheus target is up, every alert rule loads and evaluates, and every query
of every Grafana panel returns data from the live Prometheus.

Prometheus scrapes every second here (PROMETHEUS_SCRAPE_INTERVAL), so the rates have samples
within seconds of the workload.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from urllib.request import urlopen

import httpx
import pytest
import yaml

from feed_wiring.settings import Settings
from infra.mint_token import ensure_keypair, mint_token
from infra.monitoring.dashboard import load_dashboard, panel_queries
from tests.stack.devstack_cli import devstack

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration

# Apart from the default ports and from the other private stacks of the tests
# (test_devstack_lifecycle: 25432, 26379, 27019, 24566, 28000).
PRIVATE = {
    "POSTGRES_PORT": "25452",
    "REDIS_PORT": "26389",
    "MONGODB_URL": "mongodb://127.0.0.1:27029/",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:24576",
    "FEED_API_PORT": "28010",
    "PROMETHEUS_PORT": "29090",
    "PUSHGATEWAY_PORT": "29091",
    "FANOUT_WORKER_METRICS_PORT": "29102",
    "REDIS_EXPORTER_PORT": "29121",
    "POSTGRES_EXPORTER_PORT": "29187",
    "PROMETHEUS_SCRAPE_INTERVAL": "1s",
    # Small enough that a short workload reads past the cap (lazy) and fans out in chunks.
    "TIMELINE_MAX_LEN": "4",
    "FANOUT_CHUNK_SIZE": "1",
}
PROMETHEUS = f"http://127.0.0.1:{PRIVATE['PROMETHEUS_PORT']}"
API = f"http://127.0.0.1:{PRIVATE['FEED_API_PORT']}"
SCRAPES_APART = 2.5  # seconds: two scrapes at the 1 s interval, and some room
SCHEDULED_JOBS = ("prewarm", "rollup", "cleanup", "repair", "impressions")


def prometheus(path: str, **params: Any) -> Any:
    url = f"{PROMETHEUS}{path}" + (f"?{urlencode(params)}" if params else "")
    with urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    base = tmp_path_factory.mktemp("monitoring")
    os.chmod(base, 0o755)  # the postgres system user must reach its data folder
    state = base / "state"
    state.mkdir()
    # The application's defaults, not what the session's other tests set (the API tests put
    # their whole settings, token key included, in the environment for the session).
    ours = {f.name.upper() for f in dataclasses.fields(Settings)}
    env = {k: v for k, v in os.environ.items() if k not in ours}
    env.update(PRIVATE, FEED_STATE_DIR=str(state))
    try:
        up = devstack(env, "up", "--no-deploy")
        assert up.returncode == 0, up.stdout + up.stderr
        yield env
    finally:
        down = devstack(env, "down")
        assert down.returncode == 0, down.stdout + down.stderr


def run_workload(env: dict[str, str]) -> None:
    """Profiles, follows, posts (fanned out by the worker), feed pages past the cap, a like, a
    missing post, then every scheduled job through its Lambda handler."""
    settings = Settings.from_env(env)
    pair = ensure_keypair()
    users = ("ann", "bob", "cyd")
    tokens = {name: mint_token(name, settings=settings, pair=pair) for name in users}
    ids: dict[str, str] = {}
    with httpx.Client(base_url=API, timeout=10) as api:

        def call(who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
            headers = {"Authorization": f"Bearer {tokens[who]}"}
            return api.request(method, path, headers=headers, **kwargs)

        for who in tokens:
            r = call(who, "POST", "/v1/users", json={"handle": who, "display_name": who})
            assert r.status_code == 201, r.text
            ids[who] = r.json()["id"]
        # Each kind of request twice, a few scrapes apart: a series is created by its first
        # event, and only what happens after a scrape of it shows in rate(), as with any
        # steady traffic.
        for reader in ("bob", "cyd"):
            call(reader, "GET", "/v1/feed")  # builds their timelines (rebuilt: missing)
            assert call(reader, "PUT", f"/v1/me/following/{ids['ann']}").status_code in (200, 204)
            time.sleep(SCRAPES_APART)
        posted = []
        for n in range(8):
            r = call("ann", "POST", "/v1/posts", json={"text": f"post {n}"})
            assert r.status_code == 201, r.text
            posted.append(r.json()["id"])
            if n == 3:
                time.sleep(SCRAPES_APART)  # the first four fanned out and scraped
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the worker fans the posts out
            page = call("bob", "GET", "/v1/feed", params={"limit": 3}).json()
            if page["items"] and page["items"][0]["id"] == posted[-1]:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the fan-out worker did not deliver the posts")
        cursor = page["next_cursor"]
        while cursor:  # past the timeline's cap: lazily from the post store
            cursor = call("bob", "GET", "/v1/feed", params={"limit": 3, "cursor": cursor}).json()[
                "next_cursor"
            ]
        assert call("cyd", "PUT", f"/v1/posts/{posted[0]}/like").status_code in (200, 204)
        assert call("cyd", "GET", "/v1/posts/1").status_code == 404
        call("cyd", "DELETE", f"/v1/me/following/{ids['ann']}")
    for job in SCHEDULED_JOBS:
        result = subprocess.run(
            [sys.executable, "infra/invoke.py", job, f"events/{job}-scheduled.json"],
            env={**env, "PUSHGATEWAY_URL": f"http://127.0.0.1:{PRIVATE['PUSHGATEWAY_PORT']}"},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def scrape_jobs(env: dict[str, str]) -> set[str]:
    """The jobs of the configuration `up` rendered for this stack (every one must be up)."""
    config = Path(env["FEED_STATE_DIR"]) / "prometheus" / "prometheus.yml"
    jobs = {c["job_name"] for c in yaml.safe_load(config.read_text())["scrape_configs"]}
    assert {"feed-api", "fanout-worker", "pushgateway", "redis", "postgres"} <= jobs
    return jobs


def wait_for_first_scrapes(jobs: set[str], timeout: float = 60) -> None:
    """Until Prometheus has scraped every target once: what happens before a target's first
    scrape is in no rate() (its series start at the value they already have)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        targets = prometheus("/api/v1/targets")["activeTargets"]
        if {t["labels"]["job"] for t in targets if t["health"] == "up"} == jobs:
            return
        time.sleep(0.5)
    pytest.fail(f"not every target was scraped within {timeout:.0f} s: {targets}")


@pytest.fixture(scope="module")
def after_workload(stack: dict[str, str]) -> dict[str, str]:
    wait_for_first_scrapes(scrape_jobs(stack))
    run_workload(stack)
    # The worker samples the queues every 2 s; a few more scrapes put everything in range.
    time.sleep(6)
    return stack


def test_every_target_is_up(after_workload: dict[str, str]) -> None:
    targets = prometheus("/api/v1/targets")["activeTargets"]
    health = {t["labels"]["job"]: (t["health"], t["lastError"]) for t in targets}
    assert set(health) == scrape_jobs(after_workload)
    assert {job: h for job, h in health.items() if h[0] != "up"} == {}


def test_every_alert_rule_loads_and_evaluates(after_workload: dict[str, str]) -> None:
    groups = prometheus("/api/v1/rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) >= 5
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []


def test_every_dashboard_panel_query_returns_data(after_workload: dict[str, str]) -> None:
    queries = panel_queries(load_dashboard(), rate_interval="1m", interval="1s", range_="5m")
    assert len(queries) > 30
    empty = []
    for q in queries:
        result = prometheus("/api/v1/query", query=q.expr)["result"]
        values = [float(sample["value"][1]) for sample in result]
        if not any(math.isfinite(v) for v in values):
            empty.append(f"{q.panel_title} [{q.ref_id}]: {q.expr} -> {values}")
    assert empty == [], "\n".join(empty)


def test_scheduled_jobs_pushed_their_runs(after_workload: dict[str, str]) -> None:
    result = prometheus("/api/v1/query", query="feed_job_last_success_timestamp_seconds")["result"]
    pushed = {sample["metric"]["job"]: float(sample["value"][1]) for sample in result}
    assert set(pushed) == set(SCHEDULED_JOBS)
    assert all(time.time() - at < 300 for at in pushed.values())
