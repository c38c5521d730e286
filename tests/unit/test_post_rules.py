"""What a post may contain: refused here with InvalidInput, before any store sees it."""

from __future__ import annotations

import pytest

from newsfeed.errors import InvalidInput
from newsfeed.posting.rules import check_media, check_text


def test_text_keeps_newlines_and_tabs() -> None:
    assert check_text("line one\n\tline two") == "line one\n\tline two"


@pytest.mark.parametrize("text", ["a\x00b", "\x00"])
def test_text_with_nul_is_invalid_input(text: str) -> None:
    # PostgreSQL (under FerretDB) refuses NUL in text: it must never reach the store.
    with pytest.raises(InvalidInput, match="text"):
        check_text(text)


@pytest.mark.parametrize(
    "url", ["https://cdn.example/a\x00.jpg", "https://cdn.example/a\n.jpg", "https://x/\x7f"]
)
def test_media_url_with_control_characters_is_invalid_input(url: str) -> None:
    with pytest.raises(InvalidInput, match="url"):
        check_media([{"url": url, "kind": "image"}])
