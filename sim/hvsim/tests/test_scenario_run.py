"""`hvsim scenario run` and `ci/run-scenarios` as a user runs them: the library passes (run in two
shards, whose union is the whole default set), reports are byte-identical for the same seed and
differ for another, a wrong expectation fails with exit 1 and names itself with its evidence,
broken engines (one that fails, one that restores garbage, one that does nothing and says it
succeeded, one that hangs) make exactly the right expectations fail, the engine sees the
environment the runner promises, and sharded runs add up to the unsharded one.
"""
import glob
import json
import os
import re
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

HVSIM = os.path.abspath(os.environ.get("HVSIM", "build/bin/hvsim"))
BUILD = os.path.dirname(os.path.dirname(HVSIM))
HVBACKUP = os.path.join(os.path.dirname(HVSIM), "hvbackup")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
RUN_SCENARIOS = os.path.join(ROOT, "ci", "run-scenarios")
LIBRARY = sorted(glob.glob(os.path.join(ROOT, "scenarios", "*.yaml")))
LONG = {"fleet-100"}


def run(*args, code=None, timeout=900):
    p = subprocess.run([HVSIM, "scenario", "run"] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout)
    if code is not None:
        assert p.returncode == code, (args, p.returncode, p.stdout[-3000:], p.stderr[-3000:])
    return p


def run_scenarios(*args, code=None):
    p = subprocess.run([sys.executable, RUN_SCENARIOS, "--build", BUILD] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=1800)
    if code is not None:
        assert p.returncode == code, (args, p.returncode, p.stdout[-4000:], p.stderr[-2000:])
    return p


def sorted_keys(pairs):
    keys = [k for k, _ in pairs]
    assert keys == sorted(keys), keys
    return dict(pairs)


def load_report(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f, object_pairs_hook=sorted_keys)


def checks(report):
    return {x["expectation"]: x for x in report["expectations"]}


# A small story (one VM, two nights) that runs in well under a second.
SMALL = """name: {name}
seed: {seed}
duration: 2d
{extra}vms:
  - name: web
    disks:
      - {{name: sys, size: 16MiB}}
      - {{name: data, size: 8MiB, block: 1MiB}}
workloads:
  day: {{pattern: random, bytes: 1MiB, io: 4KiB-64KiB}}
timeline:
  - every: 1d
    from: 9h
    write: {{vm: web, workload: day}}
  - every: 1d
    from: 23h
    until: 1d23h
    backup: {{vm: web}}
  - at: 1d23h30m
    restore: {{vm: web, point: all}}
expect:
{expect}"""

GOOD_EXPECT = """  - backups_succeeded: all
  - backup: {index: 1, type: full, reason_contains: no earlier backup}
  - backup: {index: 2, type: incremental, reason_contains: changes since}
  - restores_match_truth: true
  - repository_verifies: true
  - no_leftovers: true
  - no_pending_merges: true
  - audit_mistakes: 0
"""


def small(tmp_path, name="small", seed=7, expect=GOOD_EXPECT, extra=""):
    d = tmp_path / "sc"
    d.mkdir(exist_ok=True)
    f = d / f"{name}.yaml"
    f.write_text(SMALL.format(name=name, seed=seed, expect=expect, extra=extra))
    return f


