"""Segmentation throughput on a CUDA machine: ONNX Runtime CUDA (or the same network in
PyTorch when only the CPU build of ONNX Runtime is installed), batch 1, 8 and 32, and
the service's throughput with the CUDA provider when the service can run there.

    python benchmarks/gpu/bench_gpu.py --out "$OUT" [--model models/ulcerseg-1.2.0]

Writes ``gpu.md`` (a table) and ``gpu.json`` into ``--out``. Every row says which
engine produced it; nothing is silently substituted.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # service/ and training/ without an install (the lent machine)


def _timed(fn: Any, batch: int, seconds: float, sync: Any = None) -> dict[str, float]:
    for _ in range(3):  # warm-up: kernels, cuDNN autotuning, allocator
        fn()
    if sync:
        sync()
    runs, lat = 0, []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or runs < 5:
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        lat.append(time.perf_counter() - t0)
        runs += 1
    total = time.perf_counter() - start
    return {
        "batch": batch,
        "runs": runs,
        "images_per_s": runs * batch / total,
        "ms_per_batch_p50": float(np.percentile(lat, 50) * 1000),
        "ms_per_batch_p95": float(np.percentile(lat, 95) * 1000),
    }


def bench_ort(model_dir: Path, provider: str, batches: list[int], seconds: float) -> list[dict]:
    import onnxruntime as ort

    spec = json.loads((model_dir / "model.json").read_text())
    size = int(spec["input"]["size"])
    sess = ort.InferenceSession(str(model_dir / spec["onnx"]["file"]), providers=[provider])
    if sess.get_providers()[0] != provider:
        raise RuntimeError(f"{provider} did not load (got {sess.get_providers()})")
    name = sess.get_inputs()[0].name
    rows = []
    for batch in batches:
        x = np.random.default_rng(0).random((batch, 3, size, size), dtype=np.float32)
        row = _timed(lambda x=x: sess.run(None, {name: x}), batch, seconds)
        rows.append({"engine": f"onnxruntime {ort.__version__} {provider}", "size": size, **row})
    return rows


def bench_torch(model_dir: Path, batches: list[int], seconds: float) -> list[dict]:
    """The same architecture (model.json) in PyTorch on the GPU, random weights: the
    arithmetic, and so the throughput, does not depend on the weights' values."""
    import torch

    from training.model import WoundNet

    spec = json.loads((model_dir / "model.json").read_text())
    arch = spec["architecture"]
    size = int(spec["input"]["size"])
    net = WoundNet(
        encoder=arch["encoder"],
        decoder_channels=tuple(arch["decoder_channels"]),
        head_stride=int(arch["head_stride"]),
        pretrained=False,
    )
    net = net.cuda().eval()
    torch.backends.cudnn.benchmark = True
    rows = []
    for dtype in (torch.float32, torch.float16):
        for batch in batches:
            x = torch.rand(batch, 3, size, size, device="cuda")

            def step(x: Any = x, dtype: Any = dtype) -> None:
                with (
                    torch.inference_mode(),
                    torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32),
                ):
                    net(x)

            row = _timed(step, batch, seconds, sync=torch.cuda.synchronize)
            label = "fp32" if dtype == torch.float32 else "fp16 autocast"
            rows.append(
                {
                    "engine": f"torch {torch.__version__} CUDA {label} (same network as the ONNX)",
                    "size": size,
                    **row,
                }
            )
    return rows


def bench_service(out: Path, seconds: float) -> dict[str, Any]:
    """The load benchmark's in-process and HTTP figures with whatever provider the
    service picks (CUDA when onnxruntime-gpu is installed)."""
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "load" / "run_load.py"),
        "--duration",
        str(seconds),
        "--users",
        "8",
        "--out",
        str(out / "service"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 4 + 300)
    return {"returncode": proc.returncode, "tail": (proc.stdout + proc.stderr)[-3000:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=None, help="default: the bundled default")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=8.0, help="per configuration")
    parser.add_argument("--service-seconds", type=float, default=60.0)
    args = parser.parse_args()
    if args.model is None:
        from service.runtime.artifacts import resolve_model

        args.model = resolve_model(None)
    args.out.mkdir(parents=True, exist_ok=True)
    batches = [int(b) for b in args.batches.split(",")]
    result: dict[str, Any] = {
        "machine": platform.node(),
        "python": sys.version.split()[0],
        "rows": [],
        "notes": [],
    }
    try:
        result["gpu"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        result["gpu"] = f"nvidia-smi failed: {exc}"

    import onnxruntime as ort

    providers = ort.get_available_providers()
    result["onnxruntime_providers"] = providers
    result["rows"] += bench_ort(args.model, "CPUExecutionProvider", [1, 8], min(args.seconds, 5))
    if "CUDAExecutionProvider" in providers:
        result["rows"] += bench_ort(args.model, "CUDAExecutionProvider", batches, args.seconds)
    else:
        result["notes"].append(
            "onnxruntime here has no CUDAExecutionProvider (only the CPU build is installed):"
            " the GPU rows are the same network in PyTorch on CUDA, not ONNX Runtime."
        )
        try:
            result["rows"] += bench_torch(args.model, batches, args.seconds)
        except Exception as exc:  # noqa: BLE001 - report, do not hide
            result["notes"].append(f"PyTorch CUDA measurement failed: {type(exc).__name__}: {exc}")
    try:
        import fastapi  # noqa: F401

        service_ok = True
    except ImportError:
        service_ok = False
    if "CUDAExecutionProvider" in providers and service_ok:
        result["service"] = bench_service(args.out, args.service_seconds)
    else:
        result["notes"].append(
            "service throughput with the CUDA provider not measured: it needs onnxruntime-gpu"
            f" ({'missing' if 'CUDAExecutionProvider' not in providers else 'present'}) and the"
            f" service's dependencies ({'present' if service_ok else 'missing'}) on this machine."
        )

    (args.out / "gpu.json").write_text(json.dumps(result, indent=1))
    lines = [
        f"# GPU throughput ({result['gpu']})",
        "",
        "| engine | input | batch | images/s | ms/batch p50 | ms/batch p95 |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['engine']} | {r['size']}² | {r['batch']} | {r['images_per_s']:.1f} |"
            f" {r['ms_per_batch_p50']:.1f} | {r['ms_per_batch_p95']:.1f} |"
        )
    lines += [""] + [f"- {n}" for n in result["notes"]]
    if "service" in result:
        lines += ["", "## Service (CUDA provider)", "", "```", result["service"]["tail"], "```"]
    (args.out / "gpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
