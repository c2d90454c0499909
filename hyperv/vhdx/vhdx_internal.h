/*
 * vhdx_internal — the file handle, on-disk constants and the helpers the vhdx_*.c files share.
 * Not part of the public face (vhdx.h); nothing outside hyperv/vhdx includes it.
 */
#ifndef HV_VHDX_INTERNAL_H
#define HV_VHDX_INTERNAL_H

#include "vhdx.h"

#include <stdarg.h>

#define KIB 1024u
#define SECTOR4K 4096u
#define VHDX_HEADER1_OFF (64u * KIB)
#define VHDX_HEADER2_OFF (128u * KIB)
#define VHDX_RT1_OFF (192u * KIB)
#define VHDX_RT2_OFF (256u * KIB)
#define VHDX_HEADER_SIZE 4096u
#define VHDX_RT_SIZE (64u * KIB)
#define VHDX_RT_MAX_ENTRIES 2047u
#define VHDX_MT_SIZE (64u * KIB)
#define VHDX_MT_MAX_ENTRIES 2047u
#define VHDX_MAX_ITEM_LEN VHDX_MIB
#define VHDX_SB_BLOCK_BITS (1ull << 23) /* sectors described by one 1 MiB sector-bitmap block */
#define VHDX_BAT_STATE_MASK 7ull
#define VHDX_BAT_RESERVED_MASK 0xFFFF8ull /* bits 3..19 */
#define VHDX_BAT_OFFSET_MASK 0xFFFFFFFFFFF00000ull
#define VHDX_BAT_PER_PAGE (SECTOR4K / 8u)
/* Files larger than this are refused before sizing any per-MiB structure from them: 64 TiB of
 * payload plus sector bitmaps, metadata and log fit far below it. */
#define VHDX_MAX_FILE_SIZE (80ull << 40)

/* Region and metadata item GUIDs, as on-disk bytes. */
extern const struct hv_guid VHDX_GUID_BAT, VHDX_GUID_METADATA, VHDX_GUID_FILE_PARAMS,
	VHDX_GUID_VDISK_SIZE, VHDX_GUID_VDISK_ID, VHDX_GUID_LOGICAL_SECTOR,
	VHDX_GUID_PHYSICAL_SECTOR, VHDX_GUID_PARENT_LOCATOR, VHDX_GUID_LOCATOR_TYPE_VHDX;

struct vhdx_header {
	uint64_t seq;
	struct hv_guid file_write_guid, data_write_guid, log_guid;
	uint16_t log_version, version;
	uint32_t log_length;
	uint64_t log_offset;
};

/* A read-only open keeps a replayed log in memory: the descriptors, in log order, are resolved
 * once into sorted, non-overlapping segments (the latest write wins), looked up by binary search
 * on every pread. */
struct vhdx_overlay {
	uint64_t off, len;
	const uint8_t *data; /* len bytes (inside a buffer of ovl_bufs), or NULL for zeros */
};
struct vhdx_overlay_op {
	uint64_t off, len;
	uint8_t *data; /* 4096 bytes, owned; NULL for a zero descriptor */
};

/* A sector-bitmap sector changed since the last flush, keyed by file offset (open addressing). */
struct vhdx_dirty_sector {
	uint64_t off; /* 0 = empty slot (offset 0 is the file identifier, never a bitmap) */
	uint8_t *data;
};

/* Problem reporting shared by open (stop at the first) and check (collect all). */
struct vrep {
	bool collect;
	vhdx_problem_cb cb;
	void *ctx;
	int count;
	const char *path;
};

struct vhdx_file {
	char *path;
	int fd;
	unsigned flags;
	bool writable;
	struct vhdx_info info;

	struct vhdx_header hdr; /* current header */
	int hdr_slot;           /* 0 = at 64 KiB, 1 = at 128 KiB */

	uint64_t meta_off, bat_off;
	uint32_t meta_len, bat_len;
	bool has_parent;
	struct vhdx_locator_entry *loc;
	uint32_t nloc;

	/* geometry */
	uint64_t nblocks;        /* payload blocks P */
	uint64_t chunk_ratio;    /* CR: payload blocks per sector-bitmap block */
	uint64_t bat_scanned;    /* BAT entries read (and validated) at open */
	uint32_t sectors_per_block;

