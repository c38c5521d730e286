"""The media variants through the stack's CloudFront distribution in the emulator: served from
the private bucket by origin access control with the variants' own caching headers, and only
under media/ (the bucket policy). The emulator's CloudFront answers at its gateway for a
request whose Host is the distribution's domain (X-Forwarded-Proto tells it the viewer used
HTTPS); it caches nothing, so what is checked is the origin path, the policy and the headers,
not edge caching."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from feed_wiring.settings import Settings
from infra import deploy

pytestmark = pytest.mark.e2e

IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass
class Cdn:
    s3: Any
    cloudfront: Any
    bucket: str
    distribution_id: str
    domain: str
    base: str  # MEDIA_CDN_BASE of the stack (the emulator's S3 address)
    gateway: str
    http: httpx.Client
    keys: list[str]

    def put(self, key: str, body: bytes, **kwargs: Any) -> str:
        self.keys.append(key)
        return self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, **kwargs)["ETag"]

    def exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
        except self.s3.exceptions.ClientError:
            return False
        return True

    def viewer(self, method: str, key: str, https: bool = True, **headers: str) -> httpx.Response:
        """A viewer's request for https://<distribution domain>/<key>."""
        proto = "https" if https else "http"
        headers = {"host": self.domain, "x-forwarded-proto": proto, **headers}
        return self.http.request(method, f"{self.gateway}/{key}", headers=headers)


@pytest.fixture(scope="module")
def cdn(e2e_settings: Settings, deployed: deploy.Deployed) -> Iterator[Cdn]:
    s3 = deploy.aws(e2e_settings, "s3")
    cloudfront = deploy.aws(e2e_settings, "cloudfront")
    distribution_id = deployed.outputs["MediaDistributionId"]
    domain = cloudfront.get_distribution(Id=distribution_id)["Distribution"]["DomainName"]
    with httpx.Client(timeout=10, follow_redirects=False) as http:
        found = Cdn(
            s3=s3,
            cloudfront=cloudfront,
            bucket=deployed.outputs["MediaBucketName"],
            distribution_id=distribution_id,
            domain=domain,
            base=deployed.outputs["MediaCdnBase"],
            gateway=str(e2e_settings.aws_endpoint_url).rstrip("/"),
            http=http,
            keys=[],
        )
        yield found
    for key in found.keys:  # an emptied bucket, so that the stack deletes cleanly
        s3.delete_object(Bucket=found.bucket, Key=key)


def test_a_variant_is_served_through_the_distribution_with_its_caching_headers(cdn):
    key = f"media/test/{uuid.uuid4().hex}/x.webp"
    body = b"RIFF\x1a\x00\x00\x00WEBPVP8L" + uuid.uuid4().bytes
    etag = cdn.put(key, body, ContentType="image/webp", CacheControl=IMMUTABLE)

    got = cdn.viewer("GET", key)
    assert got.status_code == 200, got.text
    assert got.content == body
    assert got.headers["cache-control"] == IMMUTABLE
    assert got.headers["content-type"] == "image/webp"
    assert got.headers["etag"] == etag
    assert "cloudfront" in got.headers.get("via", "").lower()

    again = cdn.viewer("GET", key, **{"if-none-match": got.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag

    assert cdn.viewer("HEAD", key).status_code == 200
    # GET and HEAD only; plain HTTP is sent to HTTPS.
    assert cdn.viewer("DELETE", key).status_code == 403
    assert cdn.exists(key)
    plain = cdn.viewer("GET", key, https=False)
    assert plain.status_code == 301
    assert plain.headers["location"] == f"https://{cdn.domain}/{key}"

    # The stack's MEDIA_CDN_BASE (infra/deploy.py: the emulator's S3, path-style) serves it too.
    direct = cdn.http.get(f"{cdn.base}/{key}")
    assert (direct.status_code, direct.content) == (200, body)
    assert direct.headers["cache-control"] == IMMUTABLE


def test_uploads_and_missing_keys_are_refused_through_the_distribution(cdn):
    """The bucket policy lets the distribution read media/* only. An upload exists (checked
    after the refusal: the media function, notified of uploads/, may remove one), and is
    still refused."""
    for _ in range(3):
        key = f"uploads/test/{uuid.uuid4().hex}"
        cdn.put(key, b"\x89PNG\r\n\x1a\n", ContentType="image/png")
        refused = cdn.viewer("GET", key)
        if cdn.exists(key):
            break
    else:
        pytest.fail("every upload was gone before its refusal could be told from a missing key")
    assert refused.status_code == 403, refused.text
    assert b"AccessDenied" in refused.content
    assert cdn.viewer("GET", f"media/test/{uuid.uuid4().hex}/missing.webp").status_code == 403


def test_the_bucket_notifies_the_media_function_of_uploads_only(cdn, deployed):
    config = cdn.s3.get_bucket_notification_configuration(Bucket=cdn.bucket)
    (target,) = config["LambdaFunctionConfigurations"]
    assert target["LambdaFunctionArn"].endswith(f":function:feed-{deployed.stage}-media")
    assert target["Events"] == ["s3:ObjectCreated:*"]
    assert target["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "uploads/"}]


def test_the_distribution_takes_invalidations(cdn):
    """What the fan-out and cleanup jobs send for a deleted post's variants. The emulator
    completes one at once (it caches nothing)."""
    media_id = uuid.uuid4().hex
    created = cdn.cloudfront.create_invalidation(
        DistributionId=cdn.distribution_id,
        InvalidationBatch={
            "Paths": {"Quantity": 1, "Items": [f"/media/{media_id}/*"]},
            "CallerReference": media_id,
        },
    )["Invalidation"]
    assert created["Status"] in {"InProgress", "Completed"}
    fetched = cdn.cloudfront.get_invalidation(DistributionId=cdn.distribution_id, Id=created["Id"])
    paths = fetched["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]
    assert paths == [f"/media/{media_id}/*"]
