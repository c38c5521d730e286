#!/usr/bin/env python3
"""Put the users and the post that the sample events in events/ name into the local stores.

    make samples           # once, after `make up`; again to undo what the samples changed
    make invoke FN=posts EVENT=events/posts-get-post.json

The HTTP samples act as the account `alice` and name fixed ids: alice's user id, bob's, and a
post of alice's. This creates them with exactly those ids, through the domain's own calls
(profile creation, follow, post with an Idempotency-Key), handed the ids in order. Then alice
and bob follow each other, neither blocks or mutes the other: what every sample expects.
Running it again restores that (a sample may have unfollowed or blocked); what it cannot bring
back is the post once `posts-delete-post.json` deleted it (ids are never reused; `make clean`
empties the local stores).

`events/social-create-profile.json` creates alice's profile itself: run it on stores without
the samples (it answers 409 once they are there).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from feed_wiring.root import Services, build_services
from feed_wiring.settings import Settings
from newsfeed.errors import Conflict, NotFound
from newsfeed.ids import IdGenerator

# The ids in events/*.json (paths and SQS bodies).
ALICE_ID = 251438853682778112
BOB_ID = 251438853682778113
POST_ID = 251438900000000001
POST_TEXT = "Hello from the sample data"
POST_KEY = "sample-post"  # the Idempotency-Key: seeding again finds the same post
USERS = (  # (id, account, handle, display name)
    (ALICE_ID, "alice", "alice", "Alice"),
    (BOB_ID, "bob", "bob", "Bob"),
)


class SampleConflict(Exception):
    """The local stores hold something else under the samples' names or ids."""


class _ScriptedIds(IdGenerator):
    """Hands out exactly the ids it is given, so the domain's calls create the samples' ids."""

    def __init__(self) -> None:
        super().__init__(worker_id=0)
        self.next_ids: list[int] = []

    def next_id(self) -> int:
        if not self.next_ids:
            # A collision retry asked for a second id: the sample id is taken.
            raise SampleConflict("a sample id is already used by another user or post")
        return self.next_ids.pop(0)


def _profile(services: Services, ids: _ScriptedIds, user: tuple[int, str, str, str]) -> str:
    user_id, subject, handle, name = user
    try:
        existing = services.profiles.get_by_subject(subject)
    except NotFound:
        existing = None
    if existing is not None:
        if existing.id != user_id:
            raise SampleConflict(
                f"account {subject!r} already has the profile {existing.id}, not the samples' "
                f"{user_id} (made with POST /v1/users?); `make clean` empties the local stores"
            )
        return f"{subject}: {user_id} (there)"
    ids.next_ids = [user_id]
    try:
        services.profiles.create_profile(subject, handle, name)
    except Conflict as exc:
        raise SampleConflict(f"cannot create {subject!r} as {user_id}: {exc}") from exc
    return f"{subject}: {user_id} (created)"


def seed(settings: Settings, **adapters: Any) -> list[str]:
    """Create (or restore) the samples' users, edges and post; returns what it did. `adapters`
    go to `build_services` (tests pass their stores and queue)."""
    ids = _ScriptedIds()
    services = build_services(settings, ids=ids, **adapters)
    done = [_profile(services, ids, user) for user in USERS]
    social = services.social
    for a, b in ((ALICE_ID, BOB_ID), (BOB_ID, ALICE_ID)):
        social.unblock(a, b)
        social.unmute(a, b)
        social.follow(a, b)
    done.append("alice and bob follow each other; no block, no mute")
    ids.next_ids = [POST_ID]
    try:
        post = services.posts.create(ALICE_ID, POST_TEXT, idempotency_key=POST_KEY)
    except Conflict as exc:
        raise SampleConflict(
            f"alice's sample post {POST_ID} was deleted (events/posts-delete-post.json) and "
            "cannot come back; `make clean` empties the local stores"
        ) from exc
    if post.id != POST_ID:
        raise SampleConflict(f"alice's sample post is {post.id}, not {POST_ID}")
    done.append(f"alice's post: {POST_ID}")
    return done


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    from infra.invoke import local_environment

    # The same settings as `make invoke`: the local stores, the emulator's fan-out queue (the
    # post's fan-out job goes there, as from the posts function).
    for name, value in local_environment("samples").items():
        os.environ.setdefault(name, value)
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")):
        os.environ.setdefault(name, value)
    try:
        for line in seed(Settings.from_env(os.environ)):
            print(line)
    except SampleConflict as exc:
        print(f"samples: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
