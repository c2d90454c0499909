"""ABI proof for hyperv/virtdisk/virtdisk.h: its types, layouts, constants and signatures are those
of Windows x64, judged by an independent implementation — mingw-w64's own <windows.h> and
<virtdisk.h>, compiled by x86_64-w64-mingw32-gcc. Compile-time only; nothing runs under Windows.

How (each step is a compiler, never our own reading of a header):
  1. Discovery. Our header is compiled by gcc with -g -fno-eliminate-unused-debug-types and every
     typedef, struct member (nested and anonymous unions included) and enumerator declared in it
     is read back from the DWARF; likewise mingw-w64's headers with the mingw compiler. So a type
     or member added to our header is in the comparison without anyone listing it.
  2. Measurement. A generated probe.c holds one array of unsigned long long in its own section:
     sizeof/_Alignof of every type, offsetof and sizeof of every member path, the value of every
     enumerator and integer #define, sizeof of what each pointer typedef points to, and whether
     each scalar type is signed. It is compiled by both compilers (the mingw side for the items
     both define) and the section is read back with objcopy.
  3. Signatures. Each of our prototypes, as text, initialises a function pointer to the
     function mingw-w64 declares; an incompatible-pointer diagnostic on its line is a mismatch.
  4. GUIDs: the 16 bytes of every DEFINE_GUID object, both sides compiled with INITGUID.
  5. Completeness the other way: every type, member, enumerator, #define, GUID and function of
     mingw-w64's virtdisk.h must exist in ours.

mingw-w64's virtdisk.h is an older (Windows 8-era) copy of the SDK header; where it differs from
the current SDK, KNOWN_DEVIATIONS pins the exact pair of values (ours, mingw) and why. A deviation
that disappears also fails, so the pins stay true. What mingw-w64 does not have at all (the SDK's
newer versions, RCT-era flags, the 0xC03A.... codes) is checked against REFERENCE_*, transcribed
from shared/reference/virtdisk.md A1.2-A1.6, so every constant in our header has an oracle.

test_probe_detects_mutation proves the probe is not vacuous: copies of the header with one
member type, member order, enum value, #define value or parameter type changed, or one member
removed, each make the comparison report exactly that item (and a base type's width, WCHAR, shows
up in every item it touches).
"""
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.environ.get("HVSIM_ROOT") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEADER_DIR = os.path.join(ROOT, "hyperv", "virtdisk")
HEADER = os.path.join(HEADER_DIR, "virtdisk.h")

CC, CC_OBJCOPY, CC_OBJDUMP = "gcc", "objcopy", "objdump"
MINGW_CC = "x86_64-w64-mingw32-gcc"
MINGW_OBJCOPY = "x86_64-w64-mingw32-objcopy"
MINGW_OBJDUMP = "x86_64-w64-mingw32-objdump"
# Windows 10 API level: every #if in mingw-w64's virtdisk.h is on, so it shows all it has.
# WIN32_LEAN_AND_MEAN halves the compile time and leaves every item both sides define in place
# (virtdisk.h, winerror.h, guiddef.h, minwinbase.h and the file/handle APIs stay in).
MINGW_FLAGS = ["-std=gnu11", "-D_WIN32_WINNT=0x0A00", "-DWINVER=0x0A00", "-DWIN32_LEAN_AND_MEAN"]
MINGW_PRELUDE = "#include <windows.h>\n#include <virtdisk.h>\n"
OUR_FLAGS = ["-std=c11"]
SECTION = ".hvprb"

needs_mingw = pytest.mark.skipif(
    shutil.which(MINGW_CC) is None,
    reason="x86_64-w64-mingw32-gcc is not installed (ci/deps.sh installs "
           "gcc-mingw-w64-x86-64-win32 and mingw-w64-x86-64-dev)")

# ---- what mingw-w64 (older) and the current SDK disagree on -----------------------------------
_OPEN_V3 = "mingw-w64 has no Version3 (SDK: Windows 10 adds SnapshotId), so its union is 24 bytes, not 40"
_ATTACH_V2 = ("mingw-w64 has no Version2 {ULONGLONG RestrictedOffset, RestrictedLength}; without it the "
              "union is 4-byte aligned and starts at 4, while the SDK's starts at 8 (Version1.Reserved at 8)")
_CREATE_V2 = ("mingw-w64's Version2 lacks PhysicalSectorSizeInBytes (present in the SDK and win32metadata), "
              "so every later Version2 member sits 8 bytes early; it also has no Version3/Version4")
_METADATA_ITEM = "mingw-w64 declares Item as LPGUID; the SDK has const GUID *Item"
_SETMETA_DATA = "mingw-w64 declares Item LPGUID and MetaData PVOID; the SDK has const GUID *Item, const void *MetaData"

KNOWN_DEVIATIONS = {
    # key: (ours, mingw-w64, why)
    "sizeof(OPEN_VIRTUAL_DISK_PARAMETERS)": (44, 28, _OPEN_V3),
    "sizeof(*POPEN_VIRTUAL_DISK_PARAMETERS)": (44, 28, _OPEN_V3),
    "sizeof(ATTACH_VIRTUAL_DISK_PARAMETERS)": (24, 8, _ATTACH_V2),
    "sizeof(*PATTACH_VIRTUAL_DISK_PARAMETERS)": (24, 8, _ATTACH_V2),
    "alignof(ATTACH_VIRTUAL_DISK_PARAMETERS)": (8, 4, _ATTACH_V2),
    "offsetof(ATTACH_VIRTUAL_DISK_PARAMETERS, Version1)": (8, 4, _ATTACH_V2),
    "offsetof(ATTACH_VIRTUAL_DISK_PARAMETERS, Version1.Reserved)": (8, 4, _ATTACH_V2),
    "sizeof(CREATE_VIRTUAL_DISK_PARAMETERS)": (184, 120, _CREATE_V2),
    "sizeof(*PCREATE_VIRTUAL_DISK_PARAMETERS)": (184, 120, _CREATE_V2),
    "sizeof(CREATE_VIRTUAL_DISK_PARAMETERS.Version2)": (120, 112, _CREATE_V2),
    "offsetof(CREATE_VIRTUAL_DISK_PARAMETERS, Version2.ParentPath)": (48, 40, _CREATE_V2),
    "offsetof(CREATE_VIRTUAL_DISK_PARAMETERS, Version2.SourcePath)": (56, 48, _CREATE_V2),
    "offsetof(CREATE_VIRTUAL_DISK_PARAMETERS, Version2.OpenFlags)": (64, 56, _CREATE_V2),
    "offsetof(CREATE_VIRTUAL_DISK_PARAMETERS, Version2.ParentVirtualStorageType)": (68, 60, _CREATE_V2),
    "offsetof(CREATE_VIRTUAL_DISK_PARAMETERS, Version2.SourceVirtualStorageType)": (88, 80, _CREATE_V2),
    "offsetof(CREATE_VIRTUAL_DISK_PARAMETERS, Version2.ResiliencyGuid)": (108, 100, _CREATE_V2),
    "signature(GetVirtualDiskMetadata)": (1, 0, _METADATA_ITEM),
    "signature(DeleteVirtualDiskMetadata)": (1, 0, _METADATA_ITEM),
    "signature(SetVirtualDiskMetadata)": (1, 0, _SETMETA_DATA),
}

