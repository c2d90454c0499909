/*
 * wql_like — WQL LIKE matching: % (any run), _ (one character), [set], [a-z], [^set], ASCII
 * case-insensitive, UTF-8 sequences counted as one character.
 *
 * The matcher is the iterative wildcard algorithm with a single resume point (the most recent
 * %): every pattern element other than % matches exactly one character, so on a mismatch it is
 * enough to let the last % swallow one more character and retry from there. That bounds the
 * work by len(s) * len(pattern) for any input (no exponential backtracking on %a%a%a%b) and
 * needs no allocation. Must not: allocate, recurse.
 *
 * Microsoft's LIKE page writes the range as "[a=f]"; that is a typo for [a-f] (the Windows
 * Search LIKE page, same syntax, writes [a-z]). Only '-' forms a range here.
 */
#include "cim_internal.h"

/* The ']' closing the set that starts at '[' p, or NULL. A ']' right after '[' or '[^' is a
 * member, not the end. */
static const char *set_end(const char *p)
{
	const char *q = p + 1;
	if (*q == '^')
		q++;
	if (*q == ']')
		q++;
	while (*q && *q != ']')
		q++;
	return *q ? q : NULL;
}

static uint32_t fold(uint32_t c) { return c < 0x80 ? (uint32_t)cim_lower((char)c) : c; }

/* Does character c belong to the set between '[' p and ']' end? */
static bool in_set(const char *p, const char *end, uint32_t c)
{
	const char *q = p + 1;
	bool neg = *q == '^';
	bool hit = false;
	q += neg;
	c = fold(c);
	while (q < end) {
		uint32_t lo, hi;
		q += cim_utf8_next(q, &lo);
		hi = lo;
		if (*q == '-' && q + 1 < end) {
			q++;
			q += cim_utf8_next(q, &hi);
		}
		lo = fold(lo);
		hi = fold(hi);
		if (c >= lo && c <= hi)
			hit = true;
	}
	return hit != neg;
}

/* Matches the one pattern element at *pp against character c; *plen gets the element's length. */
static bool match_one(const char *pp, uint32_t c, size_t *plen)
{
	uint32_t pc;
	if (*pp == '_') {
		*plen = 1;
		return true;
	}
	if (*pp == '[') {
		const char *end = set_end(pp);
		if (end) {
			*plen = (size_t)(end - pp) + 1;
			return in_set(pp, end, c);
		}
	}
	*plen = cim_utf8_next(pp, &pc);
	return fold(pc) == fold(c);
}

bool wql_like_match(const char *s, const char *pattern)
{
	const char *sp = s, *pp = pattern;
	const char *star_p = NULL, *star_s = NULL;
	while (*sp) {
		uint32_t c;
		size_t clen = cim_utf8_next(sp, &c), plen;
		if (*pp == '%') {
			while (*pp == '%')
				pp++;
			star_p = pp;
			star_s = sp;
		} else if (*pp && match_one(pp, c, &plen)) {
			pp += plen;
			sp += clen;
		} else if (star_p) {
			uint32_t skipped;
			star_s += cim_utf8_next(star_s, &skipped);
			sp = star_s;
			pp = star_p;
		} else {
			return false;
		}
	}
	while (*pp == '%')
		pp++;
	return !*pp;
}

int wql_like_check(const char *pattern, size_t *err_pos)
{
	for (const char *p = pattern; *p; p++) {
		if (*p != '[')
			continue;
		const char *end = set_end(p);
		if (!end) {
			if (err_pos)
				*err_pos = (size_t)(p - pattern);
			return hv_err(HV_EINVAL, "LIKE pattern: '[' at %zu has no closing ']'",
				      (size_t)(p - pattern));
		}
		p = end;
	}
	return 0;
}