def executable(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# ---- the library ------------------------------------------------------------------------------

def test_library_passes_in_two_shards(tmp_path):
    """Every non-long scenario of the library passes; shards 1/2 and 2/2 are disjoint and cover
    the default set exactly; their JUnit files parse."""
    default = {os.path.basename(f)[:-5] for f in LIBRARY} - LONG
    names = []
    for k in (1, 2):
        xml = tmp_path / f"shard{k}.xml"
        p = run_scenarios("scenarios", "-j", "2", "--shard", f"{k}/2", "--junit", xml,
                          "--reports", tmp_path / "reports")
        assert p.returncode == 0, p.stdout[-6000:]
        last = p.stdout.strip().splitlines()[-1]
        suite = ET.parse(xml).getroot().find("testsuite")
        assert last == f"{suite.get('tests')} passed, 0 failed"
        assert suite.get("failures") == "0"
        names += [tc.get("name") for tc in suite.iter("testcase")]
    assert sorted(names) == sorted(default)
    for n in default:  # every report holds what the summary claimed
        rep = load_report(tmp_path / "reports" / f"{n}.json")
        assert rep["passed"] is True and rep["scenario"] == n and rep["errors"] == []
        assert all(x["pass"] for x in rep["expectations"])


def test_week_demo_summary(tmp_path):
    """The story `make demo` tells: 21 backups, the db's 4th full because its tracking was reset,
    every point restored and verified."""
    p = run(os.path.join(ROOT, "scenarios", "week-demo.yaml"), "--report", tmp_path / "r.json", code=0)
    rows = [line.split() for line in p.stdout.splitlines() if re.match(r"^  \d+ ", line)]
    assert len(rows) == 21
    assert all("✓" in r for r in rows)
    db4 = [r for r in rows if r[2] == "db" and r[3] == "4"][0]
    assert db4[4] == "full" and "rct id unknown" in " ".join(db4)
    assert p.stdout.rstrip().endswith("week-demo: PASS (10 expectation(s) hold)")
    rep = load_report(tmp_path / "r.json")
    assert rep["totals"]["backups"] == 21 and rep["totals"]["backups_full"] == 4
    assert rep["totals"]["restores"] == rep["totals"]["restores_verified"] == 21
    assert all(b["verified"] is True for b in rep["backups"])


# ---- determinism ------------------------------------------------------------------------------

def test_report_is_deterministic(tmp_path):
    f = os.path.join(ROOT, "scenarios", "leaked-refpoint-merge.yaml")
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    run(f, "--report", a, code=0)
    run(f, "--report", b, code=0)
    run(f, "--seed", "99", "--report", c, code=0)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    ra, rc = load_report(a), load_report(c)
    assert (ra["seed"], rc["seed"]) == (2624, 99)
    text = a.read_text()
    assert "seconds" not in text and "/tmp" not in text and "hvsim-scenario-" not in text
    # the seed changes the data, not the story
    assert [x["type"] for x in ra["backups"]] == [x["type"] for x in rc["backups"]]
    assert [x["bytes_stored"] for x in ra["backups"]] != [x["bytes_stored"] for x in rc["backups"]]


def test_same_seed_same_summary(tmp_path):
    f = small(tmp_path)
    assert run(f, code=0).stdout == run(f, code=0).stdout


# ---- expectations that do not hold ------------------------------------------------------------

def test_wrong_expectation_fails_with_evidence(tmp_path):
    f = small(tmp_path, name="wrong", expect=GOOD_EXPECT.replace(
        "backup: {index: 2, type: incremental, reason_contains: changes since}",
        "backup: {index: 2, type: full, reason_contains: rct id unknown}") + "  - min_dedup_ratio: 1000\n")
    p = run(f, "--report", tmp_path / "r.json", code=1)
    out = p.stdout
    assert "FAIL  backup #2 (web, 2nd): full, reason contains \"rct id unknown\"" in out
    assert "backup #2: expected full, was incremental (reason: changes since point 1)" in out
    assert re.search(r"FAIL  min_dedup_ratio: 1000\n\s+read [\d.]+ MiB, stored [\d.]+ MiB: ratio [\d.]+ < 1000", out)
    assert out.rstrip().endswith("wrong: FAIL (2 of 9 expectation(s) failed)")
    rep = load_report(tmp_path / "r.json")
    assert rep["passed"] is False
    failed = [x for x in rep["expectations"] if not x["pass"]]
    lines = f.read_text().splitlines()
    assert [x["line"] for x in failed] == [i + 1 for i, t in enumerate(lines)
                                           if "rct id unknown" in t or "min_dedup_ratio" in t]
    assert failed[0]["evidence"].startswith("backup #2: expected full, was incremental")
    # everything else still holds and says why
    c = checks(rep)
    assert c["restores_match_truth: true"]["pass"]
    assert "every block equals the truth" in c["restores_match_truth: true"]["evidence"]


def test_expected_failure_that_succeeds(tmp_path):
    f = small(tmp_path, name="nofail", expect="  - backup: {index: 1, result: failed}\n  - backups_failed: 1\n")
    p = run(f, code=1)
    assert "backup #1: expected to fail, succeeded (full, reason: no earlier backup of this VM)" in p.stdout
    assert re.search(r"FAIL  backups_failed: 1\n\s+2 of 2 succeeded, 0 failed", p.stdout)


# ---- broken engines ---------------------------------------------------------------------------

def test_engine_that_fails(tmp_path):
    f = small(tmp_path)
    p = run(f, "--engine", "echo 'cannot reach the host' >&2; exit 1", "--report", tmp_path / "r.json", code=1)
    c = checks(load_report(tmp_path / "r.json"))
    assert not c["backups_succeeded: all"]["pass"]
    assert "#1 (web): exit status 1: cannot reach the host" in c["backups_succeeded: all"]["evidence"]
    assert not c["restores_match_truth: true"]["pass"]
    assert "no point to restore" in c["restores_match_truth: true"]["evidence"]
    assert not c["repository_verifies: true"]["pass"]
    assert "backup #2: expected incremental, failed: exit status 1" in p.stdout
    # the host is left as it was: nothing to clean up, nothing to merge
    assert c["no_leftovers: true"]["pass"] and c["no_pending_merges: true"]["pass"]


def test_engine_that_restores_garbage(tmp_path):
    """Backups through the real engine, restores that come back one byte wrong: only the truth
    comparison can tell, and it names the disk and the block."""
    bad = executable(tmp_path / "bad-restore", f"""#!/bin/sh
"{HVBACKUP}" restore --repo "$1" --vm "$2" --point "$3" --disk "$4" --to "$5" >/dev/null || exit 1
printf '\\377' | dd of="$5" bs=1 seek=200000 conv=notrunc 2>/dev/null
""")
    f = small(tmp_path)
    run(f, "--engine", f"{HVBACKUP} backup --host {{host}} --vm {{vm}} --repo {{repo}} --json",
        "--engine-restore", f"{bad} {{repo}} {{vm}} {{point}} {{disk}} {{to}}",
        "--report", tmp_path / "r.json", code=1)
    rep = load_report(tmp_path / "r.json")
    assert rep["engine"] == "external"
    failed = [x["expectation"] for x in rep["expectations"] if not x["pass"]]
    assert failed == ["restores_match_truth: true"]
    ev = checks(rep)["restores_match_truth: true"]["evidence"]
    assert "web point 1 disk web: block 3 differs from the truth (1 of 256 blocks differ)" in ev
    disk = rep["restores"][0]["disks"][0]
    assert (disk["verified"], disk["first_differing_block"], disk["blocks_differing"]) == (False, 3, 1)


def test_engine_that_claims_success_and_does_nothing(tmp_path):
    f = small(tmp_path)
    p = run(f, "--engine", "true", "--report", tmp_path / "r.json", code=1)
    c = checks(load_report(tmp_path / "r.json"))
    assert c["backups_succeeded: all"]["pass"]  # it said so…
    assert "expected full, was of unknown type" in c['backup #1 (web, 1st): full, reason contains "no earlier backup"']["evidence"]
    # its points count (it said it made them) but the repository has none to restore
    assert "web point 2 (at 1d23h30m): the repository holds 0 point(s) of the VM, not 2" in \
        c["restores_match_truth: true"]["evidence"]
    assert "FAIL  restores_match_truth" in p.stdout


def test_engine_that_pretends(tmp_path):
    """An engine that prints a plausible result without touching the host or a repository: its
    own claims pass, the ground truth does not (no reference point was made, nothing to judge
    its restores against)."""
    eng = executable(tmp_path / "eng", """#!/bin/sh
echo '{"id": 1, "type": "full", "reason": "no earlier backup (pretend)", "bytes_read": 1}'
""")
    f = small(tmp_path)
    p = run(f, "--engine", f"{eng} {{vm}}", "--engine-restore", "truncate -s 16M {to}",
            "--report", tmp_path / "r.json", code=1)
    c = checks(load_report(tmp_path / "r.json"))
    assert c["backups_succeeded: all"]["pass"]
    assert c['backup #1 (web, 1st): full, reason contains "no earlier backup"']["pass"]
    assert not c["backup #2 (web, 2nd): incremental, reason contains \"changes since\""]["pass"]
    assert ("web point 1 (at 1d23h30m): no ground truth: backup #1 made no new reference point on the host"
            in c["restores_match_truth: true"]["evidence"])
    assert "FAIL  restores_match_truth" in p.stdout


def test_engine_that_hangs_is_killed(tmp_path):
    f = small(tmp_path)
    p = run(f, "--timeout", "1", "--engine", "sleep 60 & sleep 50", code=1, timeout=60)
    assert "timed out after 1 s (killed)" in p.stdout
    # an engine that exits but leaves something holding its output open: not a timeout (the
    # runner stops waiting for the output, and kills what was left)
    p = run(f, "--timeout", "300", "--engine", "(sleep 600 &); echo done", code=1, timeout=60)
    assert "timed out" not in p.stdout
    line = [x for x in p.stdout.splitlines() if x.startswith("  1 ")][0]
    assert "FAILED" not in line  # it exited 0: the backup succeeded (without a result line)


def test_engine_environment(tmp_path):
    """The engine runs with HVSIM_HOST and HVSIM_NOSYNC=1, and the crash hook only for the
    backup an engine-killed fault armed (then the next one is a clean re-run)."""
    log = tmp_path / "env.log"
    eng = executable(tmp_path / "eng", f"""#!/bin/sh
echo "$HVSIM_HOST|$HVSIM_NOSYNC|${{HVBACKUP_CRASH_AFTER_BLOCKS:-}}|${{HVBACKUP_CRASH_AT_COMMIT:-}}|$1|$2" >> "{log}"
exec "{HVBACKUP}" backup --host "$1" --vm "$2" --repo "$3" --json
""")
    extra_tl = """  - at: 1d22h
    fault: {name: engine-killed, vm: web, after_blocks: 2}
  - at: 1d23h10m
    backup: {vm: web}
"""
    text = SMALL.format(name="killed", seed=3, extra="", expect="""  - backups_succeeded: 2
  - backups_failed: 1
  - backup: {index: 2, result: failed}
  - backup: {index: 3, type: incremental}
  - restores_match_truth: true
  - no_leftovers: true
""").replace("  - at: 1d23h30m\n", extra_tl + "  - at: 1d23h30m\n")
    f = tmp_path / "killed.yaml"
    f.write_text(text)
    os.environ.pop("HVBACKUP_CRASH_AT_COMMIT", None)
    p = subprocess.run([HVSIM, "scenario", "run", f, "--engine", f"{eng} {{host}} {{vm}} {{repo}}"],
                       capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, HVBACKUP_CRASH_AT_COMMIT="2"))  # ours must not leak through
    assert p.returncode == 0, p.stdout
    lines = [line.split("|") for line in log.read_text().splitlines()]
    assert len(lines) == 3
    host = lines[0][0]
    assert host.endswith("/host") and os.path.isabs(host) and not os.path.exists(host)  # removed
    assert [line[1:4] for line in lines] == [["1", "", ""], ["1", "2", ""], ["1", "", ""]]
    assert all(line[0] == host and line[4] == host and line[5] == "web" for line in lines)
    assert "exit status 137" in p.stdout


