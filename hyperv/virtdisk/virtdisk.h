/*
 * virtdisk.h — the Windows SDK's virtdisk.h (Win32 virtual disk API) for Linux x86-64: the same
 * names, enum values, constants, struct layouts and function signatures, plus the few Windows
 * base types, error codes and kernel32 calls (CloseHandle, ReadFile, ...) an engine uses on a
 * virtual-disk handle. An engine written against the SDK header compiles against this one
 * unchanged and links an implementation (the simulator's libvirtdisk, sim/virtdisk).
 *
 * Must not: contain any implementation (declarations only), be used by a Windows compiler (the
 * SDK's own header is the real thing there), depend on anything of ours, or differ from the SDK
 * in any layout or value. conformance/virtdisk/test_virtdisk_abi.py proves the last point
 * against mingw-w64's virtdisk.h compiled by x86_64-w64-mingw32-gcc, and pins every place where
 * mingw-w64 (an older, Windows 8-era copy) and the current SDK differ.
 *
 * Source of truth: the current SDK header and win32metadata (shared/reference/virtdisk.md A1),
 * not mingw-w64. Choices where this header cannot be literal:
 *   - STORAGE_DEPENDENCY_INFO's entry arrays are `[1]` (as mingw-w64 and win32metadata declare
 *     them); the SDK text has `[]`, an MSVC extension that ISO C forbids inside a union.
 *   - WCHAR is uint16_t (UTF-16 code units; `u"..."` literals convert without a cast), never the
 *     32-bit Linux wchar_t. BOOL is a 32-bit int. DWORD/ULONG are uint32_t, never `long`.
 *   - Error codes are `u`-suffixed DWORD values (winerror.h uses `L`; the values are identical).
 *   - DEFINE_GUID keeps the INITGUID convention: without INITGUID it declares
 *     `extern const GUID name;`; a translation unit that defines INITGUID first (or includes
 *     "initguid.h" from this folder, as Windows code includes <initguid.h>) defines it, as a
 *     weak symbol so that several such units link (what DECLSPEC_SELECTANY does on Windows).
 *
 * Return convention (as on Windows): every virtdisk function returns its Win32 error code as the
 * DWORD result (ERROR_SUCCESS = 0) and does not touch GetLastError(); the kernel32 calls return
 * BOOL and report through GetLastError(). The 0xC03A.... codes have the top bit set: test them
 * with `!= ERROR_SUCCESS`, never with FAILED().
 *
 * Ownership: a HANDLE from OpenVirtualDisk/CreateVirtualDisk is released with CloseHandle.
 * Strings and buffers passed in stay the caller's; functions fill caller-supplied buffers only.
 */
#ifndef HV_VIRTDISK_H
#define HV_VIRTDISK_H

#ifdef _WIN32
#error "hyperv/virtdisk/virtdisk.h is the Linux emulation of virtdisk.h; on Windows include the SDK's <windows.h> and <virtdisk.h> instead"
#endif

#include <stddef.h>
#include <stdint.h>

#if UINTPTR_MAX != 0xFFFFFFFFFFFFFFFFu
#error "hyperv/virtdisk/virtdisk.h reproduces the Windows x64 layouts and needs a 64-bit (LP64) target"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Windows base types (windef.h, winnt.h, basetsd.h widths for x64) ------------------------ */

#ifndef WINAPI
#define WINAPI /* __stdcall on x86 Windows; nothing on x64 and here */
#endif

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

typedef uint8_t BYTE;
typedef uint8_t UCHAR, *PUCHAR;
typedef uint16_t WORD;
typedef uint16_t USHORT;
typedef uint32_t DWORD, *PDWORD, *LPDWORD;
typedef uint32_t ULONG, *PULONG;
typedef int32_t LONG;
typedef int32_t BOOL, *PBOOL, *LPBOOL;
typedef uint64_t ULONGLONG, *PULONGLONG;
typedef uint64_t ULONG64, *PULONG64;
typedef uint64_t DWORD64;
typedef int64_t LONGLONG;
typedef uintptr_t ULONG_PTR;
typedef intptr_t LONG_PTR;
typedef void *PVOID, *LPVOID;
typedef const void *LPCVOID;

/* UTF-16 code unit, as on Windows. */
typedef uint16_t WCHAR;
typedef WCHAR *PWSTR, *LPWSTR;
typedef const WCHAR *PCWSTR, *LPCWSTR;

typedef void *HANDLE;
typedef HANDLE *PHANDLE, *LPHANDLE;
#define INVALID_HANDLE_VALUE ((HANDLE)(LONG_PTR)-1)

/* 16 bytes, 4-byte aligned; Data1..3 are native (little-endian) integers. */
typedef struct _GUID {
	uint32_t Data1;
	uint16_t Data2;
	uint16_t Data3;
	uint8_t Data4[8];
} GUID, *LPGUID;
typedef const GUID *LPCGUID;

#ifndef DEFINE_GUID
#ifdef INITGUID
#define DEFINE_GUID(name, l, w1, w2, b1, b2, b3, b4, b5, b6, b7, b8) \
	__attribute__((weak)) const GUID name = {l, w1, w2, {b1, b2, b3, b4, b5, b6, b7, b8}}
#else
#define DEFINE_GUID(name, l, w1, w2, b1, b2, b3, b4, b5, b6, b7, b8) extern const GUID name
#endif
#endif

/* Opaque here: nothing in this API looks inside one (NULL means "inherit", as on Windows). */
typedef struct _SECURITY_DESCRIPTOR SECURITY_DESCRIPTOR;
typedef PVOID PSECURITY_DESCRIPTOR;

/* minwinbase.h, x64 layout (32 bytes). Offset/OffsetHigh carry a ReadFile/WriteFile position. */
typedef struct _OVERLAPPED {
	ULONG_PTR Internal;
	ULONG_PTR InternalHigh;
	union {
		struct {
			DWORD Offset;
			DWORD OffsetHigh;
		};
		PVOID Pointer;
	};
	HANDLE hEvent;
} OVERLAPPED, *LPOVERLAPPED;

/* ---- Error codes (winerror.h) ---------------------------------------------------------------- */

#define ERROR_SUCCESS 0u
#define ERROR_FILE_NOT_FOUND 2u
#define ERROR_PATH_NOT_FOUND 3u
#define ERROR_ACCESS_DENIED 5u
#define ERROR_INVALID_HANDLE 6u
#define ERROR_NOT_ENOUGH_MEMORY 8u
#define ERROR_BAD_COMMAND 22u
#define ERROR_SHARING_VIOLATION 32u
#define ERROR_HANDLE_EOF 38u
#define ERROR_NOT_SUPPORTED 50u
#define ERROR_INVALID_PARAMETER 87u
#define ERROR_CALL_NOT_IMPLEMENTED 120u
#define ERROR_INSUFFICIENT_BUFFER 122u
#define ERROR_MORE_DATA 234u
#define ERROR_UNSUPPORTED_COMPRESSION 618u
#define ERROR_FILE_SYSTEM_LIMITATION 665u
#define ERROR_OPERATION_ABORTED 995u
#define ERROR_IO_INCOMPLETE 996u
#define ERROR_IO_PENDING 997u
#define ERROR_NOT_FOUND 1168u
#define ERROR_PRIVILEGE_NOT_HELD 1314u
#define ERROR_FILE_CORRUPT 1392u
#define ERROR_FILE_ENCRYPTED 6002u

