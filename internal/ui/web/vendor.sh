#!/usr/bin/env bash
# Copies the browser libraries the UI serves from npm's node_modules into
# ../static/vendor, which is committed: `go build` then needs no npm, and the
# binary fetches nothing at run time. Run after changing package.json:
#   cd internal/ui/web && npm ci && ./vendor.sh
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules/uplot ] || npm ci --no-audit --no-fund --loglevel=error
mkdir -p ../static/vendor
cp node_modules/uplot/dist/uPlot.iife.min.js ../static/vendor/uPlot.iife.min.js
cp node_modules/uplot/dist/uPlot.min.css ../static/vendor/uPlot.min.css
cp node_modules/uplot/LICENSE ../static/vendor/uPlot.LICENSE
echo "vendored uPlot $(node -p 'require("./node_modules/uplot/package.json").version')"
