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
# libcairo2 rasterises the OpenMoji SVGs (through cairosvg); npm fetches the emoji packages
# and the browser assets (scripts/fetch-emoji-data.sh, scripts/fetch-ui-assets.sh, run by
# `make install`); Chromium runs the dashboard and explorer tests (tests/ui, via Playwright).
MISSING=""
ldconfig -p 2>/dev/null | grep -q "libcairo.so.2" || MISSING="$MISSING libcairo2"
command -v npm >/dev/null 2>&1 || MISSING="$MISSING npm"
[ -x /usr/bin/chromium ] || MISSING="$MISSING chromium"
if [ -n "$MISSING" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq $MISSING
fi
