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
            if f"/media/{media['id']}/*" in paths:
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
