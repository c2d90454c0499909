/*
 * vhdx_open — open with full validation: file identifier, both headers, log replay, both region
 * tables, the metadata table and every known item, the parent locator, every BAT entry (state,
 * reserved bits, bounds, overlaps), then the parent chain with its linkage check.
 *
 * The same code serves vhdx_check(): problems go through a `struct vrep` that either stops at the
 * first one (open) or reports each and carries on where the structure still makes sense (check).
 * Every length or count read from the file is checked against the file size or a spec limit
 * before anything is sized from it.
 */
#include "vhdx_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define G(...) {{__VA_ARGS__}}
const struct hv_guid VHDX_GUID_BAT = G(0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42, 0x9d, 0x64,
				       0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08);
const struct hv_guid VHDX_GUID_METADATA = G(0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b, 0xb8,
					    0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e);
const struct hv_guid VHDX_GUID_FILE_PARAMS = G(0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d,
					       0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b);
const struct hv_guid VHDX_GUID_VDISK_SIZE = G(0x24, 0x42, 0xa5, 0x2f, 0x1b, 0xcd, 0x76, 0x48, 0xb2,
					      0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8);
const struct hv_guid VHDX_GUID_VDISK_ID = G(0xab, 0x12, 0xca, 0xbe, 0xe6, 0xb2, 0x23, 0x45, 0x93,
					    0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46);
const struct hv_guid VHDX_GUID_LOGICAL_SECTOR = G(0x1d, 0xbf, 0x41, 0x81, 0x6f, 0xa9, 0x09, 0x47,
						  0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f);
const struct hv_guid VHDX_GUID_PHYSICAL_SECTOR = G(0xc7, 0x48, 0xa3, 0xcd, 0x5d, 0x44, 0x71, 0x44,
						   0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56);
const struct hv_guid VHDX_GUID_PARENT_LOCATOR = G(0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45,
						  0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c);
const struct hv_guid VHDX_GUID_LOCATOR_TYPE_VHDX = G(0xb7, 0xef, 0x4a, 0xb0, 0x9e, 0xd1, 0x81,
						     0x4a, 0xb7, 0x89, 0x25, 0xb8, 0xe9, 0x44,
						     0x59, 0x13);
#undef G

/* ---- problem reporting ---------------------------------------------------------------------*/

/* Formats one problem; in collect mode hands it to the callback and counts it. */
static void vrep_emit(struct vrep *r, char *msg, size_t n, const char *fmt, va_list ap)
{
	vsnprintf(msg, n, fmt, ap);
	if (r->collect) {
		r->count++;
		if (r->cb)
			r->cb(r->ctx, msg);
	}
}

int vrep_problem(struct vrep *r, int code, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vrep_emit(r, msg, sizeof msg, fmt, ap);
	va_end(ap);
	return r->collect ? 0 : hv_err(code, "%s: %s", r->path, msg);
}

void vrep_note(struct vrep *r, const char *fmt, ...)
{
	if (!r->collect)
		return;
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vrep_emit(r, msg, sizeof msg, fmt, ap);
	va_end(ap);
}

/* A problem after which nothing further can be validated: reported in both modes, always fails. */
static int vrep_fatal(struct vrep *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int vrep_fatal(struct vrep *r, int code, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vrep_emit(r, msg, sizeof msg, fmt, ap);
	va_end(ap);
	return hv_err(code, "%s: %s", r->path, msg);
}

#define TRY(x)                                                                                     \
	do {                                                                                       \
		int rc_ = (x);                                                                     \
		if (rc_)                                                                           \
			return rc_;                                                                \
	} while (0)

/* ---- UTF-16 --------------------------------------------------------------------------------*/

char *vhdx_utf16_to_utf8(const uint8_t *p, size_t nbytes)
{
	if (nbytes % 2)
		return NULL;
	size_t n = nbytes / 2;
	char *out = malloc(n * 3 + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		uint32_t c = hv_le16(p + 2 * i);
		if (c >= 0xD800 && c <= 0xDBFF) {
			if (i + 1 >= n)
				goto bad;
			uint32_t d = hv_le16(p + 2 * (i + 1));
			if (d < 0xDC00 || d > 0xDFFF)
				goto bad;
			c = 0x10000 + ((c - 0xD800) << 10) + (d - 0xDC00);
			i++;
		} else if (c >= 0xDC00 && c <= 0xDFFF) {
			goto bad;
		}
		if (c == 0)
			goto bad;
		if (c < 0x80) {
			*o++ = (char)c;
		} else if (c < 0x800) {
			*o++ = (char)(0xC0 | c >> 6);
			*o++ = (char)(0x80 | (c & 0x3F));
		} else if (c < 0x10000) {
			*o++ = (char)(0xE0 | c >> 12);
			*o++ = (char)(0x80 | ((c >> 6) & 0x3F));
			*o++ = (char)(0x80 | (c & 0x3F));
		} else {
			*o++ = (char)(0xF0 | c >> 18);
			*o++ = (char)(0x80 | ((c >> 12) & 0x3F));
			*o++ = (char)(0x80 | ((c >> 6) & 0x3F));
			*o++ = (char)(0x80 | (c & 0x3F));
		}
	}
	*o = 0;
	return out;
bad:
	free(out);
	return NULL;
}

uint8_t *vhdx_utf8_to_utf16(const char *s, size_t *nbytes)
{
	size_t n = strlen(s);
	uint8_t *out = malloc(n * 4 + 2), *o = out;
	if (!out)
		return NULL;
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		uint32_t c;
		int extra;
		if (*p < 0x80) {
			c = *p;
			extra = 0;
		} else if ((*p & 0xE0) == 0xC0) {
			c = *p & 0x1F;
			extra = 1;
		} else if ((*p & 0xF0) == 0xE0) {
			c = *p & 0x0F;
			extra = 2;
		} else if ((*p & 0xF8) == 0xF0) {
			c = *p & 0x07;
			extra = 3;
		} else {
			free(out);
			return NULL;
		}
		p++;
		for (int i = 0; i < extra; i++, p++) {
			if ((*p & 0xC0) != 0x80) {
				free(out);
				return NULL;
			}
			c = c << 6 | (*p & 0x3F);
		}
		if (c >= 0x10000) {
			c -= 0x10000;
			hv_put16(o, (uint16_t)(0xD800 + (c >> 10)));
			hv_put16(o + 2, (uint16_t)(0xDC00 + (c & 0x3FF)));
			o += 4;
		} else {
			hv_put16(o, (uint16_t)c);
			o += 2;
		}
	}
	*nbytes = (size_t)(o - out);
	return out;
}

/* ---- headers -------------------------------------------------------------------------------*/