# Members of structs both define that only the SDK (and so our header) has.
SDK_MEMBERS_MINGW_LACKS = {
    "OPEN_VIRTUAL_DISK_PARAMETERS": {
        "Version3", "Version3.GetInfoOnly", "Version3.ReadOnly", "Version3.ResiliencyGuid",
        "Version3.SnapshotId"},
    "ATTACH_VIRTUAL_DISK_PARAMETERS": {
        "Version2", "Version2.RestrictedOffset", "Version2.RestrictedLength"},
    "CREATE_VIRTUAL_DISK_PARAMETERS": {"Version2.PhysicalSectorSizeInBytes"} | {
        f"Version{v}{m}" for v in (3, 4) for m in (
            "", ".UniqueId", ".MaximumSize", ".BlockSizeInBytes", ".SectorSizeInBytes",
            ".PhysicalSectorSizeInBytes", ".ParentPath", ".SourcePath", ".OpenFlags",
            ".ParentVirtualStorageType", ".SourceVirtualStorageType", ".ResiliencyGuid",
            ".SourceLimitPath", ".BackingStorageType")} | {
        "Version4.PmemAddressAbstractionType", "Version4.DataAlignment"},
}

# Types both name but declare differently on purpose: (ours, mingw-w64, why).
KNOWN_KIND_DIFFERENCES = {
    "SECURITY_DESCRIPTOR": ("opaque", "struct", "opaque here by design: no virtdisk call looks inside one; "
                            "what crosses the ABI is PSECURITY_DESCRIPTOR (a PVOID), compared as such"),
}

# Names mingw-w64's virtdisk.h has that the SDK does not (so neither do we), and why that is fine.
MINGW_ONLY_OK = {
    "PDELETE_SNAPSHOT_VHDSET_VERSION": "mingw-w64 adds a pointer typedef the SDK does not declare",
    "VIRTDISKAPI": "mingw-w64's dllimport decoration; nothing to import on Linux",
    "_INC_VIRTDISK": "mingw-w64's include guard",
}

# ---- the reference, for what mingw-w64 cannot judge (shared/reference/virtdisk.md) ------------
# A1.4: sizes and offsets of the current SDK's x64 layouts.
REFERENCE_LAYOUT = {
    "sizeof(GUID)": 16, "sizeof(OVERLAPPED)": 32,
    "offsetof(OVERLAPPED, Offset)": 16, "offsetof(OVERLAPPED, OffsetHigh)": 20,
    "offsetof(OVERLAPPED, Pointer)": 16, "offsetof(OVERLAPPED, hEvent)": 24,
    "sizeof(VIRTUAL_STORAGE_TYPE)": 20,
    "sizeof(OPEN_VIRTUAL_DISK_PARAMETERS)": 44, "offsetof(OPEN_VIRTUAL_DISK_PARAMETERS, Version1)": 4,
    "offsetof(OPEN_VIRTUAL_DISK_PARAMETERS, Version3.SnapshotId)": 28,
    "sizeof(GET_VIRTUAL_DISK_INFO)": 32, "offsetof(GET_VIRTUAL_DISK_INFO, Size)": 8,
    "offsetof(GET_VIRTUAL_DISK_INFO, Size.SectorSize)": 28,
    "offsetof(GET_VIRTUAL_DISK_INFO, ChangeTrackingState.Enabled)": 8,
    "offsetof(GET_VIRTUAL_DISK_INFO, ChangeTrackingState.NewerChanges)": 12,
    "offsetof(GET_VIRTUAL_DISK_INFO, ChangeTrackingState.MostRecentId)": 16,
    "offsetof(GET_VIRTUAL_DISK_INFO, ParentLocation.ParentLocationBuffer)": 12,
    "sizeof(SET_VIRTUAL_DISK_INFO)": 32, "offsetof(SET_VIRTUAL_DISK_INFO, ParentFilePath)": 8,
    "sizeof(QUERY_CHANGES_VIRTUAL_DISK_RANGE)": 24,
    "sizeof(ATTACH_VIRTUAL_DISK_PARAMETERS)": 24, "offsetof(ATTACH_VIRTUAL_DISK_PARAMETERS, Version1)": 8,
    "sizeof(CREATE_VIRTUAL_DISK_PARAMETERS.Version1)": 48,
    "sizeof(CREATE_VIRTUAL_DISK_PARAMETERS.Version2)": 120,
    "offsetof(CREATE_VIRTUAL_DISK_PARAMETERS, Version1)": 8,
    "sizeof(RESIZE_VIRTUAL_DISK_PARAMETERS)": 16, "offsetof(RESIZE_VIRTUAL_DISK_PARAMETERS, Version1)": 8,
    "sizeof(MERGE_VIRTUAL_DISK_PARAMETERS)": 12, "offsetof(MERGE_VIRTUAL_DISK_PARAMETERS, Version1)": 4,
    "sizeof(EXPAND_VIRTUAL_DISK_PARAMETERS)": 16, "offsetof(EXPAND_VIRTUAL_DISK_PARAMETERS, Version1)": 8,
    "sizeof(COMPACT_VIRTUAL_DISK_PARAMETERS)": 8, "offsetof(COMPACT_VIRTUAL_DISK_PARAMETERS, Version1)": 4,
    "sizeof(MIRROR_VIRTUAL_DISK_PARAMETERS)": 16, "offsetof(MIRROR_VIRTUAL_DISK_PARAMETERS, Version1)": 8,
    "sizeof(RAW_SCSI_VIRTUAL_DISK_PARAMETERS)": 48,
    "offsetof(RAW_SCSI_VIRTUAL_DISK_PARAMETERS, Version1.DataBuffer)": 24,
    "sizeof(RAW_SCSI_VIRTUAL_DISK_RESPONSE)": 12,
    "sizeof(VIRTUAL_DISK_PROGRESS)": 24,
    "sizeof(BOOL)": 4, "sizeof(WCHAR)": 2, "sizeof(DWORD)": 4, "sizeof(ULONG)": 4,
    "sizeof(ULONG64)": 8, "sizeof(ULONGLONG)": 8, "sizeof(HANDLE)": 8,
}


def _flags(prefix, text):
    """'NONE 0, NO_PARENTS 0x1' -> {PREFIX_NONE: 0, PREFIX_NO_PARENTS: 1} (virtdisk.md's notation)."""
    out = {}
    for item in text.split(","):
        name, value = item.split()
        out[prefix + name] = int(value, 0)
    return out


def _versions(prefix, n):
    """A *_VERSION enum documented as '0..n': UNSPECIFIED 0, then _1.._n."""
    d = {prefix + "UNSPECIFIED": 0}
    d.update({f"{prefix}{i}": i for i in range(1, n + 1)})
    return d