/* FACILITY_VIRTUALIZATION, usermode VHD (0xC03A002B..0xC03A002F are not defined). */
#define ERROR_QUERY_STORAGE_ERROR 0x803A0001u
#define ERROR_VHD_DRIVE_FOOTER_MISSING 0xC03A0001u
#define ERROR_VHD_DRIVE_FOOTER_CHECKSUM_MISMATCH 0xC03A0002u
#define ERROR_VHD_DRIVE_FOOTER_CORRUPT 0xC03A0003u
#define ERROR_VHD_FORMAT_UNKNOWN 0xC03A0004u
#define ERROR_VHD_FORMAT_UNSUPPORTED_VERSION 0xC03A0005u
#define ERROR_VHD_SPARSE_HEADER_CHECKSUM_MISMATCH 0xC03A0006u
#define ERROR_VHD_SPARSE_HEADER_UNSUPPORTED_VERSION 0xC03A0007u
#define ERROR_VHD_SPARSE_HEADER_CORRUPT 0xC03A0008u
#define ERROR_VHD_BLOCK_ALLOCATION_FAILURE 0xC03A0009u
#define ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT 0xC03A000Au
#define ERROR_VHD_INVALID_BLOCK_SIZE 0xC03A000Bu
#define ERROR_VHD_BITMAP_MISMATCH 0xC03A000Cu
#define ERROR_VHD_PARENT_VHD_NOT_FOUND 0xC03A000Du
#define ERROR_VHD_CHILD_PARENT_ID_MISMATCH 0xC03A000Eu
#define ERROR_VHD_CHILD_PARENT_TIMESTAMP_MISMATCH 0xC03A000Fu
#define ERROR_VHD_METADATA_READ_FAILURE 0xC03A0010u
#define ERROR_VHD_METADATA_WRITE_FAILURE 0xC03A0011u
#define ERROR_VHD_INVALID_SIZE 0xC03A0012u
#define ERROR_VHD_INVALID_FILE_SIZE 0xC03A0013u
#define ERROR_VIRTDISK_PROVIDER_NOT_FOUND 0xC03A0014u
#define ERROR_VIRTDISK_NOT_VIRTUAL_DISK 0xC03A0015u
#define ERROR_VHD_PARENT_VHD_ACCESS_DENIED 0xC03A0016u
#define ERROR_VHD_CHILD_PARENT_SIZE_MISMATCH 0xC03A0017u
#define ERROR_VHD_DIFFERENCING_CHAIN_CYCLE_DETECTED 0xC03A0018u
#define ERROR_VHD_DIFFERENCING_CHAIN_ERROR_IN_PARENT 0xC03A0019u
#define ERROR_VIRTUAL_DISK_LIMITATION 0xC03A001Au
#define ERROR_VHD_INVALID_TYPE 0xC03A001Bu
#define ERROR_VHD_INVALID_STATE 0xC03A001Cu
#define ERROR_VIRTDISK_UNSUPPORTED_DISK_SECTOR_SIZE 0xC03A001Du
#define ERROR_VIRTDISK_DISK_ALREADY_OWNED 0xC03A001Eu
#define ERROR_VIRTDISK_DISK_ONLINE_AND_WRITABLE 0xC03A001Fu
#define ERROR_CTLOG_TRACKING_NOT_INITIALIZED 0xC03A0020u
#define ERROR_CTLOG_LOGFILE_SIZE_EXCEEDED_MAXSIZE 0xC03A0021u
#define ERROR_CTLOG_VHD_CHANGED_OFFLINE 0xC03A0022u
#define ERROR_CTLOG_INVALID_TRACKING_STATE 0xC03A0023u
#define ERROR_CTLOG_INCONSISTENT_TRACKING_FILE 0xC03A0024u
#define ERROR_VHD_RESIZE_WOULD_TRUNCATE_DATA 0xC03A0025u
#define ERROR_VHD_COULD_NOT_COMPUTE_MINIMUM_VIRTUAL_SIZE 0xC03A0026u
#define ERROR_VHD_ALREADY_AT_OR_BELOW_MINIMUM_VIRTUAL_SIZE 0xC03A0027u
#define ERROR_VHD_METADATA_FULL 0xC03A0028u
#define ERROR_VHD_INVALID_CHANGE_TRACKING_ID 0xC03A0029u
#define ERROR_VHD_CHANGE_TRACKING_DISABLED 0xC03A002Au
#define ERROR_VHD_MISSING_CHANGE_TRACKING_INFORMATION 0xC03A0030u

/* ---- virtdisk.h proper, in the SDK's order ---------------------------------------------------- */

/* Identifiers for virtual storage types and providers. */
typedef struct _VIRTUAL_STORAGE_TYPE {
	ULONG DeviceId;
	GUID VendorId;
} VIRTUAL_STORAGE_TYPE, *PVIRTUAL_STORAGE_TYPE;

DEFINE_GUID(VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN, 0x00000000, 0x0000, 0x0000, 0x00, 0x00, 0x00, 0x00,
	    0x00, 0x00, 0x00, 0x00);
/* {EC984AEC-A0F9-47e9-901F-71415A66345B} */
DEFINE_GUID(VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT, 0xec984aec, 0xa0f9, 0x47e9, 0x90, 0x1f, 0x71, 0x41,
	    0x5a, 0x66, 0x34, 0x5b);

#define VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN 0
#define VIRTUAL_STORAGE_TYPE_DEVICE_ISO 1
#define VIRTUAL_STORAGE_TYPE_DEVICE_VHD 2
#define VIRTUAL_STORAGE_TYPE_DEVICE_VHDX 3
#define VIRTUAL_STORAGE_TYPE_DEVICE_VHDSET 4

/* The default RWDepth for OPEN_VIRTUAL_DISK_PARAMETERS.Version1. */
#define OPEN_VIRTUAL_DISK_RW_DEPTH_DEFAULT 1

typedef enum _OPEN_VIRTUAL_DISK_VERSION {
	OPEN_VIRTUAL_DISK_VERSION_UNSPECIFIED = 0, /* documented as not supported */
	OPEN_VIRTUAL_DISK_VERSION_1 = 1,
	OPEN_VIRTUAL_DISK_VERSION_2 = 2,
	OPEN_VIRTUAL_DISK_VERSION_3 = 3,
} OPEN_VIRTUAL_DISK_VERSION;

/* 44 bytes; the union starts at offset 4 (not 8: nothing in it is 8-byte aligned). */
typedef struct _OPEN_VIRTUAL_DISK_PARAMETERS {
	OPEN_VIRTUAL_DISK_VERSION Version;
	union {
		struct {
			ULONG RWDepth;
		} Version1;
		struct {
			BOOL GetInfoOnly;
			BOOL ReadOnly;
			GUID ResiliencyGuid;
		} Version2;
		struct {
			BOOL GetInfoOnly;
			BOOL ReadOnly;
			GUID ResiliencyGuid;
			GUID SnapshotId;
		} Version3;
	};
} OPEN_VIRTUAL_DISK_PARAMETERS, *POPEN_VIRTUAL_DISK_PARAMETERS;

