"""Uploads processed and attached, through the functions' entry points: a real multipart upload
to the emulator's S3, the media function's handler given the S3 event the bucket would send
(this session's bucket has no notification; the deployed stack's test has the real one), the
post made with `media_ids` through the posts function, the variant's bytes read back from the
URL the post carries, and the objects removed with the post (the fan-out worker's retract
job) or when no post took them (the cleanup job)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from PIL import Image

from feed_adapters.mongo.media_store import MongoMediaStore
from feed_adapters.s3.media_objects import S3MediaObjects
from feed_wiring import root as container
from feed_wiring.settings import Settings
from infra.deploy import aws
from infra.lambda_events import LambdaApi, LambdaContext, s3_event
from newsfeed.ids import IdGenerator
from newsfeed.media.service import MediaService
from tests import media_samples as samples
from tests.integration.api.test_api_media import start_upload, upload

pytestmark = pytest.mark.integration

MakeUser = Callable[..., dict[str, Any]]


@pytest.fixture(scope="session")
def process(
    function_app: Callable[[str], Any], media_bucket: str
) -> Callable[[str], dict[str, Any]]:
    """Deliver S3's ObjectCreated event for `key` to functions/media/app.handler."""
    module = function_app("media")

    def run(key: str) -> dict[str, Any]:
        return module.handler(s3_event(media_bucket, [key]), LambdaContext("media"))

    return run


def uploaded(
    posts_api: LambdaApi,
    user: dict[str, Any],
    data: bytes,
    process: Callable[[str], dict[str, Any]],
    declared: str = "image/jpeg",
    name: str = "photo.jpg",
) -> dict[str, Any]:
    """Upload `data` as `name`, declared `declared`, let the media function process it; the
    medium's state after."""
    media = start_upload(posts_api, user, content_type=declared, size=len(data))
    fields = media["upload"]["fields"]
    resp = httpx.post(
        media["upload"]["url"],
        data=fields,
        files={"file": (name, data, fields["Content-Type"])},
        timeout=10,
    )
    assert resp.status_code == 204, resp.text
    process(fields["key"])
    got = posts_api.call("GET", f"/v1/media/{media['id']}", sub=user["sub"])
    assert got.status == 200, got.text
    return got.json()


def post_with(posts_api: LambdaApi, user: dict[str, Any], media_ids: list[str]) -> Any:
    return posts_api.call(
        "POST", "/v1/posts", sub=user["sub"], body={"text": "look", "media_ids": media_ids}
    )