void vhdx_header_encode(const struct vhdx_header *h, uint8_t *b)
{
	memset(b, 0, VHDX_HEADER_SIZE);
	memcpy(b, "head", 4);
	hv_put64(b + 8, h->seq);
	memcpy(b + 16, h->file_write_guid.b, 16);
	memcpy(b + 32, h->data_write_guid.b, 16);
	memcpy(b + 48, h->log_guid.b, 16);
	hv_put16(b + 64, h->log_version);
	hv_put16(b + 66, h->version);
	hv_put32(b + 68, h->log_length);
	hv_put64(b + 72, h->log_offset);
	hv_put32(b + 4, hv_crc32c(b, VHDX_HEADER_SIZE));
}

static void info_from_header(struct vhdx_file *f)
{
	f->info.data_write_guid = f->hdr.data_write_guid;
	f->info.file_write_guid = f->hdr.file_write_guid;
	f->info.log_guid = f->hdr.log_guid;
	f->info.header_sequence = f->hdr.seq;
	f->info.log_offset = f->hdr.log_offset;
	f->info.log_length = f->hdr.log_length;
}

/* Spec update procedure: the new header (sequence + 1) overwrites the non-current slot and is
 * flushed before anything else happens; it then is the current header. */
int vhdx_header_write(struct vhdx_file *f, const struct vhdx_header *h)
{
	uint8_t buf[VHDX_HEADER_SIZE];
	struct vhdx_header n = *h;
	n.seq = f->hdr.seq + 1;
	vhdx_header_encode(&n, buf);
	int slot = 1 - f->hdr_slot;
	TRY(vio_pwrite(f, buf, sizeof buf, slot ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF));
	TRY(vio_sync(f));
	f->hdr = n;
	f->hdr_slot = slot;
	info_from_header(f);
	return 0;
}

/* Decodes one header slot; returns true if valid, else writes the reason to `why`. */
static bool header_decode(const uint8_t *b, struct vhdx_header *h, char *why, size_t nwhy)
{
	if (memcmp(b, "head", 4) != 0) {
		snprintf(why, nwhy, "signature is %02x %02x %02x %02x, expected \"head\"", b[0], b[1],
			 b[2], b[3]);
		return false;
	}
	uint8_t tmp[VHDX_HEADER_SIZE];
	memcpy(tmp, b, sizeof tmp);
	memset(tmp + 4, 0, 4);
	uint32_t want = hv_le32(b + 4), got = hv_crc32c(tmp, sizeof tmp);
	if (want != got) {
		snprintf(why, nwhy, "checksum 0x%08x does not match the content (CRC-32C 0x%08x)", want,
			 got);
		return false;
	}
	h->seq = hv_le64(b + 8);
	memcpy(h->file_write_guid.b, b + 16, 16);
	memcpy(h->data_write_guid.b, b + 32, 16);
	memcpy(h->log_guid.b, b + 48, 16);
	h->log_version = hv_le16(b + 64);
	h->version = hv_le16(b + 66);
	h->log_length = hv_le32(b + 68);
	h->log_offset = hv_le64(b + 72);
	return true;
}

static int parse_headers(struct vhdx_file *f, struct vrep *r)
{
	uint8_t buf[2][VHDX_HEADER_SIZE];
	struct vhdx_header h[2];
	bool ok[2];
	char why[2][160];
	TRY(vio_pread(f, buf[0], VHDX_HEADER_SIZE, VHDX_HEADER1_OFF));
	TRY(vio_pread(f, buf[1], VHDX_HEADER_SIZE, VHDX_HEADER2_OFF));
	for (int i = 0; i < 2; i++)
		ok[i] = header_decode(buf[i], &h[i], why[i], sizeof why[i]);
	if (!ok[0] && !ok[1])
		return vrep_fatal(r, HV_ECORRUPT,
				  "no valid header: header 1 (offset 65536): %s; header 2 (offset "
				  "131072): %s",
				  why[0], why[1]);
	/* one bad copy is what the two-slot update is for: readers use the other, check reports it */
	for (int i = 0; i < 2; i++)
		if (!ok[i])
			vrep_note(r, "header %d (offset %u): %s (the other copy is used)", i + 1,
				  i ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF, why[i]);
	int cur;
	if (ok[0] && ok[1]) {
		if (h[0].seq == h[1].seq) {
			if (memcmp(buf[0], buf[1], VHDX_HEADER_SIZE) != 0)
				return vrep_fatal(r, HV_ECORRUPT,
						  "headers 1 and 2 have the same SequenceNumber %llu but "
						  "different content: cannot tell which is current",
						  (unsigned long long)h[0].seq);
			cur = 0;
		} else {
			cur = h[1].seq > h[0].seq;
		}
	} else {
		cur = ok[1];
	}
	f->hdr = h[cur];
	f->hdr_slot = cur;
	const struct vhdx_header *c = &f->hdr;
	if (c->version != 1)
		return vrep_fatal(r, HV_EUNSUPPORTED, "header %d: Version is %u, only version 1 is defined",
				  cur + 1, c->version);
	if (c->log_version != 0 && !hv_guid_is_zero(&c->log_guid))
		return vrep_fatal(r, HV_EUNSUPPORTED,
				  "header %d: LogVersion is %u (only 0 is defined) and the log is not empty",
				  cur + 1, c->log_version);
	if (c->log_version != 0)
		vrep_note(r, "header %d: LogVersion is %u, expected 0", cur + 1, c->log_version);
	if (c->log_offset % VHDX_MIB || c->log_offset < VHDX_MIB)
		return vrep_fatal(r, HV_ECORRUPT,
				  "header %d: LogOffset %llu is not a multiple of 1 MiB at or after 1 MiB",
				  cur + 1, (unsigned long long)c->log_offset);
	if (c->log_length % VHDX_MIB || c->log_length == 0)
		return vrep_fatal(r, HV_ECORRUPT,
				  "header %d: LogLength %u is not a non-zero multiple of 1 MiB", cur + 1,
				  c->log_length);
	if (c->log_offset > f->file_size || c->log_length > f->file_size - c->log_offset)
		return vrep_fatal(r, HV_ECORRUPT,
				  "header %d: log (offset %llu, length %u) extends past end of file (%llu)",
				  cur + 1, (unsigned long long)c->log_offset, c->log_length,
				  (unsigned long long)f->file_size);
	info_from_header(f);
	return 0;
}

/* ---- region tables -------------------------------------------------------------------------*/

struct region {
	struct hv_guid guid;
	uint64_t off;
	uint32_t len;
	uint32_t required;
};

