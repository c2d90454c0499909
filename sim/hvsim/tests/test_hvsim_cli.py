"""The hvsim CLI for a simulated host, used as a user would: host/vm/fault/state/clock/wmi.

Checks the command forms of the issue exactly as written, exit codes and messages, determinism
across folders (sha256 of every file, `state dump`), a full backup-shaped WMI conversation over
separate processes (job polling, associators, reference points), crash safety of a killed guest
write (folder still opens, `hvsim vhdx check` and qemu-img check are clean, change tracking still
covers every write), and host.db read by the independent sqlite3 CLI.
"""
import hashlib
import json
import os
import shutil
import subprocess

import pytest

HVSIM = os.environ.get("HVSIM", "build/bin/hvsim")
ENV = dict(os.environ, HVSIM_NOSYNC="1")
SNAPSVC = ('Msvm_VirtualSystemSnapshotService.CreationClassName="Msvm_VirtualSystemSnapshotService",'
           'Name="vssnapsvc",SystemCreationClassName="Msvm_ComputerSystem",SystemName="HVSIM-HOST"')


def run(*args, host=None, ok=True, code=None):
    cmd = [HVSIM] + (["--host", str(host)] if host else []) + [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    if code is not None:
        assert p.returncode == code, (cmd, p.returncode, p.stdout, p.stderr)
    elif ok:
        assert p.returncode == 0, (cmd, p.returncode, p.stdout, p.stderr)
    return p


def q(host, wql):
    return json.loads(run("wmi", "query", wql, "--json", host=host).stdout)


def vm_path(host, name):
    r = q(host, f"SELECT * FROM Msvm_ComputerSystem WHERE ElementName='{name}'")
    assert len(r) == 1
    return r[0]["__PATH"]


def snapshot(host, vm, typ=32768):
    out = json.loads(run("wmi", "invoke", SNAPSVC, "CreateSnapshot", f"AffectedSystem={vm}",
                         f"SnapshotType={typ}", "--json", host=host).stdout)
    assert out["ReturnValue"] == 4096
    job = json.loads(run("wmi", "wait", out["Job"], "--json", host=host).stdout)
    assert job["JobState"] == 7 and job["PercentComplete"] == 100
    snaps = q(host, f"ASSOCIATORS OF {{{out['Job']}}} WHERE ResultClass=Msvm_VirtualSystemSettingData")
    assert len(snaps) == 1
    return snaps[0]


def build(d, seed=11):
    run("host", "create", d, "--seed", seed)
    run("vm", "create", "web", "--disk", "64MiB", "--disk", "32MiB,fixed,block=1MiB,sector=4096", host=d)
    run("vm", "create", "db", "--disk", "48MiB,dynamic", host=d)
    run("vm", "write", "web", "--pattern", "random", "--bytes", "4MiB", host=d)
    run("vm", "write", "db", "--pattern", "sequential", "--bytes", "2MiB", "--seed", "3", host=d)
    snapshot(d, vm_path(d, "web"))
    run("vm", "write", "web", "--pattern", "zipf", "--bytes", "1MiB", host=d)
    run("fault", "rct-reset", "db", host=d)
    run("clock", "advance", "1d02h", host=d)


def digests(d):
    out = {}
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, d)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def test_determinism_two_folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "sub" / "b"
    (tmp_path / "sub").mkdir()
    build(a)
    build(b)
    da, db = digests(a), digests(b)
    assert any(k.endswith(".avhdx") for k in da)
    assert da == db
    assert run("state", "dump", host=a).stdout == run("state", "dump", host=b).stdout
    c = tmp_path / "c"
    build(c, seed=12)
    assert digests(c) != da


