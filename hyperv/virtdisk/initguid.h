/*
 * initguid.h — what Windows' <initguid.h> does, for hyperv/virtdisk/virtdisk.h: a translation
 * unit that includes this before virtdisk.h gets definitions of the GUIDs virtdisk.h declares
 * (VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT, ..._UNKNOWN) instead of extern declarations. The
 * definitions are weak, so more than one such unit may link, as DECLSPEC_SELECTANY allows.
 *
 * Must not: define anything else, or be used by a Windows compiler (the SDK has the real one).
 */
#ifdef _WIN32
#error "hyperv/virtdisk/initguid.h is for the Linux emulation; on Windows include the SDK's <initguid.h>"
#endif
#ifndef INITGUID
#define INITGUID
#endif
