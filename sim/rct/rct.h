/*
 * rct — per-virtual-disk Resilient Change Tracking: RCT ids, sealing, change queries, resets, the
 * coarse (MRT-like) fallback after a host crash, and a crash-safe sidecar file of our own format
 * (layout at the top of rct_file.c; Hyper-V's .rct/.mrt format is not public).
 *
 * Must not: read the clock, draw random numbers (every tracking GUID comes from the caller, who
 * draws it from the host's seeded PRNG), know about VMs, checkpoints or WMI, or allocate from a
 * length read from a sidecar before checking it against the file size.
 *
 * MODEL
 *   A tracked disk has a virtual size, a granularity G (power of two, 4 KiB..1 GiB, default
 *   64 KiB) and a coarse granularity C (a multiple of G, default 1 MiB; the MRT-like record), a
 *   tracking GUID, an `enabled` flag and a sequence number `seq` = the last sealed epoch (0 when
 *   nothing has been sealed since tracking started or was reset).
 *
 *   Block b (a G-block) covers bytes [b*G, min((b+1)*G, size)). Epoch e (1..seq) is the set of
 *   blocks written between seal e-1 and seal e, kept as sorted, coalesced runs. Writes since the
 *   last seal form the open epoch (seq+1), kept as two sparse bitmaps (chunks of 2^16 bits
 *   allocated on first write, held as runs while sparse): the fine one (per G) and its coarse
 *   shadow (per C), both updated by rct_mark in O(len/G) — never in the number of dirty
 *   blocks. Memory stays small for scattered writes on a 64 TiB disk. An epoch is "coarse"
 *   when its fine record was lost (host crash) and only the C-rounded superset is known; its
 *   runs are still stored in G-block units. An epoch is "lost" when a write could not be
 *   recorded at all (out of memory); queries across it fail as MISSING rather than under-report.
 *
 *   RCT id: "rctX:" + the tracking GUID in lowercase with ':' for '-' and no braces + ':' + seq as
 *   8 lowercase hex digits, e.g. rctX:5bfde23b:ce75:4303:b54f:6c18394f105c:00000001. The id of
 *   seq s names "the disk as it was at seal s" (s = 0: as it was when tracking (re)started).
 *
 *   Query "since S upto U" = the union of epochs S+1..U (U = RCT_UPTO_LIVE: ..seq and the open
 *   epoch), in virtual-disk byte offsets. Without crashes this is exactly the set of blocks
 *   written after seal S (and up to seal U); an epoch that lived through rct_crash contributes
 *   its C-rounded superset, so a query never misses a change.
 *
 *   Events: rct_reset (live migration with reset, disk replaced) and rct_resize (a resize
 *   invalidates older ids [INF]) draw a new GUID from the caller and drop all epochs; every old
 *   id then fails with MISSING_CHANGE_TRACKING_INFORMATION. Disabling drops everything (queries
 *   fail with CHANGE_TRACKING_DISABLED); enabling starts over with a fresh GUID. rct_crash keeps
 *   every id valid and coarsens the open epoch (design choice; a host configured to invalidate
 *   on crash calls rct_reset instead).
 *
 *   Durability: the in-memory object is the truth while the host runs; rct_save persists it
 *   (write <path>.tmp, fsync, rename, fsync the directory), so the file is always either the old
 *   or the new state. rct_close never saves: marks since the last save die with the process.
 *   When to save (every seal, every N writes) is the host's policy; the sidecar always holds
 *   the coarse shadow of the open epoch, so rct_crash after rct_open still never under-reports
 *   the saved writes.
 *
 * Errors: every fallible call returns 0 or a negative HV_E* (base.h) and sets hv_errmsg(). The
 * calls an engine reaches (query, most-recent id, seal) also fill an optional `win32` out-param
 * with the Win32 code the virtdisk/WMI layer should report (0 on success):
 *   HV_EINVAL       RCT_WIN32_INVALID_CHANGE_TRACKING_ID           not rctX:<guid>:<seq>
 *   HV_ENOTFOUND    RCT_WIN32_MISSING_CHANGE_TRACKING_INFORMATION  other GUID (reset), seq
 *                   newer than the disk's, since > upto, upto > seq, a lost epoch in range
 *   HV_EUNSUPPORTED RCT_WIN32_CHANGE_TRACKING_DISABLED             tracking is off
 *   HV_EINVAL       RCT_WIN32_INVALID_PARAMETER                    bad window or arguments
 *   HV_ENOMEM       RCT_WIN32_NOT_ENOUGH_MEMORY
 *   The id's syntax is checked first, then `enabled`, then the GUID and sequence numbers.
 *
 * Threads: one struct rct is not thread-safe; distinct objects are independent.
 */
