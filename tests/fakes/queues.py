"""In-process fan-out queues for tests and the benchmark (no SQS involved).

Both send each job through its wire shape (`to_message`), as SQS would carry it, so what a test
delivers is exactly what the fan-out worker would parse.

`RecordingFanoutQueue` only collects the messages, so a test can inspect or redeliver them.
`InlineFanoutQueue` runs each message through a handler (`FanoutJobHandler.handle_message`)
synchronously, in send order, before `send` returns: fan-out becomes part of the request that
caused it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from newsfeed.fanout.jobs import FanoutJob, to_message

Message = dict[str, Any]


class RecordingFanoutQueue:
    def __init__(self) -> None:
        self.jobs: list[Message] = []

    def send(self, jobs: Sequence[FanoutJob]) -> None:
        self.jobs.extend(to_message(j) for j in jobs)

    def drain(self) -> list[Message]:
        jobs, self.jobs = self.jobs, []
        return jobs


class InlineFanoutQueue:
    def __init__(self, handler: Callable[[Message], None] | None = None) -> None:
        self._handler = handler
        self._pending: deque[Message] = deque()
        self._running = False
        self.handled: list[Message] = []  # every message run, for assertions

    def bind(self, handler: Callable[[Message], None]) -> None:
        self._handler = handler

    def send(self, jobs: Sequence[FanoutJob]) -> None:
        if self._handler is None:
            raise RuntimeError("InlineFanoutQueue has no handler bound")
        self._pending.extend(to_message(j) for j in jobs)
        if self._running:
            return  # a head job sending chunk jobs: the outer loop runs them in order
        self._running = True
        try:
            while self._pending:
                job = self._pending.popleft()
                self._handler(job)
                self.handled.append(job)
        finally:
            self._running = False
            self._pending.clear()
