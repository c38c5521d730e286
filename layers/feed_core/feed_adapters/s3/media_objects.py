"""The media bucket's objects: uploads read by the media function, variants written, and both
deleted when their medium is removed. Every S3 error but a missing object is
MediaBucketUnavailable: the caller's job is delivered again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from newsfeed.errors import MediaBucketUnavailable

from .bucket import S3Bucket

DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys


class S3MediaObjects(S3Bucket):
    def __init__(self, bucket: str, *, timeout_seconds: float = 5.0, **kwargs: Any) -> None:
        super().__init__(bucket, timeout_seconds=timeout_seconds, **kwargs)

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