# A1.2, A1.3, A1.6, in the reference's own order and notation.
REFERENCE_VALUES = {}
for _d in (
    _flags("VIRTUAL_STORAGE_TYPE_DEVICE_", "UNKNOWN 0, ISO 1, VHD 2, VHDX 3, VHDSET 4"),
    {"OPEN_VIRTUAL_DISK_RW_DEPTH_DEFAULT": 1, "CREATE_VIRTUAL_DISK_PARAMETERS_DEFAULT_BLOCK_SIZE": 0,
     "CREATE_VIRTUAL_DISK_PARAMETERS_DEFAULT_SECTOR_SIZE": 0,
     "VIRTUAL_DISK_MAXIMUM_CHANGE_TRACKING_ID_LENGTH": 256, "MERGE_VIRTUAL_DISK_DEFAULT_MERGE_DEPTH": 1},
    _flags("VIRTUAL_DISK_ACCESS_", "NONE 0x0, ATTACH_RO 0x00010000, ATTACH_RW 0x00020000, "
           "DETACH 0x00040000, GET_INFO 0x00080000, CREATE 0x00100000, METAOPS 0x00200000, "
           "READ 0x000D0000, ALL 0x003F0000, WRITABLE 0x00320000"),
    _flags("OPEN_VIRTUAL_DISK_FLAG_", "NONE 0, NO_PARENTS 0x1, BLANK_FILE 0x2, BOOT_DRIVE 0x4, "
           "CACHED_IO 0x8, CUSTOM_DIFF_CHAIN 0x10, PARENT_CACHED_IO 0x20, VHDSET_FILE_ONLY 0x40, "
           "IGNORE_RELATIVE_PARENT_LOCATOR 0x80, NO_WRITE_HARDENING 0x100, "
           "SUPPORT_COMPRESSED_VOLUMES 0x200, SUPPORT_SPARSE_FILES_ANY_FS 0x400, "
           "SUPPORT_ENCRYPTED_FILES 0x800"),
    _versions("OPEN_VIRTUAL_DISK_VERSION_", 3),
    _versions("CREATE_VIRTUAL_DISK_VERSION_", 4),
    _flags("CREATE_VIRTUAL_DISK_FLAG_", "NONE 0, FULL_PHYSICAL_ALLOCATION 0x1, "
           "PREVENT_WRITES_TO_SOURCE_DISK 0x2, DO_NOT_COPY_METADATA_FROM_PARENT 0x4, "
           "CREATE_BACKING_STORAGE 0x8, USE_CHANGE_TRACKING_SOURCE_LIMIT 0x10, "
           "PRESERVE_PARENT_CHANGE_TRACKING_STATE 0x20, VHD_SET_USE_ORIGINAL_BACKING_STORAGE 0x40, "
           "SPARSE_FILE 0x80, PMEM_COMPATIBLE 0x100, SUPPORT_COMPRESSED_VOLUMES 0x200, "
           "SUPPORT_SPARSE_FILES_ANY_FS 0x400"),
    _versions("ATTACH_VIRTUAL_DISK_VERSION_", 2),
    _flags("ATTACH_VIRTUAL_DISK_FLAG_", "NONE 0, READ_ONLY 0x1, NO_DRIVE_LETTER 0x2, "
           "PERMANENT_LIFETIME 0x4, NO_LOCAL_HOST 0x8, NO_SECURITY_DESCRIPTOR 0x10, "
           "BYPASS_DEFAULT_ENCRYPTION_POLICY 0x20, NON_PNP 0x40, RESTRICTED_RANGE 0x80, "
           "SINGLE_PARTITION 0x100, REGISTER_VOLUME 0x200, AT_BOOT 0x400"),
    {"DETACH_VIRTUAL_DISK_FLAG_NONE": 0, "QUERY_CHANGES_VIRTUAL_DISK_FLAG_NONE": 0,
     "MERGE_VIRTUAL_DISK_FLAG_NONE": 0, "RAW_SCSI_VIRTUAL_DISK_FLAG_NONE": 0},
    _flags("GET_VIRTUAL_DISK_INFO_", "UNSPECIFIED 0, SIZE 1, IDENTIFIER 2, PARENT_LOCATION 3, "
           "PARENT_IDENTIFIER 4, PARENT_TIMESTAMP 5, VIRTUAL_STORAGE_TYPE 6, PROVIDER_SUBTYPE 7, "
           "IS_4K_ALIGNED 8, PHYSICAL_DISK 9, VHD_PHYSICAL_SECTOR_SIZE 10, "
           "SMALLEST_SAFE_VIRTUAL_SIZE 11, FRAGMENTATION 12, IS_LOADED 13, VIRTUAL_DISK_ID 14, "
           "CHANGE_TRACKING_STATE 15"),
    _flags("SET_VIRTUAL_DISK_INFO_", "UNSPECIFIED 0, PARENT_PATH 1, IDENTIFIER 2, "
           "PARENT_PATH_WITH_DEPTH 3, PHYSICAL_SECTOR_SIZE 4, VIRTUAL_DISK_ID 5, "
           "CHANGE_TRACKING_STATE 6, PARENT_LOCATOR 7"),
    _versions("RESIZE_VIRTUAL_DISK_VERSION_", 1),
    _flags("RESIZE_VIRTUAL_DISK_FLAG_", "NONE 0, ALLOW_UNSAFE_VIRTUAL_SIZE 0x1, "
           "RESIZE_TO_SMALLEST_SAFE_VIRTUAL_SIZE 0x2"),
    _versions("MERGE_VIRTUAL_DISK_VERSION_", 2),
    _versions("MIRROR_VIRTUAL_DISK_VERSION_", 1),
    _flags("MIRROR_VIRTUAL_DISK_FLAG_", "NONE 0, EXISTING_FILE 0x1, SKIP_MIRROR_ACTIVATION 0x2, "
           "ENABLE_SMB_COMPRESSION 0x4, IS_LIVE_MIGRATION 0x8"),
    _versions("COMPACT_VIRTUAL_DISK_VERSION_", 1),
    _flags("COMPACT_VIRTUAL_DISK_FLAG_", "NONE 0, NO_ZERO_SCAN 0x1, NO_BLOCK_MOVES 0x2"),
    _versions("EXPAND_VIRTUAL_DISK_VERSION_", 1),
    _flags("EXPAND_VIRTUAL_DISK_FLAG_", "NONE 0, NOTIFY_CHANGE 0x1"),
    _versions("RAW_SCSI_VIRTUAL_DISK_VERSION_", 1),
    _flags("DEPENDENT_DISK_FLAG_", "NONE 0, MULT_BACKING_FILES 0x1, FULLY_ALLOCATED 0x2, "
           "READ_ONLY 0x4, REMOTE 0x8, SYSTEM_VOLUME 0x10, SYSTEM_VOLUME_PARENT 0x20, "
           "REMOVABLE 0x40, NO_DRIVE_LETTER 0x80, PARENT 0x100, NO_HOST_DISK 0x200, "
           "PERMANENT_LIFETIME 0x400, SUPPORT_COMPRESSED_VOLUMES 0x800, ALWAYS_ALLOW_SPARSE 0x1000, "
           "SUPPORT_ENCRYPTED_FILES 0x2000"),
    _flags("GET_STORAGE_DEPENDENCY_FLAG_", "NONE 0, HOST_VOLUMES 0x1, DISK_HANDLE 0x2"),
    _versions("STORAGE_DEPENDENCY_INFO_VERSION_", 2),
    _flags("TAKE_SNAPSHOT_VHDSET_FLAG_", "NONE 0, WRITEABLE 0x1"),
    _flags("DELETE_SNAPSHOT_VHDSET_FLAG_", "NONE 0, PERSIST_RCT 0x1"),
    _flags("APPLY_SNAPSHOT_VHDSET_FLAG_", "NONE 0, WRITEABLE 0x1"),
    _flags("MODIFY_VHDSET_", "UNSPECIFIED 0, SNAPSHOT_PATH 1, REMOVE_SNAPSHOT 2, DEFAULT_SNAPSHOT_PATH 3"),
    _flags("MODIFY_VHDSET_FLAG_", "NONE 0, WRITEABLE_SNAPSHOT 0x1"),
    _versions("TAKE_SNAPSHOT_VHDSET_VERSION_", 1),
    _versions("DELETE_SNAPSHOT_VHDSET_VERSION_", 1),
    _versions("APPLY_SNAPSHOT_VHDSET_VERSION_", 1),
    _versions("FORK_VIRTUAL_DISK_VERSION_", 1),
    _flags("FORK_VIRTUAL_DISK_FLAG_", "NONE 0, EXISTING_FILE 0x1"),
    _flags("ERROR_", "SUCCESS 0, FILE_NOT_FOUND 2, PATH_NOT_FOUND 3, ACCESS_DENIED 5, "
           "INVALID_HANDLE 6, BAD_COMMAND 22, SHARING_VIOLATION 32, NOT_SUPPORTED 50, "
           "INVALID_PARAMETER 87, CALL_NOT_IMPLEMENTED 120, INSUFFICIENT_BUFFER 122, MORE_DATA 234, "
           "UNSUPPORTED_COMPRESSION 618, FILE_SYSTEM_LIMITATION 665, IO_PENDING 997, NOT_FOUND 1168, "
           "FILE_CORRUPT 1392, PRIVILEGE_NOT_HELD 1314, FILE_ENCRYPTED 6002"),
    _flags("ERROR_", "VHD_DRIVE_FOOTER_MISSING 0xC03A0001, VHD_DRIVE_FOOTER_CHECKSUM_MISMATCH 0xC03A0002, "
           "VHD_DRIVE_FOOTER_CORRUPT 0xC03A0003, VHD_FORMAT_UNKNOWN 0xC03A0004, "
           "VHD_FORMAT_UNSUPPORTED_VERSION 0xC03A0005, VHD_SPARSE_HEADER_CHECKSUM_MISMATCH 0xC03A0006, "
           "VHD_SPARSE_HEADER_UNSUPPORTED_VERSION 0xC03A0007, VHD_SPARSE_HEADER_CORRUPT 0xC03A0008, "
           "VHD_BLOCK_ALLOCATION_FAILURE 0xC03A0009, VHD_BLOCK_ALLOCATION_TABLE_CORRUPT 0xC03A000A, "
           "VHD_INVALID_BLOCK_SIZE 0xC03A000B, VHD_BITMAP_MISMATCH 0xC03A000C, "
           "VHD_PARENT_VHD_NOT_FOUND 0xC03A000D, VHD_CHILD_PARENT_ID_MISMATCH 0xC03A000E, "
           "VHD_CHILD_PARENT_TIMESTAMP_MISMATCH 0xC03A000F, VHD_METADATA_READ_FAILURE 0xC03A0010, "
           "VHD_METADATA_WRITE_FAILURE 0xC03A0011, VHD_INVALID_SIZE 0xC03A0012, "
           "VHD_INVALID_FILE_SIZE 0xC03A0013, VIRTDISK_PROVIDER_NOT_FOUND 0xC03A0014, "
           "VIRTDISK_NOT_VIRTUAL_DISK 0xC03A0015, VHD_PARENT_VHD_ACCESS_DENIED 0xC03A0016, "
           "VHD_CHILD_PARENT_SIZE_MISMATCH 0xC03A0017, VHD_DIFFERENCING_CHAIN_CYCLE_DETECTED 0xC03A0018, "
           "VHD_DIFFERENCING_CHAIN_ERROR_IN_PARENT 0xC03A0019, VIRTUAL_DISK_LIMITATION 0xC03A001A, "
           "VHD_INVALID_TYPE 0xC03A001B, VHD_INVALID_STATE 0xC03A001C, "
           "VIRTDISK_UNSUPPORTED_DISK_SECTOR_SIZE 0xC03A001D, VIRTDISK_DISK_ALREADY_OWNED 0xC03A001E, "
           "VIRTDISK_DISK_ONLINE_AND_WRITABLE 0xC03A001F, CTLOG_TRACKING_NOT_INITIALIZED 0xC03A0020, "
           "CTLOG_LOGFILE_SIZE_EXCEEDED_MAXSIZE 0xC03A0021, CTLOG_VHD_CHANGED_OFFLINE 0xC03A0022, "
           "CTLOG_INVALID_TRACKING_STATE 0xC03A0023, CTLOG_INCONSISTENT_TRACKING_FILE 0xC03A0024, "
           "VHD_RESIZE_WOULD_TRUNCATE_DATA 0xC03A0025, VHD_COULD_NOT_COMPUTE_MINIMUM_VIRTUAL_SIZE 0xC03A0026, "
           "VHD_ALREADY_AT_OR_BELOW_MINIMUM_VIRTUAL_SIZE 0xC03A0027, VHD_METADATA_FULL 0xC03A0028, "
           "VHD_INVALID_CHANGE_TRACKING_ID 0xC03A0029, VHD_CHANGE_TRACKING_DISABLED 0xC03A002A, "
           "VHD_MISSING_CHANGE_TRACKING_INFORMATION 0xC03A0030, QUERY_STORAGE_ERROR 0x803A0001"),
):
    REFERENCE_VALUES.update(_d)



