"""Photo decoding: supported formats, limits, EXIF orientation, colour modes.

Every path that reads a photo (the API, ``measure``, ``predict``, ``evaluate``) calls
``decode_photo`` so that all of them see the same pixels: the photo *as displayed*
(EXIF orientation applied), 8-bit RGB.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from service.core.errors import DomainError

pillow_heif.register_heif_opener()  # HEIC/HEIF, the iPhone default

SUPPORTED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "HEIF", "HEIC"}
# File names taken as photos (or masks) when a folder is given.
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif"}
DEFAULT_MAX_BYTES = 40 * 1024 * 1024
DEFAULT_MAX_PIXELS = 50_000_000
WORKING_MAX_PIXELS = 24_000_000
"""The working resolution of an upload: a photo with more pixels (up to
``DEFAULT_MAX_PIXELS``) is decoded at half its width and height, or a quarter, until
within it (a JPEG straight from its DCT, at a fraction of the work), and stored,
measured and served at that size. Every
phone's default (12-24 MP) is below it; a 49 MP photo cost 4 times the CPU and memory
of a 12 MP one for no better area (the marker's corners are sub-pixel either way)."""
MAX_SIDE_PX = 65_500
"""The most pixels a side may have (JPEG's own limit is 65,535: the stored photo is a JPEG)."""

# We check pixel counts ourselves, before decoding, with an error code of our own.
Image.MAX_IMAGE_PIXELS = None


class ImageError(DomainError):
    """A photo or mask that cannot be used: a registered ``code`` (its status comes from
    ``ERROR_CODES``, the one registry) and a detail that says what to send instead."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail, code=code)


@dataclass(frozen=True)
class Photo:
    rgb: np.ndarray
    """H x W x 3 uint8, as displayed (EXIF orientation applied)."""
    format: str
    scale_x: float = 1.0
    """Working pixels per pixel of the photo as sent (< 1 when decoded at a reduced size)."""
    scale_y: float = 1.0

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


_ORIENTATION = 0x0112


def _exif(img: Image.Image) -> Image.Exif:
    """The photo's EXIF block, read once; empty when it is broken (never breaks decoding)."""
    try:
        return img.getexif()
    except Exception:  # noqa: BLE001
        return Image.Exif()


def _to_rgb8(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16/32-bit grayscale -> 8 bits in place-friendly integer maths (a float64 copy of
        # a 49-megapixel photo would take 400 MB).
        arr = np.asarray(img)
        if mode == "F":
            gray = np.clip(arr, 0, 255).astype(np.uint8)
        else:
            top = 65535 if int(arr.max()) > 255 else 255
            gray = ((arr.astype(np.uint32) * 255 + top // 2) // top).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    if mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img)


def decode_photo(
    data: bytes,
    *,
    name: str = "photo",
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    work_max_pixels: int | None = None,
) -> Photo:
    """Bytes of a photo -> ``Photo``; raises ``ImageError`` with a stable code. With
    ``work_max_pixels``, a larger photo is decoded at 1/2, 1/4, … of its sides until
    within it (``WORKING_MAX_PIXELS``); ``Photo.scale_x``/``scale_y`` say by how much."""
    if not data:
        raise ImageError("empty_file", f"{name} is empty (0 bytes): send the photo file")
    if len(data) > max_bytes:
        raise ImageError(
            "photo_too_large",
            f"{name} is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB",
        )
    img, fmt = _open_photo(data, name)
    _check_pixels(img, fmt, name, max_pixels)
    exif = _exif(img)
    w, h = img.size
    factor = 1
    if work_max_pixels is not None:
        while (w // factor) * (h // factor) > work_max_pixels:
            factor *= 2
        if factor > 1 and fmt in ("JPEG", "MPO"):  # straight from the DCT at 1/2, 1/4, 1/8
            img.draft("RGB", (w // factor, h // factor))
    drafted = img.size != (w, h)
    rgb = _displayed_rgb8(img, exif, name, 1 if drafted else factor)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageError("corrupt_image", f"{name} decoded to an unexpected shape")
    if factor == 1:
        return Photo(rgb=np.ascontiguousarray(rgb), format=fmt)
    turned = exif.get(_ORIENTATION, 1) in (5, 6, 7, 8)  # a quarter turn swaps the sides
    return _reduced(rgb, fmt, (h, w) if turned else (w, h), factor)


def _reduced(rgb: np.ndarray, fmt: str, displayed: tuple[int, int], factor: int) -> Photo:
    """``rgb`` (decoded at full size, or already reduced by JPEG's draft mode) at
    1/``factor`` of the photo as sent (``displayed``: its width and height as
    displayed); the scales are the exact ratios of the sizes, so points sent in the
    photo's pixels map onto it without drift."""
    full_w, full_h = displayed
    if rgb.shape[1] * rgb.shape[0] > (full_w // factor + 1) * (full_h // factor + 1):
        rgb = np.asarray(Image.fromarray(rgb).reduce(factor))
    return Photo(
        rgb=np.ascontiguousarray(rgb),
        format=fmt,
        scale_x=rgb.shape[1] / full_w,
        scale_y=rgb.shape[0] / full_h,
    )


def sent_size(data: bytes, *, oriented: bool = True) -> tuple[int, int] | None:
    """The width and height of a photo (as displayed when ``oriented``: a JPEG's EXIF
    orientation applied), from its header alone; None when it cannot be read. Only a
    JPEG's EXIF is read (it sits in the header: a PNG's may follow its pixels, and
    reading it would decode them, a decompression bomb included)."""
    try:
        img = Image.open(io.BytesIO(data))
        w, h = img.size
        if not oriented or (img.format or "").upper() not in ("JPEG", "MPO"):
            return (w, h)
        return (h, w) if _exif(img).get(_ORIENTATION, 1) in (5, 6, 7, 8) else (w, h)
    except Exception:  # noqa: BLE001 - not a photo: nothing to compare
        return None


def _open_photo(data: bytes, name: str) -> tuple[Image.Image, str]:
    """The photo opened (its header read, no pixel decoded yet) and its format, one of
    ``SUPPORTED_FORMATS``."""
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageError(
            "unsupported_format",
            f"{name} is not a supported photo: send JPEG, PNG, WebP or HEIC",
        ) from None
    except Exception as exc:  # noqa: BLE001
        raise ImageError("corrupt_image", f"{name} cannot be decoded ({exc})") from None
    fmt = (img.format or "").upper()
    if fmt not in SUPPORTED_FORMATS:
        raise ImageError(
            "unsupported_format",
            f"{name} is {fmt or 'an unknown format'}; send JPEG, PNG, WebP or HEIC",
        )
    return img, fmt


def _check_pixels(img: Image.Image, fmt: str, name: str, max_pixels: int) -> None:
    """One still photo (MPO and HEIF hold extra frames of one shot) within
    ``max_pixels``, checked from the header before a pixel is decoded."""
    frames = int(getattr(img, "n_frames", 1))
    if frames > 1 and fmt not in ("MPO", "HEIF", "HEIC"):
        raise ImageError("animated_image", f"{name} is animated ({frames} frames): send one photo")
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageError("corrupt_image", f"{name} has no pixels")
    if max(w, h) > MAX_SIDE_PX:
        raise ImageError(
            "too_many_pixels",
            f"{name} is {w}x{h}: a side may have at most {MAX_SIDE_PX} pixels",
        )
    if w * h > max_pixels:
        raise ImageError(
            "too_many_pixels",
            f"{name} is {w}x{h} = {w * h / 1e6:.0f} megapixels; the limit is"
            f" {max_pixels / 1e6:.0f} megapixels",
        )


REDUCIBLE_MODES = ("RGB", "RGBA", "L", "LA", "I", "F")
"""Modes ``Image.reduce`` takes: reduced before the copy to 8-bit RGB, not after."""


def _displayed_rgb8(img: Image.Image, exif: Image.Exif, name: str, factor: int = 1) -> np.ndarray:
    """The pixels as displayed (EXIF orientation applied), 8-bit RGB, reduced by
    ``factor`` before the copy to RGB (so no second full-size copy is made; other
    modes are reduced after it, in ``_reduced``); truncated or corrupt data is
    ``corrupt_image``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
            # exif_transpose copies the image even when there is nothing to turn.
            turned = exif.get(_ORIENTATION, 1) not in (None, 1)
            shown: Image.Image = (ImageOps.exif_transpose(img) or img) if turned else img
            if factor > 1 and shown.mode in REDUCIBLE_MODES:
                shown = shown.reduce(factor)
            return _to_rgb8(shown)
    except ImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated or corrupt data
        raise ImageError(
            "corrupt_image", f"{name} is damaged or truncated and cannot be decoded ({exc})"
        ) from None


def read_photo(path: Path, **limits: int) -> Photo:
    """Read a photo file; errors name the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError("unreadable_file", f"{path}: {exc.strerror}") from None
    return decode_photo(data, name=str(path), **limits)


def read_mask(path: Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A mask file (any nonzero = wound) -> uint8 0/255; checks its size when given."""
    photo_like = read_photo(Path(path))
    mask = (photo_like.rgb.max(axis=2) > 127).astype(np.uint8) * np.uint8(255)
    if shape is not None and mask.shape != tuple(shape):
        raise ImageError(
            "mask_size_mismatch",
            f"{path} is {mask.shape[1]}x{mask.shape[0]} but the photo is {shape[1]}x{shape[0]}",
        )
    return mask


def decode_mask(data: bytes, *, width: int, height: int, name: str = "mask") -> np.ndarray:
    """A clinician's PNG mask -> H x W uint8 0/255 (any channel > 127 = wound).

    The size is read from the PNG header and checked against the photo *before* a
    pixel is decoded: a 12 KB PNG can declare 10000 x 10000 pixels (a decompression
    bomb), so at most one photo's worth of pixels is ever decoded."""
    if not data:
        raise ImageError("empty_file", f"{name} is empty (0 bytes): send the mask PNG")
    try:
        img = Image.open(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - not an image at all
        raise ImageError(
            "invalid_mask", f"{name} is not a PNG: send a PNG (0 = skin, 255 = wound)"
        ) from None
    if (img.format or "").upper() != "PNG" or int(getattr(img, "n_frames", 1)) > 1:
        raise ImageError(
            "invalid_mask", f"{name} must be a single-frame PNG (0 = skin, 255 = wound)"
        )
    if img.size != (width, height):
        raise ImageError(
            "mask_size_mismatch",
            f"{name} is {img.size[0]}x{img.size[1]} but the photo is {width}x{height}",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if img.mode in ("1", "L", "P", "I;16", "I;16B", "I;16L", "I", "F", "LA", "PA"):
                rgb = _to_rgb8(img)
            else:
                rgb = np.asarray(img.convert("RGB"))
    except Exception as exc:  # noqa: BLE001 - truncated or corrupt data
        raise ImageError(
            "corrupt_image", f"{name} is damaged and cannot be decoded ({exc})"
        ) from None
    return (rgb.max(axis=2) > 127).astype(np.uint8) * np.uint8(255)


def encode_png(array: np.ndarray) -> bytes:
    """A mask or image -> PNG bytes, with no metadata."""
    buf = io.BytesIO()
    # zlib level 1: a tenth of the default's time on a photo-sized mask, a few kB more.
    Image.fromarray(array).save(buf, format="PNG", optimize=False, compress_level=1)
    return buf.getvalue()


def encode_jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    """RGB -> JPEG bytes with no metadata (no EXIF, no GPS, no maker notes)."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality, subsampling=0)
    return buf.getvalue()
