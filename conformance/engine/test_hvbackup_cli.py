"""The hvbackup command line used as a user would, against hosts built with the hvsim CLI.

Every command form of the engine issue (backup with/without --full, --path win32, --json; list
and list --json; restore to OUT.raw and OUT.vhdx; verify with/without --point; forget
--keep-last N), exit codes and messages, and the scenarios of the issue: incrementals, fallbacks
to full (RCT reset, resize, reference point destroyed by another tool, change tracking disabled),
dedup across VMs, job trajectories, crash-consistent fallback, a stale recovery checkpoint, host
quirks (reverse disk order in reference points, paged change queries), the crash hooks,
forget/prune and damage detection. Scratch folders live on /dev/shm when it exists (restore
fsyncs its output; a busy disk would dominate the run).

Oracles are independent of the engine:
- disk content: `qemu-img convert -f vhdx -O raw` of the VM's current file, taken right after a
  backup with no guest write since (a successful backup leaves the chain merged, which is checked:
  qemu-img 7.2 cannot open differencing VHDX files, so the oracle is only ever taken of a plain
  .vhdx), paired with the restored disk by its VirtualDiskId from `hvsim vhdx info --json`.
  qemu-img 7.2 also refuses 4096-byte logical sectors; those disks are read with libvhdi
  (python3-libvhdi, ci/deps.sh) instead;
- restored .vhdx files: `qemu-img check`, `qemu-img compare` against the restored raw (libvhdi
  for 4096-byte sectors), and `hvsim vhdx check`;
- host leftovers: `hvsim wmi query` (recovery checkpoints, reference points) and the files in
  `<host>/<vm>/Virtual Hard Disks/`;
- virtual time: `hvsim clock` before and after, and a CIM datetime computed here;
- repository size: the bytes of the files under REPO/packs.
"""
import datetime
import filecmp
import glob
import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import pytest