def test_help_and_usage_errors(tmp_path):
    for area in ["host", "vm", "fault", "wmi", "state"]:
        p = run(area, "--help", code=0)
        assert "usage" in p.stdout
    assert "wmi" in run("--help", code=0).stdout
    run("vm", "list", code=2)  # no --host
    p = run("vm", "list", host=tmp_path / "nothere", code=2)
    assert "no such host folder" in p.stderr
    run("host", "create", tmp_path / "h")
    h = tmp_path / "h"
    p = run("vm", "create", "x", "--disk", "10MiB,sector=1024", host=h, code=2)
    assert "sector=1024" in p.stderr
    p = run("vm", "write", "nope", "--pattern", "random", "--bytes", "1MiB", host=h, code=1)
    assert "no VM named 'nope'" in p.stderr
    p = run("vm", "write", "nope", "--pattern", "sideways", "--bytes", "1MiB", host=h, code=2)
    assert "sideways" in p.stderr
    p = run("fault", "teleport", host=h, code=2)
    assert "unknown fault" in p.stderr
    p = run("host", "create", h, code=1)
    assert "not empty" in p.stderr
    p = run("host", "set", "job.CreateSnapshot", "running=2,explode", host=h, code=2)
    assert "explode" in p.stderr


def test_wmi_errors(tmp_path):
    h = tmp_path / "h"
    run("host", "create", h)
    p = run("wmi", "query", "SELECT * FROM", host=h, code=1)
    assert "0x80041017" in p.stderr and "position" in p.stderr
    p = run("wmi", "query", "SELECT * FROM Msvm_NoSuchThing", host=h, code=1)
    assert "0x80041010" in p.stderr
    p = run("wmi", "get", 'Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="NOPE"', host=h, code=1)
    assert "0x80041002" in p.stderr
    p = run("wmi", "invoke", SNAPSVC, "Frobnicate", host=h, code=1)
    assert "0x8004102E" in p.stderr
    p = run("wmi", "invoke", SNAPSVC, "CreateSnapshot", "SnapshotType=abc", host=h, code=1)
    assert "0x8004102F" in p.stderr
    # a bad argument is a method return code (family A: 4 Invalid Parameter), exit 1
    p = run("wmi", "invoke", SNAPSVC, "CreateSnapshot", "SnapshotType=32768", "--json", host=h, code=1)
    assert json.loads(p.stdout)["ReturnValue"] == 4


