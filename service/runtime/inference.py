"""Segmentation with ONNX Runtime (CUDA when available, else CPU). Torch-free.

Any photo size goes in. A whole-photo pass at the model's input size finds the
wound; when the photo is much larger than that (a 12-megapixel phone photo), a
second pass at full resolution around what was found refines the outline, so a
small wound is not lost to downscaling. ``model.json`` decides every parameter.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort

from service.core.contract import (
    ModelSpec,
    PassSpec,
    binarize,
    load_spec,
    preprocess,
    probability,
    sha256_file,
    unbox,
    zoomed,
)
from service.core.segmentation import Segmentation
from service.core.uncertainty import (
    disagreement,
    needs_check_look,
    outline_log_halfwidth,
    outline_signals,
)
from service.runtime.artifacts import models_dirs, resolve_model

if TYPE_CHECKING:
    from service.config import ModelSettings


def available_providers(prefer_gpu: bool = True) -> list[str]:
    have = ort.get_available_providers()
    wanted = ["CUDAExecutionProvider"] if prefer_gpu else []
    return [p for p in wanted if p in have] + ["CPUExecutionProvider"]


class Segmenter:
    """One loaded model. Thread-safe: ONNX Runtime sessions allow concurrent ``run``.

    ``threads``: ONNX Runtime's intra-op threads per run (``WOUNDSCOPE_ORT_THREADS``,
    passed in by whoever holds the settings); None or 0 = its default (all cores).
    """

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
        if threads:  # None or 0: ONNX Runtime's default (all cores)
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(onnx_path), sess_options=opts, providers=available_providers(prefer_gpu)
        )
        self.provider = self.session.get_providers()[0]
        self.check_looks = 0
        """Second looks made so far (``needs_check_look``): the share a sure first look saves."""
        inputs = {i.name for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        if self.spec.onnx.input_name not in inputs or self.spec.onnx.output_name not in outputs:
            raise ValueError(
                f"{onnx_path} has inputs {sorted(inputs)} and outputs {outputs}, but model.json"
                f" names {self.spec.onnx.input_name!r} -> {self.spec.onnx.output_name!r}"
            )
        self.input_name = self.spec.onnx.input_name
        self.output_name = self.spec.onnx.output_name

    @property
    def id(self) -> str:
        return self.spec.id

    def info(self) -> dict:
        return {"name": self.spec.name, "version": self.spec.version, "sha256": self.sha256}

    def run_batch(self, batch: np.ndarray) -> np.ndarray:
        """N x 3 x S x S float32 -> N x S x S raw outputs."""
        out = self.session.run([self.output_name], {self.input_name: batch})[0]
        return out[:, 0]

    def _prob_whole(self, rgb: np.ndarray, size: int | None = None) -> np.ndarray:
        x, box = preprocess(rgb, self.spec, size)
        return unbox(probability(self.run_batch(x)[0], self.spec), box)

    def look(self, rgb: np.ndarray, look: PassSpec) -> np.ndarray:
        """One whole-photo look (``PassSpec``) -> wound probability at the photo's size."""
        return self._prob_pass(rgb, look)

    def review_halfwidth_pct(self) -> float | None:
        u = self.spec.uncertainty
        return u.review_halfwidth_pct if u is not None and u.q is not None else None

    def outline_log_halfwidth(
        self, rgb: np.ndarray, seg: Segmentation, mask: np.ndarray
    ) -> float | None:
        """The outline's 95 % log half-width for ``mask`` (the measured wound of
        ``seg``), with the check look of ``model.json`` when it has one."""
        u = self.spec.uncertainty
        disagree = 0.0
        if (
            u is not None
            and u.q is not None
            and u.check_pass is not None
            and seg.coarse is not None
            and needs_check_look(u, outline_signals(seg.probability, mask, self.spec))
        ):
            self.check_looks += 1
            check = self.look(rgb, u.check_pass)
            disagree = disagreement(seg.coarse, check, mask, self.spec.output.threshold)
        return outline_log_halfwidth(seg.probability, mask, self.spec, disagree)

    def _prob_pass(self, rgb: np.ndarray, look: PassSpec) -> np.ndarray:
        x, box = zoomed(rgb, self.spec, look.zoom)
        if look.hflip:
            out = self.run_batch(np.ascontiguousarray(x[..., ::-1]))[0][:, ::-1]
        else:
            out = self.run_batch(x)[0]
        return unbox(probability(out, self.spec), box)

    def _prob_passes(self, rgb: np.ndarray) -> np.ndarray:
        """Every pass of ``model.json`` over the whole photo, combined."""
        spec = self.spec
        probs: list[np.ndarray] = []
        combined = np.zeros(rgb.shape[:2], np.float32)
        for look in spec.passes:
            if probs and look.min_fill > 0:
                fill = np.count_nonzero(combined >= spec.output.threshold) / combined.size
                if fill < look.min_fill:
                    continue
            probs.append(self._prob_pass(rgb, look))
            stack = np.stack(probs)
            combined = stack.max(axis=0) if spec.combine == "max" else stack.mean(axis=0)
        return combined

    def _refine_box(self, coarse: np.ndarray) -> tuple[int, int, int, int] | None:
        """A square around the coarse wound (with margin, at least the model's input
        size), or None when refining would not see it at least ``min_gain`` finer."""
        ys, xs = np.nonzero(coarse)
        if not len(ys):
            return None
        h, w = coarse.shape
        refine = self.spec.refine
        side = max(ys.max() + 1 - ys.min(), xs.max() + 1 - xs.min())
        side = max(int(side * (1 + 2 * refine.margin_frac)), self.spec.input.size)
        cy, cx = (ys.min() + ys.max() + 1) // 2, (xs.min() + xs.max() + 1) // 2
        yb, xb = min(h, max(0, cy - side // 2) + side), min(w, max(0, cx - side // 2) + side)
        ya, xa = max(0, yb - side), max(0, xb - side)
        if max(h, w) / max(yb - ya, xb - xa) < refine.min_gain:
            return None
        return ya, yb, xa, xb

    def segment(self, rgb: np.ndarray, refine: bool | None = None) -> Segmentation:
        t0 = time.perf_counter()
        spec = self.spec
        prob = coarse = self._prob_passes(rgb)
        refined = False
        do_refine = spec.refine.enabled if refine is None else refine
        if do_refine and max(rgb.shape[:2]) >= spec.input.size * spec.refine.min_gain:
            box = self._refine_box(binarize(prob, spec))
            if box is not None:
                ya, yb, xa, xb = box
                prob = prob.copy()
                prob[ya:yb, xa:xb] = self._prob_whole(rgb[ya:yb, xa:xb])
                refined = True
        mask = binarize(prob, spec)
        ms = (time.perf_counter() - t0) * 1000
        return Segmentation(mask=mask, probability=prob, refined=refined, ms=ms, coarse=coarse)


def load_segmenter(ref: str | None, settings: ModelSettings) -> Segmenter:
    """The model ``ref`` names (a folder or an installed id; None = the highest
    installed), looked for where ``settings`` adds model folders and run with its
    thread count: what each model-running command loads. Raises ``ModelNotFound``."""
    folder = resolve_model(ref, models_dirs(settings.models_dirs))
    return Segmenter(folder, threads=settings.ort_threads)
