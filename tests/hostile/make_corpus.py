"""Generate the hostile-upload corpus: ``python tests/hostile/make_corpus.py OUT_DIR``.

Each case is a file plus how it is sent (file name, Content-Type, extra form fields)
and what the service may answer: ``accept`` (201: a supported-but-unusual photo,
DESIGN.md "Calibration marker and measurement"), ``refuse`` (a 4xx whose ``code`` is
one of ``codes``) or ``either`` (a 201 or one of those 4xx: decoders legitimately
differ on, say, a JPEG with a damaged scan). Nothing may ever answer a 5xx.

Everything is generated from one sample photo shipped in ``data/samples``, so a
fresh clone builds the same corpus. ``OUT_DIR/manifest.json`` lists the cases.
"""

from __future__ import annotations

import io
import json
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image

pillow_heif.register_heif_opener()

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "samples" / "fuseg" / "images" / "0082.jpg"

CORRUPT = ["corrupt_image", "unsupported_format"]
UNSUPPORTED = ["unsupported_format"]
TOO_BIG = ["too_many_pixels", "photo_too_large"]


@dataclass
class Case:
    name: str
    """The case (and its file in the corpus folder)."""
    expect: str
    """``accept``, ``refuse`` or ``either``."""
    codes: list[str] = field(default_factory=list)
    """Error codes allowed when refused."""
    filename: str = ""
    """The file name sent in the multipart part (default: ``name``)."""
    content_type: str = "image/jpeg"
    fields: dict[str, str] = field(default_factory=dict)
    """Extra or replaced multipart form fields."""
    why: str = ""


def _photo() -> Image.Image:
    return Image.open(SAMPLE).convert("RGB")