ROOT = os.environ.get("HVSIM_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
HVSIM = os.path.abspath(os.environ.get("HVSIM") or os.path.join(ROOT, "build", "bin", "hvsim"))
HVBACKUP = os.path.abspath(os.path.join(os.environ.get("HVSIM_BUILD") or os.path.join(ROOT, "build"),
                                        "bin", "hvbackup"))
ENV = dict(os.environ, HVSIM_NOSYNC="1")
for _k in ("HVBACKUP_CRASH_AFTER_BLOCKS", "HVBACKUP_CRASH_AT_COMMIT", "HVSIM_HOST"):
    ENV.pop(_k, None)
MiB = 1 << 20
RPSVC = ('Msvm_VirtualSystemReferencePointService.CreationClassName="Msvm_VirtualSystemReferencePointService",'
         'Name="vsrpsvc",SystemCreationClassName="Msvm_ComputerSystem",SystemName="HVSIM-HOST"')
RECOVERY_WQL = ("SELECT * FROM Msvm_VirtualSystemSettingData "
                "WHERE VirtualSystemType='Microsoft:Hyper-V:Snapshot:Recovery'")


def _run(cmd, code, env=None):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env or ENV, timeout=120)
    if code is not None:
        assert p.returncode == code, (cmd, p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    return p


def hv(*args, host=None, code=0):
    return _run([HVSIM] + (["--host", host] if host else []) + list(args), code)


def hb(*args, code=0, env=None):
    e = dict(ENV, **(env or {}))
    return _run([HVBACKUP] + list(args), code, e)


def q(host, wql):
    return json.loads(hv("wmi", "query", wql, "--json", host=host).stdout)


def backup(host, vm, repo, *extra, code=0, env=None):
    """hvbackup backup … --json; returns the parsed summary (or the process when code != 0)."""
    p = hb("backup", "--host", host, "--vm", vm, "--repo", repo, *extra, "--json", code=code, env=env)
    if code != 0:
        return p
    out = json.loads(p.stdout)
    return out


def list_points(repo):
    return json.loads(hb("list", "--repo", repo, "--json").stdout)


def new_host(path, seed, vms):
    """vms: {name: [disk spec, …]}"""
    hv("host", "create", path, "--seed", seed)
    for name, disks in vms.items():
        args = []
        for d in disks:
            args += ["--disk", d]
        hv("vm", "create", name, *args, host=path)
    return str(path)


def write(host, vm, pattern, size, seed, *extra):
    hv("vm", "write", vm, "--pattern", pattern, "--bytes", size, "--seed", seed, *extra, host=host)


def vm_guid(host, vm):
    r = q(host, f"SELECT * FROM Msvm_ComputerSystem WHERE ElementName='{vm}'")
    assert len(r) == 1
    return r[0]["Name"].upper()


def ref_points(host, vm):
    g = vm_guid(host, vm)
    return [r for r in q(host, "SELECT * FROM Msvm_VirtualSystemReferencePoint")
            if r["VirtualSystemIdentifier"].upper() == g]


def recovery_checkpoints(host):
    return q(host, RECOVERY_WQL)


def vhd_dir(host, vm):
    return os.path.join(host, vm, "Virtual Hard Disks")


def assert_host_clean(host, vm):
    """What a successful backup must leave: no recovery checkpoint, exactly one reference point for
    the VM, the chain merged (no .avhdx left)."""
    assert recovery_checkpoints(host) == []
    rps = ref_points(host, vm)
    assert len(rps) == 1, [r["InstanceID"] for r in rps]
    assert glob.glob(os.path.join(vhd_dir(host, vm), "*.avhdx")) == []


def disk_ids(host, vm):
    """{VirtualDiskId (upper, no braces): (path of the VM's .vhdx, logical sector size)} from
    `hvsim vhdx info --json`."""
    out = {}
    for f in sorted(glob.glob(os.path.join(vhd_dir(host, vm), "*.vhdx"))):
        info = json.loads(hv("vhdx", "info", f, "--json").stdout)
        out[info["disk_id"].strip("{}").upper()] = (f, info["logical_sector_size"])
    return out


def libvhdi_to_raw(src, dst):
    """libvhdi (python3-libvhdi) reading of a VHDX into a raw file: the second independent reader,
    for what qemu-img 7.2 refuses (4096-byte logical sectors: 'Operation not supported')."""
    import pyvhdi
    f = pyvhdi.file()
    f.open(src)
    try:
        size = f.get_media_size()
        with open(dst, "wb") as o:
            o.truncate(size)
            pos = 0
            while pos < size:
                n = min(4 * MiB, size - pos)
                buf = f.read_buffer_at_offset(n, pos)
                assert len(buf) == n
                if buf.count(0) != n:
                    o.seek(pos)
                    o.write(buf)
                pos += n
    finally:
        f.close()


def oracle(host, vm, dst_dir, tag):
    """The VM's current disk content read by qemu-img (libvhdi for 4096-byte sectors):
    {VirtualDiskId: raw path}. Only valid right after a backup with no guest write since, or before
    any checkpoint exists: the chain is then a single .vhdx (checked)."""
    assert glob.glob(os.path.join(vhd_dir(host, vm), "*.avhdx")) == [], "chain not merged"
    os.makedirs(dst_dir, exist_ok=True)
    out = {}
    for did, (f, sector) in disk_ids(host, vm).items():
        dst = os.path.join(dst_dir, f"{tag}_{did}.raw")
        if sector == 512:
            _run(["qemu-img", "convert", "-m", "1", "-t", "unsafe", "-f", "vhdx", "-O", "raw", f, dst], 0)
        else:
            libvhdi_to_raw(f, dst)
        out[did] = dst
    return out


def point(repo, pid):
    pts = [p for p in list_points(repo) if p["id"] == pid]
    assert len(pts) == 1, (pid, [p["id"] for p in list_points(repo)])
    return pts[0]


def restore(repo, vm, pid, disk, to, code=0):
    return hb("restore", "--repo", repo, "--vm", vm, "--point", pid, "--disk", disk, "--to", to, code=code)


def assert_point_restores(repo, vm, pid, expected, workdir):
    """Every disk of point pid restores to a raw equal (bytes and size) to the oracle raw of the disk
    with the same VirtualDiskId."""
    p = point(repo, pid)
    assert p["vm"] == vm
    assert sorted(d["disk_id"].strip("{}").upper() for d in p["disks"]) == sorted(expected)
    for d in p["disks"]:
        out = os.path.join(workdir, f"restored_p{pid}_{d['name']}.raw")
        if os.path.exists(out):
            os.unlink(out)
        restore(repo, vm, pid, d["name"], out)
        exp = expected[d["disk_id"].strip("{}").upper()]
        assert os.path.getsize(out) == os.path.getsize(exp) == d["size"]
        assert filecmp.cmp(out, exp, shallow=False), f"point {pid} disk {d['name']} differs from {exp}"
        os.unlink(out)


def pack_bytes(repo):
    total = 0
    for root, _, files in os.walk(os.path.join(repo, "packs")):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


def clock(host):
    return int(hv("clock", host=host).stdout.strip())


def cim_datetime(ticks):
    t = datetime.datetime(1601, 1, 1) + datetime.timedelta(microseconds=ticks // 10)
    return t.strftime("%Y%m%d%H%M%S.%f") + "+000"


def destroy_ref_point(host, path):
    out = json.loads(hv("wmi", "invoke", RPSVC, "DestroyReferencePoint", f"AffectedReferencePoint={path}",
                        "--json", host=host).stdout)
    if out["ReturnValue"] == 4096:
        job = json.loads(hv("wmi", "wait", out["Job"], "--json", host=host).stdout)
        assert job["JobState"] == 7, job
    else:
        assert out["ReturnValue"] == 0, out


SUMMARY_KEYS = {"id", "vm", "type", "reason", "path", "disks", "bytes_changed", "bytes_read", "bytes_stored",
                "bytes_dedup", "consistency", "stale_checkpoints_removed", "leaked_reference_points_removed",
                "seconds"}


def check_summary(s, vm, ndisks):
    assert SUMMARY_KEYS <= set(s), set(s) ^ SUMMARY_KEYS
    assert isinstance(s["id"], int) and s["id"] > 0
    assert s["vm"] == vm and s["path"] == "win32" and s["disks"] == ndisks
    assert s["type"] in ("full", "incremental") and isinstance(s["reason"], str) and s["reason"]
    for k in ("bytes_changed", "bytes_read", "bytes_stored", "bytes_dedup"):
        assert isinstance(s[k], int) and s[k] >= 0, k
    assert s["consistency"] in ("application", "crash")
    assert isinstance(s["seconds"], (int, float)) and 0 <= s["seconds"] < 60


@pytest.fixture
def work(tmp_path):
    """A scratch folder on tmpfs when there is one: hvbackup restore fsyncs its output, which on a
    busy disk costs more than everything else here. Removed afterwards (it is RAM)."""
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else str(tmp_path)
    d = tempfile.mkdtemp(prefix="hvbackup-cli-", dir=base)
    try:
        yield pathlib.Path(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# command line surface


def test_help_and_usage_errors(work):
    p = hb("--help")
    for form in ("backup", "list", "restore", "verify", "forget", "--keep-last", "--point", "--full",
                 "--path win32", "--json"):
        assert form in p.stdout, form
    for cmd in ("backup", "list", "restore", "verify", "forget"):
        assert "usage" in hb(cmd, "--help").stdout
    p = hb(code=2)
    assert "usage" in p.stderr
    p = hb("frobnicate", code=2)
    assert "frobnicate" in p.stderr

    h = new_host(work / "h", 5, {"a": ["16MiB"]})
    repo = str(work / "r")
    p = hb("backup", "--vm", "a", "--repo", repo, code=2)
    assert "--host" in p.stderr
    p = hb("backup", "--host", h, "--repo", repo, code=2)
    assert "--vm" in p.stderr
    p = hb("backup", "--host", h, "--vm", "a", code=2)
    assert "--repo" in p.stderr
    p = hb("backup", "--host", h, "--vm", "a", "--repo", repo, "--path", "smoke", code=2)
    assert "smoke" in p.stderr
    p = hb("backup", "--host", h, "--vm", "a", "--repo", repo, "--bogus", code=2)
    assert "--bogus" in p.stderr
    p = hb("backup", "--host", h, "--vm", "a", "--repo", code=2)
    assert "--repo" in p.stderr
    p = hb("list", "--repo", repo, "stray", code=2)
    assert "stray" in p.stderr
    p = hb("list", code=2)
    assert "--repo" in p.stderr
    p = hb("forget", "--repo", repo, code=2)
    assert "--keep-last" in p.stderr
    p = hb("forget", "--repo", repo, "--keep-last", "0", code=2)
    assert "--keep-last" in p.stderr
    p = hb("restore", "--repo", repo, "--vm", "a", "--point", "1", "--disk", "a", code=2)
    assert "--to" in p.stderr
    p = hb("restore", "--repo", repo, "--vm", "a", "--point", "one", "--disk", "a", "--to",
           str(work / "o.raw"), code=2)
    assert "one" in p.stderr
    p = hb("verify", "--repo", repo, "--point", "x1", code=2)
    assert "x1" in p.stderr

    # unknown VM / host / repository
    p = backup(h, "ghost", repo, code=1)
    assert "ghost" in p.stderr
    p = backup(str(work / "nohost"), "a", repo, code=1)
    assert "nohost" in p.stderr
    p = hb("list", "--repo", str(work / "norepo"), code=None)
    assert p.returncode != 0 and "norepo" in p.stderr

    write(h, "a", "random", "1MiB", 1)
    s = backup(h, "a", repo)
    pid = s["id"]
    # unknown point / disk / wrong VM: exit 1 naming it, no output file
    out = work / "o.raw"
    p = restore(repo, "a", 999, "a", out, code=1)
    assert "999" in p.stderr
    p = restore(repo, "a", pid, "nodisk", out, code=1)
    assert "nodisk" in p.stderr
    p = restore(repo, "zz", pid, "a", out, code=1)
    assert "zz" in p.stderr
    p = hb("verify", "--repo", repo, "--point", "999", code=1)
    assert "999" in p.stderr
    p = restore(repo, "a", pid, "a", work / "nodir" / "o.raw", code=1)
    assert "nodir" in p.stderr
    assert not out.exists() and not os.path.exists(str(out) + ".partial")


# ---------------------------------------------------------------------------------------------
# full, incrementals, every command form, restores judged by qemu-img


def test_full_incrementals_list_restore_verify(work):
    h = new_host(work / "h", 21, {"web": ["32MiB", "16MiB,fixed,block=1MiB,sector=4096"]})
    repo, orc = str(work / "repo"), str(work / "oracle")
    expected = {}
    write(h, "web", "random", "4MiB", 1)

    c0 = clock(h)
    # form 1: plain text output
    p = hb("backup", "--host", h, "--vm", "web", "--repo", repo)
    m = re.match(r"point (\d+): full backup of web \((.*)\), 2 disk\(s\)", p.stdout)
    assert m, p.stdout
    p1 = int(m.group(1))
    c1 = clock(h)
    assert_host_clean(h, "web")
    expected[p1] = oracle(h, "web", orc, p1)
    sizes = {32 * MiB, 16 * MiB}

    # form 2: --path win32 --json, after a small change
    write(h, "web", "random", "1MiB", 2)
    s2 = backup(h, "web", repo, "--path", "win32")
    check_summary(s2, "web", 2)
    assert s2["type"] == "incremental", s2
    assert s2["id"] > p1
    assert 0 < s2["bytes_read"] <= 8 * MiB, s2  # far below the 48 MiB of disks
    assert s2["bytes_stored"] <= s2["bytes_read"]
    assert s2["consistency"] == "application"
    assert_host_clean(h, "web")
    expected[s2["id"]] = oracle(h, "web", orc, s2["id"])

    # form 3: --json, one disk only written
    write(h, "web", "zipf", "512KiB", 3, "--disk", "web_1")
    s3 = backup(h, "web", repo)
    check_summary(s3, "web", 2)
    assert s3["type"] == "incremental" and 0 < s3["bytes_read"] <= 4 * MiB, s3
    assert_host_clean(h, "web")
    expected[s3["id"]] = oracle(h, "web", orc, s3["id"])

    # form 4: no change at all → incremental reading nothing
    hv("clock", "advance", "1d02h", host=h)
    s4 = backup(h, "web", repo, "--path", "win32")
    assert s4["type"] == "incremental" and s4["bytes_read"] == 0 and s4["bytes_stored"] == 0, s4
    assert_host_clean(h, "web")
    expected[s4["id"]] = oracle(h, "web", orc, s4["id"])

    # form 5: --full forces a full even though the chain is fine; stores nothing new (dedup)
    write(h, "web", "random", "1MiB", 5)
    s5 = backup(h, "web", repo, "--full")
    check_summary(s5, "web", 2)
    assert s5["type"] == "full" and "full" in s5["reason"].lower(), s5
    assert s5["bytes_read"] == 48 * MiB
    assert_host_clean(h, "web")
    expected[s5["id"]] = oracle(h, "web", orc, s5["id"])
    write(h, "web", "random", "256KiB", 6)
    s6 = backup(h, "web", repo, "--path", "win32", "--full")
    assert s6["type"] == "full" and s6["bytes_dedup"] > 0, s6
    assert_host_clean(h, "web")
    expected[s6["id"]] = oracle(h, "web", orc, s6["id"])

    # list --json: oldest first, fields, virtual time, disks named for restore --disk
    pts = list_points(repo)
    assert [p["id"] for p in pts] == sorted(expected)
    types = {p1: "full", s2["id"]: "incremental", s3["id"]: "incremental", s4["id"]: "incremental",
             s5["id"]: "full", s6["id"]: "full"}
    vt = [p["vtime"] for p in pts]
    assert vt == sorted(vt) and len(set(vt)) == len(vt)
    assert c0 < pts[0]["vtime"] <= c1
    assert pts[3]["vtime"] - pts[2]["vtime"] >= (26 * 3600) * 10**7  # the clock advance shows
    for p in pts:
        assert {"id", "vm", "type", "reason", "vtime", "disks"} <= set(p)
        assert p["vm"] == "web" and p["type"] == types[p["id"]] and p["reason"]
        assert p["time"] == cim_datetime(p["vtime"])
        assert {d["size"] for d in p["disks"]} == sizes
        assert len({d["name"] for d in p["disks"]}) == 2
    assert pts[0]["reason"] == "no earlier backup of this VM" or "earlier" in pts[0]["reason"]
    # list (text)
    lines = hb("list", "--repo", repo).stdout.splitlines()
    assert len(lines) == len(pts)
    for line, p in zip(lines, pts):
        assert re.match(rf"\s*{p['id']}\s+web\s+{p['type']}\b", line), line
        for d in p["disks"]:
            assert d["name"] in line

    # restores: every point, every disk, byte-exact against qemu-img's reading at backup time
    for pid, exp in expected.items():
        assert_point_restores(repo, "web", pid, exp, str(work))

    # restore to .vhdx: qemu-img check, qemu-img compare with the restored raw, hvsim vhdx check
    for pid in (s2["id"], s5["id"]):
        for d in point(repo, pid)["disks"]:
            vx = str(work / f"p{pid}_{d['name']}.vhdx")
            raw = str(work / f"p{pid}_{d['name']}.raw")
            restore(repo, "web", pid, d["name"], vx)
            restore(repo, "web", pid, d["name"], raw)
            assert filecmp.cmp(raw, expected[pid][d["disk_id"].strip("{}").upper()], shallow=False)
            hv("vhdx", "check", vx)
            info = json.loads(hv("vhdx", "info", vx, "--json").stdout)
            assert info["virtual_size"] == d["size"]
            assert info["logical_sector_size"] == (4096 if d["size"] == 16 * MiB else 512)
            if info["logical_sector_size"] == 512:
                _run(["qemu-img", "check", "-f", "vhdx", vx], 0)
                p = _run(["qemu-img", "compare", "-f", "vhdx", "-F", "raw", vx, raw], 0)
                assert "identical" in p.stdout.lower()
            else:  # qemu-img 7.2 cannot open 4096-byte-sector VHDX: libvhdi reads it instead
                back = str(work / f"p{pid}_{d['name']}.libvhdi.raw")
                libvhdi_to_raw(vx, back)
                assert filecmp.cmp(back, raw, shallow=False)
            assert not os.path.exists(vx + ".partial") and not os.path.exists(raw + ".partial")

    # verify, with and without --point
    p = hb("verify", "--repo", repo)
    assert re.search(rf"verified {len(pts)} point", p.stdout), p.stdout
    for pid in expected:
        hb("verify", "--repo", repo, "--point", pid)


# ---------------------------------------------------------------------------------------------
# fallbacks to full


def test_rct_reset_forces_full(work):
    h = new_host(work / "h", 31, {"a": ["32MiB", "16MiB"]})
    repo = str(work / "r")
    write(h, "a", "random", "2MiB", 1)
    backup(h, "a", repo)
    write(h, "a", "random", "1MiB", 2)
    hv("fault", "rct-reset", "a", host=h)
    s = backup(h, "a", repo)
    assert s["type"] == "full" and "rct id unknown" in s["reason"], s
    assert s["bytes_read"] == 48 * MiB
    assert_host_clean(h, "a")
    assert_point_restores(repo, "a", s["id"], oracle(h, "a", str(work / "o"), 2), str(work))
    write(h, "a", "random", "256KiB", 3)
    s2 = backup(h, "a", repo)
    assert s2["type"] == "incremental" and s2["bytes_read"] < 8 * MiB, s2


def test_resize_forces_full(work):
    h = new_host(work / "h", 32, {"a": ["16MiB"]})
    repo = str(work / "r")
    write(h, "a", "random", "2MiB", 1)
    s1 = backup(h, "a", repo)
    o1 = oracle(h, "a", str(work / "o"), 1)
    assert_host_clean(h, "a")  # merged: the disk has no checkpoint, so it can be resized
    hv("fault", "resize", "a", "a", "24MiB", host=h)
    write(h, "a", "random", "1MiB", 2)
    s = backup(h, "a", repo)
    assert s["type"] == "full" and "resize" in s["reason"], s
    assert str(24 * MiB) in s["reason"] or "24" in s["reason"]
    assert_host_clean(h, "a")
    o2 = oracle(h, "a", str(work / "o"), 2)
    assert os.path.getsize(next(iter(o2.values()))) == 24 * MiB
    assert_point_restores(repo, "a", s["id"], o2, str(work))
    assert_point_restores(repo, "a", s1["id"], o1, str(work))


def test_resize_one_of_two_disks_reads_it_whole(work):
    """Multi-disk VM: the resized disk is read in full and named in the reason; the point is exact."""
    h = new_host(work / "h", 33, {"a": ["16MiB", "16MiB"]})
    repo = str(work / "r")
    write(h, "a", "random", "1MiB", 1)
    backup(h, "a", repo)
    hv("fault", "resize", "a", "a_1", "20MiB", host=h)
    s = backup(h, "a", repo)
    assert "resize" in s["reason"] and "a_1" in s["reason"], s
    assert s["bytes_read"] >= 20 * MiB
    assert_point_restores(repo, "a", s["id"], oracle(h, "a", str(work / "o"), 1), str(work))


def _ref_point_destroyed_by_other_tool(work):
    h = new_host(work / "h", 34, {"a": ["16MiB"]})
    repo = str(work / "r")
    write(h, "a", "random", "1MiB", 1)
    backup(h, "a", repo)
    rps = ref_points(h, "a")
    assert len(rps) == 1
    destroy_ref_point(h, rps[0]["__PATH"])
    assert ref_points(h, "a") == []
    write(h, "a", "random", "512KiB", 2)
    p = hb("backup", "--host", h, "--vm", "a", "--repo", repo, "--json")
    return h, repo, json.loads(p.stdout), p.stderr


def test_reference_point_destroyed_forces_full(work):
    h, repo, s, _ = _ref_point_destroyed_by_other_tool(work)
    assert s["type"] == "full" and "reference point" in s["reason"], s
    assert s["bytes_read"] == 16 * MiB
    assert_host_clean(h, "a")
    assert_point_restores(repo, "a", s["id"], oracle(h, "a", str(work / "o"), 1), str(work))


def test_reference_point_destroyed_no_spurious_warning(work):
    # Regression (was a bug): after the fallback to full, the engine still tries to destroy the previous point's
    # reference point (already gone, which it just established) and prints "hvbackup: warning:
    # could not destroy the previous reference point: DestroyReferencePoint returned 32773".
    # plan.c filters HV_ENOTFOUND / 0x80041002 but not the method's own not-found/invalid return.
    _, _, s, err = _ref_point_destroyed_by_other_tool(work)
    assert s["type"] == "full"
    assert "warning" not in err, err


def test_tracking_disabled_on_one_disk(work):
    # Regression (was a bug): with change tracking disabled on one disk (`hvsim fault tracking VM DISK off`) every
    # backup of the VM fails, even --full: "hvbackup: reference point …: empty RCT id for disk 0".
    # The host lists an empty ResilientChangeTrackingIdentifiers entry for the untracked disk in the
    # NEW reference point; eh_get_reference_point (engine/host/ehost.c) rejects any empty id as
    # HV_ECORRUPT, so plan_backup fails after ConvertToReferencePoint and rolls back. Expected: the
    # point commits with an empty RCT id for that disk, which is read in full (plan.c already has
    # the reasons "change tracking disabled" / "no RCT id for this disk in the previous reference
    # point" for that), and the other disks stay incremental.
    h = new_host(work / "h", 35, {"a": ["16MiB", "16MiB"]})
    repo = str(work / "r")
    write(h, "a", "random", "1MiB", 1)
    backup(h, "a", repo)
    hv("fault", "tracking", "a", "a", "off", host=h)
    write(h, "a", "random", "512KiB", 2)
    p = hb("backup", "--host", h, "--vm", "a", "--repo", repo, "--json", code=None)
    # whatever happens, the host is left clean
    assert recovery_checkpoints(h) == []
    assert glob.glob(os.path.join(vhd_dir(h, "a"), "*.avhdx")) == []
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["bytes_read"] >= 16 * MiB, s  # the untracked disk is read whole
    assert "a:" in s["reason"] or "tracking" in s["reason"] or "RCT" in s["reason"], s
    assert_host_clean(h, "a")
    assert_point_restores(repo, "a", s["id"], oracle(h, "a", str(work / "o"), 2), str(work))
    hv("fault", "tracking", "a", "a", "on", host=h)
    write(h, "a", "random", "512KiB", 3)
    s2 = backup(h, "a", repo)
    assert_host_clean(h, "a")
    assert_point_restores(repo, "a", s2["id"], oracle(h, "a", str(work / "o"), 3), str(work))


def test_stale_checkpoint_removed_first(work):
    h = new_host(work / "h", 36, {"a": ["16MiB"]})
    repo = str(work / "r")
    write(h, "a", "random", "1MiB", 1)
    backup(h, "a", repo)
    hv("fault", "stale-checkpoint", "a", host=h)
    assert len(recovery_checkpoints(h)) == 1
    write(h, "a", "random", "512KiB", 2)  # lands in the stale checkpoint's AVHDX
    p = hb("backup", "--host", h, "--vm", "a", "--repo", repo)
    assert "removed first: 1 stale recovery checkpoint" in p.stdout, p.stdout
    pid = int(re.match(r"point (\d+): incremental backup", p.stdout).group(1))
    assert_host_clean(h, "a")
    assert_point_restores(repo, "a", pid, oracle(h, "a", str(work / "o"), 2), str(work))


def test_host_quirks_disk_order_and_paging(work):
    """Reference point arrays in reverse SASD order (pairing must go by identity), QueryChanges
    capped at one range per call (clients must loop on ProcessedLength), partial pages returning
    ERROR_MORE_DATA, GetVirtualDiskChanges paging: incrementals stay exact."""
    h = new_host(work / "h", 37, {"a": ["16MiB", "24MiB"]})
    repo, orc = str(work / "r"), str(work / "o")
    write(h, "a", "random", "1MiB", 1)
    backup(h, "a", repo)
    settings = [("refpoint.reverse_disk_order", "1"), ("virtdisk.max_ranges_per_call", "1"),
                ("virtdisk.more_data_on_partial", "1"), ("wmi.changes_max_ranges", "1")]
    for i, (k, v) in enumerate(settings):
        hv("host", "set", k, v, host=h)
        # one disk only, then both: a positional pairing would swap them
        write(h, "a", "random", "256KiB", 10 + i, *(["--disk", "a_1"] if i % 2 == 0 else []))
        s = backup(h, "a", repo)
        assert s["type"] == "incremental" and s["bytes_read"] < 4 * MiB, (k, s)
        assert_host_clean(h, "a")
        assert_point_restores(repo, "a", s["id"], oracle(h, "a", orc, i), str(work))


# ---------------------------------------------------------------------------------------------
# dedup, job trajectories, consistency


def test_dedup_across_vms_and_forget_per_vm(work):
    h = new_host(work / "h", 41, {"a": ["32MiB"], "b": ["32MiB"]})
    repo = str(work / "r")
    write(h, "a", "random", "4MiB", 77)
    write(h, "b", "random", "4MiB", 77)
    sa = backup(h, "a", repo)
    oa = oracle(h, "a", str(work / "o"), "a")
    sb = backup(h, "b", repo)
    ob = oracle(h, "b", str(work / "o"), "b")
    # same data in both VMs (checked independently) → the second backup stores almost nothing
    assert filecmp.cmp(next(iter(oa.values())), next(iter(ob.values())), shallow=False)
    assert sa["bytes_stored"] > 1 * MiB, sa
    assert sb["bytes_stored"] <= 64 * 1024, sb
    assert sb["bytes_dedup"] >= 4 * MiB, sb
    assert_host_clean(h, "a")
    assert_host_clean(h, "b")
    write(h, "a", "random", "512KiB", 9)
    sa2 = backup(h, "a", repo)
    oa2 = oracle(h, "a", str(work / "o"), "a2")
    # keep the last point of each VM; both stay exact (b's blocks are shared with a's first point)
    hb("forget", "--repo", repo, "--keep-last", "1")
    assert [(p["id"], p["vm"]) for p in list_points(repo)] == [(sb["id"], "b"), (sa2["id"], "a")]
    assert_point_restores(repo, "b", sb["id"], ob, str(work))
    assert_point_restores(repo, "a", sa2["id"], oa2, str(work))
    hb("verify", "--repo", repo)


def test_job_create_snapshot_trajectories(work):
    h = new_host(work / "h", 51, {"a": ["16MiB"]})
    repo = str(work / "r")
    write(h, "a", "random", "1MiB", 1)
    hv("host", "set", "job.CreateSnapshot", "running=5,completed", host=h)
    s1 = backup(h, "a", repo)
    assert s1["type"] == "full"
    assert_host_clean(h, "a")
    o1 = oracle(h, "a", str(work / "o"), 1)
    hv("host", "set", "job.CreateSnapshot", "sync", host=h)
    write(h, "a", "random", "512KiB", 2)
    s2 = backup(h, "a", repo)
    assert s2["type"] == "incremental"
    assert_host_clean(h, "a")
    o2 = oracle(h, "a", str(work / "o"), 2)
    hv("host", "set", "job.CreateSnapshot", "starting=2,running=3,completed", host=h)
    hv("host", "set", "job.ConvertToReferencePoint", "sync", host=h)
    write(h, "a", "random", "512KiB", 3)
    s3 = backup(h, "a", repo)
    assert s3["type"] == "incremental"
    assert_host_clean(h, "a")
    o3 = oracle(h, "a", str(work / "o"), 3)
    for pid, o in ((s1["id"], o1), (s2["id"], o2), (s3["id"], o3)):
        assert_point_restores(repo, "a", pid, o, str(work))


@pytest.mark.parametrize("traj,needle", [("exception=32779", "32779"), ("running=3,killed", "ConvertToReferencePoint")])
def test_convert_to_reference_point_fails_cleanly(work, traj, needle):
    h = new_host(work / "h", 52, {"a": ["16MiB", "16MiB"]})
    repo = str(work / "r")
    write(h, "a", "random", "1MiB", 1)
    s1 = backup(h, "a", repo)
    o1 = oracle(h, "a", str(work / "o"), 1)
    rp_before = [r["InstanceID"] for r in ref_points(h, "a")]
    hv("host", "set", "job.ConvertToReferencePoint", traj, host=h)
    write(h, "a", "random", "512KiB", 2)
    p = backup(h, "a", repo, code=1)
    assert needle in p.stderr, p.stderr
    if traj.startswith("exception"):
        # the job's ErrorCode and ErrorDescription are reported
        assert "32779" in p.stderr  # ErrorCode
        assert "scripted job trajectory: exception=32779" in p.stderr  # ErrorDescription
    assert p.stdout.strip() == ""
    # nothing left behind on the host; the previous chain stays as it was
    assert recovery_checkpoints(h) == []
    assert [r["InstanceID"] for r in ref_points(h, "a")] == rp_before
    assert glob.glob(os.path.join(vhd_dir(h, "a"), "*.avhdx")) == []
    assert [x["id"] for x in list_points(repo)] == [s1["id"]]
    hb("verify", "--repo", repo)
    assert_point_restores(repo, "a", s1["id"], o1, str(work))
    # once the host behaves again the next backup is incremental and exact
    hv("host", "set", "job.ConvertToReferencePoint", "running=2,completed", host=h)
    s2 = backup(h, "a", repo)
    assert s2["type"] == "incremental", s2
    assert_host_clean(h, "a")
    assert_point_restores(repo, "a", s2["id"], oracle(h, "a", str(work / "o"), 2), str(work))


def test_create_snapshot_failure_reported(work):
    h = new_host(work / "h", 53, {"a": ["16MiB"]})
    repo = str(work / "r")
    hv("host", "set", "job.CreateSnapshot", "exception=32780", host=h)
    p = backup(h, "a", repo, code=1)
    assert "CreateSnapshot" in p.stderr and "32780" in p.stderr, p.stderr
    assert recovery_checkpoints(h) == [] and ref_points(h, "a") == []
    if os.path.exists(os.path.join(repo, "catalog.db")):
        assert list_points(repo) == []


def test_guest_vss_off_crash_consistent(work):
    h = new_host(work / "h", 54, {"a": ["16MiB"]})
    repo = str(work / "r")
    write(h, "a", "random", "1MiB", 1)
    s1 = backup(h, "a", repo)
    assert s1["consistency"] == "application"
    hv("fault", "guest-vss", "a", "off", host=h)
    write(h, "a", "random", "512KiB", 2)
    s2 = backup(h, "a", repo)
    assert s2["consistency"] == "crash" and s2["type"] == "incremental", s2
    assert_host_clean(h, "a")
    assert_point_restores(repo, "a", s2["id"], oracle(h, "a", str(work / "o"), 2), str(work))
    hv("fault", "guest-vss", "a", "on", host=h)
    assert backup(h, "a", repo)["consistency"] == "application"


# ---------------------------------------------------------------------------------------------
# crash hooks


def _crash_then_recover(work, env, committed_expected):
    h = new_host(work / "h", 61, {"a": ["16MiB,block=1MiB"]})
    repo = str(work / "r")
    orc = str(work / "o")
    write(h, "a", "random", "4MiB", 1)
    s1 = backup(h, "a", repo)
    o1 = oracle(h, "a", orc, 1)
    write(h, "a", "random", "1MiB", 2)
    s2 = backup(h, "a", repo)
    o2 = oracle(h, "a", orc, 2)
    write(h, "a", "random", "4MiB", 3)  # ~50 changed tracking blocks for the crashing run
    o3 = oracle(h, "a", orc, 3)  # what the crashing run's checkpoint holds
    p = hb("backup", "--host", h, "--vm", "a", "--repo", repo, "--json", code=None, env=env)
    assert p.returncode == 137, (env, p.returncode, p.stdout, p.stderr)
    ids = [x["id"] for x in list_points(repo)]
    hb("verify", "--repo", repo)
    if committed_expected:
        assert ids[:2] == [s1["id"], s2["id"]] and len(ids) == 3, ids
        assert_point_restores(repo, "a", ids[2], o3, str(work))
    else:
        assert ids == [s1["id"], s2["id"]], ids
    assert_point_restores(repo, "a", s1["id"], o1, str(work))
    assert_point_restores(repo, "a", s2["id"], o2, str(work))
    # guest keeps writing (into whatever the crash left), then the next backup cleans up
    write(h, "a", "random", "512KiB", 4)
    s = backup(h, "a", repo)
    assert s["type"] == "incremental", s
    assert_host_clean(h, "a")
    assert_point_restores(repo, "a", s["id"], oracle(h, "a", orc, "after"), str(work))
    hb("verify", "--repo", repo)
    if committed_expected:  # the point committed before the crash is whole
        assert_point_restores(repo, "a", ids[2], o3, str(work))
    return s


@pytest.mark.parametrize("n", [1, 30])
def test_crash_after_blocks(work, n):
    _crash_then_recover(work, {"HVBACKUP_CRASH_AFTER_BLOCKS": str(n)}, False)


@pytest.mark.parametrize("step", [1, 2, 3])
def test_crash_at_commit(work, step):
    _crash_then_recover(work, {"HVBACKUP_CRASH_AT_COMMIT": str(step)}, step == 3)


def test_crash_during_first_full_then_many_crashes(work):
    """A crash in the very first backup leaves an empty repository that verifies; then a series of
    crashes at many points in a row, each followed by verify + exact restores, then success."""
    h = new_host(work / "h", 62, {"a": ["16MiB"]})
    repo, orc = str(work / "r"), str(work / "o")
    write(h, "a", "random", "4MiB", 1)
    p = hb("backup", "--host", h, "--vm", "a", "--repo", repo, code=None, env={"HVBACKUP_CRASH_AFTER_BLOCKS": "5"})
    assert p.returncode == 137
    assert list_points(repo) == []
    hb("verify", "--repo", repo)
    s1 = backup(h, "a", repo)
    assert s1["type"] == "full" and s1["stale_checkpoints_removed"] == 1, s1
    assert_host_clean(h, "a")
    good = {s1["id"]: oracle(h, "a", orc, 1)}
    crashes = [{"HVBACKUP_CRASH_AFTER_BLOCKS": str(n)} for n in (2, 3, 11, 29)] + \
              [{"HVBACKUP_CRASH_AT_COMMIT": str(k)} for k in (1, 2)]
    for i, env in enumerate(crashes):
        write(h, "a", "random", "2MiB", 10 + i)
        p = hb("backup", "--host", h, "--vm", "a", "--repo", repo, code=None, env=env)
        assert p.returncode == 137, (env, p.stderr)
        hb("verify", "--repo", repo)
        assert [x["id"] for x in list_points(repo)] == sorted(good)
    for pid, o in good.items():
        assert_point_restores(repo, "a", pid, o, str(work))
    s = backup(h, "a", repo)
    assert s["type"] == "incremental", s
    assert_host_clean(h, "a")
    assert_point_restores(repo, "a", s["id"], oracle(h, "a", orc, "end"), str(work))


# ---------------------------------------------------------------------------------------------
# forget / prune


def test_forget_keep_last(work):
    h = new_host(work / "h", 71, {"a": ["16MiB"]})
    repo, orc = str(work / "r"), str(work / "o")
    ids, orcs = [], {}
    for i in range(5):
        # a whole-disk overwrite per point: the data of older points becomes unreferenced
        write(h, "a", "overwrite" if i else "random", "4MiB", 100 + i)
        s = backup(h, "a", repo)
        ids.append(s["id"])
        orcs[s["id"]] = oracle(h, "a", orc, s["id"])
    before = pack_bytes(repo)
    p = hb("forget", "--repo", repo, "--keep-last", "2")
    assert re.match(r"forgot 3 point", p.stdout), p.stdout
    assert [x["id"] for x in list_points(repo)] == ids[-2:]
    after = pack_bytes(repo)
    assert after < before, (before, after)
    assert after <= before * 0.6, (before, after)  # 3 of 5 whole-disk generations are gone
    for pid in ids[-2:]:
        assert_point_restores(repo, "a", pid, orcs[pid], str(work))
    hb("verify", "--repo", repo)
    # the host still has the reference point of the newest kept point → next backup incremental
    write(h, "a", "random", "256KiB", 200)
    s = backup(h, "a", repo)
    assert s["type"] == "incremental", s
    assert_point_restores(repo, "a", s["id"], oracle(h, "a", orc, "next"), str(work))
    # forgetting nothing changes nothing
    b2 = pack_bytes(repo)
    hb("forget", "--repo", repo, "--keep-last", "10")
    assert len(list_points(repo)) == 3 and pack_bytes(repo) == b2


# ---------------------------------------------------------------------------------------------
# damage


def test_verify_detects_damage_and_restore_refuses(work):
    h = new_host(work / "h", 81, {"a": ["16MiB"]})
    repo, orc = str(work / "r"), str(work / "o")
    write(h, "a", "random", "2MiB", 1)
    s1 = backup(h, "a", repo)
    o1 = oracle(h, "a", orc, 1)
    packs1 = set(os.listdir(os.path.join(repo, "packs")))
    write(h, "a", "random", "2MiB", 2)
    s2 = backup(h, "a", repo)
    new = sorted(f for f in os.listdir(os.path.join(repo, "packs")) if f not in packs1 and
                 os.path.getsize(os.path.join(repo, "packs", f)) > 0)
    assert new, "the incremental wrote no new pack"
    hb("verify", "--repo", repo)
    # flip a byte in the middle of the pack holding only the incremental's new blocks
    pk = os.path.join(repo, "packs", new[-1])
    with open(pk, "r+b") as f:
        f.seek(os.path.getsize(pk) // 2)
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 0x5A]))
    p = hb("verify", "--repo", repo, code=1)
    assert re.search(rf"point {s2['id']}\b", p.stdout + p.stderr), (p.stdout, p.stderr)
    assert not re.search(rf"point {s1['id']} is damaged", p.stderr), p.stderr
    hb("verify", "--repo", repo, "--point", s2["id"], code=1)
    hb("verify", "--repo", repo, "--point", s1["id"])
    # the damaged point does not restore, and leaves no file that could pass for a disk
    for out in (work / "bad.raw", work / "bad.vhdx"):
        p = restore(repo, "a", s2["id"], "a", out, code=1)
        assert p.stderr.strip() and ("mismatch" in p.stderr or "damaged" in p.stderr or "corrupt" in p.stderr), p.stderr
        assert not out.exists() and not os.path.exists(str(out) + ".partial")
        assert not [f for f in os.listdir(work) if f.startswith(out.name)]
    # the undamaged point is still exact
    assert_point_restores(repo, "a", s1["id"], o1, str(work))
