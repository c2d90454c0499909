/*
 * cim_instance — the embedded-instance value: building, lookup, freeing, the CIM-XML writer
 * (the shape .NET GetText(CimDtd20) produces) and the entry point that routes text to the
 * CIM-XML (cim_xml.c) or MOF (cim_mof.c) reader.
 *
 * Must not: decide which properties a class may carry or coerce values to a schema; the provider
 * does that with the per-property type and text kept here.
 */
#include "cim_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- building -------------------------------------------------------------------------------*/

int cim_instance_new(const char *class_name, struct cim_instance **out)
{
	*out = NULL;
	if (!class_name || !*class_name)
		return hv_err(HV_EINVAL, "embedded instance: empty class name");
	struct cim_instance *inst = calloc(1, sizeof *inst);
	if (!inst || !(inst->class_name = cim_strdup(class_name))) {
		free(inst);
		return hv_err(HV_ENOMEM, "embedded instance: out of memory");
	}
	*out = inst;
	return 0;
}

void cim_prop_clear(struct cim_prop *p)
{
	for (size_t i = 0; i < p->nvalues; i++)
		free(p->values[i]);
	free(p->values);
	free(p->name);
	memset(p, 0, sizeof *p);
}

void cim_instance_free(struct cim_instance *inst)
{
	if (!inst)
		return;
	for (size_t i = 0; i < inst->nprops; i++)
		cim_prop_clear(&inst->props[i]);
	free(inst->props);
	free(inst->class_name);
	free(inst);
}

static struct cim_prop *find_prop(const struct cim_instance *inst, const char *name)
{
	for (size_t i = 0; i < inst->nprops; i++)
		if (cim_ieq(inst->props[i].name, name))
			return &inst->props[i];
	return NULL;
}

int cim_instance_take_prop(struct cim_instance *inst, struct cim_prop *p)
{
	if (find_prop(inst, p->name)) {
		int rc = hv_err(HV_EINVAL, "duplicate property %s", p->name);
		cim_prop_clear(p);
		return rc;
	}
	struct cim_prop *props = realloc(inst->props, (inst->nprops + 1) * sizeof *props);
	if (!props) {
		cim_prop_clear(p);
		return hv_err(HV_ENOMEM, "embedded instance: out of memory");
	}
	inst->props = props;
	props[inst->nprops++] = *p;
	memset(p, 0, sizeof *p);
	return 0;
}

/* Fills `p` with copies; on failure frees what it built. */
static int build_prop(struct cim_prop *p, const char *name, enum cim_type type, bool is_array,
		      const char *const *values, size_t n)
{
	memset(p, 0, sizeof *p);
	if (!cim_type_name(type))
		return hv_err(HV_EINVAL, "embedded instance: property %s: bad type %d", name,
			      (int)type);
	p->type = type;
	p->is_array = is_array;
	p->is_null = !values;
	if (!(p->name = cim_strdup(name)) || (n && !(p->values = calloc(n, sizeof(char *)))))
		goto oom;
	for (; p->nvalues < n; p->nvalues++)
		if (!values[p->nvalues] || !(p->values[p->nvalues] = cim_strdup(values[p->nvalues])))
			goto oom;
	return 0;
oom:
	cim_prop_clear(p);
	return hv_err(HV_ENOMEM, "embedded instance: out of memory or NULL array element");
}

static int set_prop(struct cim_instance *inst, const char *name, enum cim_type type,
		    bool is_array, const char *const *values, size_t n)
{
	struct cim_prop np;
	if (!name || !*name)
		return hv_err(HV_EINVAL, "embedded instance: empty property name");
	int rc = build_prop(&np, name, type, is_array, values, n);
	if (rc)
		return rc;
	struct cim_prop *old = find_prop(inst, name);
	if (!old)
		return cim_instance_take_prop(inst, &np);
	cim_prop_clear(old);
	*old = np;
	return 0;
}

int cim_instance_set(struct cim_instance *inst, const char *name, enum cim_type type,
		     const char *value)
{
	return set_prop(inst, name, type, false, value ? &value : NULL, value ? 1 : 0);
}

int cim_instance_set_array(struct cim_instance *inst, const char *name, enum cim_type type,
			   const char *const *values, size_t n)
{
	if (!values && n)
		return hv_err(HV_EINVAL, "embedded instance: %zu values but no array", n);
	return set_prop(inst, name, type, true, values, n);
}

const struct cim_prop *cim_instance_prop(const struct cim_instance *inst, const char *name)
{
	return find_prop(inst, name);
}

const char *cim_instance_get(const struct cim_instance *inst, const char *name)
{
	const struct cim_prop *p = find_prop(inst, name);
	if (!p || p->is_array || p->is_null || p->nvalues != 1)
		return NULL;
	return p->values[0];
}

