from __future__ import annotations

import random
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from newsfeed.feed.merge import (
    Stream,
    merge_newest_first,
    select_visible,
    stream_from_fetch,
)
from newsfeed.model import Post

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def post(pid: int, author: int, deleted: bool = False) -> Post:
    return Post(pid, author, f"p{pid}", (), NOW, deleted_at=NOW if deleted else None)


def test_merges_newest_first_and_dedupes() -> None:
    result = merge_newest_first([Stream([9, 7, 3]), Stream([8, 7, 2]), Stream([10, 3])])
    assert result.ids == [10, 9, 8, 7, 3, 2]
    assert result.floor == 0


def test_no_streams_and_empty_streams() -> None:
    assert merge_newest_first([]).ids == []
    assert merge_newest_first([Stream([]), Stream([])]).ids == []


def test_floor_is_the_highest_incomplete_point() -> None:
    # Stream A was cut at 50 (a full page): below 50 we know nothing of A, so nothing below 50
    # from B may be emitted yet.
    a = Stream([90, 70, 50], complete_down_to=50)
    b = Stream([80, 60, 40, 20], complete_down_to=0)
    result = merge_newest_first([a, b])
    assert result.ids == [90, 80, 70, 60, 50]
    assert result.floor == 50


def test_below_is_exclusive() -> None:
    result = merge_newest_first([Stream([12, 10, 8]), Stream([11, 10])], below=10)
    assert result.ids == [8]


def test_stream_from_fetch() -> None:
    assert stream_from_fetch([5, 4, 3], 3).complete_down_to == 3  # full page: cut at last id
    assert stream_from_fetch([5, 4], 3).complete_down_to == 0  # short: exhausted
    assert stream_from_fetch([5, 4], 3, horizon=4).complete_down_to == 4  # short, capped source
    assert stream_from_fetch([], 3).complete_down_to == 0


def test_select_visible_filters_and_stops_at_limit() -> None:
    posts = {
        10: post(10, 1),
        9: post(9, 2),  # author not visible (muted / unfollowed)
        8: post(8, 1, deleted=True),
        7: post(7, 3),
        6: post(6, 1),
        # 5 is unknown (hydration found nothing)
        4: post(4, 3),
    }
    page, last = select_visible([10, 9, 8, 7, 6, 5, 4], posts, {1, 3}, 3)
    assert [p.id for p in page] == [10, 7, 6]
    assert last == 6
    page, last = select_visible([5, 4], posts, {1, 3}, 3)
    assert [p.id for p in page] == [4] and last == 4
    assert select_visible([], posts, {1}, 3) == ([], None)


def test_paging_through_capped_streams_never_skips_or_repeats() -> None:
    """Model check of the floor rule: read each source LIMIT n below the cursor, merge, resume at
    the floor; the concatenation must be exactly the sorted union."""
    rng = random.Random(7)
    for _ in range(200):
        sources = [
            sorted(rng.sample(range(1, 400), rng.randint(0, 40)), reverse=True) for _ in range(4)
        ]
        expected = sorted({i for s in sources for i in s}, reverse=True)
        n = rng.randint(1, 6)
        below: int | None = None
        seen: list[int] = []
        for _ in range(1000):
            streams = [
                stream_from_fetch([i for i in s if below is None or i < below][:n], n)
                for s in sources
            ]
            result = merge_newest_first(streams, below=below)
            seen.extend(result.ids)
            if result.floor == 0:
                break
            below = result.floor
        assert seen == expected


@given(
    sources=st.lists(
        st.lists(st.integers(min_value=1, max_value=300), max_size=40, unique=True),
        max_size=5,
    ),
    page_read=st.integers(min_value=1, max_value=8),
    limit=st.integers(min_value=1, max_value=10),
    hidden_authors=st.sets(st.integers(min_value=0, max_value=4), max_size=3),
    deleted=st.sets(st.integers(min_value=1, max_value=300), max_size=30),
)
@settings(max_examples=300, deadline=None)
def test_pages_equal_the_model_feed(sources, page_read, limit, hidden_authors, deleted) -> None:
    """Property: reading each source `page_read` at a time below the cursor, merging, filtering
    and paging by `limit` yields exactly the model feed: every visible post once, newest first.
    A post's author is its id mod 5; duplicates across sources stand for the same post pushed
    into a timeline and pulled from its author."""
    sources = [sorted(s, reverse=True) for s in sources]
    posts = {i: post(i, i % 5, deleted=i in deleted) for s in sources for i in s}
    visible = {a for a in range(5) if a not in hidden_authors}
    model = sorted(
        (i for i, p in posts.items() if not p.is_deleted and p.author_id in visible), reverse=True
    )

    pages: list[list[int]] = []
    cursor: int | None = None
    for _ in range(10_000):  # bounded: a bug must fail, not hang
        page: list[int] = []
        below = cursor
        while len(page) < limit:
            streams = [
                stream_from_fetch(
                    [i for i in s if below is None or i < below][:page_read], page_read
                )
                for s in sources
            ]
            merged = merge_newest_first(streams, below=below)
            got, last = select_visible(merged.ids, posts, visible, limit - len(page))
            page += [p.id for p in got]
            if last is not None and len(page) >= limit:
                below = last
                break
            if merged.floor == 0:
                below = None
                break
            below = merged.floor
        pages.append(page)
        cursor = below
        if cursor is None:
            break
    flat = [i for p in pages for i in p]
    assert flat == model
    assert all(len(p) <= limit for p in pages)
    assert all(len(p) == limit for p in pages[:-1]) or not model
