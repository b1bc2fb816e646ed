# woundscope serving image. Docker cannot build on the development machines:
# keep this file in step with the README's install by hand (pip install .: the wheel
# carries the models and samples; tests/test_packaging.py checks that install).
#
#   docker build -t woundscope .                                  # CPU
#   docker build -t woundscope:gpu --build-arg ORT_PACKAGE=onnxruntime-gpu .   # CUDA
#
# The GPU variant swaps onnxruntime for onnxruntime-gpu; run it on a host with the
# NVIDIA container toolkit (`docker run --gpus all`). /readyz says which provider runs.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE} AS base
ARG ORT_PACKAGE=onnxruntime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    WOUNDSCOPE_DATA_DIR=/var/lib/woundscope
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY service ./service
COPY training ./training
# The released models and the sample photos go into the package (setup.py), so the
# installed `woundscope` serves the bundled model and runs `demo`/`simulate` anywhere.
COPY models ./models
COPY data/samples ./data/samples
# The serving install only: no torch, no albumentations. Not editable: the source
# tree is removed, and nothing may depend on it.
RUN pip install . \
    && if [ "$ORT_PACKAGE" != "onnxruntime" ]; then \
         pip uninstall -y onnxruntime && pip install "$ORT_PACKAGE"; fi \
    && cd / && rm -rf /app/service /app/training /app/models /app/data /app/build
# More models: mount them and set WOUNDSCOPE_MODELS_DIR=/models.
RUN useradd --system --uid 10001 --home /var/lib/woundscope woundscope \
    && mkdir -p /var/lib/woundscope && chown woundscope /var/lib/woundscope
USER woundscope
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
CMD ["woundscope", "serve", "--host", "0.0.0.0", "--port", "8000"]
