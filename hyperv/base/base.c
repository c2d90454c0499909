/*
 * base — error slot, CRC-32C (ISA-L), GUID text, seeded PRNG, size parsing.
 * See base.h. Nothing here reads the clock or an unseeded random source.
 */
#include "base.h"

#include <ctype.h>
#include <isa-l/crc.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char errmsg[1024];

int hv_err(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof errmsg, fmt, ap);
	va_end(ap);
	return code;
}

int hv_err_prefix(int code, const char *fmt, ...)
{
	char prefix[512], old[sizeof errmsg];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, errmsg, sizeof old);
	size_t n = strlen(prefix);
	if (n > sizeof errmsg - 3)
		n = sizeof errmsg - 3;
	memcpy(errmsg, prefix, n);
	memcpy(errmsg + n, ": ", 2);
	size_t m = strlen(old);
	if (m > sizeof errmsg - n - 3)
		m = sizeof errmsg - n - 3;
	memcpy(errmsg + n + 2, old, m);
	errmsg[n + 2 + m] = 0;
	return code;
}

const char *hv_errmsg(void) { return errmsg[0] ? errmsg : "unknown error"; }
void hv_err_clear(void) { errmsg[0] = 0; }

/* ISA-L takes an int length; feed it in pieces so size_t lengths are safe. */
uint32_t hv_crc32c_update(uint32_t crc, const void *buf, size_t n)
{
	const unsigned char *p = buf;
	while (n > 0) {
		int part = n > (size_t)(1 << 30) ? (1 << 30) : (int)n;
		crc = crc32_iscsi((unsigned char *)p, part, crc);
		p += part;
		n -= (size_t)part;
	}
	return crc;
}

uint32_t hv_crc32c(const void *buf, size_t n)
{
	return hv_crc32c_final(hv_crc32c_update(HV_CRC32C_INIT, buf, n));
}

bool hv_guid_is_zero(const struct hv_guid *g)
{
	for (int i = 0; i < 16; i++)
		if (g->b[i])
			return false;
	return true;
}

bool hv_guid_eq(const struct hv_guid *a, const struct hv_guid *b) { return memcmp(a->b, b->b, 16) == 0; }

void hv_guid_format(const struct hv_guid *g, char *out)
{
	const uint8_t *b = g->b;
	snprintf(out, HV_GUID_STRLEN + 1,
		 "{%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x}", hv_le32(b), hv_le16(b + 4),
		 hv_le16(b + 6), b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int hv_guid_parse(const char *s, size_t n, struct hv_guid *out)
{
	while (n > 0 && isspace((unsigned char)*s))
		s++, n--;
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	if (n == 38 && s[0] == '{' && s[37] == '}')
		s++, n -= 2;
	if (n != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-')
		return hv_err(HV_EINVAL, "'%.*s' is not a GUID", (int)(n > 64 ? 64 : n), s);
	uint8_t raw[16]; /* the 16 bytes in text order */
	int k = 0;
	for (size_t i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			continue;
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return hv_err(HV_EINVAL, "'%.36s' is not a GUID (bad hex digit)", s);
		raw[k++] = (uint8_t)(hi << 4 | lo);
		i++;
	}
	/* text order -> Microsoft layout: Data1..3 little-endian */
	static const int map[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
	for (int i = 0; i < 16; i++)
		out->b[i] = raw[map[i]];
	return 0;
}

uint64_t hv_hash64(const void *buf, size_t n, uint64_t h)
{
	const uint8_t *p = buf;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

struct hv_rng hv_rng_stream(uint64_t seed, const char *name)
{
	uint64_t h = hv_hash64(name, strlen(name), 0xcbf29ce484222325ull);
	struct hv_rng r = {mix64(seed ^ mix64(h))};
	return r;
}

uint64_t hv_rng_next(struct hv_rng *r)
{
	r->s += 0x9e3779b97f4a7c15ull;
	return mix64(r->s);
}

void hv_rng_fill(struct hv_rng *r, void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n > 0) {
		uint8_t w[8];
		hv_put64(w, hv_rng_next(r));
		size_t k = n < 8 ? n : 8;
		memcpy(p, w, k);
		p += k;
		n -= k;
	}
}

struct hv_guid hv_rng_guid(struct hv_rng *r)
{
	struct hv_guid g;
	hv_rng_fill(r, g.b, 16);
	g.b[7] = (uint8_t)((g.b[7] & 0x0f) | 0x40); /* version 4 (Data3 high nibble) */
	g.b[8] = (uint8_t)((g.b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	return g;
}

static int ascii_casecmp(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return 1;
	return *a != *b;
}

int hv_parse_size(const char *s, uint64_t *out)
{
	const char *p = s;
	uint64_t v = 0;
	if (!isdigit((unsigned char)*p))
		return hv_err(HV_EINVAL, "'%s' is not a size (expected e.g. 4096, 64MiB, 2GiB)", s);
	while (isdigit((unsigned char)*p)) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return hv_err(HV_EINVAL, "size '%s' is too large", s);
		v = v * 10 + d;
		p++;
	}
	unsigned shift = 0;
	if (*p) {
		static const struct {
			const char *suffix;
			unsigned shift;
		} units[] = {{"B", 0},   {"K", 10},   {"KiB", 10}, {"M", 20}, {"MiB", 20},
			     {"G", 30},  {"GiB", 30}, {"T", 40},   {"TiB", 40}};
		bool found = false;
		for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
			if (ascii_casecmp(p, units[i].suffix) == 0) {
				shift = units[i].shift;
				found = true;
			}
		if (!found)
			return hv_err(HV_EINVAL, "size '%s' has an unknown unit '%s' (use KiB, MiB, GiB or TiB)", s, p);
	}
	if (shift && v > (UINT64_MAX >> shift))
		return hv_err(HV_EINVAL, "size '%s' is too large", s);
	*out = v << shift;
	return 0;
}