	/* BAT: one 4 KiB page (512 entries) per slot; NULL = all entries zero */
	uint64_t **bat_pages;
	uint8_t *bat_dirty;
	uint64_t nbat_pages;

	struct vhdx_dirty_sector *dirty;
	size_t ndirty, cap_dirty;

	struct vhdx_overlay *ovl; /* segments, sorted by offset */
	size_t novl;
	struct vhdx_overlay_op *ovl_ops; /* descriptors in log order, until resolved */
	size_t novl_ops, cap_ovl_ops;

	/* size of the file as readers see it (covers an in-memory replay's LastFileOffset) */
	uint64_t file_size;
	/* end of the furthest block the BAT points at (a tolerated short last block may end past
	 * EOF; new blocks go after it) */
	uint64_t alloc_end;

	/* writable session */
	struct hv_rng rng;
	bool session_started;
	bool dwg_changed;
	struct hv_guid session_log_guid;
	bool log_guid_set;
	uint64_t log_seq;
	uint32_t log_pos;
	bool data_dirty; /* payload written since the last fsync */

	long crash_after;
	long steps;
	bool crashed;

	struct vhdx_file *parent;
	char *parent_path;
	uint8_t *scratch; /* one block of scratch for read-modify-write, allocated on first need */
};

/* vrep */
int vrep_problem(struct vrep *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A deviation open tolerates but check reports (reserved bits, non-canonical values). */
void vrep_note(struct vrep *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* I/O (vhdx_io.c): preads see the in-memory log overlay and read zeros past EOF; writes count
 * towards the crash fault point. */
int vio_pread(struct vhdx_file *f, void *buf, size_t len, uint64_t off);
int vio_pwrite(struct vhdx_file *f, const void *buf, size_t len, uint64_t off);
/* Calls cb for each part of [off, off+len) the file system stores as data (holes skipped). */
int vio_data_extents(struct vhdx_file *f, uint64_t off, uint64_t len,
		     int (*cb)(void *ctx, uint64_t off, uint64_t len), void *ctx);
int vio_truncate(struct vhdx_file *f, uint64_t size);
/* Makes [off, off+len) inside the file read as zeros (hole punch, else written zeros). */
int vio_zero(struct vhdx_file *f, uint64_t off, uint64_t len);
int vio_sync(struct vhdx_file *f);

/* headers (vhdx_open.c) */
void vhdx_header_encode(const struct vhdx_header *h, uint8_t *buf4k);
int vhdx_header_write(struct vhdx_file *f, const struct vhdx_header *h);

/* log (vhdx_log.c) */
int vhdx_log_replay(struct vhdx_file *f, struct vrep *r);
struct vhdx_log_write {
	uint64_t off;          /* 4 KiB aligned file offset */
	const uint8_t *data;   /* 4096 bytes */
};
int vhdx_log_commit(struct vhdx_file *f, const struct vhdx_log_write *w, size_t n);

/* BAT (vhdx_rw.c) */
uint64_t vhdx_bat_get(const struct vhdx_file *f, uint64_t idx);
int vhdx_bat_set(struct vhdx_file *f, uint64_t idx, uint64_t entry);
static inline uint64_t vhdx_payload_index(const struct vhdx_file *f, uint64_t b)
{
	return b + b / f->chunk_ratio;
}
static inline uint64_t vhdx_sb_index(const struct vhdx_file *f, uint64_t chunk)
{
	return chunk * (f->chunk_ratio + 1) + f->chunk_ratio;
}

/* open internals shared with check */
int vhdx_open_internal(const char *path, const struct vhdx_open_opts *o, struct vrep *r,
		       unsigned depth, struct vhdx_file **out);
void vhdx_free(struct vhdx_file *f);
/* First header update of a writable session: new FileWriteGuid (and DataWriteGuid when
 * data_change, i.e. before the first change a reader of the virtual disk could see). */
int vhdx_begin_session(struct vhdx_file *f, bool data_change);

/* UTF-16LE <-> UTF-8 for locator strings; return malloc'd strings / lengths. */
char *vhdx_utf16_to_utf8(const uint8_t *p, size_t nbytes);
uint8_t *vhdx_utf8_to_utf16(const char *s, size_t *nbytes);

#endif
