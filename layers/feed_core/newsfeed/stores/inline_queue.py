"""In-process FanoutQueues for tests and local scripts (no SQS involved).

`RecordingFanoutQueue` only collects jobs, so a test can inspect or redeliver them.
`InlineFanoutQueue` runs each job through a handler (FanoutService.handle) synchronously, in
send order, before `send` returns: fan-out becomes part of the request that caused it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

Job = dict[str, Any]


class RecordingFanoutQueue:
    def __init__(self) -> None:
        self.jobs: list[Job] = []

    def send(self, jobs: list[Job]) -> None:
        self.jobs.extend(jobs)

    def drain(self) -> list[Job]:
        jobs, self.jobs = self.jobs, []
        return jobs


class InlineFanoutQueue:
    def __init__(self, handler: Callable[[Job], None] | None = None) -> None:
        self._handler = handler
        self._pending: deque[Job] = deque()
        self._running = False
        self.handled: list[Job] = []  # every job run, for assertions

    def bind(self, handler: Callable[[Job], None]) -> None:
        self._handler = handler

    def send(self, jobs: list[Job]) -> None:
        if self._handler is None:
            raise RuntimeError("InlineFanoutQueue has no handler bound")
        self._pending.extend(jobs)
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