#ifndef HV_SIM_RCT_H
#define HV_SIM_RCT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../hyperv/base/base.h"

#define RCT_ID_STRLEN 50 /* "rctX:" + 36 + ":" + 8, without NUL */
#define RCT_UPTO_LIVE UINT64_MAX
#define RCT_DEFAULT_GRANULARITY 65536u
#define RCT_DEFAULT_COARSE (1024u * 1024u)
#define RCT_MIN_GRANULARITY 4096u
#define RCT_MAX_GRANULARITY (1024u * 1024u * 1024u)
#define RCT_MAX_VIRTUAL_SIZE (64ull << 40) /* the VHDX limit */

/* Win32 codes for the virtdisk/WMI layer (values from virtdisk.md A1.6). */
#define RCT_WIN32_SUCCESS 0u
#define RCT_WIN32_NOT_ENOUGH_MEMORY 8u
#define RCT_WIN32_INVALID_PARAMETER 87u
#define RCT_WIN32_INVALID_CHANGE_TRACKING_ID 0xC03A0029u
#define RCT_WIN32_CHANGE_TRACKING_DISABLED 0xC03A002Au
#define RCT_WIN32_MISSING_CHANGE_TRACKING_INFORMATION 0xC03A0030u

/* Flags for rct_create / rct_open. */
enum {
	RCT_NOSYNC = 1 << 0, /* keep rct_save's write order but skip fsync (tests, benchmarks) */
	RCT_RDONLY = 1 << 1, /* rct_open only: rct_save fails, a leftover <path>.tmp stays */
};

/* Test fault points for rct_save (one-shot: the next save fires it and disarms it). */
enum rct_save_fault {
	RCT_FAULT_NONE = 0,
	RCT_FAULT_BEFORE_RENAME, /* <path>.tmp complete and synced, power lost before the rename */
	RCT_FAULT_TORN_TMP,      /* power lost halfway through writing <path>.tmp */
};

/* One changed range; same meaning as QUERY_CHANGES_VIRTUAL_DISK_RANGE's ByteOffset/ByteLength. */
struct rct_range {
	uint64_t offset;
	uint64_t length;
};

struct rct;

/* ---- ids -------------------------------------------------------------------------------------*/

/* Writes the id (lowercase) and a NUL into out[RCT_ID_STRLEN + 1]. */
void rct_id_format(const struct hv_guid *guid, uint32_t seq, char *out);
/* Parses a NUL-terminated id; hex digits in either case, nothing else tolerated (no braces,
 * no whitespace, prefix exactly "rctX:"). Returns 0 or HV_EINVAL (message quotes the id). */
int rct_id_parse(const char *id, struct hv_guid *guid, uint32_t *seq);

/* ---- lifetime --------------------------------------------------------------------------------*/

/* Creates a tracked disk and writes its sidecar at `path` (generation 1; fails if `path`
 * exists). granularity 0 = RCT_DEFAULT_GRANULARITY, coarse 0 = max(RCT_DEFAULT_COARSE, G).
 * Tracking starts enabled with `guid` and seq 0. On success *out is owned by the caller
 * (rct_close). */
int rct_create(const char *path, uint64_t virtual_size, uint32_t granularity, uint32_t coarse,
	       const struct hv_guid *guid, unsigned flags, struct rct **out);
/* Opens and fully validates a sidecar; a bad file fails with HV_ECORRUPT "PATH: field: cause"
 * (HV_EUNSUPPORTED for a newer format version). A leftover <path>.tmp (a save cut by a crash) is
 * ignored, and removed unless RCT_RDONLY. On success *out is owned by the caller (rct_close). */
int rct_open(const char *path, unsigned flags, struct rct **out);
/* Persists the whole state (generation + 1) atomically. On failure the file keeps its old
 * content and the in-memory generation is unchanged. */