def _guid_bytes(text):
    """'{EC984AEC-A0F9-47E9-901F-71415A66345B}' -> its 16 bytes in memory (Data1..3 little-endian)."""
    a, b, c, d, e = text.strip("{}").split("-")
    return (int(a, 16).to_bytes(4, "little") + int(b, 16).to_bytes(2, "little")
            + int(c, 16).to_bytes(2, "little") + bytes.fromhex(d + e))


# virtdisk.md A1.2: the vendor GUIDs.
REFERENCE_GUIDS = {
    "VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN": _guid_bytes("{00000000-0000-0000-0000-000000000000}"),
    "VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT": _guid_bytes("{EC984AEC-A0F9-47E9-901F-71415A66345B}"),
}


# ---- running tools ----------------------------------------------------------------------------
def run(cmd, check=True, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       errors="replace", **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"command failed (exit {p.returncode}): {' '.join(cmd)}\n"
                             f"{p.stdout[-4000:]}\n{p.stderr[-8000:]}")
    return p


def compile_obj(cc, flags, src_text, workdir, name, extra=()):
    """Compiles src_text to an object. mingw-w64 compiles (system headers only, so the source
    text decides the result) reuse an earlier object: they are the same for most mutated
    headers, and windows.h is slow to compile."""
    key = (cc, tuple(flags), tuple(extra), src_text)
    if cc == MINGW_CC and key in _OBJ_CACHE and os.path.exists(_OBJ_CACHE[key]):
        return _OBJ_CACHE[key]
    src = os.path.join(workdir, name + ".c")
    obj = os.path.join(workdir, name + ".o")
    with open(src, "w") as f:
        f.write(src_text)
    run([cc, *flags, *extra, "-c", src, "-o", obj])
    _OBJ_CACHE[key] = obj
    return obj


_OBJ_CACHE = {}


def section_bytes(objcopy, obj, section):
    out = obj + "." + re.sub(r"\W", "_", section) + ".bin"
    run([objcopy, "-O", "binary", f"--only-section={section}", obj, out])
    with open(out, "rb") as f:
        return f.read()


# ---- DWARF: what a compiler says a header declares --------------------------------------------
class Die:
    __slots__ = ("off", "tag", "attrs", "children")

    def __init__(self, off, tag):
        self.off, self.tag, self.attrs, self.children = off, tag, {}, []

    def ref(self, attr="type"):
        v = self.attrs.get(attr)
        return int(v.strip("<>"), 16) if v else None


_DIE_RE = re.compile(r"^\s*<(\d+)><([0-9a-f]+)>: Abbrev Number: \d+(?: \((DW_TAG_\w+)\))?")
_ATTR_RE = re.compile(r"^\s*<[0-9a-f]+>\s+DW_AT_(\w+)\s*:\s*(.*?)\s*$")
_INDIRECT_RE = re.compile(r"^\((?:indirect|indexed)[^)]*\):\s*")
STRUCTS = ("DW_TAG_structure_type", "DW_TAG_union_type")


