"""The key templates the single-Redis fan-out script builds keys from name the same keys as the
functions every other path uses (a mismatch would push into keys nothing reads)."""

from __future__ import annotations

import pytest

from feed_adapters.redis import scripts
from feed_adapters.redis.keys import (
    TIMELINE_KEY_TEMPLATE,
    TIMELINE_META_KEY_TEMPLATE,
    lua_key_of_user,
    timeline_key,
    timeline_meta_key,
)


@pytest.mark.parametrize("user_id", [1, 42, 253510271944011776])
def test_templates_name_the_keys_of_the_key_functions(user_id: int) -> None:
    assert TIMELINE_KEY_TEMPLATE.format(user_id) == timeline_key(user_id)
    assert TIMELINE_META_KEY_TEMPLATE.format(user_id) == timeline_meta_key(user_id)


def test_the_lua_key_expression_is_the_template_around_u() -> None:
    assert lua_key_of_user(TIMELINE_KEY_TEMPLATE) == "'htl:{' .. u .. '}'"
    assert lua_key_of_user("a'b\\{}c") == "'a\\'b\\\\' .. u .. 'c'"
    assert lua_key_of_user(TIMELINE_META_KEY_TEMPLATE) in scripts.LIST_PUSH_USERS_LUA