def test_backup_conversation(tmp_path):
    """What an engine does for a full and an incremental, each step a separate process."""
    h = tmp_path / "h"
    run("host", "create", h, "--seed", "4")
    run("vm", "create", "web", "--disk", "64MiB", "--disk", "16MiB", host=h)
    run("vm", "write", "web", "--pattern", "random", "--bytes", "3MiB", host=h)
    vm = vm_path(h, "web")
    snap = snapshot(h, vm)
    assert snap["VirtualSystemType"] == "Microsoft:Hyper-V:Snapshot:Recovery"
    sasd = q(h, f"ASSOCIATORS OF {{{snap['__PATH']}}} WHERE ResultClass=Msvm_StorageAllocationSettingData"
                " AssocClass=Msvm_VirtualSystemSettingDataComponent")
    assert sorted(s["HostResource"][0] for s in sasd) == [
        "C:\\Hyper-V\\web\\Virtual Hard Disks\\web.vhdx", "C:\\Hyper-V\\web\\Virtual Hard Disks\\web_1.vhdx"]
    live = q(h, f"ASSOCIATORS OF {{{vm}}} WHERE ResultClass=Msvm_VirtualSystemSettingData"
                " AssocClass=Msvm_SettingsDefineState")
    assert len(live) == 1
    live_sasd = q(h, f"ASSOCIATORS OF {{{live[0]['__PATH']}}} WHERE ResultClass=Msvm_StorageAllocationSettingData")
    assert all(s["HostResource"][0].endswith(".avhdx") for s in live_sasd)
    # convert → reference point with parallel arrays
    out = json.loads(run("wmi", "invoke", SNAPSVC, "ConvertToReferencePoint", f"AffectedSnapshot={snap['__PATH']}",
                         "--json", host=h).stdout)
    run("wmi", "wait", out["Job"], host=h)
    rps = q(h, f"ASSOCIATORS OF {{{out['Job']}}} WHERE ResultClass=Msvm_VirtualSystemReferencePoint")
    assert len(rps) == 1
    rp = rps[0]
    assert rp["ReferencePointType"] == 2
    assert len(rp["VirtualDiskIdentifiers"]) == len(rp["ResilientChangeTrackingIdentifiers"]) == 2
    assert all(i.startswith("rctX:") and i.endswith(":00000001") for i in rp["ResilientChangeTrackingIdentifiers"])
    assert sorted(rp["VirtualDiskIdentifiers"]) == sorted(s["InstanceID"] for s in live_sasd)
    # merged back: no AVHDX left
    assert not list((h / "web" / "Virtual Hard Disks").glob("*.avhdx"))
    # incremental: changes since the RCT id, from the new checkpoint's frozen disk
    run("vm", "write", "web", "--pattern", "random", "--bytes", "1MiB", "--disk", "web", "--io-size", "64KiB", host=h)
    snap2 = snapshot(h, vm)
    sasd2 = q(h, f"ASSOCIATORS OF {{{snap2['__PATH']}}} WHERE ResultClass=Msvm_StorageAllocationSettingData")
    frozen = {s["InstanceID"].split("\\")[-2]: s["HostResource"][0] for s in sasd2}
    ims = q(h, "SELECT * FROM Msvm_ImageManagementService")[0]["__PATH"]
    rct0 = rp["ResilientChangeTrackingIdentifiers"][rp["VirtualDiskIdentifiers"].index(
        [s["InstanceID"] for s in live_sasd if s["InstanceID"].endswith("\\0\\L")][0])]
    got = json.loads(run("wmi", "invoke", ims, "GetVirtualDiskChanges", f"Path={frozen['0']}", f"LimitId={rct0}",
                         "TargetSnapshotId=", "ByteOffset=0", f"ByteLength={64 * 2**20 - 1}", "--json",
                         host=h).stdout)
    assert got["ReturnValue"] == 0
    assert got["ProcessedByteLength"] == 64 * 2**20 - 1
    total = sum(got["ChangedByteLengths"])
    assert 1 * 2**20 <= total <= 2 * 2**20  # 16 writes of 64 KiB, each touching one or two 64 KiB blocks
    assert all(o % 65536 == 0 for o in got["ChangedByteOffsets"])
    # the disk that got no writes reports nothing
    rct1 = [i for i in rp["ResilientChangeTrackingIdentifiers"] if i != rct0][0]
    got1 = json.loads(run("wmi", "invoke", ims, "GetVirtualDiskChanges", f"Path={frozen['1']}", f"LimitId={rct1}",
                          "ByteOffset=0", f"ByteLength={16 * 2**20 - 1}", "--json", host=h).stdout)
    assert got1["ReturnValue"] == 0 and got1["ChangedByteOffsets"] == []
    # after an RCT reset the old id fails (family B 32768)
    run("fault", "rct-reset", "web", host=h)
    bad = run("wmi", "invoke", ims, "GetVirtualDiskChanges", f"Path={frozen['0']}", f"LimitId={rct0}",
              "ByteOffset=0", "ByteLength=1048576", "--json", host=h, code=1)
    assert json.loads(bad.stdout)["ReturnValue"] == 32768


