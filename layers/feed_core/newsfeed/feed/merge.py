"""The feed merge: pure k-way merge of newest-first id streams, dedupe and visibility filter.

Every candidate source (the home timeline, an author's recent posts, MongoDB) is read in pages,
so each stream only knows its ids down to some point. `Stream.complete_down_to` carries that
point: the merged result is only trustworthy at or above the highest such point over all streams
(the `floor`); anything below it must be read again with `below=floor`. That rule is what makes
paging never skip a post, whatever the mix of capped and uncapped sources.
"""

from __future__ import annotations

import heapq
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..model import Post


@dataclass(frozen=True, slots=True)
class Stream:
    """Ids from one source, strictly below the read cursor, newest first.

    `complete_down_to`: the source has no other id in [complete_down_to, cursor). 0 means the
    source is exhausted (nothing older exists at all).
    """

    ids: Sequence[int]
    complete_down_to: int = 0


@dataclass(frozen=True, slots=True)
class MergeResult:
    ids: list[int]  # unique, strictly descending, each >= floor
    floor: int  # 0 when every stream was exhausted: nothing older exists anywhere


def stream_from_fetch(ids: Sequence[int], requested: int, horizon: int = 0) -> Stream:
    """A stream read with a LIMIT of `requested`. A full page is complete only down to its last
    id; a short page is complete down to the source's own horizon (0 for a complete source)."""
    if requested > 0 and len(ids) >= requested:
        return Stream(ids, ids[-1])
    return Stream(ids, horizon)


def merge_newest_first(streams: Iterable[Stream], *, below: int | None = None) -> MergeResult:
    """K-way merge of descending streams into unique descending ids in [floor, below)."""
    streams = list(streams)
    floor = max((s.complete_down_to for s in streams), default=0)
    merged: list[int] = []
    last: int | None = None
    for post_id in heapq.merge(*(s.ids for s in streams), reverse=True):
        if post_id < floor:
            break  # descending: everything after is below the floor too
        if below is not None and post_id >= below:
            continue
        if post_id != last:
            merged.append(post_id)
            last = post_id
    return MergeResult(merged, floor)


def select_visible(
    ids: Iterable[int],
    posts: Mapping[int, Post | None],
    visible_authors: Container[int],
    limit: int,
) -> tuple[list[Post], int | None]:
    """Walk merged ids newest first, keep posts that exist, are not deleted and whose author is
    visible; stop at `limit`. Returns the page and the last id examined (the resume point)."""
    page: list[Post] = []
    last_examined: int | None = None
    for post_id in ids:
        if len(page) >= limit:
            break
        last_examined = post_id
        post = posts.get(post_id)
        if post is None or post.is_deleted or post.author_id not in visible_authors:
            continue
        page.append(post)
    return page, last_examined
