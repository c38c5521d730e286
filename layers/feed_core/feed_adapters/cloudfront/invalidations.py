"""Invalidations on the media distribution: a deleted post's variants are deleted from the
bucket, but edge caches keep what they hold for the variants' max-age (a year); an
invalidation drops them. One wildcard path per medium (CloudFront bills a wildcard as one
path). The caller reference is the medium's, so a retried removal makes no second one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from newsfeed.errors import CdnUnavailable


class CloudFrontInvalidations:
    def __init__(
        self,
        distribution_id: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        client: Any = None,
        timeout_seconds: float = 5.0,
    ) -> None:
        if not distribution_id:
            raise ValueError("distribution_id is required")
        self.distribution_id = distribution_id
        self._region = region
        self._endpoint_url = endpoint_url
        self._client = client
        self._timeout = timeout_seconds

    def _cloudfront(self) -> Any:
        if self._client is None:
            from ..aws import aws_client

            self._client = aws_client("cloudfront", self._region, self._endpoint_url, self._timeout)
        return self._client

    def invalidate(self, paths: Sequence[str], reference: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._cloudfront().create_invalidation(
                DistributionId=self.distribution_id,
                InvalidationBatch={
                    "Paths": {"Quantity": len(paths), "Items": list(paths)},
                    "CallerReference": reference,
                },
            )
        except (BotoCoreError, ClientError) as exc:
            raise CdnUnavailable() from exc
