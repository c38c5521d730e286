"""What the media function makes of an upload's bytes (Pillow, as the function runs it): the
type from the bytes, the limits, metadata stripped, orientation applied, variants' sizes."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from feed_adapters.images.pillow_renderer import PillowRenderer
from newsfeed.media.processing import VARIANT_SPECS, ImageLimits, ImageRefused
from newsfeed.media.sniffing import GIF, JPEG, PNG, looks_like_video, sniff_image_type
from tests import media_samples as samples

LIMITS = ImageLimits(max_pixels=40_000_000, max_frames=200, max_animation_pixels=100_000_000)


def render(data: bytes, content_type: str, limits: ImageLimits = LIMITS):
    return PillowRenderer().render(data, content_type, VARIANT_SPECS, limits)


def test_types_are_found_from_the_bytes() -> None:
    assert sniff_image_type(samples.jpeg_with_location()[:16]) == JPEG
    assert sniff_image_type(samples.png_bytes()[:16]) == PNG
    assert sniff_image_type(samples.animated_gif()[:16]) == GIF
    assert sniff_image_type(samples.TEXT[:16]) is None
    assert sniff_image_type(samples.MP4_HEAD[:16]) is None
    assert looks_like_video(samples.MP4_HEAD[:16])
    assert not looks_like_video(samples.TEXT[:16])


def test_a_photo_loses_its_location_and_is_turned_upright() -> None:
    original = samples.jpeg_with_location(1200, 600)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(samples.GPS_IFD)  # it had one
    image = render(original, JPEG)
    # Orientation 6: the 1200x600 pixels are shown 600x1200.
    assert (image.width, image.height, image.kind) == (600, 1200, "image")
    sizes = {v.name: (v.width, v.height) for v in image.variants}
    assert sizes == {"thumbnail": (160, 320), "display": (600, 1200)}  # never enlarged
    for variant in image.variants:
        decoded = Image.open(io.BytesIO(variant.data))
        assert decoded.format == "WEBP" and variant.content_type == "image/webp"
        assert decoded.size == (variant.width, variant.height)
        assert not decoded.getexif(), "EXIF survived"
        assert "exif" not in decoded.info and "xmp" not in decoded.info
        assert "icc_profile" not in decoded.info
    assert image.placeholder.startswith("#") and len(image.placeholder) == 7


def test_a_large_image_is_scaled_to_the_display_size() -> None:
    image = render(samples.png_bytes(4000, 1000), PNG)
    sizes = {v.name: (v.width, v.height) for v in image.variants}
    assert sizes == {"thumbnail": (320, 80), "display": (1600, 400)}
    assert image.placeholder == "#0aa05a"


def test_a_big_turned_photo_is_decoded_small_and_measured_in_full() -> None:
    # 4000x2000 pixels shown turned: 2000x4000; decoded at a reduced JPEG scale (draft), the
    # variants still have the display's exact sizes.
    image = render(samples.jpeg_with_location(4000, 2000), JPEG)
    assert (image.width, image.height) == (2000, 4000)
    sizes = {v.name: (v.width, v.height) for v in image.variants}
    assert sizes == {"thumbnail": (160, 320), "display": (800, 1600)}
    for variant in image.variants:
        assert Image.open(io.BytesIO(variant.data)).size == (variant.width, variant.height)


def test_transparency_is_kept() -> None:
    image = render(samples.png_bytes(alpha=True), PNG)
    assert all(Image.open(io.BytesIO(v.data)).mode == "RGBA" for v in image.variants)


def test_an_animation_stays_animated() -> None:
    image = render(samples.animated_gif(frames=4), GIF)
    assert image.kind == "gif"
    for variant in image.variants:
        decoded = Image.open(io.BytesIO(variant.data))
        assert decoded.format == "WEBP" and getattr(decoded, "n_frames", 1) == 4


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    bomb = samples.png_bomb()
    assert len(bomb) < 2_000
    with pytest.raises(ImageRefused, match="8000x8000 pixels; at most 40000000"):
        render(bomb, PNG)


def test_a_bomb_past_pillow_s_own_guard_is_refused_too() -> None:
    with pytest.raises(ImageRefused, match="more than 40000000 pixels"):
        render(samples.png_bomb(60_000, 60_000), PNG)


def test_no_byte_of_an_uploaded_profile_reaches_the_variants() -> None:
    from PIL import ImageCms

    forged = b"\x00\x00\x00\xa0made-up profile: the uploader's own bytes" + b"!" * 120
    real = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    for profile in (forged, real):
        image = render(samples.jpeg_with_profile(profile), JPEG)
        for variant in image.variants:
            decoded = Image.open(io.BytesIO(variant.data))
            assert "icc_profile" not in decoded.info
            assert profile not in variant.data


def test_a_cmyk_photo_becomes_rgb() -> None:
    image = render(samples.jpeg_with_profile(b"", mode="CMYK"), JPEG)
    for variant in image.variants:
        assert Image.open(io.BytesIO(variant.data)).mode == "RGB"


def test_an_image_over_the_pixel_limit_is_refused() -> None:
    with pytest.raises(ImageRefused, match="300x200 pixels; at most 50000"):
        render(samples.png_bytes(300, 200), PNG, ImageLimits(50_000, 10, 100_000))


def test_too_many_frames_are_refused() -> None:
    with pytest.raises(ImageRefused, match="5 frames"):
        render(samples.animated_gif(frames=5), GIF, ImageLimits(40_000_000, 4, 100_000_000))


def test_a_damaged_file_is_refused() -> None:
    with pytest.raises(ImageRefused, match=r"damaged|not a readable"):
        render(samples.jpeg_with_location()[:400], JPEG)


def test_bytes_that_are_not_the_sniffed_format_are_refused() -> None:
    with pytest.raises(ImageRefused, match="not a readable PNG"):
        render(samples.jpeg_with_location(), PNG)
