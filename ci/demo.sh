#!/usr/bin/env bash
# make demo: the main story, end to end. A simulated host with 3 VMs (one with two disks) lives a
# week of nightly backups by hvbackup through the Win32 path, with one fault (a live migration
# that resets change tracking); every point is restored and judged block by block against the
# simulator's ground truth (scenarios/week-demo.yaml). Prints the runner's table, totals and
# dedup/compression ratios, and writes BUILD/demo/report.json and BUILD/demo/report.html (the same
# table and an inline-SVG chart of bytes changed vs bytes stored per night).
# Exits non-zero when any expectation fails.
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HVSIM=$(realpath "$BUILD/bin/hvsim")
W=$(realpath -m "$BUILD/demo")
rm -rf "$W" && mkdir -p "$W"
echo "== hvsim demo: a simulated week of nightly backups (scenarios/week-demo.yaml)"
rc=0
HVSIM_NOSYNC=1 "$HVSIM" scenario run "$ROOT/scenarios/week-demo.yaml" --report "$W/report.json" || rc=$?
/usr/bin/python3 "$ROOT/ci/report_html.py" "$W/report.json" "$W/report.html"
echo "== report: $W/report.html (and report.json)"
exit $rc
