"""Corruption corpus for hvsim's VHDX reader: every mutation of a valid file must end in a clear
verdict, never in a crash, a hang, a sanitizer report or an allocation sized from a bad field.

The corpus is built at test time from files made by $HVSIM itself (a dynamic disk with data, a
fixed disk, a differencing child with partially present blocks over a parent, a file with a
pending log left by the crash fault point) and by qemu-img. Each mutation is applied to a copy of
its source, then `check`, `info`, `export` and `map` run on the copy, each with a CPU-time limit
(a runaway loop), a wall-clock backstop (a hang) and, outside ASan, an address-space limit (an
allocation sized from a bad field). Mutations run ahead of their test, one per CPU.

Each mutation states the outcome the spec (reference/vhdx.md section 1) calls for:
  BAD(kw)   the file is invalid: check exits 1 or 2 naming the structure (kw); info, map and
            export refuse it with one line "hvsim: FILE: ..." naming the structure.
  TOL(kw)   a deviation a reader tolerates (reserved bits, one broken copy of a structure that
            has two): check exits 1 naming it; info, map and export work, and export gives the
            original content (or the content the spec defines for the changed field).
  OK()      harmless (reserved areas, GUIDs a base disk does not use): check exits 0 and export
            gives the original content.
  OPEN()    the spec leaves open whether check reports it; the content must still be right.
A mutation's `note` names the defect its failure points at.
"""
import errno
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import importlib.util
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Optional

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# the binary the conftest `hvsim` fixture names; needed at import time for the limits below
HVSIM = os.path.abspath(os.environ.get("HVSIM") or os.path.join(ROOT, "build", "bin", "hvsim"))
ASAN = "/asan/" in HVSIM  # RLIMIT_AS breaks ASan, and ASan commands need more CPU
CPU_LIMIT = 20 if ASAN else 10   # seconds of CPU one command may use (RLIMIT_CPU)
WALL_LIMIT = 120                 # seconds of wall time: a hang that does not spin
PARALLEL = max(2, min(8, 2 * (os.cpu_count() or 1)))  # mutations in flight: two per CPU (ASan/LSan idle at exit)
OUT_CAP = 1 << 20                # bytes of a command's output kept for the assertions
AS_LIMIT = 4 << 30  # RLIMIT_AS outside ASan: an allocation sized from a bad field fails the test
SANITIZER_MARKS = ("AddressSanitizer", "runtime error", "LeakSanitizer", "UndefinedBehaviorSanitizer")

KiB = 1024
MiB = 1024 * 1024
GiB = 1024 * MiB
TiB = 1024 * GiB

# ---- CRC-32C ----------------------------------------------------------------------------------

# the helpers of this directory's conftest.py, loaded under a private name (as test_qemu.py does)
_spec = importlib.util.spec_from_file_location(
    "_vhdx_conftest_helpers_corrupt", os.path.join(os.path.dirname(os.path.abspath(__file__)), "conftest.py"))
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
crc32c = _helpers.crc32c


def crc32c_zero_field(buf):
    """CRC-32C of buf with its bytes 4..8 (the checksum field) taken as zero."""
    return crc32c(bytes(buf[:4]) + b"\0\0\0\0" + bytes(buf[8:]))


# ---- on-disk constants ------------------------------------------------------------------------

H1, H2 = 64 * KiB, 128 * KiB
RT1, RT2 = 192 * KiB, 256 * KiB
HDR_FIELDS = {  # name: (offset, size)
    "signature": (0, 4), "checksum": (4, 4), "sequence": (8, 8), "file_write_guid": (16, 16),
    "data_write_guid": (32, 16), "log_guid": (48, 16), "log_version": (64, 2), "version": (66, 2),
    "log_length": (68, 4), "log_offset": (72, 8), "reserved": (80, 4016), "reserved_end": (4095, 1),
}
GUID_BAT = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08").bytes_le
GUID_META = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
ITEMS = {
    "file_params": uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B").bytes_le,
    "vdisk_size": uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8").bytes_le,
    "vdisk_id": uuid.UUID("BECA12AB-B2E6-4523-93EF-C309E000C746").bytes_le,
    "logical_sector": uuid.UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F").bytes_le,
    "physical_sector": uuid.UUID("CDA348C7-445D-4471-9CC9-E9885251C556").bytes_le,
    "parent_locator": uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C").bytes_le,
}


def pread(path, off, n):
    with open(path, "rb") as f:
        f.seek(off)
        return f.read(n)


def pwrite(path, off, data):
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(data)


# ---- layout of a valid source file (parsed in Python, independent of hvsim) ---------------------

@dataclass
class LogEntry:
    pos: int
    length: int
    tail: int
    seq: int
    ndesc: int


@dataclass
class Layout:
    path: str
    size: int
    cur: int            # current header slot, 0 or 1
    hdr: list           # both 4 KiB headers (bytes)
    log_off: int
    log_len: int
    log_guid: bytes
    rt: bytes
    rt_entries: list    # (index, guid, off, len, req)
    bat_off: int
    bat_len: int
    bat_rt_index: int
    meta_off: int
    meta_len: int
    meta_rt_index: int
    items: dict         # name -> (entry index, off, len, flags)
    nitems: int
    bs: int
    fp_flags: int
    vs: int
    lss: int
    cr: int
    nblocks: int
    bat: list           # all scanned entries (u64)
    log_entries: list

    def hdr_off(self, slot):
        return H1 if slot == 0 else H2

    def pidx(self, b):
        return b + b // self.cr

    def sbidx(self, chunk):
        return chunk * (self.cr + 1) + self.cr

    def present(self, state=None):
        """Payload blocks with data in this file: list of (block, bat index, offset, state)."""
        out = []
        for b in range(self.nblocks):
            i = self.pidx(b)
            e = self.bat[i] if i < len(self.bat) else 0
            if e & 7 in (6, 7) and (state is None or e & 7 == state):
                out.append((b, i, e & ~0xFFFFF, e & 7))
        return out

    def item_value_off(self, name):
        return self.meta_off + self.items[name][1]

    def item_entry_off(self, name):
        return self.meta_off + 32 + 32 * self.items[name][0]


