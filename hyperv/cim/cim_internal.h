/*
 * cim_internal — helpers the cim codec files share: a growable string buffer that remembers
 * allocation failure, bounded string copies, ASCII case folding, identifier character classes and
 * UTF-8 stepping. Not part of the public face (cim.h); nothing outside hyperv/cim includes it.
 */
#ifndef HV_CIM_INTERNAL_H
#define HV_CIM_INTERNAL_H

#include "cim.h"

#include <stdarg.h>

/* A string under construction. Appends after an allocation failure are ignored and `oom` stays
 * set, so a builder checks once at the end (cim_sb_finish). */
struct cim_sb {
	char *p;
	size_t n, cap;
	bool oom;
};
void cim_sb_add(struct cim_sb *b, const char *s, size_t n);
void cim_sb_adds(struct cim_sb *b, const char *s);
void cim_sb_addc(struct cim_sb *b, char c);
void cim_sb_addf(struct cim_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The NUL-terminated text (caller frees), or NULL with hv_err(HV_ENOMEM) set. */
char *cim_sb_finish(struct cim_sb *b);
void cim_sb_discard(struct cim_sb *b);

char *cim_strndup(const char *s, size_t n);
char *cim_strdup(const char *s);

static inline char cim_lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }
static inline bool cim_is_alpha(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
static inline bool cim_is_digit(char c) { return c >= '0' && c <= '9'; }
static inline bool cim_is_ident_start(char c) { return cim_is_alpha(c) || c == '_'; }
static inline bool cim_is_ident(char c) { return cim_is_ident_start(c) || cim_is_digit(c); }
static inline bool cim_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
/* ASCII case-insensitive equality; NULL equals only NULL. */
bool cim_ieq(const char *a, const char *b);
/* ASCII case-insensitive equality of s[0..n) with the NUL-terminated word. */
bool cim_ieqn(const char *s, size_t n, const char *word);
/* ASCII case-insensitive ordering, for the canonical key order. */
int cim_icmp(const char *a, const char *b);
/* Length of the UTF-8 sequence starting at s (1 for a malformed lead or truncated sequence, so
 * every byte is consumed exactly once); decodes it into *cp. */
size_t cim_utf8_next(const char *s, uint32_t *cp);

/* Integer text filling all of s: optional sign, decimal digits or 0x hex. False on junk or a
 * magnitude above UINT64_MAX; sets no error message. */
bool cim_parse_int(const char *s, bool *neg, uint64_t *mag);

/* Offset of the first byte of s[0..n) that is not well-formed UTF-8 (shortest forms, no
 * surrogates, <= U+10FFFF), or n when all of it is. */
size_t cim_utf8_check(const char *s, size_t n);

/* Frees a property's contents (not the struct). */
void cim_prop_clear(struct cim_prop *p);
/* Appends an already-built property to `inst`, taking ownership of its contents; refuses a
 * duplicate name (HV_EINVAL, message without location prefix: "duplicate property X"). On
 * failure the property's contents are freed. */
int cim_instance_take_prop(struct cim_instance *inst, struct cim_prop *p);

/* Parsers behind cim_instance_parse. `text` is NUL-terminated at text[len]. */
int cim_xml_parse(const char *text, size_t len, struct cim_instance **out);
int cim_mof_parse(const char *text, size_t len, struct cim_instance **out);

#endif
