# syntax=docker/dockerfile:1
# Two images from one file:
#   api    - FastAPI + serving on the CPU: CPU-only torch, no CUDA libraries, no training code.
#   worker - the GPU update worker: CUDA torch, the update engine, the datasets used to build the
#            stand-in base model. One job at a time per GPU (solo pool).
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

# --- API: CPU-only -----------------------------------------------------------------------------
FROM base AS api
ARG TORCH_VERSION=2.13.0
# torch first, from the CPU index: the default index would pull the multi-GB CUDA build.
RUN pip install torch==${TORCH_VERSION} --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml constraints.txt README.md alembic.ini ./
COPY migrations ./migrations
COPY service ./service
# Only service/ is copied, so the package installs without the worker's training code.
# constraints.txt pins every dependency to the versions the tests and benchmarks ran with.
RUN pip install -c constraints.txt .
USER 10001:10001
# One torch thread per API process: forward passes are batched, and the other cores serve
# requests (bench/results/serving.md). Scale with more processes or replicas.
ENV OMP_NUM_THREADS=1
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
# The app does not migrate: it refuses to start on an older schema. Run the prestart step,
# `python -m service.cli migrate` (compose's `migrate` service), before any replica starts.
CMD ["uvicorn", "--factory", "service.app:create_app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]

# --- Emoji artwork and names (pinned npm packages), for the worker image ----------------------
FROM node:20-bookworm-slim AS emoji
COPY scripts/fetch-emoji-data.sh /fetch-emoji-data.sh
RUN VLMC_EMOJI_DIR=/emoji bash /fetch-emoji-data.sh

# --- GPU worker ----------------------------------------------------------------------------
FROM base AS worker
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
# Real Fashion-MNIST images (Debian package) for the stand-in base model's evaluation sets and
# builds; libcairo2 rasterises the OpenMoji SVGs (cairosvg).
RUN apt-get update \
    && apt-get install -y --no-install-recommends dataset-fashion-mnist=0.0~git20200523.55506a9-1 \
       libcairo2=1.16.0-7 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=emoji /emoji /opt/emoji
ENV VLMC_EMOJI_DIR=/opt/emoji
# The CUDA wheels bundle the CUDA runtime; the host's driver comes in through the NVIDIA
# container runtime, so no CUDA base image is needed.
RUN pip install torch==${TORCH_VERSION} --index-url ${TORCH_INDEX_URL}
COPY pyproject.toml constraints.txt README.md alembic.ini ./
COPY migrations ./migrations
COPY service ./service
COPY workers ./workers
# The bench extra brings scikit-learn / scikit-image (digits and textures datasets of the
# stand-in base model); animal-mnist's declared dependencies pull TensorFlow, and only its
# data files are read. (DL3013: "." is this project, whose requirements pyproject bounds.)
# hadolint ignore=DL3013
RUN pip install -c constraints.txt ".[bench]" \
    && pip install --no-deps animal-mnist==0.4
USER 10001:10001
ENV VLMC_DEVICE=cuda
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-m", "workers.pipeline.healthcheck"]
CMD ["vlmc", "worker", "--concurrency", "1"]
