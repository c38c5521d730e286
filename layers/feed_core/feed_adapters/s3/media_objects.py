"""The media bucket's objects: uploads read by the media function, variants written, and both
deleted when their medium is removed. Every S3 error but a missing object is
MediaBucketUnavailable: the caller's job is delivered again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from newsfeed.errors import MediaBucketUnavailable

DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys


class S3MediaObjects:
    def __init__(
        self,
        bucket: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        client: Any = None,
        timeout_seconds: float = 5.0,
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

    def _call(self, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._s3(), method)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchKey", "NotFound"):
                raise KeyError(kwargs.get("Key")) from exc
            raise MediaBucketUnavailable() from exc
        except BotoCoreError as exc:
            raise MediaBucketUnavailable() from exc

    def size(self, key: str) -> int | None:
        try:
            return int(self._call("head_object", Key=key)["ContentLength"])
        except KeyError:
            return None

    def read(self, key: str) -> bytes:
        body = self._call("get_object", Key=key)["Body"]
        try:
            return body.read()
        finally:
            body.close()

    def write(self, key: str, data: bytes, content_type: str, cache_control: str) -> None:
        self._call(
            "put_object",
            Key=key,
            Body=data,
            ContentType=content_type,
            CacheControl=cache_control,
        )

    def delete(self, keys: Sequence[str]) -> None:
        keys = list(dict.fromkeys(keys))
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            done = self._call(
                "delete_objects",
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
            if done.get("Errors"):
                first = done["Errors"][0]
                raise MediaBucketUnavailable(
                    f"the media bucket kept {len(done['Errors'])} object(s): "
                    f"{first.get('Code')} {first.get('Key')}"
                )
