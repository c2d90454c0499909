/*
 * base — the few things every hyperv/ module needs: the thread-local error slot, explicit
 * little-endian loads/stores, CRC-32C, GUIDs in Microsoft byte order, and the seeded PRNG with
 * named sub-streams that is the only source of randomness in hvsim.
 *
 * Must not: read the wall clock, read an unseeded random source, or hold global mutable state
 * other than the thread-local error message.
 */
#ifndef HV_BASE_H
#define HV_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors ----------------------------------------------------------------------------------
 * Every fallible call returns 0 or a negative HV_E* code and, on failure, leaves a message in the
 * thread-local slot that names the file/object and the cause. */
enum {
	HV_OK = 0,
	HV_EIO = -1,       /* the operating system refused a read/write/open */
	HV_ECORRUPT = -2,  /* the input is not valid (structure, field and value in the message) */
	HV_EINVAL = -3,    /* the caller asked for something impossible */
	HV_ENOMEM = -4,    /* allocation failed */
	HV_ENOTFOUND = -5, /* a named file or object does not exist */
	HV_EMISMATCH = -6, /* two things that must agree do not (parent linkage, sizes) */
	HV_EUNSUPPORTED = -7, /* valid input this implementation does not handle */
	HV_ECRASHED = -8,  /* a test fault point cut the write sequence */
};

/* Sets the message (printf-style) and returns `code`, so callers can `return hv_err(...)`. */
int hv_err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current message with "prefix: " (used to add the file name at an outer layer). */
int hv_err_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *hv_errmsg(void);
void hv_err_clear(void);

/* ---- little-endian ---------------------------------------------------------------------------*/
static inline uint16_t hv_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t hv_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t hv_le64(const uint8_t *p) { return hv_le32(p) | (uint64_t)hv_le32(p + 4) << 32; }
static inline void hv_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void hv_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void hv_put64(uint8_t *p, uint64_t v) { hv_put32(p, (uint32_t)v); hv_put32(p + 4, (uint32_t)(v >> 32)); }

/* ---- CRC-32C (Castagnoli, as VHDX and iSCSI use it) ----------------------------------------
 * hv_crc32c(buf, n) is the complete checksum. For streaming: c = HV_CRC32C_INIT, then
 * c = hv_crc32c_update(c, part, n) for each part, then hv_crc32c_final(c). */
#define HV_CRC32C_INIT 0xFFFFFFFFu
uint32_t hv_crc32c_update(uint32_t crc, const void *buf, size_t n);
static inline uint32_t hv_crc32c_final(uint32_t crc) { return crc ^ 0xFFFFFFFFu; }
uint32_t hv_crc32c(const void *buf, size_t n);

/* ---- GUIDs -----------------------------------------------------------------------------------
 * Stored as the 16 bytes of the Microsoft on-disk layout (Data1..3 little-endian, Data4 raw), so
 * they can be copied to and from file bytes unchanged. */
struct hv_guid {
	uint8_t b[16];
};
#define HV_GUID_STRLEN 38 /* "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}" without NUL */
bool hv_guid_is_zero(const struct hv_guid *g);
bool hv_guid_eq(const struct hv_guid *a, const struct hv_guid *b);
/* Lowercase text with braces; `out` holds HV_GUID_STRLEN + 1 bytes. */
void hv_guid_format(const struct hv_guid *g, char *out);
/* Accepts upper or lower case, with or without braces, surrounding whitespace ignored.
 * Returns 0 or HV_EINVAL. Length `n` (no NUL needed). */
int hv_guid_parse(const char *s, size_t n, struct hv_guid *out);

/* ---- seeded PRNG -----------------------------------------------------------------------------
 * splitmix64 state per stream. hv_rng_stream(seed, "name") gives an independent stream per name,
 * so adding a new stream never shifts the values of existing ones. */
struct hv_rng {
	uint64_t s;
};
struct hv_rng hv_rng_stream(uint64_t seed, const char *name);
uint64_t hv_rng_next(struct hv_rng *r);
void hv_rng_fill(struct hv_rng *r, void *buf, size_t n);
/* A random (version-4 shaped) GUID from the stream. */
struct hv_guid hv_rng_guid(struct hv_rng *r);
/* FNV-1a 64 over bytes; used to derive seeds from names and content, not for security. */
uint64_t hv_hash64(const void *buf, size_t n, uint64_t h);

/* ---- sizes -----------------------------------------------------------------------------------
 * Parses "123", "4KiB", "8MiB", "2GiB", "1TiB" (also K/M/G/T, KB/MB/GB/TB as binary units).
 * Returns 0 or HV_EINVAL (overflow, junk). */
int hv_parse_size(const char *s, uint64_t *out);

#endif
