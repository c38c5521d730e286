"""The deployed functions publish the metric catalogue as EMF: the documents their invocations
wrote to CloudWatch Logs in the emulator, read back and checked for the names, namespace,
dimensions and units CloudWatch would turn into metrics (the emulator does not extract EMF
itself, so this is as far as it can be followed here)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from feed_wiring.settings import Settings
from infra import deploy
from newsfeed.telemetry import CATALOGUE
from tests.e2e.conftest import E2E_STAGE
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
UNITS = {m.name: m.unit for m in CATALOGUE}


def emf_documents(settings: Settings, function: str) -> list[dict[str, Any]]:
    logs = deploy.aws(settings, "logs")
    group = f"/aws/lambda/feed-{E2E_STAGE}-{function}"
    try:
        events = logs.filter_log_events(logGroupName=group)["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    docs = []
    for event in events:
        text = event["message"].strip()
        if text.startswith("{") and '"_aws"' in text:
            docs.append(json.loads(text))
    return docs


def metric_points(docs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """Each document carrying `name`: its dimensions (names and values) and values."""
    found = []
    for doc in docs:
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                if metric["Name"] == name:
                    assert directive["Namespace"] == f"FeedPlatform/{E2E_STAGE}"
                    assert metric["Unit"] == UNITS[name]
                    (dims,) = directive["Dimensions"]
                    found.append({"dims": {d: doc[d] for d in dims}, "values": doc[name]})
    return found


def test_api_functions_publish_request_and_read_metrics(api, e2e_settings):
    reader = api.user("metrics")
    assert api.call("GET", "/v1/feed", reader["sub"]).status_code == 200

    def feed_metrics() -> list[dict[str, Any]]:
        docs = emf_documents(e2e_settings, "feed")
        return metric_points(docs, "feed_http_request_duration_seconds")

    requests = wait_for(feed_metrics, "the feed function's EMF documents")
    assert {
        "route": "/v1/feed",
        "method": "GET",
        "status": "200",
        "service": "feed",
    } in [p["dims"] for p in requests]
    reads = metric_points(emf_documents(e2e_settings, "feed"), "feed_read_duration_seconds")
    assert reads and all(p["dims"]["outcome"] in ("cached", "rebuilt", "lazy") for p in reads)
    assert all(0 < v < 30 for p in reads for v in p["values"])


def test_the_fanout_function_publishes_jobs_and_lag(api, e2e_redis, e2e_settings):
    author, fan = api.user("lag_author"), api.user("lag_fan")
    assert api.call("PUT", f"/v1/me/following/{author['id']}", fan["sub"]).status_code == 204
    api.feed_ids(fan)
    post = api.call("POST", "/v1/posts", author["sub"], json={"text": "measured"}).json()
    wait_for(lambda: post["id"] in api.feed_ids(fan), "fan-out of the post")

    def lags() -> list[dict[str, Any]]:
        return metric_points(emf_documents(e2e_settings, "fanout"), "feed_fanout_lag_seconds")

    points = wait_for(lags, "the fan-out function's lag metric")
    assert all(p["dims"] == {"service": "fanout"} for p in points)
    assert all(0 <= v < 300 for p in points for v in p["values"])
    jobs = metric_points(emf_documents(e2e_settings, "fanout"), "feed_fanout_jobs_total")
    assert {"kind": "push", "outcome": "done", "service": "fanout"} in [p["dims"] for p in jobs]


@pytest.mark.run_last
def test_scheduled_functions_publish_their_runs(api, e2e_settings):
    # The schedules run every minute in this stack; by the time this runs, prewarm has.
    def runs() -> list[dict[str, Any]]:
        docs = emf_documents(e2e_settings, "prewarm")
        return metric_points(docs, "feed_job_last_success_timestamp_seconds")

    points = wait_for(runs, "a prewarm run's EMF metrics", timeout=90, every=2)
    assert points[0]["dims"] == {"job": "prewarm", "service": "prewarm"}
    durations = metric_points(emf_documents(e2e_settings, "prewarm"), "feed_job_duration_seconds")
    assert durations and all(0 <= v < 60 for p in durations for v in p["values"])