/* Decodes one region table copy into rg[] (up to 2047); returns entry count or -1 with `why`. */
static int rt_decode(const uint8_t *b, struct region *rg, char *why, size_t nwhy)
{
	if (memcmp(b, "regi", 4) != 0) {
		snprintf(why, nwhy, "signature is %02x %02x %02x %02x, expected \"regi\"", b[0], b[1],
			 b[2], b[3]);
		return -1;
	}
	uint32_t want = hv_le32(b + 4);
	uint32_t c = HV_CRC32C_INIT;
	static const uint8_t zero4[4];
	c = hv_crc32c_update(c, b, 4);
	c = hv_crc32c_update(c, zero4, 4);
	c = hv_crc32c_final(hv_crc32c_update(c, b + 8, VHDX_RT_SIZE - 8));
	if (want != c) {
		snprintf(why, nwhy, "checksum 0x%08x does not match the content (CRC-32C 0x%08x)", want, c);
		return -1;
	}
	uint32_t n = hv_le32(b + 8);
	if (n > VHDX_RT_MAX_ENTRIES) {
		snprintf(why, nwhy, "EntryCount %u exceeds the maximum of 2047", n);
		return -1;
	}
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = b + 16 + 32 * i;
		memcpy(rg[i].guid.b, e, 16);
		rg[i].off = hv_le64(e + 16);
		rg[i].len = hv_le32(e + 24);
		rg[i].required = hv_le32(e + 28);
	}
	return (int)n;
}

static int parse_region_tables(struct vhdx_file *f, struct vrep *r)
{
	uint8_t *buf = malloc(2 * VHDX_RT_SIZE);
	struct region *rg = malloc(2 * VHDX_RT_MAX_ENTRIES * sizeof *rg);
	int rc = 0;
	if (!buf || !rg) {
		rc = hv_err(HV_ENOMEM, "%s: out of memory", f->path);
		goto out;
	}
	int n[2];
	char why[2][160];
	if ((rc = vio_pread(f, buf, 2 * VHDX_RT_SIZE, VHDX_RT1_OFF)))
		goto out;
	for (int i = 0; i < 2; i++)
		n[i] = rt_decode(buf + i * VHDX_RT_SIZE, rg + i * VHDX_RT_MAX_ENTRIES, why[i],
				 sizeof why[i]);
	if (n[0] < 0 && n[1] < 0) {
		rc = vrep_fatal(r, HV_ECORRUPT,
				"no valid region table: copy 1 (offset 196608): %s; copy 2 (offset 262144): %s",
				why[0], why[1]);
		goto out;
	}
	for (int i = 0; i < 2; i++)
		if (n[i] < 0)
			vrep_note(r, "region table copy %d (offset %u): %s (the other copy is used)", i + 1,
				  i ? VHDX_RT2_OFF : VHDX_RT1_OFF, why[i]);
	if (n[0] >= 0 && n[1] >= 0 &&
	    (n[0] != n[1] || memcmp(buf + 8, buf + VHDX_RT_SIZE + 8, VHDX_RT_SIZE - 8) != 0))
		vrep_note(r, "region table copies 1 and 2 differ (copy 1 is used)");
	int use = n[0] >= 0 ? 0 : 1;
	struct region *t = rg + use * VHDX_RT_MAX_ENTRIES;
	bool have_bat = false, have_meta = false;
	for (int i = 0; i < n[use]; i++) {
		char gs[HV_GUID_STRLEN + 1];
		hv_guid_format(&t[i].guid, gs);
		for (int j = 0; j < i; j++)
			if (hv_guid_eq(&t[i].guid, &t[j].guid)) {
				if ((rc = vrep_problem(r, HV_ECORRUPT,
						       "region table entry %d: region %s appears twice", i, gs)))
					goto out;
				break; /* once per entry, not once per pair */
			}
		if (t[i].off % VHDX_MIB || t[i].off < VHDX_MIB || t[i].len % VHDX_MIB || t[i].len == 0) {
			rc = vrep_fatal(r, HV_ECORRUPT,
					"region table entry %d (%s): FileOffset %llu / Length %u not 1 MiB "
					"aligned, non-empty and after the first 1 MiB",
					i, gs, (unsigned long long)t[i].off, t[i].len);
			goto out;
		}
		if (t[i].off > f->file_size || t[i].len > f->file_size - t[i].off) {
			rc = vrep_fatal(r, HV_ECORRUPT,
					"region table entry %d (%s): region (offset %llu, length %u) extends "
					"past end of file (%llu)",
					i, gs, (unsigned long long)t[i].off, t[i].len,
					(unsigned long long)f->file_size);
			goto out;
		}
		if (t[i].required & ~1u)
			vrep_note(r, "region table entry %d (%s): reserved bits set in Required (0x%x)", i,
				  gs, t[i].required);
		if (hv_guid_eq(&t[i].guid, &VHDX_GUID_BAT)) {
			have_bat = true;
			f->bat_off = t[i].off;
			f->bat_len = t[i].len;
		} else if (hv_guid_eq(&t[i].guid, &VHDX_GUID_METADATA)) {
			have_meta = true;
			f->meta_off = t[i].off;
			f->meta_len = t[i].len;
		} else if (t[i].required & 1) {
			rc = vrep_fatal(r, HV_EUNSUPPORTED,
					"region table entry %d: unknown region %s is marked required", i, gs);
			goto out;
		}
	}
	if (!have_bat || !have_meta) {
		rc = vrep_fatal(r, HV_ECORRUPT, "region table has no %s region",
				!have_bat ? "BAT" : "metadata");
		goto out;
	}
	/* regions must not overlap each other or the log */
	for (int i = 0; i < n[use]; i++) {
		uint64_t a0 = t[i].off, a1 = a0 + t[i].len;
		uint64_t l0 = f->hdr.log_offset, l1 = l0 + f->hdr.log_length;
		if (a0 < l1 && l0 < a1 &&
		    (rc = vrep_problem(r, HV_ECORRUPT, "region table entry %d overlaps the log", i)))
			goto out;
		for (int j = 0; j < i; j++) {
			uint64_t b0 = t[j].off, b1 = b0 + t[j].len;
			if (a0 < b1 && b0 < a1 &&
			    (rc = vrep_problem(r, HV_ECORRUPT,
					       "region table entries %d and %d overlap", j, i)))
				goto out;
		}
	}
out:
	free(buf);
	free(rg);
	return rc;
}

/* ---- metadata ------------------------------------------------------------------------------*/

struct mitem {
	struct hv_guid id;
	uint32_t off, len, flags;
};