/* Access mask for OpenVirtualDisk and CreateVirtualDisk. V2/V3 opens pass NONE. */
typedef enum _VIRTUAL_DISK_ACCESS_MASK {
	VIRTUAL_DISK_ACCESS_NONE = 0x00000000,
	VIRTUAL_DISK_ACCESS_ATTACH_RO = 0x00010000,
	VIRTUAL_DISK_ACCESS_ATTACH_RW = 0x00020000,
	VIRTUAL_DISK_ACCESS_DETACH = 0x00040000,
	VIRTUAL_DISK_ACCESS_GET_INFO = 0x00080000,
	VIRTUAL_DISK_ACCESS_CREATE = 0x00100000,
	VIRTUAL_DISK_ACCESS_METAOPS = 0x00200000,
	VIRTUAL_DISK_ACCESS_READ = 0x000d0000,     /* ATTACH_RO | DETACH | GET_INFO ("reserved") */
	VIRTUAL_DISK_ACCESS_ALL = 0x003f0000,
	VIRTUAL_DISK_ACCESS_WRITABLE = 0x00320000, /* ATTACH_RW | CREATE | METAOPS ("reserved") */
} VIRTUAL_DISK_ACCESS_MASK;

typedef enum _OPEN_VIRTUAL_DISK_FLAG {
	OPEN_VIRTUAL_DISK_FLAG_NONE = 0x00000000,
	OPEN_VIRTUAL_DISK_FLAG_NO_PARENTS = 0x00000001,
	OPEN_VIRTUAL_DISK_FLAG_BLANK_FILE = 0x00000002,
	OPEN_VIRTUAL_DISK_FLAG_BOOT_DRIVE = 0x00000004,
	OPEN_VIRTUAL_DISK_FLAG_CACHED_IO = 0x00000008,
	OPEN_VIRTUAL_DISK_FLAG_CUSTOM_DIFF_CHAIN = 0x00000010,
	OPEN_VIRTUAL_DISK_FLAG_PARENT_CACHED_IO = 0x00000020,
	OPEN_VIRTUAL_DISK_FLAG_VHDSET_FILE_ONLY = 0x00000040,
	OPEN_VIRTUAL_DISK_FLAG_IGNORE_RELATIVE_PARENT_LOCATOR = 0x00000080,
	OPEN_VIRTUAL_DISK_FLAG_NO_WRITE_HARDENING = 0x00000100,
	OPEN_VIRTUAL_DISK_FLAG_SUPPORT_COMPRESSED_VOLUMES = 0x00000200,
	OPEN_VIRTUAL_DISK_FLAG_SUPPORT_SPARSE_FILES_ANY_FS = 0x00000400,
	OPEN_VIRTUAL_DISK_FLAG_SUPPORT_ENCRYPTED_FILES = 0x00000800,
} OPEN_VIRTUAL_DISK_FLAG;

DWORD WINAPI OpenVirtualDisk(PVIRTUAL_STORAGE_TYPE VirtualStorageType, PCWSTR Path,
			     VIRTUAL_DISK_ACCESS_MASK VirtualDiskAccessMask, OPEN_VIRTUAL_DISK_FLAG Flags,
			     POPEN_VIRTUAL_DISK_PARAMETERS Parameters /* optional */, PHANDLE Handle);

/* CreateVirtualDisk: 0 selects the implementation's default block / logical sector size. */
#define CREATE_VIRTUAL_DISK_PARAMETERS_DEFAULT_BLOCK_SIZE 0
#define CREATE_VIRTUAL_DISK_PARAMETERS_DEFAULT_SECTOR_SIZE 0

typedef enum _CREATE_VIRTUAL_DISK_VERSION {
	CREATE_VIRTUAL_DISK_VERSION_UNSPECIFIED = 0,
	CREATE_VIRTUAL_DISK_VERSION_1 = 1,
	CREATE_VIRTUAL_DISK_VERSION_2 = 2,
	CREATE_VIRTUAL_DISK_VERSION_3 = 3,
	CREATE_VIRTUAL_DISK_VERSION_4 = 4,
} CREATE_VIRTUAL_DISK_VERSION;

/* Version1 is 48 bytes, Version2 120; the union starts at offset 8. */
typedef struct _CREATE_VIRTUAL_DISK_PARAMETERS {
	CREATE_VIRTUAL_DISK_VERSION Version;
	union {
		struct {
			GUID UniqueId;
			ULONGLONG MaximumSize;
			ULONG BlockSizeInBytes;
			ULONG SectorSizeInBytes;
			PCWSTR ParentPath;
			PCWSTR SourcePath;
		} Version1;
		struct {
			GUID UniqueId;
			ULONGLONG MaximumSize;
			ULONG BlockSizeInBytes;
			ULONG SectorSizeInBytes;
			ULONG PhysicalSectorSizeInBytes;
			PCWSTR ParentPath;
			PCWSTR SourcePath;
			OPEN_VIRTUAL_DISK_FLAG OpenFlags;
			VIRTUAL_STORAGE_TYPE ParentVirtualStorageType;
			VIRTUAL_STORAGE_TYPE SourceVirtualStorageType;
			GUID ResiliencyGuid;
		} Version2;
		struct {
			GUID UniqueId;
			ULONGLONG MaximumSize;
			ULONG BlockSizeInBytes;
			ULONG SectorSizeInBytes;
			ULONG PhysicalSectorSizeInBytes;
			PCWSTR ParentPath;
			PCWSTR SourcePath;
			OPEN_VIRTUAL_DISK_FLAG OpenFlags;
			VIRTUAL_STORAGE_TYPE ParentVirtualStorageType;
			VIRTUAL_STORAGE_TYPE SourceVirtualStorageType;
			GUID ResiliencyGuid;
			PCWSTR SourceLimitPath;
			VIRTUAL_STORAGE_TYPE BackingStorageType;
		} Version3;
		struct {
			GUID UniqueId;
			ULONGLONG MaximumSize;
			ULONG BlockSizeInBytes;
			ULONG SectorSizeInBytes;
			ULONG PhysicalSectorSizeInBytes;
			PCWSTR ParentPath;
			PCWSTR SourcePath;
			OPEN_VIRTUAL_DISK_FLAG OpenFlags;
			VIRTUAL_STORAGE_TYPE ParentVirtualStorageType;
			VIRTUAL_STORAGE_TYPE SourceVirtualStorageType;
			GUID ResiliencyGuid;
			PCWSTR SourceLimitPath;
			VIRTUAL_STORAGE_TYPE BackingStorageType;
			GUID PmemAddressAbstractionType;
			ULONGLONG DataAlignment;
		} Version4;
	};
} CREATE_VIRTUAL_DISK_PARAMETERS, *PCREATE_VIRTUAL_DISK_PARAMETERS;

typedef enum _CREATE_VIRTUAL_DISK_FLAG {
	CREATE_VIRTUAL_DISK_FLAG_NONE = 0x0,
	CREATE_VIRTUAL_DISK_FLAG_FULL_PHYSICAL_ALLOCATION = 0x1,
	CREATE_VIRTUAL_DISK_FLAG_PREVENT_WRITES_TO_SOURCE_DISK = 0x2,
	CREATE_VIRTUAL_DISK_FLAG_DO_NOT_COPY_METADATA_FROM_PARENT = 0x4,
	CREATE_VIRTUAL_DISK_FLAG_CREATE_BACKING_STORAGE = 0x8,
	CREATE_VIRTUAL_DISK_FLAG_USE_CHANGE_TRACKING_SOURCE_LIMIT = 0x10,
	CREATE_VIRTUAL_DISK_FLAG_PRESERVE_PARENT_CHANGE_TRACKING_STATE = 0x20,
	CREATE_VIRTUAL_DISK_FLAG_VHD_SET_USE_ORIGINAL_BACKING_STORAGE = 0x40,
	CREATE_VIRTUAL_DISK_FLAG_SPARSE_FILE = 0x80,
	CREATE_VIRTUAL_DISK_FLAG_PMEM_COMPATIBLE = 0x100,
	CREATE_VIRTUAL_DISK_FLAG_SUPPORT_COMPRESSED_VOLUMES = 0x200,
	CREATE_VIRTUAL_DISK_FLAG_SUPPORT_SPARSE_FILES_ANY_FS = 0x400,
} CREATE_VIRTUAL_DISK_FLAG;

