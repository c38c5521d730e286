"""What a post may contain: refused here with InvalidInput, before any store sees it."""

from __future__ import annotations

import pytest

from newsfeed.errors import InvalidInput, NotFound
from newsfeed.model import Media, MediaVariant, Post
from newsfeed.posting.rules import check_media_ids, check_text


def test_text_keeps_newlines_and_tabs() -> None:
    assert check_text("line one\n\tline two") == "line one\n\tline two"


@pytest.mark.parametrize("text", ["a\x00b", "\x00"])
def test_text_with_nul_is_invalid_input(text: str) -> None:
    # PostgreSQL (under FerretDB) refuses NUL in text: it must never reach the store.
    with pytest.raises(InvalidInput, match="text"):
        check_text(text)


@pytest.mark.parametrize(
    ("media_ids", "message"),
    [
        ("12", "must be a list"),
        (["12a"], "decimal string"),
        (["0"], "out of range"),
        ([1, 2, 3, 4, 5], "at most 4"),
        (["7", 7], "repeat"),
    ],
)
def test_media_ids_are_checked(media_ids: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_media_ids(media_ids)  # type: ignore[arg-type]


def test_a_media_id_past_the_id_range_is_not_found() -> None:
    with pytest.raises(NotFound, match="media 9999999999999999999 not found"):
        check_media_ids(["9999999999999999999"])


def test_media_ids_keep_their_order() -> None:
    assert check_media_ids(["9", "3", 5]) == (9, 3, 5)
    assert check_media_ids(None) == ()


def test_posts_made_before_uploads_still_read() -> None:
    # Stored (MongoDB, the post cache) with only a URL and a kind per medium.
    legacy = {
        "id": "1",
        "author_id": "2",
        "text": "old",
        "media": [{"url": "https://cdn.example/a.jpg", "kind": "video"}],
        "created_at": "2025-01-01T00:00:00+00:00",
    }
    post = Post.from_dict(legacy)
    assert post.media == (Media(url="https://cdn.example/a.jpg", kind="video"),)
    assert Post.from_dict(post.to_dict()) == post
    attached = Media(
        url="https://d.example/media/5/t/display.webp",
        kind="image",
        id=5,
        width=10,
        height=20,
        placeholder="#000000",
        variants=(MediaVariant("display", "media/5/t/display.webp", "image/webp", 10, 20, "u"),),
    )
    assert Media.from_dict(attached.to_dict()) == attached
