#!/usr/bin/python3
"""VHDX benchmark: hvsim vs qemu-img (import/export) and vs libvhdi (full read), plus the memory
footprint of hvsim on 64 TiB sparse disks. Run by ci/bench-vhdx.sh (make bench); stdlib only.

Every timed command runs as a child process; wall time is time.monotonic() around it and peak
RSS is ru_maxrss of that very child (os.wait4), in KiB. Each measurement is one untimed warm-up
run followed by RUNS timed runs (warm page cache); the median is reported. Generation of the
input is not timed. GB/s = 1e9 bytes per second of *virtual disk* bytes (4 GiB), the amount a
converter or reader has to cover; data_gbps_* use the 400 MiB of non-zero data instead.

Output: BUILD/bench/vhdx.json and a short table on stdout. Exit 1 when a command fails or the
readers/exports disagree with the raw image's checksum; performance goals are reported in the
JSON ("goal_met") and fail the run only with BENCH_STRICT=1.
"""
import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

GIB = 1 << 30
MIB = 1 << 20
TIB = 1 << 40

VIRTUAL_SIZE = 4 * GIB
EXTENTS = 100
EXTENT_LEN = 4 * MIB
STRIDE = 40 * MIB
FIRST = 30 * MIB  # 30 MiB + i*40 MiB: a quarter of the extents straddle a 32 MiB block boundary
AES_KEY = "000102030405060708090a0b0c0d0e0f"
AES_IV = "f0e0d0c0b0a090807060504030201000"
SEED = 20240501
MEM_GOAL_KIB = 64 * 1024


class BenchError(Exception):
    pass


def log(msg):
    print(msg, flush=True)


TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
RSS_FILE = None  # set in main(): where /usr/bin/time writes the peak RSS


def run(cmd, stdout=subprocess.DEVNULL):
    """Runs cmd; returns (wall seconds, peak RSS KiB, stdout bytes or None). Raises on failure.

    Peak RSS comes from /usr/bin/time -f %M: ru_maxrss of a child forked straight from this
    Python process would report Python's own RSS (Linux carries the forking mm's high-water
    mark across exec), so the resource-module fallback is an upper bound only."""
    full = [TIME, "-f", "%M", "-o", RSS_FILE, "--"] + cmd if TIME else cmd
    t0 = time.monotonic()
    p = subprocess.Popen(full, stdout=stdout, stderr=subprocess.PIPE)
    out = p.stdout.read() if stdout == subprocess.PIPE else None
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise BenchError("command failed (exit %d): %s\n%s" % (p.returncode, " ".join(cmd),
                                                                err.decode(errors="replace")))
    if TIME:
        with open(RSS_FILE) as f:
            kib = int(f.read().split()[-1])
    else:
        kib = ru.ru_maxrss
    return dt, kib, out


def rm(*paths):
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def measure_pair(a, b, runs=3, stdout=subprocess.DEVNULL):
    """a, b: (cmd, outputs). One untimed warm-up of each, then `runs` rounds alternating the
    order (ab, ba, ab, ...) so slow phases of a shared host hit both sides alike. Outputs are
    deleted and the page cache written back (sync, untimed) before every run, so no run pays
    for the previous run's writeback. Returns two dicts(median, runs, rss_kib (max), stdouts)."""
    res = [{"runs": [], "rss": [], "stdouts": []} for _ in (a, b)]
    for i in range(runs + 1):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for k in order:
            cmd, outputs = (a, b)[k]
            rm(*outputs)
            os.sync()
            dt, kib, out = run(cmd, stdout=stdout)
            if i == 0:
                continue  # warm-up
            res[k]["runs"].append(dt)
            res[k]["rss"].append(kib)
            res[k]["stdouts"].append(out)
    for k in (0, 1):
        rm(*(a, b)[k][1])
    return [{"median": statistics.median(r["runs"]), "runs": r["runs"], "rss_kib": max(r["rss"]),
             "stdouts": r["stdouts"]} for r in res]


def show(cmd, hv, tmp):
    """Command line for the JSON, without host-specific paths."""
    return " ".join("hvsim" if c == hv else c.replace(tmp, "$TMP") for c in cmd)


def file_sizes(path):
    st = os.stat(path)
    return {"apparent_bytes": st.st_size, "allocated_bytes": st.st_blocks * 512}


