"""One way to build the S3 client, for the signer and the objects alike. boto3 is imported
here, on first use: most functions never touch the bucket, and the import costs a cold start a
few hundred milliseconds."""

from __future__ import annotations

from typing import Any


def s3_client(
    region: str | None, endpoint_url: str | None, timeout_seconds: float | None = None
) -> Any:
    import boto3
    from botocore.config import Config

    # Always SigV4: botocore's default for presigned POSTs in some regions is the legacy
    # signature, which new regions and KMS-encrypted buckets refuse. An emulator endpoint
    # (127.0.0.1:4566) takes path-style addressing only; AWS gets the virtual-hosted style its
    # new buckets need.
    options: dict[str, Any] = {
        "signature_version": "s3v4",
        "s3": {"addressing_style": "path" if endpoint_url else "virtual"},
    }
    if timeout_seconds is not None:
        # botocore's defaults (60 s connect and read) would hold a call for minutes when S3 is
        # unreachable.
        options.update(
            connect_timeout=timeout_seconds,
            read_timeout=max(timeout_seconds, 5.0),
            retries={"mode": "standard", "max_attempts": 3},
        )
    return boto3.client(
        "s3", region_name=region, endpoint_url=endpoint_url, config=Config(**options)
    )
