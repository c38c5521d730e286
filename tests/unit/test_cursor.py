from __future__ import annotations

import base64
import json

import pytest

from newsfeed.cursor import CursorCodec
from newsfeed.errors import InvalidInput

codec = CursorCodec("secret-1")


def test_round_trip() -> None:
    token = codec.encode("feed", {"b": 123})
    assert codec.decode("feed", token) == {"b": 123}
    assert codec.decode_int("feed", token, "b") == 123
    assert codec.decode_int("feed", None, "b") is None
    assert "=" not in token and "/" not in token and "+" not in token


def test_kind_is_bound_into_the_mac() -> None:
    token = codec.encode("followers", {"a": 5})
    with pytest.raises(InvalidInput):
        codec.decode("feed", token)


def test_other_secret_is_refused() -> None:
    token = CursorCodec("secret-2").encode("feed", {"b": 1})
    with pytest.raises(InvalidInput):
        codec.decode("feed", token)


def test_tampered_payload_is_refused() -> None:
    token = codec.encode("feed", {"b": 1000})
    body, tag = token.split(".")
    forged = base64.urlsafe_b64encode(json.dumps({"b": 999999}).encode()).decode().rstrip("=")
    with pytest.raises(InvalidInput):
        codec.decode("feed", f"{forged}.{tag}")
    # Flip one character of the tag too.
    flipped = tag[:-1] + ("A" if tag[-1] != "A" else "B")
    with pytest.raises(InvalidInput):
        codec.decode("feed", f"{body}.{flipped}")


@pytest.mark.parametrize(
    "token", ["", "x", "no-dot", "a.b", "....", "€.€", "a" * 600, "e30.", ".e30"]
)
def test_garbage_is_invalid_input(token: str) -> None:
    with pytest.raises(InvalidInput):
        codec.decode("feed", token)


@pytest.mark.parametrize("payload", [{"b": "1"}, {"b": -4}, {"b": 0}, {"b": True}, {"x": 1}, {}])
def test_decode_int_checks_the_value(payload: dict) -> None:
    with pytest.raises(InvalidInput):
        codec.decode_int("feed", codec.encode("feed", payload), "b")


def test_signed_non_object_payload_is_refused() -> None:
    body = base64.urlsafe_b64encode(b"[1,2]").decode().rstrip("=")
    tag = base64.urlsafe_b64encode(codec._mac("feed", body)).decode().rstrip("=")
    with pytest.raises(InvalidInput):
        codec.decode("feed", f"{body}.{tag}")


def test_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        CursorCodec("")
