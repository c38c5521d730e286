"""Error mapping: domain exceptions and request problems become `{"error": {code, message}}`."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from feed_api.app import create_app
from feed_api.errors import domain_status
from feed_api.routers import feed, posts, users
from feed_wiring.root import Services
from feed_wiring.settings import Settings
from newsfeed import errors
from tests.fakes.api import Raising, StubVerifier, UsersWithProfile


def make_client(users_svc: Any = None, posts_svc: Any = None, feed_svc: Any = None) -> TestClient:
    rest = {f: Raising() for f in Services.__dataclass_fields__}
    services = Services(
        **{
            **rest,
            "profiles": users_svc or UsersWithProfile(),
            "posts": posts_svc or Raising(),
            "feed": feed_svc or Raising(),
        }
    )
    app = create_app(
        Settings(),
        services,
        [users.router, posts.router, feed.router],
        verifier=StubVerifier(),
    )
    return TestClient(
        app, raise_server_exceptions=False, headers={"Authorization": "Bearer ok:alice"}
    )


def assert_error(resp: Any, status: int, code: str, fragment: str = "") -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert fragment in body["error"]["message"]


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (errors.InvalidInput("text is longer than 500 characters"), 400, "invalid_input"),
        (errors.NotFound("post 1 not found"), 404, "not_found"),
        (errors.Forbidden("only the author can delete a post"), 403, "forbidden"),
        (errors.Conflict("handle taken"), 409, "conflict"),
    ],
)
def test_domain_errors_map_to_status_and_message(exc: Exception, status: int, code: str) -> None:
    client = make_client(posts_svc=Raising(exc))
    resp = client.delete("/v1/posts/42")
    assert_error(resp, status, code, str(exc))


@pytest.mark.parametrize(
    "exc",
    [
        errors.GraphStoreUnavailable(),
        errors.PostStoreUnavailable(),
        errors.TimelineStoreUnavailable(),
        errors.QueueUnavailable(),
        errors.Unavailable("post 1 was saved but its delivery could not be queued"),
    ],
)
def test_unavailable_stores_are_503_with_retry_after(exc: Exception) -> None:
    resp = make_client(posts_svc=Raising(exc)).delete("/v1/posts/42")
    assert_error(resp, 503, "unavailable", str(exc))
    assert int(resp.headers["retry-after"]) >= 1


def test_store_unavailable_names_the_role_never_the_driver_error() -> None:
    try:
        try:
            raise ConnectionRefusedError("127.0.0.1:16379 refused")
        except ConnectionRefusedError as driver:
            raise errors.TimelineStoreUnavailable() from driver
    except errors.TimelineStoreUnavailable as exc:
        resp = make_client(feed_svc=Raising(exc)).get("/v1/feed")
    assert_error(resp, 503, "unavailable", "timelines store is unavailable")
    assert "16379" not in resp.text


def test_domain_status_of_plain_exception_is_none() -> None:
    assert domain_status(ValueError("x")) is None


def test_missing_token_is_401_with_challenge() -> None:
    client = make_client()
    resp = client.get("/v1/feed", headers={"Authorization": ""})
    assert_error(resp, 401, "unauthorized", "missing Authorization")
    assert resp.headers["www-authenticate"].startswith("Bearer")


def test_bad_token_is_401() -> None:
    resp = make_client().get("/v1/feed", headers={"Authorization": "Bearer forged"})
    assert_error(resp, 401, "unauthorized", "signature")


def test_auth_is_checked_before_query_validation() -> None:
    resp = make_client().get("/v1/feed?limit=0", headers={"Authorization": "Bearer forged"})
    assert resp.status_code == 401


def test_no_profile_yet_is_404_with_hint() -> None:
    resp = make_client().get("/v1/feed", headers={"Authorization": "Bearer ok:bob"})
    assert_error(resp, 404, "profile_required", "POST /v1/users")


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten"])
def test_limit_out_of_range_is_422(limit: str) -> None:
    resp = make_client().get(f"/v1/feed?limit={limit}")
    assert_error(resp, 422, "validation_error", "limit")


@pytest.mark.parametrize("post_id", ["abc", "0", "-1", str(2**63), "1e5"])
def test_bad_id_is_422(post_id: str) -> None:
    resp = make_client().get(f"/v1/posts/{post_id}")
    assert_error(resp, 422, "validation_error", "post_id")


@pytest.mark.parametrize("raw", ["+5", "1_000", " 5", "5 ", "05", "5.0"])
@pytest.mark.parametrize("path", ["/v1/posts/{}", "/v1/users/{}"])
def test_only_plain_digits_are_an_id(path: str, raw: str) -> None:
    # Lax int parsing reads each of these as 5: one resource must have one path.
    resp = make_client().get(path.format(raw))
    assert_error(resp, 422, "validation_error", "_id")


def test_ids_are_documented_as_strings() -> None:
    spec = make_client().get("/openapi.json").json()
    (param,) = spec["paths"]["/v1/posts/{post_id}"]["get"]["parameters"]
    assert param["schema"]["type"] == "string"
    assert spec["components"]["schemas"]["UserOut"]["properties"]["id"]["type"] == "string"


def test_body_validation_names_the_field() -> None:
    resp = make_client().post("/v1/posts", json={"text": "x" * 20_000})
    assert_error(resp, 422, "validation_error", "text")


def test_unknown_field_is_rejected() -> None:
    resp = make_client().post("/v1/users", json={"handle": "a", "user_id": "1"})
    assert_error(resp, 422, "validation_error", "user_id")


def test_malformed_json_is_422() -> None:
    resp = make_client().post(
        "/v1/posts", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(resp, 422, "validation_error")


def test_unknown_route_and_method() -> None:
    client = make_client()
    assert_error(client.get("/v1/nope"), 404, "not_found")
    assert_error(client.patch("/v1/feed"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/v1/posts/42", {"GET", "DELETE"}),  # two routes share the path
        ("POST", "/v1/posts/42/like", {"PUT", "DELETE"}),
        ("DELETE", "/v1/feed", {"GET"}),
    ],
)
def test_405_allows_every_method_of_the_path(method: str, path: str, allowed: set[str]) -> None:
    resp = make_client().request(method, path)
    assert_error(resp, 405, "method_not_allowed")
    assert set(resp.headers["allow"].split(", ")) == allowed


def test_unexpected_exception_is_500_without_details() -> None:
    client = make_client(feed_svc=Raising(RuntimeError("password=hunter2")))
    resp = client.get("/v1/feed")
    assert_error(resp, 500, "internal", "internal error")
    assert "hunter2" not in resp.text


def test_openapi_documents_errors_and_bearer_scheme() -> None:
    spec = make_client().get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    feed_get = spec["paths"]["/v1/feed"]["get"]
    assert {"401", "404", "422"} <= set(feed_get["responses"])
    schema = feed_get["responses"]["404"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/ErrorBody")
    assert feed_get["security"] == [{"bearerAuth": []}]