static int cmp_mitem(const void *a, const void *b)
{
	const struct mitem *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

static int read_item(struct vhdx_file *f, const struct mitem *it, uint8_t *buf)
{
	return vio_pread(f, buf, it->len, f->meta_off + it->off);
}

static int parse_locator(struct vhdx_file *f, struct vrep *r, const uint8_t *p, uint32_t len)
{
	if (len < 20)
		return vrep_fatal(r, HV_ECORRUPT, "parent locator: length %u is shorter than its 20-byte header", len);
	struct hv_guid type;
	memcpy(type.b, p, 16);
	if (!hv_guid_eq(&type, &VHDX_GUID_LOCATOR_TYPE_VHDX)) {
		char gs[HV_GUID_STRLEN + 1];
		hv_guid_format(&type, gs);
		return vrep_fatal(r, HV_EUNSUPPORTED, "parent locator: LocatorType %s is not the VHDX locator type", gs);
	}
	uint32_t count = hv_le16(p + 18);
	if (20 + 12ull * count > len)
		return vrep_fatal(r, HV_ECORRUPT,
				  "parent locator: KeyValueCount %u does not fit in the %u-byte item", count, len);
	f->loc = calloc(count ? count : 1, sizeof *f->loc);
	if (!f->loc)
		return hv_err(HV_ENOMEM, "%s: out of memory", f->path);
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *e = p + 20 + 12 * i;
		uint32_t ko = hv_le32(e), vo = hv_le32(e + 4);
		uint32_t kl = hv_le16(e + 8), vl = hv_le16(e + 10);
		if (ko == 0 || vo == 0 || kl == 0 || vl == 0 || kl % 2 || vl % 2 ||
		    (uint64_t)ko + kl > len || (uint64_t)vo + vl > len)
			return vrep_fatal(r, HV_ECORRUPT,
					  "parent locator entry %u: key (offset %u, length %u) or value "
					  "(offset %u, length %u) is empty, odd or outside the %u-byte item",
					  i, ko, kl, vo, vl, len);
		char *k = vhdx_utf16_to_utf8(p + ko, kl), *v = vhdx_utf16_to_utf8(p + vo, vl);
		if (!k || !v) {
			free(k);
			free(v);
			return vrep_fatal(r, HV_ECORRUPT, "parent locator entry %u: key or value is not valid UTF-16", i);
		}
		for (uint32_t j = 0; j < f->nloc; j++)
			if (strcmp(f->loc[j].key, k) == 0) {
				int rc = vrep_problem(r, HV_ECORRUPT, "parent locator: key '%s' appears twice", k);
				if (rc) {
					free(k);
					free(v);
					return rc;
				}
			}
		f->loc[f->nloc].key = k;
		f->loc[f->nloc].value = v;
		f->nloc++;
	}
	f->info.locator = f->loc;
	f->info.locator_count = f->nloc;
	const char *linkage = NULL;
	bool have_path = false;
	for (uint32_t i = 0; i < f->nloc; i++) {
		if (strcmp(f->loc[i].key, "parent_linkage") == 0)
			linkage = f->loc[i].value;
		if (!strcmp(f->loc[i].key, "relative_path") || !strcmp(f->loc[i].key, "volume_path") ||
		    !strcmp(f->loc[i].key, "absolute_win32_path"))
			have_path = true;
	}
	struct hv_guid g;
	if (!linkage)
		return vrep_fatal(r, HV_ECORRUPT, "parent locator: required key parent_linkage is missing");
	if (hv_guid_parse(linkage, strlen(linkage), &g))
		return vrep_fatal(r, HV_ECORRUPT, "parent locator: parent_linkage '%s' is not a GUID", linkage);
	if (!have_path)
		return vrep_fatal(r, HV_ECORRUPT,
				  "parent locator: none of relative_path, volume_path, absolute_win32_path is present");
	return 0;
}

