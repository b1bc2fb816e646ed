"""The capture page's live guidance: is the marker usable in this preview frame?

A phone sends a downscaled camera preview frame (about 1280x720) a few times a second;
the answer is the same quality codes an upload would carry for the marker, blur,
exposure and tilt checks, because it runs the upload's own code: ``marker.detect_markers``
and ``measure.measure`` with an empty wound mask and the service's ``QualityLimits``.
No threshold lives here. Nothing is stored: the frame is decoded, checked and dropped.

What differs from an upload is the frame's size: ``marker_too_small`` is judged on the
preview's pixels, which is conservative (the photo itself has more pixels than its
preview). Wound-dependent flags (``no_wound_found`` …) cannot be judged without the
model and are left out.

``RateLimiter`` is a per-key token bucket held by the process (guidance is advice; a
replica restart forgetting the bucket loses nothing).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.core.errors import DomainError
from service.core.imaging import decode_photo
from service.core.marker import detect_markers
from service.core.measure import QUALITY_CODES, QualityLimits, measure

PRECHECK_MAX_BYTES = 2 * 1024 * 1024
"""A preview frame (JPEG, about 1280x720) is 100-300 kB; more is not a preview."""
PRECHECK_MAX_PIXELS = 1920 * 1080
"""Send a downscaled frame: a full photo belongs in the upload."""
PRECHECK_RATE_PER_S = 5.0
"""Frames per second per key (guidance needs 2)."""
PRECHECK_BURST = 10

PRECHECK_CODES = (
    "marker_not_found",
    "marker_unreadable",
    "multiple_markers",
    "marker_too_small",
    "tilt_too_large",
    "photo_blurred",
    "photo_too_dark",
    "photo_overexposed",
)
"""The upload's quality codes a preview frame can answer (no wound outline needed)."""
assert set(PRECHECK_CODES) <= set(QUALITY_CODES)


def precheck_frame(
    data: bytes, *, marker_mm: float, limits: QualityLimits | None = None
) -> dict[str, Any]:
    """A preview frame's bytes -> the guidance JSON. Raises ``ImageError`` on a bad or
    too large frame (the upload's codes: photo_too_large, too_many_pixels, …)."""
    frame = decode_photo(
        data, name="preview frame", max_bytes=PRECHECK_MAX_BYTES, max_pixels=PRECHECK_MAX_PIXELS
    )
    return precheck_rgb(frame.rgb, marker_mm=marker_mm, limits=limits)


def precheck_rgb(
    rgb: np.ndarray, *, marker_mm: float, limits: QualityLimits | None = None
) -> dict[str, Any]:
    """The guidance for a decoded frame (pure)."""
    markers = detect_markers(rgb)
    result = measure(
        rgb,
        np.zeros(rgb.shape[:2], dtype=np.uint8),
        marker_mm=marker_mm,
        limits=limits,
        markers=markers,
    )
    flags = [f.to_json() for f in result.quality if f.code in PRECHECK_CODES]
    largest = max(markers, key=lambda m: m.side_px) if markers else None
    return {
        "ok": bool(markers) and not flags,
        "usable": bool(markers) and not any(f["severe"] for f in flags),
        "marker_found": bool(markers),
        "marker_side_px": None if largest is None else round(largest.side_px, 1),
        "marker_corners_px": None if largest is None else largest.corners_px.round(1).tolist(),
        "tilt_deg": None if result.tilt_deg is None else round(result.tilt_deg, 1),
        "px_per_mm": None if result.px_per_mm is None else round(result.px_per_mm, 3),
        "width": int(rgb.shape[1]),
        "height": int(rgb.shape[0]),
        "quality": flags,
    }


@dataclass
class RateLimiter:
    """A token bucket per key: ``rate_per_s`` sustained, ``burst`` at once."""

    rate_per_s: float = PRECHECK_RATE_PER_S
    burst: int = PRECHECK_BURST
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[object, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    what: str = "preview frames"
    """What is counted, for the refusal's words."""

    def take(self, who: object, cost: float = 1.0) -> None:
        """Take ``cost`` tokens (at most ``burst``) for ``who`` or raise ``rate_limited``
        (429, Retry-After)."""
        cost = min(float(self.burst), max(cost, 0.0))
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.get(who, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate_per_s)
            if tokens < cost:
                wait_s = (cost - tokens) / self.rate_per_s if self.rate_per_s > 0 else 60.0
                self._buckets[who] = (tokens, now)
                raise DomainError(
                    f"too many {self.what} from this key: at most {self.rate_per_s:g} a second"
                    f" (bursts of {self.burst}); retry in {max(1, math.ceil(wait_s))} s",
                    code="rate_limited",
                    headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
                )
            self._buckets[who] = (tokens - cost, now)
            if len(self._buckets) > 10_000:  # forget idle keys
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
