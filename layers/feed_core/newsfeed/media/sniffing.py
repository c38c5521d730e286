"""What a file is, from its first bytes: the declared Content-Type and the file name are the
client's word, and a renamed file must neither pass as an image nor be refused for its name."""

from __future__ import annotations

# Enough for every signature below (WebP's "WEBP" ends at byte 12, ISO media's brand at 12).
SNIFF_BYTES = 16

JPEG = "image/jpeg"
PNG = "image/png"
WEBP = "image/webp"
GIF = "image/gif"
IMAGE_TYPES: tuple[str, ...] = (JPEG, PNG, WEBP, GIF)


def sniff_image_type(head: bytes) -> str | None:
    """The image type `head` starts with, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    return None


def looks_like_video(head: bytes) -> bool:
    """MP4/MOV/3GP (an ISO media `ftyp` box), WebM/Matroska (EBML), AVI, MPEG program streams:
    told apart from other files so the refusal can say video is not taken yet."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        # HEIF/AVIF stills share the box; they are images this service does not take.
        return brand not in (b"heic", b"heix", b"mif1", b"msf1", b"avif", b"avis")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return True
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return True
    return head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"))
