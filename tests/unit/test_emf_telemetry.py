"""The catalogue on Lambda: EmfTelemetry's EMF documents (what CloudWatch Logs turns into
metrics), and the scheduled handler's job metrics, in EMF and pushed to a Pushgateway (a real
HTTP server on 127.0.0.1 standing in for it)."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi import FastAPI

from feed_adapters.prometheus.pushgateway import push_job_run
from feed_api.metrics import RequestMetrics
from feed_lambda.handlers import fanout_handler, http_handler, scheduled_handler
from feed_lambda.observability import observability
from feed_lambda.telemetry import MAX_VALUES_PER_DOCUMENT, EmfTelemetry
from infra.lambda_events import LambdaContext, http_event, sqs_event
from newsfeed.telemetry import (
    ENGAGEMENT_BUFFER_LENGTH,
    FANOUT_JOBS,
    FANOUT_LAG_SECONDS,
    HTTP_REQUEST_SECONDS,
    JOB_LAST_SUCCESS,
    STORE_ERRORS,
)

# As feed_lambda.observability does in a function: the cold-start-only Metrics has nothing else.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

NAMESPACE = "FeedPlatformTest"
_services = itertools.count()


@pytest.fixture(autouse=True)
def powertools_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE)


def emf_documents(out: str) -> list[dict[str, Any]]:
    """The EMF documents among stdout's lines (the function's JSON logs are there too)."""
    docs = []
    for line in out.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        doc = json.loads(line)
        if "_aws" in doc:
            docs.append(doc)
    return docs


def directive(doc: dict[str, Any]) -> dict[str, Any]:
    (cw,) = doc["_aws"]["CloudWatchMetrics"]
    return cw


def values(doc: dict[str, Any], name: str) -> list[float]:
    value = doc[name]
    return value if isinstance(value, list) else [value]


def units(doc: dict[str, Any]) -> dict[str, str]:
    return {m["Name"]: m["Unit"] for m in directive(doc)["Metrics"]}


def dimension_set(doc: dict[str, Any]) -> dict[str, str]:
    (names,) = directive(doc)["Dimensions"]
    return {name: doc[name] for name in names}


def feed_documents(out: str) -> list[dict[str, Any]]:
    """The documents carrying catalogue metrics (not Powertools' own ColdStart)."""
    return [d for d in emf_documents(out) if any(m.startswith("feed_") for m in units(d))]


# -- EmfTelemetry -----------------------------------------------------------------------------


def test_one_document_per_dimension_set_with_the_labels_and_the_service(
    capsys: pytest.CaptureFixture[str],
) -> None:
    telemetry = EmfTelemetry(NAMESPACE, "fanout")
    telemetry.count(FANOUT_JOBS, kind="push", outcome="done")
    telemetry.count(FANOUT_JOBS, kind="push", outcome="done")
    telemetry.count(FANOUT_JOBS, kind="push", outcome="failed")
    telemetry.observe(FANOUT_LAG_SECONDS, 0.25)
    telemetry.observe(FANOUT_LAG_SECONDS, 1.5)
    telemetry.flush()
    docs = feed_documents(capsys.readouterr().out)
    by_dims = {frozenset(dimension_set(d).items()): d for d in docs}
    assert set(by_dims) == {
        frozenset({"kind": "push", "outcome": "done", "service": "fanout"}.items()),
        frozenset({"kind": "push", "outcome": "failed", "service": "fanout"}.items()),
        frozenset({"service": "fanout"}.items()),
    }
    assert len(docs) == 3
    for doc in docs:
        assert directive(doc)["Namespace"] == NAMESPACE
    done = by_dims[frozenset({"kind": "push", "outcome": "done", "service": "fanout"}.items())]
    assert values(done, "feed_fanout_jobs_total") == [1.0, 1.0]
    assert units(done) == {"feed_fanout_jobs_total": "Count"}
    plain = by_dims[frozenset({"service": "fanout"}.items())]
    assert values(plain, "feed_fanout_lag_seconds") == [0.25, 1.5]
    assert units(plain) == {"feed_fanout_lag_seconds": "Seconds"}


def test_label_order_does_not_split_a_dimension_set(capsys: pytest.CaptureFixture[str]) -> None:
    telemetry = EmfTelemetry(NAMESPACE, "api")
    telemetry.count(STORE_ERRORS, store="redis", kind="shed")
    telemetry.count(STORE_ERRORS, kind="shed", store="redis")
    telemetry.flush()
    (doc,) = feed_documents(capsys.readouterr().out)
    assert dimension_set(doc) == {"store": "redis", "kind": "shed", "service": "api"}
    assert values(doc, "feed_store_errors_total") == [1.0, 1.0]


def test_a_gauge_keeps_its_last_value(capsys: pytest.CaptureFixture[str]) -> None:
    telemetry = EmfTelemetry(NAMESPACE, "worker")
    telemetry.set(ENGAGEMENT_BUFFER_LENGTH, 3)
    telemetry.set(ENGAGEMENT_BUFFER_LENGTH, 11)
    telemetry.flush()
    (doc,) = feed_documents(capsys.readouterr().out)
    assert values(doc, "feed_engagement_buffer_length") == [11.0]
    assert units(doc) == {"feed_engagement_buffer_length": "Count"}


def test_more_than_a_documents_worth_of_values_is_split(
    capsys: pytest.CaptureFixture[str],
) -> None:
    telemetry = EmfTelemetry(NAMESPACE, "fanout")
    observed = [i / 1000 for i in range(2 * MAX_VALUES_PER_DOCUMENT + 30)]
    for value in observed:
        telemetry.observe(FANOUT_LAG_SECONDS, value)
    errors = 150
    for _ in range(errors):
        telemetry.count(STORE_ERRORS, store="redis", kind="timeout")
    telemetry.set(ENGAGEMENT_BUFFER_LENGTH, 5)
    telemetry.flush()
    docs = feed_documents(capsys.readouterr().out)
    for doc in docs:
        for name in units(doc):
            assert len(values(doc, name)) <= MAX_VALUES_PER_DOCUMENT, name
    lag_docs = [d for d in docs if "feed_fanout_lag_seconds" in d]
    assert len(lag_docs) == 3
    written = [v for d in lag_docs for v in values(d, "feed_fanout_lag_seconds")]
    assert written == observed  # every value once, in order
    assert all(dimension_set(d) == {"service": "fanout"} for d in lag_docs)
    error_docs = [d for d in docs if "feed_store_errors_total" in d]
    assert len(error_docs) == 2
    assert sum(len(values(d, "feed_store_errors_total")) for d in error_docs) == errors
    for doc in error_docs:  # a split document keeps its dimensions
        assert dimension_set(doc) == {"store": "redis", "kind": "timeout", "service": "fanout"}
    # The other metric of the lag's dimension set is written once, not once per document.
    gauge = [
        v
        for d in docs
        if "feed_engagement_buffer_length" in d
        for v in values(d, "feed_engagement_buffer_length")
    ]
    assert gauge == [5.0]


def test_flush_forgets_what_it_wrote(capsys: pytest.CaptureFixture[str]) -> None:
    telemetry = EmfTelemetry(NAMESPACE, "fanout")
    telemetry.observe(FANOUT_LAG_SECONDS, 0.5)
    telemetry.flush()
    assert len(feed_documents(capsys.readouterr().out)) == 1
    telemetry.flush()
    assert feed_documents(capsys.readouterr().out) == []
    telemetry.observe(FANOUT_LAG_SECONDS, 0.75)
    telemetry.flush()
    (doc,) = feed_documents(capsys.readouterr().out)
    assert values(doc, "feed_fanout_lag_seconds") == [0.75]


# -- the scheduled handler ----------------------------------------------------------------------


class Context:
    memory_limit_in_mb = 256
    aws_request_id = "req-1"

    def __init__(self, name: str) -> None:
        self.function_name = name
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class Report:
    def __init__(self, **counts: float) -> None:
        self.counts = counts

    def to_dict(self) -> dict[str, float]:
        return dict(self.counts)


def unique_service(name: str) -> str:
    """observability() is made once per service name and process: each test has its own."""
    return f"{name}-{next(_services)}-{time.monotonic_ns()}"


def job_documents(out: str, service: str) -> dict[str, dict[str, Any]]:
    """The feed_job_* documents by their item dimension ('' for the job-wide ones)."""
    found: dict[str, dict[str, Any]] = {}
    for doc in feed_documents(out):
        dims = dimension_set(doc)
        assert dims["job"] == service and dims["service"] == service, dims
        found[dims.get("item", "")] = doc
    return found


def test_a_successful_run_publishes_duration_success_time_and_report(
    capsys: pytest.CaptureFixture[str],
) -> None:
    service = unique_service("prewarm")
    obs = observability(service)

    def run(event: dict[str, Any]) -> Report:
        time.sleep(0.02)
        return Report(checked=5, warmed=3, seconds=0.02)

    before = time.time()
    result = scheduled_handler(obs, run)({}, Context(service))
    after = time.time()
    assert result == {"checked": 5, "warmed": 3, "seconds": 0.02}
    docs = job_documents(capsys.readouterr().out, service)
    assert set(docs) == {"", "checked", "warmed"}  # "seconds" is the duration, not an item
    job = docs[""]
    assert units(job) == {
        "feed_job_duration_seconds": "Seconds",
        "feed_job_last_success_timestamp_seconds": "Seconds",
    }
    (duration,) = values(job, "feed_job_duration_seconds")
    assert 0.02 <= duration < after - before + 0.001
    (success,) = values(job, "feed_job_last_success_timestamp_seconds")
    assert before <= success <= after
    assert values(docs["checked"], "feed_job_items") == [5.0]
    assert values(docs["warmed"], "feed_job_items") == [3.0]
    assert units(docs["warmed"]) == {"feed_job_items": "Count"}


def test_a_failed_run_publishes_only_its_duration_and_raises(
    capsys: pytest.CaptureFixture[str],
) -> None:
    service = unique_service("repair")
    obs = observability(service)

    def run(event: dict[str, Any]) -> Report:
        raise RuntimeError("the store is down")

    with pytest.raises(RuntimeError, match="the store is down"):
        scheduled_handler(obs, run)({}, Context(service))
    docs = job_documents(capsys.readouterr().out, service)
    assert set(docs) == {""}
    assert units(docs[""]) == {"feed_job_duration_seconds": "Seconds"}
    assert JOB_LAST_SUCCESS.name not in docs[""]


# -- the Pushgateway push -----------------------------------------------------------------------


class Received:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, str]] = []  # method, path, content type, body
        self.status = 200


