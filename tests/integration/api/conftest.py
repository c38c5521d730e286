"""Fixtures for the API tests: signing keys, tokens, and the real Lambda entry points.

The function modules (`functions/<name>/app.py`) are initialised as in a Lambda cold start, with the
environment Lambda would give them (settings as env vars, tracing off). Requests go in as API
Gateway HTTP API payload 2.0 events; fan-out jobs as SQS events.

The stores are real. The one substitution is the fan-out queue: the process-wide services are
pre-built with a recording queue, so a test takes the jobs the API produced and delivers them to
the fan-out handler as SQS events (what the event source mapping does in AWS).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from feed_wiring import root as container
from feed_wiring.settings import Settings
from functions import load_app
from infra import mint_token as mint
from infra.lambda_events import LambdaApi, LambdaContext, new_handle, new_subject, sqs_event
from tests.fakes.queues import RecordingFanoutQueue


@pytest.fixture(scope="session")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return mint.ensure_keypair(tmp_path_factory.mktemp("jwt-keys"))


@pytest.fixture(scope="session")
def api_settings(settings: Settings, key_pair: Any) -> Settings:
    # A media bucket of this session's own (the `media_bucket` fixture creates it).
    return dataclasses.replace(
        settings,
        jwt_public_key_file=str(key_pair.public_pem),
        media_bucket=f"feed-test-media-{uuid.uuid4().hex[:12]}",
    )


@pytest.fixture(scope="session")
def media_bucket(api_settings: Settings) -> Iterator[str]:
    """The API's media bucket in the emulator's S3, emptied and deleted after the session."""
    from infra.deploy import aws

    s3 = aws(api_settings, "s3")
    name = api_settings.media_bucket
    s3.create_bucket(Bucket=name)
    yield name
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=obj["Key"])
    s3.delete_bucket(Bucket=name)


@pytest.fixture(scope="session")
def token_for(api_settings: Settings, key_pair: Any) -> Callable[..., str]:
    def make(sub: str, **kwargs: Any) -> str:
        return mint.mint_token(sub, settings=api_settings, pair=key_pair, **kwargs)

    return make


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables Lambda would carry for these settings."""
    env = {}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        env[field.name.upper()] = "" if value is None else str(value)
    return env


@pytest.fixture(scope="session")
def lambda_env(api_settings: Settings) -> Iterator[dict[str, str]]:
    env = {
        **settings_env(api_settings),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "FeedPlatformTest",
        "POWERTOOLS_DEV": "false",
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        yield env


@pytest.fixture(scope="session")
def fanout_jobs(
    api_settings: Settings, lambda_env: dict[str, str], pg_pool: Any, mongo_db: Any
) -> RecordingFanoutQueue:
    """The queue every API function sends fan-out jobs to (see the module docstring)."""
    # The functions read their settings from the environment: seed the container for exactly
    # those settings. pg_pool/mongo_db (tests/integration/conftest.py) apply the schema first.
    assert Settings.from_env(lambda_env) == api_settings
    queue = RecordingFanoutQueue()
    container.use_services(api_settings, container.build_services(api_settings, queue=queue))
    return queue


@pytest.fixture(scope="session")
def function_app(lambda_env: dict[str, str], fanout_jobs: Any) -> Callable[[str], ModuleType]:
    """`function_app("posts")` is functions/posts/app.py, initialised once per session with
    `lambda_env` (run again if another test imported it before)."""
    loaded: dict[str, ModuleType] = {}

    def load(name: str) -> ModuleType:
        if name not in loaded:
            loaded[name] = load_app(name)
        return loaded[name]

    return load


@pytest.fixture(scope="session")
def social_api(
    function_app: Callable[[str], ModuleType], token_for: Callable[..., str]
) -> LambdaApi:
    return LambdaApi(function_app("social"), "social", token_for)


@pytest.fixture(scope="session")
def posts_api(
    function_app: Callable[[str], ModuleType], token_for: Callable[..., str]
) -> LambdaApi:
    return LambdaApi(function_app("posts"), "posts", token_for)


@pytest.fixture(scope="session")
def feed_api(function_app: Callable[[str], ModuleType], token_for: Callable[..., str]) -> LambdaApi:
    return LambdaApi(function_app("feed"), "feed", token_for)


@pytest.fixture(scope="session")
def fanout_handler(function_app: Callable[[str], ModuleType]) -> Callable[[dict[str, Any]], Any]:
    module = function_app("fanout")
    return lambda event: module.handler(event, LambdaContext("fanout"))


@pytest.fixture
def deliver_jobs(
    fanout_jobs: RecordingFanoutQueue, fanout_handler: Callable[[dict[str, Any]], Any]
) -> Callable[[], int]:
    """Deliver every queued fan-out job (and the chunk jobs they queue) to the fan-out handler,
    in SQS-sized batches; returns how many ran. Any reported failure fails the test."""

    def deliver() -> int:
        ran = 0
        while fanout_jobs.jobs:
            jobs = fanout_jobs.drain()
            for start in range(0, len(jobs), 10):
                batch = [json.dumps(j) for j in jobs[start : start + 10]]
                result = fanout_handler(sqs_event(batch))
                assert result == {"batchItemFailures": []}, (result, batch)
                ran += len(batch)
        return ran

    fanout_jobs.drain()  # jobs left by earlier tests are not this test's business
    return deliver


@pytest.fixture
def make_user(social_api: LambdaApi) -> Callable[..., dict[str, Any]]:
    """Creates a profile through the API; returns its JSON plus the `sub` to act as it."""

    def make(display_name: str = "Test User") -> dict[str, Any]:
        sub = new_subject()
        resp = social_api.call(
            "POST",
            "/v1/users",
            sub=sub,
            body={"handle": new_handle(), "display_name": display_name},
        )
        assert resp.status == 201, resp.text
        return {**resp.json(), "sub": sub}

    return make
