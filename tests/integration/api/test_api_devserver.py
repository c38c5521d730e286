"""The combined dev app (infra/devserver.py) through TestClient: same factory, all routes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from feed_wiring.settings import Settings
from infra import devserver
from infra.lambda_events import new_handle, new_subject

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def design_routes() -> set[tuple[str, str]]:
    """(method, path) pairs from the HTTP API table in docs/design.md."""
    routes = set()
    table = (ROOT / "docs" / "design.md").read_text().split("## HTTP API", 1)[1]
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[1].startswith("/"):
            continue
        methods = cells[0].split("/")
        paths = [p.strip() for p in cells[1].split(",")]
        base = paths[0].rsplit("/", 1)[0]
        full = [paths[0]] + [p if p.startswith("/v1") else base + p for p in paths[1:]]
        routes |= {(m, p) for m in methods for p in full}
    return routes


@pytest.fixture(scope="module")
def client(api_settings: Settings, fanout_jobs: Any) -> TestClient:
    # fanout_jobs: the schema is applied and the process-wide services exist for these settings.
    return TestClient(devserver.build_app(api_settings))


def test_serves_exactly_the_design_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    served = {
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method in ops
        if path.startswith("/v1")
    }
    expected = design_routes()
    assert len(expected) == 22
    assert served == expected


def test_docs_and_redoc(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    redoc = client.get("/redoc")
    assert redoc.status_code == 200 and "redoc" in redoc.text.lower()


def test_openapi_quality(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] and spec["info"]["description"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["bearerFormat"] == "JWT"
    for path, ops in spec["paths"].items():
        if not path.startswith("/v1"):
            continue
        for method, op in ops.items():
            assert op.get("summary"), (method, path)
            assert op.get("security") == [{"bearerAuth": []}], (method, path)
            assert "401" in op["responses"], (method, path)
            # Ids are strings in every response body.
    post = spec["components"]["schemas"]["PostOut"]["properties"]
    assert post["id"]["type"] == "string" and post["author_id"]["type"] == "string"
    limit = next(p for p in spec["paths"]["/v1/feed"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["minimum"] == 1 and limit["schema"]["maximum"] == 100
    assert limit["schema"]["default"] == 20


def test_jwks_matches_the_signing_key(
    client: TestClient, token_for: Any, api_settings: Settings
) -> None:
    doc = client.get("/.well-known/jwks.json").json()
    (key,) = doc["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and re.fullmatch(r"[\w-]{43}", key["kid"])
    token = token_for("alice")
    assert jwt.get_unverified_header(token)["kid"] == key["kid"]
    claims = jwt.decode(
        token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=api_settings.jwt_audience
    )
    assert claims["sub"] == "alice" and claims["iss"] == api_settings.jwt_issuer


def test_a_session_through_the_dev_app(client: TestClient, token_for: Any) -> None:
    alice = {"Authorization": f"Bearer {token_for(new_subject())}"}
    bob = {"Authorization": f"Bearer {token_for(new_subject())}"}
    a = client.post("/v1/users", json={"handle": new_handle(), "display_name": "A"}, headers=alice)
    b = client.post("/v1/users", json={"handle": new_handle(), "display_name": "A"}, headers=bob)
    assert a.status_code == 201 and b.status_code == 201, (a.text, b.text)
    assert client.put(f"/v1/me/following/{a.json()['id']}", headers=bob).status_code == 204
    post = client.post("/v1/posts", json={"text": "hi bob"}, headers=alice)
    assert post.status_code == 201
    feed = client.get("/v1/feed", headers=bob)
    assert feed.status_code == 200 and set(feed.json()) == {"items", "next_cursor", "partial"}
    mine = client.get(f"/v1/users/{a.json()['id']}/posts", headers=bob).json()
    assert [p["id"] for p in mine["items"]] == [post.json()["id"]]
    forbidden = client.delete(f"/v1/posts/{post.json()['id']}", headers=bob)
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "forbidden"


def test_unauthenticated_is_401(client: TestClient) -> None:
    resp = client.get("/v1/feed")
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "unauthorized"


def test_jwks_verifies_minted_tokens_like_an_authorizer(
    client: TestClient, token_for: Any, api_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the emulator's JWT authorizer (or JWT_JWKS_URL in the app) does with this document.
    from feed_api.auth import TokenVerifier

    doc = client.get("/.well-known/jwks.json").json()
    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", lambda self: doc)
    verifier = TokenVerifier(
        issuer=api_settings.jwt_issuer,
        audience=api_settings.jwt_audience,
        jwks_url="http://127.0.0.1:8000/.well-known/jwks.json",
    )
    assert verifier.verify(token_for("carol")).subject == "carol"
