/* wmi_internal — what the sim/wmi files share: the schema tables, the provider handle, helpers. */
#ifndef HVSIM_WMI_INTERNAL_H
#define HVSIM_WMI_INTERNAL_H

#include <sqlite3.h>
#include <stdbool.h>

#include "wmi.h"

struct host;

/* A property of a class. `expr` is the SQL expression (over the class's source) that yields
 * its value: TEXT for strings/datetimes/references, INTEGER for integers and booleans (0/1),
 * a JSON array text for arrays. NULL expr = the property exists but is always NULL. */
struct wmi_prop {
	const char *name;
	enum cim_type type;
	bool array;
	bool key;
	const char *expr;
};

/* A class. Concrete classes have a `source` (a SQL SELECT whose columns the exprs use) and become
 * a temporary view named after the class with one column per property plus __PATH and __RELPATH.
 * Abstract (CIM_*) classes have no source and no properties of their own here: queries on them
 * cover their concrete descendants. Embedded-only classes have props but `source` "" (no rows). */
struct wmi_class {
	const char *name;
	const char *super;
	const char *source;
	const struct wmi_prop *props;
	size_t nprops;
	bool association;
};

const struct wmi_class *wmi_class_find(const char *name);
/* True when `cls` is `ancestor` or descends from it (names case-insensitive). */
bool wmi_class_isa(const char *cls, const char *ancestor);
/* Calls cb for every concrete class (with a view) that isa `name`, in schema order. */
size_t wmi_class_count(void);
const struct wmi_class *wmi_class_at(size_t i);
const struct wmi_prop *wmi_class_prop(const struct wmi_class *c, const char *name);

struct hvsim_wmi {
	struct host *h;
	sqlite3 *db;
	char host_name[64];
	char prefix[128]; /* "\\HVSIM-HOST\root\virtualization\v2:" */
	bool strict;
};

/* Creates the provider's tables (if missing), SQL functions and temporary views. */
int wmi_schema_install(struct hvsim_wmi *w);
void wmi_schema_uninstall(struct hvsim_wmi *w);

/* Canonical full path of a parsed path (class and key names in schema spelling). HV_EINVAL when
 * the keys do not match the class's keys; HV_ENOTFOUND for an unknown class. malloc'd. */
int wmi_path_canon(struct hvsim_wmi *w, const char *text, char **out, const struct wmi_class **cls);

/* Reads one object of class `c` whose __PATH is `canon` (already canonical). HV_ENOTFOUND when
 * absent. */
int wmi_fetch(struct hvsim_wmi *w, const struct wmi_class *c, const char *canon, struct wmi_object *out);
/* Builds an object from the current row of a statement over a class view (columns: props in
 * schema order, then __PATH, __RELPATH). */
int wmi_row_object(const struct wmi_class *c, sqlite3_stmt *st, struct wmi_object *out);

/* ---- jobs (wmi_jobs.c) ------------------------------------------------------------------------ */
int wmi_jobs_expire(struct hvsim_wmi *w);
/* One poll of a job (by InstanceID): advance its trajectory, run the work on completion. */
int wmi_job_poll(struct hvsim_wmi *w, const char *instance_id);

/* ---- audit ---------------------------------------------------------------------------------- */
int wmi_audit(struct hvsim_wmi *w, const char *call, const char *args, uint32_t hresult, const char *result,
	      const char *mistake);

#endif