def cmd_out(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def host_info(tmp):
    cpu, flags = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                k = k.strip()
                if k == "model name" and not cpu:
                    cpu = v.strip()
                elif k == "flags" and not flags:
                    flags = set(v.split())
    except OSError:
        pass
    mem_kib = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "nproc_usable": len(os.sched_getaffinity(0)),
        "cpu_model": cpu,
        "cpu_flags": sorted(flags & {"sse4_2", "avx", "avx2", "avx512f", "sha_ni", "aes"}),
        "mem_total_kib": mem_kib,
        "kernel": platform.release(),
        "fs_type": cmd_out(["findmnt", "-n", "-o", "FSTYPE", "-T", tmp]) or cmd_out(["stat", "-f", "-c", "%T", tmp]),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "qemu_img": cmd_out(["qemu-img", "--version"]).splitlines()[0] if cmd_out(["qemu-img", "--version"]) else "",
        "libvhdi": cmd_out(["pkg-config", "--modversion", "libvhdi"]),
        "cc": (cmd_out(["cc", "--version"]).splitlines() or [""])[0],
        "git_commit": cmd_out(["git", "rev-parse", "HEAD"]),
        "git_dirty": bool(cmd_out(["git", "status", "--porcelain", "--untracked-files=no"])),
    }


def generate_raw(path):
    """4 GiB sparse raw file; EXTENTS x 4 MiB of AES-128-CTR keystream (fixed key) at a fixed
    stride. Falls back to random.Random(SEED).randbytes when openssl is missing."""
    total = EXTENTS * EXTENT_LEN
    h = hashlib.sha256()
    src = "openssl enc -aes-128-ctr (key %s, iv %s) of /dev/zero" % (AES_KEY, AES_IV)
    proc = None
    if shutil.which("openssl"):
        proc = subprocess.Popen(["openssl", "enc", "-aes-128-ctr", "-nosalt", "-K", AES_KEY, "-iv", AES_IV,
                                 "-in", "/dev/zero"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    else:
        import random
        rnd = random.Random(SEED)
        src = "python random.Random(%d).randbytes" % SEED
    with open(path, "wb") as f:
        f.truncate(VIRTUAL_SIZE)
        for i in range(EXTENTS):
            if proc:
                chunk = proc.stdout.read(EXTENT_LEN)
                if len(chunk) != EXTENT_LEN:
                    raise BenchError("openssl produced a short stream")
            else:
                chunk = rnd.randbytes(EXTENT_LEN)
            h.update(chunk)
            f.seek(FIRST + i * STRIDE)
            f.write(chunk)
    if proc:
        proc.stdout.close()
        proc.kill()
        proc.wait()
    return {
        "virtual_bytes": VIRTUAL_SIZE,
        "data_bytes": total,
        "extents": EXTENTS,
        "extent_bytes": EXTENT_LEN,
        "first_extent_offset": FIRST,
        "stride_bytes": STRIDE,
        "generator": src,
        "data_sha256": h.hexdigest(),
    }


def parse_reader(out):
    kv = dict(x.split("=", 1) for x in out.decode().split())
    return kv["checksum"], int(kv["bytes"]), float(kv["seconds"])


def result(name, anchor, ours, anc, basis_bytes, data_bytes, extra):
    r = {
        "name": name,
        "ours_s": round(ours["median"], 4),
        "anchor": anchor,
        "anchor_s": round(anc["median"], 4),
        "ratio": round(ours["median"] / anc["median"], 3),
        "ours_rss_kib": ours["rss_kib"],
        "anchor_rss_kib": anc["rss_kib"],
        "gbps_ours": round(basis_bytes / ours["median"] / 1e9, 3),
        "gbps_anchor": round(basis_bytes / anc["median"] / 1e9, 3),
        "gbps_basis": "virtual disk bytes (%d) / s, GB = 1e9" % basis_bytes,
        "data_gbps_ours": round(data_bytes / ours["median"] / 1e9, 3),
        "data_gbps_anchor": round(data_bytes / anc["median"] / 1e9, 3),
        "ours_runs_s": [round(t, 4) for t in ours["runs"]],
        "anchor_runs_s": [round(t, 4) for t in anc["runs"]],
    }
    r.update(extra)
    r["goal_met"] = r["ratio"] <= 1.0
    return r


def check_raw(rd_ours, path, raw_sum, vb, what):
    _, _, out = run([rd_ours, "--raw", path], stdout=subprocess.PIPE)
    s, n, _ = parse_reader(out)
    if s != raw_sum or n != vb:
        raise BenchError("%s: %s has checksum %s / %d bytes, the raw image %s / %d" % (what, path, s, n, raw_sum, vb))


def check_vhdx(rd_ours, path, raw_sum, vb, what):
    _, _, out = run([rd_ours, path], stdout=subprocess.PIPE)
    s, n, _ = parse_reader(out)
    if s != raw_sum or n != vb:
        raise BenchError("%s: %s reads as checksum %s / %d bytes, the raw image is %s / %d"
                         % (what, path, s, n, raw_sum, vb))


def bench_convert(args, tmp, raw, raw_sum, info):
    hv, rd_ours, rd_vhdi = args.hvsim, args.read_ours, args.read_vhdi
    runs = args.runs
    vb, db = info["virtual_bytes"], info["data_bytes"]
    results = []
    ours_vhdx = os.path.join(tmp, "ours.vhdx")
    qv = os.path.join(tmp, "qemu.vhdx")
    # the inputs of the export and read benchmarks (made once, checked against the raw image)
    run([hv, "vhdx", "import", raw, ours_vhdx])
    run(["qemu-img", "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=dynamic,block_size=32M", raw, qv])
    for p in (ours_vhdx, qv):
        check_vhdx(rd_ours, p, raw_sum, vb, "import")

    # ---- import -------------------------------------------------------------------------
    o_imp = os.path.join(tmp, "imp_ours.vhdx")
    q_imp = os.path.join(tmp, "imp_qemu.vhdx")
    qconv = ["qemu-img", "convert", "-f", "raw", "-O", "vhdx"]
    # Rows: default vs default (ours flushes its output, qemu-img's default cache=unsafe does not),
    # then like for like: neither flushes (ours --no-sync), both flush (qemu-img -t writeback).
    variants = (
        ("import", "qemu-img convert -f raw -O vhdx -o subformat=dynamic,block_size=32M",
         qconv + ["-o", "subformat=dynamic,block_size=32M"], 32 * MIB, False, True),
        ("import_no_sync_vs_anchor_default", "qemu-img convert -f raw -O vhdx -o subformat=dynamic,block_size=32M",
         qconv + ["-o", "subformat=dynamic,block_size=32M"], 32 * MIB, False, False),
        ("import_anchor_auto_block_size", "qemu-img convert -f raw -O vhdx -o subformat=dynamic",
         qconv + ["-o", "subformat=dynamic"], None, False, True),
        ("import_anchor_flushed", "qemu-img convert -t writeback -f raw -O vhdx -o subformat=dynamic,block_size=32M",
         qconv + ["-t", "writeback", "-o", "subformat=dynamic,block_size=32M"], 32 * MIB, True, True),
    )
    for name, anchor, qcmd, qbs, qflush, oflush in variants:
        ours_cmd = ([hv, "vhdx", "import", raw, o_imp] + ([] if oflush else ["--no-sync"]), [o_imp])
        log("%s: hvsim vhdx import vs %s ..." % (name, anchor))
        # sizes and block size of one output of each side, for the record
        rm(o_imp, q_imp)
        run(ours_cmd[0])
        run(qcmd + [raw, q_imp])
        if qbs is None:
            qbs = json.loads(cmd_out(["qemu-img", "info", "--output=json", q_imp]) or "{}").get("cluster-size")
        sizes = {"ours_output": file_sizes(o_imp), "anchor_output": file_sizes(q_imp)}
        ours, anc = measure_pair(ours_cmd, (qcmd + [raw, q_imp], [q_imp]), runs)
        extra = {"ours_block_size": 32 * MIB, "anchor_block_size": qbs,
                 "ours_flushes_output": oflush, "anchor_flushes_output": qflush}
        extra.update(sizes)
        results.append(result(name, anchor, ours, anc, vb, db, extra))

    # ---- export (both tools on the same input; once on qemu's file, once on ours) ----------
    out_ours = os.path.join(tmp, "export_ours.raw")
    out_q = os.path.join(tmp, "export_qemu.raw")
    qexp = ["qemu-img", "convert", "-f", "vhdx", "-O", "raw"]
    for name, label, src, qopts, qflush, oflush in (
            ("export_from_qemu_vhdx", "qemu", qv, [], False, True),
            ("export_from_qemu_vhdx_no_sync_vs_anchor_default", "qemu", qv, [], False, False),
            ("export_from_hvsim_vhdx", "hvsim", ours_vhdx, [], False, True),
            ("export_from_hvsim_vhdx_no_sync_vs_anchor_default", "hvsim", ours_vhdx, [], False, False),
            ("export_from_hvsim_vhdx_anchor_flushed", "hvsim", ours_vhdx, ["-t", "writeback"], True, True)):
        ons = [] if oflush else ["--no-sync"]
        anchor = " ".join(qexp[:2] + qopts + qexp[2:])
        log("%s: hvsim vhdx export vs %s ..." % (name, anchor))
        # correctness of both outputs, then the timing
        rm(out_ours, out_q)
        run([hv, "vhdx", "export", src, out_ours] + ons)
        run(qexp + qopts + [src, out_q])
        if not qopts:
            check_raw(rd_ours, out_ours, raw_sum, vb, "export by hvsim of the %s-made VHDX" % label)
            check_raw(rd_ours, out_q, raw_sum, vb, "export by qemu-img of the %s-made VHDX" % label)
        sizes = {"ours_output": file_sizes(out_ours), "anchor_output": file_sizes(out_q)}
        ours, anc = measure_pair(([hv, "vhdx", "export", src, out_ours] + ons, [out_ours]),
                                 (qexp + qopts + [src, out_q], [out_q]), runs)
        extra = {"input": "%s-made dynamic VHDX, 32 MiB blocks" % label,
                 "ours_flushes_output": oflush, "anchor_flushes_output": qflush, "checksum_ok": True}
        extra.update(sizes)
        results.append(result(name, anchor, ours, anc, vb, db, extra))

    # ---- full read through the libraries ------------------------------------------------
    for label, src in (("qemu", qv), ("hvsim", ours_vhdx)):
        log("read_full_%s_vhdx: libhyperv vhdx_read vs libvhdi ..." % label)
        ours, anc = measure_pair(([rd_ours, src], ()), ([rd_vhdi, src], ()), runs, stdout=subprocess.PIPE)
        cs = set()
        for who, m in (("ours", ours), ("libvhdi", anc)):
            for out in m["stdouts"]:
                s, n, _ = parse_reader(out)
                if n != vb:
                    raise BenchError("full read (%s of %s VHDX): %d bytes, expected %d" % (who, label, n, vb))
                cs.add((who, s))
        if {s for _, s in cs} != {raw_sum}:
            raise BenchError("full read of the %s-made VHDX: checksums disagree: %s (raw image: %s)"
                             % (label, sorted(cs), raw_sum))
        results.append(result("read_full_%s_vhdx" % label,
                              "libvhdi_file_read_buffer_at_offset (4 MiB chunks)", ours, anc, vb, db, {
                                  "input": "%s-made dynamic VHDX, 32 MiB blocks" % label,
                                  "chunk_bytes": 4 * MIB, "checksum": raw_sum, "checksum_ok": True}))
    rm(ours_vhdx, qv)
    return results


def bench_memory(args, tmp):
    hv = args.hvsim
    mem = []
    for bs_label, bs_args in (("32MiB", []), ("1MiB", ["--block-size", "1MiB"])):
        big = os.path.join(tmp, "big_%s.vhdx" % bs_label)
        rm(big)
        log("memory: 64 TiB dynamic disk, %s blocks ..." % bs_label)
        desc = "64 TiB dynamic, %s blocks" % bs_label

        def entry(op, cmd, dt, kib, extra=None):
            e = {"name": op, "disk": desc, "command": show(cmd, hv, tmp),
                 "seconds": round(dt, 4), "rss_kib": kib, "goal_rss_kib": MEM_GOAL_KIB,
                 "goal_met": kib < MEM_GOAL_KIB}
            if extra:
                e.update(extra)
            return e

        cmd = [hv, "vhdx", "create", big, "--size", "64TiB"] + bs_args
        dt, kib, _ = run(cmd)
        mem.append(entry("create", cmd, dt, kib, extra={"file": file_sizes(big)}))
        cmd = [hv, "vhdx", "info", big]
        dt, kib, _ = run(cmd)
        mem.append(entry("info", cmd, dt, kib))
        for label, off in (("0", "0"), ("40TiB", "40TiB"), ("64TiB-1MiB", "%d" % (64 * TIB - MIB))):
            cmd = [hv, "vhdx", "read", big, "--offset", off, "--length", "1MiB", "--to", "/dev/null"]
            dt, kib, _ = run(cmd)
            mem.append(entry("read_unallocated@" + label, cmd, dt, kib))
        cmd = [hv, "vhdx", "write", big, "--offset", "40TiB", "--pattern", "0xAA", "--length", "1MiB"]
        dt, kib, _ = run(cmd)
        mem.append(entry("write@40TiB", cmd, dt, kib, extra={"file": file_sizes(big)}))
        cmd = [hv, "vhdx", "read", big, "--offset", "40TiB", "--length", "1MiB"]
        # read back through a pipe and check the pattern
        dt, kib, data = run(cmd, stdout=subprocess.PIPE)
        if data != b"\xaa" * MIB:
            raise BenchError("memory: read-back of the 1 MiB written at 40 TiB (%s) is wrong" % desc)
        mem.append(entry("read_allocated@40TiB", cmd, dt, kib))
        cmd = [hv, "vhdx", "check", big]
        dt, kib, _ = run(cmd)
        mem.append(entry("check", cmd, dt, kib))
        cmd = ["qemu-img", "info", big]
        try:
            dt, kib, _ = run(cmd)
            e = entry("anchor:qemu-img info", cmd, dt, kib)
            e.pop("goal_met")
            e.pop("goal_rss_kib")
            mem.append(e)
        except BenchError as ex:
            log("  (qemu-img info failed: %s)" % str(ex).splitlines()[0])
        rm(big)
    return mem


def print_table(doc):
    log("")
    log("%-38s %8s %8s %6s %9s %9s %11s %11s" % ("benchmark", "ours s", "anchor s", "ratio", "ours GB/s",
                                                "anch GB/s", "ours RSS", "anchor RSS"))
    for r in doc["results"]:
        log("%-38s %8.3f %8.3f %6.2f %9.2f %9.2f %7d KiB %7d KiB%s" % (
            r["name"], r["ours_s"], r["anchor_s"], r["ratio"], r["gbps_ours"], r["gbps_anchor"],
            r["ours_rss_kib"], r["anchor_rss_kib"], "" if r["goal_met"] else "  <-- ratio > 1"))
    log("(GB/s over the %d-byte virtual disk; anchors: import/export qemu-img %s, full read libvhdi %s)"
        % (VIRTUAL_SIZE, doc["host"]["qemu_img"].split()[2] if doc["host"]["qemu_img"] else "?",
           doc["host"]["libvhdi"]))
    log("")
    log("%-26s %-27s %8s %11s" % ("memory (hvsim)", "disk", "seconds", "peak RSS"))
    for m in doc["memory"]:
        flag = "" if m.get("goal_met", True) else "  <-- >= 64 MiB"
        log("%-26s %-27s %8.3f %7d KiB%s" % (m["name"], m["disk"], m["seconds"], m["rss_kib"], flag))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--hvsim", required=True)
    ap.add_argument("--read-ours", required=True)
    ap.add_argument("--read-vhdi", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()
    for a in ("hvsim", "read_ours", "read_vhdi"):
        setattr(args, a, os.path.abspath(getattr(args, a)))
    for tool in ("qemu-img",):
        if not shutil.which(tool):
            raise BenchError("%s not found (run ci/deps.sh)" % tool)

    bench_dir = os.path.join(args.build, "bench")
    tmp = os.path.abspath(os.path.join(bench_dir, "tmp"))
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    global RSS_FILE
    RSS_FILE = os.path.join(tmp, "rss.txt")
    t_start = time.monotonic()
    try:
        raw = os.path.join(tmp, "input.raw")
        log("generating %s (4 GiB sparse, %d x 4 MiB pseudo-random extents) ..." % (raw, EXTENTS))
        info = generate_raw(raw)
        # ground truth checksum (also pulls the data into the page cache)
        _, _, out = run([args.read_ours, "--raw", raw], stdout=subprocess.PIPE)
        raw_sum, n, _ = parse_reader(out)
        info["checksum"] = raw_sum
        info["checksum_kind"] = "ci/bench/bench_read.h: per 4 MiB chunk, 8 lane sums of 64-bit words, mixed with the chunk offset"
        info["path"] = "BUILD/bench/tmp/input.raw (deleted after the run)"
        doc = {"schema": 1, "host": host_info(tmp), "input": info,
               "method": {"runs": args.runs, "statistic": "median of timed runs after 1 untimed warm-up; ours and anchor runs interleaved",
                          "cache": "warm (sync before every run, untimed)", "clock": "time.monotonic around the child process",
                          "rss": ("peak RSS of the command, KiB, from /usr/bin/time -f %M" if TIME else
                                  "ru_maxrss via os.wait4 (upper bound: includes the forking Python's RSS)"),
                          "ratio": "ours_s / anchor_s (<= 1.0: hvsim not slower)"}}
        doc["results"] = bench_convert(args, tmp, raw, raw_sum, info)
        doc["memory"] = bench_memory(args, tmp)
        doc["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        doc["total_seconds"] = round(time.monotonic() - t_start, 1)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    path = os.path.join(bench_dir, "vhdx.json")
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)
    print_table(doc)
    log("\nwrote %s (%.0f s)" % (path, doc["total_seconds"]))
    missed = [r["name"] for r in doc["results"] if not r["goal_met"]] + \
             ["%s (%s)" % (m["name"], m["disk"]) for m in doc["memory"] if m.get("goal_met") is False]
    if missed:
        log("goals missed: " + ", ".join(missed))
        if os.environ.get("BENCH_STRICT") == "1":
            return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print("bench-vhdx: FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)
