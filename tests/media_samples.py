"""Files to upload in the media tests, made with Pillow (or by hand, where Pillow would refuse
to make them): real encodings, so the processing step meets what a client sends."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

GPS_IFD = 0x8825
ORIENTATION = 0x0112
ROTATED_90_CW = 6  # EXIF: the camera was turned; show the pixels rotated 90° clockwise


def jpeg_with_location(width: int = 1200, height: int = 600) -> bytes:
    """A JPEG with an EXIF GPS position, a camera make and orientation 6."""
    image = Image.new("RGB", (width, height), (200, 40, 40))
    for x in range(0, width, 50):  # some detail, so sizes are realistic
        image.paste((30, 30, 200), (x, 0, x + 10, height))
    exif = Image.Exif()
    exif[0x010F] = "Camera Co"
    exif[ORIENTATION] = ROTATED_90_CW
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (51.0, 30.0, 12.0), 3: "W", 4: (0.0, 7.0, 40.0)})
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def png_bytes(width: int = 300, height: int = 200, alpha: bool = False) -> bytes:
    mode, colour = ("RGBA", (10, 160, 90, 128)) if alpha else ("RGB", (10, 160, 90))
    out = io.BytesIO()
    Image.new(mode, (width, height), colour).save(out, "PNG")
    return out.getvalue()


def animated_gif(frames: int = 3, width: int = 120, height: int = 80) -> bytes:
    images = [Image.new("RGB", (width, height), (i * 60 % 256, 100, 200)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=80, loop=0)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 8_000, height: int = 8_000) -> bytes:
    """A PNG of a few hundred bytes that declares width x height pixels (64 million by
    default: 1.6x MEDIA_MAX_PIXELS, under Pillow's warning at 89 million, so the project's
    check is what refuses it): a decompression bomb. Only the first rows are present."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = zlib.compress(b"\x00" * (width + 1) * 4, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", rows)
        + _chunk(b"IEND", b"")
    )


def jpeg_with_profile(profile: bytes, mode: str = "RGB") -> bytes:
    """A JPEG carrying `profile` as its ICC profile (bytes of the uploader's choosing)."""
    out = io.BytesIO()
    colour = (0, 128, 255) if mode == "RGB" else (200, 40, 0, 10)
    Image.new(mode, (64, 48), colour).save(out, "JPEG", icc_profile=profile)
    return out.getvalue()


MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64
TEXT = b"this is not a picture, whatever its name says\n" * 20
