#!/usr/bin/env bash
# GPU check, run on a lent CUDA machine from the repository root:
#
#   run(command="bash benchmarks/gpu/run.sh",
#       carry=[".venv/lib/python3.11/site-packages/efficientnet_lite_pytorch"], timeout_s=420)
#
# The machine has torch (CUDA) and the CPU build of onnxruntime; the carried folder is
# the pure-Python EfficientNet-Lite code the PyTorch fallback builds the network from.
# Results: $OUT/gpu.md and $OUT/gpu.json.
set -euo pipefail
OUT="${OUT:-$(mktemp -d)}"
SITE=".venv/lib/python3.11/site-packages"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
[ -d "$SITE/efficientnet_lite_pytorch" ] && export PYTHONPATH="$PYTHONPATH:$PWD/$SITE"
PY="${PYTHON:-python3}"
nvidia-smi || true
"$PY" -c "import onnxruntime, numpy; print('onnxruntime', onnxruntime.__version__, onnxruntime.get_available_providers())"
"$PY" benchmarks/gpu/bench_gpu.py --out "$OUT" "$@"
echo "results in $OUT"
