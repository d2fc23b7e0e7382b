#!/usr/bin/env bash
# Render the HTML report of a results database and screenshot it with headless Chromium,
# to check by eye what a user sees (clipped labels, empty plots, unreadable text).
#
#   benchmarks/report_screenshot.sh DB OUT.png [RUN_ID]
#
# SCREENSHOT_HEIGHT (pixels, default 4000) makes the window taller for long reports.
# Reads DB read-only (DuckDB allows one writer: point it at a copy while a sweep runs).
# Installs the Debian `chromium` package if no Chromium is on PATH (needs root and apt).
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 DB OUT.png [RUN_ID]" >&2
    exit 2
fi
db=$1
out=$(realpath -m "$2")
run_id=${3:-}
repo=$(cd "$(dirname "$0")/.." && pwd)
html=$(mktemp --suffix=.html /tmp/harness-report-XXXXXX)
profile=$(mktemp -d /tmp/harness-chromium-XXXXXX)
trap 'rm -rf "$html" "$profile"' EXIT

"$repo/.venv/bin/harness" report ${run_id:+"$run_id"} --db "$db" --out "$html"

browser=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $browser ]]; then
    echo "chromium not found: installing the Debian package" >&2
    apt-get update && apt-get install -y chromium
    browser=$(command -v chromium)
fi

# The flags keep Chromium off the network (no updates, sync or QUIC probes) and give it a
# throw-away profile; the window is tall so the whole report is in one image.
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --window-size=1400,"${SCREENSHOT_HEIGHT:-4000}" --hide-scrollbars \
    --screenshot="$out" "file://$html" 2>"$profile/chromium.log" \
    || { cat "$profile/chromium.log" >&2; exit 1; }  # its usual stderr is D-Bus noise
echo "report screenshot: $out"