def dwarf(objdump, obj):
    """Returns (dies by offset, file index -> file name) of an object's .debug_info/.debug_line."""
    dies, stack, cur = {}, [], None
    for line in run([objdump, "--dwarf=info", obj]).stdout.splitlines():
        m = _DIE_RE.match(line)
        if m:
            cur = None
            if m.group(3) is None:  # null entry: end of a sibling chain
                continue
            depth = int(m.group(1))
            cur = Die(int(m.group(2), 16), m.group(3))
            dies[cur.off] = cur
            del stack[depth:]
            if stack:
                stack[-1].children.append(cur)
            stack.append(cur)
            continue
        m = _ATTR_RE.match(line)
        if m and cur is not None:
            cur.attrs[m.group(1)] = _INDIRECT_RE.sub("", m.group(2))
    files, in_table = {}, False
    for line in run([objdump, "--dwarf=rawline", obj]).stdout.splitlines():
        if "The File Name Table" in line:
            in_table = True
            continue
        if in_table:
            m = re.match(r"^\s+(\d+)\s+\d+\s+(?:\([^)]*\):\s*)?(\S.*?)\s*$", line)
            if m:
                files[int(m.group(1))] = os.path.basename(m.group(2))
            elif not line.strip():
                in_table = False
    return dies, files


def _peel(dies, d, tags=("DW_TAG_typedef", "DW_TAG_const_type", "DW_TAG_volatile_type")):
    while d is not None and d.tag in tags:
        r = d.ref()
        d = dies[r] if r is not None else None  # None: void
    return d


def _member_paths(dies, s, prefix=""):
    """Every member path of a struct/union, through nested and anonymous structs/unions."""
    out = []
    for c in s.children:
        if c.tag != "DW_TAG_member":
            continue
        name = c.attrs.get("name")
        if name:
            out.append(prefix + name)
        t = dies.get(c.ref())
        if t is not None and t.tag in STRUCTS:  # defined in place (not through a typedef)
            out += _member_paths(dies, t, prefix + name + "." if name else prefix)
    return out


class Model:
    """What one compiler's DWARF says: typedefs (kind, members...) and enumerators."""

    def __init__(self, dies, files, only_file=None):
        self.types, self.enumerators = {}, {}
        # structs/unions/enums a typedef names, and those that have a tag of their own: a tagged
        # type no typedef names would escape the comparison (see untypedefed)
        named, tagged = set(), {}
        for d in dies.values():
            fname = files.get(int(d.attrs.get("decl_file", -1)), "?")
            if only_file and fname != only_file:
                continue
            if d.tag in STRUCTS + ("DW_TAG_enumeration_type",) and "name" in d.attrs:
                tagged[d.off] = d.attrs["name"]
            if d.tag == "DW_TAG_typedef" and d.ref() is not None:
                named.add(d.ref())
            if d.tag == "DW_TAG_typedef":
                self.types[d.attrs["name"]] = self._kind(dies, d)
            elif d.tag == "DW_TAG_enumeration_type":
                for e in d.children:
                    if e.tag == "DW_TAG_enumerator":
                        self.enumerators[e.attrs["name"]] = int(e.attrs["const_value"], 0)
        self.untypedefed = sorted(n for off, n in tagged.items() if off not in named)

    @staticmethod
    def _kind(dies, td):
        r = td.ref()
        base = _peel(dies, dies[r] if r is not None else None)
        if base is None:
            return {"kind": "void"}
        if base.tag in STRUCTS:
            if "declaration" in base.attrs:
                return {"kind": "opaque"}
            return {"kind": "struct", "members": _member_paths(dies, base)}
        if base.tag == "DW_TAG_enumeration_type":
            return {"kind": "enum"}
        if base.tag == "DW_TAG_pointer_type":
            r = base.ref()
            pointee = _peel(dies, dies[r] if r is not None else None)
            deref = pointee is not None and pointee.tag != "DW_TAG_subroutine_type" and not (
                pointee.tag in STRUCTS and "declaration" in pointee.attrs)
            return {"kind": "pointer", "deref": deref}
        if base.tag == "DW_TAG_base_type":
            return {"kind": "scalar"}
        return {"kind": base.tag}


# ---- text facts the DWARF does not carry (macros, GUID objects, prototypes) -------------------
def strip_comments(text):
    return re.sub(r"/\*.*?\*/|//[^\n]*", " ", text, flags=re.S)


def macro_table(cc, flags, src_text, workdir):
    src = os.path.join(workdir, "macros.c")
    with open(src, "w") as f:
        f.write(src_text)
    out = run([cc, *flags, "-dM", "-E", src]).stdout
    table = {}
    for line in out.splitlines():
        m = re.match(r"#define (\w+)(?![\w(])\s*(.*)$", line)
        if m:
            table[m.group(1)] = m.group(2).strip()
    return table


def object_macro_names(text):
    return set(re.findall(r"^\s*#\s*define\s+(\w+)(?![\w(])", text, flags=re.M))


def code_lines(text):
    """The text without comments and preprocessor directives (continuation lines included)."""
    text = re.sub(r"\\\n", " ", strip_comments(text))
    return "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))


def guid_names(text):
    return set(re.findall(r"\bDEFINE_GUID\s*\(\s*(\w+)", code_lines(text)))


_PROTO_RE = re.compile(r"(?P<ret>\b\w+(?:\s*\*)?)\s+WINAPI\s+(?P<name>\w+)\s*\((?P<params>[^;{}]*)\)\s*;")


def prototypes(text):
    """Our prototypes, as text: name -> (return type, parameter list)."""
    body = code_lines(text)
    protos = {}
    for m in _PROTO_RE.finditer(body):
        protos[m.group("name")] = (m.group("ret"), " ".join(m.group("params").split()))
    # every WINAPI in a declaration must have been understood
    n = len(re.findall(r"\bWINAPI\b", body))
    assert n == len(protos), (f"{n} WINAPI declarations but {len(protos)} prototypes parsed: "
                              f"the prototype regex missed one (parsed: {sorted(protos)})")
    return protos


# ---- the probe ---------------------------------------------------------------------------------
def probe_items(ours, macros, theirs=None):
    """(key, C expression) for everything measurable in our model; with `theirs`, only what both
    define (the same key and expression work with both headers)."""
    items = []

    def both_type(name, kind):
        return theirs is None or (name in theirs.types and theirs.types[name]["kind"] == kind)

    for name, info in sorted(ours.types.items()):
        kind = info["kind"]
        if not both_type(name, kind):
            continue
        if kind in ("struct", "enum", "scalar", "pointer"):
            items.append((f"sizeof({name})", f"sizeof({name})"))
        if kind == "struct":
            items.append((f"alignof({name})", f"_Alignof({name})"))
            common = info["members"] if theirs is None else [
                p for p in info["members"] if p in set(theirs.types[name]["members"])]
            for p in common:
                items.append((f"offsetof({name}, {p})", f"offsetof({name}, {p})"))
                items.append((f"sizeof({name}.{p})", f"sizeof((({name} *)0)->{p})"))
        elif kind == "scalar":
            items.append((f"signed({name})", f"(({name})-1 < ({name})0)"))
        elif kind == "pointer" and info["deref"] and (theirs is None or theirs.types[name]["deref"]):
            items.append((f"sizeof(*{name})", f"sizeof(*({name})0)"))
    for name in sorted(ours.enumerators):
        if theirs is None or name in theirs.enumerators:
            items.append((f"value({name})", f"(long long)({name})"))
    for name in sorted(macros):
        if theirs is None or name in theirs.macros:
            items.append((f"value({name})", f"(long long)({name})"))
    return items


PROBE_MAGIC = 0x68767072626531  # "1ebrpvh": marks the start of the array in the section


def probe_source(prelude, items):
    lines = [prelude, "#include <stddef.h>",
             f'__attribute__((section("{SECTION}"), used))',
             f"const unsigned long long hv_probe[{len(items) + 2}] = {{",
             f"\t{PROBE_MAGIC:#x}ull, {len(items)}ull,"]
    lines += [f"\t(unsigned long long)({expr}), /* {key} */" for key, expr in items]
    lines.append("};\n")
    return "\n".join(lines)


