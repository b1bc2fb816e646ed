"""Segmentation metrics, defined once (pooled and per-image), torch-free.

Pooled ("data-based") Dice sums true/false positives over every pixel of a split,
as the FUSeg leaderboard does. Per-image Dice scores a photo with an empty truth 1
when the prediction is empty too, else 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class PhotoScore:
    photo: str
    truth_px: int
    pred_px: int
    tp_px: int

    @property
    def fp_px(self) -> int:
        return self.pred_px - self.tp_px

    @property
    def fn_px(self) -> int:
        return self.truth_px - self.tp_px

    @property
    def dice(self) -> float:
        denom = self.truth_px + self.pred_px
        return 1.0 if denom == 0 else 2.0 * self.tp_px / denom

    @property
    def iou(self) -> float:
        union = self.truth_px + self.pred_px - self.tp_px
        return 1.0 if union == 0 else self.tp_px / union

    @property
    def area_error_px(self) -> int:
        return self.pred_px - self.truth_px

    @property
    def area_error_rel(self) -> float | None:
        return None if self.truth_px == 0 else self.area_error_px / self.truth_px


def score_photo(photo: str, truth: np.ndarray, pred: np.ndarray) -> PhotoScore:
    """Compare two masks of the same size (any nonzero value is wound)."""
    if truth.shape != pred.shape:
        raise ValueError(
            f"{photo}: mask sizes differ, truth {truth.shape} vs prediction {pred.shape}"
        )
    t = truth > 0
    p = pred > 0
    return PhotoScore(photo, int(t.sum()), int(p.sum()), int(np.logical_and(t, p).sum()))


@dataclass
class SplitScore:
    photos: list[PhotoScore] = field(default_factory=list)

    def add(self, score: PhotoScore) -> None:
        self.photos.append(score)

    def summary(self) -> dict[str, float | int]:
        tp = sum(p.tp_px for p in self.photos)
        pred = sum(p.pred_px for p in self.photos)
        truth = sum(p.truth_px for p in self.photos)
        n = len(self.photos)
        rel = [abs(r) for p in self.photos if (r := p.area_error_rel) is not None]
        return {
            "photos": n,
            "pooled_dice": 2 * tp / (pred + truth) if pred + truth else 1.0,
            "mean_dice": float(np.mean([p.dice for p in self.photos])) if n else float("nan"),
            "pooled_iou": tp / (pred + truth - tp) if pred + truth - tp else 1.0,
            "mean_iou": float(np.mean([p.iou for p in self.photos])) if n else float("nan"),
            "precision": tp / pred if pred else 1.0,
            "recall": tp / truth if truth else 1.0,
            "mean_abs_area_error_px": float(np.mean([abs(p.area_error_px) for p in self.photos]))
            if n
            else float("nan"),
            "median_abs_rel_area_error": float(np.median(rel)) if rel else float("nan"),
        }