/* ---- parse entry ----------------------------------------------------------------------------*/

int cim_instance_parse(const char *text, size_t len, struct cim_instance **out)
{
	*out = NULL;
	if (!text)
		return hv_err(HV_EINVAL, "embedded instance: line 1: NULL text");
	if (len > CIM_INSTANCE_MAX)
		return hv_err(HV_EINVAL, "embedded instance: line 1: %zu bytes, more than the %u "
					 "allowed", len, CIM_INSTANCE_MAX);
	if (memchr(text, 0, len))
		return hv_err(HV_EINVAL, "embedded instance: line 1: NUL byte in text");
	char *copy = cim_strndup(text, len);
	if (!copy)
		return hv_err(HV_ENOMEM, "embedded instance: out of memory");
	const char *s = copy;
	if (!strncmp(s, "\xEF\xBB\xBF", 3))
		s += 3;
	while (cim_is_space(*s))
		s++;
	int rc;
	if (*s == '<')
		rc = cim_xml_parse(copy, len, out);
	else if (*s)
		rc = cim_mof_parse(copy, len, out);
	else
		rc = hv_err(HV_EINVAL, "embedded instance: line 1: empty text");
	free(copy);
	return rc;
}

/* ---- CIM-XML writer -------------------------------------------------------------------------*/

/* U+FFFE or U+FFFF (EF BF BE / EF BF BF) at s. */
static bool is_nonchar(const unsigned char *s, const unsigned char *end)
{
	return end - s >= 3 && s[0] == 0xEF && s[1] == 0xBF && (s[2] == 0xBE || s[2] == 0xBF);
}

/* XML 1.0 cannot carry C0 controls other than tab, LF and CR, U+FFFE, U+FFFF or broken UTF-8,
 * not even as character references. */
static bool xml_escape_n(struct cim_sb *b, const char *s, size_t n)
{
	if (cim_utf8_check(s, n) != n)
		return false;
	for (const char *end = s + n; s < end; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') ||
		    is_nonchar((const unsigned char *)s, (const unsigned char *)end))
			return false;
		switch (c) {
		case '&': cim_sb_adds(b, "&amp;"); break;
		case '<': cim_sb_adds(b, "&lt;"); break;
		case '>': cim_sb_adds(b, "&gt;"); break;
		case '"': cim_sb_adds(b, "&quot;"); break;
		case '\r': cim_sb_adds(b, "&#13;"); break;
		default: cim_sb_addc(b, (char)c);
		}
	}
	return true;
}

static bool xml_escape(struct cim_sb *b, const char *s) { return xml_escape_n(b, s, strlen(s)); }

static int ctl_err(const char *prop)
{
	return hv_err(HV_EINVAL, "embedded instance: property %s: a value holds a control "
				 "character or invalid UTF-8 that XML 1.0 cannot carry", prop);
}

static bool add_elem_text(struct cim_sb *b, const char *tag, const char *text)
{
	cim_sb_addf(b, "<%s>", tag);
	bool ok = xml_escape(b, text);
	cim_sb_addf(b, "</%s>", tag);
	return ok;
}

static void add_localns(struct cim_sb *b, const char *ns)
{
	cim_sb_adds(b, "<LOCALNAMESPACEPATH>");
	while (*ns) {
		size_t n = strcspn(ns, "\\/");
		cim_sb_adds(b, "<NAMESPACE NAME=\"");
		xml_escape_n(b, ns, n);
		cim_sb_adds(b, "\"/>");
		ns += n;
		if (*ns)
			ns++;
	}
	cim_sb_adds(b, "</LOCALNAMESPACEPATH>");
}

static bool add_keyvalue(struct cim_sb *b, const struct cim_key *k)
{
	const char *vt = k->quoted ? "string"
			 : (cim_ieq(k->value, "true") || cim_ieq(k->value, "false")) ? "boolean"
										: "numeric";
	cim_sb_addf(b, "<KEYVALUE VALUETYPE=\"%s\">", vt);
	bool ok = xml_escape(b, k->value);
	cim_sb_adds(b, "</KEYVALUE>");
	return ok;
}

static bool add_instancename(struct cim_sb *b, const struct cim_path *p)
{
	bool ok = true;
	cim_sb_adds(b, "<INSTANCENAME CLASSNAME=\"");
	xml_escape(b, p->class_name);
	cim_sb_adds(b, "\">");
	for (size_t i = 0; i < p->nkeys; i++) {
		if (*p->keys[i].name) {
			cim_sb_adds(b, "<KEYBINDING NAME=\"");
			xml_escape(b, p->keys[i].name);
			cim_sb_adds(b, "\">");
		}
		ok = add_keyvalue(b, &p->keys[i]) && ok;
		if (*p->keys[i].name)
			cim_sb_adds(b, "</KEYBINDING>");
	}
	cim_sb_adds(b, "</INSTANCENAME>");
	return ok;
}

