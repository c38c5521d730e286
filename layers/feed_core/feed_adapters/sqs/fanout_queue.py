"""The fan-out queue on Amazon SQS. boto3 is imported on first use: it costs a cold start a few
hundred milliseconds, and most functions never enqueue."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from newsfeed.errors import QueueUnavailable
from newsfeed.fanout.jobs import FanoutJob, to_message
from newsfeed.telemetry import NO_TELEMETRY, Telemetry

from ..translate import StoreBreaker, failure_kind

SQS_BATCH_LIMIT = 10  # SendMessageBatch takes at most 10 entries


class SqsFanoutQueue:
    def __init__(
        self,
        queue_url: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        client: Any = None,
        max_attempts: int = 3,
        timeout_ms: int = 800,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        if not queue_url:
            raise ValueError("queue_url is required")
        self.queue_url = queue_url
        self._region = region
        self._endpoint_url = endpoint_url
        self._client = client
        self._max_attempts = max_attempts
        self._timeout = timeout_ms / 1000
        # Like the stores': after one failure, sends fail fast for a while (a request with an
        # unreachable SQS pays one timeout, not one per job it sends).
        self.breaker = StoreBreaker("sqs", telemetry)

    def _sqs(self) -> Any:
        if self._client is None:
            # One retry of a throttled or failed call.
            from ..aws import aws_client

            self._client = aws_client(
                "sqs", self._region, self._endpoint_url, self._timeout, max_attempts=2
            )
        return self._client

    def send(self, jobs: Sequence[FanoutJob]) -> None:
        """Send every job; entries SQS reports as failed are retried, then QueueUnavailable.
        So is any error of the client itself (endpoint unreachable, throttled, timed out)."""
        from botocore.exceptions import BotoCoreError, ClientError

        if not self.breaker.allow():
            self.breaker.record("shed")
            raise QueueUnavailable()
        try:
            self._send([json.dumps(to_message(j), separators=(",", ":")) for j in jobs])
        except (BotoCoreError, ClientError, QueueUnavailable) as exc:
            self.breaker.failed()
            self.breaker.record(failure_kind(exc))
            if isinstance(exc, QueueUnavailable):
                raise
            raise QueueUnavailable() from exc
        except BaseException:
            self.breaker.succeeded()
            raise
        self.breaker.succeeded()

    def _send(self, bodies: list[str]) -> None:
        for start in range(0, len(bodies), SQS_BATCH_LIMIT):
            pending = {
                str(i): body for i, body in enumerate(bodies[start : start + SQS_BATCH_LIMIT])
            }
            failed: list[dict[str, Any]] = []
            for _ in range(self._max_attempts):
                response = self._sqs().send_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[{"Id": k, "MessageBody": v} for k, v in pending.items()],
                )
                failed = response.get("Failed") or []
                pending = {f["Id"]: pending[f["Id"]] for f in failed}
                if not pending:
                    break
            if pending:
                raise QueueUnavailable(f"the queue refused {len(pending)} fan-out job(s)")
