"""Shared fixtures for the VHDX conformance tests (stdlib + pytest only).

* ``hvsim``: absolute path of the hvsim binary under test ($HVSIM, else build/bin/hvsim of the
  repository). Every test must run the binary through this fixture so the ASan build is covered.
* ``det_bytes(seed, n)``: n deterministic pseudo-random bytes for a seed (any hashable value).
* ``make_raw(path, size, regions, seed=0)``: writes a sparse raw image of ``size`` bytes whose
  ``regions`` ((offset, length) pairs, any byte alignment) hold det_bytes((seed, i), length) and
  everything else is a hole; returns the path.
* ``copy_sparse(src, dst)``: copies a file keeping its holes (shutil would write them as zeros).
* ``first_diff(path_a, path_b)``: None when the two files have identical size and bytes, otherwise
  a short text naming the first differing offset (holes are skipped via SEEK_DATA, so comparing
  multi-GiB sparse files costs only their data).
"""
import os
import random

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# CRC-32C (Castagnoli), written from the spec's definition, independent of hvsim's ISA-L use.
_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data, crc=0):
    """CRC-32C of data; pass a previous result as crc to continue it."""
    c = crc ^ 0xFFFFFFFF
    t = _CRC_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


@pytest.fixture(scope="session")
def hvsim():
    path = os.environ.get("HVSIM") or os.path.join(ROOT, "build", "bin", "hvsim")
    path = os.path.abspath(path)
    assert os.access(path, os.X_OK), f"hvsim binary not found or not executable: {path}"
    return path


def det_bytes(seed, n):
    return random.Random(repr(seed)).randbytes(n)


def make_raw(path, size, regions, seed=0):
    path = str(path)
    with open(path, "wb") as f:
        f.truncate(size)
        for i, (off, length) in enumerate(regions):
            assert 0 <= off and off + length <= size, f"region {i} outside the image"
            f.seek(off)
            f.write(det_bytes((seed, i), length))
    return path


def _data_extents(fd, size):
    """(start, end) ranges that may hold data (everything if SEEK_DATA is unsupported)."""
    out, pos = [], 0
    try:
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: no data after pos
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            out.append((start, min(end, size)))
            pos = end
    except (AttributeError, OSError):
        return [(0, size)]
    return out


def _merge(ranges):
    out = []
    for s, e in sorted(ranges):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def first_diff(path_a, path_b):
    sa, sb = os.path.getsize(path_a), os.path.getsize(path_b)
    if sa != sb:
        return f"sizes differ: {path_a} is {sa} bytes, {path_b} is {sb} bytes"
    fa, fb = os.open(path_a, os.O_RDONLY), os.open(path_b, os.O_RDONLY)
    try:
        chunk = 4 << 20
        for s, e in _merge(_data_extents(fa, sa) + _data_extents(fb, sb)):
            pos = s
            while pos < e:
                n = min(chunk, e - pos)
                a, b = os.pread(fa, n, pos), os.pread(fb, n, pos)
                if a != b:
                    i = next(k for k in range(min(len(a), len(b))) if a[k] != b[k]) \
                        if len(a) == len(b) else min(len(a), len(b))
                    return (f"first difference at offset {pos + i} (0x{pos + i:x}): "
                            f"{os.path.basename(path_a)}={a[i:i + 8].hex()} "
                            f"{os.path.basename(path_b)}={b[i:i + 8].hex()}")
                pos += n
        return None
    finally:
        os.close(fa)
        os.close(fb)


def copy_sparse(src, dst):
    src, dst = str(src), str(dst)
    size = os.path.getsize(src)
    fi = os.open(src, os.O_RDONLY)
    fo = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fo, size)
        for s, e in _data_extents(fi, size):
            pos = s
            while pos < e:
                buf = os.pread(fi, min(4 << 20, e - pos), pos)
                if not buf:
                    break
                os.pwrite(fo, buf, pos)
                pos += len(buf)
    finally:
        os.close(fi)
        os.close(fo)
    return dst


@pytest.fixture(name="det_bytes")
def det_bytes_fixture():
    return det_bytes


@pytest.fixture(name="make_raw")
def make_raw_fixture():
    return make_raw


@pytest.fixture(name="copy_sparse")
def copy_sparse_fixture():
    return copy_sparse


@pytest.fixture(name="first_diff")
def first_diff_fixture():
    return first_diff