static int parse_metadata(struct vhdx_file *f, struct vrep *r)
{
	uint8_t *t = malloc(VHDX_MT_SIZE);
	struct mitem *items = NULL;
	uint8_t *loc = NULL;
	int rc = 0;
	if (!t)
		return hv_err(HV_ENOMEM, "%s: out of memory", f->path);
	if (f->meta_len < VHDX_MT_SIZE) {
		rc = vrep_fatal(r, HV_ECORRUPT, "metadata region length %u is smaller than its 64 KiB table", f->meta_len);
		goto out;
	}
	if ((rc = vio_pread(f, t, VHDX_MT_SIZE, f->meta_off)))
		goto out;
	if (memcmp(t, "metadata", 8) != 0) {
		rc = vrep_fatal(r, HV_ECORRUPT,
				"metadata table (offset %llu): signature is not \"metadata\"",
				(unsigned long long)f->meta_off);
		goto out;
	}
	uint32_t n = hv_le16(t + 10);
	if (n > VHDX_MT_MAX_ENTRIES) {
		rc = vrep_fatal(r, HV_ECORRUPT, "metadata table: EntryCount %u exceeds the maximum of 2047", n);
		goto out;
	}
	items = calloc(n ? n : 1, sizeof *items);
	if (!items) {
		rc = hv_err(HV_ENOMEM, "%s: out of memory", f->path);
		goto out;
	}
	int found[6] = {-1, -1, -1, -1, -1, -1};
	const struct hv_guid *known[6] = {&VHDX_GUID_FILE_PARAMS,    &VHDX_GUID_VDISK_SIZE,
					  &VHDX_GUID_VDISK_ID,       &VHDX_GUID_LOGICAL_SECTOR,
					  &VHDX_GUID_PHYSICAL_SECTOR, &VHDX_GUID_PARENT_LOCATOR};
	static const uint32_t known_len[6] = {8, 8, 16, 4, 4, 0};
	static const char *known_name[6] = {"File Parameters", "Virtual Disk Size", "Virtual Disk ID",
					    "Logical Sector Size", "Physical Sector Size", "Parent Locator"};
	uint32_t nuser = 0;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = t + 32 + 32 * i;
		struct mitem *it = &items[i];
		memcpy(it->id.b, e, 16);
		it->off = hv_le32(e + 16);
		it->len = hv_le32(e + 20);
		it->flags = hv_le32(e + 24);
		char gs[HV_GUID_STRLEN + 1];
		hv_guid_format(&it->id, gs);
		bool user = it->flags & 1;
		nuser += user;
		if (it->len > VHDX_MAX_ITEM_LEN || (uint64_t)it->off + it->len > f->meta_len ||
		    (it->len > 0 && it->off < VHDX_MT_SIZE) || (it->len == 0 && it->off != 0)) {
			rc = vrep_fatal(r, HV_ECORRUPT,
					"metadata table entry %u (%s): Offset %u / Length %u is outside the "
					"metadata region (items live in [65536, %u), at most 1 MiB each)",
					i, gs, it->off, it->len, f->meta_len);
			goto out;
		}
		if (it->flags & ~7u)
			vrep_note(r, "metadata table entry %u (%s): reserved flag bits set (0x%x)", i, gs, it->flags);
		for (uint32_t j = 0; j < i; j++)
			if (hv_guid_eq(&items[j].id, &it->id) && (items[j].flags & 1) == (it->flags & 1)) {
				if ((rc = vrep_problem(r, HV_ECORRUPT,
						       "metadata table entry %u: item %s appears twice", i, gs)))
					goto out;
				break; /* once per entry, not once per pair */
			}
		int k = -1;
		for (int j = 0; !user && j < 6; j++)
			if (hv_guid_eq(&it->id, known[j]))
				k = j;
		if (k < 0) {
			if ((it->flags & 4) && !user) {
				rc = vrep_fatal(r, HV_EUNSUPPORTED,
						"metadata table entry %u: unknown system item %s is marked required", i, gs);
				goto out;
			}
			continue;
		}
		found[k] = (int)i;
		if (known_len[k] && it->len != known_len[k]) {
			rc = vrep_fatal(r, HV_ECORRUPT, "metadata item %s: Length is %u, expected %u",
					known_name[k], it->len, known_len[k]);
			goto out;
		}
	}
	if (nuser > 1024 && (rc = vrep_problem(r, HV_ECORRUPT, "metadata table: %u user items (at most 1024)", nuser)))
		goto out;
	/* items must not overlap */
	{
		struct mitem *sorted = malloc((n ? n : 1) * sizeof *sorted);
		if (!sorted) {
			rc = hv_err(HV_ENOMEM, "%s: out of memory", f->path);
			goto out;
		}
		memcpy(sorted, items, n * sizeof *sorted);
		qsort(sorted, n, sizeof *sorted, cmp_mitem);
		for (uint32_t i = 1; i < n; i++)
			if (sorted[i].len && sorted[i - 1].len &&
			    sorted[i - 1].off + sorted[i - 1].len > sorted[i].off &&
			    (rc = vrep_problem(r, HV_ECORRUPT,
					       "metadata items at offsets %u and %u overlap",
					       sorted[i - 1].off, sorted[i].off))) {
				free(sorted);
				goto out;
			}
		free(sorted);
	}
	for (int k = 0; k < 5; k++)
		if (found[k] < 0) {
			rc = vrep_fatal(r, HV_ECORRUPT, "metadata item %s is missing", known_name[k]);
			goto out;
		}
	uint8_t v[16];
	if ((rc = read_item(f, &items[found[0]], v)))
		goto out;
	uint32_t bs = hv_le32(v), fpflags = hv_le32(v + 4);
	if (bs < VHDX_MIN_BLOCK_SIZE || bs > VHDX_MAX_BLOCK_SIZE || (bs & (bs - 1))) {
		rc = vrep_fatal(r, HV_ECORRUPT,
				"metadata item File Parameters: BlockSize %u is not a power of two between 1 MiB and 256 MiB", bs);
		goto out;
	}
	if (fpflags & ~3u)
		vrep_note(r, "metadata item File Parameters: reserved flag bits set (0x%x)", fpflags);
	f->info.block_size = bs;
	f->info.leave_block_allocated = fpflags & 1;
	f->has_parent = fpflags & 2;
	if ((rc = read_item(f, &items[found[3]], v)))
		goto out;
	uint32_t lss = hv_le32(v);
	if ((rc = read_item(f, &items[found[4]], v)))
		goto out;
	uint32_t pss = hv_le32(v);
	if ((lss != 512 && lss != 4096) || (pss != 512 && pss != 4096)) {
		rc = vrep_fatal(r, HV_ECORRUPT,
				"metadata items: LogicalSectorSize %u / PhysicalSectorSize %u must each be 512 or 4096",
				lss, pss);
		goto out;
	}
	f->info.logical_sector = lss;
	f->info.physical_sector = pss;
	if ((rc = read_item(f, &items[found[1]], v)))
		goto out;
	uint64_t vs = hv_le64(v);
	if (vs == 0 || vs > VHDX_MAX_VIRTUAL_SIZE || vs % lss) {
		rc = vrep_fatal(r, HV_ECORRUPT,
				"metadata item Virtual Disk Size: %llu is not a non-zero multiple of the %u-byte "
				"logical sector up to 64 TiB",
				(unsigned long long)vs, lss);
		goto out;
	}
	f->info.virtual_size = vs;
	if ((rc = read_item(f, &items[found[2]], f->info.disk_id.b)))
		goto out;
	if (f->has_parent) {
		if (found[5] < 0) {
			rc = vrep_fatal(r, HV_ECORRUPT, "differencing disk (HasParent) without a Parent Locator metadata item");
			goto out;
		}
		uint32_t ll = items[found[5]].len;
		loc = malloc(ll ? ll : 1);
		if (!loc) {
			rc = hv_err(HV_ENOMEM, "%s: out of memory", f->path);
			goto out;
		}
		if ((rc = read_item(f, &items[found[5]], loc)) || (rc = parse_locator(f, r, loc, ll)))
			goto out;
	}
	f->info.type = f->has_parent ? VHDX_TYPE_DIFFERENCING
		       : f->info.leave_block_allocated ? VHDX_TYPE_FIXED : VHDX_TYPE_DYNAMIC;
out:
	free(t);
	free(items);
	free(loc);
	return rc;
}

/* ---- BAT -----------------------------------------------------------------------------------*/

struct mibmap {
	uint8_t *bits;
	uint64_t n; /* MiB units covered */
};

/* Marks [off, off+len) (MiB aligned) as used; returns true if any unit was already used. */
static bool mib_mark(struct mibmap *m, uint64_t off, uint64_t len)
{
	bool overlap = false;
	for (uint64_t u = off / VHDX_MIB; u < (off + len + VHDX_MIB - 1) / VHDX_MIB && u < m->n; u++) {
		uint8_t bit = (uint8_t)(1u << (u & 7));
		if (m->bits[u >> 3] & bit)
			overlap = true;
		m->bits[u >> 3] |= bit;
	}
	return overlap;
}

static void note_alloc(struct vhdx_file *f, uint64_t end)
{
	if (end > f->alloc_end)
		f->alloc_end = end;
}

