#!/usr/bin/env bash
# Fetch the emoji artwork and names (npm packages, pinned) into data/emoji/ (git-ignored).
# Google Noto (Apache-2.0) and Twemoji (CC-BY-4.0) PNGs train the base model; OpenMoji colour
# SVGs (CC-BY-SA-4.0) are the held-out style, rasterised at run time and never committed;
# emojibase-data (MIT) gives names and keywords. Only the files the project reads are kept.
set -euo pipefail
DEST="${VLMC_EMOJI_DIR:-$(cd "$(dirname "$0")/.." && pwd)/data/emoji}"
PACKAGES=(
    "emoji-datasource-google@16.0.0:package.json LICENSE emoji.json img/google/64"
    "emoji-datasource-twitter@16.0.0:package.json LICENSE emoji.json img/twitter/64"
    "openmoji@17.0.0:package.json LICENSE.txt color/svg"
    "emojibase-data@17.0.0:package.json LICENSE en/data.json en/messages.json"
)
bash "$(dirname "$0")/fetch-npm-files.sh" "$DEST" "${PACKAGES[@]}"