#define CREATE_VIRTUAL_DISK_FLAG_USE_RCT_SOURCE_LIMIT CREATE_VIRTUAL_DISK_FLAG_USE_CHANGE_TRACKING_SOURCE_LIMIT

DWORD WINAPI CreateVirtualDisk(PVIRTUAL_STORAGE_TYPE VirtualStorageType, PCWSTR Path,
			       VIRTUAL_DISK_ACCESS_MASK VirtualDiskAccessMask,
			       PSECURITY_DESCRIPTOR SecurityDescriptor /* optional */,
			       CREATE_VIRTUAL_DISK_FLAG Flags, ULONG ProviderSpecificFlags,
			       PCREATE_VIRTUAL_DISK_PARAMETERS Parameters,
			       LPOVERLAPPED Overlapped /* optional */, PHANDLE Handle);

typedef enum _ATTACH_VIRTUAL_DISK_VERSION {
	ATTACH_VIRTUAL_DISK_VERSION_UNSPECIFIED = 0,
	ATTACH_VIRTUAL_DISK_VERSION_1 = 1,
	ATTACH_VIRTUAL_DISK_VERSION_2 = 2,
} ATTACH_VIRTUAL_DISK_VERSION;

/* 24 bytes; the union starts at offset 8 (Version2's ULONGLONGs), so Version1.Reserved is at 8. */
typedef struct _ATTACH_VIRTUAL_DISK_PARAMETERS {
	ATTACH_VIRTUAL_DISK_VERSION Version;
	union {
		struct {
			ULONG Reserved;
		} Version1;
		struct {
			ULONGLONG RestrictedOffset;
			ULONGLONG RestrictedLength;
		} Version2;
	};
} ATTACH_VIRTUAL_DISK_PARAMETERS, *PATTACH_VIRTUAL_DISK_PARAMETERS;

typedef enum _ATTACH_VIRTUAL_DISK_FLAG {
	ATTACH_VIRTUAL_DISK_FLAG_NONE = 0x00000000,
	ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY = 0x00000001,
	ATTACH_VIRTUAL_DISK_FLAG_NO_DRIVE_LETTER = 0x00000002,
	/* The attach outlives the handle until DetachVirtualDisk. */
	ATTACH_VIRTUAL_DISK_FLAG_PERMANENT_LIFETIME = 0x00000004,
	/* Not attached to the local host (documented "reserved"; ReadFile on the handle needs it). */
	ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST = 0x00000008,
	ATTACH_VIRTUAL_DISK_FLAG_NO_SECURITY_DESCRIPTOR = 0x00000010,
	ATTACH_VIRTUAL_DISK_FLAG_BYPASS_DEFAULT_ENCRYPTION_POLICY = 0x00000020,
	ATTACH_VIRTUAL_DISK_FLAG_NON_PNP = 0x00000040,
	ATTACH_VIRTUAL_DISK_FLAG_RESTRICTED_RANGE = 0x00000080,
	ATTACH_VIRTUAL_DISK_FLAG_SINGLE_PARTITION = 0x00000100,
	ATTACH_VIRTUAL_DISK_FLAG_REGISTER_VOLUME = 0x00000200,
	ATTACH_VIRTUAL_DISK_FLAG_AT_BOOT = 0x00000400,
} ATTACH_VIRTUAL_DISK_FLAG;

DWORD WINAPI AttachVirtualDisk(HANDLE VirtualDiskHandle,
			       PSECURITY_DESCRIPTOR SecurityDescriptor /* optional */,
			       ATTACH_VIRTUAL_DISK_FLAG Flags, ULONG ProviderSpecificFlags,
			       PATTACH_VIRTUAL_DISK_PARAMETERS Parameters /* optional */,
			       LPOVERLAPPED Overlapped /* optional */);

typedef enum _DETACH_VIRTUAL_DISK_FLAG {
	DETACH_VIRTUAL_DISK_FLAG_NONE = 0x00000000,
} DETACH_VIRTUAL_DISK_FLAG;

DWORD WINAPI DetachVirtualDisk(HANDLE VirtualDiskHandle, DETACH_VIRTUAL_DISK_FLAG Flags,
			       ULONG ProviderSpecificFlags);

/* *DiskPathSizeInBytes is in bytes, in and out; DiskPath may be NULL to ask for the size. */
DWORD WINAPI GetVirtualDiskPhysicalPath(HANDLE VirtualDiskHandle, PULONG DiskPathSizeInBytes,
					PWSTR DiskPath);

DWORD WINAPI GetAllAttachedVirtualDiskPhysicalPaths(PULONG PathsBufferSizeInBytes, PWSTR PathsBuffer);

typedef enum _DEPENDENT_DISK_FLAG {
	DEPENDENT_DISK_FLAG_NONE = 0x00000000,
	DEPENDENT_DISK_FLAG_MULT_BACKING_FILES = 0x00000001,
	DEPENDENT_DISK_FLAG_FULLY_ALLOCATED = 0x00000002,
	DEPENDENT_DISK_FLAG_READ_ONLY = 0x00000004,
	DEPENDENT_DISK_FLAG_REMOTE = 0x00000008,
	DEPENDENT_DISK_FLAG_SYSTEM_VOLUME = 0x00000010,
	DEPENDENT_DISK_FLAG_SYSTEM_VOLUME_PARENT = 0x00000020,
	DEPENDENT_DISK_FLAG_REMOVABLE = 0x00000040,
	DEPENDENT_DISK_FLAG_NO_DRIVE_LETTER = 0x00000080,
	DEPENDENT_DISK_FLAG_PARENT = 0x00000100,
	DEPENDENT_DISK_FLAG_NO_HOST_DISK = 0x00000200,
	DEPENDENT_DISK_FLAG_PERMANENT_LIFETIME = 0x00000400,
	DEPENDENT_DISK_FLAG_SUPPORT_COMPRESSED_VOLUMES = 0x00000800,
	DEPENDENT_DISK_FLAG_ALWAYS_ALLOW_SPARSE = 0x00001000,
	DEPENDENT_DISK_FLAG_SUPPORT_ENCRYPTED_FILES = 0x00002000,
} DEPENDENT_DISK_FLAG;

typedef enum _STORAGE_DEPENDENCY_INFO_VERSION {
	STORAGE_DEPENDENCY_INFO_VERSION_UNSPECIFIED = 0,
	STORAGE_DEPENDENCY_INFO_VERSION_1 = 1,
	STORAGE_DEPENDENCY_INFO_VERSION_2 = 2,
} STORAGE_DEPENDENCY_INFO_VERSION;

typedef struct _STORAGE_DEPENDENCY_INFO_TYPE_1 {
	DEPENDENT_DISK_FLAG DependencyTypeFlags;
	ULONG ProviderSpecificFlags;
	VIRTUAL_STORAGE_TYPE VirtualStorageType;
} STORAGE_DEPENDENCY_INFO_TYPE_1, *PSTORAGE_DEPENDENCY_INFO_TYPE_1;

typedef struct _STORAGE_DEPENDENCY_INFO_TYPE_2 {
	DEPENDENT_DISK_FLAG DependencyTypeFlags;
	ULONG ProviderSpecificFlags;
	VIRTUAL_STORAGE_TYPE VirtualStorageType;
	ULONG AncestorLevel;
	PWSTR DependencyDeviceName;
	PWSTR HostVolumeName;
	PWSTR DependentVolumeName;
	PWSTR DependentVolumeRelativePath;
} STORAGE_DEPENDENCY_INFO_TYPE_2, *PSTORAGE_DEPENDENCY_INFO_TYPE_2;

