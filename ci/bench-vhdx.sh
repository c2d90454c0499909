#!/usr/bin/env bash
# VHDX benchmark (make bench): hvsim vs qemu-img convert (import, export) and vs libvhdi (full
# read of the 4 GiB virtual disk), plus peak RSS of hvsim on 64 TiB sparse disks.
# usage: ci/bench-vhdx.sh [BUILD]   (BUILD defaults to build; needs BUILD/bin/hvsim and
# BUILD/lib/libhyperv.a, i.e. `make` first). Writes BUILD/bench/vhdx.json, prints a table.
# Temp files live in BUILD/bench/tmp and are deleted at the end. BENCH_RUNS=N changes the number
# of timed runs (default 3); BENCH_STRICT=1 fails when a goal (ratio <= 1, RSS < 64 MiB) is missed.
set -euo pipefail

BUILD=${1:-build}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

HVSIM=$BUILD/bin/hvsim
LIB=$BUILD/lib/libhyperv.a
OUT=$BUILD/bench
for f in "$HVSIM" "$LIB"; do
	[[ -f $f ]] || { echo "bench-vhdx: $f missing (run make first)" >&2; exit 1; }
done
for t in qemu-img cc pkg-config; do
	command -v "$t" >/dev/null || { echo "bench-vhdx: $t not found (ci/deps.sh installs it)" >&2; exit 1; }
done
pkg-config --exists libvhdi || { echo "bench-vhdx: libvhdi (libvhdi-dev) not found (ci/deps.sh)" >&2; exit 1; }

mkdir -p "$OUT"
# the readers: same flags for both, so the comparison is about the libraries
RCFLAGS=(-std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror)
cc "${RCFLAGS[@]}" -o "$OUT/read_ours" ci/bench/read_ours.c "$LIB" -lisal
# shellcheck disable=SC2046
cc "${RCFLAGS[@]}" $(pkg-config --cflags libvhdi) -o "$OUT/read_vhdi" ci/bench/read_vhdi.c \
	$(pkg-config --libs libvhdi)

exec /usr/bin/python3 ci/bench_vhdx.py --build "$BUILD" --hvsim "$HVSIM" \
	--read-ours "$OUT/read_ours" --read-vhdi "$OUT/read_vhdi" --runs "${BENCH_RUNS:-3}"
