"""Media uploads through functions/posts/app.handler, and the upload itself as a browser would
send it: a multipart form POST to the emulator's S3 (ministack), which enforces the presigned
POST's policy (key, size range, Content-Type, expiry) but not its signature (tests/unit/
test_media_uploads.py checks the signature)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from feed_adapters.mongo.media_store import MongoMediaStore
from feed_adapters.s3.upload_signer import S3UploadSigner
from feed_wiring.settings import Settings
from infra.deploy import aws
from infra.lambda_events import LambdaApi, new_subject
from newsfeed.errors import Conflict
from newsfeed.ids import IdGenerator
from newsfeed.media.service import MediaService

pytestmark = pytest.mark.integration

MakeUser = Callable[..., dict[str, Any]]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 56  # 64 bytes; the type is checked by a later step


def start_upload(
    posts_api: LambdaApi, user: dict[str, Any], content_type: str = "image/png", size: int = 64
) -> dict[str, Any]:
    resp = posts_api.call(
        "POST",
        "/v1/media",
        sub=user["sub"],
        body={"content_type": content_type, "size_bytes": size},
    )
    assert resp.status == 201, resp.text
    assert resp.headers["location"] == f"/v1/media/{resp.json()['id']}"
    return resp.json()


def upload(target: dict[str, Any], data: bytes, **field_overrides: str) -> httpx.Response:
    fields = {**target["fields"], **field_overrides}
    content_type = fields.get("Content-Type", "application/octet-stream")
    # The file goes last: S3 ignores form fields after it.
    return httpx.post(
        target["url"], data=fields, files={"file": ("a.png", data, content_type)}, timeout=10
    )


def test_upload_target_stores_the_file_and_the_record_is_pending(
    posts_api: LambdaApi, make_user: MakeUser, media_bucket: str, api_settings: Settings
) -> None:
    alice = make_user()
    media = start_upload(posts_api, alice)
    assert media["state"] == "pending" and media["id"].isdigit()
    target = media["upload"]
    key = f"uploads/{alice['id']}/{media['id']}"
    assert target["fields"]["key"] == key
    expires_at = datetime.fromisoformat(target["expires_at"])
    assert 0 < (expires_at - datetime.now(UTC)).total_seconds() <= api_settings.media_upload_seconds

    resp = upload(target, PNG)
    assert resp.status_code == 204, resp.text
    stored = aws(api_settings, "s3").get_object(Bucket=media_bucket, Key=key)
    assert stored["Body"].read() == PNG and stored["ContentType"] == "image/png"

    got = posts_api.call("GET", f"/v1/media/{media['id']}", sub=alice["sub"])
    assert got.status == 200, got.text
    assert got.json()["state"] == "pending" and got.json()["id"] == media["id"]
    assert got.json()["content_type"] == "image/png" and got.json()["size_bytes"] == 64


def test_a_file_larger_than_declared_is_refused(
    posts_api: LambdaApi, make_user: MakeUser, media_bucket: str
) -> None:
    target = start_upload(posts_api, make_user(), size=64)["upload"]
    resp = upload(target, PNG + b"x")
    assert resp.status_code == 400 and "EntityTooLarge" in resp.text, resp.text


def test_another_content_type_than_declared_is_refused(
    posts_api: LambdaApi, make_user: MakeUser, media_bucket: str
) -> None:
    target = start_upload(posts_api, make_user(), content_type="image/png")["upload"]
    resp = upload(target, PNG, **{"Content-Type": "text/html"})
    assert resp.status_code == 403, resp.text
    assert "AccessDenied" in resp.text and "Invalid according to Policy" in resp.text


def test_another_key_than_signed_is_refused(
    posts_api: LambdaApi, make_user: MakeUser, media_bucket: str
) -> None:
    alice = make_user()
    target = start_upload(posts_api, alice)["upload"]
    resp = upload(target, PNG, key=f"uploads/{alice['id']}/1")
    assert resp.status_code == 403 and "Invalid according to Policy" in resp.text, resp.text


def test_an_expired_target_is_refused(
    api_settings: Settings, mongo_db: Any, media_bucket: str
) -> None:
    # The API's wiring with a one-second MEDIA_UPLOAD_SECONDS: the real store and signer.
    service = MediaService(
        MongoMediaStore(mongo_db),
        S3UploadSigner(
            media_bucket, region=api_settings.aws_region, endpoint_url=api_settings.aws_endpoint_url
        ),
        IdGenerator(),
        max_bytes=api_settings.media_max_bytes,
        upload_seconds=1,
    )
    record, target = service.create_upload(1234, "image/png", len(PNG))
    # The policy's expiry has whole seconds: wait past it.
    time.sleep(max(0.0, (target.expires_at - datetime.now(UTC)).total_seconds()) + 1.2)
    resp = upload({"url": target.url, "fields": target.fields}, PNG)
    assert resp.status_code == 403 and "Policy expired" in resp.text, resp.text
    # Nothing reached the bucket: the medium stays pending and cannot be attached.
    with pytest.raises(Conflict, match="not processed yet"):
        service.attach(1234, [record.id], 99)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"content_type": "image/svg+xml", "size_bytes": 10}, 422, "content_type"),
        ({"content_type": "video/mp4", "size_bytes": 10}, 422, "content_type"),
        ({"content_type": "image/png", "size_bytes": 0}, 422, "size_bytes"),
        ({"content_type": "image/png", "size_bytes": 10 * 1024 * 1024 + 1}, 400, "size_bytes"),
        ({"content_type": "image/png"}, 422, "size_bytes"),
        ({"content_type": "image/png", "size_bytes": 10, "key": "x"}, 422, "key"),
    ],
)
def test_bad_input_is_refused_with_a_message(
    posts_api: LambdaApi, make_user: MakeUser, body: dict[str, Any], status: int, field: str
) -> None:
    resp = posts_api.call("POST", "/v1/media", sub=make_user()["sub"], body=body)
    assert resp.status == status, resp.text
    assert field in resp.error["message"]


def test_another_user_s_media_is_not_found(
    posts_api: LambdaApi, make_user: MakeUser, media_bucket: str
) -> None:
    media = start_upload(posts_api, make_user())
    resp = posts_api.call("GET", f"/v1/media/{media['id']}", sub=make_user()["sub"])
    assert resp.status == 404 and resp.error["code"] == "not_found", resp.text
    unknown = posts_api.call("GET", "/v1/media/1000000000000000001", sub=make_user()["sub"])
    assert unknown.status == 404 and unknown.error["message"] == resp.error["message"].replace(
        media["id"], "1000000000000000001"
    )


def test_media_needs_a_token_and_a_profile(posts_api: LambdaApi) -> None:
    body = {"content_type": "image/png", "size_bytes": 10}
    assert posts_api.call("POST", "/v1/media", body=body).status == 401

    resp = posts_api.call("POST", "/v1/media", sub=new_subject(), body=body)
    assert resp.status == 404 and resp.error["code"] == "profile_required"