# ---- usage, --keep ----------------------------------------------------------------------------

def test_keep_folder(tmp_path):
    keep = tmp_path / "run"
    run(small(tmp_path), "--keep", keep, code=0)
    assert (keep / "host" / "host.db").is_file() and (keep / "repo").is_dir()
    state = subprocess.run([HVSIM, "--host", keep / "host", "vm", "list"], capture_output=True, text=True)
    assert state.returncode == 0 and "web" in state.stdout
    p = run(small(tmp_path), "--keep", keep, code=2)  # not empty any more
    assert "not an empty folder" in p.stderr


def test_usage_errors(tmp_path):
    f = small(tmp_path)
    assert "unknown placeholder {bogus}" in run(f, "--engine", "x {bogus}", code=2).stderr
    assert "--engine-restore" in run(f, "--engine", "x {vm}", "--engine-restore", "y {host}", code=2).stderr
    assert "--engine-restore needs --engine" in run(f, "--engine-restore", "y {to}", code=2).stderr
    run(f, "--timeout", "0", code=2)
    run(code=2)
    run(tmp_path / "missing.yaml", code=2)
    broken = tmp_path / "sc" / "broken.yaml"
    broken.write_text(SMALL.format(name="broken", seed=1, extra="", expect="  - restores_match_truth: maybe\n"))
    p = run(broken, code=2)
    assert re.match(r"^.+broken\.yaml:\d+:\d+: ", p.stderr)


