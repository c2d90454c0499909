/*
 * ehost.c — the engine's WMI conversation with a host (see ehost.h).
 *
 * Must not: depend on the simulator; poll a job forever (EH_MAX_POLLS); trust array shapes from
 * the host without checking them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ehost.h"

#define EH_MAX_POLLS 100000

struct eh_host {
	struct wmi_conn *c;
	char snapsvc[512], rpsvc[512], vsms[512], ims[512];
	unsigned polls;
};

struct wmi_conn *eh_conn(struct eh_host *h) { return h->c; }
unsigned eh_last_polls(const struct eh_host *h) { return h->polls; }

static int wmi_fail(int r, uint32_t hr, const char *what)
{
	return hv_err_prefix(r ? r : HV_EIO, "%s (0x%08X %s)", what, hr, cim_wbem_name(hr));
}

/* Exactly one instance of a singleton service class. */
static int service(struct eh_host *h, const char *cls, char *out, size_t size)
{
	char wql[128];
	snprintf(wql, sizeof wql, "SELECT * FROM %s", cls);
	struct wmi_result res;
	uint32_t hr;
	int r = wmi_exec_query(h->c, wql, &res, &hr);
	if (r)
		return wmi_fail(r, hr, wql);
	if (res.n != 1)
		r = hv_err(HV_ECORRUPT, "%s: %zu instances, expected exactly one", cls, res.n);
	else
		snprintf(out, size, "%s", res.v[0].path);
	wmi_result_clear(&res);
	return r;
}

int eh_open(const char *target, struct eh_host **out)
{
	struct eh_host *h = calloc(1, sizeof *h);
	if (!h)
		return hv_err(HV_ENOMEM, "out of memory");
	int r = wmi_connect(target, &h->c);
	if (!r)
		r = service(h, "Msvm_VirtualSystemSnapshotService", h->snapsvc, sizeof h->snapsvc);
	if (!r)
		r = service(h, "Msvm_VirtualSystemReferencePointService", h->rpsvc, sizeof h->rpsvc);
	if (!r)
		r = service(h, "Msvm_VirtualSystemManagementService", h->vsms, sizeof h->vsms);
	if (!r)
		r = service(h, "Msvm_ImageManagementService", h->ims, sizeof h->ims);
	if (r) {
		eh_close(h);
		return hv_err_prefix(r, "host %s", target);
	}
	*out = h;
	return 0;
}

void eh_close(struct eh_host *h)
{
	if (!h)
		return;
	wmi_disconnect(h->c);
	free(h);
}

/* WQL string literal with WMI's escapes (\ and '). */
static void wql_quote(const char *s, char *out, size_t size)
{
	size_t k = 0;
	for (; *s && k + 3 < size; s++) {
		if (*s == '\\' || *s == '\'')
			out[k++] = '\\';
		out[k++] = *s;
	}
	out[k] = 0;
}

int eh_find_vm(struct eh_host *h, const char *name, struct eh_vm *vm)
{
	char q[300], wql[400];
	wql_quote(name, q, sizeof q);
	snprintf(wql, sizeof wql, "SELECT * FROM Msvm_ComputerSystem WHERE ElementName='%s' AND Caption='Virtual Machine'", q);
	struct wmi_result res;
	uint32_t hr;
	int r = wmi_exec_query(h->c, wql, &res, &hr);
	if (r)
		return wmi_fail(r, hr, "looking up the VM");
	if (res.n == 0)
		r = hv_err(HV_ENOTFOUND, "no VM named '%s' on the host", name);
	else if (res.n > 1)
		r = hv_err(HV_EINVAL, "%zu VMs are named '%s'; names must be unique to back up by name", res.n, name);
	else {
		memset(vm, 0, sizeof *vm);
		snprintf(vm->path, sizeof vm->path, "%s", res.v[0].path);
		snprintf(vm->guid, sizeof vm->guid, "%s", cim_instance_get(res.v[0].inst, "Name"));
		snprintf(vm->name, sizeof vm->name, "%s", name);
	}
	wmi_result_clear(&res);
	return r;
}

static int has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcasecmp(s + a - b, suf);
}