/* VALUE.REFERENCE for a path: INSTANCEPATH / LOCALINSTANCEPATH / INSTANCENAME (or the CLASS*
 * forms for a key-less, non-singleton path). */
static bool add_reference(struct cim_sb *b, const struct cim_path *p)
{
	bool is_class = !p->nkeys && !p->singleton;
	bool ok = true;
	cim_sb_adds(b, "<VALUE.REFERENCE>");
	if (p->ns)
		cim_sb_adds(b, p->host ? (is_class ? "<CLASSPATH>" : "<INSTANCEPATH>")
				       : (is_class ? "<LOCALCLASSPATH>" : "<LOCALINSTANCEPATH>"));
	if (p->ns && p->host) {
		cim_sb_adds(b, "<NAMESPACEPATH>");
		ok = add_elem_text(b, "HOST", p->host);
	}
	if (p->ns)
		add_localns(b, p->ns);
	if (p->ns && p->host)
		cim_sb_adds(b, "</NAMESPACEPATH>");
	if (is_class) {
		cim_sb_adds(b, "<CLASSNAME NAME=\"");
		xml_escape(b, p->class_name);
		cim_sb_adds(b, "\"/>");
	} else {
		ok = add_instancename(b, p) && ok;
	}
	if (p->ns)
		cim_sb_adds(b, p->host ? (is_class ? "</CLASSPATH>" : "</INSTANCEPATH>")
				       : (is_class ? "</LOCALCLASSPATH>" : "</LOCALINSTANCEPATH>"));
	cim_sb_adds(b, "</VALUE.REFERENCE>");
	return ok;
}

static int add_ref_prop(struct cim_sb *b, const struct cim_prop *p)
{
	struct cim_path *path = NULL;
	if (p->is_array)
		return hv_err(HV_EINVAL, "embedded instance: property %s: reference arrays have "
					 "no CIM-XML DTD 2.0 PROPERTY form", p->name);
	if (!p->is_null && cim_path_parse(p->values[0], &path))
		return hv_err_prefix(HV_EINVAL, "embedded instance: property %s", p->name);
	cim_sb_adds(b, "<PROPERTY.REFERENCE NAME=\"");
	xml_escape(b, p->name);
	cim_sb_adds(b, "\">");
	bool ok = !path || add_reference(b, path);
	cim_path_free(path);
	cim_sb_adds(b, "</PROPERTY.REFERENCE>");
	return ok ? 0 : ctl_err(p->name);
}

static int add_prop(struct cim_sb *b, const struct cim_prop *p)
{
	if (p->type == CIM_TYPE_REFERENCE)
		return add_ref_prop(b, p);
	const char *tag = p->is_array ? "PROPERTY.ARRAY" : "PROPERTY";
	bool ok = true;
	cim_sb_addf(b, "<%s NAME=\"", tag);
	ok = xml_escape(b, p->name);
	cim_sb_addf(b, "\" TYPE=\"%s\">", cim_type_name(p->type));
	if (p->is_array && !p->is_null)
		cim_sb_adds(b, "<VALUE.ARRAY>");
	for (size_t i = 0; i < p->nvalues; i++)
		ok = add_elem_text(b, "VALUE", p->values[i]) && ok;
	if (p->is_array && !p->is_null)
		cim_sb_adds(b, "</VALUE.ARRAY>");
	cim_sb_addf(b, "</%s>", tag);
	return ok ? 0 : ctl_err(p->name);
}

char *cim_instance_to_xml(const struct cim_instance *inst)
{
	struct cim_sb b = {0};
	int rc = 0;
	cim_sb_adds(&b, "<INSTANCE CLASSNAME=\"");
	if (!xml_escape(&b, inst->class_name))
		rc = hv_err(HV_EINVAL, "embedded instance: class name holds a control character "
				       "or invalid UTF-8");
	cim_sb_adds(&b, "\">");
	for (size_t i = 0; i < inst->nprops && !rc; i++) {
		if (!cim_type_name(inst->props[i].type))
			rc = hv_err(HV_EINVAL, "embedded instance: property %s: bad type %d",
				    inst->props[i].name, (int)inst->props[i].type);
		else
			rc = add_prop(&b, &inst->props[i]);
	}
	cim_sb_adds(&b, "</INSTANCE>");
	if (rc) {
		cim_sb_discard(&b);
		return NULL;
	}
	return cim_sb_finish(&b);
}