int rct_save(struct rct *r);
/* Frees everything. Does not save: unsaved changes are dropped, as on a process exit. NULL ok. */
void rct_close(struct rct *r);
/* Arms a one-shot fault for the next rct_save, which then fails with HV_ECRASHED. */
void rct_set_save_fault(struct rct *r, enum rct_save_fault fault);

/* ---- tracking --------------------------------------------------------------------------------*/

/* Records a guest write of [offset, offset+length): every G-block it touches (and its C-blocks)
 * joins the open epoch. length 0 and writes while tracking is disabled do nothing. HV_EINVAL
 * when the write extends past the virtual size. */
int rct_mark(struct rct *r, uint64_t offset, uint64_t length);
/* Closes the open epoch (possibly empty) as epoch seq+1, increments seq and writes the new id
 * into id_out[RCT_ID_STRLEN + 1] (may be NULL). Fails when tracking is disabled or seq would
 * pass 0xFFFFFFFF. */
int rct_seal(struct rct *r, char *id_out, uint32_t *win32);
/* The changes since `since_id` up to sealed seq `upto` (a frozen checkpoint) or RCT_UPTO_LIVE,
 * within [byte_offset, byte_offset+byte_length), as maximal runs of blocks, clipped to the window
 * and to the virtual size; sorted, non-overlapping, non-adjacent. At most `capacity` ranges go
 * to ranges[] and *count says how many. Paging (virtdisk.md A2.4): when more ranges remain than
 * fit, *processed = end of the last returned range - byte_offset and the caller continues at
 * byte_offset + *processed; otherwise *processed = byte_length. capacity must be > 0 unless
 * byte_length is 0. A window past the virtual size is not an error (nothing changed there).
 * The id is checked before the window (errors: see the top of this file). */
int rct_query(const struct rct *r, const char *since_id, uint64_t upto, uint64_t byte_offset,
	      uint64_t byte_length, struct rct_range *ranges, size_t capacity, size_t *count,
	      uint64_t *processed, uint32_t *win32);
/* The id of sealed seq `upto`, or of the current seq for RCT_UPTO_LIVE (MostRecentId), into
 * out[RCT_ID_STRLEN + 1]. Fails when disabled or when upto > seq. */
int rct_most_recent_id(const struct rct *r, uint64_t upto, char *out, uint32_t *win32);
/* NewerChanges: the open epoch has at least one marked block. */
bool rct_newer_changes(const struct rct *r);

/* ---- events ----------------------------------------------------------------------------------*/

/* New tracking GUID, seq 0, all epochs and the open epoch dropped; every older id now fails.
 * Allowed while disabled (the GUID is stored; queries keep failing as disabled). */
int rct_reset(struct rct *r, const struct hv_guid *new_guid);
/* Disabling drops everything (seq 0, no epochs); enabling a disabled disk starts over with
 * `new_guid` (required then). Setting the current state again is a no-op. */
int rct_set_enabled(struct rct *r, bool enabled, const struct hv_guid *new_guid);
/* Changes the virtual size and resets with `new_guid` (a resize invalidates older ids [INF]).
 * On failure nothing changes. */
int rct_resize(struct rct *r, uint64_t new_size, const struct hv_guid *new_guid);
/* Host crash: the open epoch's fine record is lost and replaced by its coarse superset (O(1));
 * later writes of that epoch are recorded coarsely too, and the epoch seals as coarse. Sealed
 * epochs and all ids stay valid. */
void rct_crash(struct rct *r);

/* ---- getters ---------------------------------------------------------------------------------*/

uint64_t rct_virtual_size(const struct rct *r);
uint32_t rct_granularity(const struct rct *r);
uint32_t rct_coarse_granularity(const struct rct *r);
struct hv_guid rct_guid(const struct rct *r);
uint32_t rct_seq(const struct rct *r);
bool rct_enabled(const struct rct *r);
uint64_t rct_generation(const struct rct *r); /* of the last save or open; create = 1 */
/* Whether sealed epoch `seq` (1..rct_seq) is coarse; seq = rct_seq + 1 asks about the open one. */
bool rct_epoch_coarse(const struct rct *r, uint32_t seq);
const char *rct_path(const struct rct *r);

#endif
