"""``woundscope evaluate``: a model folder against images/ + labels/, torch-free."""

from __future__ import annotations

import csv
from pathlib import Path

from service.core.imaging import PHOTO_SUFFIXES, read_mask, read_photo
from service.core.segmetrics import SplitScore, score_photo
from service.runtime.inference import Segmenter


def pairs(images: Path, labels: Path) -> list[tuple[Path, Path]]:
    """Photos in ``images`` matched by stem to masks in ``labels``."""
    by_stem = {p.stem: p for p in Path(labels).iterdir() if p.suffix.lower() in PHOTO_SUFFIXES}
    out = []
    for img in sorted(Path(images).iterdir()):
        if img.suffix.lower() not in PHOTO_SUFFIXES:
            continue
        if img.stem not in by_stem:
            raise FileNotFoundError(f"no mask for {img.name} in {labels}")
        out.append((img, by_stem[img.stem]))
    if not out:
        raise FileNotFoundError(f"no photos in {images}")
    return out


def evaluate(
    segmenter: Segmenter, images: Path, labels: Path, per_photo_csv: Path | None = None
) -> dict:
    score = SplitScore()
    ms = []
    for img, lab in pairs(images, labels):
        photo = read_photo(img)
        seg = segmenter.segment(photo.rgb)
        ms.append(seg.ms)
        score.add(score_photo(img.name, read_mask(lab, shape=photo.rgb.shape[:2]), seg.mask))
    summary: dict[str, float | int | str] = {**score.summary()}
    summary["median_ms"] = sorted(ms)[len(ms) // 2]
    summary["model"] = segmenter.id
    if per_photo_csv:
        with open(per_photo_csv, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(
                [
                    "photo",
                    "truth_px",
                    "pred_px",
                    "tp_px",
                    "dice",
                    "iou",
                    "area_error_px",
                    "area_error_rel",
                ]
            )
            for p in score.photos:
                w.writerow(
                    [
                        p.photo,
                        p.truth_px,
                        p.pred_px,
                        p.tp_px,
                        round(p.dice, 5),
                        round(p.iou, 5),
                        p.area_error_px,
                        "" if p.area_error_rel is None else round(p.area_error_rel, 5),
                    ]
                )
    return summary


def model_metrics(model_dir: Path, images: Path, labels: Path, threads: int | None = None) -> dict:
    """What ``model.json`` records about a model folder's accuracy on a split: the
    metrics of ``evaluate``, without latency (that belongs to benchmarks, measured side
    by side) and with the split it was measured on. ``threads``: ``Segmenter``'s."""
    metrics = evaluate(Segmenter(model_dir, threads=threads), images, labels)
    metrics.pop("median_ms", None)
    metrics.pop("model", None)
    metrics["split"] = str(images)
    return metrics
