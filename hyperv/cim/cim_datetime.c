/*
 * cim_datetime — CIM datetime text over the virtual FILETIME clock: timestamps
 * "yyyymmddHHMMSS.mmmmmm+UUU" and intervals "ddddddddHHMMSS.mmmmmm:000", both ways.
 *
 * Calendar arithmetic is Howard Hinnant's days/civil conversion (proleptic Gregorian, exact for
 * every year), so no libc time function, time zone or locale is involved. Must not read the
 * wall clock.
 */
#include "cim_internal.h"

#include <string.h>

#define TICKS_PER_US 10ull
#define TICKS_PER_DAY (86400ull * CIM_TICKS_PER_SECOND)
#define DAYS_1601_TO_1970 134774 /* days from 1601-01-01 to 1970-01-01 */

struct civil {
	int64_t y;
	unsigned m, d;
};

/* Days since 1970-01-01 -> civil date. */
static struct civil civil_from_days(int64_t z)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	struct civil c;
	c.d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	c.m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	c.y = yoe + era * 400 + (c.m <= 2);
	return c;
}

/* Civil date -> days since 1970-01-01. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static unsigned days_in_month(int64_t y, unsigned m)
{
	static const unsigned dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Writes v as exactly n decimal digits (v < 10^n) at p. */
static void put_digits(char *p, uint64_t v, unsigned n)
{
	while (n--) {
		p[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* HHMMSS.mmmmmm of the ticks within one day at out[0..13). */
static void put_clock(char *out, uint64_t ticks_in_day)
{
	uint64_t us = ticks_in_day / TICKS_PER_US;
	uint64_t s = us / 1000000;
	put_digits(out, s / 3600, 2);
	put_digits(out + 2, s / 60 % 60, 2);
	put_digits(out + 4, s % 60, 2);
	out[6] = '.';
	put_digits(out + 7, us % 1000000, 6);
}

int cim_datetime_format(uint64_t filetime, char out[CIM_DATETIME_LEN + 1])
{
	uint64_t days = filetime / TICKS_PER_DAY;
	struct civil c = civil_from_days((int64_t)days - DAYS_1601_TO_1970);
	out[0] = 0;
	if (c.y > 9999)
		return hv_err(HV_EINVAL, "CIM datetime: FILETIME %llu is after year 9999",
			      (unsigned long long)filetime);
	put_digits(out, (uint64_t)c.y, 4);
	put_digits(out + 4, c.m, 2);
	put_digits(out + 6, c.d, 2);
	put_clock(out + 8, filetime % TICKS_PER_DAY);
	memcpy(out + 21, "+000", 5);
	return 0;
}

void cim_interval_format(uint64_t ticks, char out[CIM_DATETIME_LEN + 1])
{
	put_digits(out, ticks / TICKS_PER_DAY, 8); /* at most 21350398 days */
	put_clock(out + 8, ticks % TICKS_PER_DAY);
	memcpy(out + 21, ":000", 5);
}

/* Reads n decimal digits at s; false on anything else. */
static bool digits(const char *s, unsigned n, unsigned *out)
{
	unsigned v = 0;
	for (unsigned i = 0; i < n; i++) {
		if (!cim_is_digit(s[i]))
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return true;
}

/* The common layout check: 25 chars, '.' at 14, `sep` class at 21, no '*' wildcards. */
static int layout_check(const char *what, const char *text, const char *seps)
{
	size_t n = strnlen(text, CIM_DATETIME_LEN + 1);
	if (n != CIM_DATETIME_LEN)
		return hv_err(HV_EINVAL, "CIM %s '%.40s': length %zu, expected 25", what, text, n);
	if (memchr(text, '*', n))
		return hv_err(HV_EINVAL, "CIM %s '%s': wildcard fields ('*') are not supported",
			      what, text);
	if (text[14] != '.' || !strchr(seps, text[21]) || !text[21])
		return hv_err(HV_EINVAL, "CIM %s '%s': expected '.' at 14 and '%s' at 21", what,
			      text, seps);
	return 0;
}

/* HH MM SS . micro at text+8; fills ticks within the day. */
static bool parse_clock(const char *t, uint64_t *ticks)
{
	unsigned h, mi, s, us;
	if (!digits(t, 2, &h) || !digits(t + 2, 2, &mi) || !digits(t + 4, 2, &s) ||
	    !digits(t + 7, 6, &us) || h > 23 || mi > 59 || s > 59)
		return false;
	*ticks = ((uint64_t)h * 3600 + mi * 60 + s) * CIM_TICKS_PER_SECOND + us * TICKS_PER_US;
	return true;
}

int cim_datetime_parse(const char *text, uint64_t *filetime)
{
	unsigned y, m, d, off;
	uint64_t clock;
	int rc = layout_check("datetime", text, "+-");
	if (rc)
		return rc;
	if (!digits(text, 4, &y) || !digits(text + 4, 2, &m) || !digits(text + 6, 2, &d) ||
	    !digits(text + 22, 3, &off) || !parse_clock(text + 8, &clock) || m < 1 || m > 12 ||
	    d < 1 || d > days_in_month(y, m))
		return hv_err(HV_EINVAL, "CIM datetime '%s': field not a number or out of range",
			      text);
	int64_t days = days_from_civil(y, m, d) + DAYS_1601_TO_1970;
	int64_t shift = (int64_t)off * 60 * (int64_t)CIM_TICKS_PER_SECOND;
	if (text[21] == '-')
		shift = -shift;
	/* local = UTC + offset, so UTC = local - offset */
	int64_t local = days * (int64_t)TICKS_PER_DAY + (int64_t)clock;
	if (days < 0 || local - shift < 0)
		return hv_err(HV_EINVAL, "CIM datetime '%s': before 1601-01-01 UTC", text);
	*filetime = (uint64_t)(local - shift);
	return 0;
}

int cim_interval_parse(const char *text, uint64_t *ticks)
{
	unsigned days;
	uint64_t clock;
	int rc = layout_check("interval", text, ":");
	if (rc)
		return rc;
	if (!digits(text, 8, &days) || !parse_clock(text + 8, &clock) ||
	    memcmp(text + 22, "000", 3) != 0)
		return hv_err(HV_EINVAL, "CIM interval '%s': field not a number or out of range",
			      text);
	if (days > (UINT64_MAX - clock) / TICKS_PER_DAY)
		return hv_err(HV_EINVAL, "CIM interval '%s': longer than 2^64 ticks", text);
	*ticks = days * TICKS_PER_DAY + clock;
	return 0;
}