static int scan_bat(struct vhdx_file *f, struct vrep *r)
{
	uint64_t bs = f->info.block_size;
	f->nblocks = (f->info.virtual_size + bs - 1) / bs;
	f->chunk_ratio = (VHDX_SB_BLOCK_BITS * f->info.logical_sector) / bs;
	f->sectors_per_block = (uint32_t)(bs / f->info.logical_sector);
	uint64_t P = f->nblocks, CR = f->chunk_ratio;
	uint64_t S = (P + CR - 1) / CR;
	uint64_t need = P + (P - 1) / CR;
	uint64_t avail = f->bat_len / 8;
	if (avail < need)
		return vrep_fatal(r, HV_ECORRUPT,
				  "BAT region (length %u) holds %llu entries, the disk needs %llu", f->bat_len,
				  (unsigned long long)avail, (unsigned long long)need);
	uint64_t full = S * (CR + 1);
	f->bat_scanned = avail < full ? avail : full;
	f->nbat_pages = (f->bat_scanned + VHDX_BAT_PER_PAGE - 1) / VHDX_BAT_PER_PAGE;
	f->bat_pages = calloc(f->nbat_pages, sizeof *f->bat_pages);
	f->bat_dirty = calloc(f->nbat_pages, 1);
	struct mibmap m = {NULL, (f->file_size + VHDX_MIB - 1) / VHDX_MIB};
	m.bits = calloc((m.n + 7) / 8 + 1, 1);
	uint8_t *buf = malloc(VHDX_MIB);
	int rc = 0;
	if (!f->bat_pages || !f->bat_dirty || !m.bits || !buf) {
		rc = hv_err(HV_ENOMEM, "%s: out of memory", f->path);
		goto out;
	}
	mib_mark(&m, 0, VHDX_MIB);
	mib_mark(&m, f->hdr.log_offset, f->hdr.log_length);
	mib_mark(&m, f->bat_off, f->bat_len);
	mib_mark(&m, f->meta_off, f->meta_len);
	bool partial_in_chunk = false;
	uint64_t present = 0;
	for (uint64_t base = 0; base < f->bat_scanned; base += VHDX_MIB / 8) {
		uint64_t cnt = f->bat_scanned - base < VHDX_MIB / 8 ? f->bat_scanned - base : VHDX_MIB / 8;
		if ((rc = vio_pread(f, buf, cnt * 8, f->bat_off + base * 8)))
			goto out;
		for (uint64_t k = 0; k < cnt; k += VHDX_BAT_PER_PAGE) {
			uint64_t pe = cnt - k < VHDX_BAT_PER_PAGE ? cnt - k : VHDX_BAT_PER_PAGE;
			bool any = false;
			for (uint64_t j = 0; j < pe; j++)
				any |= hv_le64(buf + 8 * (k + j)) != 0;
			if (!any)
				continue;
			uint64_t *page = calloc(VHDX_BAT_PER_PAGE, 8);
			if (!page) {
				rc = hv_err(HV_ENOMEM, "%s: out of memory", f->path);
				goto out;
			}
			for (uint64_t j = 0; j < pe; j++)
				page[j] = hv_le64(buf + 8 * (k + j));
			f->bat_pages[(base + k) / VHDX_BAT_PER_PAGE] = page;
		}
		for (uint64_t j = 0; j < cnt; j++) {
			uint64_t idx = base + j, e = hv_le64(buf + 8 * j);
			unsigned st = (unsigned)(e & VHDX_BAT_STATE_MASK);
			uint64_t off = e & VHDX_BAT_OFFSET_MASK;
			if (e & VHDX_BAT_RESERVED_MASK)
				vrep_note(r, "BAT entry %llu: reserved bits set (0x%llx)",
					  (unsigned long long)idx, (unsigned long long)(e & VHDX_BAT_RESERVED_MASK));
			if (idx % (CR + 1) == CR) { /* sector bitmap entry */
				uint64_t chunk = idx / (CR + 1);
				if (st == VHDX_SB_BLOCK_PRESENT && f->has_parent) {
					if (off == 0 || off > f->file_size || VHDX_MIB > f->file_size - off) {
						if ((rc = vrep_problem(r, HV_ECORRUPT,
								       "BAT entry %llu (sector bitmap of chunk %llu): offset %llu + 1 MiB is %s",
								       (unsigned long long)idx, (unsigned long long)chunk,
								       (unsigned long long)off,
								       off ? "past end of file" : "zero")))
							goto out;
					} else if (note_alloc(f, off + VHDX_MIB), mib_mark(&m, off, VHDX_MIB) &&
						   (rc = vrep_problem(r, HV_ECORRUPT,
								      "BAT entry %llu (sector bitmap of chunk %llu): block at offset %llu overlaps another structure or block",
								      (unsigned long long)idx, (unsigned long long)chunk,
								      (unsigned long long)off)))
						goto out;
				} else if (st != VHDX_SB_BLOCK_NOT_PRESENT) {
					if ((rc = vrep_problem(r, HV_ECORRUPT,
							       "BAT entry %llu (sector bitmap of chunk %llu): state %u is not allowed in a %s file",
							       (unsigned long long)idx, (unsigned long long)chunk, st,
							       f->has_parent ? "differencing" : "non-differencing")))
						goto out;
				} else if (partial_in_chunk &&
					   (rc = vrep_problem(r, HV_ECORRUPT,
							      "BAT entry %llu: chunk %llu has partially present blocks but no sector bitmap block",
							      (unsigned long long)idx, (unsigned long long)chunk)))
					goto out;
				partial_in_chunk = false;
				continue;
			}
			uint64_t b = idx - idx / (CR + 1);
			if (b >= P) {
				if (st != VHDX_BLOCK_NOT_PRESENT)
					vrep_note(r, "BAT entry %llu: block %llu is past the virtual size but has state %u",
						  (unsigned long long)idx, (unsigned long long)b, st);
				continue;
			}
			switch (st) {
			case VHDX_BLOCK_NOT_PRESENT:
			case VHDX_BLOCK_ZERO:
				if (off)
					vrep_note(r, "BAT entry %llu (block %llu): state %u with non-zero FileOffsetMB %llu",
						  (unsigned long long)idx, (unsigned long long)b, st,
						  (unsigned long long)(off >> 20));
				break;
			case VHDX_BLOCK_UNDEFINED:
			case VHDX_BLOCK_UNMAPPED:
				break;
			case VHDX_BLOCK_UNMAPPED_V095:
				vrep_note(r, "BAT entry %llu (block %llu): state 5 (draft UNMAPPED), read as zeros",
					  (unsigned long long)idx, (unsigned long long)b);
				break;
			case VHDX_BLOCK_PARTIALLY_PRESENT:
				if (!f->has_parent) {
					if ((rc = vrep_problem(r, HV_ECORRUPT,
							       "BAT entry %llu (block %llu): state 7 (PARTIALLY_PRESENT) is only valid in differencing files",
							       (unsigned long long)idx, (unsigned long long)b)))
						goto out;
					break;
				}
				partial_in_chunk = true;
				/* fall through */
			case VHDX_BLOCK_FULLY_PRESENT: {
				present++;
				/* the last block may be cut short by EOF (old QEMU wrote such files) */
				uint64_t need_len = b == P - 1 ? f->info.virtual_size - b * bs : bs;
				if (off == 0 || off > f->file_size || need_len > f->file_size - off) {
					if ((rc = vrep_problem(r, HV_ECORRUPT,
							       "BAT entry %llu (block %llu): %s (offset %llu + block size %llu > file size %llu)",
							       (unsigned long long)idx, (unsigned long long)b,
							       off ? "points past end of file" : "present block at offset 0",
							       (unsigned long long)off, (unsigned long long)bs,
							       (unsigned long long)f->file_size)))
						goto out;
				} else if (note_alloc(f, off + bs), mib_mark(&m, off, bs) &&
					   (rc = vrep_problem(r, HV_ECORRUPT,
							      "BAT entry %llu (block %llu): block at offset %llu overlaps another structure or block",
							      (unsigned long long)idx, (unsigned long long)b,
							      (unsigned long long)off)))
					goto out;
				break;
			}
			default:
				if ((rc = vrep_problem(r, HV_ECORRUPT, "BAT entry %llu (block %llu): reserved state %u",
						       (unsigned long long)idx, (unsigned long long)b, st)))
					goto out;
			}
		}
	}
	if (partial_in_chunk &&
	    (rc = vrep_problem(r, HV_ECORRUPT,
			       "last chunk has partially present blocks but its sector bitmap entry is missing")))
		goto out;
	f->info.blocks_present = present;
	f->info.bat_offset = f->bat_off;
	f->info.bat_entries = f->bat_scanned;
out:
	free(m.bits);
	free(buf);
	return rc;
}