class _Gateway(BaseHTTPRequestHandler):
    def _receive(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length).decode()
        received: Received = self.server.received  # type: ignore[attr-defined]
        received.requests.append(
            (self.command, self.path, self.headers.get("Content-Type", ""), body)
        )
        self.send_response(received.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_POST = _receive

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def pushgateway() -> Iterator[tuple[str, Received]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    server.received = Received()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def samples(body: str) -> dict[str, float]:
    """`name{labels} value` lines of the text format, keyed by everything before the value."""
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def test_a_successful_run_is_put_to_the_pushgateway(
    pushgateway: tuple[str, Received], capsys: pytest.CaptureFixture[str]
) -> None:
    url, received = pushgateway
    service = unique_service("cleanup")
    obs = observability(service)
    before = time.time()
    scheduled_handler(obs, lambda event: Report(trimmed=4, **{"users-seen": 2}), url)(
        {}, Context(service)
    )
    ((method, path, content_type, body),) = received.requests
    assert method == "PUT"
    assert path == f"/metrics/job/{service}"
    assert content_type.startswith("text/plain")
    got = samples(body)
    assert set(got) == {
        "feed_job_duration_seconds",
        "feed_job_last_success_timestamp_seconds",
        'feed_job_items{item="trimmed"}',
        'feed_job_items{item="users_seen"}',
    }
    assert 0 <= got["feed_job_duration_seconds"] < 5
    assert before <= got["feed_job_last_success_timestamp_seconds"] <= time.time()
    assert got['feed_job_items{item="trimmed"}'] == 4
    assert "# TYPE feed_job_items gauge" in body


def test_a_failed_run_posts_only_its_duration(
    pushgateway: tuple[str, Received], capsys: pytest.CaptureFixture[str]
) -> None:
    url, received = pushgateway
    service = unique_service("rollup")
    obs = observability(service)

    def run(event: dict[str, Any]) -> Report:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        scheduled_handler(obs, run, url)({}, Context(service))
    ((method, path, _, body),) = received.requests
    assert method == "POST"  # keeps the last success's time and report in the group
    assert path == f"/metrics/job/{service}"
    assert set(samples(body)) == {"feed_job_duration_seconds"}


def test_a_pushgateway_that_fails_does_not_fail_the_job(
    pushgateway: tuple[str, Received], capsys: pytest.CaptureFixture[str]
) -> None:
    url, received = pushgateway
    received.status = 500
    service = unique_service("impressions")
    obs = observability(service)
    assert scheduled_handler(obs, lambda event: Report(moved=1), url)({}, Context(service)) == {
        "moved": 1
    }
    assert len(received.requests) == 1


def test_an_unreachable_pushgateway_does_not_fail_the_job(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A port nothing listens on: bind one, then close it.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert not push_job_run(f"http://127.0.0.1:{port}", "x", 1.0, 2.0, {}, succeeded=True)
    service = unique_service("prewarm")
    obs = observability(service)
    handler = scheduled_handler(obs, lambda event: Report(warmed=1), f"http://127.0.0.1:{port}")
    assert handler({}, Context(service)) == {"warmed": 1}


def test_each_service_has_its_own_cached_observability() -> None:
    one = unique_service("a")
    assert observability(one) is observability(one)
    assert observability(one).telemetry is not observability(unique_service("a")).telemetry


# -- the other handlers flush per invocation ----------------------------------------------------


def test_the_http_handler_flushes_each_requests_duration(
    capsys: pytest.CaptureFixture[str],
) -> None:
    service = unique_service("posts")
    obs = observability(service)
    app = FastAPI()
    app.add_middleware(RequestMetrics, telemetry=obs.telemetry, routes=lambda: app.routes)

    @app.get("/v1/posts/{post_id}")
    def get_post(post_id: int) -> dict[str, int]:
        return {"id": post_id}

    handler = http_handler(app, obs)
    for path in ("/v1/posts/1", "/v1/posts/2"):
        result = handler(http_event("GET", path), LambdaContext(service))
        assert result["statusCode"] == 200
        (doc,) = feed_documents(capsys.readouterr().out)  # written by this invocation
        assert dimension_set(doc) == {
            "route": "/v1/posts/{post_id}",
            "method": "GET",
            "status": "200",
            "service": service,
        }
        (seconds,) = values(doc, HTTP_REQUEST_SECONDS.name)
        assert 0 < seconds < 5
        assert units(doc) == {HTTP_REQUEST_SECONDS.name: "Seconds"}


def test_the_fanout_handler_flushes_after_each_batch(capsys: pytest.CaptureFixture[str]) -> None:
    service = unique_service("fanout")
    obs = observability(service)

    def handle_message(body: Any) -> None:
        if body.get("explode"):
            obs.telemetry.count(FANOUT_JOBS, kind="push", outcome="failed")
            raise RuntimeError("boom")
        obs.telemetry.count(FANOUT_JOBS, kind="push", outcome="done")

    handler = fanout_handler(handle_message, obs)
    batch = sqs_event([json.dumps({}), json.dumps({"explode": True}), json.dumps({})])
    result = handler(batch, LambdaContext(service))
    assert len(result["batchItemFailures"]) == 1
    docs = feed_documents(capsys.readouterr().out)
    by_outcome = {dimension_set(d)["outcome"]: values(d, FANOUT_JOBS.name) for d in docs}
    assert by_outcome == {"done": [1.0, 1.0], "failed": [1.0]}
    handler(sqs_event([json.dumps({})]), LambdaContext(service))
    (doc,) = feed_documents(capsys.readouterr().out)  # the first batch's are not repeated
    assert values(doc, FANOUT_JOBS.name) == [1.0]
