"""What a source photo may be: a JPEG or PNG of bounded size, re-encoded before it is stored.

One rule for every way in (single upload, bulk zip, Street View): the bytes are decoded by
Pillow and written again with its pixels only, so whatever else a file carried (HTML appended to
an image, a polyglot, a JPEG comment, EXIF/GPS, XMP, PNG text; the colour profile, once the pixels
are converted to sRGB) is gone, and the stored name ends in the detected format, never in the
uploader's extension.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.utils.text import get_valid_filename
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

MAX_IMAGE_BYTES = 40 * 1024 * 1024
MAX_PIXELS = 50_000_000
# Pillow format → (file extension, content type). Nothing else is accepted or served inline.
FORMATS: dict[str, tuple[str, str]] = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png")}
LIMITS_TEXT = f"JPEG or PNG, at most {MAX_IMAGE_BYTES // (1024 * 1024)} MB and {MAX_PIXELS // 1_000_000} megapixels"


class PhotoError(ValueError):
    """The bytes are not an acceptable photo; the message says why, for the uploader."""


@dataclass(frozen=True)
class CleanPhoto:
    content: bytes
    extension: str
    content_type: str
    width: int
    height: int

    def filename(self, original: str) -> str:
        """The uploader's name with the detected extension (``flood.html`` → ``flood.jpg``)."""
        stem = get_valid_filename(PurePosixPath(original or "photo").stem) or "photo"
        return f"{stem[:80]}.{self.extension}"


_SRGB = ImageCms.createProfile("sRGB")


def _in_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """``image`` converted from its embedded colour profile to sRGB, so the profile can be dropped.

    The profile is metadata like any other (its description tags are free text); sRGB is what a
    browser assumes of an image without one, so a wide-gamut photo (Display P3, Adobe RGB) keeps its
    colours. A profile that cannot be read is dropped and the pixels kept as they are.
    """
    if not icc or image.mode not in {"RGB", "RGBA"}:
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(image, source, _SRGB, outputMode=image.mode) or image
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image


def clean_photo(data: bytes) -> CleanPhoto:
    """Check and re-encode an uploaded photo, or raise :class:`PhotoError`."""
    if len(data) > MAX_IMAGE_BYTES:
        raise PhotoError(f"file larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt = probe.format
            if fmt not in FORMATS:
                raise PhotoError(f"a {fmt or 'unknown'} file: only JPEG and PNG photos are accepted")
            if probe.width * probe.height > MAX_PIXELS:
                raise PhotoError(
                    f"image too large ({probe.width}×{probe.height} pixels; at most {MAX_PIXELS // 1_000_000} megapixels)"
                )
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            icc = image.info.get("icc_profile")
            upright = _in_srgb(ImageOps.exif_transpose(image), icc)
            # Nothing of the file but its pixels is written again: no comment (a JPEG COM segment
            # can carry "<script>…"), no EXIF/GPS, XMP, PNG text chunks, nor the ICC profile.
            upright.info = {}
            out = io.BytesIO()
            if fmt == "JPEG":
                if upright.mode not in {"RGB", "L"}:
                    upright = upright.convert("RGB")
                upright.save(out, "JPEG", quality=95)
            else:
                upright.save(out, "PNG")
    except PhotoError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise PhotoError("not a readable image (JPEG or PNG expected)") from None
    extension, content_type = FORMATS[fmt]
    return CleanPhoto(out.getvalue(), extension, content_type, upright.width, upright.height)


def served_content_type(handle: io.BufferedIOBase) -> str | None:
    """The content type of a stored image file, or None when it is not a JPEG or PNG.

    Files stored before uploads were re-encoded may be anything; only what decodes as one of the
    accepted formats may be shown inline.
    """
    try:
        with Image.open(handle) as image:
            fmt = image.format
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        fmt = None
    finally:
        handle.seek(0)
    return FORMATS[fmt][1] if fmt in FORMATS else None
