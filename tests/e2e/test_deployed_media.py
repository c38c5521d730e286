"""An upload through the deployed stack in the emulator: the posts function signs the upload
target, the browser's multipart POST goes to the stack's bucket, the bucket's notification
invokes the media function (built by `sam build` with its own Pillow), the post carries the
variants' URLs, and they serve the processed bytes: from MEDIA_CDN_BASE (locally the
emulator's S3 address) and through the stack's CloudFront distribution. Deleting the post
deletes the objects (the fan-out function's retract job)."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

from tests import media_samples as samples
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e


def upload(api, user, data: bytes, content_type: str, name: str) -> dict:
    made = api.call(
        "POST",
        "/v1/media",
        user["sub"],
        json={"content_type": content_type, "size_bytes": len(data)},
    )
    assert made.status_code == 201, made.text
    target = made.json()["upload"]
    sent = httpx.post(
        target["url"],
        data=target["fields"],
        files={"file": (name, data, content_type)},
        timeout=10,
    )
    assert sent.status_code == 204, sent.text
    return made.json()


def settled(api, user, media_id: str) -> dict:
    def state() -> dict | None:
        got = api.call("GET", f"/v1/media/{media_id}", user["sub"])
        assert got.status_code == 200, got.text
        return got.json() if got.json()["state"] != "pending" else None

    # S3 invokes the function asynchronously; its first run pays the cold start.
    return wait_for(state, f"media {media_id} processed", timeout=60, every=0.5)


def test_an_upload_is_processed_by_the_stack_and_served_from_its_urls(api, deployed, e2e_settings):
    alice = api.user("media")
    media = upload(api, alice, samples.jpeg_with_location(1200, 600), "image/jpeg", "p.jpg")
    done = settled(api, alice, media["id"])
    assert done["state"] == "ready", done
    assert (done["media"]["width"], done["media"]["height"]) == (600, 1200)

    post = api.call(
        "POST", "/v1/posts", alice["sub"], json={"text": "pic", "media_ids": [media["id"]]}
    )
    assert post.status_code == 201, post.text
    [item] = post.json()["media"]
    display = next(v for v in item["variants"] if v["name"] == "display")
    assert display["url"].startswith(deployed.outputs["MediaCdnBase"] + "/media/")

    got = httpx.get(display["url"], timeout=10)
    assert got.status_code == 200
    assert got.headers["cache-control"] == "public, max-age=31536000, immutable"
    image = Image.open(io.BytesIO(got.content))
    assert image.size == (display["width"], display["height"]) and not image.getexif()

    # The same object through the distribution (origin access control, media/ only).
    domain = deploy_domain(e2e_settings, deployed)
    key = display["url"].removeprefix(deployed.outputs["MediaCdnBase"] + "/")
    edge = httpx.get(
        f"{str(e2e_settings.aws_endpoint_url).rstrip('/')}/{key}",
        headers={"host": domain, "x-forwarded-proto": "https"},
        timeout=10,
    )
    assert edge.status_code == 200 and edge.content == got.content
    assert edge.headers["etag"] == got.headers["etag"]

    # Deleted with its post.
    assert api.call("DELETE", f"/v1/posts/{post.json()['id']}", alice["sub"]).status_code == 204
    wait_for(
        lambda: httpx.get(display["url"], timeout=10).status_code == 404,
        "the variant deleted with its post",
        timeout=60,
        every=0.5,
    )
    removed = api.call("GET", f"/v1/media/{media['id']}", alice["sub"]).json()
    assert removed["state"] == "removed"
    # ...and dropped from the distribution's edges (they would keep it for its max-age).
    cloudfront = deploy_cloudfront(e2e_settings)
    distribution = deployed.outputs["MediaDistributionId"]

    def invalidated() -> bool:
        listed = cloudfront.list_invalidations(DistributionId=distribution)
        for summary in listed["InvalidationList"].get("Items", []):
            batch = cloudfront.get_invalidation(DistributionId=distribution, Id=summary["Id"])
            paths = batch["Invalidation"]["InvalidationBatch"]["Paths"].get("Items", [])
            if f"/{key}" in paths:  # each variant's exact path
                return True
        return False

    wait_for(invalidated, "the medium's invalidation", timeout=30, every=0.5)


def test_a_text_file_named_jpg_is_refused_by_the_stack(api):
    bob = api.user("media")
    media = upload(api, bob, samples.TEXT, "image/jpeg", "notes.jpg")
    done = settled(api, bob, media["id"])
    assert done["state"] == "failed" and "not an image" in done["error"], done
    refused = api.call(
        "POST", "/v1/posts", bob["sub"], json={"text": "x", "media_ids": [media["id"]]}
    )
    assert refused.status_code == 409, refused.text


def deploy_cloudfront(e2e_settings):
    from infra import deploy

    return deploy.aws(e2e_settings, "cloudfront")


def deploy_domain(e2e_settings, deployed) -> str:
    found = deploy_cloudfront(e2e_settings).get_distribution(
        Id=deployed.outputs["MediaDistributionId"]
    )
    return found["Distribution"]["DomainName"]


def test_the_stack_takes_a_png_named_jpg_and_refuses_a_bomb(api):
    carol = api.user("media")
    png = upload(api, carol, samples.png_bytes(), "image/jpeg", "cat.jpg")
    bomb = upload(api, carol, samples.png_bomb(), "image/png", "huge.png")
    assert settled(api, carol, png["id"])["content_type"] == "image/png"
    refused = settled(api, carol, bomb["id"])
    assert refused["state"] == "failed" and "pixels" in refused["error"], refused
    attached = api.call(
        "POST", "/v1/posts", carol["sub"], json={"text": "x", "media_ids": [bomb["id"]]}
    )
    assert attached.status_code == 409, attached.text


def test_the_stack_refuses_others_media_too_many_and_a_file_over_its_target(api):
    dave, erin = api.user("media"), api.user("media")
    erins = upload(api, erin, samples.png_bytes(), "image/png", "e.png")
    assert settled(api, erin, erins["id"])["state"] == "ready"
    theirs = api.call(
        "POST", "/v1/posts", dave["sub"], json={"text": "x", "media_ids": [erins["id"]]}
    )
    assert theirs.status_code == 404, theirs.text
    five = [str(10**18 + i) for i in range(5)]
    many = api.call("POST", "/v1/posts", dave["sub"], json={"text": "x", "media_ids": five})
    assert many.status_code == 422, many.text
    # The expired target is tested in-process (tests/integration/api/test_api_media.py): the
    # stack's targets last MEDIA_UPLOAD_SECONDS (300 s).
    made = api.call(
        "POST", "/v1/media", dave["sub"], json={"content_type": "image/png", "size_bytes": 64}
    )
    target = made.json()["upload"]
    sent = httpx.post(
        target["url"],
        data=target["fields"],
        files={
            "file": ("big.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * (50 * 1024 * 1024), "image/png")
        },
        timeout=60,
    )
    assert sent.status_code == 400 and "EntityTooLarge" in sent.text
    listed = api.call("GET", f"/v1/users/{dave['id']}/posts", dave["sub"])
    assert listed.status_code == 200 and listed.json()["items"] == []
