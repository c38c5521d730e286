"""The SAM stack deployed to the AWS emulator, for tests that go through it only.

One stack per test session, `feed-e2e`, deployed with infra/deploy.py exactly as `make up`
deploys `feed-local` (sam build, cached by source digest; SSM parameters and the store secret;
the JWKS for the JWT authorizer), but over databases of its own (PostgreSQL and MongoDB
`feed_e2e`, Redis db 12) and with every schedule at one minute. Its scheduled jobs therefore
never touch the other tests' data, and the stack is deleted at the end of the session. In the
cluster pass (REDIS_CLUSTER=true) the stack's functions use the cluster, whose only database
the other tests use too: these tests run after all of those (tests/conftest.py), so the
stack's schedules never run beside them. FEED_E2E_STAGE names another stage (a stack
`feed-<stage>` of its own, e.g. from a second checkout while `feed-e2e` is in use).
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from feed_wiring.settings import Settings
from infra import deploy, init_db, mint_token

E2E_STAGE = os.environ.get("FEED_E2E_STAGE", "e2e")
E2E_DBS = {"postgres_db": "feed_e2e", "mongodb_db": "feed_e2e", "redis_db": 12}
SCHEDULES = {
    "PrewarmSchedule": "rate(1 minute)",
    "RollupSchedule": "rate(1 minute)",
    "CleanupSchedule": "rate(1 minute)",
}


@pytest.fixture(scope="session")
def e2e_settings(settings: Settings) -> Settings:
    if not settings.aws_endpoint_url:
        pytest.skip("AWS_ENDPOINT_URL is empty: no emulator to deploy the stack to")
    # A Redis Cluster (the cluster pass of TOPOLOGY=scaled) has database 0 only: the stack
    # shares it with the other tests, which run before these then (tests/conftest.py).
    redis_db = 0 if settings.redis_cluster else E2E_DBS["redis_db"]
    return dataclasses.replace(settings, **{**E2E_DBS, "redis_db": redis_db})


@pytest.fixture(scope="session")
def e2e_redis(e2e_settings: Settings) -> Iterator[redis.Redis]:
    from feed_adapters.redis.client import make_redis

    client = make_redis(
        e2e_settings.redis_host,
        e2e_settings.redis_port,
        e2e_settings.redis_db,
        cluster=e2e_settings.redis_cluster,
    )
    yield client
    client.close()


@pytest.fixture(scope="session")
def e2e_pg(e2e_settings: Settings) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(e2e_settings.postgres_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def deployed(e2e_settings: Settings, e2e_redis: redis.Redis) -> Iterator[deploy.Deployed]:
    init_db.ensure_database(e2e_settings)
    init_db.apply_postgres_migrations(e2e_settings.postgres_dsn)
    init_db.ensure_mongo(e2e_settings)
    import psycopg
    from pymongo import MongoClient

    with psycopg.connect(e2e_settings.postgres_dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE follows, blocks, mutes, users CASCADE")
    with MongoClient(e2e_settings.mongodb_url) as client:
        db = client[e2e_settings.mongodb_db]
        for name in db.list_collection_names():
            db[name].delete_many({})
    e2e_redis.flushdb()
    result = deploy.deploy(e2e_settings, E2E_STAGE, overrides=SCHEDULES)
    result.outputs["deployed_at"] = str(time.time())
    yield result
    deploy.delete(e2e_settings, E2E_STAGE)


@dataclasses.dataclass
class StackApi:
    """HTTP calls to the deployed API, as a client app makes them."""

    base: str
    token_for: Callable[[str], str]
    http: httpx.Client

    def call(self, method: str, path: str, sub: str | None, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token_for(sub)}"} if sub else {}
        return self.http.request(method, self.base + path, headers=headers, **kwargs)

    def user(self, prefix: str) -> dict[str, Any]:
        sub = f"e2e|{uuid.uuid4().hex}"
        handle = f"{prefix}_{uuid.uuid4().hex[:8]}"
        resp = self.call("POST", "/v1/users", sub, json={"handle": handle, "display_name": prefix})
        assert resp.status_code == 201, resp.text
        return {**resp.json(), "sub": sub}

    def feed_ids(self, user: dict[str, Any]) -> list[str]:
        resp = self.call("GET", "/v1/feed", user["sub"], params={"limit": 50})
        assert resp.status_code == 200, resp.text
        return [item["id"] for item in resp.json()["items"]]


@pytest.fixture(scope="session")
def api(e2e_settings: Settings, deployed: deploy.Deployed) -> Iterator[StackApi]:
    token_settings = dataclasses.replace(e2e_settings, jwt_issuer=deployed.issuer)
    pair = mint_token.ensure_keypair()

    def token_for(sub: str) -> str:
        return mint_token.mint_token(sub, settings=token_settings, pair=pair)

    with httpx.Client(timeout=30) as http:
        yield StackApi(deployed.api_url, token_for, http)
