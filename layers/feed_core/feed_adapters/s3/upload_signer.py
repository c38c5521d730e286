"""Upload targets on the media bucket: S3 presigned POSTs (SigV4), signed with the function's
own credentials (its role must allow s3:PutObject on the keys). Signing is local computation:
no call to S3. boto3 is imported and the client built on first use: most functions never
sign, and the import costs a cold start a few hundred milliseconds."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from newsfeed.model import UploadTarget

from .bucket import S3Bucket


class S3UploadSigner(S3Bucket):
    """Signing is local: no timeout applies (no call is made)."""

    def upload_target(
        self, key: str, content_type: str, max_bytes: int, expires_seconds: int
    ) -> UploadTarget:
        # boto3 adds the bucket and the exact key to the conditions itself.
        post = self._s3().generate_presigned_post(
            Bucket=self.bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[
                {"Content-Type": content_type},
                ["content-length-range", 1, max_bytes],
            ],
            ExpiresIn=expires_seconds,
        )
        fields = {k: str(v) for k, v in post["fields"].items()}
        return UploadTarget(url=post["url"], fields=fields, expires_at=policy_expiry(fields))


def policy_expiry(fields: dict[str, str]) -> datetime:
    """The `expiration` the signed policy carries: the instant S3 stops accepting the form."""
    policy = json.loads(base64.b64decode(fields["policy"]))
    return datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
