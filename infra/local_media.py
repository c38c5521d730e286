#!/usr/bin/env python3
"""Create the dev server's media bucket in the AWS emulator (idempotent).

    python infra/local_media.py          prints the bucket's name (MEDIA_BUCKET, `feed-media`)

In AWS the SAM template owns the bucket (MediaBucket); locally `make up` creates this one for
the dev server on :8000 with the template's CORS rule (ministack stores it but does not apply
it). The deployed stack `feed-local` has its own bucket, as it has its own queue.
"""

from __future__ import annotations

import os

from feed_wiring.settings import Settings

# The template's CorsConfiguration, in the S3 API's spelling.
CORS = {
    "CORSRules": [
        {
            "AllowedMethods": ["POST"],
            "AllowedOrigins": ["*"],
            "AllowedHeaders": ["*"],
            "MaxAgeSeconds": 3600,
        }
    ]
}


def ensure_media_bucket(settings: Settings) -> str:
    from infra.deploy import aws

    s3 = aws(settings, "s3")
    name = settings.media_bucket
    s3.create_bucket(Bucket=name)  # the emulator answers 200 for a bucket it already has
    s3.put_bucket_cors(Bucket=name, CORSConfiguration=CORS)
    return name


if __name__ == "__main__":
    print(ensure_media_bucket(Settings.from_env(os.environ)))
