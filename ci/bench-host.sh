#!/usr/bin/env bash
# Simulated-host benchmark (make bench): QueryChanges over a 2 TiB disk with 100 000 scattered
# changed blocks (through host_rct_query and WMI GetVirtualDiskChanges, plus sim/rct alone), the
# sidecar size, and guest-write throughput (host_vm_write and the bare generator) against plain
# pwrite() of the same volume measured in the same run.
# usage: ci/bench-host.sh [BUILD]   (needs BUILD/lib/libsim.a and libhyperv.a: `make` first)
# Writes BUILD/bench/host.json and prints a table. BENCH_RUNS=N sets the runs per measure
# (default 5); BENCH_STRICT=1 fails when a goal is missed (query < 20 ms, writes >= 1 GB/s).
set -euo pipefail

BUILD=${1:-build}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=$BUILD/bench
for f in "$BUILD/lib/libsim.a" "$BUILD/lib/libhyperv.a"; do
	[[ -f $f ]] || { echo "bench-host: $f missing (run make first)" >&2; exit 1; }
done
mkdir -p "$OUT"
LIBS=("$BUILD/lib/libsim.a" "$BUILD/lib/libhyperv.a" -lisal -lsqlite3 -lxml2 -lxxhash -lm)
CF=(-std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror $(pkg-config --cflags libxml-2.0))
cc "${CF[@]}" -o "$OUT/bench_host" ci/bench/bench_host.c "${LIBS[@]}"
cc "${CF[@]}" -Isim/rct -Ihyperv/base -o "$OUT/bench_rct" ci/bench/bench_rct.c "${LIBS[@]}"
cc "${CF[@]}" -Isim/workload -Ihyperv/base -Ihyperv/vhdx -o "$OUT/bench_workload" ci/bench/bench_workload.c "${LIBS[@]}"

TMP=$(mktemp -d "$OUT/tmp.host.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
echo "bench-host: simulated host (2 TiB QueryChanges, guest writes) ..." >&2
"$OUT/bench_host" "$TMP" "${BENCH_RUNS:-5}" > "$TMP/host.json"
echo "bench-host: sim/rct alone ..." >&2
"$OUT/bench_rct" > "$TMP/rct.json"
echo "bench-host: workload generator ..." >&2
"$OUT/bench_workload" "$TMP" > "$TMP/workload.json"

exec /usr/bin/python3 - "$TMP" "$OUT/host.json" <<'PY'
import json, os, sys
tmp, out = sys.argv[1], sys.argv[2]
host = json.load(open(os.path.join(tmp, "host.json")))
rct = json.load(open(os.path.join(tmp, "rct.json")))
wl = json.load(open(os.path.join(tmp, "workload.json")))
res = {"host": host, "rct": rct, "workload": wl}
json.dump(res, open(out, "w"), indent=2, sort_keys=True)
rows = [
    ("QueryChanges 2 TiB, 100k blocks (host_rct_query)", f"{host['query_full_ms']:.2f} ms", "< 20 ms"),
    ("  same, paged 4096 ranges/call", f"{host['query_paged4096_ms']:.2f} ms ({host['query_paged4096_calls']} calls)", ""),
    ("  same via WMI GetVirtualDiskChanges", f"{host['wmi_getvirtualdiskchanges_ms']:.2f} ms", ""),
    ("  sim/rct alone, 1 epoch / 10 epochs", f"{rct.get('rct_query_ms_1epoch', 0):.2f} / {rct.get('rct_query_ms_10epochs', 0):.2f} ms", ""),
    ("sidecar bytes (100k blocks)", f"{host['sidecar_bytes']}", ""),
    ("guest writes sequential 1 MiB", f"{host['write_sequential_gbps']:.2f} GB/s ({host['write_sequential_vs_pwrite']:.2f}x pwrite)", ">= 1 GB/s"),
    ("guest writes random 1 MiB", f"{host['write_random_gbps']:.2f} GB/s ({host['write_random_vs_pwrite']:.2f}x pwrite)", ">= 1 GB/s"),
    ("anchor: pwrite same volume", f"{host['anchor_pwrite_gbps']:.2f} GB/s", ""),
]
for k in sorted(wl):
    if k.startswith("gen_gbps"):
        rows.append((f"generator {k[9:]}", f"{wl[k]:.2f} GB/s", ""))
w = max(len(r[0]) for r in rows)
for r in rows:
    print(f"{r[0]:<{w}}  {r[1]:<34} {r[2]}")
print(f"wrote {out}")
missed = []
if host["query_full_ms"] >= 20:
    missed.append("query")
if min(host["write_sequential_gbps"], host["write_random_gbps"]) < 1.0:
    missed.append("write throughput")
if missed and os.environ.get("BENCH_STRICT") == "1":
    print("bench-host: goals missed: " + ", ".join(missed), file=sys.stderr)
    sys.exit(1)
PY
