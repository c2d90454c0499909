/*
 * scenario_yaml.c — turns libyaml's event stream into the small tree scenario.c validates.
 *
 * Why a tree of our own rather than libyaml's document API: the loader must reject anchors and
 * aliases at the place they are written (an alias lets a few bytes stand for a huge document),
 * bound nesting and node count before allocating, and keep 1-based positions on every node.
 * libyaml does all the YAML (scanning, quoting, escapes, UTF-8); this file only assembles nodes,
 * with an explicit stack (no recursion while building).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "scenario_internal.h"

int sc_fail(const char *path, struct sc_mark m, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return hv_err(HV_ECORRUPT, "%s:%u:%u: %s", path, m.line, m.col, msg);
}

void sc_ynode_free(struct ynode *n)
{
	if (!n)
		return;
	/* depth is bounded by SCENARIO_MAX_DEPTH, so recursion here is bounded too */
	for (size_t i = 0; i < n->n; i++)
		sc_ynode_free(n->kids[i]);
	free(n->kids);
	free(n->str);
	free(n);
}

static struct sc_mark mark_of(const yaml_mark_t *m)
{
	return (struct sc_mark){(uint32_t)m->line + 1, (uint32_t)m->column + 1};
}

/* libyaml reports reader errors (bad UTF-8, control characters) by byte offset only. */
static struct sc_mark mark_at_offset(const char *buf, size_t len, size_t off)
{
	struct sc_mark m = {1, 1};
	for (size_t i = 0; i < off && i < len; i++) {
		if (buf[i] == '\n') {
			m.line++;
			m.col = 1;
		} else if (((unsigned char)buf[i] & 0xC0) != 0x80) {
			m.col++;
		}
	}
	return m;
}

static int add_kid(struct ynode *parent, struct ynode *kid)
{
	if (parent->n == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 8;
		struct ynode **k = realloc(parent->kids, cap * sizeof *k);
		if (!k)
			return hv_err(HV_ENOMEM, "out of memory");
		parent->kids = k;
		parent->cap = cap;
	}
	parent->kids[parent->n++] = kid;
	return 0;
}

static int syntax_error(const char *path, const yaml_parser_t *p, const char *buf, size_t len)
{
	struct sc_mark m = p->error == YAML_READER_ERROR
	                       ? mark_at_offset(buf, len, p->problem_offset)
	                       : mark_of(&p->problem_mark);
	if (p->error == YAML_MEMORY_ERROR)
		return hv_err(HV_ENOMEM, "%s: out of memory while reading YAML", path);
	if (p->context)
		return sc_fail(path, m, "YAML syntax: %s (%s at line %u column %u)",
		               p->problem ? p->problem : "error", p->context,
		               (unsigned)p->context_mark.line + 1,
		               (unsigned)p->context_mark.column + 1);
	return sc_fail(path, m, "YAML syntax: %s", p->problem ? p->problem : "error");
}

/* Anchors and explicit tags are refused wherever they appear. */
static int check_props(const char *path, struct sc_mark m, const yaml_char_t *anchor,
                       const yaml_char_t *tag)
{
	if (anchor)
		return sc_fail(
		    path, m, "anchors (&%.40s) and aliases are not supported: write the value out",
		    anchor);
	if (tag)
		return sc_fail(path, m,
		               "explicit tags (%.40s) are not supported: write plain values", tag);
	return 0;
}

int sc_yaml_load(const char *path, const char *buf, size_t len, struct ynode **root)
{
	*root = NULL;
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser))
		return hv_err(HV_ENOMEM, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);

	struct ynode *stack[SCENARIO_MAX_DEPTH + 1];
	int depth = 0, docs = 0, r = 0;
	size_t nodes = 0;
	struct ynode *top = NULL;
	bool done = false;
	while (!done && !r) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&parser, &ev)) {
			r = syntax_error(path, &parser, buf, len);
			break;
		}
		struct sc_mark m = mark_of(&ev.start_mark);
		struct ynode *n = NULL;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1)
				r = sc_fail(
				    path, m,
				    "a second YAML document: a scenario file holds exactly one");
			break;
		case YAML_ALIAS_EVENT:
			r = sc_fail(
			    path, m,
			    "aliases (*%.40s) and anchors are not supported: write the value out",
			    ev.data.alias.anchor);
			break;
		case YAML_SCALAR_EVENT:
			if ((r = check_props(path, m, ev.data.scalar.anchor, ev.data.scalar.tag)))
				break;
			if (memchr(ev.data.scalar.value, 0, ev.data.scalar.length)) {
				r = sc_fail(path, m, "a value contains a NUL character");
				break;
			}
			/* fallthrough */
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (ev.type == YAML_SEQUENCE_START_EVENT)
				r = check_props(path, m, ev.data.sequence_start.anchor,
				                ev.data.sequence_start.tag);
			else if (ev.type == YAML_MAPPING_START_EVENT)
				r = check_props(path, m, ev.data.mapping_start.anchor,
				                ev.data.mapping_start.tag);
			if (r)
				break;
			if (++nodes > SC_MAX_NODES) {
				r = sc_fail(path, m, "more than %u values in one file",
				            SC_MAX_NODES);
				break;
			}
			if (depth > 0 && stack[depth - 1]->kind == YN_MAP &&
			    stack[depth - 1]->n % 2 == 0 && ev.type != YAML_SCALAR_EVENT) {
				r = sc_fail(path, m, "a key must be a name, not a %s",
				            ev.type == YAML_SEQUENCE_START_EVENT ? "list"
				                                                 : "mapping");
				break;
			}
			if (ev.type != YAML_SCALAR_EVENT && depth == SCENARIO_MAX_DEPTH) {
				r = sc_fail(path, m, "nested more than %d levels deep",
				            SCENARIO_MAX_DEPTH);
				break;
			}
			if (!(n = calloc(1, sizeof *n))) {
				r = hv_err(HV_ENOMEM, "out of memory");
				break;
			}
			n->mark = m;
			if (ev.type == YAML_SCALAR_EVENT) {
				n->kind = YN_SCALAR;
				n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
				n->len = ev.data.scalar.length;
				if (!(n->str = malloc(n->len + 1))) {
					free(n);
					r = hv_err(HV_ENOMEM, "out of memory");
					break;
				}
				memcpy(n->str, ev.data.scalar.value, n->len);
				n->str[n->len] = 0;
			} else {
				n->kind = ev.type == YAML_SEQUENCE_START_EVENT ? YN_SEQ : YN_MAP;
			}
			if (depth == 0)
				top = n;
			else if ((r = add_kid(stack[depth - 1], n))) {
				sc_ynode_free(n);
				break;
			}
			if (n->kind != YN_SCALAR)
				stack[depth++] = n;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	if (r) {
		sc_ynode_free(top);
		return r;
	}
	*root = top;
	return 0;
}