/* ---- parent chain --------------------------------------------------------------------------*/

static const char *loc_get(const struct vhdx_file *f, const char *key)
{
	for (uint32_t i = 0; i < f->nloc; i++)
		if (strcmp(f->loc[i].key, key) == 0)
			return f->loc[i].value;
	return NULL;
}

/* Windows path (after its root) -> Linux path: '\' -> '/'. The simulator maps drive letters and
 * volume GUID paths to the Linux root (see vhdx_create.c), so only the rest of the path counts. */
static char *win_to_posix(const char *prefix, const char *rest)
{
	size_t n = strlen(prefix) + strlen(rest) + 2;
	char *p = malloc(n);
	if (!p)
		return NULL;
	snprintf(p, n, "%s%s", prefix, rest);
	for (char *c = p; *c; c++)
		if (*c == '\\')
			*c = '/';
	return p;
}

static char *dir_of(const char *path)
{
	const char *s = strrchr(path, '/');
	if (!s)
		return strdup(".");
	if (s == path)
		return strdup("/");
	return strndup(path, (size_t)(s - path));
}

/* Spec lookup order: relative_path, volume_path, absolute_win32_path; first that exists wins. */
static int resolve_parent(struct vhdx_file *f, char **out)
{
	char tried[1024] = "";
	size_t tl = 0;
	const char *keys[3] = {"relative_path", "volume_path", "absolute_win32_path"};
	for (int k = 0; k < 3; k++) {
		const char *v = loc_get(f, keys[k]);
		if (!v)
			continue;
		char *cand = NULL;
		if (k == 0) {
			char *d = dir_of(f->path);
			const char *rel = v;
			if (!strncmp(rel, ".\\", 2))
				rel += 2;
			if (d) {
				size_t n = strlen(d) + 1;
				char *pre = malloc(n + 1);
				if (pre) {
					snprintf(pre, n + 1, "%s/", d);
					cand = win_to_posix(pre, rel);
					free(pre);
				}
				free(d);
			}
		} else if (k == 1) {
			/* \\?\Volume{GUID}\path */
			const char *s = strstr(v, "}\\");
			if (!strncmp(v, "\\\\?\\Volume{", 11) && s)
				cand = win_to_posix("", s + 1);
		} else {
			const char *s = v;
			if (!strncmp(s, "\\\\?\\", 4))
				s += 4;
			if (s[0] && s[1] == ':' && s[2] == '\\')
				cand = win_to_posix("", s + 2);
		}
		if (!cand)
			continue;
		if (access(cand, F_OK) == 0) {
			*out = cand;
			return 0;
		}
		tl += (size_t)snprintf(tried + tl, tl < sizeof tried ? sizeof tried - tl : 0, "%s%s '%s' (%s)",
				       tl ? ", " : "", keys[k], v, cand);
		if (tl >= sizeof tried)
			tl = sizeof tried - 1;
		free(cand);
	}
	return hv_err(HV_ENOTFOUND, "%s: parent disk not found; tried %s", f->path,
		      tl ? tried : "nothing (no usable path key)");
}

static int open_parent(struct vhdx_file *f, const struct vhdx_open_opts *o, struct vrep *r, unsigned depth)
{
	if (depth + 1 >= VHDX_MAX_CHAIN_DEPTH)
		return vrep_fatal(r, HV_ECORRUPT, "parent chain is deeper than %d files (a loop?)", VHDX_MAX_CHAIN_DEPTH);
	char *pp = NULL;
	int rc = resolve_parent(f, &pp);
	if (rc) {
		if (r->collect)
			return vrep_fatal(r, rc, "%s", hv_errmsg() + strlen(f->path) + 2);
		return rc;
	}
	f->parent_path = pp;
	f->info.parent_path = pp;
	struct vhdx_open_opts po = {.flags = VHDX_OPEN_RDONLY, .crash_after_steps = -1};
	(void)o;
	struct vrep pr = {.collect = false, .path = pp};
	rc = vhdx_open_internal(pp, &po, &pr, depth + 1, &f->parent);
	if (rc) {
		if (r->collect)
			return vrep_fatal(r, rc, "parent: %s", hv_errmsg());
		/* name the file the user opened once; deeper levels keep the failing file's message */
		return depth == 0 ? hv_err_prefix(rc, "%s: parent", f->path) : rc;
	}
	const char *l1 = loc_get(f, "parent_linkage"), *l2 = loc_get(f, "parent_linkage2");
	struct hv_guid g1, g2;
	const struct hv_guid *dwg = &f->parent->hdr.data_write_guid;
	bool ok = (l1 && !hv_guid_parse(l1, strlen(l1), &g1) && hv_guid_eq(&g1, dwg)) ||
		  (l2 && !hv_guid_parse(l2, strlen(l2), &g2) && hv_guid_eq(&g2, dwg));
	if (!ok) {
		char gs[HV_GUID_STRLEN + 1];
		hv_guid_format(dwg, gs);
		return vrep_fatal(r, HV_EMISMATCH,
				  "parent linkage mismatch: parent_linkage is %s but parent %s has DataWriteGuid %s "
				  "(the parent was modified after this child was created)",
				  l1 ? l1 : "(none)", pp, gs);
	}
	const struct vhdx_info *pi = &f->parent->info;
	if (pi->virtual_size != f->info.virtual_size || pi->logical_sector != f->info.logical_sector)
		return vrep_fatal(r, HV_EMISMATCH,
				  "parent %s has virtual size %llu / logical sector %u, this child has %llu / %u",
				  pp, (unsigned long long)pi->virtual_size, pi->logical_sector,
				  (unsigned long long)f->info.virtual_size, f->info.logical_sector);
	return 0;
}

