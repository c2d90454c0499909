"""`hvsim scenario check` as a user runs it: every file of the scenario library is valid, the
canonical dump is itself a valid file that dumps to the same bytes, the expanded events are
deterministic, and broken files exit 1 with exactly one `FILE:LINE:COL: message` line on stderr
pointing at the culprit. Usage errors and unreadable files exit 2.
"""
import glob
import os
import re
import subprocess

import pytest

HVSIM = os.environ.get("HVSIM", "build/bin/hvsim")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LIBRARY = sorted(glob.glob(os.path.join(ROOT, "scenarios", "*.yaml")))
SUMMARY = re.compile(r"^(?P<file>.+): valid: (?P<vms>\d+) VM\(s\), (?P<disks>\d+) disk\(s\), (?P<events>\d+) event\(s\)"
                     r" over (?P<end>\S+): (?P<backups>\d+) backup\(s\), (?P<restores>\d+) restore\(s\),"
                     r" (?P<writes>\d+) write\(s\), (?P<faults>\d+) fault\(s\); (?P<expect>\d+) expectation\(s\)$")


def check(*args, code=None):
    p = subprocess.run([HVSIM, "scenario", "check"] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=120)
    if code is not None:
        assert p.returncode == code, (args, p.returncode, p.stdout, p.stderr)
    return p


def test_library_is_complete():
    names = {os.path.basename(f)[:-5] for f in LIBRARY}
    for story in ["week-demo", "nightly-two-weeks", "disk-order-shuffled", "rct-reset-live-migration",
                  "host-crash-midday", "disk-resized", "disk-added-removed", "stale-recovery-checkpoint",
                  "leaked-refpoint-merge", "slow-jobs-exception", "sector-4k", "fleet-100", "engine-killed-rerun"]:
        assert story in names


@pytest.mark.parametrize("path", LIBRARY, ids=[os.path.basename(f) for f in LIBRARY])
def test_library_file_is_valid(path, tmp_path):
    p = check(path, code=0)
    assert p.stderr == ""
    m = SUMMARY.match(p.stdout.rstrip("\n"))
    assert m, p.stdout
    assert m["file"] == path
    assert int(m["vms"]) >= 1 and int(m["backups"]) >= 1 and int(m["expect"]) >= 1
    # --events: one line per event, deterministic
    ev = check(path, "--events", code=0).stdout
    assert len(ev.splitlines()) == int(m["events"])
    assert check(path, "--events", code=0).stdout == ev
    assert sum(1 for line in ev.splitlines() if line.split()[1] == "backup") == int(m["backups"])
    # --dump: a valid file (under the same name) whose dump is the same bytes
    dump = check(path, "--dump", code=0).stdout
    again = tmp_path / os.path.basename(path)
    again.write_text(dump)
    assert check(again, "--dump", code=0).stdout == dump
    assert check(again, "--events", code=0).stdout == ev


def test_week_demo_summary():
    p = check(os.path.join(ROOT, "scenarios", "week-demo.yaml"), code=0)
    m = SUMMARY.match(p.stdout.strip())
    assert (m["vms"], m["disks"], m["end"], m["backups"], m["faults"]) == ("3", "4", "7d", "21", "1")


GOOD = """name: {name}
vms:
  - name: web
    disks:
      - {{size: 64MiB}}
workloads:
  w: {{pattern: random, bytes: 1MiB}}
timeline:
  - at: 1h
    write: {{vm: web, workload: w}}
  - at: 2h
    backup: {{vm: web}}
  - at: 3h
    restore: {{vm: web}}
expect:
  - restores_match_truth: true
"""

BROKEN = [
    # (change to GOOD, line, col, message fragment)
    (("{{size: 64MiB}}", "{{size: 64MiB, sector: 1024}}"), 5, 31, "sector: 1024 is neither 512 nor 4096"),
    (("  - at: 3h", "  - at: 30m"), 13, 5, "at 30m: restore of VM 'web': no backup of it comes before"),
    (("workload: w}}", "workload: nope}}"), 10, 32, "workload: no workload named 'nope'"),
    (("  - at: 1h", "  - at: 1d30h"), 9, 9, "30h after a larger unit must be below 24"),
    (("expect:", "colour: red\nexpect:"), 15, 1, "unknown key 'colour' in the scenario"),
    (("backup: {{vm: web}}", "backup: {{vm: web}}\n    fault: {{name: host-crash}}"), 13, 5,
     "one action per timeline entry"),
    (("  - restores_match_truth: true", "  - backup: {{index: 2, type: full}}"), 16, 5,
     "expect backup: index 2, but the timeline has 1 backup(s)"),
    (("{{pattern: random, bytes: 1MiB}}", "{{pattern: random, bytes: 1MiB, io: 4KiB-}}"), 7, 41, "is not SIZE or MIN-MAX"),
]


@pytest.mark.parametrize("change,line,col,frag", BROKEN, ids=[b[3][:30] for b in BROKEN])
def test_broken_file(tmp_path, change, line, col, frag):
    f = tmp_path / "broken.yaml"
    f.write_text(GOOD.replace(change[0], change[1], 1).format(name="broken"))
    p = check(f, code=1)
    assert p.stdout == ""
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(f"{f}:{line}:{col}: "), lines[0]
    assert frag in lines[0]


def test_good_file_and_its_name(tmp_path):
    f = tmp_path / "good.yaml"
    f.write_text(GOOD.format(name="good"))
    check(f, code=0)
    f2 = tmp_path / "renamed.yaml"
    f2.write_text(GOOD.format(name="good"))
    p = check(f2, code=1)
    assert p.stderr.startswith(f"{f2}:1:7: name: 'good' does not match the file name 'renamed'")


def test_yaml_syntax_error_position(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("name: s\nvms: [\n  {name: a\n")
    p = check(f, code=1)
    assert re.match(rf"^{re.escape(str(f))}:\d+:\d+: YAML syntax: ", p.stderr), p.stderr


def test_too_big(tmp_path):
    f = tmp_path / "big.yaml"
    f.write_text("#" * (1024 * 1024 + 1))
    p = check(f, code=1)
    assert "larger than the 1048576-byte limit" in p.stderr


def test_unreadable_and_usage(tmp_path):
    p = check(tmp_path / "missing.yaml", code=2)
    assert "missing.yaml: cannot open" in p.stderr
    check(code=2)
    p = check(os.path.join(ROOT, "scenarios", "week-demo.yaml"), "--dump", "--events", code=2)
    assert "at most one of --dump, --events" in p.stderr
    check("a.yaml", "b.yaml", code=2)
    check("--frobnicate", "a.yaml", code=2)
    p = subprocess.run([HVSIM, "scenario"], capture_output=True, text=True)
    assert p.returncode == 2 and "usage: hvsim scenario" in p.stderr
    p = subprocess.run([HVSIM, "scenario", "frob"], capture_output=True, text=True)
    assert p.returncode == 2 and "unknown command 'frob'" in p.stderr
    p = subprocess.run([HVSIM, "scenario", "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "check FILE" in p.stdout
    p = subprocess.run([HVSIM, "--help"], capture_output=True, text=True)
    assert "scenario" in p.stdout