def parse_layout(path):
    size = os.path.getsize(path)
    hdr = [pread(path, H1, 4096), pread(path, H2, 4096)]
    seqs = [struct.unpack_from("<Q", h, 8)[0] for h in hdr]
    cur = 1 if seqs[1] > seqs[0] else 0
    h = hdr[cur]
    log_guid = h[48:64]
    log_len, log_off = struct.unpack_from("<IQ", h, 68)
    rt = pread(path, RT1, 64 * KiB)
    n = struct.unpack_from("<I", rt, 8)[0]
    ents = []
    for i in range(n):
        g = rt[16 + 32 * i:32 + 32 * i]
        off, ln, req = struct.unpack_from("<QII", rt, 32 + 32 * i)
        ents.append((i, g, off, ln, req))
    bat = [e for e in ents if e[1] == GUID_BAT][0]
    meta = [e for e in ents if e[1] == GUID_META][0]
    mt = pread(path, meta[2], 64 * KiB)
    assert mt[:8] == b"metadata"
    nitems = struct.unpack_from("<H", mt, 10)[0]
    items = {}
    for i in range(nitems):
        g = mt[32 + 32 * i:48 + 32 * i]
        off, ln, fl = struct.unpack_from("<III", mt, 48 + 32 * i)
        for name, guid in ITEMS.items():
            if g == guid:
                items[name] = (i, off, ln, fl)

    def item(name, fmt):
        return struct.unpack(fmt, pread(path, meta[2] + items[name][1], struct.calcsize(fmt)))

    bs, fp_flags = item("file_params", "<II")
    (vs,) = item("vdisk_size", "<Q")
    (lss,) = item("logical_sector", "<I")
    cr = (1 << 23) * lss // bs
    nblocks = -(-vs // bs)
    nsb = -(-nblocks // cr)
    nent = min(bat[3] // 8, nsb * (cr + 1))
    raw = pread(path, bat[2], nent * 8)
    bat_entries = list(struct.unpack("<%dQ" % nent, raw))
    logs = []
    if log_guid != bytes(16):
        for pos in range(0, log_len, 4096):
            e = pread(path, log_off + pos, 64)
            if e[:4] == b"loge" and e[32:48] == log_guid:
                ln, tail, seq, nd = struct.unpack_from("<IIQI", e, 8)
                logs.append(LogEntry(pos, ln, tail, seq, nd))
    return Layout(path, size, cur, hdr, log_off, log_len, log_guid, rt, ents, bat[2], bat[3], bat[0],
                  meta[2], meta[3], meta[0], items, nitems, bs, fp_flags, vs, lss, cr, nblocks,
                  bat_entries, logs)


# ---- running hvsim ----------------------------------------------------------------------------
# ---- running hvsim ----------------------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def address_space_limit():
    """Every hvsim this module starts inherits RLIMIT_AS (set here rather than in a preexec_fn,
    so subprocess can still vfork). ASan reserves terabytes of shadow memory: no limit there."""
    if ASAN:
        yield
        return
    old = resource.getrlimit(resource.RLIMIT_AS)
    hard = old[1]
    soft = AS_LIMIT if hard == resource.RLIM_INFINITY else min(AS_LIMIT, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    yield
    resource.setrlimit(resource.RLIMIT_AS, old)


def _env():
    env = dict(os.environ)
    if ASAN:
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    return env


@dataclass(repr=False)
class Result:
    cmd: str
    rc: Optional[int]   # None: killed at the wall-clock limit
    out: str            # the first OUT_CAP bytes
    err: str
    wall: float
    out_lines: int      # lines of the whole stdout

    def __repr__(self):
        return "<%s -> %s>" % (self.cmd, self.rc)

    def __str__(self):
        return "%s -> exit %s (%.1fs)\n  stdout: %s\n  stderr: %s" % (
            self.cmd, self.rc, self.wall, self.out[-1500:].strip(), self.err[-3000:].strip())

    @property
    def runaway(self):
        return self.rc is None or self.rc == -signal.SIGXCPU


def run_cmd(args, workdir, tag):
    """Runs one hvsim command with output to files (no pipe can fill up). RLIMIT_CPU stops a
    runaway loop after CPU_LIMIT seconds of CPU (SIGXCPU), a wall-clock limit a hang that does not
    spin. CPU time, not wall time, is the verdict, so a loaded machine does not make it flaky."""
    o = open(os.path.join(workdir, tag + ".out"), "w+b")
    e = open(os.path.join(workdir, tag + ".err"), "w+b")
    t0 = time.monotonic()
    p = subprocess.Popen([HVSIM, "vhdx"] + args, cwd=workdir, stdout=o, stderr=e, env=_env())
    try:  # set on the running child: a preexec_fn would stop subprocess from using vfork
        resource.prlimit(p.pid, resource.RLIMIT_CPU, (CPU_LIMIT, CPU_LIMIT + 5))
    except OSError:
        pass  # already exited
    try:
        rc = p.wait(timeout=WALL_LIMIT)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        rc = None
    wall = time.monotonic() - t0
    o.seek(0)
    out = o.read(OUT_CAP)
    lines = out.count(b"\n")
    for chunk in iter(lambda: o.read(OUT_CAP), b""):
        lines += chunk.count(b"\n")
    e.seek(0)
    err = e.read(OUT_CAP)
    o.close()
    e.close()
    dec = lambda b: b.decode("utf-8", "replace")
    return Result(" ".join(["hvsim", "vhdx"] + args), rc, dec(out), dec(err), wall, lines)


def hv(*args, env=None, check=True):
    e = _env()
    if env:
        e.update(env)
    p = subprocess.run([HVSIM, "vhdx"] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, env=e, timeout=300)
    if check:
        assert p.returncode == 0, "hvsim vhdx %s: %s%s" % (" ".join(map(str, args)), p.stdout, p.stderr)
    return p


# ---- the valid sources ------------------------------------------------------------------------

class Source:
    def __init__(self, name, path, layout, raw):
        self.name, self.path, self.L, self.raw = name, path, layout, raw  # raw: its export

    def read(self, off, n):
        return pread(self.raw, off, n)


def _scratch_root(tmp_path_factory):
    """Work files live on tmpfs when there is one: hvsim fsyncs every file it writes (export,
    write), and on a real disk that alone would take most of the time budget."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        return tempfile.mkdtemp(prefix="hvsim-corrupt-", dir=shm)
    return tempfile.mkdtemp(prefix="hvsim-corrupt-", dir=str(tmp_path_factory.getbasetemp()))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    d = _scratch_root(tmp_path_factory)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def sources(scratch, address_space_limit, hvsim):
    assert hvsim == HVSIM
    d = os.path.join(scratch, "src")
    os.mkdir(d)
    p = lambda n: os.path.join(d, n)
    # dynamic: 64 MiB, 1 MiB blocks; data in blocks 1-3, 10 (partly) and the last block 63
    hv("create", p("dyn.vhdx"), "--size", "64MiB", "--block-size", "1MiB", "--seed", "11")
    hv("write", p("dyn.vhdx"), "--offset", "1MiB", "--pattern", "0xAA", "--length", "3MiB", "--seed", "12")
    hv("write", p("dyn.vhdx"), "--offset", "10MiB", "--pattern", "0x55", "--length", "100000", "--seed", "13")
    hv("write", p("dyn.vhdx"), "--offset", "63MiB", "--pattern", "0x5A", "--length", "1MiB", "--seed", "14")
    # fixed: 16 MiB, 1 MiB blocks
    hv("create", p("fix.vhdx"), "--size", "16MiB", "--type", "fixed", "--block-size", "1MiB", "--seed", "21")
    hv("write", p("fix.vhdx"), "--offset", "0", "--pattern", "0x11", "--length", "2MiB", "--seed", "22")
    hv("write", p("fix.vhdx"), "--offset", "9MiB", "--pattern", "0x12", "--length", "4096", "--seed", "23")
    # differencing: parent 64 MiB / 2 MiB blocks, child with partially present blocks
    hv("create", p("par.vhdx"), "--size", "64MiB", "--block-size", "2MiB", "--seed", "31")
    hv("write", p("par.vhdx"), "--offset", "0", "--pattern", "0x33", "--length", "8MiB", "--seed", "32")
    hv("create", p("child.vhdx"), "--parent", p("par.vhdx"), "--seed", "33")
    hv("write", p("child.vhdx"), "--offset", "4096", "--pattern", "0x77", "--length", "8192", "--seed", "34")
    hv("write", p("child.vhdx"), "--offset", "20MiB", "--pattern", "0x78", "--length", "2MiB", "--seed", "35")
    hv("write", p("child.vhdx"), "--offset", str(5 * MiB + 512), "--pattern", "0x79", "--length", "512", "--seed", "36")
    # pending log: a write cut by the crash fault point after its log entry became stable
    for n in range(1, 40):
        shutil.copyfile(p("dyn.vhdx"), p("log.vhdx"))
        hv("write", p("log.vhdx"), "--offset", "30MiB", "--pattern", "0xCC", "--length", "1MiB",
           env={"HVSIM_VHDX_CRASH_AFTER_STEPS": str(n)}, check=False)
        if '"log_guid": "{00000000-0000-0000-0000-000000000000}"' not in hv("info", p("log.vhdx"), "--json").stdout:
            break
    else:
        pytest.fail("no crash cut of 'hvsim vhdx write' left a pending log")
    # qemu-img: dynamic, 1 MiB blocks, from a raw image with three data MiB
    with open(p("q.raw"), "wb") as f:
        f.truncate(48 * MiB)
        for off, b in ((0, 0x21), (5 * MiB, 0x22), (47 * MiB, 0x23)):
            f.seek(off)
            f.write(bytes([b]) * MiB)
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "vhdx", "-o",
                    "subformat=dynamic,block_size=1M", p("q.raw"), p("qemu.vhdx")], check=True)

    out = {}
    for name in ("dyn", "fix", "child", "log", "qemu", "par"):
        path = p(name + ".vhdx")
        assert "no problems found" in hv("check", path).stdout
        raw = p(name + ".raw")
        hv("export", path, raw)
        out[name] = Source(name, path, parse_layout(path), raw)
    # the sources are what the corpus assumes
    L = out["log"].L
    assert L.log_guid != bytes(16) and L.log_entries, "log source has no pending entry"
    assert out["log"].read(30 * MiB, MiB) == b"\xCC" * MiB, "pending log replays the BAT update"
    assert out["child"].L.present(7), "child has no partially present block"
    assert out["child"].read(4096, 8192) == b"\x77" * 8192 and out["child"].read(0, 4096) == b"\x33" * 4096
    assert out["dyn"].L.present()[0][0] == 1 and out["dyn"].read(MiB, 16) == b"\xAA" * 16
    return out


# ---- expectations -----------------------------------------------------------------------------

@dataclass
class Exp:
    check: frozenset        # allowed exit statuses of `check`
    kw: Optional[str]       # regex (case-insensitive) that check output and error lines must contain
    info: str               # "ok" | "fail" | "any"
    map: str
    export: object          # "same" | "fail" | "ok" | "any" | Content (the expected raw image)
    max_problems: int = 12500  # check: a few lines per BAT entry of the sources at most


def BAD(kw, info="fail", map_="fail", export="fail", max_problems=12500):
    return Exp(frozenset({1, 2}), kw, info, map_, export, max_problems)


def TOL(kw, export="same"):
    return Exp(frozenset({1}), kw, "ok", "ok", export)


def OK(export="same"):
    return Exp(frozenset({0}), None, "ok", "ok", export)


def OPEN(export="same"):
    """The spec leaves open whether check reports it (non-current header, reserved fields), but
    the file must read as the expectation says."""
    return Exp(frozenset({0, 1}), None, "ok", "ok", export)


NOT_VHDX = Exp(frozenset({2}), "not a VHDX file", "fail", "fail", "fail")


@dataclass
class Content:
    """The expected export: the source's own export, cut to `size` (None: as is), with the
    `zero` ranges (virtual offset, length) reading as zeros, then the `data` (virtual offset,
    bytes) written over it."""
    size: Optional[int] = None
    zero: tuple = ()
    data: tuple = ()


def zeroed(*ranges):
    return Content(zero=ranges)


def prefix(n):
    return Content(size=n)


def data_ranges(f, size):
    """[start, end) ranges that may hold non-zero bytes (SEEK_DATA/SEEK_HOLE; whole file if the
    file system cannot tell)."""
    out, pos = [], 0
    try:
        while pos < size:
            d = os.lseek(f.fileno(), pos, os.SEEK_DATA)
            h = min(os.lseek(f.fileno(), d, os.SEEK_HOLE), size)
            out.append((d, h))
            pos = h
    except OSError as e:
        if e.errno != errno.ENXIO:  # ENXIO: only a hole remains
            return [(0, size)]
    return out


def compare_export(got_path, src, want):
    """Byte-compares an export with the expected content, reading only where either file has
    data (holes read as zeros on both sides)."""
    size = os.path.getsize(src.raw) if want.size is None else want.size
    got_size = os.path.getsize(got_path)
    assert got_size == size, "export is %d bytes, expected %d" % (got_size, size)
    with open(got_path, "rb") as g, open(src.raw, "rb") as o:
        spans = sorted(data_ranges(g, size) + data_ranges(o, size) +
                       [(off, off + len(b)) for off, b in want.data])
        step, pos = 4 * MiB, 0
        for a, b in spans:
            for off in range(max(a, pos), b, step):
                n = min(step, b - off)
                got = pread_f(g, off, n)
                exp = bytearray(pread_f(o, off, n).ljust(n, b"\0"))
                for zo, zl in want.zero:
                    lo, hi = max(zo, off), min(zo + zl, off + n)
                    if lo < hi:
                        exp[lo - off:hi - off] = bytes(hi - lo)
                for do, db in want.data:
                    lo, hi = max(do, off), min(do + len(db), off + n)
                    if lo < hi:
                        exp[lo - off:hi - off] = db[lo - do:hi - do]
                if got != exp:
                    first = next(i for i in range(n) if got[i] != exp[i])
                    pytest.fail("export differs from the expected content at virtual offset %d "
                                "(got 0x%02x, expected 0x%02x)" % (off + first, got[first], exp[first]))
            pos = max(pos, b)


def pread_f(f, off, n):
    return os.pread(f.fileno(), n, off)


# ---- mutation operations (each takes the copy's path and the source layout) --------------------

def op_poke(off, fmt, val):
    def f(p, L):
        o = off(L) if callable(off) else off
        v = val(L) if callable(val) else val
        pwrite(p, o, struct.pack(fmt, v) if fmt else v)
    return f


def op_xor(off, mask=0x01):
    def f(p, L):
        o = off(L) if callable(off) else off
        b = pread(p, o, 1)
        pwrite(p, o, bytes([b[0] ^ mask]))
    return f


def op_truncate(size):
    def f(p, L):
        os.truncate(p, size(L) if callable(size) else size)
    return f


def slots(L, which):
    return {"h1": [0], "h2": [1], "both": [0, 1], "cur": [L.cur], "old": [1 - L.cur]}[which]


def op_hdr(which, fld, val, fix=True):
    """Sets header field `fld` (name or byte offset) in the selected slots, then fixes the CRC."""
    def f(p, L):
        for s in slots(L, which):
            base = L.hdr_off(s)
            if isinstance(fld, int):
                off, size = fld, 1
            else:
                off, size = HDR_FIELDS[fld]
            v = val(L, s) if callable(val) else val
            if isinstance(v, int):
                v = v.to_bytes(size, "little")
            pwrite(p, base + off, v)
            if fix:
                h = bytearray(pread(p, base, 4096))
                struct.pack_into("<I", h, 4, crc32c_zero_field(h))
                pwrite(p, base, bytes(h))
    return f


def op_hdr_flip(which, fld):
    """Flips the low bit of a header field's first byte without fixing the checksum."""
    def f(p, L):
        off = HDR_FIELDS[fld][0] if isinstance(fld, str) else fld
        for s in slots(L, which):
            op_xor(L.hdr_off(s) + off)(p, L)
    return f


def op_rt(copies, edit, fix=True):
    """edit(bytearray table, L) in region table copies (1, 2 or both), then fixes the CRC."""
    def f(p, L):
        for c in copies:
            base = RT1 if c == 1 else RT2
            t = bytearray(pread(p, base, 64 * KiB))
            edit(t, L)
            if fix:
                struct.pack_into("<I", t, 4, crc32c_zero_field(t))
            pwrite(p, base, bytes(t))
    return f


def rt_set(entry, field_, fmt, val):
    """Edits field (guid/off/len/req) of region table entry `entry` ('bat', 'meta' or an index)."""
    offs = {"guid": 0, "off": 16, "len": 24, "req": 28}

    def edit(t, L):
        i = {"bat": L.bat_rt_index, "meta": L.meta_rt_index}.get(entry, entry)
        v = val(L) if callable(val) else val
        at = 16 + 32 * i + offs[field_]
        if fmt:
            struct.pack_into(fmt, t, at, v)
        else:
            t[at:at + len(v)] = v
    return edit


def op_item(name, field_, fmt, val):
    """Edits the metadata table entry of item `name` (guid/off/len/flags)."""
    offs = {"guid": 0, "off": 16, "len": 20, "flags": 24}

    def f(p, L):
        v = val(L) if callable(val) else val
        at = L.item_entry_off(name) + offs[field_]
        pwrite(p, at, struct.pack(fmt, v) if fmt else v)
    return f


def op_value(name, rel, fmt, val):
    """Writes into the value of metadata item `name` at `rel`."""
    def f(p, L):
        v = val(L) if callable(val) else val
        pwrite(p, L.item_value_off(name) + rel, struct.pack(fmt, v) if fmt else v)
    return f


def op_bat(idx, val):
    """Sets BAT entry idx(L) to val(L, old_entry)."""
    def f(p, L):
        i = idx(L) if callable(idx) else idx
        old = L.bat[i] if i < len(L.bat) else 0
        v = val(L, old) if callable(val) else val
        pwrite(p, L.bat_off + 8 * i, struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF))
    return f


def first_present(L, state=None):
    return L.present(state)[0]


def with_state(st):
    return lambda L, e: (e & ~7) | st


def with_off(off):
    return lambda L, e: ((off(L) if callable(off) else off) & ~0xFFFFF) | (e & 0xFFFFF)


# log entries ------------------------------------------------------------------------------------

def entry_bytes(p, L, pos):
    ln = struct.unpack("<I", pread(p, L.log_off + pos + 8, 4))[0]
    return bytearray(pread(p, L.log_off + pos, ln))


def desc_off(i):
    return 64 + 32 * i if i < 126 else 4096 + (i - 126) // 128 * 4096 + (i - 126) % 128 * 32


def op_log(edit, fix=True, pos=None):
    """edit(bytearray entry, L) on the first pending entry, then fixes its CRC."""
    def f(p, L):
        at = L.log_entries[0].pos if pos is None else pos
        e = entry_bytes(p, L, at)
        edit(e, L)
        if fix:
            struct.pack_into("<I", e, 4, crc32c_zero_field(e))
        pwrite(p, L.log_off + at, bytes(e))
    return f


def log_set(off, fmt, val):
    def edit(e, L):
        struct.pack_into(fmt, e, off, val(L, e) if callable(val) else val)
    return edit


def build_entry(seq, tail, guid, descs, flushed, last):
    """descs: ('desc', file_off, 4096 bytes) or ('zero', file_off, length)."""
    nd = len(descs)
    dsec = (nd + 2 + 127) // 128
    data = [d for d in descs if d[0] == "desc"]
    e = bytearray((dsec + len(data)) * 4096)
    e[0:4] = b"loge"
    struct.pack_into("<IIQI", e, 8, len(e), tail, seq, nd)
    e[32:48] = guid
    struct.pack_into("<QQ", e, 48, flushed, last)
    k = 0
    for i, d in enumerate(descs):
        o = desc_off(i)
        if d[0] == "zero":
            e[o:o + 4] = b"zero"
            struct.pack_into("<QQQ", e, o + 8, d[2], d[1], seq)
        else:
            sec = d[2]
            e[o:o + 4] = b"desc"
            e[o + 4:o + 8] = sec[4092:4096]
            e[o + 8:o + 16] = sec[0:8]
            struct.pack_into("<QQ", e, o + 16, d[1], seq)
            s = (dsec + k) * 4096
            e[s:s + 4] = b"data"
            struct.pack_into("<I", e, s + 4, seq >> 32)
            e[s + 8:s + 4092] = sec[8:4092]
            struct.pack_into("<I", e, s + 4092, seq & 0xFFFFFFFF)
            k += 1
    struct.pack_into("<I", e, 4, crc32c_zero_field(e))
    return bytes(e)


def orig_descs(p, L):
    """The descriptors of the pending entry, as build_entry tuples."""
    le = L.log_entries[0]
    e = entry_bytes(p, L, le.pos)
    dsec = (le.ndesc + 2 + 127) // 128
    out, k = [], 0
    for i in range(le.ndesc):
        o = desc_off(i)
        tgt = struct.unpack_from("<Q", e, o + 16)[0]
        if e[o:o + 4] == b"zero":
            out.append(("zero", tgt, struct.unpack_from("<Q", e, o + 8)[0]))
        else:
            s = (dsec + k) * 4096
            sec = bytes(e[o + 8:o + 16]) + bytes(e[s + 8:s + 4092]) + bytes(e[o + 4:o + 8])
            out.append(("desc", tgt, sec))
            k += 1
    return out, struct.unpack_from("<QQ", e, 48)


def op_log_replace(make):
    """Clears the log region and writes the entries make(p, L) returns as [(pos, bytes)]."""
    def f(p, L):
        ents = make(p, L)
        pwrite(p, L.log_off, bytes(L.log_len))
        for pos, b in ents:
            pwrite(p, L.log_off + pos, b)
    return f


# ---- the corpus -------------------------------------------------------------------------------

@dataclass
class Mut:
    id: str
    source: str
    ops: list
    exp: object         # Exp, or ("trunc", size(L)) resolved by trunc_exp
    note: str = ""      # the defect a failure of this case points at
    parent_op: object = None  # ("parent", op) mutates a private parent copy; ("loop",) makes one


MUTS = []


def M(id_, source, ops, exp, note="", parent_op=None):
    MUTS.append(Mut(id_, source, ops if isinstance(ops, list) else [ops], exp, note, parent_op))


def blk1_off(L):
    """File offset of virtual block 1, the first block with data in dyn-derived sources."""
    b, i, off, st = first_present(L)
    assert b == 1
    return off


def build_corpus():
    WRAP = "offset + length wraps around 2^64 and passes the end-of-file check"
    ONE_COPY = "one broken copy must not make the file unreadable: the other copy is valid"

    # ---- file type identifier
    for k in (0, 7):
        M("ident-sig-byte%d" % k, "dyn", op_xor(k), NOT_VHDX)
    M("ident-creator", "dyn", op_xor(8 + 3), OK())
    M("ident-reserved", "dyn", op_xor(60000, 0xFF), OK())

    # ---- headers: raw bit flips (the checksum no longer matches)
    for fld, which in (("signature", "h1"), ("checksum", "h2"), ("sequence", "h1"), ("version", "h2"),
                       ("log_guid", "h1"), ("log_offset", "h2"), ("reserved_end", "h1")):
        M("hdr-flip-%s-%s" % (which, fld), "dyn", op_hdr_flip(which, fld),
          TOL("header %s" % which[1]), note=ONE_COPY)
    for fld in ("signature", "checksum", "sequence", "version", "log_offset", "reserved"):
        M("hdr-flip-both-%s" % fld, "dyn", op_hdr_flip("both", fld), BAD("no valid header"))
    M("hdr-zero-both", "dyn", [op_poke(H1, None, bytes(4096)), op_poke(H2, None, bytes(4096))], BAD("no valid header"))
    M("qemu-hdr-flip-cur", "qemu", op_hdr_flip("cur", "log_guid"), TOL("header"), note=ONE_COPY)
    M("qemu-hdr-flip-both", "qemu", op_hdr_flip("both", "version"), BAD("no valid header"))

    # ---- headers: field values with a valid checksum, in both copies
    M("hdr-version-2", "dyn", op_hdr("both", "version", 2), BAD("Version"))
    M("hdr-version-0", "dyn", op_hdr("both", "version", 0), BAD("Version"))
    M("hdr-logversion-1-empty-log", "dyn", op_hdr("both", "log_version", 1), TOL("LogVersion"))
    M("hdr-logversion-1-pending-log", "log", op_hdr("both", "log_version", 1), BAD("LogVersion"))
    M("hdr-loglength-0", "dyn", op_hdr("both", "log_length", 0), BAD("LogLength"))
    M("hdr-loglength-unaligned", "dyn", op_hdr("both", "log_length", MiB + 4096), BAD("LogLength"))
    M("hdr-loglength-0xFFF00000", "dyn", op_hdr("both", "log_length", 0xFFF00000), BAD("log"))
    M("hdr-loglength-over-metadata", "dyn", op_hdr("both", "log_length", 2 * MiB), BAD("overlaps the log"))
    M("hdr-logoffset-0", "dyn", op_hdr("both", "log_offset", 0), BAD("LogOffset"))
    M("hdr-logoffset-512k", "dyn", op_hdr("both", "log_offset", 512 * KiB), BAD("LogOffset"))
    M("hdr-logoffset-unaligned", "dyn", op_hdr("both", "log_offset", MiB + 4096), BAD("LogOffset"))
    M("hdr-logoffset-metadata", "dyn", op_hdr("both", "log_offset", 2 * MiB), BAD("overlaps the log"))
    M("hdr-logoffset-payload", "dyn", op_hdr("both", "log_offset", 4 * MiB), BAD("overlaps"))
    M("hdr-logoffset-eof", "dyn", op_hdr("both", "log_offset", lambda L, s: L.size), BAD("log"))
    M("hdr-logoffset-2^63", "dyn", op_hdr("both", "log_offset", 1 << 63), BAD("log"))
    M("hdr-logoffset-wraps", "dyn", op_hdr("both", "log_offset", (1 << 64) - MiB), BAD("LogOffset|log"),
      note="LogOffset " + WRAP)
    M("hdr-logoffset-wraps-pending", "log", op_hdr("both", "log_offset", (1 << 64) - MiB), BAD("LogOffset|log"),
      note="LogOffset " + WRAP)
    M("hdr-logguid-no-entries", "dyn", op_hdr("both", "log_guid", uuid.UUID(int=0x1234).bytes_le), BAD("log"))
    M("hdr-filewriteguid", "dyn", op_hdr("both", "file_write_guid", uuid.UUID(int=7).bytes_le), OK())
    M("hdr-datawriteguid", "dyn", op_hdr("both", "data_write_guid", uuid.UUID(int=8).bytes_le), OK())
    M("hdr-reserved-set", "dyn", op_hdr("both", 4000, b"\x5a"), OPEN())
    M("hdr-h1-seq-max", "dyn", op_hdr("h1", "sequence", (1 << 64) - 1), OK())
    M("hdr-same-seq-different-content", "dyn",
      [op_hdr("both", "sequence", 77), op_hdr("h1", "file_write_guid", uuid.UUID(int=9).bytes_le)],
      BAD("SequenceNumber"))
    M("hdr-same-seq-same-content", "dyn",
      [op_hdr("both", "sequence", 77), op_hdr("both", "file_write_guid", uuid.UUID(int=9).bytes_le)], OK())
    # ---- headers: one copy only (valid checksum): only the current header's fields count
    M("hdr-cur-version-2", "dyn", op_hdr("cur", "version", 2), BAD("Version"))
    M("hdr-old-version-2", "dyn", op_hdr("old", "version", 2), OPEN())
    M("hdr-cur-logguid", "dyn", op_hdr("cur", "log_guid", uuid.UUID(int=0x99).bytes_le), BAD("log"))
    M("hdr-old-logguid", "dyn", op_hdr("old", "log_guid", uuid.UUID(int=0x99).bytes_le), OPEN())
    M("hdr-cur-logoffset-0", "dyn", op_hdr("cur", "log_offset", 0), BAD("LogOffset"))
    M("hdr-old-logoffset-0", "dyn", op_hdr("old", "log_offset", 0), OPEN())
    M("hdr-cur-logguid-pending-changed", "log", op_hdr("cur", "log_guid", uuid.UUID(int=0x98).bytes_le), BAD("log"))
    M("qemu-hdr-cur-version-2", "qemu", op_hdr("cur", "version", 2), BAD("Version"))

    # ---- region tables: raw bit flips (the checksum no longer matches)
    rt_fields = {"signature": 0, "checksum": 4, "count": 8, "e0-off": 32, "e1-off": 64, "last-byte": 65535}
    for name in ("signature", "checksum", "count", "e0-off", "e1-off", "last-byte"):
        off = rt_fields[name]
        M("rt-flip-both-%s" % name, "dyn", [op_xor(RT1 + off), op_xor(RT2 + off)], BAD("no valid region table"))
    for name, copy in (("signature", 1), ("count", 2), ("e0-off", 1), ("last-byte", 2)):
        M("rt-flip-copy%d-%s" % (copy, name), "dyn", op_xor((RT1, RT2)[copy - 1] + rt_fields[name]),
          TOL("region table copy %d" % copy), note=ONE_COPY)
    M("qemu-rt-flip-copy2", "qemu", op_xor(RT2 + 40), TOL("region table copy 2"), note=ONE_COPY)
    M("qemu-rt-flip-both", "qemu", [op_xor(RT1 + 40), op_xor(RT2 + 40)], BAD("no valid region table"))

    # ---- region tables: values with valid checksums, both copies
    def rt_count(n):
        return lambda t, L: struct.pack_into("<I", t, 8, n)
    both = (1, 2)
    M("rt-count-0", "dyn", op_rt(both, rt_count(0)), BAD("region table has no"))
    M("rt-count-1", "dyn", op_rt(both, rt_count(1)), BAD("region table has no"))
    M("rt-count-3", "dyn", op_rt(both, rt_count(3)), BAD("region table entry 2"))
    M("rt-count-2047", "dyn", op_rt(both, rt_count(2047)), BAD("region table entry"))
    M("rt-count-2048", "dyn", op_rt(both, rt_count(2048)), BAD("EntryCount"))
    M("rt-count-65535", "dyn", op_rt(both, rt_count(65535)), BAD("EntryCount"))
    M("rt-count-max", "dyn", op_rt(both, rt_count(0xFFFFFFFF)), BAD("EntryCount"))
    for ent in ("bat", "meta"):
        # the whole set for the BAT entry, the cases that differ per region for metadata
        M_ = M if ent == "bat" else (lambda *a, **k: None)
        M("rt-%s-off-0" % ent, "dyn", op_rt(both, rt_set(ent, "off", "<Q", 0)), BAD("region table entry"))
        M_("rt-%s-off-unaligned" % ent, "dyn", op_rt(both, rt_set(ent, "off", "<Q", 3 * MiB + 4096)),
          BAD("region table entry"))
        M("rt-%s-off-eof" % ent, "dyn", op_rt(both, rt_set(ent, "off", "<Q", lambda L: L.size)), BAD("past end of file"))
        M("rt-%s-off-log" % ent, "dyn", op_rt(both, rt_set(ent, "off", "<Q", lambda L: L.log_off)), BAD("overlaps the log"))
        M_("rt-%s-off-2^63" % ent, "dyn", op_rt(both, rt_set(ent, "off", "<Q", 1 << 63)), BAD("region table entry"))
        M("rt-%s-off-wraps" % ent, "dyn", op_rt(both, rt_set(ent, "off", "<Q", (1 << 64) - MiB)),
          BAD("region table entry"), note="region FileOffset " + WRAP)
        M("rt-%s-len-0" % ent, "dyn", op_rt(both, rt_set(ent, "len", "<I", 0)), BAD("region table entry"))
        M_("rt-%s-len-4k" % ent, "dyn", op_rt(both, rt_set(ent, "len", "<I", 4096)), BAD("region table entry"))
        M("rt-%s-len-0xFFF00000" % ent, "dyn", op_rt(both, rt_set(ent, "len", "<I", 0xFFF00000)), BAD("past end of file"))
        M("rt-%s-guid" % ent, "dyn", op_rt(both, rt_set(ent, "guid", None, uuid.UUID(int=5).bytes_le)),
          BAD("unknown region"))
        M_("rt-%s-guid-not-required" % ent, "dyn",
          op_rt(both, lambda t, L, ent=ent: (rt_set(ent, "guid", None, uuid.UUID(int=5).bytes_le)(t, L),
                                             rt_set(ent, "req", "<I", 0)(t, L))),
          BAD("region table has no"))
        M_("rt-%s-required-0" % ent, "dyn", op_rt(both, rt_set(ent, "req", "<I", 0)), OK())
        M_("rt-%s-required-reserved" % ent, "dyn", op_rt(both, rt_set(ent, "req", "<I", 0x80000001)), TOL("reserved bits"))
    M("rt-bat-off-meta", "dyn", op_rt(both, rt_set("bat", "off", "<Q", lambda L: L.meta_off)), BAD("overlap"))
    M("rt-meta-len-over-bat", "dyn", op_rt(both, rt_set("meta", "len", "<I", 2 * MiB)), BAD("overlap"))

    def huge_meta_sparse(p, L):  # a metadata region of 0xFFF00000 bytes that the file really holds
        os.truncate(p, L.meta_off + 0xFFF00000)
        op_rt(both, rt_set("meta", "len", "<I", 0xFFF00000))(p, L)
    M("rt-meta-len-0xFFF00000-sparse", "dyn", huge_meta_sparse, BAD("overlap"))
    M("rt-duplicate-entry", "dyn",
      op_rt(both, lambda t, L: t.__setitem__(slice(16 + 32 * L.meta_rt_index, 48 + 32 * L.meta_rt_index),
                                             t[16 + 32 * L.bat_rt_index:48 + 32 * L.bat_rt_index])),
      BAD("appears twice|region table has no"))
    # one copy with a valid checksum but different content: copy 1 is used (as QEMU does)
    M("rt-copy1-bat-off-0", "dyn", op_rt((1,), rt_set("bat", "off", "<Q", 0)), BAD("region table entry"))
    M("rt-copy2-bat-off-0", "dyn", op_rt((2,), rt_set("bat", "off", "<Q", 0)), TOL("differ"))
    M("qemu-rt-bat-off-eof", "qemu", op_rt(both, rt_set("bat", "off", "<Q", lambda L: L.size)), BAD("past end of file"))

    # ---- metadata table
    count = lambda n: op_poke(lambda L: L.meta_off + 10, "<H", n)
    M("mt-signature", "dyn", op_xor(lambda L: L.meta_off), BAD("metadata table"))
    M("mt-signature-last", "dyn", op_xor(lambda L: L.meta_off + 7), BAD("metadata table"))
    M("mt-reserved", "dyn", op_xor(lambda L: L.meta_off + 8, 0xFF), OK())
    M("mt-count-0", "dyn", count(0), BAD("metadata item .* is missing"))
    M("mt-count-4", "dyn", count(4), BAD("metadata item .* is missing"))
    M("mt-count-6", "dyn", count(6), OPEN())  # a sixth all-zero entry: empty, unknown, not required
    M("mt-count-2047", "dyn", count(2047), BAD("appears twice", max_problems=2 * 2047),
      note="2042 identical all-zero entries: check must not print one line per pair (2 million lines)")
    M("mt-count-2048", "dyn", count(2048), BAD("EntryCount"))
    M("mt-count-65535", "dyn", count(65535), BAD("EntryCount"))
    M("qemu-mt-count-0", "qemu", count(0), BAD("metadata item .* is missing"))
    for it in ("file_params", "vdisk_size", "vdisk_id", "logical_sector", "physical_sector"):
        M("mt-%s-off-0" % it, "dyn", op_item(it, "off", "<I", 0), BAD("metadata table entry"))
        M("mt-%s-len-odd" % it, "dyn", op_item(it, "len", "<I", 3), BAD("Length"))
        M("mt-%s-guid" % it, "dyn", op_item(it, "guid", None, uuid.UUID(int=0x77).bytes_le), BAD("metadata"))
        M("mt-%s-is-user" % it, "dyn", op_item(it, "flags", "<I", lambda L, it=it: L.items[it][3] | 1), BAD("is missing"))
    fpe = "file_params"
    M("mt-file_params-off-below-64k", "dyn", op_item(fpe, "off", "<I", 65535), BAD("metadata table entry"))
    M("mt-file_params-off-past-region", "dyn", op_item(fpe, "off", "<I", lambda L: L.meta_len - 2), BAD("metadata table entry"))
    M("mt-file_params-off-max", "dyn", op_item(fpe, "off", "<I", 0xFFFFFFFF), BAD("metadata table entry"))
    M("mt-file_params-len-0", "dyn", op_item(fpe, "len", "<I", 0), BAD("metadata table entry"))
    M("mt-file_params-len-1MiB+1", "dyn", op_item(fpe, "len", "<I", MiB + 1), BAD("metadata table entry"))
    M("mt-file_params-len-max", "dyn", op_item(fpe, "len", "<I", 0xFFFFFFFF), BAD("metadata table entry"))
    M("mt-file_params-flags-reserved", "dyn", op_item(fpe, "flags", "<I", lambda L: L.items[fpe][3] | 0x100),
      TOL("reserved flag"))
    M("mt-file_params-not-required", "dyn", op_item(fpe, "flags", "<I", 0), OK())
    for it, o in (("file_params", "vdisk_size"), ("vdisk_id", "logical_sector"), ("physical_sector", "vdisk_id")):
        M("mt-%s-overlaps-%s" % (it, o), "dyn", op_item(it, "off", "<I", lambda L, o=o: L.items[o][1]), BAD("overlap"))

    def extra_item(guid_int, flags):
        return [op_poke(lambda L: L.meta_off + 10, "<H", lambda L: L.nitems + 1),
                op_poke(lambda L: L.meta_off + 32 + 32 * L.nitems, None,
                        lambda L: uuid.UUID(int=guid_int).bytes_le + struct.pack("<IIII", 0, 0, flags, 0))]
    M("mt-unknown-required-item", "dyn", extra_item(0x55, 4), BAD("unknown system item"))
    M("mt-unknown-user-item", "dyn", extra_item(0x56, 5), OK())

    # ---- metadata item values
    fp = lambda v: op_value("file_params", 0, "<I", v)
    for v, name in ((0, "0"), (3 * MiB, "3MiB"), (512 * MiB, "512MiB"), (512 * KiB, "512KiB"),
                    (0xFFFFFFFF, "max"), (MiB + 1, "1MiB+1")):
        M("item-blocksize-%s" % name, "dyn", fp(v), BAD("BlockSize"))
    M("item-blocksize-2MiB", "dyn", fp(2 * MiB), BAD("BAT entry"))  # blocks 1 MiB apart now overlap
    # one block, and it is not present: every byte reads as zero; the other entries are past the end
    M("item-blocksize-256MiB", "dyn", fp(256 * MiB), TOL("past the virtual size", export=zeroed((0, 64 * MiB))))
    M("qemu-item-blocksize-3MiB", "qemu", fp(3 * MiB), BAD("BlockSize"))
    fpf = lambda v: op_value("file_params", 4, "<I", v)
    M("item-fpflags-has-parent", "dyn", fpf(2), BAD("Parent Locator"))
    M("item-fpflags-leave-allocated", "dyn", fpf(1), OK())
    M("item-fpflags-reserved", "dyn", fpf(4), TOL("reserved flag"))
    M("child-fpflags-no-parent", "child", fpf(0), BAD("BAT entry"))
    for v in (0, 1000):
        M("item-logical-sector-%d" % v, "dyn", op_value("logical_sector", 0, "<I", v), BAD("LogicalSectorSize"))
        M("item-physical-sector-%d" % v, "dyn", op_value("physical_sector", 0, "<I", v), BAD("PhysicalSectorSize"))
    M("item-logical-sector-4096", "dyn", op_value("logical_sector", 0, "<I", 4096), OK())
    M("item-physical-sector-512", "dyn", op_value("physical_sector", 0, "<I", 512), OK())
    M("child-logical-sector-4096", "child", op_value("logical_sector", 0, "<I", 4096), BAD("sector bitmap"))
    vsz = lambda v: op_value("vdisk_size", 0, "<Q", v)
    M("item-vsize-0", "dyn", vsz(0), BAD("Virtual Disk Size"))
    M("item-vsize-not-sector-multiple", "dyn", vsz(64 * MiB - 100), BAD("Virtual Disk Size"))
    M("item-vsize-64TiB+512", "dyn", vsz(64 * TiB + 512), BAD("Virtual Disk Size"))
    M("item-vsize-max", "dyn", vsz((1 << 64) - 512), BAD("Virtual Disk Size"))
    M("item-vsize-64TiB", "dyn", vsz(64 * TiB), BAD("BAT region"))
    M("item-vsize-4MiB", "dyn", vsz(4 * MiB), TOL("past the virtual size", export=prefix(4 * MiB)))
    M("item-vsize-minus-512", "dyn", vsz(64 * MiB - 512), OK(export=prefix(64 * MiB - 512)))
    M("child-vsize-differs", "child", vsz(32 * MiB), BAD("virtual size", info="ok", map_="ok"))
    M("item-vdisk-id", "dyn", op_value("vdisk_id", 0, None, uuid.UUID(int=3).bytes_le), OK())

    # ---- parent locator (the child's; its four keys: parent_linkage, relative_path,
    # volume_path, absolute_win32_path; relative_path does not resolve from the work directory)
    def loc(rel, fmt, val):
        return op_value("parent_locator", rel, fmt, val)

    def lef(k, fld):
        return 20 + 12 * k + {"ko": 0, "vo": 4, "kl": 8, "vl": 10}[fld]

    def loc_read(p, L):
        return pread(p, L.item_value_off("parent_locator"), L.items["parent_locator"][2])

    def loc_keys(p, L):
        b = loc_read(p, L)
        out = {}
        for k in range(struct.unpack_from("<H", b, 18)[0]):
            ko, vo, kl, vl = struct.unpack_from("<IIHH", b, 20 + 12 * k)
            out[b[ko:ko + kl].decode("utf-16-le")] = (k, ko, kl, vo, vl)
        return out

    def op_loc_unit(key, what, idx, unit):
        """Overwrites the UTF-16 code unit idx (negative: from the end) of a key or value."""
        def f(p, L):
            k, ko, kl, vo, vl = loc_keys(p, L)[key]
            at, ln = (ko, kl) if what == "key" else (vo, vl)
            i = idx if idx >= 0 else ln // 2 + idx
            a = L.item_value_off("parent_locator") + at + 2 * i
            pwrite(p, a, unit(pread(p, a, 2)) if callable(unit) else unit)
        return f

    ch = "child"
    M("loc-type", ch, loc(0, None, b"\xb8"), BAD("LocatorType"))
    M("loc-count-0", ch, loc(18, "<H", 0), BAD("parent_linkage is missing"))
    M("loc-count-65535", ch, loc(18, "<H", 65535), BAD("KeyValueCount"))
    M("loc-count-minus-1", ch, loc(18, "<H", 3), OK())  # drops absolute_win32_path; volume_path still works
    M("loc-e0-key-off-0", ch, loc(lef(0, "ko"), "<I", 0), BAD("parent locator entry 0"))
    for k in (0, 3):
        M("loc-e%d-key-off-past-item" % k, ch, loc(lef(k, "ko"), "<I", lambda L: L.items["parent_locator"][2]),
          BAD("parent locator entry %d" % k))
        M("loc-e%d-value-off-max" % k, ch, loc(lef(k, "vo"), "<I", 0xFFFFFFFE), BAD("parent locator entry %d" % k))
        M("loc-e%d-key-len-odd" % k, ch, loc(lef(k, "kl"), "<H", 27), BAD("parent locator entry %d" % k))
    M("loc-e0-key-off-max", ch, loc(lef(0, "ko"), "<I", 0xFFFFFFFF), BAD("parent locator entry 0"))
    M("loc-e0-value-len-0", ch, loc(lef(0, "vl"), "<H", 0), BAD("parent locator entry 0"))
    M("loc-e0-value-len-max", ch, loc(lef(0, "vl"), "<H", 0xFFFE), BAD("parent locator entry 0"))
    M("loc-key-lone-high-surrogate", ch, op_loc_unit("parent_linkage", "key", 0, b"\x00\xd8"), BAD("UTF-16"))
    M("loc-key-lone-low-surrogate", ch, op_loc_unit("relative_path", "key", 3, b"\x00\xdc"), BAD("UTF-16"))
    M("loc-value-trailing-high-surrogate", ch, op_loc_unit("absolute_win32_path", "value", -1, b"\x3d\xd8"),
      BAD("UTF-16"))
    M("loc-value-nul", ch, op_loc_unit("volume_path", "value", 5, b"\x00\x00"), BAD("UTF-16"))
    M("loc-value-non-ascii", ch, op_loc_unit("relative_path", "value", 2, "é".encode("utf-16-le")), OK())
    M("loc-linkage-not-guid", ch, op_loc_unit("parent_linkage", "value", 0, b"x\x00"), BAD("parent_linkage"))
    M("loc-linkage-other-guid", ch,
      op_loc_unit("parent_linkage", "value", 1, lambda u: b"1\x00" if u == b"0\x00" else b"0\x00"),
      BAD("linkage", info="ok", map_="ok"))
    M("loc-linkage-key-renamed", ch, op_loc_unit("parent_linkage", "key", 0, b"P\x00"), BAD("parent_linkage is missing"))
    M("loc-no-path-key", ch, [op_loc_unit(k, "key", 0, b"X\x00")
                              for k in ("relative_path", "volume_path", "absolute_win32_path")],
      BAD("none of relative_path"))

    def dup_key(p, L):  # entry 1's key becomes entry 0's ("parent_linkage" twice)
        b = loc_read(p, L)
        ko0, _, kl0, _ = struct.unpack_from("<IIHH", b, lef(0, "ko"))
        _, vo1, _, vl1 = struct.unpack_from("<IIHH", b, lef(1, "ko"))
        pwrite(p, L.item_value_off("parent_locator") + lef(1, "ko"), struct.pack("<IIHH", ko0, vo1, kl0, vl1))
    M("loc-duplicate-key", ch, dup_key, BAD("appears twice"))

    def parent_gone(p, L):  # every path names "paQ.vhdx"
        for key in ("relative_path", "volume_path", "absolute_win32_path"):
            op_loc_unit(key, "value", -6, "Q".encode("utf-16-le"))(p, L)
    M("loc-parent-not-found", ch, parent_gone, BAD("parent disk not found", info="ok", map_="ok"))
    M("loc-item-len-19", ch, op_item("parent_locator", "len", "<I", 19), BAD("parent locator"))
    M("loc-item-missing", ch, op_item("parent_locator", "guid", None, uuid.UUID(int=0x44).bytes_le),
      BAD("metadata|Parent Locator"))

    # ---- BAT
    bp = lambda L: first_present(L)[1]
    eof_mib = lambda L: -(-L.size // MiB) * MiB
    M("bat-off-eof", "dyn", op_bat(bp, with_off(eof_mib)), BAD("BAT entry"))
    M("bat-off-2^63", "dyn", op_bat(bp, with_off(1 << 63)), BAD("BAT entry"))
    M("bat-off-max", "dyn", op_bat(bp, with_off((1 << 64) - MiB)), BAD("BAT entry"),
      note="FileOffsetMB 0xFFFFFFFFFFF: " + WRAP)
    M("bat-off-0", "dyn", op_bat(bp, with_off(0)), BAD("BAT entry"))
    M("bat-off-duplicate", "dyn", op_bat(lambda L: L.present()[1][1], with_off(lambda L: L.present()[0][2])), BAD("overlaps"))
    M("bat-off-metadata", "dyn", op_bat(bp, with_off(lambda L: L.meta_off)), BAD("overlaps"))
    M("bat-off-bat", "dyn", op_bat(bp, with_off(lambda L: L.bat_off)), BAD("overlaps"))
    M("bat-off-log", "dyn", op_bat(bp, with_off(lambda L: L.log_off)), BAD("overlaps"))
    M("bat-state-4", "dyn", op_bat(bp, with_state(4)), BAD("reserved state"))
    M("bat-state-5", "dyn", op_bat(bp, with_state(5)), TOL("state 5", export=zeroed((MiB, MiB))))
    M("bat-state-7-dynamic", "dyn", op_bat(bp, with_state(7)), BAD("PARTIALLY_PRESENT"))
    M("bat-state-1-undefined", "dyn", op_bat(bp, with_state(1)), OK(export=zeroed((MiB, MiB))))
    M("bat-state-3-unmapped", "dyn", op_bat(bp, with_state(3)), OK(export=zeroed((MiB, MiB))))
    M("bat-state-2-zero-with-offset", "dyn", op_bat(bp, with_state(2)), TOL("FileOffsetMB", export=zeroed((MiB, MiB))))
    M("bat-state-0-with-offset", "dyn", op_bat(bp, with_state(0)), TOL("FileOffsetMB", export=zeroed((MiB, MiB))))
    M("bat-reserved-bits", "dyn", op_bat(bp, lambda L, e: e | 0x8), TOL("reserved bits"))
    M("bat-reserved-bits-all", "dyn", op_bat(bp, lambda L, e: e | 0xFFFF8), TOL("reserved bits"))
    M("bat-sb-present-dynamic", "dyn", op_bat(lambda L: L.sbidx(0), lambda L, e: eof_mib(L) | 6), BAD("sector bitmap"))
    M("bat-sb-state-1-dynamic", "dyn", op_bat(lambda L: L.sbidx(0), 1), BAD("sector bitmap"))
    M("bat-past-vsize-present", "dyn", op_bat(lambda L: L.nblocks + 5, lambda L, e: (eof_mib(L) + 4 * MiB) | 6),
      TOL("past the virtual size"))
    M("bat-all-zero", "dyn", lambda p, L: pwrite(p, L.bat_off, bytes(8 * len(L.bat))), OK(export=zeroed((0, 64 * MiB))),
      note="an empty disk must export (cmd_vhdx.c do_export passes qsort a NULL array)")
    M("bat-all-ff", "dyn", lambda p, L: pwrite(p, L.bat_off, b"\xff" * (8 * len(L.bat))), BAD("BAT entry"))
    M("bat-all-random", "dyn", lambda p, L: pwrite(p, L.bat_off, __import__("random").Random(5).randbytes(8 * len(L.bat))),
      BAD("BAT entry"))
    M("fix-bat-duplicate", "fix", op_bat(lambda L: L.pidx(3), with_off(lambda L: L.present()[2][2])), BAD("overlaps"))
    M("fix-bat-not-present", "fix", op_bat(lambda L: L.pidx(9), 0), OPEN(export=zeroed((9 * MiB, MiB))))
    M("fix-bat-off-eof", "fix", op_bat(lambda L: L.pidx(15), with_off(eof_mib)), BAD("BAT entry"))
    M("fix-leave-allocated-cleared", "fix", op_value("file_params", 4, "<I", 0), OK())
    M("qemu-bat-off-eof", "qemu", op_bat(bp, with_off(eof_mib)), BAD("BAT entry"))
    M("qemu-bat-duplicate", "qemu", op_bat(lambda L: L.present()[1][1], with_off(lambda L: L.present()[0][2])), BAD("overlaps"))
    M("qemu-bat-state-7", "qemu", op_bat(bp, with_state(7)), BAD("PARTIALLY_PRESENT"))
    # differencing: partially present blocks and their sector bitmap
    pp = lambda L: first_present(L, 7)[1]
    sb0 = lambda L: L.sbidx(0)
    M("child-sb-not-present", ch, op_bat(sb0, 0), BAD("sector bitmap"))
    M("child-sb-off-eof", ch, op_bat(sb0, with_off(eof_mib)), BAD("sector bitmap"))
    M("child-sb-off-max", ch, op_bat(sb0, with_off((1 << 64) - MiB)), BAD("sector bitmap"),
      note="sector bitmap FileOffsetMB 0xFFFFFFFFFFF: " + WRAP)
    M("child-sb-off-0", ch, op_bat(sb0, with_off(0)), BAD("sector bitmap"))
    M("child-sb-overlaps-block", ch, op_bat(sb0, with_off(lambda L: L.present()[0][2])), BAD("overlaps"))
    M("child-sb-state-7", ch, op_bat(sb0, with_state(7)), BAD("sector bitmap"))
    M("child-partial-off-eof", ch, op_bat(pp, with_off(eof_mib)), BAD("BAT entry"))
    M("child-partial-off-max", ch, op_bat(pp, with_off((1 << 64) - 2 * MiB)), BAD("BAT entry"),
      note="FileOffsetMB of a 2 MiB block at 2^64 - 2 MiB: " + WRAP)
    M("child-partial-state-4", ch, op_bat(pp, with_state(4)), BAD("reserved state"))
    # bitmap of block 0 all ones: every sector of block 0 now comes from the child (valid)
    M("child-bitmap-all-ones", ch, lambda p, L: pwrite(p, L.bat[L.sbidx(0)] & ~0xFFFFF, b"\xff" * 512), OK(export="ok"))

    # ---- log (the pending source: one entry with the BAT sector update, at log offset 0)
    lg = "log"
    ent0 = lambda L: L.log_off + L.log_entries[0].pos
    M("log-crc-flip", lg, op_xor(lambda L: ent0(L) + 4), BAD("log"))
    M("log-data-flip", lg, op_xor(lambda L: ent0(L) + L.log_entries[0].length - 100), BAD("log"))
    M("log-signature", lg, op_log(lambda e, L: e.__setitem__(0, 0x4c)), BAD("log"))
    M("log-seq-0", lg, op_log(log_set(16, "<Q", 0)), BAD("log"))
    M("log-seq-header-only", lg, op_log(log_set(16, "<Q", lambda L, e: struct.unpack_from("<Q", e, 16)[0] + 1)), BAD("log"))
    M("log-tail-outside", lg, op_log(log_set(12, "<I", lambda L, e: L.log_len)), BAD("log"))
    M("log-tail-max", lg, op_log(log_set(12, "<I", 0xFFFFF000)), BAD("log"))
    M("log-tail-unaligned", lg, op_log(log_set(12, "<I", 100)), BAD("log"))
    M("log-tail-not-an-entry", lg, op_log(log_set(12, "<I", lambda L, e: L.log_entries[0].pos + 64 * KiB)), BAD("log"))
    M("log-len-0", lg, op_log(log_set(8, "<I", 0)), BAD("log"))
    M("log-len-past-log", lg, op_log(log_set(8, "<I", lambda L, e: L.log_len + 4096)), BAD("log"))
    M("log-ndesc-0", lg, op_log(log_set(24, "<I", 0)), BAD("log"))
    M("log-ndesc-max", lg, op_log(log_set(24, "<I", 0xFFFFFFFF)), BAD("log"))
    M("log-guid", lg, op_log(lambda e, L: e.__setitem__(slice(32, 48), uuid.UUID(int=4).bytes_le)), BAD("log"))
    M("log-flushed-past-eof", lg, op_log(log_set(48, "<Q", TiB)), BAD("truncated"))
    M("log-last-1TiB", lg, op_log(log_set(56, "<Q", TiB)), OK())
    M("log-last-unaligned", lg, op_log(log_set(56, "<Q", lambda L, e: struct.unpack_from("<Q", e, 56)[0] + 4096)), BAD("log"))
    M("log-last-81TiB", lg, op_log(log_set(56, "<Q", 81 * TiB)), BAD("log"))
    M("log-desc-target-header", lg, op_log(log_set(64 + 16, "<Q", 64 * KiB)), BAD("log entry"))
    M("log-desc-target-0", lg, op_log(log_set(64 + 16, "<Q", 0)), BAD("log entry"))
    M("log-desc-target-2^62", lg, op_log(log_set(64 + 16, "<Q", 1 << 62)), BAD("log entry"))
    M("log-desc-target-max", lg, op_log(log_set(64 + 16, "<Q", (1 << 64) - 4096)), BAD("log entry"))
    M("log-desc-target-unaligned", lg,
      op_log(log_set(64 + 16, "<Q", lambda L, e: struct.unpack_from("<Q", e, 80)[0] + 1)), BAD("log"))
    M("log-desc-signature", lg, op_log(lambda e, L: e.__setitem__(64, 0x44)), BAD("log"))
    M("log-desc-seq", lg, op_log(log_set(64 + 24, "<Q", 12345)), BAD("log"))
    M("log-data-seq", lg, op_log(lambda e, L: struct.pack_into(
        "<I", e, (L.log_entries[0].ndesc + 129) // 128 * 4096 + 4092, 9)), BAD("log"))

    def crafted(fn):
        def make(p, L):
            descs, (flushed, last) = orig_descs(p, L)
            return fn(L, descs, flushed, last)
        return op_log_replace(make)
    g = lambda L: L.log_guid
    M("log-zero-desc-block", lg, crafted(lambda L, d, fl, la: [
        (0, build_entry(5, 0, g(L), d + [("zero", blk1_off(L), MiB)], fl, la))]), OK(export=zeroed((MiB, MiB))))
    M("log-zero-desc-2^62", lg, crafted(lambda L, d, fl, la: [
        (0, build_entry(5, 0, g(L), d + [("zero", blk1_off(L), 1 << 62)], fl, la))]), BAD("log entry"))
    M("log-zero-desc-header", lg, crafted(lambda L, d, fl, la: [
        (0, build_entry(5, 0, g(L), [("zero", 0, 64 * KiB)] + d, fl, la))]), BAD("log entry"))
    M("log-zero-desc-unaligned-len", lg, crafted(lambda L, d, fl, la: [
        (0, build_entry(5, 0, g(L), d + [("zero", blk1_off(L), 100)], fl, la))]), BAD("log"))
    M("log-chain-2", lg, crafted(lambda L, d, fl, la: [
        (0, build_entry(7, 0, g(L), [("zero", blk1_off(L), MiB)], fl, la)),
        (4096, build_entry(8, 0, g(L), d, fl, la))]), OK(export=zeroed((MiB, MiB))))
    M("log-chain-head-tail-outside-chain", lg, crafted(lambda L, d, fl, la: [
        (0, build_entry(7, 0, g(L), [("zero", blk1_off(L), MiB)], fl, la)),
        (4096, build_entry(8, 64 * KiB, g(L), d, fl, la))]), BAD("log"))
    M("log-sequence-gap", lg, crafted(lambda L, d, fl, la: [  # two sequences: only the newer is replayed
        (0, build_entry(7, 0, g(L), [("zero", blk1_off(L), MiB)], fl, la)),
        (4096, build_entry(9, 4096, g(L), d, fl, la))]), OK())
    M("log-sequence-wraps-around", lg, crafted(lambda L, d, fl, la: [
        (L.log_len - 4096, build_entry(7, L.log_len - 4096, g(L), [("zero", blk1_off(L), MiB)], fl, la)),
        (0, build_entry(8, L.log_len - 4096, g(L), d, fl, la))]), OK(export=zeroed((MiB, MiB))))
    # replay order: every later write wins over an earlier one, byte for byte (4 KiB granules)
    A = bytes(range(256)) * 16
    B = bytes(255 - (i % 256) for i in range(4096))
    X = lambda L: blk1_off(L) + 8 * KiB  # file offset of virtual MiB + 8 KiB
    M("log-overlay-later-write-wins", lg, crafted(lambda L, d, fl, la: [
        (0, build_entry(5, 0, g(L), d + [("desc", X(L), A), ("zero", X(L) - 4096, 12 * KiB), ("desc", X(L), B)],
                        fl, la))]), OK(export=Content(zero=((MiB + 4 * KiB, 12 * KiB),), data=((MiB + 8 * KiB, B),))))
    M("log-overlay-later-entry-wins", lg, crafted(lambda L, d, fl, la: [
        (0, build_entry(7, 0, g(L), [("desc", X(L), A)], fl, la)),
        (4096 * 2, build_entry(8, 0, g(L), [("zero", X(L), 4096)] + d, fl, la))]),
      OK(export=zeroed((MiB + 8 * KiB, 4096))))
    M("log-overlay-data-inside-zeroed-block", lg, crafted(lambda L, d, fl, la: [
        (0, build_entry(5, 0, g(L), d + [("zero", blk1_off(L), MiB), ("desc", blk1_off(L) + 512 * KiB, A)],
                        fl, la))]), OK(export=Content(zero=((MiB, MiB),), data=((MiB + 512 * KiB, A),))))
    M("log-overlay-nested-zero-ranges", lg, crafted(lambda L, d, fl, la: [
        (0, build_entry(5, 0, g(L), d + [("zero", blk1_off(L) + 4096 * (50 - i), 8192 * i) for i in range(1, 51)] +
                        [("desc", blk1_off(L) + 4096 * 50, B)], fl, la))]),
      OK(export=Content(zero=((MiB, 100 * 4096),), data=((MiB + 50 * 4096, B),))))

    def new_block_past_eof(L, d, fl, la):
        # the BAT sector maps block 20 to a block past the end of the file, which only the log's
        # LastFileOffset and a data descriptor create: a read-only replay must show it
        new = eof_mib(L)
        out = []
        for kind, tgt, sec in d:
            if kind == "desc" and tgt == L.bat_off:
                sec = bytearray(sec)
                struct.pack_into("<Q", sec, 8 * L.pidx(20), new | 6)
                sec = bytes(sec)
            out.append((kind, tgt, sec))
        return [(0, build_entry(5, 0, g(L), out + [("desc", new + 4096, A)], fl, new + MiB))]
    M("log-new-block-past-eof", lg, crafted(new_block_past_eof), OK(export=Content(data=((20 * MiB + 4096, A),))))
    # a valid log that zeroes region table copy 1: the reader must fall back to copy 2
    M("log-zeroes-region-table-1", lg, crafted(lambda L, d, fl, la: [
        (0, build_entry(5, 0, g(L), d + [("zero", RT1, 64 * KiB)], fl, la))]), TOL("region table copy 1"),
      note=ONE_COPY)
    M("log-truncated-file", lg, op_truncate(lambda L: L.size - MiB), BAD("log|BAT"))

    def many_zero_descs(n):
        def f(p, L):  # one entry: the BAT update plus n 4 KiB zero descriptors, log sized to fit
            descs, (fl, la) = orig_descs(p, L)
            e = build_entry(5, 0, L.log_guid, descs + [("zero", blk1_off(L) + 4096 * (i % 256), 4096)
                                                       for i in range(n)], fl, la)
            log_len = -(-len(e) // MiB) * MiB
            new_off = eof_mib(L)
            os.truncate(p, new_off + log_len)
            pwrite(p, new_off, e)
            op_hdr("both", "log_offset", new_off)(p, L)
            op_hdr("both", "log_length", log_len)(p, L)
        return f
    M("log-200000-zero-descs", lg, many_zero_descs(200000), OK(export=zeroed((MiB, MiB))),
      note="replaying N descriptors read-only costs O(N^2) (overlay list grown by one and scanned on every read)")

    def log_0xFFF00000(p, L):  # LogLength 0xFFF00000 that the (sparse) file really holds
        ent = entry_bytes(p, L, L.log_entries[0].pos)
        new_off = eof_mib(L)
        os.truncate(p, new_off + 0xFFF00000)
        pwrite(p, new_off, ent)
        op_hdr("both", "log_offset", new_off)(p, L)
        op_hdr("both", "log_length", 0xFFF00000)(p, L)
    M("log-length-0xFFF00000-sparse", lg, log_0xFFF00000, OK())

    # ---- truncation at every region boundary and a few odd offsets
    rel = {"log": lambda L: L.log_off, "log-end-1": lambda L: L.log_off + L.log_len - 1,
           "meta": lambda L: L.meta_off, "meta+64k": lambda L: L.meta_off + 64 * KiB, "bat": lambda L: L.bat_off,
           "bat+12345": lambda L: L.bat_off + 12345, "first-block": lambda L: L.present()[0][2],
           "first-block+4k": lambda L: L.present()[0][2] + 4096, "eof-1MiB": lambda L: L.size - MiB,
           "eof-1": lambda L: L.size - 1}
    fixed = {"0": 0, "1": 1, "64k+100": 64 * KiB + 100, "192k": 192 * KiB, "320k-1": 320 * KiB - 1,
             "320k": 320 * KiB}
    for src in ("dyn", "child", "qemu", "fix", "log"):
        cuts = dict(rel)
        if src == "dyn":
            cuts.update({k: (lambda v: lambda L: v)(v) for k, v in fixed.items()})
        elif src == "qemu":
            cuts = {k: cuts[k] for k in ("log", "meta", "bat", "first-block", "eof-1MiB", "eof-1")}
        else:
            cuts = {k: cuts[k] for k in ("log", "meta", "bat", "first-block", "eof-1")}
        for name, size in cuts.items():
            M("trunc-%s-%s" % (src, name), src, op_truncate(size), ("trunc", size))
    M("extend-1", "dyn", lambda p, L: os.truncate(p, L.size + 1), OK())
    M("extend-sparse-5GiB", "dyn", lambda p, L: os.truncate(p, 5 * GiB), OK())

    # ---- the parent of a differencing child (a private copy next to the child: relative_path)
    parent_exp = dict(info="ok", map_="ok")  # info and map do not need the parent
    M("parent-dwg-changed", ch, [], BAD("linkage", **parent_exp),
      parent_op=("parent", op_hdr("both", "data_write_guid", uuid.UUID(int=12).bytes_le)))
    # errors inside the parent name the parent file ("hvsim: .../par.vhdx: ...")
    M("parent-truncated", ch, [], BAD(r"parent|par\.vhdx: (header|log|region)", **parent_exp),
      parent_op=("parent", op_truncate(2 * MiB)))
    M("parent-bat-state-4", ch, [], BAD(r"parent|par\.vhdx: BAT entry", **parent_exp),
      parent_op=("parent", op_bat(bp, with_state(4))))
    M("parent-is-the-child", ch, [], BAD("parent chain", **parent_exp), parent_op=("loop",))
    return {m.id: m for m in MUTS}


CORPUS = build_corpus()
assert len(CORPUS) == len(MUTS), "duplicate mutation ids"


def trunc_exp(L, size):
    if size < 320 * KiB:
        return Exp(frozenset({2}), "shorter than", "fail", "fail", "fail")
    if size < L.log_off + L.log_len:
        return BAD("log")
    if size < max(L.bat_off + L.bat_len, L.meta_off + L.meta_len):
        return BAD("log|past end of file")
    return BAD("BAT entry|log")


# ---- running the corpus: mutations are prepared and run ahead, one per CPU --------------------

@dataclass
class Run:
    m: Mut
    exp: Exp
    work: str
    path: str
    parent: Optional[str]
    out_raw: str
    src: Source
    results: dict       # command -> Result, in order; missing after a runaway command
    stopped: Optional[Result] = None


def execute(m, sources, root):
    src = sources[m.source]
    work = tempfile.mkdtemp(prefix="t-", dir=root)
    path = os.path.join(work, "t.vhdx")
    shutil.copyfile(src.path, path)
    parent = None
    if m.parent_op:
        parent = os.path.join(work, "par.vhdx")  # what the child's relative_path names
        if m.parent_op[0] == "parent":
            shutil.copyfile(sources["par"].path, parent)
            m.parent_op[1](parent, sources["par"].L)
        else:  # "par.vhdx" next to the child is the child itself
            shutil.copyfile(src.path, parent)
    for op in m.ops:
        op(path, src.L)
    exp = trunc_exp(src.L, m.exp[1](src.L)) if isinstance(m.exp, tuple) else m.exp
    out_raw = os.path.join(work, "out.raw")
    run = Run(m, exp, work, path, parent, out_raw, src, {})
    for name, args in (("check", ["check", path]), ("info", ["info", path]),
                       ("export", ["export", path, out_raw]), ("map", ["map", path])):
        r = run_cmd(args, work, name)
        run.results[name] = r
        if r.runaway:  # no point running the rest on a file that already hangs hvsim
            run.stopped = r
            break
    return run


class Runner:
    """Runs the selected mutations ahead of the test that asserts on them, PARALLEL at a time."""

    def __init__(self, sources, root, order):
        self.sources, self.root, self.order = sources, root, order
        self.pool = ThreadPoolExecutor(max_workers=PARALLEL)
        self.pending = {}

    def get(self, mid):
        i = self.order.index(mid) if mid in self.order else len(self.order)
        for j in range(i, min(i + 2 * PARALLEL, len(self.order))):
            k = self.order[j]
            if k not in self.pending:
                self.pending[k] = self.pool.submit(execute, CORPUS[k], self.sources, self.root)
        if mid not in self.pending:
            self.pending[mid] = self.pool.submit(execute, CORPUS[mid], self.sources, self.root)
        return self.pending.pop(mid).result()

    def close(self):
        for f in self.pending.values():
            f.cancel()
        self.pool.shutdown(wait=True)


@pytest.fixture(scope="module")
def runner(request, sources, scratch):
    order = [it.callspec.params["mid"] for it in request.session.items
             if getattr(it, "originalname", None) == "test_corrupt" and hasattr(it, "callspec")]
    r = Runner(sources, scratch, order)
    yield r
    r.close()


def assert_error_line(r, run, kw):
    lines = [l for l in r.err.splitlines() if l.strip()]
    assert len(lines) == 1, "expected one error line on stderr:\n%s" % r
    assert any(lines[0].startswith("hvsim: %s:" % f) for f in (run.path, run.parent) if f), \
        "error line does not start with 'hvsim: FILE:':\n%s" % r
    if kw:
        assert re.search(kw, lines[0], re.I), "error line does not name %r:\n%s" % (kw, r)


@pytest.mark.parametrize("mid", list(CORPUS))
def test_corrupt(mid, runner):
    run = runner.get(mid)
    try:
        check_run(run)
    finally:
        shutil.rmtree(run.work, ignore_errors=True)


def check_run(run):
    m, exp, path = run.m, run.exp, run.path
    why = " [%s]" % m.note if m.note else ""
    for r in run.results.values():
        for mark in SANITIZER_MARKS:
            assert mark not in r.err and mark not in r.out, "sanitizer report%s:\n%s" % (why, r)
    if run.stopped:
        pytest.fail("%s: killed at the %s limit (%ds CPU, %ds wall): runaway or hang%s:\n%s" % (
            run.stopped.cmd.split()[2], "wall-clock" if run.stopped.rc is None else "CPU", CPU_LIMIT,
            WALL_LIMIT, why, run.stopped))
    for r in run.results.values():
        assert 0 <= r.rc < 128, "crash (signal or abort)%s:\n%s" % (why, r)
    chk, info, export, mp = (run.results[k] for k in ("check", "info", "export", "map"))

    assert chk.rc in exp.check, "check exit %s, expected %s%s:\n%s" % (chk.rc, sorted(exp.check), why, chk)
    if chk.rc == 0:
        assert chk.out.strip() == "%s: no problems found" % path and not chk.err.strip(), str(chk)
    elif chk.rc == 1:
        problems = [l for l in chk.out.splitlines() if l.strip()]
        if chk.out_lines > len(problems) + 1:  # output cut at OUT_CAP: the last line may be partial
            problems = problems[:-1]
        assert problems and all(l.startswith(path + ": ") for l in problems), str(chk)
        assert re.fullmatch(r"hvsim: %s: \d+ problems? found" % re.escape(path), chk.err.strip()), str(chk)
        if exp.kw:
            assert re.search(exp.kw, chk.out, re.I), "check does not name %r%s:\n%s" % (exp.kw, why, chk)
        assert chk.out_lines <= exp.max_problems, "check printed %d problem lines%s" % (chk.out_lines, why)
    else:
        assert_error_line(chk, run, exp.kw)

    for r, want in ((info, exp.info), (mp, exp.map)):
        if want == "ok":
            assert r.rc == 0 and not r.err.strip(), "expected success%s:\n%s" % (why, r)
        elif want == "fail":
            assert r.rc == 1, "expected failure (exit 1)%s:\n%s" % (why, r)
        if r.rc != 0:
            assert r.rc == 1, str(r)
            assert_error_line(r, run, exp.kw if want == "fail" else None)

    want = exp.export
    if export.rc != 0:
        assert want in ("fail", "any"), "export failed%s:\n%s" % (why, export)
        assert export.rc == 1, str(export)
        assert_error_line(export, run, exp.kw if want == "fail" else None)
        assert not os.path.exists(run.out_raw), "a failed export left its output file"
    else:
        assert want != "fail", "export succeeded on an invalid file%s:\n%s" % (why, export)
        if want == "same" or isinstance(want, Content):
            compare_export(run.out_raw, run.src, Content() if want == "same" else want)