def test_job_trajectories_from_cli(tmp_path):
    h = tmp_path / "h"
    run("host", "create", h)
    run("vm", "create", "v", "--disk", "16MiB", host=h)
    vm = vm_path(h, "v")
    run("host", "set", "job.CreateSnapshot", "starting=1,running=1,exception=77", host=h)
    assert run("host", "get", "job.CreateSnapshot", host=h).stdout.strip() == "starting=1,running=1,exception=77"
    out = json.loads(run("wmi", "invoke", SNAPSVC, "CreateSnapshot", f"AffectedSystem={vm}", "SnapshotType=32768",
                         "--json", host=h).stdout)
    states = [json.loads(run("wmi", "get", out["Job"], "--json", host=h).stdout)["JobState"] for _ in range(4)]
    assert states == [3, 4, 10, 10]
    p = run("wmi", "wait", out["Job"], "--json", host=h, code=1)
    assert json.loads(p.stdout)["ErrorCode"] == 77
    assert q(h, "SELECT * FROM Msvm_VirtualSystemSettingData WHERE VirtualSystemType LIKE '%Snapshot%'") == []
    run("host", "set", "job.CreateSnapshot", "sync", host=h)
    out = json.loads(run("wmi", "invoke", SNAPSVC, "CreateSnapshot", f"AffectedSystem={vm}", "SnapshotType=2",
                         "--json", host=h).stdout)
    assert out["ReturnValue"] == 0 and "Msvm_VirtualSystemSettingData" in out["ResultingSnapshot"]


def test_killed_write_leaves_a_good_folder(tmp_path):
    h = tmp_path / "h"
    run("host", "create", h, "--seed", "9")
    run("vm", "create", "k", "--disk", "64MiB", host=h)
    run("vm", "write", "k", "--pattern", "random", "--bytes", "2MiB", host=h)
    vm = vm_path(h, "k")
    snapshot(h, vm)  # the guest now writes into an AVHDX
    out = json.loads(run("wmi", "invoke", SNAPSVC, "ConvertToReferencePoint",
                         f"AffectedSnapshot={q(h, 'SELECT * FROM Msvm_VirtualSystemSettingData WHERE VirtualSystemType=' + chr(39) + 'Microsoft:Hyper-V:Snapshot:Recovery' + chr(39))[0]['__PATH']}",
                         "--json", host=h).stdout)
    run("wmi", "wait", out["Job"], host=h)
    rp = q(h, "SELECT * FROM Msvm_VirtualSystemReferencePoint")[0]
    run("host", "set", "test.crash_after_ops", "7", host=h)
    p = run("vm", "write", "k", "--pattern", "random", "--bytes", "4MiB", "--io-size", "64KiB", host=h, ok=False)
    assert p.returncode < 0 or p.returncode == 137, p  # killed
    run("host", "set", "test.crash_after_ops", "-1", host=h)
    run("state", "dump", host=h)
    disk = h / "k" / "Virtual Hard Disks" / "k.vhdx"
    run("vhdx", "check", disk)
    if shutil.which("qemu-img"):
        c = subprocess.run(["qemu-img", "check", "-f", "vhdx", str(disk)], capture_output=True, text=True)
        assert c.returncode == 0, c.stderr
    # change tracking covers all 4 MiB that were announced, though only 7 ops landed
    snap = snapshot(h, vm)
    sasd = q(h, f"ASSOCIATORS OF {{{snap['__PATH']}}} WHERE ResultClass=Msvm_StorageAllocationSettingData")
    ims = q(h, "SELECT * FROM Msvm_ImageManagementService")[0]["__PATH"]
    got = json.loads(run("wmi", "invoke", ims, "GetVirtualDiskChanges", f"Path={sasd[0]['HostResource'][0]}",
                         f"LimitId={rp['ResilientChangeTrackingIdentifiers'][0]}", "ByteOffset=0",
                         f"ByteLength={64 * 2**20 - 1}", "--json", host=h).stdout)
    assert sum(got["ChangedByteLengths"]) >= 4 * 2**20
    assert sum(got["ChangedByteLengths"]) <= 8 * 2**20


@pytest.mark.skipif(not shutil.which("sqlite3"), reason="sqlite3 CLI (ci/deps.sh installs it)")
def test_host_db_is_plain_sqlite(tmp_path):
    h = tmp_path / "h"
    run("host", "create", h)
    run("vm", "create", "v", "--disk", "8MiB", host=h)
    db = str(h / "host.db")
    out = subprocess.run(["sqlite3", db, "PRAGMA journal_mode; PRAGMA integrity_check; SELECT name FROM vm;"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["wal", "ok", "v"]