int eh_settings_disks(struct eh_host *h, const char *vssd_path, struct eh_disk **disks, size_t *n)
{
	*disks = NULL;
	*n = 0;
	char *wql;
	if (asprintf(&wql, "ASSOCIATORS OF {%s} WHERE ResultClass=Msvm_StorageAllocationSettingData"
			   " AssocClass=Msvm_VirtualSystemSettingDataComponent", vssd_path) < 0)
		return hv_err(HV_ENOMEM, "out of memory");
	struct wmi_result res;
	uint32_t hr;
	int r = wmi_exec_query(h->c, wql, &res, &hr);
	free(wql);
	if (r)
		return wmi_fail(r, hr, "listing the disks");
	struct eh_disk *v = calloc(res.n ? res.n : 1, sizeof *v);
	if (!v) {
		wmi_result_clear(&res);
		return hv_err(HV_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < res.n; i++) {
		const struct cim_instance *in = res.v[i].inst;
		const char *rt = cim_instance_get(in, "ResourceType"), *st = cim_instance_get(in, "ResourceSubType");
		const struct cim_prop *hrp = cim_instance_prop(in, "HostResource");
		if (!rt || strcmp(rt, "31") || !st || strcmp(st, "Microsoft:Hyper-V:Virtual Hard Disk") || !hrp ||
		    hrp->is_null || hrp->nvalues < 1)
			continue;
		const char *file = hrp->values[0];
		if (!has_suffix(file, ".vhdx") && !has_suffix(file, ".avhdx"))
			continue; /* ISO, VHD: not backed up through RCT */
		snprintf(v[*n].instance_id, sizeof v[*n].instance_id, "%s", cim_instance_get(in, "InstanceID"));
		snprintf(v[*n].host_resource, sizeof v[*n].host_resource, "%s", file);
		(*n)++;
	}
	wmi_result_clear(&res);
	*disks = v;
	return 0;
}

int eh_active_settings(struct eh_host *h, const struct eh_vm *vm, char *out, size_t size)
{
	char *wql;
	if (asprintf(&wql, "ASSOCIATORS OF {%s} WHERE ResultClass=Msvm_VirtualSystemSettingData"
			   " AssocClass=Msvm_SettingsDefineState", vm->path) < 0)
		return hv_err(HV_ENOMEM, "out of memory");
	struct wmi_result res;
	uint32_t hr;
	int r = wmi_exec_query(h->c, wql, &res, &hr);
	free(wql);
	if (r)
		return wmi_fail(r, hr, "reading the VM's settings");
	if (res.n != 1)
		r = hv_err(HV_ECORRUPT, "VM %s: %zu active settings objects, expected one", vm->name, res.n);
	else
		snprintf(out, size, "%s", res.v[0].path);
	wmi_result_clear(&res);
	return r;
}

void eh_free_strings(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int paths_of(struct eh_host *h, const char *wql, const char *filter_prop, const char *filter_value,
		    char ***paths, size_t *n)
{
	struct wmi_result res;
	uint32_t hr;
	*paths = NULL;
	*n = 0;
	int r = wmi_exec_query(h->c, wql, &res, &hr);
	if (r)
		return wmi_fail(r, hr, wql);
	char **v = calloc(res.n ? res.n : 1, sizeof *v);
	if (!v) {
		wmi_result_clear(&res);
		return hv_err(HV_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < res.n; i++) {
		const char *t = filter_prop ? cim_instance_get(res.v[i].inst, filter_prop) : NULL;
		if (filter_prop && (!t || strcmp(t, filter_value)))
			continue;
		v[(*n)++] = strdup(res.v[i].path);
	}
	wmi_result_clear(&res);
	*paths = v;
	return 0;
}

int eh_recovery_checkpoints(struct eh_host *h, const struct eh_vm *vm, char ***paths, size_t *n)
{
	char *wql;
	if (asprintf(&wql, "ASSOCIATORS OF {%s} WHERE ResultClass=CIM_VirtualSystemSettingData"
			   " AssocClass=Msvm_SnapshotOfVirtualSystem", vm->path) < 0)
		return hv_err(HV_ENOMEM, "out of memory");
	int r = paths_of(h, wql, "VirtualSystemType", "Microsoft:Hyper-V:Snapshot:Recovery", paths, n);
	free(wql);
	return r;
}

int eh_reference_points(struct eh_host *h, const struct eh_vm *vm, char ***paths, size_t *n)
{
	char *wql;
	if (asprintf(&wql, "ASSOCIATORS OF {%s} WHERE ResultClass=Msvm_VirtualSystemReferencePoint"
			   " AssocClass=Msvm_ReferencePointOfVirtualSystem", vm->path) < 0)
		return hv_err(HV_ENOMEM, "out of memory");
	int r = paths_of(h, wql, NULL, NULL, paths, n);
	free(wql);
	return r;
}

/* ---- methods and jobs ------------------------------------------------------------------------- */

static void append(char *buf, size_t size, const char *fmt, const char *a)
{
	size_t k = strlen(buf);
	if (k < size)
		snprintf(buf + k, size - k, fmt, a);
}

/* The reasons a job failed: ErrorCode, ErrorDescription and every GetErrorEx message. */
static int job_failure(struct eh_host *h, const char *method, const struct wmi_object *job, uint64_t state)
{
	char why[2048] = "";
	const char *code = cim_instance_get(job->inst, "ErrorCode"), *desc = cim_instance_get(job->inst, "ErrorDescription");
	struct cim_instance *out = NULL;
	uint32_t hr;
	if (!wmi_exec_method(h->c, job->path, "GetErrorEx", NULL, &out, &hr)) {
		const struct cim_prop *e = cim_instance_prop(out, "Errors");
		for (size_t i = 0; e && !e->is_null && i < e->nvalues; i++) {
			struct cim_instance *err;
			if (!cim_instance_parse(e->values[i], strlen(e->values[i]), &err)) {
				const char *m = cim_instance_get(err, "Message");
				if (m && (!desc || strcmp(m, desc)))
					append(why, sizeof why, "; %s", m);
				cim_instance_free(err);
			}
		}
		cim_instance_free(out);
	}
	return hv_err(HV_EIO, "%s: job ended %s (%llu), ErrorCode %s: %s%s", method,
		      cim_job_state_text((uint32_t)state), (unsigned long long)state, code ? code : "?",
		      desc && *desc ? desc : "(no description)", why);
}

int eh_call(struct eh_host *h, const char *path, const char *method, const struct cim_instance *in,
	    const char *result_class, const char *result_param, char *result, size_t result_size)
{
	struct cim_instance *out = NULL;
	uint32_t hr;
	h->polls = 0;
	if (result && result_size)
		result[0] = 0;
	int r = wmi_exec_method(h->c, path, method, in, &out, &hr);
	if (r)
		return wmi_fail(r, hr, method);
	uint64_t rv = 0;
	const char *t = cim_instance_get(out, "ReturnValue");
	if (!t || cim_value_uint(t, UINT32_MAX, &rv)) {
		cim_instance_free(out);
		return hv_err(HV_ECORRUPT, "%s: no ReturnValue", method);
	}
	if (rv == 0) { /* synchronous */
		const char *res = result_param ? cim_instance_get(out, result_param) : NULL;
		if (result && res)
			snprintf(result, result_size, "%s", res);
		cim_instance_free(out);
		return 0;
	}
	if (rv != CIM_RC_JOB_STARTED) {
		r = hv_err(HV_EIO, "%s returned %llu", method, (unsigned long long)rv);
		cim_instance_free(out);
		return r;
	}
	char job[512];
	const char *j = cim_instance_get(out, "Job");
	snprintf(job, sizeof job, "%s", j ? j : "");
	cim_instance_free(out);
	if (!*job)
		return hv_err(HV_ECORRUPT, "%s returned 4096 without a Job", method);
	for (;;) {
		struct wmi_object o;
		if ((r = wmi_get_object(h->c, job, &o, &hr)))
			return wmi_fail(r, hr, "polling the job");
		h->polls++;
		uint64_t st = 0, ec = 0;
		cim_value_uint(cim_instance_get(o.inst, "JobState") ?: "0", 65535, &st);
		cim_value_uint(cim_instance_get(o.inst, "ErrorCode") ?: "0", 65535, &ec);
		if (cim_job_state_is_terminal((uint32_t)st)) {
			if (!cim_job_state_is_success((uint32_t)st) || ec)
				r = job_failure(h, method, &o, st);
			wmi_object_clear(&o);
			break;
		}
		wmi_object_clear(&o);
		if (h->polls >= EH_MAX_POLLS)
			return hv_err(HV_EIO, "%s: job %s still not finished after %u polls", method, job, h->polls);
	}
	if (r || !result_class)
		return r;
	char *wql;
	if (asprintf(&wql, "ASSOCIATORS OF {%s} WHERE ResultClass=%s", job, result_class) < 0)
		return hv_err(HV_ENOMEM, "out of memory");
	struct wmi_result res;
	r = wmi_exec_query(h->c, wql, &res, &hr);
	free(wql);
	if (r)
		return wmi_fail(r, hr, "reading the job's result");
	if (res.n != 1)
		r = hv_err(HV_ECORRUPT, "%s: the job has %zu %s results, expected exactly one", method, res.n, result_class);
	else if (result)
		snprintf(result, result_size, "%s", res.v[0].path);
	wmi_result_clear(&res);
	return r;
}

static struct cim_instance *params(void)
{
	struct cim_instance *p = NULL;
	cim_instance_new("__PARAMETERS", &p);
	return p;
}

int eh_create_recovery_checkpoint(struct eh_host *h, const struct eh_vm *vm, int consistency, char *snapshot,
				  size_t size)
{
	struct cim_instance *in = params(), *sd = NULL;
	char lvl[8];
	snprintf(lvl, sizeof lvl, "%d", consistency);
	char *xml = NULL;
	int r = (in && !cim_instance_new("Msvm_VirtualSystemSnapshotSettingData", &sd)) ? 0 : hv_err(HV_ENOMEM, "out of memory");
	if (!r)
		r = cim_instance_set(sd, "ConsistencyLevel", CIM_TYPE_UINT8, lvl);
	if (!r)
		r = cim_instance_set(sd, "IgnoreNonSnapshottableDisks", CIM_TYPE_BOOLEAN, "TRUE");
	if (!r && !(xml = cim_instance_to_xml(sd)))
		r = HV_ENOMEM;
	if (!r)
		r = cim_instance_set(in, "AffectedSystem", CIM_TYPE_REFERENCE, vm->path);
	if (!r)
		r = cim_instance_set(in, "SnapshotSettings", CIM_TYPE_STRING, xml);
	if (!r)
		r = cim_instance_set(in, "SnapshotType", CIM_TYPE_UINT16, "32768");
	if (!r)
		r = eh_call(h, h->snapsvc, "CreateSnapshot", in, "Msvm_VirtualSystemSettingData", "ResultingSnapshot", snapshot,
			    size);
	free(xml);
	cim_instance_free(sd);
	cim_instance_free(in);
	return r;
}

static int one_ref_call(struct eh_host *h, const char *svc, const char *method, const char *param, const char *ref,
			const char *result_class, const char *result_param, char *result, size_t size)
{
	struct cim_instance *in = params();
	int r = in ? cim_instance_set(in, param, CIM_TYPE_REFERENCE, ref) : hv_err(HV_ENOMEM, "out of memory");
	if (!r)
		r = eh_call(h, svc, method, in, result_class, result_param, result, size);
	cim_instance_free(in);
	return r;
}

int eh_destroy_snapshot(struct eh_host *h, const char *snapshot)
{
	return one_ref_call(h, h->snapsvc, "DestroySnapshot", "AffectedSnapshot", snapshot, NULL, NULL, NULL, 0);
}

int eh_convert_to_reference_point(struct eh_host *h, const char *snapshot, char *rp, size_t size)
{
	return one_ref_call(h, h->snapsvc, "ConvertToReferencePoint", "AffectedSnapshot", snapshot,
			    "Msvm_VirtualSystemReferencePoint", "ResultingReferencePoint", rp, size);
}

int eh_destroy_reference_point(struct eh_host *h, const char *rp)
{
	return one_ref_call(h, h->rpsvc, "DestroyReferencePoint", "AffectedReferencePoint", rp, NULL, NULL, NULL, 0);
}

void eh_refpoint_clear(struct eh_refpoint *rp)
{
	eh_free_strings(rp->disk_ids, rp->ndisks);
	eh_free_strings(rp->rct_ids, rp->ndisks);
	memset(rp, 0, sizeof *rp);
}

int eh_get_reference_point(struct eh_host *h, const char *path, struct eh_refpoint *rp)
{
	memset(rp, 0, sizeof *rp);
	struct wmi_object o;
	uint32_t hr;
	int r = wmi_get_object(h->c, path, &o, &hr);
	if (r)
		return hr == WBEM_E_NOT_FOUND ? hv_err(HV_ENOTFOUND, "reference point %s is gone from the host", path)
					      : wmi_fail(r, hr, "reading the reference point");
	const struct cim_prop *d = cim_instance_prop(o.inst, "VirtualDiskIdentifiers");
	const struct cim_prop *c = cim_instance_prop(o.inst, "ResilientChangeTrackingIdentifiers");
	const char *type = cim_instance_get(o.inst, "ReferencePointType");
	if (!type || strcmp(type, "2"))
		r = hv_err(HV_ECORRUPT, "reference point %s: ReferencePointType %s, expected 2 (RCT)", path, type ? type : "NULL");
	else if (!d || !c || d->is_null || c->is_null || d->nvalues != c->nvalues)
		r = hv_err(HV_ECORRUPT, "reference point %s: VirtualDiskIdentifiers and ResilientChangeTrackingIdentifiers"
					" are not parallel", path);
	if (!r) {
		rp->ndisks = d->nvalues;
		rp->disk_ids = calloc(d->nvalues ? d->nvalues : 1, sizeof *rp->disk_ids);
		rp->rct_ids = calloc(d->nvalues ? d->nvalues : 1, sizeof *rp->rct_ids);
		if (!rp->disk_ids || !rp->rct_ids)
			r = hv_err(HV_ENOMEM, "out of memory");
		/* an empty RCT id is legal: that disk had change tracking off when the point was made;
		 * the caller treats it as "no id" (a full of that disk next time) */
		for (size_t i = 0; !r && i < d->nvalues; i++) {
			rp->disk_ids[i] = strdup(d->values[i]);
			rp->rct_ids[i] = strdup(c->values[i]);
		}
		snprintf(rp->path, sizeof rp->path, "%s", o.path);
		snprintf(rp->instance_id, sizeof rp->instance_id, "%s", cim_instance_get(o.inst, "InstanceID") ?: "");
	}
	wmi_object_clear(&o);
	if (r)
		eh_refpoint_clear(rp);
	return r;
}
