"""The model contract: ``model.json`` and the one preprocess/postprocess pair.

Training, evaluation, export parity checks and the service all call these
functions, so that a model sees at serving time exactly what it saw in training.
Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputSpec(_Strict):
    size: int = 512
    """Side of the square the whole photo is letterboxed into (pixels)."""
    multiple_of: int = 32
    # The runtime can do exactly these; ``load_spec`` refuses a model.json that asks for
    # anything else, instead of serving a model fed the wrong way.
    resize: Literal["letterbox"] = "letterbox"
    pad_value: tuple[int, int, int] = (0, 0, 0)
    channel_order: Literal["RGB"] = "RGB"
    layout: Literal["NCHW"] = "NCHW"
    dtype: Literal["float32"] = "float32"
    scale: float = 255.0
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: Literal["area", "linear"] = "area"
    """``area`` when shrinking (linear when enlarging), or ``linear`` always."""


class OutputSpec(_Strict):
    activation: Literal["sigmoid", "none"] = "sigmoid"
    """What turns the network's output into a probability: sigmoid (logits out) or none."""
    threshold: float = 0.5


class PostprocessSpec(_Strict):
    min_component_px: int = 24
    """Components smaller than this, counted at the model's input resolution, are dropped."""
    fill_holes: bool = True


class RefineSpec(_Strict):
    enabled: bool = True
    min_gain: float = 1.5
    """Refine at full resolution only when the wound crop is at least this much finer."""
    margin_frac: float = 0.35


class PassSpec(_Strict):
    """One look at the whole photo. Passes are averaged (``ModelSpec.combine``)."""

    zoom: float = Field(default=1.0, gt=0.05, le=1.0)
    """The photo's longer side as a share of the input square: 1.0 is the plain
    letterbox; 0.5 shows the photo at half that size inside a reflect-padded canvas,
    so a wound that fills a close-up looks as large as the wounds the model learned."""
    hflip: bool = False
    min_fill: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Make this pass only when the passes before it found a wound covering at least
    this share of the photo (a zoomed-out look is for close-ups; it costs a far shot
    nothing)."""


class UncertaintySpec(_Strict):
    """How wrong the outline may be (``service.core.uncertainty``), calibrated on photos
    never trained on; written by ``python -m training.calibrate_uncertainty``."""

    method: str = "split-conformal"
    band_lo: float = Field(default=0.25, gt=0.0, lt=1.0)
    band_hi: float = Field(default=0.75, gt=0.0, lt=1.0)
    """Probabilities in [band_lo, band_hi) near the wound are where the model hesitates."""
    band_coef: float = Field(default=1.0, ge=0.0)
    """Weight of the hesitant band's share of the area."""
    check_pass: PassSpec | None = None
    """A second whole-photo look (e.g. mirrored, or zoomed out); how much its wound
    area near the measured one disagrees with the first look's widens the interval.
    Made only for a wound filling at least its ``min_fill`` of the photo.
    None: no second look (one inference less per photo)."""
    disagree_coef: float = Field(default=0.0, ge=0.0)
    """Weight of that disagreement (|area of the check look - area of the first| / area)."""
    check_min_scale: float = Field(default=0.0, ge=0.0)
    """Make the check look only when the first look is unsure: its scale without the
    disagreement term (``OutlineSignals.scale``) is at least this. 0: always (within
    ``check_pass.min_fill``). A sure first look costs one network run, not two."""
    review_halfwidth_pct: float | None = Field(default=None, gt=0.0)
    """The outline's 95 % half-width beyond which the photo is flagged
    ``outline_uncertain`` (and waits for a clinician under the default review policy),
    chosen at calibration as the loosest limit that still flags >= 90 % of the fit
    photos off by more than 30 %. None: the measurement core's default."""
    size_coef: float = Field(default=1.0, ge=0.0)
    """Weight of 1 / sqrt(wound area at the model's input resolution, px)."""
    fill_coef: float = Field(default=0.0, ge=0.0)
    """Weight of the wound's share of the photo (close-ups are outlined short)."""
    floor: float = Field(default=0.02, ge=0.0)
    q: float | None = Field(default=None, gt=0.0)
    """The calibrated factor: 95 % half-width of log(true / measured area) = q x scale.
    None: not calibrated, the interval covers the calibration marker only."""
    calibrated_on: list[str] = Field(default_factory=list)
    coverage: dict[str, float] = Field(default_factory=dict)
    """Share of held-out photos whose true area fell inside the interval, per set."""
    median_halfwidth_pct: dict[str, float] = Field(default_factory=dict)


class OnnxSpec(_Strict):
    file: str = "model.onnx"
    sha256: str = ""
    opset: int = 17
    onnx_version: str = ""
    input_name: str = "image"
    output_name: str = "logits"