/* Variable length: NumberEntries entries follow; `[1]` stands for the SDK's `[]` (see top). */
typedef struct _STORAGE_DEPENDENCY_INFO {
	STORAGE_DEPENDENCY_INFO_VERSION Version;
	ULONG NumberEntries;
	union {
		STORAGE_DEPENDENCY_INFO_TYPE_1 Version1Entries[1];
		STORAGE_DEPENDENCY_INFO_TYPE_2 Version2Entries[1];
	};
} STORAGE_DEPENDENCY_INFO, *PSTORAGE_DEPENDENCY_INFO;

typedef enum _GET_STORAGE_DEPENDENCY_FLAG {
	GET_STORAGE_DEPENDENCY_FLAG_NONE = 0x00000000,
	GET_STORAGE_DEPENDENCY_FLAG_HOST_VOLUMES = 0x00000001,
	GET_STORAGE_DEPENDENCY_FLAG_DISK_HANDLE = 0x00000002,
} GET_STORAGE_DEPENDENCY_FLAG;

#define GET_STORAGE_DEPENDENCY_FLAG_PARENTS GET_STORAGE_DEPENDENCY_FLAG_HOST_VOLUMES

DWORD WINAPI GetStorageDependencyInformation(HANDLE ObjectHandle, GET_STORAGE_DEPENDENCY_FLAG Flags,
					     ULONG StorageDependencyInfoSize,
					     PSTORAGE_DEPENDENCY_INFO StorageDependencyInfo,
					     PULONG SizeUsed /* optional */);

typedef enum _GET_VIRTUAL_DISK_INFO_VERSION {
	GET_VIRTUAL_DISK_INFO_UNSPECIFIED = 0,
	GET_VIRTUAL_DISK_INFO_SIZE = 1,
	GET_VIRTUAL_DISK_INFO_IDENTIFIER = 2,
	GET_VIRTUAL_DISK_INFO_PARENT_LOCATION = 3,
	GET_VIRTUAL_DISK_INFO_PARENT_IDENTIFIER = 4,
	GET_VIRTUAL_DISK_INFO_PARENT_TIMESTAMP = 5,
	GET_VIRTUAL_DISK_INFO_VIRTUAL_STORAGE_TYPE = 6,
	GET_VIRTUAL_DISK_INFO_PROVIDER_SUBTYPE = 7,
	GET_VIRTUAL_DISK_INFO_IS_4K_ALIGNED = 8,
	GET_VIRTUAL_DISK_INFO_PHYSICAL_DISK = 9,
	GET_VIRTUAL_DISK_INFO_VHD_PHYSICAL_SECTOR_SIZE = 10,
	GET_VIRTUAL_DISK_INFO_SMALLEST_SAFE_VIRTUAL_SIZE = 11,
	GET_VIRTUAL_DISK_INFO_FRAGMENTATION = 12,
	GET_VIRTUAL_DISK_INFO_IS_LOADED = 13,
	GET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID = 14,
	GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE = 15,
} GET_VIRTUAL_DISK_INFO_VERSION;

/*
 * 32 bytes; the union starts at offset 8. ParentLocationBuffer (offset 12) and MostRecentId
 * (offset 16) are variable length and run past the end of the struct: callers pass a larger
 * buffer and its size in *VirtualDiskInfoSize. ProviderSubtype: 2 fixed, 3 dynamic,
 * 4 differencing.
 */
typedef struct _GET_VIRTUAL_DISK_INFO {
	GET_VIRTUAL_DISK_INFO_VERSION Version;
	union {
		struct {
			ULONGLONG VirtualSize;
			ULONGLONG PhysicalSize;
			ULONG BlockSize;
			ULONG SectorSize;
		} Size;
		GUID Identifier;
		struct {
			BOOL ParentResolved;
			WCHAR ParentLocationBuffer[1]; /* MultiSz string */
		} ParentLocation;
		GUID ParentIdentifier;
		ULONG ParentTimestamp;
		VIRTUAL_STORAGE_TYPE VirtualStorageType;
		ULONG ProviderSubtype;
		BOOL Is4kAligned;
		BOOL IsLoaded;
		struct {
			ULONG LogicalSectorSize;
			ULONG PhysicalSectorSize;
			BOOL IsRemote;
		} PhysicalDisk;
		ULONG VhdPhysicalSectorSize;
		ULONGLONG SmallestSafeVirtualSize;
		ULONG FragmentationPercentage;
		GUID VirtualDiskId;
		struct {
			BOOL Enabled;
			BOOL NewerChanges;
			WCHAR MostRecentId[1]; /* NUL-terminated, up to the maximum below */
		} ChangeTrackingState;
	};
} GET_VIRTUAL_DISK_INFO, *PGET_VIRTUAL_DISK_INFO;

/* In WCHARs. */
#define VIRTUAL_DISK_MAXIMUM_CHANGE_TRACKING_ID_LENGTH 256

DWORD WINAPI GetVirtualDiskInformation(HANDLE VirtualDiskHandle, PULONG VirtualDiskInfoSize,
				       PGET_VIRTUAL_DISK_INFO VirtualDiskInfo,
				       PULONG SizeUsed /* optional */);

typedef enum _SET_VIRTUAL_DISK_INFO_VERSION {
	SET_VIRTUAL_DISK_INFO_UNSPECIFIED = 0,
	SET_VIRTUAL_DISK_INFO_PARENT_PATH = 1,
	SET_VIRTUAL_DISK_INFO_IDENTIFIER = 2,
	SET_VIRTUAL_DISK_INFO_PARENT_PATH_WITH_DEPTH = 3,
	SET_VIRTUAL_DISK_INFO_PHYSICAL_SECTOR_SIZE = 4,
	SET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID = 5,
	SET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE = 6,
	SET_VIRTUAL_DISK_INFO_PARENT_LOCATOR = 7,
} SET_VIRTUAL_DISK_INFO_VERSION;

/* 32 bytes; the union starts at offset 8. */
typedef struct _SET_VIRTUAL_DISK_INFO {
	SET_VIRTUAL_DISK_INFO_VERSION Version;
	union {
		PCWSTR ParentFilePath;
		GUID UniqueIdentifier;
		struct {
			ULONG ChildDepth;
			PCWSTR ParentFilePath;
		} ParentPathWithDepthInfo;
		ULONG VhdPhysicalSectorSize;
		GUID VirtualDiskId;
		BOOL ChangeTrackingEnabled;
		struct {
			GUID LinkageId;
			PCWSTR ParentFilePath;
		} ParentLocator;
	};
} SET_VIRTUAL_DISK_INFO, *PSET_VIRTUAL_DISK_INFO;

DWORD WINAPI SetVirtualDiskInformation(HANDLE VirtualDiskHandle, PSET_VIRTUAL_DISK_INFO VirtualDiskInfo);

DWORD WINAPI EnumerateVirtualDiskMetadata(HANDLE VirtualDiskHandle, PULONG NumberOfItems, GUID *Items);

DWORD WINAPI GetVirtualDiskMetadata(HANDLE VirtualDiskHandle, const GUID *Item, PULONG MetaDataSize,
				    PVOID MetaData);

DWORD WINAPI SetVirtualDiskMetadata(HANDLE VirtualDiskHandle, const GUID *Item, ULONG MetaDataSize,
				    const void *MetaData);

