#!/usr/bin/env python3
"""Create the dev server's media bucket in the AWS emulator (idempotent).

    python infra/local_media.py          prints the bucket's name (MEDIA_BUCKET, `feed-media`)

In AWS the SAM template owns the bucket (MediaBucket); locally `make up` creates this one for
the dev server on :8000 with the template's CORS rule (ministack stores it but does not apply
it). The deployed stack `feed-local` has its own bucket, as it has its own queue.

Uploads are processed as in AWS, by functions/media/app.handler on S3's ObjectCreated event:
here the bucket notifies a queue (`<bucket>-uploads`, with a dead-letter queue) and the local
fan-out worker (infra/fanout_worker.py) hands each event to the handler, since no function of
the dev server is deployed for the bucket to invoke.
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


def upload_queue_name(bucket: str) -> str:
    return f"{bucket}-uploads"


def ensure_media_bucket(settings: Settings) -> str:
    from infra.deploy import aws
    from infra.local_queues import ensure_fanout_queues, sqs_client
    from newsfeed.media.service import UPLOAD_PREFIX

    s3 = aws(settings, "s3")
    name = settings.media_bucket
    s3.create_bucket(Bucket=name)  # the emulator answers 200 for a bucket it already has
    s3.put_bucket_cors(Bucket=name, CORSConfiguration=CORS)
    queue_url, _ = ensure_fanout_queues(settings, upload_queue_name(name), visibility_timeout=60)
    queue_arn = sqs_client(settings).get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=name,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {"FilterRules": [{"Name": "prefix", "Value": UPLOAD_PREFIX}]}
                    },
                }
            ]
        },
    )
    return name


if __name__ == "__main__":
    print(ensure_media_bucket(Settings.from_env(os.environ)))
