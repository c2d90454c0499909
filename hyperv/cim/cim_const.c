/*
 * cim_const — the numbers WMI clients branch on, with their documented text: WBEM HRESULT
 * names, method return codes of families A and B (wmi-backup.md 1.3), Msvm_ConcreteJob states
 * (1.2/1.4), and the CIM type names and value-text checks (CIM-XML TYPE attribute spelling).
 *
 * Must not: decide what a code means for a particular method (the provider picks codes; this
 * file only names them).
 */
#include "cim_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- WBEM HRESULTs --------------------------------------------------------------------------*/

const char *cim_wbem_name(uint32_t hr)
{
	static const struct {
		uint32_t hr;
		const char *name;
	} names[] = {
		{WBEM_S_NO_ERROR, "WBEM_S_NO_ERROR"},
		{WBEM_E_FAILED, "WBEM_E_FAILED"},
		{WBEM_E_NOT_FOUND, "WBEM_E_NOT_FOUND"},
		{WBEM_E_ACCESS_DENIED, "WBEM_E_ACCESS_DENIED"},
		{WBEM_E_TYPE_MISMATCH, "WBEM_E_TYPE_MISMATCH"},
		{WBEM_E_OUT_OF_MEMORY, "WBEM_E_OUT_OF_MEMORY"},
		{WBEM_E_INVALID_PARAMETER, "WBEM_E_INVALID_PARAMETER"},
		{WBEM_E_NOT_SUPPORTED, "WBEM_E_NOT_SUPPORTED"},
		{WBEM_E_INVALID_NAMESPACE, "WBEM_E_INVALID_NAMESPACE"},
		{WBEM_E_INVALID_OBJECT, "WBEM_E_INVALID_OBJECT"},
		{WBEM_E_INVALID_CLASS, "WBEM_E_INVALID_CLASS"},
		{WBEM_E_INVALID_QUERY, "WBEM_E_INVALID_QUERY"},
		{WBEM_E_INVALID_QUERY_TYPE, "WBEM_E_INVALID_QUERY_TYPE"},
		{WBEM_E_ALREADY_EXISTS, "WBEM_E_ALREADY_EXISTS"},
		{WBEM_E_INVALID_SYNTAX, "WBEM_E_INVALID_SYNTAX"},
		{WBEM_E_PROVIDER_NOT_CAPABLE, "WBEM_E_PROVIDER_NOT_CAPABLE"},
		{WBEM_E_INVALID_METHOD, "WBEM_E_INVALID_METHOD"},
		{WBEM_E_INVALID_METHOD_PARAMETERS, "WBEM_E_INVALID_METHOD_PARAMETERS"},
		{WBEM_E_INVALID_OBJECT_PATH, "WBEM_E_INVALID_OBJECT_PATH"},
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].hr == hr)
			return names[i].name;
	return NULL;
}

/* ---- return codes ---------------------------------------------------------------------------*/

/* CIM_VirtualSystemSnapshotService-style ValueMap: 0..6, 7..4095 DMTF Reserved, 4096,
 * 4097..32767 Method Reserved, 32768..65535 Vendor Specific. */
static const char *rc_text_a(uint32_t code)
{
	static const char *const low[] = {"Completed with No Error", "Not Supported", "Failed",
					  "Timeout", "Invalid Parameter", "Invalid State",
					  "Invalid Type"};
	if (code < sizeof low / sizeof low[0])
		return low[code];
	if (code == CIM_RC_JOB_STARTED)
		return "Method Parameters Checked - Job Started";
	if (code < CIM_RC_JOB_STARTED)
		return "DMTF Reserved";
	if (code < 32768)
		return "Method Reserved";
	if (code <= 65535)
		return "Vendor Specific";
	return "Unknown";
}

/* Msvm-style: 0, 4096 and 32768..32779 are the documented values. */
static const char *rc_text_b(uint32_t code)
{
	static const char *const vendor[] = {
		"Failed",           "Access Denied",
		"Not Supported",    "Status is unknown",
		"Timeout",          "Invalid parameter",
		"System is in use", "Invalid state for this operation",
		"Incorrect data type", "System is not available",
		"Out of memory",    "File not found / File in use",
	};
	if (code == CIM_RC_COMPLETED)
		return "Completed with No Error";
	if (code == CIM_RC_JOB_STARTED)
		return "Method Parameters Checked - Job Started";
	if (code >= CIM_RC_B_FAILED && code - CIM_RC_B_FAILED < sizeof vendor / sizeof vendor[0])
		return vendor[code - CIM_RC_B_FAILED];
	return "Unknown";
}

const char *cim_rc_text(enum cim_rc_family family, uint32_t code)
{
	return family == CIM_RC_FAMILY_A ? rc_text_a(code) : rc_text_b(code);
}

/* ---- job states -----------------------------------------------------------------------------*/

const char *cim_job_state_text(uint32_t state)
{
	static const char *const names[] = {
		"Unknown", "Unknown", "New",        "Starting",  "Running",
		"Suspended", "Shutting Down", "Completed", "Terminated", "Killed",
		"Exception", "Service",  "Query Pending",
	};
	if (state < sizeof names / sizeof names[0])
		return names[state];
	if (state == CIM_JOB_STATE_COMPLETED_WITH_WARNINGS)
		return "CompletedWithWarnings";
	if (state < 32768)
		return "DMTF Reserved";
	if (state <= 65535)
		return "Vendor Reserved";
	return "Unknown";
}

bool cim_job_state_is_terminal(uint32_t state)
{
	return state == CIM_JOB_STATE_COMPLETED || state == CIM_JOB_STATE_TERMINATED ||
	       state == CIM_JOB_STATE_KILLED || state == CIM_JOB_STATE_EXCEPTION ||
	       state == CIM_JOB_STATE_COMPLETED_WITH_WARNINGS;
}

