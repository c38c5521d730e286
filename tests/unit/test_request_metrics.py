"""feed_api.metrics.RequestMetrics through the real app and routers (services stubbed): one
duration per request, labelled by route template (never the raw path), method and status."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from feed_api.app import create_app
from feed_api.metrics import UNMATCHED_ROUTE
from feed_api.routers import feed, posts, users
from feed_wiring.root import Services
from feed_wiring.settings import Settings
from newsfeed import errors
from newsfeed.telemetry import HTTP_REQUEST_SECONDS
from tests.fakes.api import Raising, StubVerifier, UsersWithProfile
from tests.fakes.telemetry import RecordingTelemetry


def make_client(telemetry: RecordingTelemetry, posts_svc: Any = None) -> TestClient:
    rest = {f: Raising(errors.NotFound("stub")) for f in Services.__dataclass_fields__}
    services = Services(
        **{
            **rest,
            "profiles": UsersWithProfile(),
            "posts": posts_svc or Raising(errors.NotFound("post 42 not found")),
        }
    )
    app = create_app(
        Settings(),
        services,
        [users.router, posts.router, feed.router],
        verifier=StubVerifier(),
        telemetry=telemetry,
    )
    return TestClient(
        app, raise_server_exceptions=False, headers={"Authorization": "Bearer ok:alice"}
    )


@pytest.fixture
def telemetry() -> RecordingTelemetry:
    return RecordingTelemetry()


def only_request(telemetry: RecordingTelemetry) -> tuple[dict[str, str], float]:
    (measurement,) = telemetry.of(HTTP_REQUEST_SECONDS)
    assert measurement.kind == "observe"
    return measurement.labels, measurement.value


def test_a_request_is_one_duration_labelled_by_route_method_and_status(
    telemetry: RecordingTelemetry,
) -> None:
    resp = make_client(telemetry).get("/v1/users/me")
    assert resp.status_code == 200, resp.text
    labels, seconds = only_request(telemetry)
    assert labels == {"route": "/v1/users/me", "method": "GET", "status": "200"}
    assert 0 < seconds < 5


def test_the_route_is_the_template_not_the_path(telemetry: RecordingTelemetry) -> None:
    client = make_client(telemetry)
    assert client.get("/v1/posts/42").status_code == 404  # the service's NotFound
    assert client.get("/v1/posts/43").status_code == 404
    assert (
        telemetry.label_sets(HTTP_REQUEST_SECONDS)
        == [{"route": "/v1/posts/{post_id}", "method": "GET", "status": "404"}] * 2
    )


def test_no_matching_route_is_unmatched(telemetry: RecordingTelemetry) -> None:
    resp = make_client(telemetry).get("/v1/no/such/thing/12345")
    assert resp.status_code == 404
    labels, _ = only_request(telemetry)
    assert labels == {"route": UNMATCHED_ROUTE, "method": "GET", "status": "404"}
    assert UNMATCHED_ROUTE == "unmatched"


def test_a_wrong_method_keeps_the_template(telemetry: RecordingTelemetry) -> None:
    resp = make_client(telemetry).patch("/v1/posts/42")
    assert resp.status_code == 405
    labels, _ = only_request(telemetry)
    assert labels == {"route": "/v1/posts/{post_id}", "method": "PATCH", "status": "405"}


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (errors.PostStoreUnavailable(), "503"),
        (errors.Forbidden("only the author can delete a post"), "403"),
        (RuntimeError("a bug"), "500"),  # escapes the app: no response was started inside it
    ],
)
def test_the_status_is_the_responses(
    exc: Exception, status: str, telemetry: RecordingTelemetry
) -> None:
    resp = make_client(telemetry, posts_svc=Raising(exc)).delete("/v1/posts/42")
    assert str(resp.status_code) == status
    labels, _ = only_request(telemetry)
    assert labels == {"route": "/v1/posts/{post_id}", "method": "DELETE", "status": status}


def test_rejected_before_the_endpoint_still_counts_under_its_route(
    telemetry: RecordingTelemetry,
) -> None:
    client = make_client(telemetry)
    assert client.get("/v1/feed", headers={"Authorization": "Bearer forged"}).status_code == 401
    assert client.get("/v1/posts/abc").status_code == 422
    assert telemetry.label_sets(HTTP_REQUEST_SECONDS) == [
        {"route": "/v1/feed", "method": "GET", "status": "401"},
        {"route": "/v1/posts/{post_id}", "method": "GET", "status": "422"},
    ]


def test_the_documentation_routes_are_labelled_by_their_path(
    telemetry: RecordingTelemetry,
) -> None:
    client = make_client(telemetry)
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200
    assert [s["route"] for s in telemetry.label_sets(HTTP_REQUEST_SECONDS)] == [
        "/openapi.json",
        "/docs",
    ]


def test_no_raw_path_or_id_reaches_a_label(telemetry: RecordingTelemetry) -> None:
    client = make_client(telemetry)
    for path in ("/v1/posts/987654321", "/v1/users/987654321/followers", "/v1/x/987654321"):
        client.get(path)
    routes = [s["route"] for s in telemetry.label_sets(HTTP_REQUEST_SECONDS)]
    assert routes == ["/v1/posts/{post_id}", "/v1/users/{user_id}/followers", "unmatched"]
    assert not any(
        "987654321" in v for s in telemetry.label_sets(HTTP_REQUEST_SECONDS) for v in s.values()
    )
