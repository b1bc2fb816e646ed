"""Static int8 (QDQ, per-channel) variant of an exported model, calibrated on training photos.

    python -m training.quantize MODEL_DIR --images ../shared/datasets/fuseg2021/train/images [--n 32]

Writes MODEL_DIR/model.int8.onnx. MinMax calibration: the percentile method keeps
histograms of every activation and needed ~20 GB for 64 photos at 512 px here. Whether it becomes the default is decided by
measurement (benchmarks.model and woundscope evaluate), not here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from service.core.contract import load_spec, preprocess
from service.core.imaging import PHOTO_SUFFIXES, read_photo

CALIBRATION_PHOTOS = 32
"""Training photos the activation ranges are calibrated on."""


class PhotoReader(CalibrationDataReader):
    def __init__(self, photos: list[Path], model_dir: Path):
        spec = load_spec(model_dir)
        self.name = spec.onnx.input_name
        self.items = iter([preprocess(read_photo(p).rgb, spec)[0] for p in photos])

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self.items, None)
        return None if x is None else {self.name: x}


def quantize(model_dir: Path, images: Path, n: int = CALIBRATION_PHOTOS, seed: int = 0) -> Path:
    photos = sorted(p for p in images.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    rng = np.random.default_rng(seed)
    chosen = [
        photos[i] for i in sorted(rng.choice(len(photos), min(n, len(photos)), replace=False))
    ]
    pre = model_dir / "model.pre.onnx"
    out = model_dir / "model.int8.onnx"
    quant_pre_process(str(model_dir / "model.onnx"), str(pre))
    quantize_static(
        str(pre),
        str(out),
        PhotoReader(chosen, model_dir),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    pre.unlink()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--n", type=int, default=CALIBRATION_PHOTOS)
    args = ap.parse_args()
    print(quantize(args.model_dir, args.images, args.n))


if __name__ == "__main__":
    main()