def measure(cc, objcopy, flags, prelude, items, workdir, name):
    """Compiles the probe and reads the values back; keys -> signed 64-bit values."""
    obj = compile_obj(cc, flags, probe_source(prelude, items), workdir, name)
    raw = section_bytes(objcopy, obj, SECTION)
    n = 8 * (len(items) + 2)
    # PE/COFF pads a section to its alignment; the padding must be zeros
    assert len(raw) >= n and not raw[n:].strip(b"\0") and len(raw) - n < 64, \
        f"{name}: section {SECTION} has {len(raw)} bytes, expected {n}"
    vals = [int.from_bytes(raw[i:i + 8], "little") for i in range(0, n, 8)]
    assert vals[:2] == [PROBE_MAGIC, len(items)], f"{name}: probe array header is {vals[:2]}"
    vals = [v - (1 << 64) if v >> 63 else v for v in vals[2:]]
    return dict(zip((k for k, _ in items), vals))


def guid_bytes(cc, objcopy, flags, prelude, names, section_prefix, workdir, name):
    src = prelude + "const void *const hv_guid_refs[] = {" + ", ".join(f"&{n}" for n in sorted(names)) + "};\n"
    obj = compile_obj(cc, flags, src, workdir, name, extra=["-fdata-sections"])
    return {n: section_bytes(objcopy, obj, section_prefix + n) for n in names}


def signature_check(cc, flags, prelude, protos, workdir, name):
    """1 when the prototype text, read with this compiler's headers, is the type of the declared
    function; else 0 (with the diagnostic)."""
    lines = prelude.count("\n")
    body, line_of = [prelude], {}
    for fn, (ret, params) in sorted(protos.items()):
        lines += 1
        line_of[lines] = fn
        body.append(f"{ret} (WINAPI *const hv_fn_{fn})({params}) = {fn};\n")
    key = (cc, tuple(flags), "".join(body))
    if cc == MINGW_CC and key in _SIG_CACHE:  # see compile_obj
        return _SIG_CACHE[key]
    src = os.path.join(workdir, name + ".c")
    with open(src, "w") as f:
        f.write(key[2])
    p = run([cc, *flags, "-fsyntax-only", "-Wall", src], check=False)
    bad = {}
    for m in re.finditer(rf"^{re.escape(src)}:(\d+):\d+: (?:warning|error): (.*)$", p.stderr, flags=re.M):
        fn = line_of.get(int(m.group(1)))
        assert fn, f"{name}: diagnostic outside the probe lines:\n{p.stderr[-4000:]}"
        bad.setdefault(fn, m.group(2))
    if p.returncode != 0 and not bad:
        raise AssertionError(f"{name}: compiler failed:\n{p.stderr[-4000:]}")
    _SIG_CACHE[key] = ({f"signature({fn})": 0 if fn in bad else 1 for fn in protos}, bad)
    return _SIG_CACHE[key]


_SIG_CACHE = {}


# ---- one side each -----------------------------------------------------------------------------
class Side:
    pass


_MINGW_CACHE = {}


def mingw_side(workdir):
    """mingw-w64's view; it does not depend on our header, so it is computed once."""
    if "side" in _MINGW_CACHE:
        return _MINGW_CACHE["side"]
    s = Side()
    obj = compile_obj(MINGW_CC, MINGW_FLAGS, MINGW_PRELUDE, workdir, "mingw_discover",
                      extra=["-gdwarf-5", "-fno-eliminate-unused-debug-types"])
    dies, files = dwarf(MINGW_OBJDUMP, obj)
    s.model = Model(dies, files)
    s.vd_model = Model(dies, files, only_file="virtdisk.h")
    s.model.macros = s.macros = macro_table(MINGW_CC, MINGW_FLAGS, MINGW_PRELUDE, workdir)
    pre = run([MINGW_CC, *MINGW_FLAGS, "-E", "-x", "c", "-"], input=MINGW_PRELUDE).stdout
    paths = set(re.findall(r'^# \d+ "([^"]*[/\\]virtdisk\.h)"', pre, flags=re.M))
    assert len(paths) == 1, f"expected one mingw-w64 virtdisk.h, found {paths}"
    s.vd_path = paths.pop()
    with open(s.vd_path) as f:
        s.vd_text = f.read()
    s.preprocessed = pre
    s.vd_functions = set(re.findall(r"\bVIRTDISKAPI\b[^(;]*?\b(\w+)\s*\(", code_lines(s.vd_text)))
    s.vd_macros = object_macro_names(s.vd_text)
    s.vd_guids = guid_names(s.vd_text)
    _MINGW_CACHE["side"] = s
    return s


def our_side(header, workdir):
    s = Side()
    prelude = f'#include "{os.path.abspath(header)}"\n'
    obj = compile_obj(CC, OUR_FLAGS, prelude, workdir, "ours_discover",
                      extra=["-gdwarf-5", "-fno-eliminate-unused-debug-types"])
    dies, files = dwarf(CC_OBJDUMP, obj)
    s.model = Model(dies, files, only_file=os.path.basename(header))
    assert s.model.types and s.model.enumerators, f"no DWARF for {header}: discovery is broken"
    # the SDK names every struct and enum through a typedef; so must we, or it is not compared
    assert not s.model.untypedefed, f"types without a typedef in {header}: {s.model.untypedefed}"
    with open(header) as f:
        s.text = f.read()
    table = macro_table(CC, OUR_FLAGS, prelude, workdir)
    # object-like #defines of our header with a value (include guard and WINAPI are empty)
    s.macros = {n: table[n] for n in object_macro_names(s.text) if table.get(n)}
    s.model.macros = s.macros
    s.protos = prototypes(s.text)
    s.guids = guid_names(s.text)
    s.prelude = prelude
    return s


