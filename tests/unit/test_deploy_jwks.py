"""infra/deploy.py publishes the local token key into the one JWKS every checkout's stack reads:
adding its key, not replacing the others' (a git worktree has its own .state/keys)."""

from __future__ import annotations

from infra.deploy import JWKS_MAX_KEYS, merged_jwks


def _key(kid: str) -> dict:
    return {"kty": "RSA", "kid": kid, "n": "n-" + kid, "e": "AQAB"}


def test_the_key_is_added_before_the_keys_already_published():
    mine = {"keys": [_key("wt")]}
    assert merged_jwks(None, mine) == mine
    assert merged_jwks({"keys": [_key("main")]}, mine) == {"keys": [_key("wt"), _key("main")]}


def test_publishing_the_same_key_again_changes_nothing():
    current = {"keys": [_key("wt"), _key("main")]}
    assert merged_jwks(current, {"keys": [_key("wt")]}) == current


def test_a_key_published_again_moves_first_and_is_not_repeated():
    current = {"keys": [_key("wt"), _key("main")]}
    assert merged_jwks(current, {"keys": [_key("main")]}) == {"keys": [_key("main"), _key("wt")]}


def test_the_document_keeps_at_most_a_few_keys():
    current = {"keys": [_key(f"old{i}") for i in range(JWKS_MAX_KEYS)]}
    merged = merged_jwks(current, {"keys": [_key("new")]})
    assert [k["kid"] for k in merged["keys"]] == ["new"] + [
        f"old{i}" for i in range(JWKS_MAX_KEYS - 1)
    ]
