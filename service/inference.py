"""Segmentation with ONNX Runtime (CUDA when available, else CPU). Torch-free.

Any photo size goes in. A whole-photo pass at the model's input size finds the
wound; when the photo is much larger than that (a 12-megapixel phone photo), a
second pass at full resolution around what was found refines the outline, so a
small wound is not lost to downscaling. ``model.json`` decides every parameter.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from service.contract import (
    ModelSpec,
    clean_mask,
    load_spec,
    preprocess,
    probability,
    sha256_file,
    unbox,
)


@dataclass(frozen=True)
class Segmentation:
    mask: np.ndarray
    """uint8 0/255, same height and width as the photo."""
    probability: np.ndarray
    """float32 wound probability at the photo's size."""
    refined: bool
    ms: float

    @property
    def wound_px(self) -> int:
        return int(np.count_nonzero(self.mask))

    @property
    def components(self) -> int:
        n, _ = cv2.connectedComponents((self.mask > 0).astype(np.uint8), connectivity=8)
        return int(n - 1)


def available_providers(prefer_gpu: bool = True) -> list[str]:
    have = ort.get_available_providers()
    wanted = ["CUDAExecutionProvider"] if prefer_gpu else []
    return [p for p in wanted if p in have] + ["CPUExecutionProvider"]


class Segmenter:
    """One loaded model. Thread-safe: ONNX Runtime sessions allow concurrent ``run``."""

    def __init__(self, model_dir: Path, threads: int | None = None, prefer_gpu: bool = True):
        self.model_dir = Path(model_dir)
        self.spec: ModelSpec = load_spec(self.model_dir)
        onnx_path = self.model_dir / self.spec.onnx.file
        self.sha256 = sha256_file(onnx_path)
        if self.spec.onnx.sha256 and self.spec.onnx.sha256 != self.sha256:
            raise ValueError(
                f"{onnx_path} does not match model.json (sha256 {self.sha256[:12]}…"
                f" != {self.spec.onnx.sha256[:12]}…): the model folder is damaged"
            )
        opts = ort.SessionOptions()
        threads = threads or int(os.environ.get("WOUNDSCOPE_ORT_THREADS", "0")) or None
        if threads:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(onnx_path), sess_options=opts, providers=available_providers(prefer_gpu)
        )
        self.provider = self.session.get_providers()[0]
        self.input_name = self.session.get_inputs()[0].name
        self._lock = threading.Lock()

    @property
    def id(self) -> str:
        return self.spec.id

    def info(self) -> dict:
        return {"name": self.spec.name, "version": self.spec.version, "sha256": self.sha256}

    def run_batch(self, batch: np.ndarray) -> np.ndarray:
        """N x 3 x S x S float32 -> N x S x S raw outputs."""
        out = self.session.run(None, {self.input_name: batch})[0]
        return out[:, 0]

    def _prob_whole(self, rgb: np.ndarray, size: int | None = None) -> np.ndarray:
        x, box = preprocess(rgb, self.spec, size)
        return unbox(probability(self.run_batch(x)[0], self.spec), box)

    def segment(self, rgb: np.ndarray, refine: bool | None = None) -> Segmentation:
        t0 = time.perf_counter()
        spec = self.spec
        h, w = rgb.shape[:2]
        prob = self._prob_whole(rgb)
        threshold = spec.output.threshold
        size = spec.input.size
        refined = False
        do_refine = spec.refine.enabled if refine is None else refine
        if do_refine and max(h, w) >= size * spec.refine.min_gain:
            coarse = (prob >= threshold).astype(np.uint8)
            coarse = clean_mask(coarse, spec.postprocess, px_scale=(max(h, w) / size) ** 2)
            ys, xs = np.nonzero(coarse)
            if len(ys):
                y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
                side = max(y1 - y0, x1 - x0)
                side = int(side * (1 + 2 * spec.refine.margin_frac))
                side = max(side, size)
                cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
                ya, xa = max(0, cy - side // 2), max(0, cx - side // 2)
                yb, xb = min(h, ya + side), min(w, xa + side)
                ya, xa = max(0, yb - side), max(0, xb - side)
                crop = rgb[ya:yb, xa:xb]
                if max(h, w) / max(crop.shape[:2]) >= spec.refine.min_gain:
                    fine = self._prob_whole(crop)
                    prob = prob.copy()
                    prob[ya:yb, xa:xb] = fine
                    refined = True
        mask = (prob >= threshold).astype(np.uint8)
        px_scale = (max(h, w) / size) ** 2
        if refined:
            px_scale = min(px_scale, (max(h, w) / size) ** 2)
        mask = clean_mask(mask, spec.postprocess, px_scale=px_scale)
        ms = (time.perf_counter() - t0) * 1000
        return Segmentation(mask=mask, probability=prob, refined=refined, ms=ms)