class Comparison:
    """Everything the test asserts on, computed for one header file."""

    def __init__(self, header, workdir):
        self.ours = o = our_side(header, workdir)
        self.mingw = w = mingw_side(workdir)
        self.our_items = probe_items(o.model, o.macros)
        self.common_items = probe_items(o.model, o.macros, theirs=w.model)
        self.our_vals = measure(CC, CC_OBJCOPY, OUR_FLAGS, o.prelude, self.our_items, workdir, "ours_probe")
        self.mingw_vals = measure(MINGW_CC, MINGW_OBJCOPY, MINGW_FLAGS, MINGW_PRELUDE,
                                  self.common_items, workdir, "mingw_probe")
        # signatures: ours must compile cleanly against itself; mingw judges the common ones
        own, own_bad = signature_check(CC, OUR_FLAGS + ["-Wextra", "-pedantic"], o.prelude,
                                       o.protos, workdir, "ours_sig")
        assert not own_bad, f"our prototypes do not match our own declarations: {own_bad}"
        self.mingw_functions = set(re.findall(
            r"\b(" + "|".join(sorted(o.protos)) + r")\s*\(", w.preprocessed))
        common_protos = {fn: o.protos[fn] for fn in self.mingw_functions}
        sig, self.sig_messages = signature_check(MINGW_CC, MINGW_FLAGS, MINGW_PRELUDE,
                                                 common_protos, workdir, "mingw_sig")
        self.our_vals.update(own)
        self.mingw_vals.update(sig)
        # GUID objects
        self.common_guids = o.guids & w.vd_guids
        self.our_guids = guid_bytes(CC, CC_OBJCOPY, OUR_FLAGS, "#define INITGUID\n" + o.prelude,
                                    o.guids, ".rodata.", workdir, "ours_guid")
        self.mingw_guids = guid_bytes(MINGW_CC, MINGW_OBJCOPY, MINGW_FLAGS,
                                      "#include <initguid.h>\n" + MINGW_PRELUDE,
                                      self.common_guids, ".rdata$", workdir, "mingw_guid")
        self.diffs = {k: (self.our_vals[k], v) for k, v in self.mingw_vals.items()
                      if self.our_vals.get(k) != v}
        self.diffs.update({f"guid({n})": (self.our_guids[n].hex(), self.mingw_guids[n].hex())
                           for n in self.common_guids if self.our_guids[n] != self.mingw_guids[n]})
        # structure: members of shared structs each side lacks; kinds that differ
        self.only_ours_members, self.only_mingw_members, self.kind_mismatch = {}, {}, {}
        for name, info in o.model.types.items():
            t = w.model.types.get(name)
            if t is None:
                continue
            if t["kind"] != info["kind"]:
                self.kind_mismatch[name] = (info["kind"], t["kind"])
            elif info["kind"] == "struct":
                a, b = set(info["members"]), set(t["members"])
                if a - b:
                    self.only_ours_members[name] = a - b
                if b - a:
                    self.only_mingw_members[name] = b - a
        # names mingw-w64's virtdisk.h has and we do not
        ours_names = (set(o.model.types) | set(o.model.enumerators) | set(o.macros) | o.guids
                      | set(o.protos))
        mingw_names = (set(w.vd_model.types) | set(w.vd_model.enumerators) | w.vd_macros
                       | w.vd_guids | w.vd_functions)
        self.missing_in_ours = sorted(mingw_names - ours_names - set(MINGW_ONLY_OK))

    def unexpected(self):
        """Differences not pinned in KNOWN_DEVIATIONS, and pins that no longer hold."""
        problems = []
        for k, (a, b) in sorted(self.diffs.items()):
            pin = KNOWN_DEVIATIONS.get(k)
            if pin is None or (pin[0], pin[1]) != (a, b):
                problems.append(f"{k}: ours {a}, mingw-w64 {b}")
        for k, (a, b, _why) in sorted(KNOWN_DEVIATIONS.items()):
            if k not in self.diffs:
                seen = (self.our_vals.get(k), self.mingw_vals.get(k))
                problems.append(f"{k}: pinned deviation (ours {a}, mingw-w64 {b}) not observed "
                                f"(now ours {seen[0]}, mingw-w64 {seen[1]}): update KNOWN_DEVIATIONS")
        for name, kinds in sorted(self.kind_mismatch.items()):
            if KNOWN_KIND_DIFFERENCES.get(name, (None, None))[:2] != kinds:
                problems.append(f"{name}: ours is a {kinds[0]}, mingw-w64's a {kinds[1]}")
        for name in sorted(set(KNOWN_KIND_DIFFERENCES) - set(self.kind_mismatch)):
            problems.append(f"{name}: pinned kind difference not observed: update KNOWN_KIND_DIFFERENCES")
        for name, paths in sorted(self.only_mingw_members.items()):
            problems.append(f"{name}: members only mingw-w64 has: {sorted(paths)}")
        for name, paths in sorted(self.only_ours_members.items()):
            if paths != SDK_MEMBERS_MINGW_LACKS.get(name):
                problems.append(f"{name}: members only ours has: {sorted(paths)} "
                                f"(pinned: {sorted(SDK_MEMBERS_MINGW_LACKS.get(name, ()))})")
        for name in sorted(set(SDK_MEMBERS_MINGW_LACKS) - set(self.only_ours_members)):
            problems.append(f"{name}: pinned SDK-only members no longer differ: update SDK_MEMBERS_MINGW_LACKS")
        for n in self.missing_in_ours:
            problems.append(f"{n}: declared by mingw-w64's virtdisk.h, missing in ours")
        return problems


_BASELINE = {}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    if "cmp" not in _BASELINE:
        _BASELINE["cmp"] = Comparison(HEADER, str(tmp_path_factory.mktemp("virtdisk_abi")))
    return _BASELINE["cmp"]


# ---- tests -------------------------------------------------------------------------------------
@needs_mingw
def test_abi_equals_mingw(baseline):
    c = baseline
    # the comparison is not empty: it covers the structs, enums and calls the engine depends on
    for must in ("sizeof(GUID)", "sizeof(OVERLAPPED)", "sizeof(GET_VIRTUAL_DISK_INFO)", "offsetof(GET_VIRTUAL_DISK_INFO, ChangeTrackingState.MostRecentId)",
                 "offsetof(OPEN_VIRTUAL_DISK_PARAMETERS, Version2.ReadOnly)",
                 "sizeof(QUERY_CHANGES_VIRTUAL_DISK_RANGE)", "offsetof(OVERLAPPED, OffsetHigh)",
                 "value(GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE)", "value(ERROR_INSUFFICIENT_BUFFER)",
                 "signature(QueryChangesVirtualDisk)", "signature(ReadFile)", "sizeof(*PCWSTR)"):
        assert must in c.mingw_vals, f"{must} was not compared with mingw-w64"
    problems = c.unexpected()
    assert not problems, "virtdisk.h vs mingw-w64:\n  " + "\n  ".join(problems)


@needs_mingw
def test_guids_equal_mingw_and_reference(baseline):
    c = baseline
    assert c.common_guids == set(REFERENCE_GUIDS), c.common_guids
    for n, want in REFERENCE_GUIDS.items():
        assert c.our_guids[n] == want, f"{n}: ours {c.our_guids[n].hex()}, reference {want.hex()}"
        assert c.mingw_guids[n] == want, f"{n}: mingw-w64 {c.mingw_guids[n].hex()}, reference {want.hex()}"


@needs_mingw
def test_every_constant_has_an_oracle(baseline):
    """Each enumerator and #define of ours equals mingw-w64's or, where mingw-w64 has none, the
    reference's; macros that alias an enumerator are checked through it."""
    c = baseline
    names = set(c.ours.model.enumerators) | set(c.ours.macros)
    unjudged, wrong = [], []
    for n in sorted(names):
        ours = c.our_vals[f"value({n})"]
        judged = f"value({n})" in c.mingw_vals
        if n in REFERENCE_VALUES:
            judged = True
            if REFERENCE_VALUES[n] != ours:
                wrong.append(f"{n}: ours {ours:#x}, reference {REFERENCE_VALUES[n]:#x}")
        alias = c.ours.macros.get(n)
        if not judged and alias in c.ours.model.enumerators:
            judged = True  # SDK alias (e.g. CREATE_VIRTUAL_DISK_FLAG_USE_RCT_SOURCE_LIMIT)
            assert ours == c.our_vals[f"value({alias})"]
        if not judged:
            unjudged.append(n)
    stale = sorted(set(REFERENCE_VALUES) - names)
    assert not wrong, "constants differ from shared/reference/virtdisk.md:\n  " + "\n  ".join(wrong)
    assert not unjudged, f"constants neither mingw-w64 nor the reference table judges: {unjudged}"
    assert not stale, f"REFERENCE_VALUES names not in our header: {stale}"


@needs_mingw
def test_sdk_layouts_equal_reference(baseline):
    """The SDK's newer layouts (which mingw-w64 cannot judge) equal the numbers in virtdisk.md."""
    c = baseline
    wrong = [f"{k}: ours {c.our_vals.get(k)}, reference {v}" for k, v in sorted(REFERENCE_LAYOUT.items())
             if c.our_vals.get(k) != v]
    assert not wrong, "layouts differ from shared/reference/virtdisk.md A1.4:\n  " + "\n  ".join(wrong)
    # where mingw-w64 deviates, the reference sides with us
    for k, (ours, _mingw, _why) in KNOWN_DEVIATIONS.items():
        if k in REFERENCE_LAYOUT:
            assert REFERENCE_LAYOUT[k] == ours, k


