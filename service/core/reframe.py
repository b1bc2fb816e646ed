"""Re-framing: the same wound photographed closer or farther away.

FUSeg wounds cover a median 0.7 % of the photo; a nurse's close-up of a large
ischemic ulcer fills 10-30 % of it. ``reframe`` crops a square around the wound so
that the wound fills a chosen fraction of the frame, reflect-pads where the square
leaves the photo, and resizes it: the model benchmark uses it to measure how the
model behaves at every framing, and training uses it to teach every framing. Pure
numpy/OpenCV; no torch.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from service.core.contract import reflect_pad


def wound_box(mask: np.ndarray) -> tuple[float, float, int, int] | None:
    """Centre (y, x) of the wound's bounding box and its height and width, or None."""
    ys, xs = np.nonzero(mask)
    if not len(ys):
        return None
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return (y0 + y1) / 2, (x0 + x1) / 2, int(y1 - y0), int(x1 - x0)


def reframe(
    rgb: np.ndarray,
    mask: np.ndarray,
    fill_frac: float,
    size: int,
    jitter: tuple[float, float] = (0.0, 0.0),
) -> tuple[np.ndarray, np.ndarray]:
    """A ``size`` x ``size`` view of the photo in which the wound fills ``fill_frac``.

    The square's side is ``sqrt(wound_px / fill_frac)`` photo pixels, centred on the
    wound's bounding box (shifted by ``jitter`` x side, a fraction in each axis, so
    training does not always see the wound in the middle). Where the square leaves
    the photo, photo and mask are both reflected: a wound near the edge may then
    appear twice, and both copies are wound in the mask (the truth stays true; the
    fill is then larger than asked). The mask is resized with nearest-neighbour and
    keeps its values. When the wound's own box is wider than the square (an
    elongated wound at a large fill), the wound is cut and the fill is smaller.
    """
    if not 0 < fill_frac <= 1:
        raise ValueError(f"fill_frac must be in (0, 1], got {fill_frac}")
    box = wound_box(mask)
    if box is None:
        raise ValueError("reframe needs a mask with a wound in it")
    cy, cx, _, _ = box
    side = max(2, round(math.sqrt(np.count_nonzero(mask) / fill_frac)))
    y0 = round(cy - side / 2 + jitter[0] * side)
    x0 = round(cx - side / 2 + jitter[1] * side)
    h, w = mask.shape[:2]
    # Reflect-pad enough to cover the square (repeat when it is much larger than the photo).
    pad_top, pad_left = max(0, -y0), max(0, -x0)
    pad_bottom, pad_right = max(0, y0 + side - h), max(0, x0 + side - w)
    if pad_top or pad_left or pad_bottom or pad_right:
        rgb = reflect_pad(rgb, pad_top, pad_bottom, pad_left, pad_right)
        mask = reflect_pad(mask, pad_top, pad_bottom, pad_left, pad_right)
        y0 += pad_top
        x0 += pad_left
    view = rgb[y0 : y0 + side, x0 : x0 + side]
    view_mask = mask[y0 : y0 + side, x0 : x0 + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    out = cv2.resize(np.ascontiguousarray(view), (size, size), interpolation=interp)
    out_mask = cv2.resize(
        np.ascontiguousarray(view_mask), (size, size), interpolation=cv2.INTER_NEAREST
    )
    return out, out_mask


def wound_fraction(mask: np.ndarray) -> float:
    """Share of the frame the wound covers."""
    return float(np.count_nonzero(mask)) / mask.size
