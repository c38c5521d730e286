"""The block checks of the reads live in the domain, and stay cheap: reading your own post costs
no graph lookup, anyone else's one, and a listing filters in its single page query."""

from __future__ import annotations

from typing import Any

import pytest
from feed_env import FeedEnv

from feed_wiring.root import Services, build_services
from newsfeed.errors import NotFound

pytestmark = pytest.mark.integration


class CountingGraph:
    """The real graph store, recording which of its methods the services call."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return method(*args, **kwargs)

        return call

    def take(self) -> list[str]:
        calls, self.calls = self.calls, []
        return calls


@pytest.fixture
def counted(env: FeedEnv) -> tuple[Services, CountingGraph]:
    graph = CountingGraph(env.graph)
    services = build_services(
        env.settings,
        graph=graph,
        posts=env.posts,
        engagement=env.events,
        redis_client=env.redis,
        queue=env.queue,
    )
    return services, graph


def test_reads_hide_what_a_block_hides_at_one_lookup(
    env: FeedEnv, counted: tuple[Services, CountingGraph]
) -> None:
    services, graph = counted
    a, b, c = env.user(), env.user(), env.user()
    for follower, followee in ((a, c), (b, c)):
        env.services.social.follow(follower, followee)
    pa = env.post(a)
    env.services.posts.get(pa)  # cached: the reads below hit the cache, not MongoDB
    env.services.social.block(b, a)  # B blocks A: hidden both ways

    assert services.posts.get(pa, viewer_id=a).id == pa
    assert graph.take() == []  # the author: no check at all
    assert services.posts.get(pa, viewer_id=c).id == pa
    assert graph.take() == ["blocked_either"]
    with pytest.raises(NotFound):
        services.posts.get(pa, viewer_id=b)
    assert graph.take() == ["blocked_either"]

    assert services.posts.author_posts(a, None, 10, viewer_id=b).items == []
    assert services.posts.author_posts(a, None, 10, viewer_id=b).next_cursor is None
    assert [p.id for p in services.posts.author_posts(a, None, 10, viewer_id=c).items] == [pa]
    assert graph.take() == ["user_hidden_from"] * 3  # existence and block in one lookup
    with pytest.raises(NotFound):
        services.posts.author_posts(31337, None, 10, viewer_id=b)

    graph.take()
    assert [u.id for u in services.profiles.followers(c, None, 10, viewer_id=b).items] == [b]
    assert [u.id for u in services.profiles.followers(c, None, 10, viewer_id=a).items] == [a]
    assert sorted(u.id for u in services.profiles.followers(c, None, 10).items) == sorted([a, b])
    assert graph.take() == ["followers_page"] * 3
