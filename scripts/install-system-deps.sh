#!/usr/bin/env bash
# Debian packages the project needs: the real Fashion-MNIST images (MIT) used by tests,
# the stand-in base model and the benchmarks.
set -euo pipefail
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq dataset-fashion-mnist
fi
# A compose CLI to validate docker-compose.yml (no engine runs here; `config` needs none).
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get install -y -qq docker-compose || echo "docker-compose not installed: its test is skipped"
fi