class ModelSpec(_Strict):
    name: str
    version: str
    input: InputSpec = Field(default_factory=InputSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    postprocess: PostprocessSpec = Field(default_factory=PostprocessSpec)
    refine: RefineSpec = Field(default_factory=RefineSpec)
    passes: list[PassSpec] = Field(default_factory=lambda: [PassSpec()], min_length=1)
    """The whole-photo passes the runtime makes, in order."""
    combine: Literal["mean", "max"] = "mean"
    """How the passes' probabilities become one."""
    uncertainty: UncertaintySpec | None = None
    """The outline's calibrated error; None: the interval covers the marker only."""
    onnx: OnnxSpec = Field(default_factory=OnnxSpec)
    architecture: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    created: str = ""

    @property
    def id(self) -> str:
        return f"{self.name}-{self.version}"


def load_spec(model_dir: Path) -> ModelSpec:
    """Read and validate ``model.json`` of a model folder."""
    return ModelSpec.model_validate(json.loads((Path(model_dir) / "model.json").read_text()))


def save_spec(spec: ModelSpec, model_dir: Path) -> None:
    path = Path(model_dir) / "model.json"
    path.write_text(json.dumps(spec.model_dump(mode="json"), indent=2) + "\n")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Letterbox:
    """Where a photo of ``height`` x ``width`` lies inside the model's square input."""

    height: int
    width: int
    size: int
    scale: float
    new_h: int
    new_w: int


def _interp(spec: InputSpec, shrinking: bool) -> int:
    if spec.interpolation == "area" and shrinking:
        return cv2.INTER_AREA
    return cv2.INTER_LINEAR


def normalize(rgb: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 HxWx3 RGB -> float32 3xHxW, scaled and standardised as the model expects."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
    x = rgb.astype(np.float32) / np.float32(spec.scale)
    x -= np.asarray(spec.mean, dtype=np.float32)
    x /= np.asarray(spec.std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def letterbox(
    rgb: np.ndarray, spec: InputSpec, size: int | None = None
) -> tuple[np.ndarray, Letterbox]:
    """Resize so the longer side is ``size`` and pad bottom/right to a square."""
    size = size or spec.size
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    if (new_h, new_w) != (h, w):
        resized = cv2.resize(rgb, (new_w, new_h), interpolation=_interp(spec, scale < 1))
    else:
        resized = rgb
    canvas = np.empty((size, size, 3), dtype=np.uint8)
    canvas[:] = np.asarray(spec.pad_value, dtype=np.uint8)
    canvas[:new_h, :new_w] = resized
    return canvas, Letterbox(h, w, size, scale, new_h, new_w)


def preprocess(
    rgb: np.ndarray, spec: ModelSpec, size: int | None = None
) -> tuple[np.ndarray, Letterbox]:
    """A photo (uint8 RGB, any size) -> the model's 1x3xSxS float32 input and its letterbox."""
    boxed, box = letterbox(rgb, spec.input, size)
    return normalize(boxed, spec.input)[None], box


def reflect_pad(img: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Mirror the image outward (BORDER_REFLECT_101), repeating when a pad exceeds it."""
    while top or bottom or left or right:
        h, w = img.shape[:2]
        if h < 2 or w < 2:
            return cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_REPLICATE)
        t, b, lft, r = min(top, h - 1), min(bottom, h - 1), min(left, w - 1), min(right, w - 1)
        img = cv2.copyMakeBorder(img, t, b, lft, r, cv2.BORDER_REFLECT_101)
        top, bottom, left, right = top - t, bottom - b, left - lft, right - r
    return img


def zoomed(
    rgb: np.ndarray, spec: ModelSpec, zoom: float, size: int | None = None
) -> tuple[np.ndarray, Letterbox]:
    """Like ``preprocess``, with the photo's longer side at ``zoom`` x the square and the
    rest of the square reflect-padded (``unbox`` drops the padding again)."""
    if zoom >= 1.0:
        return preprocess(rgb, spec, size)
    size = size or spec.input.size
    h, w = rgb.shape[:2]
    scale = zoom * size / max(h, w)
    new_h, new_w = max(2, round(h * scale)), max(2, round(w * scale))
    small = cv2.resize(rgb, (new_w, new_h), interpolation=_interp(spec.input, scale < 1))
    canvas = reflect_pad(small, 0, size - new_h, 0, size - new_w)
    return normalize(np.ascontiguousarray(canvas), spec.input)[None], Letterbox(
        h, w, size, scale, new_h, new_w
    )


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))).astype(np.float32)


def probability(output: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """The network's raw output (SxS) -> wound probability (SxS float32)."""
    out = np.asarray(output, dtype=np.float32)
    return sigmoid(out) if spec.output.activation == "sigmoid" else out


def unbox(prob: np.ndarray, box: Letterbox) -> np.ndarray:
    """Probability in the model frame -> probability at the photo's own size."""
    crop = prob[: box.new_h, : box.new_w]
    if crop.shape != (box.height, box.width):
        crop = cv2.resize(crop, (box.width, box.height), interpolation=cv2.INTER_LINEAR)
    return crop


def clean_mask(mask: np.ndarray, post: PostprocessSpec, px_scale: float = 1.0) -> np.ndarray:
    """Binary cleanup: drop specks, fill holes. ``px_scale`` = photo px per model px (area ratio)."""
    mask = (mask > 0).astype(np.uint8)
    min_px = post.min_component_px * px_scale
    if min_px > 0 and mask.any():
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        keep = np.zeros(n, dtype=bool)
        keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_px
        mask = keep[labels].astype(np.uint8)
    if post.fill_holes and mask.any():
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        mask = np.zeros_like(mask)
        cv2.drawContours(mask, contours, -1, 1, thickness=cv2.FILLED)
    return mask * np.uint8(255)


def binarize(prob: np.ndarray, spec: ModelSpec, threshold: float | None = None) -> np.ndarray:
    """Probability at the photo's size -> cleaned 0/255 uint8 mask.

    The minimum component size is counted at the model's input resolution, so it is
    scaled by the photo's area per model pixel. ``threshold`` overrides the contract's
    only for analysis (a threshold sweep)."""
    cut = spec.output.threshold if threshold is None else threshold
    px_scale = (max(prob.shape[:2]) / spec.input.size) ** 2
    return clean_mask((prob >= cut).astype(np.uint8), spec.postprocess, px_scale=px_scale)


def postprocess(prob: np.ndarray, box: Letterbox, spec: ModelSpec) -> np.ndarray:
    """Model-frame probability -> 0/255 uint8 mask at the photo's size, cleaned."""
    return binarize(unbox(prob, box), spec)
