"""Media uploads without stores: the domain's rules, and the presigned POST's signature.

The emulator does not check POST signatures (its AUTH is off), so the SigV4 signature of the
form is checked here: recomputed from the test secret over the base64 policy, as S3 does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from feed_adapters.s3.upload_signer import S3UploadSigner
from newsfeed.errors import InvalidInput, NotFound
from newsfeed.ids import IdGenerator
from newsfeed.media.service import MEDIA_TYPES, MediaService
from newsfeed.model import MediaRecord, UploadTarget

ACCESS_KEY, SECRET_KEY, REGION = (
    "AKIDEXAMPLE",
    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "eu-west-1",
)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sigv4_post_signature(secret: str, date: str, region: str, policy_b64: str) -> str:
    """S3's POST signature: the SigV4 signing key of (date, region, s3) over the policy."""
    key = _hmac(f"AWS4{secret}".encode(), date)
    for part in (region, "s3", "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, policy_b64.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def signer(monkeypatch: pytest.MonkeyPatch) -> S3UploadSigner:
    import boto3
    from botocore.config import Config

    # The client of AWS itself: botocore would take an emulator's address from the environment
    # (`make test` sets AWS_ENDPOINT_URL).
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)

    client = boto3.client(
        "s3",
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(signature_version="s3v4"),
    )
    return S3UploadSigner("media-bucket", region=REGION, client=client)


def test_the_form_carries_a_valid_sigv4_signature_of_its_policy(signer: S3UploadSigner) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    target = signer.upload_target("uploads/7/42", "image/png", 1234, 300)
    f = target.fields
    assert f["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    access, date, region, service, terminal = f["x-amz-credential"].split("/")
    assert (access, region, service, terminal) == (ACCESS_KEY, REGION, "s3", "aws4_request")
    assert f["x-amz-date"].startswith(date)
    assert f["x-amz-signature"] == sigv4_post_signature(SECRET_KEY, date, REGION, f["policy"])
    # Another secret gives another signature: the check above is not vacuous.
    assert f["x-amz-signature"] != sigv4_post_signature("other", date, REGION, f["policy"])

    policy = json.loads(base64.b64decode(f["policy"]))
    conditions = policy["conditions"]
    assert {"bucket": "media-bucket"} in conditions
    assert {"key": "uploads/7/42"} in conditions  # exact key, not a starts-with
    assert {"Content-Type": "image/png"} in conditions
    assert ["content-length-range", 1, 1234] in conditions
    # The signed fields are conditions too (S3 refuses a form whose fields the policy omits).
    for name in ("x-amz-algorithm", "x-amz-credential", "x-amz-date"):
        assert {name: f[name]} in conditions
    assert f["key"] == "uploads/7/42" and f["Content-Type"] == "image/png"
    assert target.url.startswith("https://media-bucket.s3.")  # virtual-hosted style on AWS
    assert before + timedelta(seconds=299) <= target.expires_at <= before + timedelta(seconds=302)


def test_signer_imports_boto3_only_when_it_signs() -> None:
    saved = {k: v for k, v in sys.modules.items() if k == "boto3" or k.startswith("boto3.")}
    for k in saved:
        del sys.modules[k]
    try:
        module = importlib.reload(sys.modules["feed_adapters.s3.upload_signer"])
        module.S3UploadSigner("b", region="us-east-1")
        assert "boto3" not in sys.modules
    finally:
        sys.modules.update(saved)


def test_an_emulator_endpoint_gets_path_style_urls() -> None:
    signer = S3UploadSigner("b", region="us-east-1", endpoint_url="http://127.0.0.1:4566")
    assert signer.upload_target("uploads/1/2", "image/gif", 5, 60).url == "http://127.0.0.1:4566/b"


class _Store:
    def __init__(self) -> None:
        self.records: dict[int, MediaRecord] = {}

    def insert_media(self, media: MediaRecord) -> None:
        self.records[media.id] = media

    def get_media(self, media_id: int) -> MediaRecord | None:
        return self.records.get(media_id)


class _Signer:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def upload_target(self, key: str, ct: str, max_bytes: int, seconds: int) -> UploadTarget:
        self.calls.append((key, ct, max_bytes, seconds))
        return UploadTarget("https://u", {"key": key}, datetime(2030, 1, 1, tzinfo=UTC))


def _service(store: _Store, signer: _Signer) -> MediaService:
    return MediaService(store, signer, IdGenerator(1), max_bytes=1000, upload_seconds=60)


def test_an_upload_is_a_pending_record_under_its_owner_s_key() -> None:
    store, signer = _Store(), _Signer()
    record, target = _service(store, signer).create_upload(7, "image/webp", 999)
    assert record.state == "pending" and record.owner_id == 7
    assert record.key == f"uploads/7/{record.id}" and store.records[record.id] == record
    assert signer.calls == [(record.key, "image/webp", 999, 60)]
    assert target.fields == {"key": record.key}


@pytest.mark.parametrize(
    ("content_type", "size", "message"),
    [
        ("image/svg+xml", 10, "content_type"),
        ("video/mp4", 10, "content_type"),
        ("image/png", 0, "size_bytes"),
        ("image/png", 1001, "size_bytes"),
    ],
)
def test_bad_uploads_are_refused_before_anything_is_stored(
    content_type: str, size: int, message: str
) -> None:
    store, signer = _Store(), _Signer()
    with pytest.raises(InvalidInput, match=message):
        _service(store, signer).create_upload(7, content_type, size)
    assert store.records == {} and signer.calls == []


def test_another_owner_s_medium_is_not_found() -> None:
    store = _Store()
    service = _service(store, _Signer())
    record, _ = service.create_upload(7, MEDIA_TYPES[0], 10)
    assert service.get(7, record.id) == record
    with pytest.raises(NotFound):
        service.get(8, record.id)
    with pytest.raises(NotFound):
        service.get(7, record.id + 1)