DWORD WINAPI DeleteVirtualDiskMetadata(HANDLE VirtualDiskHandle, const GUID *Item);

/* OperationStatus is ERROR_IO_PENDING while the operation runs, then its final code. */
typedef struct _VIRTUAL_DISK_PROGRESS {
	DWORD OperationStatus;
	ULONGLONG CurrentValue;
	ULONGLONG CompletionValue;
} VIRTUAL_DISK_PROGRESS, *PVIRTUAL_DISK_PROGRESS;

DWORD WINAPI GetVirtualDiskOperationProgress(HANDLE VirtualDiskHandle, LPOVERLAPPED Overlapped,
					     PVIRTUAL_DISK_PROGRESS Progress);

typedef enum _COMPACT_VIRTUAL_DISK_VERSION {
	COMPACT_VIRTUAL_DISK_VERSION_UNSPECIFIED = 0,
	COMPACT_VIRTUAL_DISK_VERSION_1 = 1,
} COMPACT_VIRTUAL_DISK_VERSION;

typedef struct _COMPACT_VIRTUAL_DISK_PARAMETERS {
	COMPACT_VIRTUAL_DISK_VERSION Version;
	union {
		struct {
			ULONG Reserved;
		} Version1;
	};
} COMPACT_VIRTUAL_DISK_PARAMETERS, *PCOMPACT_VIRTUAL_DISK_PARAMETERS;

typedef enum _COMPACT_VIRTUAL_DISK_FLAG {
	COMPACT_VIRTUAL_DISK_FLAG_NONE = 0x00000000,
	COMPACT_VIRTUAL_DISK_FLAG_NO_ZERO_SCAN = 0x00000001,
	COMPACT_VIRTUAL_DISK_FLAG_NO_BLOCK_MOVES = 0x00000002,
} COMPACT_VIRTUAL_DISK_FLAG;

DWORD WINAPI CompactVirtualDisk(HANDLE VirtualDiskHandle, COMPACT_VIRTUAL_DISK_FLAG Flags,
				PCOMPACT_VIRTUAL_DISK_PARAMETERS Parameters /* optional */,
				LPOVERLAPPED Overlapped /* optional */);

typedef enum _MERGE_VIRTUAL_DISK_VERSION {
	MERGE_VIRTUAL_DISK_VERSION_UNSPECIFIED = 0,
	MERGE_VIRTUAL_DISK_VERSION_1 = 1,
	MERGE_VIRTUAL_DISK_VERSION_2 = 2,
} MERGE_VIRTUAL_DISK_VERSION;

#define MERGE_VIRTUAL_DISK_DEFAULT_MERGE_DEPTH 1

typedef struct _MERGE_VIRTUAL_DISK_PARAMETERS {
	MERGE_VIRTUAL_DISK_VERSION Version;
	union {
		struct {
			ULONG MergeDepth;
		} Version1;
		struct {
			ULONG MergeSourceDepth; /* the leaf is depth 1 */
			ULONG MergeTargetDepth;
		} Version2;
	};
} MERGE_VIRTUAL_DISK_PARAMETERS, *PMERGE_VIRTUAL_DISK_PARAMETERS;

typedef enum _MERGE_VIRTUAL_DISK_FLAG {
	MERGE_VIRTUAL_DISK_FLAG_NONE = 0x00000000,
} MERGE_VIRTUAL_DISK_FLAG;

DWORD WINAPI MergeVirtualDisk(HANDLE VirtualDiskHandle, MERGE_VIRTUAL_DISK_FLAG Flags,
			      PMERGE_VIRTUAL_DISK_PARAMETERS Parameters,
			      LPOVERLAPPED Overlapped /* optional */);

typedef enum _EXPAND_VIRTUAL_DISK_VERSION {
	EXPAND_VIRTUAL_DISK_VERSION_UNSPECIFIED = 0,
	EXPAND_VIRTUAL_DISK_VERSION_1 = 1,
} EXPAND_VIRTUAL_DISK_VERSION;

typedef struct _EXPAND_VIRTUAL_DISK_PARAMETERS {
	EXPAND_VIRTUAL_DISK_VERSION Version;
	union {
		struct {
			ULONGLONG NewSize;
		} Version1;
	};
} EXPAND_VIRTUAL_DISK_PARAMETERS, *PEXPAND_VIRTUAL_DISK_PARAMETERS;

typedef enum _EXPAND_VIRTUAL_DISK_FLAG {
	EXPAND_VIRTUAL_DISK_FLAG_NONE = 0x00000000,
	EXPAND_VIRTUAL_DISK_FLAG_NOTIFY_CHANGE = 0x00000001,
} EXPAND_VIRTUAL_DISK_FLAG;

DWORD WINAPI ExpandVirtualDisk(HANDLE VirtualDiskHandle, EXPAND_VIRTUAL_DISK_FLAG Flags,
			       PEXPAND_VIRTUAL_DISK_PARAMETERS Parameters,
			       LPOVERLAPPED Overlapped /* optional */);

typedef enum _RESIZE_VIRTUAL_DISK_VERSION {
	RESIZE_VIRTUAL_DISK_VERSION_UNSPECIFIED = 0,
	RESIZE_VIRTUAL_DISK_VERSION_1 = 1,
} RESIZE_VIRTUAL_DISK_VERSION;

typedef struct _RESIZE_VIRTUAL_DISK_PARAMETERS {
	RESIZE_VIRTUAL_DISK_VERSION Version;
	union {
		struct {
			ULONGLONG NewSize; /* 0 with RESIZE_TO_SMALLEST_SAFE_VIRTUAL_SIZE */
		} Version1;
	};
} RESIZE_VIRTUAL_DISK_PARAMETERS, *PRESIZE_VIRTUAL_DISK_PARAMETERS;

typedef enum _RESIZE_VIRTUAL_DISK_FLAG {
	RESIZE_VIRTUAL_DISK_FLAG_NONE = 0x0,
	RESIZE_VIRTUAL_DISK_FLAG_ALLOW_UNSAFE_VIRTUAL_SIZE = 0x1,
	RESIZE_VIRTUAL_DISK_FLAG_RESIZE_TO_SMALLEST_SAFE_VIRTUAL_SIZE = 0x2,
} RESIZE_VIRTUAL_DISK_FLAG;

DWORD WINAPI ResizeVirtualDisk(HANDLE VirtualDiskHandle, RESIZE_VIRTUAL_DISK_FLAG Flags,
			       PRESIZE_VIRTUAL_DISK_PARAMETERS Parameters,
			       LPOVERLAPPED Overlapped /* optional */);

typedef enum _MIRROR_VIRTUAL_DISK_VERSION {
	MIRROR_VIRTUAL_DISK_VERSION_UNSPECIFIED = 0,
	MIRROR_VIRTUAL_DISK_VERSION_1 = 1,
} MIRROR_VIRTUAL_DISK_VERSION;

typedef struct _MIRROR_VIRTUAL_DISK_PARAMETERS {
	MIRROR_VIRTUAL_DISK_VERSION Version;
	union {
		struct {
			PCWSTR MirrorVirtualDiskPath;
		} Version1;
	};
} MIRROR_VIRTUAL_DISK_PARAMETERS, *PMIRROR_VIRTUAL_DISK_PARAMETERS;

