"""The dashboard's static assets: content-hashed, gzip-compressed, cached for a year.

plotly.js is ~4.8 MB; gzip brings it to ~1.4 MB. Each asset is read, hashed and
compressed once (again only when the file changes) and kept in memory. Pages link
``asset_url(name)``, which carries the first 8 hex digits of the file's sha256, so a
hashed URL can be cached ``immutable`` for a year: a new file is a new URL. The bare
name keeps working with a short cache (bookmarks, old pages). Gzip only: no brotli
encoder is a serving dependency.

FastAPI only for its 404 (``HTTPException``): an unknown or stale name is not found.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException

DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboard"
STATIC_DIR = DASHBOARD_DIR / "static"


def plotly_js_path() -> Path:
    """plotly.js's basic build, vendored (``static/vendor/SOURCE.md``): the dashboard draws
    scatter traces only, and the full bundle costs a second to compile on a first visit."""
    return STATIC_DIR / "vendor" / "plotly-basic.min.js"


ASSET_HASH_CHARS = 8
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"
UNHASHED_CACHE = "public, max-age=300"
ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class Asset:
    """One file as served: its bytes, their gzip, the hash its URL carries, its type."""

    body: bytes
    gzip_body: bytes
    sha8: str
    media_type: str


def _asset_paths() -> dict[str, Path]:
    """The names that may be served: the static folder's own files and plotly.js."""
    files = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}
    files["plotly.min.js"] = plotly_js_path()
    return files


@functools.lru_cache(maxsize=32)
def _load_asset(path: Path, mtime_ns: int) -> Asset:
    """Read, compress and hash once; ``mtime_ns`` is in the cache key so a changed
    file is read again."""
    body = path.read_bytes()
    return Asset(
        body=body,
        gzip_body=gzip.compress(body, compresslevel=9, mtime=0),
        sha8=hashlib.sha256(body).hexdigest()[:ASSET_HASH_CHARS],
        media_type=ASSET_TYPES.get(path.suffix, "application/octet-stream"),
    )


def asset(name: str) -> Asset:
    """The named static asset (plain, gzipped, hash), or 404."""
    path = _asset_paths().get(name)
    if path is None:
        raise HTTPException(status_code=404, detail=f"no static file {name}")
    return _load_asset(path, path.stat().st_mtime_ns)


def asset_url(name: str) -> str:
    """The one place a page gets an asset's URL: ``/dashboard/static/<stem>.<sha8><ext>``."""
    stem, dot, ext = name.rpartition(".")
    return f"/dashboard/static/{stem}.{asset(name).sha8}{dot}{ext}"


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header allows gzip (``gzip`` or ``*`` with q > 0)."""
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "*"):
            continue
        q = params.strip().lower()
        if q.startswith("q="):
            try:
                return float(q[2:]) > 0
            except ValueError:
                return False
        return True
    return False


def resolve(name: str) -> tuple[Asset, str]:
    """The asset a ``/dashboard/static/`` name serves and its ``Cache-Control``: a bare
    name with a short cache, a name with its current content hash immutable; a stale
    hash (or no such file) is 404."""
    cache = UNHASHED_CACHE
    if name not in _asset_paths():
        stem, _, ext = name.rpartition(".")
        base, _, sha8 = stem.rpartition(".")
        plain = f"{base}.{ext}"
        if not base or plain not in _asset_paths() or asset(plain).sha8 != sha8:
            raise HTTPException(status_code=404, detail=f"no static file {name}")
        name, cache = plain, IMMUTABLE_CACHE
    return asset(name), cache