def test_events_that_fail_on_the_host_fail_the_run(tmp_path):
    """A fault the host refuses (resizing a disk held by a checkpoint) is reported with the
    event, and the run fails even though every expectation holds."""
    f = tmp_path / "refused.yaml"
    f.write_text(SMALL.format(name="refused", seed=1, extra="", expect="  - backups_succeeded: all\n").replace(
        "timeline:\n", """timeline:
  - at: 2h
    fault: {name: stale-recovery-checkpoint, vm: web}
  - at: 3h
    fault: {name: disk-resize, vm: web, disk: data, size: 16MiB}
"""))
    p = run(f, "--report", tmp_path / "r.json", code=1)
    assert "ERROR at 3h: fault disk-resize of web (line " in p.stdout
    assert "has checkpoints" in p.stdout
    rep = load_report(tmp_path / "r.json")
    assert rep["passed"] is False and all(x["pass"] for x in rep["expectations"]) and len(rep["errors"]) == 1


# ---- ci/run-scenarios -------------------------------------------------------------------------

def test_shards_add_up_to_the_whole(tmp_path):
    for i in range(5):
        small(tmp_path, name=f"s{i}", seed=i + 1,
              expect=GOOD_EXPECT if i != 3 else "  - backup: {index: 1, type: incremental}\n")
    d = tmp_path / "sc"
    whole = tmp_path / "whole.xml"
    p = run_scenarios(d, "-j", "2", "--junit", whole, code=1)
    assert p.stdout.strip().splitlines()[-1] == "4 passed, 1 failed"
    totals, names = [0, 0], []
    for k in (1, 2, 3):
        xml = tmp_path / f"{k}.xml"
        p = run_scenarios(d, "--shard", f"{k}/3", "--junit", xml)
        suite = ET.parse(xml).getroot().find("testsuite")
        totals[0] += int(suite.get("tests"))
        totals[1] += int(suite.get("failures"))
        names += [tc.get("name") for tc in suite.iter("testcase")]
        assert p.returncode == (1 if "s3" in [tc.get("name") for tc in suite.iter("testcase")] else 0)
    suite = ET.parse(whole).getroot().find("testsuite")
    assert totals == [int(suite.get("tests")), int(suite.get("failures"))] == [5, 1]
    assert sorted(names) == [f"s{i}" for i in range(5)]
    # shard K/N takes positions i with i % N == K - 1 of the sorted list
    assert [tc.get("name") for tc in ET.parse(tmp_path / "1.xml").getroot().iter("testcase")] == ["s0", "s3"]
    failure = [tc for tc in suite.iter("testcase") if tc.get("name") == "s3"][0].find("failure")
    assert failure.get("message") == ("backup #1 (web, 1st): incremental: backup #1: expected incremental, "
                                      "was full (reason: no earlier backup of this VM)")
    assert "s3: FAIL" in failure.text