typedef enum _MIRROR_VIRTUAL_DISK_FLAG {
	MIRROR_VIRTUAL_DISK_FLAG_NONE = 0x00000000,
	MIRROR_VIRTUAL_DISK_FLAG_EXISTING_FILE = 0x00000001,
	MIRROR_VIRTUAL_DISK_FLAG_SKIP_MIRROR_ACTIVATION = 0x00000002,
	MIRROR_VIRTUAL_DISK_FLAG_ENABLE_SMB_COMPRESSION = 0x00000004,
	MIRROR_VIRTUAL_DISK_FLAG_IS_LIVE_MIGRATION = 0x00000008,
} MIRROR_VIRTUAL_DISK_FLAG;

/* Overlapped is required: the mirror runs until CancelIoEx or BreakMirrorVirtualDisk. */
DWORD WINAPI MirrorVirtualDisk(HANDLE VirtualDiskHandle, MIRROR_VIRTUAL_DISK_FLAG Flags,
			       PMIRROR_VIRTUAL_DISK_PARAMETERS Parameters, LPOVERLAPPED Overlapped);

DWORD WINAPI BreakMirrorVirtualDisk(HANDLE VirtualDiskHandle);

DWORD WINAPI AddVirtualDiskParent(HANDLE VirtualDiskHandle, PCWSTR ParentPath);

/* 24 bytes. Offsets are virtual-disk byte offsets, not offsets in the .vhdx file. */
typedef struct _QUERY_CHANGES_VIRTUAL_DISK_RANGE {
	ULONG64 ByteOffset;
	ULONG64 ByteLength;
	ULONG64 Reserved;
} QUERY_CHANGES_VIRTUAL_DISK_RANGE, *PQUERY_CHANGES_VIRTUAL_DISK_RANGE;

typedef enum _QUERY_CHANGES_VIRTUAL_DISK_FLAG {
	QUERY_CHANGES_VIRTUAL_DISK_FLAG_NONE = 0x00000000,
} QUERY_CHANGES_VIRTUAL_DISK_FLAG;

typedef enum _TAKE_SNAPSHOT_VHDSET_FLAG {
	TAKE_SNAPSHOT_VHDSET_FLAG_NONE = 0x00000000,
	TAKE_SNAPSHOT_VHDSET_FLAG_WRITEABLE = 0x00000001,
} TAKE_SNAPSHOT_VHDSET_FLAG, *PTAKE_SNAPSHOT_VHDSET_FLAG;

typedef enum _TAKE_SNAPSHOT_VHDSET_VERSION {
	TAKE_SNAPSHOT_VHDSET_VERSION_UNSPECIFIED = 0,
	TAKE_SNAPSHOT_VHDSET_VERSION_1 = 1,
} TAKE_SNAPSHOT_VHDSET_VERSION;

typedef struct _TAKE_SNAPSHOT_VHDSET_PARAMETERS {
	TAKE_SNAPSHOT_VHDSET_VERSION Version;
	union {
		struct {
			GUID SnapshotId;
		} Version1;
	};
} TAKE_SNAPSHOT_VHDSET_PARAMETERS, *PTAKE_SNAPSHOT_VHDSET_PARAMETERS;

typedef enum _DELETE_SNAPSHOT_VHDSET_FLAG {
	DELETE_SNAPSHOT_VHDSET_FLAG_NONE = 0x00000000,
	DELETE_SNAPSHOT_VHDSET_FLAG_PERSIST_RCT = 0x00000001,
} DELETE_SNAPSHOT_VHDSET_FLAG, *PDELETE_SNAPSHOT_VHDSET_FLAG;

typedef enum _DELETE_SNAPSHOT_VHDSET_VERSION {
	DELETE_SNAPSHOT_VHDSET_VERSION_UNSPECIFIED = 0,
	DELETE_SNAPSHOT_VHDSET_VERSION_1 = 1,
} DELETE_SNAPSHOT_VHDSET_VERSION;

typedef struct _DELETE_SNAPSHOT_VHDSET_PARAMETERS {
	DELETE_SNAPSHOT_VHDSET_VERSION Version;
	union {
		struct {
			GUID SnapshotId;
		} Version1;
	};
} DELETE_SNAPSHOT_VHDSET_PARAMETERS, *PDELETE_SNAPSHOT_VHDSET_PARAMETERS;

typedef enum _MODIFY_VHDSET_VERSION {
	MODIFY_VHDSET_UNSPECIFIED = 0,
	MODIFY_VHDSET_SNAPSHOT_PATH = 1,
	MODIFY_VHDSET_REMOVE_SNAPSHOT = 2,
	MODIFY_VHDSET_DEFAULT_SNAPSHOT_PATH = 3,
} MODIFY_VHDSET_VERSION, *PMODIFY_VHDSET_VERSION;

typedef enum _MODIFY_VHDSET_FLAG {
	MODIFY_VHDSET_FLAG_NONE = 0x00000000,
	MODIFY_VHDSET_FLAG_WRITEABLE_SNAPSHOT = 0x00000001,
} MODIFY_VHDSET_FLAG, *PMODIFY_VHDSET_FLAG;

typedef struct _MODIFY_VHDSET_PARAMETERS {
	MODIFY_VHDSET_VERSION Version;
	union {
		struct {
			GUID SnapshotId;
			PCWSTR SnapshotFilePath;
		} SnapshotPath;
		GUID SnapshotId;
		PCWSTR DefaultFilePath;
	};
} MODIFY_VHDSET_PARAMETERS, *PMODIFY_VHDSET_PARAMETERS;

typedef enum _APPLY_SNAPSHOT_VHDSET_FLAG {
	APPLY_SNAPSHOT_VHDSET_FLAG_NONE = 0x00000000,
	APPLY_SNAPSHOT_VHDSET_FLAG_WRITEABLE = 0x00000001,
} APPLY_SNAPSHOT_VHDSET_FLAG, *PAPPLY_SNAPSHOT_VHDSET_FLAG;

typedef enum _APPLY_SNAPSHOT_VHDSET_VERSION {
	APPLY_SNAPSHOT_VHDSET_VERSION_UNSPECIFIED = 0,
	APPLY_SNAPSHOT_VHDSET_VERSION_1 = 1,
} APPLY_SNAPSHOT_VHDSET_VERSION;

typedef struct _APPLY_SNAPSHOT_VHDSET_PARAMETERS {
	APPLY_SNAPSHOT_VHDSET_VERSION Version;
	union {
		struct {
			GUID SnapshotId;
			GUID LeafSnapshotId;
		} Version1;
	};
} APPLY_SNAPSHOT_VHDSET_PARAMETERS, *PAPPLY_SNAPSHOT_VHDSET_PARAMETERS;

typedef enum _RAW_SCSI_VIRTUAL_DISK_FLAG {
	RAW_SCSI_VIRTUAL_DISK_FLAG_NONE = 0x00000000,
} RAW_SCSI_VIRTUAL_DISK_FLAG, *PRAW_SCSI_VIRTUAL_DISK_FLAG;

typedef enum _RAW_SCSI_VIRTUAL_DISK_VERSION {
	RAW_SCSI_VIRTUAL_DISK_VERSION_UNSPECIFIED = 0,
	RAW_SCSI_VIRTUAL_DISK_VERSION_1 = 1,
} RAW_SCSI_VIRTUAL_DISK_VERSION;

