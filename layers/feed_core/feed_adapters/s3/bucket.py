"""What the media bucket's adapters share: the bucket's name and an S3 client built on first
use (feed_adapters/aws.py), so a function that never touches the bucket never imports boto3."""

from __future__ import annotations

from typing import Any


class S3Bucket:
    def __init__(
        self,
        bucket: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        client: Any = None,
        timeout_seconds: float | None = None,
    ) -> None:
        if not bucket:
            raise ValueError("bucket is required")
        self.bucket = bucket
        self._region = region
        self._endpoint_url = endpoint_url
        self._client = client
        self._timeout = timeout_seconds

    def _s3(self) -> Any:
        if self._client is None:
            from ..aws import s3_client

            self._client = s3_client(self._region, self._endpoint_url, self._timeout)
        return self._client