def test_long_scenarios_left_out_unless_asked(tmp_path):
    small(tmp_path, name="quick")
    small(tmp_path, name="slow", extra="tags: [long]\n")
    d = tmp_path / "sc"
    p = run_scenarios(d, code=0)
    assert "1 long left out" in p.stdout and p.stdout.strip().endswith("1 passed, 0 failed")
    assert run_scenarios(d, "--include-long", code=0).stdout.strip().endswith("2 passed, 0 failed")
    p = run_scenarios(d / "slow.yaml", code=0)  # named: runs
    assert "slow" in p.stdout and p.stdout.strip().endswith("1 passed, 0 failed")


def test_run_scenarios_usage(tmp_path):
    (tmp_path / "empty").mkdir()
    assert "no scenario file" in run_scenarios(tmp_path / "empty", code=2).stderr
    small(tmp_path)
    run_scenarios(tmp_path / "sc", "--shard", "3/2", code=2)
    run_scenarios(tmp_path / "sc", "--shard", "x", code=2)
    # an invalid file is a failed scenario, with the loader's message
    (tmp_path / "sc" / "bad.yaml").write_text("name: bad\n")
    p = run_scenarios(tmp_path / "sc", "--junit", tmp_path / "j.xml", code=1)
    assert re.search(r"FAIL  bad .*\n\s+could not run \(exit status 2\): .*bad\.yaml:\d+:\d+: ", p.stdout)
    # an engine for every run
    p = run_scenarios(tmp_path / "sc" / "small.yaml", "--engine", "exit 1", code=1)
    assert "exit status 1" in p.stdout