/* 48 bytes; DataBuffer at offset 24. DataIn TRUE means a read. */
typedef struct _RAW_SCSI_VIRTUAL_DISK_PARAMETERS {
	RAW_SCSI_VIRTUAL_DISK_VERSION Version;
	union {
		struct {
			BOOL RSVDHandle;
			UCHAR DataIn;
			UCHAR CdbLength;
			UCHAR SenseInfoLength;
			ULONG SrbFlags;
			ULONG DataTransferLength;
			PVOID DataBuffer;     /* DataTransferLength bytes */
			UCHAR *SenseInfo;     /* SenseInfoLength bytes */
			UCHAR *Cdb;           /* CdbLength bytes */
		} Version1;
	};
} RAW_SCSI_VIRTUAL_DISK_PARAMETERS, *PRAW_SCSI_VIRTUAL_DISK_PARAMETERS;

/* 12 bytes. ScsiStatus and the sense data carry the SCSI outcome. */
typedef struct _RAW_SCSI_VIRTUAL_DISK_RESPONSE {
	RAW_SCSI_VIRTUAL_DISK_VERSION Version;
	union {
		struct {
			UCHAR ScsiStatus;
			UCHAR SenseInfoLength;    /* bytes written to the parameters' SenseInfo */
			ULONG DataTransferLength; /* bytes moved to/from the parameters' DataBuffer */
		} Version1;
	};
} RAW_SCSI_VIRTUAL_DISK_RESPONSE, *PRAW_SCSI_VIRTUAL_DISK_RESPONSE;

/*
 * On entry *RangeCount is the capacity of Ranges, on return the number filled. *ProcessedLength
 * is how much of [ByteOffset, ByteOffset + ByteLength) this call covered: callers loop, adding it
 * to ByteOffset, until the window is done (see shared/reference/virtdisk.md A2.4).
 */
DWORD WINAPI QueryChangesVirtualDisk(HANDLE VirtualDiskHandle, PCWSTR ChangeTrackingId,
				     ULONG64 ByteOffset, ULONG64 ByteLength,
				     QUERY_CHANGES_VIRTUAL_DISK_FLAG Flags,
				     PQUERY_CHANGES_VIRTUAL_DISK_RANGE Ranges, PULONG RangeCount,
				     PULONG64 ProcessedLength);

/* The SDK spells these `const P..._PARAMETERS` (a const pointer); kept as is. */
DWORD WINAPI TakeSnapshotVhdSet(HANDLE VirtualDiskHandle, const PTAKE_SNAPSHOT_VHDSET_PARAMETERS Parameters,
				TAKE_SNAPSHOT_VHDSET_FLAG Flags);

DWORD WINAPI DeleteSnapshotVhdSet(HANDLE VirtualDiskHandle,
				  const PDELETE_SNAPSHOT_VHDSET_PARAMETERS Parameters,
				  DELETE_SNAPSHOT_VHDSET_FLAG Flags);

DWORD WINAPI ModifyVhdSet(HANDLE VirtualDiskHandle, const PMODIFY_VHDSET_PARAMETERS Parameters,
			  MODIFY_VHDSET_FLAG Flags);

DWORD WINAPI ApplySnapshotVhdSet(HANDLE VirtualDiskHandle,
				 const PAPPLY_SNAPSHOT_VHDSET_PARAMETERS Parameters,
				 APPLY_SNAPSHOT_VHDSET_FLAG Flags);

/* Note the order: the flags come after the parameters here. */
DWORD WINAPI RawSCSIVirtualDisk(HANDLE VirtualDiskHandle,
				const PRAW_SCSI_VIRTUAL_DISK_PARAMETERS Parameters,
				RAW_SCSI_VIRTUAL_DISK_FLAG Flags,
				PRAW_SCSI_VIRTUAL_DISK_RESPONSE Response);

typedef enum _FORK_VIRTUAL_DISK_VERSION {
	FORK_VIRTUAL_DISK_VERSION_UNSPECIFIED = 0,
	FORK_VIRTUAL_DISK_VERSION_1 = 1,
} FORK_VIRTUAL_DISK_VERSION;

typedef struct _FORK_VIRTUAL_DISK_PARAMETERS {
	FORK_VIRTUAL_DISK_VERSION Version;
	union {
		struct {
			PCWSTR ForkedVirtualDiskPath;
		} Version1;
	};
} FORK_VIRTUAL_DISK_PARAMETERS, *PFORK_VIRTUAL_DISK_PARAMETERS;

typedef enum _FORK_VIRTUAL_DISK_FLAG {
	FORK_VIRTUAL_DISK_FLAG_NONE = 0x00000000,
	FORK_VIRTUAL_DISK_FLAG_EXISTING_FILE = 0x00000001,
} FORK_VIRTUAL_DISK_FLAG;

DWORD WINAPI ForkVirtualDisk(HANDLE VirtualDiskHandle, FORK_VIRTUAL_DISK_FLAG Flags,
			     const FORK_VIRTUAL_DISK_PARAMETERS *Parameters, LPOVERLAPPED Overlapped);

DWORD WINAPI CompleteForkVirtualDisk(HANDLE VirtualDiskHandle);

/* ---- kernel32 calls an engine makes on a virtual-disk handle ---------------------------------
 * (handleapi.h, fileapi.h, ioapiset.h, errhandlingapi.h). These report failure as FALSE plus
 * GetLastError(); the error slot is per thread. ReadFile/WriteFile on a virtual-disk handle take
 * the disk offset in lpOverlapped->Offset/OffsetHigh and may fail with ERROR_IO_PENDING, after
 * which GetOverlappedResult completes them. */
BOOL WINAPI CloseHandle(HANDLE hObject);
BOOL WINAPI ReadFile(HANDLE hFile, LPVOID lpBuffer, DWORD nNumberOfBytesToRead,
		     LPDWORD lpNumberOfBytesRead, LPOVERLAPPED lpOverlapped);
BOOL WINAPI WriteFile(HANDLE hFile, LPCVOID lpBuffer, DWORD nNumberOfBytesToWrite,
		      LPDWORD lpNumberOfBytesWritten, LPOVERLAPPED lpOverlapped);
BOOL WINAPI GetOverlappedResult(HANDLE hFile, LPOVERLAPPED lpOverlapped,
				LPDWORD lpNumberOfBytesTransferred, BOOL bWait);
BOOL WINAPI CancelIoEx(HANDLE hFile, LPOVERLAPPED lpOverlapped);
DWORD WINAPI GetLastError(void);
void WINAPI SetLastError(DWORD dwErrCode);

/* ---- x64 layout guard ---------------------------------------------------------------------------
 * The documented Windows x64 numbers (virtdisk.md A1.4); a target whose ABI lays these out
 * differently fails here instead of silently mis-sharing structs with an engine. */
_Static_assert(sizeof(GUID) == 16 && sizeof(OVERLAPPED) == 32, "Windows x64 layout");
_Static_assert(sizeof(VIRTUAL_STORAGE_TYPE) == 20, "Windows x64 layout");
_Static_assert(sizeof(OPEN_VIRTUAL_DISK_PARAMETERS) == 44 &&
		       offsetof(OPEN_VIRTUAL_DISK_PARAMETERS, Version1) == 4,
	       "Windows x64 layout");
_Static_assert(sizeof(GET_VIRTUAL_DISK_INFO) == 32 && offsetof(GET_VIRTUAL_DISK_INFO, Size) == 8,
	       "Windows x64 layout");
_Static_assert(sizeof(ATTACH_VIRTUAL_DISK_PARAMETERS) == 24 &&
		       offsetof(ATTACH_VIRTUAL_DISK_PARAMETERS, Version1) == 8,
	       "Windows x64 layout");
_Static_assert(sizeof(QUERY_CHANGES_VIRTUAL_DISK_RANGE) == 24, "Windows x64 layout");

#ifdef __cplusplus
}
#endif

#endif /* HV_VIRTDISK_H */
