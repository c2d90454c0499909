/*
 * cim_util — the string buffer, case folding and UTF-8 stepping shared by the cim codec files.
 * See cim_internal.h. No state outside the objects passed in.
 */
#include "cim_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool sb_reserve(struct cim_sb *b, size_t extra)
{
	if (b->oom)
		return false;
	if (b->n + extra + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->n + extra + 1) {
		if (cap > SIZE_MAX / 2) {
			b->oom = true;
			return false;
		}
		cap *= 2;
	}
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void cim_sb_add(struct cim_sb *b, const char *s, size_t n)
{
	if (!sb_reserve(b, n))
		return;
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
}

void cim_sb_adds(struct cim_sb *b, const char *s) { cim_sb_add(b, s, strlen(s)); }

void cim_sb_addc(struct cim_sb *b, char c) { cim_sb_add(b, &c, 1); }

void cim_sb_addf(struct cim_sb *b, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof tmp) {
		b->oom = true; /* only short numeric fragments go through here */
		return;
	}
	cim_sb_add(b, tmp, (size_t)n);
}

char *cim_sb_finish(struct cim_sb *b)
{
	if (!b->oom && !b->p)
		sb_reserve(b, 0);
	if (b->oom) {
		cim_sb_discard(b);
		hv_err(HV_ENOMEM, "out of memory building a string");
		return NULL;
	}
	b->p[b->n] = 0;
	char *p = b->p;
	b->p = NULL;
	b->n = b->cap = 0;
	return p;
}

void cim_sb_discard(struct cim_sb *b)
{
	free(b->p);
	b->p = NULL;
	b->n = b->cap = 0;
}

char *cim_strndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = 0;
	return p;
}

char *cim_strdup(const char *s) { return cim_strndup(s, strlen(s)); }

bool cim_ieq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return cim_icmp(a, b) == 0;
}

bool cim_ieqn(const char *s, size_t n, const char *word)
{
	size_t i = 0;
	for (; i < n && word[i]; i++)
		if (cim_lower(s[i]) != cim_lower(word[i]))
			return false;
	return i == n && word[i] == 0;
}

int cim_icmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned char ca = (unsigned char)cim_lower(*a), cb = (unsigned char)cim_lower(*b);
		if (ca != cb || !ca)
			return (int)ca - (int)cb;
	}
}

size_t cim_utf8_next(const char *s, uint32_t *cp)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n;
	uint32_t c;
	if (u[0] < 0x80) {
		*cp = u[0];
		return 1;
	}
	if ((u[0] & 0xE0) == 0xC0) {
		n = 2;
		c = u[0] & 0x1F;
	} else if ((u[0] & 0xF0) == 0xE0) {
		n = 3;
		c = u[0] & 0x0F;
	} else if ((u[0] & 0xF8) == 0xF0) {
		n = 4;
		c = u[0] & 0x07;
	} else {
		*cp = u[0];
		return 1;
	}
	for (size_t i = 1; i < n; i++) {
		if ((u[i] & 0xC0) != 0x80) { /* also stops at the NUL terminator */
			*cp = u[0];
			return 1;
		}
		c = c << 6 | (u[i] & 0x3F);
	}
	*cp = c;
	return n;
}

size_t cim_utf8_check(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		uint32_t cp;
		size_t k = cim_utf8_next((const char *)u + i, &cp);
		/* shortest form only, no surrogates, nothing above U+10FFFF */
		if ((k == 1 && u[i] >= 0x80) || (k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) ||
		    (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF) ||
		    i + k > n)
			return i;
		i += k;
	}
	return n;
}

bool cim_parse_int(const char *s, bool *neg, uint64_t *mag)
{
	*neg = false;
	if (*s == '+' || *s == '-')
		*neg = *s++ == '-';
	unsigned base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return false;
	uint64_t v = 0;
	for (; *s; s++) {
		unsigned d;
		if (cim_is_digit(*s))
			d = (unsigned)(*s - '0');
		else if (base == 16 && cim_lower(*s) >= 'a' && cim_lower(*s) <= 'f')
			d = (unsigned)(cim_lower(*s) - 'a' + 10);
		else
			return false;
		if (v > (UINT64_MAX - d) / base)
			return false;
		v = v * base + d;
	}
	*mag = v;
	return true;
}
