/*
 * cim_xml — reads a CIM-XML DTD 2.0 embedded instance (<INSTANCE CLASSNAME>, PROPERTY,
 * PROPERTY.ARRAY, PROPERTY.REFERENCE with any VALUE.REFERENCE path form) with libxml2, also when
 * it arrives wrapped in <VALUE> as an element, as escaped text or as CDATA.
 *
 * Must not: load a DTD, touch the network, substitute entities or parse a document with a
 * DOCTYPE at all (XXE and billion-laughs inputs stop at the DOCTYPE, before any entity is
 * declared), or recurse without a bound. libxml2 runs with XML_PARSE_NONET and without
 * XML_PARSE_NOENT / XML_PARSE_DTDLOAD / XML_PARSE_HUGE; its own depth and size limits stay on.
 */
#include "cim_internal.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WRAP 2    /* <VALUE> holding escaped text holding <VALUE> ... */
#define MAX_REF_DEPTH 8 /* VALUE.REFERENCE inside KEYBINDING inside VALUE.REFERENCE ... */

static int xerr(const xmlNode *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int xerr(const xmlNode *n, const char *fmt, ...)
{
	char cause[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cause, sizeof cause, fmt, ap);
	va_end(ap);
	return hv_err(HV_EINVAL, "embedded instance: line %ld: %s", n ? xmlGetLineNo(n) : 1L,
		      cause);
}

static bool is(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

static const char *ename(const xmlNode *n) { return (const char *)n->name; }

/* A malloc'd copy of an attribute's value (caller frees with free()), or NULL when absent or
 * out of memory (the callers report it as absent: a later check names the element). */
static char *attr(const xmlNode *n, const char *name)
{
	xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
	char *copy = v ? cim_strdup((const char *)v) : NULL;
	xmlFree(v);
	return copy;
}

/* Children that are neither elements nor white space are errors; comments and PIs are skipped.
 * Returns the next element at or after `c`, or NULL (with *rc set on error). */
static xmlNode *next_elem(const xmlNode *parent, xmlNode *c, int *rc)
{
	for (; c; c = c->next) {
		if (c->type == XML_ELEMENT_NODE)
			return c;
		if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
			for (const xmlChar *t = c->content; t && *t; t++) {
				if (!cim_is_space((char)*t)) {
					*rc = xerr(c, "unexpected text inside <%s>", ename(parent));
					return NULL;
				}
			}
		} else if (c->type == XML_ENTITY_REF_NODE) { /* defensive: DOCTYPEs are refused */
			*rc = xerr(c, "entity reference inside <%s> (only &lt; &gt; &amp; &quot; "
				      "&apos; and character references are allowed)", ename(parent));
			return NULL;
		}
	}
	return NULL;
}

/* Iterates the element children of `parent`; stops when the body sets rc, or with rc set at the
 * first child that is stray text. */
#define FOR_ELEMS(e, parent, rc)                                                              \
	for (xmlNode *e = next_elem((parent), (parent)->children, &(rc)); e && !(rc);          \
	     e = (rc) ? NULL : next_elem((parent), e->next, &(rc)))

/* The text of an element holding only text (VALUE, KEYVALUE, HOST). Caller frees. */
static int text_of(const xmlNode *n, char **out)
{
	for (const xmlNode *c = n->children; c; c = c->next) {
		if (c->type == XML_ELEMENT_NODE)
			return xerr(c, "<%s> inside <%s>, expected text", ename(c), ename(n));
		if (c->type == XML_ENTITY_REF_NODE)
			return xerr(c, "entity reference inside <%s>", ename(n));
	}
	xmlChar *t = xmlNodeGetContent(n);
	*out = cim_strdup(t ? (const char *)t : "");
	xmlFree(t);
	return *out ? 0 : hv_err(HV_ENOMEM, "embedded instance: out of memory");
}

/* ---- VALUE.REFERENCE -> path ----------------------------------------------------------------*/

static int ref_to_text(const xmlNode *vref, int depth, char **out);

static int parse_localns(const xmlNode *n, struct cim_path *p)
{
	int rc = 0;
	struct cim_sb b = {0};
	FOR_ELEMS(e, n, rc) {
		char *name = is(e, "NAMESPACE") ? attr(e, "NAME") : NULL;
		if (!name) {
			rc = xerr(e, "<%s> in LOCALNAMESPACEPATH, expected <NAMESPACE NAME>",
				  ename(e));
			break;
		}
		if (b.n)
			cim_sb_addc(&b, '\\');
		cim_sb_adds(&b, name);
		free(name);
	}
	if (!rc && !b.n)
		rc = xerr(n, "LOCALNAMESPACEPATH without NAMESPACE");
	if (rc) {
		cim_sb_discard(&b);
		return rc;
	}
	return (p->ns = cim_sb_finish(&b)) ? 0 : HV_ENOMEM;
}

static int parse_nspath(const xmlNode *n, struct cim_path *p)
{
	int rc = 0;
	FOR_ELEMS(e, n, rc) {
		if (is(e, "HOST") && !p->host)
			rc = text_of(e, &p->host);
		else if (is(e, "LOCALNAMESPACEPATH") && !p->ns)
			rc = parse_localns(e, p);
		else
			rc = xerr(e, "unexpected <%s> in NAMESPACEPATH", ename(e));
	}
	if (!rc && (!p->host || !p->ns))
		rc = xerr(n, "NAMESPACEPATH needs HOST and LOCALNAMESPACEPATH");
	return rc;
}

/* KEYVALUE or VALUE.REFERENCE -> (value, quoted). */
static int key_value(const xmlNode *e, int depth, char **value, bool *quoted)
{
	if (is(e, "VALUE.REFERENCE")) {
		*quoted = true;
		return ref_to_text(e, depth + 1, value);
	}
	if (!is(e, "KEYVALUE"))
		return xerr(e, "<%s> where a KEYVALUE or VALUE.REFERENCE belongs", ename(e));
	char *vt = attr(e, "VALUETYPE");
	*quoted = !vt || !strcmp(vt, "string");
	free(vt);
	return text_of(e, value);
}

static int add_key(const xmlNode *e, struct cim_path *p, const char *name, int depth)
{
	char *value = NULL;
	bool quoted = true;
	int rc = key_value(e, depth, &value, &quoted);
	if (!rc && cim_path_add_key(p, name, value, quoted))
		rc = xerr(e, "key '%s' given twice (or after an unnamed key)", name);
	free(value);
	return rc;
}

static int parse_instancename(const xmlNode *n, struct cim_path *p, int depth)
{
	int rc = 0;
	if (!(p->class_name = attr(n, "CLASSNAME")))
		return xerr(n, "INSTANCENAME without CLASSNAME");
	FOR_ELEMS(e, n, rc) {
		if (!is(e, "KEYBINDING")) {
			rc = add_key(e, p, "", depth);
			continue;
		}
		char *name = attr(e, "NAME");
		int erc = 0;
		xmlNode *v = name ? next_elem(e, e->children, &erc) : NULL;
		if (erc)
			rc = erc;
		else if (!name || !*name || !v)
			rc = xerr(e, "KEYBINDING needs NAME and a KEYVALUE or VALUE.REFERENCE");
		else if (next_elem(e, v->next, &erc) || erc)
			rc = erc ? erc : xerr(e, "KEYBINDING '%s' with more than one value", name);
		else
			rc = add_key(v, p, name, depth);
		free(name);
	}
	if (!rc && !p->nkeys)
		p->singleton = true;
	return rc;
}

static int parse_classname(const xmlNode *n, struct cim_path *p)
{
	if (!is(n, "CLASSNAME") || !(p->class_name = attr(n, "NAME")))
		return xerr(n, "<%s>, expected <CLASSNAME NAME>", ename(n));
	return 0;
}

/* INSTANCEPATH / LOCALINSTANCEPATH / CLASSPATH / LOCALCLASSPATH: a namespace part then a name. */
static int parse_pathform(const xmlNode *n, struct cim_path *p, int depth)
{
	bool local = !strncmp(ename(n), "LOCAL", 5);
	bool inst = strstr(ename(n), "INSTANCE") != NULL;
	int rc = 0;
	xmlNode *ns = next_elem(n, n->children, &rc);
	xmlNode *name = ns && !rc ? next_elem(n, ns->next, &rc) : NULL;
	if (rc)
		return rc;
	if (!ns || !name || next_elem(n, name->next, &rc) || rc)
		return rc ? rc : xerr(n, "%s needs exactly a namespace part and a name", ename(n));
	if (!is(ns, local ? "LOCALNAMESPACEPATH" : "NAMESPACEPATH"))
		return xerr(ns, "<%s> in %s", ename(ns), ename(n));
	if ((rc = local ? parse_localns(ns, p) : parse_nspath(ns, p)))
		return rc;
	if (!inst)
		return parse_classname(name, p);
	if (!is(name, "INSTANCENAME"))
		return xerr(name, "<%s> in %s, expected <INSTANCENAME>", ename(name), ename(n));
	return parse_instancename(name, p, depth);
}

/* `root\ns:` prefix for a path that has a namespace but no host; none without namespace. */
static char *path_text(const struct cim_path *p)
{
	if (p->host)
		return cim_path_format_full(p, NULL, NULL);
	char *rel = cim_path_format_rel(p);
	if (!rel || !p->ns)
		return rel;
	struct cim_sb b = {0};
	cim_sb_adds(&b, p->ns);
	cim_sb_addc(&b, ':');
	cim_sb_adds(&b, rel);
	free(rel);
	return cim_sb_finish(&b);
}

static int ref_to_text(const xmlNode *vref, int depth, char **out)
{
	int rc = 0;
	if (depth > MAX_REF_DEPTH)
		return xerr(vref, "VALUE.REFERENCE nested deeper than %d", MAX_REF_DEPTH);
	xmlNode *e = next_elem(vref, vref->children, &rc);
	if (rc)
		return rc;
	if (!e || next_elem(vref, e->next, &rc) || rc)
		return rc ? rc : xerr(vref, "VALUE.REFERENCE must hold exactly one path element");
	struct cim_path *p = calloc(1, sizeof *p);
	if (!p)
		return hv_err(HV_ENOMEM, "embedded instance: out of memory");
	if (is(e, "INSTANCEPATH") || is(e, "LOCALINSTANCEPATH") || is(e, "CLASSPATH") ||
	    is(e, "LOCALCLASSPATH"))
		rc = parse_pathform(e, p, depth);
	else if (is(e, "INSTANCENAME"))
		rc = parse_instancename(e, p, depth);
	else if (is(e, "CLASSNAME"))
		rc = parse_classname(e, p);
	else
		rc = xerr(e, "<%s> in VALUE.REFERENCE, expected an instance or class path",
			  ename(e));
	if (!rc && !*p->class_name)
		rc = xerr(e, "empty class name in reference");
	if (!rc && !(*out = path_text(p)))
		rc = HV_ENOMEM;
	cim_path_free(p);
	return rc;
}

/* ---- properties -----------------------------------------------------------------------------*/

/* NAME and TYPE of a PROPERTY / PROPERTY.ARRAY / PROPERTY.REFERENCE into `p`. */
static int prop_head(const xmlNode *n, struct cim_prop *p)
{
	if (!(p->name = attr(n, "NAME")) || !*p->name)
		return xerr(n, "%s without NAME", ename(n));
	if (is(n, "PROPERTY.REFERENCE")) {
		p->type = CIM_TYPE_REFERENCE;
		return 0;
	}
	char *type = attr(n, "TYPE");
	int rc = 0;
	if (!type)
		rc = xerr(n, "%s %s without TYPE", ename(n), p->name);
	else if (cim_type_parse(type, &p->type))
		rc = xerr(n, "%s %s: unknown TYPE '%.64s'", ename(n), p->name, type);
	free(type);
	return rc;
}

/* Appends one value (taking ownership of `v`). */
static int push_value(struct cim_prop *p, char *v)
{
	char **vals = realloc(p->values, (p->nvalues + 1) * sizeof *vals);
	if (!vals) {
		free(v);
		return hv_err(HV_ENOMEM, "embedded instance: out of memory");
	}
	p->values = vals;
	p->values[p->nvalues++] = v;
	return 0;
}

/* The one optional value element of a property (QUALIFIERs skipped). */
static int prop_value_elem(const xmlNode *n, const char *want, xmlNode **out)
{
	int rc = 0;
	*out = NULL;
	FOR_ELEMS(e, n, rc) {
		if (is(e, "QUALIFIER"))
			continue;
		if (!is(e, want))
			rc = xerr(e, "<%s> in %s, expected <%s>", ename(e), ename(n), want);
		else if (*out)
			rc = xerr(e, "%s has more than one <%s>", ename(n), want);
		else
			*out = e;
	}
	return rc;
}

static int parse_scalar(const xmlNode *n, struct cim_prop *p)
{
	xmlNode *v;
	char *text = NULL;
	int rc = prop_value_elem(n, "VALUE", &v);
	if (rc || !v) {
		p->is_null = !rc;
		return rc;
	}
	if ((rc = text_of(v, &text)))
		return rc;
	return push_value(p, text);
}

static int parse_array(const xmlNode *n, struct cim_prop *p)
{
	xmlNode *va;
	int rc = prop_value_elem(n, "VALUE.ARRAY", &va);
	p->is_array = true;
	if (rc || !va) {
		p->is_null = !rc;
		return rc;
	}
	FOR_ELEMS(e, va, rc) {
		char *text = NULL;
		if (!is(e, "VALUE"))
			rc = xerr(e, "<%s> in VALUE.ARRAY, expected <VALUE>%s", ename(e),
				  is(e, "VALUE.NULL") ? " (NULL array elements are not supported)"
						      : "");
		else if (!(rc = text_of(e, &text)))
			rc = push_value(p, text);
	}
	return rc;
}

static int parse_refprop(const xmlNode *n, struct cim_prop *p)
{
	xmlNode *v;
	char *text = NULL;
	int rc = prop_value_elem(n, "VALUE.REFERENCE", &v);
	if (rc || !v) {
		p->is_null = !rc;
		return rc;
	}
	if ((rc = ref_to_text(v, 0, &text)))
		return rc;
	return push_value(p, text);
}

static int parse_property(const xmlNode *n, struct cim_instance *inst)
{
	struct cim_prop p = {0};
	int rc = prop_head(n, &p);
	if (!rc)
		rc = is(n, "PROPERTY")	     ? parse_scalar(n, &p)
		     : is(n, "PROPERTY.ARRAY") ? parse_array(n, &p)
					       : parse_refprop(n, &p);
	if (rc) {
		cim_prop_clear(&p);
		return rc;
	}
	if ((rc = cim_instance_take_prop(inst, &p)) == HV_EINVAL)
		return xerr(n, "%s", hv_errmsg());
	return rc;
}

static int parse_instance(const xmlNode *n, struct cim_instance **out)
{
	char *cls = attr(n, "CLASSNAME");
	int rc = 0;
	if (!cls || !*cls)
		rc = xerr(n, "INSTANCE without CLASSNAME");
	else
		rc = cim_instance_new(cls, out);
	free(cls);
	if (rc)
		return rc;
	FOR_ELEMS(e, n, rc) {
		if (is(e, "PROPERTY") || is(e, "PROPERTY.ARRAY") || is(e, "PROPERTY.REFERENCE"))
			rc = parse_property(e, *out);
		else if (!is(e, "QUALIFIER"))
			rc = xerr(e, "unexpected <%s> in INSTANCE", ename(e));
	}
	if (rc) {
		cim_instance_free(*out);
		*out = NULL;
	}
	return rc;
}

/* ---- document -------------------------------------------------------------------------------*/

/* SAX hook: any DOCTYPE stops the parse before its internal subset (and so any entity
 * declaration) is read. */
static void refuse_doctype(void *ctx, const xmlChar *name, const xmlChar *ext, const xmlChar *sys)
{
	xmlParserCtxtPtr ctxt = ctx;
	*(bool *)ctxt->_private = true;
	xmlStopParser(ctxt);
}

static int read_doc(const char *text, size_t len, xmlDocPtr *out)
{
	bool doctype = false;
	int rc = 0;
	xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
	if (!ctxt)
		return hv_err(HV_ENOMEM, "embedded instance: out of memory");
	ctxt->sax->internalSubset = refuse_doctype;
	ctxt->_private = &doctype;
	int opts = XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;
	xmlDocPtr doc = xmlCtxtReadMemory(ctxt, text, (int)len, NULL, NULL, opts);
	if (doctype || (doc && (doc->intSubset || doc->extSubset))) {
		rc = hv_err(HV_EINVAL, "embedded instance: line %d: DOCTYPE is not allowed (no "
				       "DTDs, no entity declarations)", ctxt->input ? ctxt->input->line : 1);
	} else if (!doc) {
		const xmlError *e = xmlCtxtGetLastError(ctxt);
		char msg[256];
		snprintf(msg, sizeof msg, "%s", e && e->message ? e->message : "parse failed");
		msg[strcspn(msg, "\n")] = 0;
		rc = hv_err(HV_EINVAL, "embedded instance: line %d: not well-formed XML: %s",
			    e ? e->line : 1, msg);
	}
	if (rc) {
		xmlFreeDoc(doc);
		doc = NULL;
	}
	xmlFreeParserCtxt(ctxt);
	*out = doc;
	return rc;
}

static int parse_text(const char *text, size_t len, int wrap, struct cim_instance **out);

static bool has_element_child(const xmlNode *n)
{
	for (const xmlNode *c = n->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE)
			return true;
	return false;
}

/* <VALUE> around the instance: as a child element, or as text (escaped or CDATA). */
static int parse_wrapped(const xmlNode *v, int wrap, struct cim_instance **out)
{
	int rc = 0;
	if (has_element_child(v)) {
		xmlNode *e = next_elem(v, v->children, &rc);
		if (rc)
			return rc;
		if (!is(e, "INSTANCE") || next_elem(v, e->next, &rc) || rc)
			return rc ? rc : xerr(e, "<VALUE> must hold exactly one <INSTANCE>");
		return parse_instance(e, out);
	}
	if (wrap >= MAX_WRAP)
		return xerr(v, "<VALUE> wrapping nested deeper than %d", MAX_WRAP);
	char *inner = NULL;
	if ((rc = text_of(v, &inner)))
		return rc;
	const char *t = inner;
	while (cim_is_space(*t))
		t++;
	if (*t == '<')
		rc = parse_text(t, strlen(t), wrap + 1, out);
	else
		rc = cim_mof_parse(t, strlen(t), out);
	free(inner);
	return rc;
}

static int parse_text(const char *text, size_t len, int wrap, struct cim_instance **out)
{
	xmlDocPtr doc;
	int rc = read_doc(text, len, &doc);
	if (rc)
		return rc;
	xmlNode *root = xmlDocGetRootElement(doc);
	if (!root)
		rc = xerr(NULL, "no root element");
	else if (is(root, "INSTANCE"))
		rc = parse_instance(root, out);
	else if (is(root, "VALUE"))
		rc = parse_wrapped(root, wrap, out);
	else
		rc = xerr(root, "root element <%s>, expected <INSTANCE> (or <VALUE> around it)",
			  ename(root));
	xmlFreeDoc(doc);
	return rc;
}

int cim_xml_parse(const char *text, size_t len, struct cim_instance **out)
{
	if (len > INT_MAX)
		return hv_err(HV_EINVAL, "embedded instance: line 1: too large");
	return parse_text(text, len, 0, out);
}