/* ---- open ----------------------------------------------------------------------------------*/

void vhdx_free(struct vhdx_file *f)
{
	if (!f)
		return;
	vhdx_free(f->parent);
	if (f->fd >= 0)
		close(f->fd);
	for (uint64_t i = 0; f->bat_pages && i < f->nbat_pages; i++)
		free(f->bat_pages[i]);
	free(f->bat_pages);
	free(f->bat_dirty);
	for (size_t i = 0; i < f->cap_dirty; i++)
		free(f->dirty[i].data);
	free(f->dirty);
	for (size_t i = 0; i < f->novl_ops; i++)
		free(f->ovl_ops[i].data);
	free(f->ovl_ops);
	free(f->ovl);
	for (uint32_t i = 0; i < f->nloc; i++) {
		free(f->loc[i].key);
		free(f->loc[i].value);
	}
	free(f->loc);
	free(f->parent_path);
	free(f->scratch);
	free(f->path);
	free(f);
}

int vhdx_open_internal(const char *path, const struct vhdx_open_opts *o, struct vrep *r,
		       unsigned depth, struct vhdx_file **out)
{
	*out = NULL;
	struct vhdx_file *f = calloc(1, sizeof *f);
	if (!f)
		return hv_err(HV_ENOMEM, "%s: out of memory", path);
	f->fd = -1;
	f->path = strdup(path);
	f->flags = o->flags;
	f->writable = o->flags & VHDX_OPEN_RDWR;
	f->crash_after = o->crash_after_steps;
	int rc = 0;
	if (!f->path) {
		rc = hv_err(HV_ENOMEM, "%s: out of memory", path);
		goto fail;
	}
	f->fd = open(path, f->writable ? O_RDWR : O_RDONLY);
	if (f->fd < 0) {
		rc = hv_err(errno == ENOENT ? HV_ENOTFOUND : HV_EIO, "%s: cannot open: %s", path, strerror(errno));
		goto fail;
	}
	struct stat st;
	if (fstat(f->fd, &st) != 0) {
		rc = hv_err(HV_EIO, "%s: cannot stat: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = hv_err(HV_EINVAL, "%s: not a regular file", path);
		goto fail;
	}
	f->file_size = (uint64_t)st.st_size;
	uint8_t id[8];
	if (f->file_size < VHDX_RT2_OFF + VHDX_RT_SIZE) {
		rc = hv_err(HV_ECORRUPT, "%s: not a VHDX file: %llu bytes is shorter than the 320 KiB header section",
			    path, (unsigned long long)f->file_size);
		goto fail;
	}
	if (f->file_size > VHDX_MAX_FILE_SIZE) {
		rc = hv_err(HV_ECORRUPT, "%s: file size %llu is larger than any valid VHDX (64 TiB of data)",
			    path, (unsigned long long)f->file_size);
		goto fail;
	}
	if ((rc = vio_pread(f, id, 8, 0)))
		goto fail;
	if (memcmp(id, "vhdxfile", 8) != 0) {
		rc = hv_err(HV_ECORRUPT, "%s: not a VHDX file: file type identifier signature is not \"vhdxfile\"", path);
		goto fail;
	}
	if ((rc = parse_headers(f, r)))
		goto fail;
	if (f->writable) {
		uint64_t h = hv_hash64(f->hdr.file_write_guid.b, 16, 0xcbf29ce484222325ull);
		h = hv_hash64(&f->hdr.seq, sizeof f->hdr.seq, h);
		/* the header state is always mixed in: two sessions with the same seed must still draw
		 * new GUIDs, or a parent's DataWriteGuid would not change and stale log entries would
		 * carry the current LogGuid */
		f->rng = hv_rng_stream(o->has_seed ? o->seed ^ h : h, "vhdx.session");
		if (f->hdr.seq >= UINT64_MAX - 1024) {
			rc = hv_err(HV_EUNSUPPORTED, "%s: header SequenceNumber %llu is too close to its limit to update",
				    path, (unsigned long long)f->hdr.seq);
			goto fail;
		}
	}
	if (!hv_guid_is_zero(&f->hdr.log_guid) && (rc = vhdx_log_replay(f, r)))
		goto fail;
	if ((rc = parse_region_tables(f, r)) || (rc = parse_metadata(f, r)) || (rc = scan_bat(f, r)))
		goto fail;
	f->info.file_size = f->file_size;
	if (f->has_parent && !(o->flags & VHDX_OPEN_NO_PARENT) && (rc = open_parent(f, o, r, depth)))
		goto fail;
	*out = f;
	return 0;
fail:
	vhdx_free(f);
	return rc;
}

int vhdx_open_ex(const char *path, const struct vhdx_open_opts *o, struct vhdx_file **out)
{
	struct vrep r = {.collect = false, .path = path};
	return vhdx_open_internal(path, o, &r, 0, out);
}

int vhdx_open(const char *path, unsigned flags, struct vhdx_file **out)
{
	struct vhdx_open_opts o = {.flags = flags, .crash_after_steps = -1};
	return vhdx_open_ex(path, &o, out);
}

const struct vhdx_info *vhdx_get_info(const struct vhdx_file *f) { return &f->info; }
const char *vhdx_path(const struct vhdx_file *f) { return f->path; }
struct vhdx_file *vhdx_parent(const struct vhdx_file *f) { return f->parent; }

static void check_collect_cb(void *ctx, const char *msg)
{
	(void)ctx;
	(void)msg;
}

int vhdx_check(const char *path, vhdx_problem_cb cb, void *ctx)
{
	struct vrep r = {.collect = true, .cb = cb ? cb : check_collect_cb, .ctx = ctx, .path = path};
	struct vhdx_open_opts o = {.flags = VHDX_OPEN_RDONLY, .crash_after_steps = -1};
	struct vhdx_file *f = NULL;
	int rc = vhdx_open_internal(path, &o, &r, 0, &f);
	if (rc && r.count == 0)
		return rc; /* could not even start: missing, unreadable, not a VHDX */
	vhdx_free(f);
	return r.count;
}
