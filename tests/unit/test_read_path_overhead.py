"""What the feed route costs around the domain: the caller's id from a per-process cache, and
blocking domain calls inline in a Lambda process (one request at a time) but in the thread pool
on a server that serves requests concurrently."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient

from feed_api.app import create_app
from feed_api.routers import feed
from feed_wiring.root import Services
from feed_wiring.settings import Settings
from newsfeed import errors
from newsfeed.model import FeedPage
from newsfeed.social.profiles import SUBJECT_CACHE_SIZE, ProfileService
from tests.fakes.api import ME, Raising, StubVerifier, UsersWithProfile


class FeedInLoopProbe:
    """Records, per read, whether it ran in the event loop's thread."""

    def __init__(self) -> None:
        self.in_loop: list[bool] = []

    def home_feed(self, reader_id: int, cursor: str | None, limit: int) -> FeedPage:
        try:
            asyncio.get_running_loop()
            self.in_loop.append(True)
        except RuntimeError:
            self.in_loop.append(False)
        assert reader_id == ME.id
        return FeedPage([], None, False)


def client(feed_svc: Any, *, inline: bool) -> TestClient:
    rest = {f: Raising() for f in Services.__dataclass_fields__}
    services = Services(**{**rest, "profiles": UsersWithProfile(), "feed": feed_svc})
    app = create_app(Settings(), services, [feed.router], verifier=StubVerifier())
    app.state.inline_blocking = inline
    return TestClient(app, headers={"Authorization": "Bearer ok:alice"})


@pytest.mark.parametrize("inline", [True, False])
def test_the_domain_read_runs_inline_only_when_the_app_says_so(inline: bool) -> None:
    probe = FeedInLoopProbe()
    resp = client(probe, inline=inline).get("/v1/feed")
    assert resp.status_code == 200, resp.text
    assert probe.in_loop == [inline]


def test_the_lambda_handler_serves_its_app_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    from feed_lambda.handlers import http_handler
    from feed_lambda.observability import observability

    app = create_app(Settings(), lambda: None, [feed.router], verifier=StubVerifier())
    assert not getattr(app.state, "inline_blocking", False)
    http_handler(app, observability("unit-inline"))
    assert app.state.inline_blocking is True


class CountingGraph:
    """The one GraphStore method `user_id_of` may call, counted."""

    def __init__(self, known: dict[str, int]) -> None:
        self.known = known
        self.lookups = 0

    def get_user_by_subject(self, subject: str) -> Any:
        self.lookups += 1
        user_id = self.known.get(subject)
        return None if user_id is None else type("U", (), {"id": user_id})()


def profiles(graph: CountingGraph) -> ProfileService:
    return ProfileService(graph, None, None, None)  # type: ignore[arg-type]


def test_a_known_subject_is_looked_up_once_per_process() -> None:
    graph = CountingGraph({"alice": 7})
    svc = profiles(graph)
    assert [svc.user_id_of("alice") for _ in range(5)] == [7] * 5
    assert graph.lookups == 1


def test_an_account_without_profile_is_asked_again_until_it_has_one() -> None:
    graph = CountingGraph({})
    svc = profiles(graph)
    for _ in range(2):
        with pytest.raises(errors.NotFound):
            svc.user_id_of("bob")
    graph.known["bob"] = 9  # POST /v1/users
    assert svc.user_id_of("bob") == 9
    assert graph.lookups == 3


def test_the_subject_cache_stays_bounded() -> None:
    graph = CountingGraph({f"s{i}": i for i in range(SUBJECT_CACHE_SIZE + 5)})
    svc = profiles(graph)
    for i in range(SUBJECT_CACHE_SIZE + 5):
        assert svc.user_id_of(f"s{i}") == i
    assert len(svc._id_by_subject) <= SUBJECT_CACHE_SIZE
