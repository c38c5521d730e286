"""Steady traffic through the dev API, for the dashboard to show something (`make dashboard`).

    python -m infra.monitoring.traffic [--seconds 180] [--users 40] [--rate 20]

A few dozen profiles (`traffic_<n>`, reused on the next run) follow each other at random, then
for the given time a small pool of clients reads home feeds (some pages further down), posts,
likes, and follows or unfollows, at about `rate` requests a second. The posts fan out through
the local worker; the scheduled functions run from the emulator's schedules meanwhile. Prints
the responses by status at the end; exit status 1 if any answered 5xx.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from feed_wiring.settings import Settings
from infra.mint_token import ensure_keypair, mint_token

# Share of each action in the mix: a feed product is read-heavy.
ACTIONS = (("read", 60), ("read_next_page", 10), ("post", 12), ("like", 12), ("follow", 6))


class Traffic:
    def __init__(self, base_url: str, users: int, seed: int) -> None:
        settings = Settings.from_env(os.environ)
        pair = ensure_keypair()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.statuses: Counter[int] = Counter()
        self._names = [f"traffic_{n}" for n in range(users)]
        self._tokens = {n: mint_token(n, settings=settings, pair=pair) for n in self._names}
        self._client = httpx.Client(base_url=base_url, timeout=10)
        self.ids: dict[str, str] = {}
        self._posts: list[str] = []
        self._cursors: dict[str, str] = {}

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._tokens[who]}"}
        response = self._client.request(method, path, headers=headers, **kwargs)
        with self._lock:
            self.statuses[response.status_code] += 1
        return response

    def setup(self, follows_each: int) -> None:
        for name in self._names:
            r = self.call(name, "POST", "/v1/users", json={"handle": name, "display_name": name})
            if r.status_code == 409:  # made by an earlier run
                r = self.call(name, "GET", "/v1/users/me")
            r.raise_for_status()
            self.ids[name] = r.json()["id"]
        for name in self._names:
            others = [n for n in self._names if n != name]
            for followee in self._random.sample(others, min(follows_each, len(others))):
                self.call(name, "PUT", f"/v1/me/following/{self.ids[followee]}")

    def _pick(self) -> str:
        with self._lock:
            return self._random.choice(self._names)

    def act(self, action: str) -> None:
        who = self._pick()
        if action == "read":
            page = self.call(who, "GET", "/v1/feed", params={"limit": 20})
            if page.status_code == 200 and page.json().get("next_cursor"):
                with self._lock:
                    self._cursors[who] = page.json()["next_cursor"]
        elif action == "read_next_page":
            with self._lock:
                cursor = self._cursors.pop(who, None)
            params = {"limit": 20, **({"cursor": cursor} if cursor else {})}
            self.call(who, "GET", "/v1/feed", params=params)
        elif action == "post":
            r = self.call(who, "POST", "/v1/posts", json={"text": f"hello from {who}"})
            if r.status_code == 201:
                with self._lock:
                    self._posts.append(r.json()["id"])
                    del self._posts[:-500]
        elif action == "like":
            with self._lock:
                post = self._random.choice(self._posts) if self._posts else None
            if post:
                self.call(who, "PUT", f"/v1/posts/{post}/like")
        elif action == "follow":
            other = self._pick()
            if other != who:
                method = "PUT" if self._random.random() < 0.6 else "DELETE"
                self.call(who, method, f"/v1/me/following/{self.ids[other]}")

    def run(self, seconds: float, rate: float, clients: int) -> None:
        names, weights = zip(*ACTIONS, strict=True)
        deadline = time.monotonic() + seconds
        interval = 1 / rate
        # At most two requests waiting per client: when the API is slower than the rate, the
        # rate drops instead of a backlog outliving the deadline.
        slots = threading.BoundedSemaphore(clients * 2)

        def one(action: str) -> None:
            try:
                _quietly(self.act, action)
            finally:
                slots.release()

        with ThreadPoolExecutor(clients) as pool:
            next_at = time.monotonic()
            while time.monotonic() < deadline:
                action = self._random.choices(names, weights)[0]
                slots.acquire()
                pool.submit(one, action)
                next_at = max(next_at + interval, time.monotonic() - 1)
                time.sleep(max(0.0, next_at - time.monotonic()))


def _quietly(step: Callable[[str], None], action: str) -> None:
    try:
        step(action)
    except httpx.HTTPError as exc:  # a refused connection counts as a failed request
        print(f"[traffic] {action}: {exc!r}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--follows", type=int, default=8, help="followees per user")
    parser.add_argument("--rate", type=float, default=20, help="requests a second")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--url", default=f"http://127.0.0.1:{os.environ.get('FEED_API_PORT', '8000')}"
    )
    args = parser.parse_args(argv)
    traffic = Traffic(args.url, args.users, args.seed)
    traffic.setup(args.follows)
    print(f"[traffic] {args.users} users; {args.rate:g} req/s for {args.seconds:g} s", flush=True)
    traffic.run(args.seconds, args.rate, args.clients)
    print(f"[traffic] responses by status: {dict(sorted(traffic.statuses.items()))}")
    return 1 if any(status >= 500 for status in traffic.statuses) else 0


if __name__ == "__main__":
    sys.exit(main())
