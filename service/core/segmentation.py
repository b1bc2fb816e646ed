"""What a segmentation is, and what the pipeline needs from whatever makes one.

The pipeline measures a wound from a ``Segmentation``; it does not care which runtime
made it. ``service.runtime.inference.Segmenter`` (ONNX Runtime) is the one the
service uses; tests may pass any object with the same three methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np


@dataclass(frozen=True)
class Segmentation:
    mask: np.ndarray
    """uint8 0/255, same height and width as the photo."""
    probability: np.ndarray
    """float32 wound probability at the photo's size."""
    refined: bool
    ms: float
    coarse: np.ndarray | None = None
    """The whole-photo passes' probability before refinement (the photo's size)."""

    @property
    def wound_px(self) -> int:
        return int(np.count_nonzero(self.mask))

    @property
    def components(self) -> int:
        n, _ = cv2.connectedComponents((self.mask > 0).astype(np.uint8), connectivity=8)
        return int(n - 1)


class WoundSegmenter(Protocol):
    """The calls the pipeline makes on a model runtime."""

    def segment(self, rgb: np.ndarray, refine: bool | None = None) -> Segmentation: ...

    def outline_log_halfwidth(
        self, rgb: np.ndarray, seg: Segmentation, mask: np.ndarray
    ) -> float | None: ...

    def info(self) -> dict[str, Any]: ...

    def review_halfwidth_pct(self) -> float | None:
        """The outline half-width (± %) beyond which the model's calibration sends a
        photo to review (``UncertaintySpec.review_halfwidth_pct``); None: the default."""
        ...
