#!/usr/bin/env bash
# Fetch the browser assets the API serves (pinned npm packages) into service/webui/vendor/
# (git-ignored): Swagger UI (Apache-2.0) for /docs, ReDoc (MIT) for /redoc, Chart.js (MIT)
# for the dashboard's charts. Served from this folder, never from a CDN: /docs, /redoc and /ui
# work on a machine without internet. Only the files the pages load (and the licences) are kept.
set -euo pipefail
DEST="${VLMC_UI_VENDOR_DIR:-$(cd "$(dirname "$0")/.." && pwd)/service/webui/vendor}"
bash "$(dirname "$0")/fetch-npm-files.sh" "$DEST" \
    "swagger-ui-dist@5.36.0:package.json LICENSE swagger-ui-bundle.js swagger-ui.css" \
    "redoc@2.5.4:package.json LICENSE bundles/redoc.standalone.js" \
    "chart.js@4.6.2:package.json LICENSE.md dist/chart.umd.min.js"