MUTATIONS = [
    # (id, old text, new text, the one difference the comparison must report)
    ("member_type", "\t\t\tBOOL ReadOnly;\n\t\t\tGUID ResiliencyGuid;\n\t\t} Version2;",
     "\t\t\tUCHAR ReadOnly;\n\t\t\tGUID ResiliencyGuid;\n\t\t} Version2;",
     {"sizeof(OPEN_VIRTUAL_DISK_PARAMETERS.Version2.ReadOnly): ours 1, mingw-w64 4"}),
    ("member_order", "\tULONG DeviceId;\n\tGUID VendorId;\n} VIRTUAL_STORAGE_TYPE",
     "\tGUID VendorId;\n\tULONG DeviceId;\n} VIRTUAL_STORAGE_TYPE",
     {"offsetof(VIRTUAL_STORAGE_TYPE, DeviceId): ours 16, mingw-w64 0",
      "offsetof(VIRTUAL_STORAGE_TYPE, VendorId): ours 0, mingw-w64 4"}),
    ("enum_value", "GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE = 15,",
     "GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE = 16,",
     {"value(GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE): ours 16, mingw-w64 15"}),
    ("define_value", "#define ERROR_INVALID_PARAMETER 87u", "#define ERROR_INVALID_PARAMETER 86u",
     {"value(ERROR_INVALID_PARAMETER): ours 86, mingw-w64 87"}),
    # the u64 ProviderSpecificFlags seen in a hand-written binding (virtdisk.md A1.5)
    ("param_type", "ATTACH_VIRTUAL_DISK_FLAG Flags, ULONG ProviderSpecificFlags,",
     "ATTACH_VIRTUAL_DISK_FLAG Flags, ULONG64 ProviderSpecificFlags,",
     {"signature(AttachVirtualDisk): ours 1, mingw-w64 0"}),
    ("member_removed", "\t\tBOOL IsLoaded;\n", "",
     {"GET_VIRTUAL_DISK_INFO: members only mingw-w64 has: ['IsLoaded']"}),
    ("scalar_width", "typedef uint16_t WCHAR;", "typedef uint32_t WCHAR;", None),
]


@needs_mingw
@pytest.mark.parametrize("mid,old,new,expect", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_probe_detects_mutation(baseline, tmp_path, mid, old, new, expect):
    with open(HEADER) as f:
        text = f.read()
    assert text.count(old) == 1, f"mutation {mid}: the text to change occurs {text.count(old)} times"
    d = tmp_path / "hdr"
    d.mkdir()
    (d / "virtdisk.h").write_text(text.replace(old, new))
    c = Comparison(str(d / "virtdisk.h"), str(tmp_path))
    reported = set(c.unexpected())
    if expect is None:
        # a base type's width: many items change; WCHAR must be among them
        assert "sizeof(WCHAR): ours 4, mingw-w64 2" in reported, sorted(reported)
        assert "sizeof(*PCWSTR): ours 4, mingw-w64 2" in reported, sorted(reported)
    else:
        assert reported == expect, f"mutation {mid}: reported {sorted(reported)}"


@needs_mingw
def test_header_refuses_windows_compiler(tmp_path):
    src = tmp_path / "win.c"
    src.write_text(f'#include "{HEADER}"\n')
    p = run([MINGW_CC, "-c", str(src), "-o", str(tmp_path / "win.o")], check=False)
    assert p.returncode != 0
    assert "on Windows include the SDK's" in p.stderr, p.stderr


def _usage_source(protos):
    """A translation unit that uses every declaration the way an engine does."""
    fns = "\n".join(f"\t{ret} (WINAPI *const p_{fn})({params}) = {fn};\n\t(void)p_{fn};"
                    for fn, (ret, params) in sorted(protos.items()))
    return f"""#include "initguid.h"
#include "virtdisk.h"

int hv_use(void);
int hv_use(void)
{{
	VIRTUAL_STORAGE_TYPE vst = {{VIRTUAL_STORAGE_TYPE_DEVICE_VHDX, VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT}};
	OPEN_VIRTUAL_DISK_PARAMETERS op = {{.Version = OPEN_VIRTUAL_DISK_VERSION_3}};
	GET_VIRTUAL_DISK_INFO info = {{.Version = GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE}};
	QUERY_CHANGES_VIRTUAL_DISK_RANGE ranges[4];
	OVERLAPPED ov = {{0}};
	PCWSTR path = u"C:\\\\vm\\\\disk.vhdx";
	HANDLE h = INVALID_HANDLE_VALUE;
	ULONG count = 4, size = sizeof info;
	ULONG64 processed = 0;
	DWORD rc, got = 0;
	BYTE buf[512];
{fns}
	op.Version3.ReadOnly = TRUE;
	ov.Offset = 4096;
	ov.OffsetHigh = 0;
	rc = OpenVirtualDisk(&vst, path, VIRTUAL_DISK_ACCESS_NONE, OPEN_VIRTUAL_DISK_FLAG_NONE, &op, &h);
	if (rc == ERROR_SUCCESS)
		rc = GetVirtualDiskInformation(h, &size, &info, NULL);
	if (rc == ERROR_SUCCESS && info.ChangeTrackingState.Enabled)
		rc = QueryChangesVirtualDisk(h, info.ChangeTrackingState.MostRecentId, 0, 1u << 20,
					     QUERY_CHANGES_VIRTUAL_DISK_FLAG_NONE, ranges, &count, &processed);
	if (rc == ERROR_SUCCESS && !ReadFile(h, buf, sizeof buf, &got, &ov) &&
	    GetLastError() == ERROR_IO_PENDING)
		rc = GetOverlappedResult(h, &ov, &got, TRUE) ? ERROR_SUCCESS : GetLastError();
	CloseHandle(h);
	return rc == ERROR_VHD_MISSING_CHANGE_TRACKING_INFORMATION ? 2 : rc != ERROR_SUCCESS;
}}
"""


STRICT = ["-std=c11", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wstrict-prototypes",
          "-Wmissing-prototypes", "-Wconversion", "-Wcast-qual", "-Wundef"]


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_header_is_self_contained_c11(tmp_path, cc):
    """Only our header (and its initguid.h), no other include: C11-clean under the strictest
    warnings, every prototype's type usable, the GUID definitions emitted by INITGUID."""
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} not installed")
    with open(HEADER) as f:
        protos = prototypes(f.read())
    for fn in ("OpenVirtualDisk", "CreateVirtualDisk", "AttachVirtualDisk", "DetachVirtualDisk",
               "GetVirtualDiskPhysicalPath", "GetVirtualDiskInformation", "SetVirtualDiskInformation",
               "QueryChangesVirtualDisk", "CloseHandle", "ReadFile", "GetLastError", "SetLastError"):
        assert fn in protos, f"{fn} is not declared"
    src = tmp_path / "use.c"
    src.write_text(_usage_source(protos))
    obj = tmp_path / "use.o"
    run([cc, *STRICT, "-I", HEADER_DIR, "-c", str(src), "-o", str(obj)])
    syms = run(["nm", str(obj)]).stdout
    for g in ("VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT", "VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN"):
        assert re.search(rf"^\S+ [VvWw] {g}$", syms, flags=re.M), f"{g} not defined weak:\n{syms}"
    # the header alone, included twice, without INITGUID: only declarations
    src2 = tmp_path / "decl.c"
    src2.write_text('#include "virtdisk.h"\n#include "virtdisk.h"\n'
                    "const GUID *hv_vendor(void);\nconst GUID *hv_vendor(void) "
                    "{ return &VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT; }\n")
    obj2 = tmp_path / "decl.o"
    run([cc, *STRICT, "-I", HEADER_DIR, "-c", str(src2), "-o", str(obj2)])
    assert re.search(r"^\s+U VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT$", run(["nm", str(obj2)]).stdout,
                     flags=re.M)
