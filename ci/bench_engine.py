#!/usr/bin/python3
"""Engine benchmark (make bench → BUILD/bench/engine.json), through the Win32 read path:

- full backup of an 8 GiB dynamic disk holding 2 GiB of data, against the anchor measured in the
  same run: `cat` of the same VHDX file (the physical read of the bytes the host holds);
- an incremental after a 1 % change (82 MiB appended by the guest's sequential log);
- the same data and the same change set on a 1 TiB sparse disk: the incremental's time must follow
  the changed bytes, not the disk size (ratio 1 TiB / 8 GiB ≈ 1).

usage: ci/bench_engine.py --build BUILD [--runs N] [--tmp DIR] [--small]
(--small: 1 GiB / 256 MiB / 64 GiB instead of 8 GiB / 2 GiB / 1 TiB, for a quick look)
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def run(cmd, env):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if p.returncode:
        sys.exit(f"bench-engine: {' '.join(map(str, cmd))} failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--small", action="store_true")
    a = ap.parse_args()
    hvsim = os.path.join(a.build, "bin", "hvsim")
    hvb = os.path.join(a.build, "bin", "hvbackup")
    gib = 1 << 30
    size, data, big = (gib, 256 << 20, 64 * gib) if a.small else (8 * gib, 2 * gib, 1024 * gib)
    change = size // 100 // (1 << 20) * (1 << 20)
    tmp = tempfile.mkdtemp(prefix="bench-engine.", dir=a.tmp)
    env = dict(os.environ, HVSIM_NOSYNC="1")
    out = {"disk_bytes": size, "data_bytes": data, "change_bytes": change, "big_disk_bytes": big, "runs": a.runs}
    try:
        host = os.path.join(tmp, "host")
        run([hvsim, "host", "create", host, "--seed", "1"], env)
        run([hvsim, "--host", host, "vm", "create", "small", "--disk", f"{size}"], env)
        run([hvsim, "--host", host, "vm", "create", "big", "--disk", f"{big}"], env)
        for vm in ("small", "big"):  # the same bytes on both: same seed, same slot
            run([hvsim, "--host", host, "vm", "write", vm, "--pattern", "sequential", "--bytes", f"{data}",
                 "--io-size", "1MiB", "--seed", "5"], env)
        fulls, cats, incr = [], [], {"small": [], "big": []}
        vhdx = os.path.join(host, "small", "Virtual Hard Disks", "small.vhdx")
        for r in range(a.runs):
            repo = os.path.join(tmp, f"repo{r}")
            t0 = time.monotonic()
            full = json.loads(run([hvb, "backup", "--host", host, "--vm", "small", "--repo", repo, "--full", "--json"], env))
            fulls.append((time.monotonic() - t0, full))
            # anchor: the physical read of the same bytes (the disk's VHDX file)
            t0 = time.monotonic()
            subprocess.run(["cat", vhdx], stdout=subprocess.DEVNULL, check=True)
            cats.append((time.monotonic() - t0, os.path.getsize(vhdx)))
        for vm in ("small", "big"):
            repo = os.path.join(tmp, f"repo-{vm}")
            run([hvb, "backup", "--host", host, "--vm", vm, "--repo", repo, "--json"], env)  # the full (setup)
            for r in range(a.runs):
                run([hvsim, "--host", host, "vm", "write", vm, "--pattern", "sequential", "--bytes", f"{change}",
                     "--io-size", "64KiB", "--seed", str(100 + r)], env)
                t0 = time.monotonic()
                res = json.loads(run([hvb, "backup", "--host", host, "--vm", vm, "--repo", repo, "--json"], env))
                if res["type"] != "incremental":
                    sys.exit(f"bench-engine: expected an incremental on {vm}, got {res}")
                incr[vm].append((time.monotonic() - t0, res))
        med = lambda v: sorted(v)[len(v) // 2]
        fs = med([t for t, _ in fulls])
        full = fulls[0][1]
        cat_s = med([t for t, _ in cats])
        vsize = cats[0][1]
        out.update({
            "full_seconds": round(fs, 3),
            "full_bytes_read": full["bytes_read"],
            "full_bytes_stored": full["bytes_stored"],
            "full_virtual_gbps": round(full["bytes_read"] / fs / 1e9, 3),
            "full_data_gbps": round(data / fs / 1e9, 3),
            "cat_vhdx_bytes": vsize,
            "cat_seconds": round(cat_s, 3),
            "cat_gbps": round(vsize / cat_s / 1e9, 3),
            "full_data_vs_cat": round((data / fs) / (vsize / cat_s), 3),
        })
        for vm in ("small", "big"):
            t = med([x for x, _ in incr[vm]])
            out[f"incr_{vm}_seconds"] = round(t, 3)
            out[f"incr_{vm}_bytes_read"] = incr[vm][0][1]["bytes_read"]
            out[f"incr_{vm}_changed_gbps"] = round(change / t / 1e9, 3)
        out["incr_big_vs_small_time"] = round(out["incr_big_seconds"] / out["incr_small_seconds"], 3)
        dest = os.path.join(a.build, "bench", "engine.json")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "w") as f:
            json.dump(out, f, indent=2, sort_keys=True)
        G = lambda b: f"{b / gib:.1f} GiB"
        print(f"full backup, {G(size)} disk with {G(data)} data: {out['full_seconds']} s "
              f"({out['full_data_gbps']} GB/s of data; {out['full_virtual_gbps']} GB/s virtual)")
        print(f"  anchor: cat of the {G(vsize)} VHDX: {out['cat_seconds']} s ({out['cat_gbps']} GB/s); "
              f"ratio data rate / cat = {out['full_data_vs_cat']}")
        print(f"incremental after a {change >> 20} MiB change: {G(size)} disk {out['incr_small_seconds']} s, "
              f"{G(big)} disk {out['incr_big_seconds']} s (ratio {out['incr_big_vs_small_time']}; "
              f"bytes read {out['incr_small_bytes_read']} / {out['incr_big_bytes_read']})")
        print(f"wrote {dest}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
