# syntax=docker/dockerfile:1
# Three images from one file, each started on exactly the files its stage copies
# (tests/faults/test_docker_stages.py assembles each stage from these COPY lines and runs it):
#   api     - FastAPI + serving on the CPU: CPU-only torch, the method catalogue, no training code.
#             Also the one-shot migration step (`vlmc migrate`).
#   worker  - the GPU update worker: CUDA torch, the update engine. One job at a time per GPU.
#   standin - the worker plus the stand-in base model, its datasets and their system packages:
#             seeds a demo deployment (compose profile "standin"). Production does not need it.
# Build: docker build --target api -t vlmc-api .   /   docker build --target worker -t vlmc-worker .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VLMC_DATA_DIR=/data
RUN groupadd --system --gid 10001 vlmc \
    && useradd --system --uid 10001 --gid vlmc --home-dir /app --shell /usr/sbin/nologin vlmc \
    && mkdir -p /data \
    && chown vlmc:vlmc /data
WORKDIR /app

# --- Browser assets (pinned npm packages) for /docs, /redoc and /ui ---------------------------
FROM node:20-bookworm-slim AS ui-assets
COPY scripts/fetch-npm-files.sh scripts/fetch-ui-assets.sh /scripts/
RUN VLMC_UI_VENDOR_DIR=/vendor bash /scripts/fetch-ui-assets.sh

# --- API: CPU-only -----------------------------------------------------------------------------
FROM base AS api
ARG TORCH_VERSION=2.13.0
# torch first, from the CPU index: the default index would pull the multi-GB CUDA build.
RUN pip install torch==${TORCH_VERSION} --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml constraints.txt README.md alembic.ini ./
COPY migrations ./migrations
COPY catalogue ./catalogue
COPY service ./service
COPY --from=ui-assets /vendor ./service/webui/vendor
# Only the catalogue and service/ are copied: the package installs without training code.
# constraints.txt pins every dependency to the versions the tests and benchmarks ran with.
RUN pip install -c constraints.txt .
USER 10001:10001
# One torch thread per API process: forward passes are batched, and the other cores serve
# requests (bench/results/serving.md). Scale with more processes or replicas.
ENV OMP_NUM_THREADS=1
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
# The app does not migrate: it refuses to start on an older schema. The prestart step,
# `vlmc migrate` (compose's init), brings the schema up once, before any replica starts.
CMD ["uvicorn", "--factory", "service.app:create_app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]

# --- GPU worker ----------------------------------------------------------------------------
FROM base AS worker
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
# The CUDA wheels bundle the CUDA runtime; the host's driver comes in through the NVIDIA
# container runtime, so no CUDA base image is needed.
RUN pip install torch==${TORCH_VERSION} --index-url ${TORCH_INDEX_URL}
COPY pyproject.toml constraints.txt README.md alembic.ini ./
COPY migrations ./migrations
COPY catalogue ./catalogue
COPY service ./service
COPY --from=ui-assets /vendor ./service/webui/vendor
COPY workers ./workers
RUN pip install -c constraints.txt .
USER 10001:10001
ENV VLMC_DEVICE=cuda
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-m", "workers.pipeline.healthcheck"]
CMD ["vlmc", "worker", "--concurrency", "1"]

# --- Emoji artwork and names (pinned npm packages), for the stand-in image --------------------
FROM node:20-bookworm-slim AS emoji
COPY scripts/fetch-npm-files.sh scripts/fetch-emoji-data.sh /scripts/
RUN VLMC_EMOJI_DIR=/emoji bash /scripts/fetch-emoji-data.sh

# --- The stand-in: demo base model and datasets (compose profile "standin") ------------------
FROM worker AS standin
USER 0:0
# Real Fashion-MNIST images (Debian package) for the stand-in's evaluation sets; libcairo2
# rasterises the OpenMoji SVGs (cairosvg).
RUN apt-get update \
    && apt-get install -y --no-install-recommends dataset-fashion-mnist=0.0~git20200523.55506a9-1 \
       libcairo2=1.16.0-7 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=emoji /emoji /opt/emoji
ENV VLMC_EMOJI_DIR=/opt/emoji
COPY standin ./standin
# The standin extra: MiniLM text tower, cairosvg, scikit-learn / scikit-image datasets;
# animal-mnist's declared dependencies pull TensorFlow, and only its data files are read.
# (DL3013: "." is this project, whose requirements pyproject bounds.)
# hadolint ignore=DL3013
RUN pip install -c constraints.txt ".[standin]" \
    && pip install --no-deps animal-mnist==0.4
USER 10001:10001
ENV VLMC_DEVICE=cpu
# Assembles the stand-in base model and VLM into the shared volume if missing and registers
# them with their evaluation sets (idempotent).
CMD ["python", "-m", "standin.basemodel.default_model"]
