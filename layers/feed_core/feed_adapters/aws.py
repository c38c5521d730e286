"""One way to build the AWS clients of the adapters (SQS, S3, CloudFront). boto3 is imported
here, on first use: most functions never call AWS, and the import costs a cold start a few
hundred milliseconds."""

from __future__ import annotations

from typing import Any


def aws_client(
    service: str,
    region: str | None,
    endpoint_url: str | None,
    timeout_seconds: float | None = None,
    *,
    max_attempts: int = 3,
    **config: Any,
) -> Any:
    """A boto3 client; with `timeout_seconds`, bounded connect and read timeouts and
    `max_attempts` tries (botocore's defaults, 60 s each with retries, would hold a call for
    minutes when the service is unreachable)."""
    import boto3
    from botocore.config import Config

    if timeout_seconds is not None:
        config.update(
            connect_timeout=timeout_seconds,
            read_timeout=max(timeout_seconds, 1.0),
            retries={"mode": "standard", "max_attempts": max_attempts},
        )
    return boto3.client(
        service, region_name=region, endpoint_url=endpoint_url, config=Config(**config)
    )


def s3_client(
    region: str | None, endpoint_url: str | None, timeout_seconds: float | None = None
) -> Any:
    # Always SigV4: botocore's default for presigned POSTs in some regions is the legacy
    # signature, which new regions and KMS-encrypted buckets refuse. An emulator endpoint
    # (127.0.0.1:4566) takes path-style addressing only; AWS gets the virtual-hosted style its
    # new buckets need.
    return aws_client(
        "s3",
        region,
        endpoint_url,
        timeout_seconds,
        signature_version="s3v4",
        s3={"addressing_style": "path" if endpoint_url else "virtual"},
    )