bool cim_job_state_is_success(uint32_t state)
{
	return state == CIM_JOB_STATE_COMPLETED || state == CIM_JOB_STATE_COMPLETED_WITH_WARNINGS;
}

/* ---- types ----------------------------------------------------------------------------------*/

static const char *const type_names[CIM_TYPE_COUNT] = {
	[CIM_TYPE_BOOLEAN] = "boolean",   [CIM_TYPE_UINT8] = "uint8",
	[CIM_TYPE_UINT16] = "uint16",     [CIM_TYPE_UINT32] = "uint32",
	[CIM_TYPE_UINT64] = "uint64",     [CIM_TYPE_SINT8] = "sint8",
	[CIM_TYPE_SINT16] = "sint16",     [CIM_TYPE_SINT32] = "sint32",
	[CIM_TYPE_SINT64] = "sint64",     [CIM_TYPE_REAL32] = "real32",
	[CIM_TYPE_REAL64] = "real64",     [CIM_TYPE_STRING] = "string",
	[CIM_TYPE_DATETIME] = "datetime", [CIM_TYPE_REFERENCE] = "reference",
	[CIM_TYPE_CHAR16] = "char16",
};

const char *cim_type_name(enum cim_type t)
{
	return (unsigned)t < CIM_TYPE_COUNT ? type_names[t] : NULL;
}

int cim_type_parse(const char *name, enum cim_type *out)
{
	for (int i = 0; i < CIM_TYPE_COUNT; i++) {
		if (cim_ieq(name, type_names[i])) {
			*out = (enum cim_type)i;
			return 0;
		}
	}
	return hv_err(HV_EINVAL, "unknown CIM type '%.64s'", name ? name : "(null)");
}

bool cim_type_is_integer(enum cim_type t) { return t >= CIM_TYPE_UINT8 && t <= CIM_TYPE_SINT64; }

/* ---- value text -----------------------------------------------------------------------------*/

int cim_value_uint(const char *text, uint64_t max, uint64_t *out)
{
	bool neg;
	uint64_t v;
	if (!cim_parse_int(text, &neg, &v) || (neg && v) || v > max)
		return hv_err(HV_EINVAL, "'%.64s' is not an integer in [0, %llu]", text,
			      (unsigned long long)max);
	*out = v;
	return 0;
}

int cim_value_sint(const char *text, int64_t min, int64_t max, int64_t *out)
{
	bool neg;
	uint64_t v;
	bool ok = cim_parse_int(text, &neg, &v) && v <= (uint64_t)INT64_MAX + (neg ? 1 : 0);
	int64_t r = 0;
	if (ok && neg)
		r = v ? -(int64_t)(v - 1) - 1 : 0; /* -(INT64_MAX+1) without overflow */
	else if (ok)
		r = (int64_t)v;
	if (!ok || r < min || r > max)
		return hv_err(HV_EINVAL, "'%.64s' is not an integer in [%lld, %lld]", text,
			      (long long)min, (long long)max);
	*out = r;
	return 0;
}

int cim_value_bool(const char *text, bool *out)
{
	if (cim_ieq(text, "true"))
		*out = true;
	else if (cim_ieq(text, "false"))
		*out = false;
	else
		return hv_err(HV_EINVAL, "'%.64s' is not TRUE or FALSE", text);
	return 0;
}

static bool real_ok(const char *text, bool single)
{
	char *end;
	if (!*text || cim_is_space(*text))
		return false;
	errno = 0;
	double d = strtod(text, &end);
	if (*end || errno == ERANGE || isnan(d) || isinf(d))
		return false;
	return !single || fabs(d) <= 3.4028234663852886e38;
}

static int int_check(enum cim_type t, const char *text)
{
	static const uint64_t umax[] = {UINT8_MAX, UINT16_MAX, UINT32_MAX, UINT64_MAX};
	static const int64_t smax[] = {INT8_MAX, INT16_MAX, INT32_MAX, INT64_MAX};
	uint64_t u;
	int64_t s;
	if (t <= CIM_TYPE_UINT64)
		return cim_value_uint(text, umax[t - CIM_TYPE_UINT8], &u);
	int k = t - CIM_TYPE_SINT8;
	return cim_value_sint(text, -smax[k] - 1, smax[k], &s);
}

int cim_value_check(enum cim_type t, const char *text)
{
	bool b;
	uint64_t ticks;
	uint32_t cp;
	struct cim_path *p = NULL;
	int rc = 0;
	if (!text)
		return hv_err(HV_EINVAL, "NULL value text");
	if (cim_type_is_integer(t))
		rc = int_check(t, text);
	else if (t == CIM_TYPE_BOOLEAN)
		rc = cim_value_bool(text, &b);
	else if (t == CIM_TYPE_REAL32 || t == CIM_TYPE_REAL64)
		rc = real_ok(text, t == CIM_TYPE_REAL32) ? 0 : HV_EINVAL;
	else if (t == CIM_TYPE_CHAR16)
		rc = (*text && !text[cim_utf8_next(text, &cp)] && cp <= 0xFFFF) ? 0 : HV_EINVAL;
	else if (t == CIM_TYPE_DATETIME)
		rc = (strlen(text) > 21 && text[21] == ':' ? cim_interval_parse(text, &ticks)
				      : cim_datetime_parse(text, &ticks));
	else if (t == CIM_TYPE_REFERENCE)
		rc = cim_path_parse(text, &p);
	else if (t != CIM_TYPE_STRING)
		return hv_err(HV_EINVAL, "unknown CIM type %d", (int)t);
	cim_path_free(p);
	if (rc)
		return hv_err(HV_EINVAL, "value '%.64s' is not a valid %s", text, cim_type_name(t));
	return 0;
}
