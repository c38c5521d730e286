"""Variants of an upload, with Pillow. Pillow is in the media function's own requirements
(functions/media/requirements.txt), not the shared layer: no other function pays for it.

Only formats the processing step sniffed are opened (Pillow's own detection is narrowed to
that one), the size in the header is checked before any pixel is decoded (a small file can
declare a huge image: a decompression bomb), and every variant is re-encoded from pixels: EXIF
(location, camera, time), XMP, comments and the ICC profile are not carried over: the EXIF
orientation is applied to the pixels first, and an embedded colour profile is converted to
sRGB (the web's default), so no byte of the upload's own reaches the CDN but its pixels.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, ImageCms, ImageOps, ImageSequence, UnidentifiedImageError

from newsfeed.media.processing import (
    ImageLimits,
    ImageRefused,
    RenderedImage,
    RenderedVariant,
    VariantSpec,
)
from newsfeed.media.sniffing import GIF, JPEG, PNG, WEBP

# Sniffed type -> Pillow's format name (the only one it may try).
PILLOW_FORMATS = {JPEG: "JPEG", PNG: "PNG", WEBP: "WEBP", GIF: "GIF"}
WEBP_QUALITY = 82
ORIENTATION = 0x0112  # the EXIF tag
ANIMATION_FALLBACK_MS = 100


class PillowRenderer:
    def __init__(self, *, reduced_jpeg_decode: bool = True) -> None:
        # Off only to measure what the reduced decode saves (bench/media_render.py).
        self.reduced_jpeg_decode = reduced_jpeg_decode

    def render(
        self, data: bytes, content_type: str, specs: Sequence[VariantSpec], limits: ImageLimits
    ) -> RenderedImage:
        fmt = PILLOW_FORMATS.get(content_type)
        if fmt is None:
            raise ImageRefused(f"{content_type} is not taken")
        try:
            image = Image.open(io.BytesIO(data), formats=[fmt])
        except Image.DecompressionBombError as exc:
            # Pillow's own guard, past twice its MAX_IMAGE_PIXELS: far above ours.
            raise ImageRefused(
                f"the image has more than {limits.max_pixels} pixels; fewer are taken"
            ) from exc
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise ImageRefused(f"the file is not a readable {fmt} image") from exc
        with image:
            width, height = image.size
            if width < 1 or height < 1 or width * height > limits.max_pixels:
                raise ImageRefused(
                    f"the image is {width}x{height} pixels; at most {limits.max_pixels} pixels "
                    "are taken"
                )
            frames = int(getattr(image, "n_frames", 1) or 1)
            if frames > 1:
                if frames > limits.max_frames or frames * width * height > (
                    limits.max_animation_pixels
                ):
                    raise ImageRefused(
                        f"the animation has {frames} frames of {width}x{height}; at most "
                        f"{limits.max_frames} frames and {limits.max_animation_pixels} pixels "
                        "in all are taken"
                    )
                return self._animation(image, specs)
            return self._still(image, specs)

    def _still(self, image: Image.Image, specs: Sequence[VariantSpec]) -> RenderedImage:
        width, height = _oriented_size(image)
        largest = max(specs, key=lambda spec: spec.max_side)
        if image.format == "JPEG" and self.reduced_jpeg_decode:
            # JPEG decodes at 1/2, 1/4 or 1/8 scale for free: no larger than the biggest
            # variant needs (a 40 MP photo for a 1600 px display: a sixteenth of the memory
            # and of the decoding time).
            image.draft("RGB", _fitted(image.size, largest.max_side))
        try:
            image.load()
            oriented = ImageOps.exif_transpose(image)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise ImageRefused("the image is damaged and does not decode") from exc
        pixels = _web_mode(_in_srgb(oriented, image.info.get("icc_profile")))
        variants = []
        # Largest first; each smaller one is scaled from the one before (less to resample).
        source = pixels
        for spec in sorted(specs, key=lambda spec: -spec.max_side):
            size = _fitted((width, height), spec.max_side)
            variant = source.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
            out = io.BytesIO()
            variant.save(out, "WEBP", quality=WEBP_QUALITY, method=4)
            variants.append(RenderedVariant(spec.name, out.getvalue(), WEBP, "webp", *size))
            source = variant
        order = [spec.name for spec in specs]
        return RenderedImage(
            kind="image",
            width=width,
            height=height,
            placeholder=_average_colour((variants and source) or pixels),
            variants=tuple(sorted(variants, key=lambda v: order.index(v.name))),
        )

    def _animation(self, image: Image.Image, specs: Sequence[VariantSpec]) -> RenderedImage:
        """An animated WebP per spec, every frame kept, at the spec's animated size."""
        loop = int(image.info.get("loop", 0) or 0)
        try:
            frames = []
            durations = []
            for frame in ImageSequence.Iterator(image):
                frames.append(frame.convert("RGBA"))
                durations.append(int(frame.info.get("duration") or ANIMATION_FALLBACK_MS))
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise ImageRefused("the animation is damaged and does not decode") from exc
        first = frames[0]
        variants = []
        for spec in specs:
            size = _fitted(first.size, spec.max_side_animated)
            scaled = [f.resize(size, Image.Resampling.LANCZOS) for f in frames]
            out = io.BytesIO()
            scaled[0].save(
                out,
                "WEBP",
                save_all=True,
                append_images=scaled[1:],
                duration=durations,
                loop=loop,
                quality=WEBP_QUALITY,
                method=4,
            )
            variants.append(RenderedVariant(spec.name, out.getvalue(), WEBP, "webp", *size))
        return RenderedImage(
            kind="gif",
            width=first.width,
            height=first.height,
            placeholder=_average_colour(first),
            variants=tuple(variants),
        )


def _in_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """The pixels converted from the embedded profile to sRGB; as they are without one, or
    with one that does not parse (then the colours are taken as sRGB already)."""
    if not icc:
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        mode = "RGBA" if "A" in image.mode else "RGB"
        converted = ImageCms.profileToProfile(
            image, source, ImageCms.createProfile("sRGB"), outputMode=mode
        )
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image
    return converted if converted is not None else image


def _web_mode(image: Image.Image) -> Image.Image:
    """RGB, or RGBA where the image has transparency (CMYK, 16-bit and palette images are
    converted: WebP holds 8-bit RGB(A))."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    wanted = "RGBA" if has_alpha else "RGB"
    return image if image.mode == wanted else image.convert(wanted)


def _oriented_size(image: Image.Image) -> tuple[int, int]:
    """The full image's size as shown: EXIF orientations 5 to 8 turn it a quarter."""
    width, height = image.size
    try:
        turned = image.getexif().get(ORIENTATION) in (5, 6, 7, 8)
    except (OSError, ValueError, SyntaxError):
        turned = False
    return (height, width) if turned else (width, height)


def _fitted(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _average_colour(image: Image.Image) -> str:
    r, g, b = image.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))[:3]
    return f"#{r:02x}{g:02x}{b:02x}"