def object_keys(api_settings: Settings, bucket: str, prefix: str) -> list[str]:
    listed = aws(api_settings, "s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


def test_a_photo_is_processed_attached_and_served_from_its_url(
    posts_api: LambdaApi,
    social_api: LambdaApi,
    feed_api: LambdaApi,
    deliver_jobs: Callable[[], int],
    make_user: MakeUser,
    media_bucket: str,
    process: Callable[[str], dict[str, Any]],
    api_settings: Settings,
) -> None:
    alice, bob = make_user(), make_user()
    assert social_api.call("PUT", f"/v1/me/following/{alice['id']}", sub=bob["sub"]).status == 204
    media = uploaded(posts_api, alice, samples.jpeg_with_location(1200, 600), process)
    assert media["state"] == "ready", media
    assert media["content_type"] == "image/jpeg" and media["error"] is None
    shown = media["media"]
    assert (shown["width"], shown["height"], shown["kind"]) == (600, 1200, "image")
    assert shown["placeholder"].startswith("#")
    # The original, with its location, is gone from the bucket; the variants are there.
    assert object_keys(api_settings, media_bucket, f"uploads/{alice['id']}/{media['id']}") == []
    assert len(object_keys(api_settings, media_bucket, f"media/{media['id']}/")) == 2

    made = post_with(posts_api, alice, [media["id"]])
    assert made.status == 201, made.text
    [item] = made.json()["media"]
    assert item["id"] == media["id"] and item["url"] == shown["url"]
    variants = {v["name"]: v for v in item["variants"]}
    assert set(variants) == {"thumbnail", "display"}
    base = api_settings.media_url_base
    assert all(v["url"].startswith(f"{base}/media/{media['id']}/") for v in variants.values())

    # Read back from its URL, as a browser would (locally the emulator's S3 address).
    got = httpx.get(variants["display"]["url"], timeout=10)
    assert got.status_code == 200
    assert got.headers["content-type"] == "image/webp"
    assert got.headers["cache-control"] == "public, max-age=31536000, immutable"
    image = Image.open(io.BytesIO(got.content))
    assert (
        image.size
        == (variants["display"]["width"], variants["display"]["height"])
        == (
            600,
            1200,
        )
    )
    assert not image.getexif(), "the location reached the CDN"
    again = httpx.get(
        variants["display"]["url"], headers={"If-None-Match": got.headers["etag"]}, timeout=10
    )
    assert again.status_code == 304

    # The post as others read it carries the same, in a follower's feed too (through the post
    # cache, which holds the post as Post.to_dict).
    read = posts_api.call("GET", f"/v1/posts/{made.json()['id']}", sub=bob["sub"])
    assert read.status == 200 and read.json()["media"] == made.json()["media"]
    deliver_jobs()
    feed = feed_api.call("GET", "/v1/feed", sub=bob["sub"])
    assert feed.status == 200, feed.text
    assert [p["media"] for p in feed.json()["items"]] == [made.json()["media"]]
    record = posts_api.call("GET", f"/v1/media/{media['id']}", sub=alice["sub"]).json()
    assert record["post_id"] == made.json()["id"]


def test_a_png_named_jpg_is_taken_as_png(
    posts_api: LambdaApi, make_user: MakeUser, media_bucket: str, process: Any
) -> None:
    media = uploaded(posts_api, make_user(), samples.png_bytes(), process, name="cat.jpg")
    assert media["state"] == "ready" and media["content_type"] == "image/png", media


@pytest.mark.parametrize(
    ("data", "name", "reason"),
    [
        (samples.TEXT, "notes.jpg", "not an image"),
        (samples.png_bomb(), "huge.png", "pixels"),
        (samples.MP4_HEAD, "clip.jpg", "video is not supported"),
        (samples.jpeg_with_location()[:300], "cut.jpg", "damaged|not a readable"),
    ],
    ids=["text-named-jpg", "decompression-bomb", "video", "truncated"],
)
def test_what_is_not_an_image_is_refused_and_cannot_be_attached(
    posts_api: LambdaApi,
    make_user: MakeUser,
    media_bucket: str,
    process: Any,
    api_settings: Settings,
    data: bytes,
    name: str,
    reason: str,
) -> None:
    import re

    alice = make_user()
    media = uploaded(posts_api, alice, data, process, name=name)
    assert media["state"] == "failed" and re.search(reason, media["error"]), media
    assert media["media"] is None
    assert object_keys(api_settings, media_bucket, f"uploads/{alice['id']}/{media['id']}") == []
    assert object_keys(api_settings, media_bucket, f"media/{media['id']}/") == []
    refused = post_with(posts_api, alice, [media["id"]])
    assert refused.status == 409 and "was refused" in refused.error["message"], refused.text
    assert re.search(reason, refused.error["message"])
    assert_no_posts(posts_api, alice)


def assert_no_posts(posts_api: LambdaApi, user: dict[str, Any]) -> None:
    listed = posts_api.call("GET", f"/v1/users/{user['id']}/posts", sub=user["sub"])
    assert listed.status == 200 and listed.json()["items"] == [], listed.text


def test_a_file_over_the_byte_limit_is_refused(
    posts_api: LambdaApi,
    make_user: MakeUser,
    media_bucket: str,
    process: Any,
    api_settings: Settings,
) -> None:
    fifty_mb = 50 * 1024 * 1024
    alice = make_user()
    # No upload target is signed for it...
    asked = posts_api.call(
        "POST",
        "/v1/media",
        sub=alice["sub"],
        body={"content_type": "image/jpeg", "size_bytes": fifty_mb},
    )
    assert asked.status == 400 and "size_bytes" in asked.error["message"], asked.text
    # ...a target for less refuses it (the file never reaches the bucket)...
    media = start_upload(posts_api, alice, content_type="image/jpeg", size=1024)
    big = b"\xff\xd8\xff" + b"\x00" * (fifty_mb - 3)
    resp = upload(media["upload"], big)
    assert resp.status_code == 400 and "EntityTooLarge" in resp.text
    # ...and an object over MEDIA_MAX_BYTES at the key by any other way is refused unread.
    key = media["upload"]["fields"]["key"]
    aws(api_settings, "s3").put_object(Bucket=media_bucket, Key=key, Body=big)
    process(key)
    state = posts_api.call("GET", f"/v1/media/{media['id']}", sub=alice["sub"]).json()
    assert (
        state["state"] == "failed" and f"at most {api_settings.media_max_bytes}" in (state["error"])
    )


def test_unprocessed_or_someone_elses_media_cannot_be_attached(
    posts_api: LambdaApi, make_user: MakeUser, media_bucket: str, process: Any
) -> None:
    alice, bob = make_user(), make_user()
    pending = start_upload(posts_api, alice)  # never uploaded (or its target expired)
    refused = post_with(posts_api, alice, [pending["id"]])
    assert refused.status == 409 and "not processed yet" in refused.error["message"]

    bobs = uploaded(posts_api, bob, samples.png_bytes(), process)
    assert bobs["state"] == "ready"
    refused = post_with(posts_api, alice, [bobs["id"]])
    assert refused.status == 404 and refused.error["message"] == f"media {bobs['id']} not found"
    unknown = post_with(posts_api, alice, ["1000000000000000001"])
    assert unknown.status == 404 and "not found" in unknown.error["message"]
    assert_no_posts(posts_api, alice)
    # Nothing was claimed on the way: Bob can still use his.
    assert (
        posts_api.call("GET", f"/v1/media/{bobs['id']}", sub=bob["sub"]).json()["post_id"] is None
    )
    assert post_with(posts_api, bob, [bobs["id"]]).status == 201


def test_a_claim_is_all_or_nothing_and_one_post_per_medium(
    posts_api: LambdaApi, make_user: MakeUser, media_bucket: str, process: Any
) -> None:
    alice = make_user()
    ready = uploaded(posts_api, alice, samples.png_bytes(), process)
    pending = start_upload(posts_api, alice)
    # The second fails: the first is let go again.
    refused = post_with(posts_api, alice, [ready["id"], pending["id"]])
    assert refused.status == 409, refused.text
    state = posts_api.call("GET", f"/v1/media/{ready['id']}", sub=alice["sub"]).json()
    assert state["post_id"] is None
    first = post_with(posts_api, alice, [ready["id"]])
    assert first.status == 201
    second = post_with(posts_api, alice, [ready["id"]])
    assert second.status == 409 and "attached to another post" in second.error["message"]
    twice = post_with(posts_api, alice, [ready["id"], ready["id"]])
    assert twice.status == 422 and "repeat" in twice.error["message"]


def test_more_than_four_media_are_refused(posts_api: LambdaApi, make_user: MakeUser) -> None:
    alice = make_user()
    resp = post_with(posts_api, alice, [str(10**18 + i) for i in range(5)])
    assert resp.status == 422 and "media_ids" in resp.error["message"], resp.text
    assert_no_posts(posts_api, alice)


def test_an_animation_is_attached_as_gif(
    posts_api: LambdaApi, make_user: MakeUser, media_bucket: str, process: Any
) -> None:
    media = uploaded(posts_api, make_user(), samples.animated_gif(), process, declared="image/gif")
    assert media["state"] == "ready" and media["media"]["kind"] == "gif", media


def test_an_event_delivered_twice_is_processed_once(
    posts_api: LambdaApi,
    make_user: MakeUser,
    media_bucket: str,
    process: Any,
    api_settings: Settings,
) -> None:
    alice = make_user()
    media = uploaded(posts_api, alice, samples.png_bytes(), process)
    key = f"uploads/{alice['id']}/{media['id']}"
    assert process(key) == {"outcomes": {"ignored": 1}}
    assert len(object_keys(api_settings, media_bucket, f"media/{media['id']}/")) == 2
    again = posts_api.call("GET", f"/v1/media/{media['id']}", sub=alice["sub"]).json()
    assert again == media
    # Uploaded again with the target (still valid for minutes): not kept, not processed.
    aws(api_settings, "s3").put_object(Bucket=media_bucket, Key=key, Body=samples.TEXT)
    assert process(key) == {"outcomes": {"ignored": 1}}
    assert object_keys(api_settings, media_bucket, key) == []


def test_deleting_the_post_removes_its_objects(
    posts_api: LambdaApi,
    make_user: MakeUser,
    media_bucket: str,
    process: Any,
    api_settings: Settings,
    deliver_jobs: Callable[[], int],
) -> None:
    alice = make_user()
    media = uploaded(posts_api, alice, samples.png_bytes(), process)
    post = post_with(posts_api, alice, [media["id"]]).json()
    url = post["media"][0]["url"]
    assert httpx.get(url, timeout=10).status_code == 200
    deliver_jobs()
    assert posts_api.call("DELETE", f"/v1/posts/{post['id']}", sub=alice["sub"]).status == 204
    assert deliver_jobs() >= 1  # the retract job
    assert object_keys(api_settings, media_bucket, f"media/{media['id']}/") == []
    assert httpx.get(url, timeout=10).status_code == 404
    state = posts_api.call("GET", f"/v1/media/{media['id']}", sub=alice["sub"]).json()
    assert state["state"] == "removed"
    refused = post_with(posts_api, alice, [media["id"]])
    assert refused.status == 409 and "removed" in refused.error["message"]


def test_media_no_post_took_within_a_day_are_removed(
    posts_api: LambdaApi,
    make_user: MakeUser,
    media_bucket: str,
    process: Any,
    api_settings: Settings,
    mongo_db: Any,
) -> None:
    alice = make_user()
    kept = uploaded(posts_api, alice, samples.png_bytes(), process)
    attached = uploaded(posts_api, alice, samples.png_bytes(), process)
    assert post_with(posts_api, alice, [attached["id"]]).status == 201
    never_uploaded = start_upload(posts_api, alice)

    # The cleanup job's step, run as if a day and a minute had passed.
    later = datetime.now(UTC) + timedelta(days=1, minutes=1)
    aged = MediaService(
        MongoMediaStore(mongo_db),
        container.get_services(api_settings).media._signer,  # unused here
        IdGenerator(),
        max_bytes=api_settings.media_max_bytes,
        upload_seconds=api_settings.media_upload_seconds,
        objects=S3MediaObjects(
            media_bucket, region=api_settings.aws_region, endpoint_url=api_settings.aws_endpoint_url
        ),
        clock=lambda: later,
    )
    assert aged.remove_unattached() >= 2
    states = {
        m["id"]: posts_api.call("GET", f"/v1/media/{m['id']}", sub=alice["sub"]).json()["state"]
        for m in (kept, attached, never_uploaded)
    }
    assert states == {
        kept["id"]: "removed",
        attached["id"]: "ready",
        never_uploaded["id"]: "removed",
    }
    assert object_keys(api_settings, media_bucket, f"media/{kept['id']}/") == []
    assert len(object_keys(api_settings, media_bucket, f"media/{attached['id']}/")) == 2


def test_through_the_dev_server_the_bucket_s_event_reaches_the_handler(
    api_settings: Settings,
    media_bucket: str,
    fanout_jobs: Any,
    token_for: Callable[..., str],
    function_app: Callable[[str], Any],
) -> None:
    """`make up`'s path: the dev bucket notifies its upload queue (infra/local_media.py), the
    local worker hands the event to the media handler; the dev app attaches the medium."""
    from fastapi.testclient import TestClient

    from infra import devserver
    from infra.fanout_worker import drain_uploads_once
    from infra.lambda_events import new_handle, new_subject
    from infra.local_media import ensure_media_bucket, upload_queue_name
    from infra.local_queues import sqs_client

    assert ensure_media_bucket(api_settings) == media_bucket
    sqs = sqs_client(api_settings)
    queue_url = sqs.get_queue_url(QueueName=upload_queue_name(media_bucket))["QueueUrl"]
    try:
        client = TestClient(devserver.build_app(api_settings))
        me = {"Authorization": f"Bearer {token_for(new_subject())}"}
        made = client.post(
            "/v1/users", headers=me, json={"handle": new_handle(), "display_name": "D"}
        )
        assert made.status_code == 201, made.text
        data = samples.png_bytes()
        media = client.post(
            "/v1/media", headers=me, json={"content_type": "image/png", "size_bytes": len(data)}
        ).json()
        target = media["upload"]
        sent = httpx.post(
            target["url"],
            data=target["fields"],
            files={"file": ("a.png", data, "image/png")},
            timeout=10,
        )
        assert sent.status_code == 204, sent.text

        handler = function_app("media").handler
        deadline = time.monotonic() + 15
        state = "pending"
        while state == "pending" and time.monotonic() < deadline:
            drain_uploads_once(sqs, handler, queue_url)
            state = client.get(f"/v1/media/{media['id']}", headers=me).json()["state"]
        assert state == "ready"
        post = client.post(
            "/v1/posts", headers=me, json={"text": "dev", "media_ids": [media["id"]]}
        )
        assert post.status_code == 201, post.text
        url = post.json()["media"][0]["url"]
        assert httpx.get(url, timeout=10).headers["content-type"] == "image/webp"
    finally:
        aws(api_settings, "s3").put_bucket_notification_configuration(
            Bucket=media_bucket, NotificationConfiguration={}
        )
        sqs.delete_queue(QueueUrl=queue_url)
