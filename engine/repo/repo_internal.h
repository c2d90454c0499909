/*
 * repo_internal — what the repo_*.c files share: the handle, the catalog helpers, the pack writer
 * and the block loader. Not part of the public face (repo.h).
 */
#ifndef ENGINE_REPO_INTERNAL_H
#define ENGINE_REPO_INTERNAL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <zstd.h>

#include "repo.h"

/* ---- pack format (documented in repo_pack.c) -------------------------------------------------*/
#define PACK_MAGIC "HVBKPACK"
#define PACK_VERSION 1u
#define PACK_HDR_LEN 32u
#define REC_MAGIC "HVRB"
#define REC_HDR_LEN 52u
#define REC_FLAG_ZSTD 1u
#define REC_FLAGS_KNOWN REC_FLAG_ZSTD

#define REPO_FD_CACHE 8

/* An open, header-checked pack for reading. */
struct repo_packfd {
	int64_t id; /* 0: slot free */
	int fd;
	uint64_t size;
};

struct repo {
	char *path;    /* the repository folder as given */
	char *catalog; /* path/catalog.db */
	char *packdir; /* path/packs */
	sqlite3 *db;
	unsigned flags;
	uint32_t block_size;
	int zstd_level;
	uint64_t pack_size;
	enum repo_fault fault;
	uint64_t fault_n;
	bool crashed;                 /* a fault point fired: only close is allowed */
	struct repo_session *session; /* the open session, if any */
	ZSTD_DCtx *dctx;
	struct repo_packfd fds[REPO_FD_CACHE];
	unsigned fd_next;
	uint8_t *rec;    /* one record: REC_HDR_LEN + ZSTD_compressBound(block_size) bytes */
	size_t rec_cap;
	uint8_t *raw;    /* one block */
};

/* ---- catalog helpers (repo_catalog.c) --------------------------------------------------------*/
/* Sets the error slot from SQLite's message ("<catalog>: <what>: <msg>") and returns HV_EIO. */
int rdb_err(struct repo *r, const char *what);
int rdb_prep(struct repo *r, sqlite3_stmt **st, const char *sql);
/* Steps a statement expected to finish (SQLITE_DONE); resets it (does not finalize). */
int rdb_step_done(struct repo *r, sqlite3_stmt *st);
int rdb_exec(struct repo *r, const char *sql);
/* First column of the first row of a one-off query (printf-style with sqlite3 %q/%Q), or dflt. */
int rdb_int(struct repo *r, int64_t *out, int64_t dflt, const char *fmt, ...);
const char *rdb_text(sqlite3_stmt *st, int col);
/* BEGIN IMMEDIATE, with a clear "busy" message. */
int rdb_begin_write(struct repo *r);
void rdb_rollback(struct repo *r);
int rdb_set_meta(struct repo *r, const char *key, int64_t value);

/* Fails unless the handle may write now (not read-only, not crashed, no session open). */
int repo_check_writable(struct repo *r, const char *what);
/* Fails when a fault point already crashed this handle. */
int repo_check_alive(struct repo *r);
/* Fires the armed fault `at` (HV_ECRASHED, handle marked crashed) or returns 0. For
 * REPO_FAULT_AFTER_RECORDS call it before storing each record. */
int repo_fault_at(struct repo *r, enum repo_fault at, const char *where);
/* fsync of the packs folder (no-op with REPO_OPEN_NOSYNC). */
int repo_sync_packdir(struct repo *r);

/* ---- packs (repo_pack.c) ---------------------------------------------------------------------*/
/* "<repo>/packs/<id as 8+ hex digits>.pack" into buf. */
void repo_pack_path(const struct repo *r, int64_t id, char *buf, size_t n);
#define REPO_PATH_MAX 4096
/* Parses a pack file name ("0000002a.pack"); false for anything else. */
bool repo_pack_name_parse(const char *name, int64_t *id);

/* A catalog `blocks` row. */
struct repo_blockref {
	int64_t id;
	uint8_t hash[REPO_HASH_LEN];
	int64_t pack;
	uint64_t offset;
	uint32_t stored_len, raw_len, flags;
};

/* Reads the record a catalog row names, checks it against the row, its CRC-32C, decompresses
 * into `out` (raw_len bytes) and re-hashes. HV_ECORRUPT naming pack file and offset on any
 * mismatch. Leaves the record bytes in r->rec (REC_HDR_LEN + stored_len). */
int repo_block_load(struct repo *r, const struct repo_blockref *b, uint8_t *out);
/* The open fd (and size) of a committed pack, its header checked; cached. */
int repo_pack_open(struct repo *r, int64_t id, int *fd, uint64_t *size);
void repo_fd_cache_clear(struct repo *r);
/* Allocates r->rec and r->raw for the repository's block size. */
int repo_buffers(struct repo *r);
/* Encodes a record header (CRC over the header's first 48 bytes and the payload). */
void repo_rec_header(uint8_t h[REC_HDR_LEN], uint32_t flags, const uint8_t hash[REPO_HASH_LEN],
		     uint32_t raw_len, const void *payload, uint32_t stored_len);
/* Largest stored length a record of raw_len bytes may have. */
size_t repo_stored_bound(uint32_t raw_len);
int repo_sha256(const void *data, size_t n, uint8_t out[REPO_HASH_LEN]);

/* The packs one session or one prune writes: the current pack plus every id created so far. */
struct repo_packset {
	int64_t next_id;   /* id for the next new pack */
	int64_t cur;       /* current pack id, 0 when none is open */
	int fd;
	uint64_t size;     /* bytes appended to the current pack (buffered or written) */
	uint64_t records;
	uint8_t *buf;
	size_t nbuf, cap;
	int64_t *ids;      /* every pack created, in order */
	size_t nids, capids;
	uint64_t bytes;    /* bytes appended to all packs */
};
void repo_packset_init(struct repo_packset *ps, int64_t next_id);
/* Appends header + payload as one record, starting a new pack (and its catalog row) when none is
 * open or this record would take the current one past the pack size. *pack, *offset: where it
 * went. */
int repo_packset_append(struct repo *r, struct repo_packset *ps, const uint8_t *hdr, size_t hn,
			const void *payload, size_t pn, int64_t *pack, uint64_t *offset);
/* Writes what is buffered, fsyncs and closes the current pack, records its size in the catalog,
 * then fsyncs the packs folder. */
int repo_packset_finish(struct repo *r, struct repo_packset *ps);
/* Forgets the buffers and closes the fd without writing anything (a power cut); with `unlink`
 * also deletes every pack created (an orderly abort). */
void repo_packset_discard(struct repo *r, struct repo_packset *ps, bool unlink_files);

#endif