def _save(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int, bit_depth: int, colour: int, idat: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def png_bomb(side: int = 50_000) -> bytes:
    """A real, complete 1-bit PNG of side x side black pixels: ~300 kB that inflates to
    312 MB of scanlines and 2.5 G pixels (7.5 GB as RGB)."""
    row = b"\x00" * (1 + (side + 7) // 8)
    comp = zlib.compressobj(9)
    parts = [comp.compress(row * 1000) for _ in range(side // 1000)]
    parts.append(comp.compress(row * (side % 1000)))
    parts.append(comp.flush())
    return _png(side, side, 1, 0, b"".join(parts))


def jpeg_with_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite the SOF0 frame header of a baseline JPEG to claim another size."""
    out = bytearray(data)
    at = out.find(b"\xff\xc0")
    struct.pack_into(">HH", out, at + 5, height, width)
    return bytes(out)


def exif_rotated(img: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "HostileCam"
    return _save(img, "JPEG", quality=90, exif=exif.tobytes())


def exif_with_gps(img: Image.Image) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 1
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 1.0), 3: "E", 4: (4.0, 53.0, 2.0)}
    exif[0x013B] = "Dr. Secret Name"
    return _save(img, "JPEG", quality=90, exif=exif.tobytes())


def animated(img: Image.Image, fmt: str) -> bytes:
    frames = [img.resize((128, 128)), img.resize((128, 128)).rotate(90)]
    extra = {"lossless": False} if fmt == "WEBP" else {}
    return _save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, **extra)


def minimal_pdf() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )


def zip_of(payload: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("photo.jpg", payload)
        zf.writestr("readme.txt", "not a photo")
    return buf.getvalue()


def png_text_bomb(img: Image.Image) -> bytes:
    """A valid PNG with a zTXt chunk inflating to 64 MB (Pillow caps text chunks)."""
    base = _save(img.resize((64, 64)), "PNG")
    ztxt = b"Comment\x00\x00" + zlib.compress(b"A" * (64 << 20), 9)
    at = base.find(b"IDAT") - 4
    return base[:at] + _chunk(b"zTXt", ztxt) + base[at:]


def build(out: Path | None) -> list[Case]:
    """Write every case's file into ``out`` and ``out/manifest.json``; return the cases.
    With ``out=None`` nothing is written (the case list only)."""
    photo = _photo()
    small = photo.resize((256, 256))
    jpeg = _save(photo, "JPEG", quality=90)
    png = _save(small, "PNG")
    cases: list[tuple[Case, bytes | Callable[[], bytes]]] = []

    def add(case: Case, data: bytes | Callable[[], bytes]) -> None:
        cases.append((case, data))

    # Not photos at all, or not a whole one
    add(Case("zero_bytes.jpg", "refuse", ["empty_file", "corrupt_image"]), b"")
    add(Case("truncated_half.jpg", "refuse", CORRUPT), jpeg[: len(jpeg) // 2])
    add(Case("truncated_header.jpg", "refuse", CORRUPT), jpeg[:40])
    add(Case("truncated.png", "refuse", CORRUPT, content_type="image/png"), png[: len(png) // 2])
    add(
        Case("png_bad_crc.png", "either", CORRUPT, content_type="image/png"),
        png[:33] + bytes([png[33] ^ 0xFF]) + png[34:],
    )
    noisy = bytearray(jpeg)
    rng = np.random.default_rng(8)
    for at in rng.integers(len(jpeg) // 3, len(jpeg) - 10, 200):
        noisy[int(at)] = int(rng.integers(0, 255))
    add(
        Case("corrupt_scan.jpg", "either", CORRUPT, why="JPEG decoders often tolerate this"),
        bytes(noisy),
    )
    add(Case("random_bytes.jpg", "refuse", CORRUPT), rng.bytes(50_000))
    add(Case("zero_size.png", "refuse", CORRUPT, content_type="image/png"), _png(0, 0, 8, 0, b""))
    add(Case("pdf_renamed.jpg", "refuse", UNSUPPORTED), minimal_pdf())
    add(Case("zip_renamed.jpg", "refuse", UNSUPPORTED), zip_of(jpeg))
    add(
        Case("html.png", "refuse", UNSUPPORTED, content_type="image/png"),
        b"<html><script>alert(1)</script></html>",
    )
    add(
        Case("svg.jpg", "refuse", UNSUPPORTED),
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    )
    add(Case("bitmap.bmp", "refuse", UNSUPPORTED, content_type="image/bmp"), _save(small, "BMP"))
    add(
        Case("tiff.tif", "refuse", UNSUPPORTED, content_type="image/tiff"),
        _save(small, "TIFF"),
    )
    add(
        Case("pdf_then_jpeg.jpg", "refuse", UNSUPPORTED, why="polyglot: a PDF header first"),
        minimal_pdf() + jpeg,
    )
    add(
        Case("animated.gif", "refuse", UNSUPPORTED + ["animated_image"], content_type="image/gif"),
        animated(small, "GIF"),
    )
    add(
        Case("animated.webp", "refuse", ["animated_image"], content_type="image/webp"),
        animated(small, "WEBP"),
    )
    add(
        Case("animated.png", "refuse", ["animated_image"], content_type="image/png"),
        animated(small, "PNG"),
    )
    # Too big: refused before decoding
    add(
        Case("bomb_50000x50000.png", "refuse", TOO_BIG, content_type="image/png"),
        png_bomb,
    )
    add(Case("claims_65000x65000.jpg", "refuse", TOO_BIG), jpeg_with_size(jpeg, 65000, 65000))
    add(
        Case(
            "over_byte_limit.jpg", "refuse", ["photo_too_large", "payload_too_large"], why="41 MB"
        ),
        lambda: jpeg + b"\x00" * (41 * 1024 * 1024),
    )
    add(
        Case("text_chunk_bomb.png", "either", CORRUPT, content_type="image/png"),
        png_text_bomb(photo),
    )
    # Supported but unusual: accepted and converted (DESIGN.md)
    add(Case("grayscale.jpg", "accept"), _save(photo.convert("L"), "JPEG"))
    add(Case("cmyk.jpg", "accept"), _save(photo.convert("CMYK"), "JPEG"))
    add(Case("palette.png", "accept", content_type="image/png"), _save(photo.convert("P"), "PNG"))
    pal = photo.convert("P")
    add(
        Case("palette_transparent.png", "accept", content_type="image/png"),
        _save(pal, "PNG", transparency=0),
    )
    rgba = photo.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(photo.size))
    add(Case("alpha.png", "accept", content_type="image/png"), _save(rgba, "PNG"))
    add(
        Case("gray_alpha.png", "accept", content_type="image/png"), _save(rgba.convert("LA"), "PNG")
    )
    gray16 = (np.asarray(photo.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    add(
        Case("gray16.png", "accept", content_type="image/png"),
        _save(Image.fromarray(gray16), "PNG"),
    )
    add(Case("bilevel.png", "accept", content_type="image/png"), _save(photo.convert("1"), "PNG"))
    add(Case("exif_rotated_6.jpg", "accept"), exif_rotated(photo, 6))
    add(Case("exif_bad_orientation.jpg", "accept"), exif_rotated(photo, 9))
    add(Case("exif_gps.jpg", "accept"), exif_with_gps(photo))
    add(Case("photo.heic", "accept", content_type="image/heic"), _save(photo, "HEIF", quality=80))
    add(
        Case("lossless_alpha.webp", "accept", content_type="image/webp"),
        _save(rgba, "WEBP", lossless=True),
    )
    add(Case("progressive.jpg", "accept"), _save(photo, "JPEG", progressive=True))
    add(
        Case("tiny_1x1.png", "either", CORRUPT, content_type="image/png"),
        _save(Image.new("RGB", (1, 1)), "PNG"),
    )
    add(
        Case("thin_4x6000.png", "either", CORRUPT, content_type="image/png", why="extreme aspect"),
        _save(photo.resize((4, 6000)), "PNG"),
    )
    add(
        Case("jpeg_then_zip.jpg", "accept", why="polyglot: a valid JPEG with a zip appended"),
        jpeg + zip_of(b"secret payload"),
    )
    # How it is sent
    add(Case("wrong_content_type.jpg", "either", UNSUPPORTED, content_type="application/pdf"), jpeg)
    add(Case("png_named_jpg.jpg", "accept", content_type="image/jpeg"), png)
    add(Case("no_content_type.jpg", "either", UNSUPPORTED, content_type=""), jpeg)
    add(Case("traversal.jpg", "accept", filename="../../../../etc/passwd.jpg"), jpeg)
    add(Case("unicode.jpg", "accept", filename="Ωμέγα 🩹 ñ.jpg"), jpeg)
    add(Case("quotes.jpg", "accept", filename='a";b\\c%00.jpg'), jpeg)
    add(Case("long_name.jpg", "accept", filename="x" * 4000 + ".jpg"), jpeg)
    add(
        Case(
            "huge_visit_field.jpg",
            "either",
            ["invalid_request", "payload_too_large"],
            fields={"visit": "V" * (2 << 20)},
            why="a 2 MB form field",
        ),
        jpeg,
    )
    add(
        Case(
            "huge_captured_at.jpg",
            "refuse",
            ["invalid_date", "invalid_request", "payload_too_large"],
            fields={"captured_at": "2026-01-01" + "9" * (1 << 20)},
        ),
        jpeg,
    )
    add(
        Case(
            "bad_date.jpg",
            "refuse",
            ["invalid_date"],
            fields={"captured_at": "2026-02-30"},
        ),
        jpeg,
    )
    add(
        Case(
            "many_fields.jpg",
            "either",
            ["invalid_request", "payload_too_large"],
            fields={f"f{i}": "x" for i in range(2000)},
            why="more parts than Starlette's default 1000",
        ),
        jpeg,
    )

    for case, _ in cases:
        case.filename = case.filename or case.name
    if out is None:
        return [case for case, _ in cases]
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for case, data in cases:
        (out / case.name).write_bytes(data() if callable(data) else data)
        manifest.append(asdict(case))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    return [case for case, _ in cases]


def load(out: Path) -> list[Case]:
    return [Case(**entry) for entry in json.loads((out / "manifest.json").read_text())]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/hostile/make_corpus.py OUT_DIR")
    built = build(Path(sys.argv[1]))
    print(f"{len(built)} cases written to {sys.argv[1]}")
