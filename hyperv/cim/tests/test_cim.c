/*
 * test_cim — behaviour of the CIM codec a WMI client or provider would notice: the HRESULT and
 * return-code numbers match Microsoft's documentation; object paths of every shape Hyper-V
 * engines send parse to the right keys and print back as WMI prints __RELPATH; embedded
 * instances shaped like .NET GetText(CimDtd20), PowerShell and GetText(Mof) output parse to the
 * right typed values while hostile XML (XXE, billion laughs, oversize) is refused quickly; every
 * WQL query engines issue (wmi-backup.md 1.5) parses to the expected tree and every malformed one
 * fails at the exact byte position; LIKE follows the documented metacharacters; CIM datetimes
 * match known answers computed outside this code (Python datetime) and a day-by-day calendar
 * walk; and seeded mutations of valid inputs never crash any parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../cim.h"

#define VM_GUID "A1B2C3D4-0000-4000-8000-0123456789AB"
#define HOSTNS "\\\\HOST\\root\\virtualization\\v2:"

static void msg_has(const char *needle)
{
	if (!strstr(hv_errmsg(), needle))
		fail_msg("error message '%s' does not contain '%s'", hv_errmsg(), needle);
}

static struct cim_path *path_ok(const char *text)
{
	struct cim_path *p = NULL;
	if (cim_path_parse(text, &p))
		fail_msg("path '%s' refused: %s", text, hv_errmsg());
	return p;
}

static struct wql_query *wql_ok(const char *text)
{
	struct wql_query *q = NULL;
	if (wql_parse(text, &q))
		fail_msg("query '%s' refused: %s", text, hv_errmsg());
	return q;
}

static struct cim_instance *inst_ok(const char *text)
{
	struct cim_instance *inst = NULL;
	if (cim_instance_parse(text, strlen(text), &inst))
		fail_msg("instance refused: %s\n%s", hv_errmsg(), text);
	return inst;
}

static void inst_bad(const char *text, const char *needle)
{
	struct cim_instance *inst = (struct cim_instance *)1;
	int rc = cim_instance_parse(text, strlen(text), &inst);
	if (rc != HV_EINVAL)
		fail_msg("instance accepted (rc %d), expected '%s':\n%s", rc, needle, text);
	assert_null(inst);
	msg_has(needle);
}

/* Expected error position: offset of `at` in `text` plus delta, or the end when at is NULL. */
static size_t pos_of(const char *text, const char *at, int delta)
{
	if (!at)
		return strlen(text);
	const char *hit = strstr(text, at);
	if (!hit)
		fail_msg("test bug: '%s' not in '%s'", at, text);
	return (size_t)(hit - text) + (size_t)delta;
}

static void check_pos_msg(const char *what, const char *text, size_t want, size_t got,
			  const char *needle)
{
	char prefix[48];
	if (got != want)
		fail_msg("%s '%s': error at %zu, expected %zu (%s)", what, text, got, want,
			 hv_errmsg());
	snprintf(prefix, sizeof prefix, "position %zu: ", want);
	msg_has(prefix);
	msg_has(needle);
}

/* ==== constants =============================================================================*/

static void test_wbem_hresults_match_microsoft(void **state)
{
	(void)state;
	/* WBEMSTATUS (wbemcli.h) / WbemErrorEnum (wbemdisp.h) */
	assert_int_equal(WBEM_E_FAILED, 0x80041001u);
	assert_int_equal(WBEM_E_NOT_FOUND, 0x80041002u);
	assert_int_equal(WBEM_E_TYPE_MISMATCH, 0x80041005u);
	assert_int_equal(WBEM_E_INVALID_PARAMETER, 0x80041008u);
	assert_int_equal(WBEM_E_INVALID_CLASS, 0x80041010u);
	assert_int_equal(WBEM_E_INVALID_QUERY, 0x80041017u);
	assert_int_equal(WBEM_E_INVALID_METHOD, 0x8004102Eu);
	assert_int_equal(WBEM_E_INVALID_METHOD_PARAMETERS, 0x8004102Fu);
	assert_int_equal(WBEM_E_INVALID_OBJECT_PATH, 0x8004103Au);
	/* the signed forms the windows crate documents */
	assert_int_equal((int32_t)WBEM_E_INVALID_QUERY, -2147217385);
	assert_int_equal((int32_t)WBEM_E_INVALID_METHOD, -2147217362);
	assert_int_equal((int32_t)WBEM_E_INVALID_METHOD_PARAMETERS, -2147217361);
	assert_int_equal((int32_t)WBEM_E_INVALID_OBJECT_PATH, -2147217350);
	assert_string_equal(cim_wbem_name(0x80041002u), "WBEM_E_NOT_FOUND");
	assert_string_equal(cim_wbem_name(WBEM_E_INVALID_OBJECT_PATH), "WBEM_E_INVALID_OBJECT_PATH");
	assert_null(cim_wbem_name(0x80041FFFu));
}

static void test_return_code_text(void **state)
{
	(void)state;
	assert_int_equal(CIM_RC_A_INVALID_PARAMETER, 4);
	assert_int_equal(CIM_RC_B_INVALID_PARAMETER, 32773);
	assert_int_equal(CIM_RC_JOB_STARTED, 4096);
	assert_int_equal(CIM_RC_B_FILE_NOT_FOUND, 32779);
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_A, 0), "Completed with No Error");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_B, 0), "Completed with No Error");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_A, 4096),
			    "Method Parameters Checked - Job Started");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_B, 4096),
			    "Method Parameters Checked - Job Started");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_A, 1), "Not Supported");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_A, 2), "Failed");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_A, 3), "Timeout");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_A, 4), "Invalid Parameter");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_A, 5), "Invalid State");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_A, 6), "Invalid Type");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_A, 7), "DMTF Reserved");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_A, 4097), "Method Reserved");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_A, 32768), "Vendor Specific");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_B, 32768), "Failed");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_B, 32769), "Access Denied");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_B, 32770), "Not Supported");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_B, 32771), "Status is unknown");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_B, 32772), "Timeout");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_B, 32773), "Invalid parameter");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_B, 32774), "System is in use");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_B, 32775), "Invalid state for this operation");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_B, 32776), "Incorrect data type");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_B, 32777), "System is not available");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_B, 32778), "Out of memory");
	assert_non_null(strstr(cim_rc_text(CIM_RC_FAMILY_B, 32779), "File not found"));
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_B, 4), "Unknown");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_B, 32780), "Unknown");
	assert_string_equal(cim_rc_text(CIM_RC_FAMILY_A, 65536), "Unknown");
	assert_string_equal(cim_job_state_text(65536), "Unknown");
	assert_string_equal(cim_job_state_text(0), "Unknown");
}

static void test_job_states(void **state)
{
	(void)state;
	static const struct {
		uint32_t s;
		const char *text;
	} known[] = {{2, "New"},	{3, "Starting"},   {4, "Running"},    {5, "Suspended"},
		     {6, "Shutting Down"}, {7, "Completed"}, {8, "Terminated"}, {9, "Killed"},
		     {10, "Exception"},	{11, "Service"},	 {12, "Query Pending"},
		     {32768, "CompletedWithWarnings"},	 {13, "DMTF Reserved"},
		     {32769, "Vendor Reserved"}};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		assert_string_equal(cim_job_state_text(known[i].s), known[i].text);
	/* exactly the set the Microsoft sample and bareos loop on */
	for (uint32_t s = 0; s < 70000; s++) {
		bool want = s == 7 || s == 8 || s == 9 || s == 10 || s == 32768;
		assert_int_equal(cim_job_state_is_terminal(s), want);
		assert_int_equal(cim_job_state_is_success(s), s == 7 || s == 32768);
	}
	assert_int_equal(CIM_JOB_STATE_RUNNING, 4);
	assert_int_equal(CIM_JOB_STATE_COMPLETED_WITH_WARNINGS, 32768);
}

static void test_type_names(void **state)
{
	(void)state;
	static const char *const names[] = {"boolean", "uint8",	 "uint16",   "uint32",
					    "uint64",  "sint8",	 "sint16",   "sint32",
					    "sint64",  "real32", "real64",   "string",
					    "datetime", "reference", "char16"};
	assert_int_equal(sizeof names / sizeof names[0], CIM_TYPE_COUNT);
	for (int i = 0; i < CIM_TYPE_COUNT; i++) {
		enum cim_type t;
		assert_string_equal(cim_type_name((enum cim_type)i), names[i]);
		assert_int_equal(cim_type_parse(names[i], &t), 0);
		assert_int_equal(t, i);
	}
	enum cim_type t;
	assert_int_equal(cim_type_parse("UINT16", &t), 0);
	assert_int_equal(t, CIM_TYPE_UINT16);
	assert_int_equal(cim_type_parse("int32", &t), HV_EINVAL);
	msg_has("unknown CIM type 'int32'");
	assert_int_equal(cim_type_parse("", &t), HV_EINVAL);
	assert_null(cim_type_name((enum cim_type)99));
	assert_true(cim_type_is_integer(CIM_TYPE_SINT64));
	assert_false(cim_type_is_integer(CIM_TYPE_REAL32));
}

static void test_value_check(void **state)
{
	(void)state;
	static const struct {
		enum cim_type t;
		const char *v;
		bool ok;
	} cases[] = {
		{CIM_TYPE_UINT8, "0", true},
		{CIM_TYPE_UINT8, "255", true},
		{CIM_TYPE_UINT8, "256", false},
		{CIM_TYPE_UINT8, "-1", false},
		{CIM_TYPE_UINT8, "0xff", true},
		{CIM_TYPE_UINT8, "", false},
		{CIM_TYPE_UINT8, "1 ", false},
		{CIM_TYPE_UINT16, "65535", true},
		{CIM_TYPE_UINT16, "65536", false},
		{CIM_TYPE_UINT32, "4294967295", true},
		{CIM_TYPE_UINT32, "4294967296", false},
		{CIM_TYPE_UINT64, "18446744073709551615", true},
		{CIM_TYPE_UINT64, "18446744073709551616", false},
		{CIM_TYPE_SINT8, "-128", true},
		{CIM_TYPE_SINT8, "-129", false},
		{CIM_TYPE_SINT8, "127", true},
		{CIM_TYPE_SINT8, "+127", true},
		{CIM_TYPE_SINT8, "128", false},
		{CIM_TYPE_SINT64, "-9223372036854775808", true},
		{CIM_TYPE_SINT64, "-9223372036854775809", false},
		{CIM_TYPE_SINT64, "9223372036854775807", true},
		{CIM_TYPE_SINT64, "9223372036854775808", false},
		{CIM_TYPE_BOOLEAN, "TRUE", true},
		{CIM_TYPE_BOOLEAN, "false", true},
		{CIM_TYPE_BOOLEAN, "1", false},
		{CIM_TYPE_BOOLEAN, "yes", false},
		{CIM_TYPE_REAL64, "1.5e300", true},
		{CIM_TYPE_REAL64, "1e999", false},
		{CIM_TYPE_REAL64, "nan", false},
		{CIM_TYPE_REAL64, "abc", false},
		{CIM_TYPE_REAL32, "3.0e38", true},
		{CIM_TYPE_REAL32, "3.5e38", false},
		{CIM_TYPE_STRING, "", true},
		{CIM_TYPE_STRING, "anything at all", true},
		{CIM_TYPE_CHAR16, "x", true},
		{CIM_TYPE_CHAR16, "\xc3\xa9", true},
		{CIM_TYPE_CHAR16, "xy", false},
		{CIM_TYPE_CHAR16, "", false},
		{CIM_TYPE_DATETIME, "20261126123456.789012+000", true},
		{CIM_TYPE_DATETIME, "00000000000500.000000:000", true},
		{CIM_TYPE_DATETIME, "2026-11-26", false},
		{CIM_TYPE_REFERENCE, "Msvm_ConcreteJob.InstanceID=\"x\"", true},
		{CIM_TYPE_REFERENCE, "not a path", false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc = cim_value_check(cases[i].t, cases[i].v);
		if ((rc == 0) != cases[i].ok)
			fail_msg("%s '%s': rc %d, expected %s", cim_type_name(cases[i].t),
				 cases[i].v, rc, cases[i].ok ? "ok" : "error");
		if (rc)
			msg_has(cim_type_name(cases[i].t));
	}
	uint64_t u;
	int64_t s;
	bool b;
	assert_int_equal(cim_value_uint("0x10", UINT64_MAX, &u), 0);
	assert_int_equal(u, 16);
	assert_int_equal(cim_value_sint("-0x10", INT64_MIN, INT64_MAX, &s), 0);
	assert_int_equal(s, -16);
	assert_int_equal(cim_value_bool("True", &b), 0);
	assert_true(b);
	assert_int_equal(cim_value_check(CIM_TYPE_STRING, NULL), HV_EINVAL);
	assert_int_equal(cim_value_check((enum cim_type)99, "1"), HV_EINVAL);
	msg_has("unknown CIM type 99");
}

/* ==== object paths ==========================================================================*/

static void test_path_shapes_from_reference(void **state)
{
	(void)state;
	/* wmi-backup.md 1.1: the VM, with host and namespace */
	const char *vm = HOSTNS "Msvm_ComputerSystem.CreationClassName=\"Msvm_ComputerSystem\","
			       "Name=\"" VM_GUID "\"";
	struct cim_path *p = path_ok(vm);
	assert_string_equal(p->host, "HOST");
	assert_string_equal(p->ns, "root\\virtualization\\v2");
	assert_string_equal(p->class_name, "Msvm_ComputerSystem");
	assert_int_equal(p->nkeys, 2);
	assert_string_equal(cim_path_key(p, "Name"), VM_GUID);
	assert_string_equal(cim_path_key(p, "creationclassname"), "Msvm_ComputerSystem");
	assert_true(p->keys[0].quoted);
	char *full = cim_path_format_full(p, NULL, NULL);
	assert_string_equal(full, vm);
	free(full);
	char *rel = cim_path_format_rel(p);
	assert_string_equal(rel, "Msvm_ComputerSystem.CreationClassName=\"Msvm_ComputerSystem\","
				 "Name=\"" VM_GUID "\"");
	free(rel);
	cim_path_free(p);

	/* a relative VSSD path */
	p = path_ok("Msvm_VirtualSystemSettingData.InstanceID=\"Microsoft:" VM_GUID "\"");
	assert_null(p->host);
	assert_null(p->ns);
	assert_string_equal(cim_path_key(p, "InstanceID"), "Microsoft:" VM_GUID);
	full = cim_path_format_full(p, "HV01", NULL);
	assert_string_equal(full, "\\\\HV01\\root\\virtualization\\v2:Msvm_VirtualSystemSettingData."
				  "InstanceID=\"Microsoft:" VM_GUID "\"");
	free(full);
	full = cim_path_format_full(p, NULL, NULL);
	assert_string_equal(full, "\\\\.\\root\\virtualization\\v2:Msvm_VirtualSystemSettingData."
				  "InstanceID=\"Microsoft:" VM_GUID "\"");
	free(full);
	cim_path_free(p);

	/* reference point: two keys, printed sorted */
	p = path_ok("Msvm_VirtualSystemReferencePoint.VirtualSystemIdentifier=\"" VM_GUID
		    "\",InstanceID=\"Microsoft:RP-1\"");
	rel = cim_path_format_rel(p);
	assert_string_equal(rel, "Msvm_VirtualSystemReferencePoint.InstanceID=\"Microsoft:RP-1\","
				 "VirtualSystemIdentifier=\"" VM_GUID "\"");
	free(rel);
	cim_path_free(p);

	/* a job, on the local host */
	p = path_ok("\\\\.\\root\\virtualization\\v2:Msvm_ConcreteJob.InstanceID=\"" VM_GUID "\"");
	assert_string_equal(p->host, ".");
	assert_string_equal(cim_path_key(p, "InstanceID"), VM_GUID);
	cim_path_free(p);

	/* Msvm_DiskMergeSettingData: Microsoft:<GUID>\<DeviceSpecificData>, backslash escaped */
	p = path_ok("Msvm_DiskMergeSettingData.InstanceID=\"Microsoft:" VM_GUID "\\\\Dev\"");
	assert_string_equal(cim_path_key(p, "InstanceID"), "Microsoft:" VM_GUID "\\Dev");
	rel = cim_path_format_rel(p);
	assert_string_equal(rel, "Msvm_DiskMergeSettingData.InstanceID=\"Microsoft:" VM_GUID
				 "\\\\Dev\"");
	free(rel);
	cim_path_free(p);

	/* the service singleton as engines hold it: four keys */
	p = path_ok("\\\\HOST\\root\\virtualization\\v2:Msvm_VirtualSystemManagementService."
		    "SystemName=\"HOST\",Name=\"vmms\",SystemCreationClassName=\"Msvm_ComputerSystem\","
		    "CreationClassName=\"Msvm_VirtualSystemManagementService\"");
	rel = cim_path_format_rel(p);
	assert_string_equal(rel, "Msvm_VirtualSystemManagementService.CreationClassName="
				 "\"Msvm_VirtualSystemManagementService\",Name=\"vmms\","
				 "SystemCreationClassName=\"Msvm_ComputerSystem\",SystemName=\"HOST\"");
	free(rel);
	cim_path_free(p);
}

static void test_path_other_shapes(void **state)
{
	(void)state;
	struct cim_path *p = path_ok("Msvm_VirtualSystemSnapshotService=@");
	assert_true(p->singleton);
	assert_int_equal(p->nkeys, 0);
	char *rel = cim_path_format_rel(p);
	assert_string_equal(rel, "Msvm_VirtualSystemSnapshotService=@");
	free(rel);
	cim_path_free(p);

	p = path_ok("Adapter=\"AHA-294X\""); /* the WQL documentation's own example */
	assert_int_equal(p->nkeys, 1);
	assert_string_equal(p->keys[0].name, "");
	assert_string_equal(cim_path_key(p, ""), "AHA-294X");
	rel = cim_path_format_rel(p);
	assert_string_equal(rel, "Adapter=\"AHA-294X\"");
	free(rel);
	cim_path_free(p);

	p = path_ok("Msvm_ComputerSystem");
	assert_false(p->singleton);
	assert_int_equal(p->nkeys, 0);
	rel = cim_path_format_rel(p);
	assert_string_equal(rel, "Msvm_ComputerSystem");
	free(rel);
	cim_path_free(p);

	p = path_ok("root\\cimv2:Win32_Process.Handle=\"4\"");
	assert_null(p->host);
	assert_string_equal(p->ns, "root\\cimv2");
	assert_string_equal(p->class_name, "Win32_Process");
	cim_path_free(p);

	p = path_ok("//HOST/root/virtualization/v2:X.K=\"v\"");
	assert_string_equal(p->host, "HOST");
	assert_string_equal(p->ns, "root\\virtualization\\v2");
	char *full = cim_path_format_full(p, NULL, NULL);
	assert_string_equal(full, "\\\\HOST\\root\\virtualization\\v2:X.K=\"v\"");
	free(full);
	cim_path_free(p);

	struct cim_path *bad = NULL;
	assert_int_equal(cim_path_parse("\\\\host-01.example.com\\root:X=@", &bad), 0);
	assert_string_equal(bad->host, "host-01.example.com");
	cim_path_free(bad);

	/* single quotes, unquoted integers and booleans */
	p = path_ok("X.A='it\\'s',B=-42,C=0x1F,D=TRUE");
	assert_string_equal(cim_path_key(p, "A"), "it's");
	assert_true(p->keys[0].quoted);
	assert_string_equal(cim_path_key(p, "B"), "-42");
	assert_false(p->keys[1].quoted);
	assert_string_equal(cim_path_key(p, "C"), "0x1F");
	assert_string_equal(cim_path_key(p, "D"), "TRUE");
	rel = cim_path_format_rel(p);
	assert_string_equal(rel, "X.A=\"it's\",B=-42,C=0x1F,D=TRUE");
	free(rel);
	cim_path_free(p);

	/* a reference as a key value (association instance), nested escaping */
	const char *assoc =
		"Msvm_AffectedJobElement.AffectedElement=\"\\\\\\\\HOST\\\\root\\\\virtualization\\\\v2:"
		"Msvm_ComputerSystem.CreationClassName=\\\"Msvm_ComputerSystem\\\",Name=\\\"" VM_GUID
		"\\\"\",AffectingElement=\"Msvm_ConcreteJob.InstanceID=\\\"J1\\\"\"";
	p = path_ok(assoc);
	const char *inner = cim_path_key(p, "AffectedElement");
	assert_string_equal(inner, HOSTNS "Msvm_ComputerSystem.CreationClassName="
					  "\"Msvm_ComputerSystem\",Name=\"" VM_GUID "\"");
	struct cim_path *ip = path_ok(inner);
	assert_string_equal(cim_path_key(ip, "Name"), VM_GUID);
	cim_path_free(ip);
	rel = cim_path_format_rel(p);
	assert_string_equal(rel, assoc);
	free(rel);
	cim_path_free(p);
}

static void test_path_key_sorting_is_case_insensitive(void **state)
{
	(void)state;
	struct cim_path *p = path_ok("X.b=2,A=\"x\",c=3,Ba=\"q\"");
	char *rel = cim_path_format_rel(p);
	assert_string_equal(rel, "X.A=\"x\",b=2,Ba=\"q\",c=3");
	free(rel);
	/* parse order is kept in the struct */
	assert_string_equal(p->keys[0].name, "b");
	cim_path_free(p);
}

static void test_path_escaping_round_trip(void **state)
{
	(void)state;
	/* a SASD InstanceID: backslashes inside, doubled in the path text */
	const char *sasd_id = "Microsoft:" VM_GUID "\\83F8638B-8DCA-4152-9EDA-2CA8B33039B4\\0\\0\\D";
	struct cim_path *p = NULL;
	assert_int_equal(cim_path_new("Msvm_StorageAllocationSettingData", &p), 0);
	assert_int_equal(cim_path_add_key(p, "InstanceID", sasd_id, true), 0);
	char *rel = cim_path_format_rel(p);
	assert_string_equal(rel, "Msvm_StorageAllocationSettingData.InstanceID=\"Microsoft:" VM_GUID
				 "\\\\83F8638B-8DCA-4152-9EDA-2CA8B33039B4\\\\0\\\\0\\\\D\"");
	struct cim_path *q = path_ok(rel);
	assert_string_equal(cim_path_key(q, "InstanceID"), sasd_id);
	assert_true(cim_path_equal(p, q));
	char *rel2 = cim_path_format_rel(q);
	assert_string_equal(rel, rel2);
	free(rel);
	free(rel2);
	cim_path_free(q);
	cim_path_free(p);

	/* quotes and backslashes at the edges */
	static const char *const values[] = {"\"", "\\", "\\\"", "a\"b\\c", "", "'", "}{", "\\\\"};
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		assert_int_equal(cim_path_new("C", &p), 0);
		assert_int_equal(cim_path_add_key(p, "K", values[i], true), 0);
		rel = cim_path_format_rel(p);
		q = path_ok(rel);
		assert_string_equal(cim_path_key(q, "K"), values[i]);
		free(rel);
		cim_path_free(q);
		cim_path_free(p);
	}
	char *e = cim_path_escape("C:\\dir\\\"q\"");
	assert_string_equal(e, "C:\\\\dir\\\\\\\"q\\\"");
	free(e);
}

static void test_path_equality_rules(void **state)
{
	(void)state;
	static const struct {
		const char *a, *b;
		bool eq;
	} cases[] = {
		{"X.K=\"v\"", "x.k=\"v\"", true},              /* class and key name case */
		{"X.K=\"ABC\"", "X.K=\"abc\"", true},          /* key strings case-insensitive */
		{"X.A=1,B=\"b\"", "X.B=\"b\",A=1", true},      /* order irrelevant */
		{"X.K=16", "X.K=0x10", true},                  /* integers numerically */
		{"X.K=0", "X.K=-0", true},
		{"X.K=1", "X.K=-1", false},
		{"X.K=\"3\"", "X.K=3", true},                  /* no schema: text compared */
		{"X.K=\"v\"", "X.K=\"w\"", false},
		{"X.K=\"v\"", "Y.K=\"v\"", false},
		{"X.K=\"v\"", "X.L=\"v\"", false},
		{"X.K=\"v\"", "X.K=\"v\",L=1", false},
		{"X=@", "x=@", true},
		{"X=@", "X", false},
		{HOSTNS "X.K=\"v\"", "X.K=\"v\"", true},       /* one side lacks host/namespace */
		{HOSTNS "X.K=\"v\"", "\\\\host\\ROOT\\Virtualization\\V2:X.K=\"V\"", true},
		{HOSTNS "X.K=\"v\"", "\\\\.\\root\\virtualization\\v2:X.K=\"v\"", true},
		{HOSTNS "X.K=\"v\"", "\\\\OTHER\\root\\virtualization\\v2:X.K=\"v\"", false},
		{HOSTNS "X.K=\"v\"", "\\\\HOST\\root\\cimv2:X.K=\"v\"", false},
		{HOSTNS "X.K=\"v\"", "//HOST/root/virtualization/v2:X.K=\"v\"", true},
		{"root\\virtualization\\v2:X.K=\"v\"", HOSTNS "X.K=\"v\"", true},
		{"X=\"a\"", "X=\"A\"", true},
		{"X.K=TRUE", "X.K=true", true},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct cim_path *a = path_ok(cases[i].a), *b = path_ok(cases[i].b);
		if (cim_path_equal(a, b) != cases[i].eq || cim_path_equal(b, a) != cases[i].eq)
			fail_msg("'%s' vs '%s': expected %s", cases[i].a, cases[i].b,
				 cases[i].eq ? "equal" : "different");
		assert_int_equal(cim_path_text_equal(cases[i].a, cases[i].b), cases[i].eq);
		cim_path_free(a);
		cim_path_free(b);
	}
	assert_false(cim_path_text_equal("X.K=\"v\"", "X.K=\"v"));
	msg_has("unterminated string");
}

static void test_path_key_lookup_and_builder(void **state)
{
	(void)state;
	struct cim_path *p = NULL;
	assert_int_equal(cim_path_new("Msvm_ConcreteJob", &p), 0);
	assert_int_equal(cim_path_add_key(p, "InstanceID", "J-1", true), 0);
	assert_int_equal(cim_path_add_key(p, "instanceid", "J-2", true), HV_EINVAL);
	msg_has("duplicate key 'instanceid'");
	assert_int_equal(p->nkeys, 1);
	assert_string_equal(cim_path_key(p, "INSTANCEID"), "J-1");
	assert_null(cim_path_key(p, "Name"));
	struct cim_path *d = cim_path_dup(p);
	assert_non_null(d);
	assert_true(cim_path_equal(p, d));
	assert_ptr_not_equal(d->keys[0].value, p->keys[0].value);
	cim_path_free(d);
	cim_path_free(p);
	assert_int_equal(cim_path_new("", &p), HV_EINVAL);
	assert_null(p);
	/* an unnamed key cannot be combined with named ones */
	assert_int_equal(cim_path_new("X", &p), 0);
	assert_int_equal(cim_path_add_key(p, "", "v", true), 0);
	assert_int_equal(cim_path_add_key(p, "K", "w", true), HV_EINVAL);
	cim_path_free(p);
}

static void test_path_malformed_positions(void **state)
{
	(void)state;
	static const struct {
		const char *text, *at;
		int delta;
		const char *msg;
	} bad[] = {
		{"", NULL, 0, "empty object path"},
		{".", ".", 0, "expected a class name"},
		{"1Class.K=1", "1", 0, "expected a class name"},
		{"Class.", NULL, 0, "expected a key name, found end of path"},
		{"Class.K", NULL, 0, "expected '=' after key name"},
		{"Class.K=", NULL, 0, "expected a key value"},
		{"Class.K=\"v", "\"v", 0, "unterminated string"},
		{"Class.K='v", "'v", 0, "unterminated string"},
		{"Class.K=\"a\\qb\"", "\\q", 0, "unknown escape"},
		{"Class.K=\"a\\", "\"a", 0, "unterminated string"},
		{"Class.K=\"a\\\"", "\"a", 0, "unterminated string"},
		{"Class.K=\"v\",", NULL, 0, "expected a key name"},
		{"Class.K=\"v\",,L=1", ",L", 0, "expected a key name"},
		{"Class.K=\"v\"L=1", "L=1", 0, "expected ',' or end of path"},
		{"Class.K=abc", "abc", 0, "expected a quoted string, a number or TRUE/FALSE"},
		{"Class.K=1.5", "1.5", 0, "expected a quoted string, a number or TRUE/FALSE"},
		{"Class.K=--1", "--1", 0, "expected a quoted string"},
		{"Class.K=0x", "0x", 0, "expected a quoted string"},
		{"Class.K=99999999999999999999", "999", 0, "expected a quoted string"},
		{"Class.K=\"a\",K=\"b\"", "K=\"b", 0, "duplicate key 'K'"},
		{"Class.K=\"a\",k=\"b\"", "k=", 0, "duplicate key 'k'"},
		{"Class=@x", "x", 0, "expected end of path"},
		{"Class=\"a\",K=1", ",K", 0, "expected end of path"},
		{"Class=", NULL, 0, "expected a key value"},
		{"Class K=1", " ", 0, "white space is not allowed"},
		{"Class.K = 1", " =", 0, "white space is not allowed"},
		{" Class.K=1", " ", 0, "white space is not allowed"},
		{"Class.K=1 ", " ", 0, "white space is not allowed"},
		{"\\\\", NULL, 0, "expected a host name"},
		{"\\\\HOST", NULL, 0, "expected '\\' after the host name"},
		{"\\\\HOST\\", NULL, 0, "expected a namespace name"},
		{"\\\\HOST\\root\\virtualization\\v2", NULL, 0, "expected '\\' or ':'"},
		{"\\\\HOST\\root\\\\v2:X", "\\\\v2", 1, "expected a namespace name"},
		{"\\\\HOST\\root:", NULL, 0, "expected a class name"},
		{"\\\\HO ST\\root:X", " ", 0, "white space is not allowed"},
		{"\\\\HOST\\root:X.K=1:", "1:", 0, "expected a quoted string"},
		{"root\\cimv2:", NULL, 0, "expected a class name"},
		{"\\root\\cimv2:X", "\\", 0, "expected a namespace name"},
		{"Cla$ss.K=1", "$", 0, "expected '.', '=' or end of path after class name"},
		{"Class.K@=1", "@", 0, "expected '=' after key name"},
		{"Class.=1", "=1", 0, "expected a key name"},
		{"Class.K=\"v\"x", "x", 0, "expected ',' or end of path"},
		{"Class.K=\"v\"\x01", "\x01", 0, "byte 0x01"},
		{"Cl\xc3\xa4ss", "\xc3", 0, "byte 0xc3"},
		{"{Class.K=1}", "{", 0, "expected a class name"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct cim_path *p = (struct cim_path *)1;
		size_t pos = 999999;
		const char *t = bad[i].text;
		int rc = cim_path_parse_ex(t, strlen(t), &p, &pos);
		if (rc != HV_EINVAL)
			fail_msg("path '%s' accepted (rc %d)", t, rc);
		assert_null(p);
		check_pos_msg("path", t, pos_of(t, bad[i].at, bad[i].delta), pos, bad[i].msg);
		msg_has("object path: ");
		/* the NUL-terminated entry point agrees */
		assert_int_equal(cim_path_parse(t, &p), HV_EINVAL);
	}
	assert_true(sizeof bad / sizeof bad[0] >= 30);
}

static void test_path_bounds(void **state)
{
	(void)state;
	size_t n = CIM_PATH_MAX;
	char *big = malloc(n + 2);
	memcpy(big, "X.K=\"", 5);
	memset(big + 5, 'a', n - 6);
	big[n - 1] = '"';
	big[n] = 0;
	struct cim_path *p = NULL;
	assert_int_equal(cim_path_parse(big, &p), 0); /* exactly 64 KiB */
	assert_int_equal(strlen(cim_path_key(p, "K")), n - 6);
	cim_path_free(p);
	big[n - 1] = 'a';
	big[n] = '"';
	big[n + 1] = 0;
	size_t pos = 0;
	assert_int_equal(cim_path_parse_ex(big, n + 1, &p, &pos), HV_EINVAL);
	assert_int_equal(pos, CIM_PATH_MAX);
	msg_has("longer than 65536 bytes");
	assert_int_equal(cim_path_parse(big, &p), HV_EINVAL);
	free(big);

	/* length-bounded parse: no NUL needed, embedded NUL refused */
	const char buf[] = {'X', '.', 'K', '=', '1', 'Z', 'Z'};
	assert_int_equal(cim_path_parse_ex(buf, 5, &p, NULL), 0);
	assert_string_equal(cim_path_key(p, "K"), "1");
	cim_path_free(p);
	assert_int_equal(cim_path_parse_ex("X.K=\"a\0b\"", 9, &p, &pos), HV_EINVAL);
	assert_int_equal(pos, 6);
	msg_has("NUL byte");
	assert_int_equal(cim_path_parse(NULL, &p), HV_EINVAL);
}

/* ==== embedded instances: CIM-XML ===========================================================*/

/* Shaped like ManagementBaseObject.GetText(TextFormat.WmiDtd20) for a class fetched from the
 * host: CLASSORIGIN and PROPAGATED attributes, a CIMTYPE qualifier, NULL properties. */
static const char snapshot_xml[] =
	"<INSTANCE CLASSNAME=\"Msvm_VirtualSystemSnapshotSettingData\">"
	"<PROPERTY NAME=\"__PATH\" CLASSORIGIN=\"___SYSTEM\" TYPE=\"string\"></PROPERTY>"
	"<PROPERTY NAME=\"Caption\" CLASSORIGIN=\"CIM_ManagedElement\" TYPE=\"string\"></PROPERTY>"
	"<PROPERTY NAME=\"ConsistencyLevel\" CLASSORIGIN=\"Msvm_VirtualSystemSnapshotSettingData\" "
	"TYPE=\"uint8\"><QUALIFIER NAME=\"CIMTYPE\" PROPAGATED=\"true\" TYPE=\"string\" "
	"TOINSTANCE=\"true\"><VALUE>uint8</VALUE></QUALIFIER><VALUE>1</VALUE></PROPERTY>"
	"<PROPERTY NAME=\"ElementName\" CLASSORIGIN=\"CIM_ManagedElement\" TYPE=\"string\"/>"
	"<PROPERTY NAME=\"GuestBackupType\" CLASSORIGIN=\"Msvm_VirtualSystemSnapshotSettingData\" "
	"TYPE=\"uint8\"></PROPERTY>"
	"<PROPERTY NAME=\"IgnoreNonSnapshottableDisks\" "
	"CLASSORIGIN=\"Msvm_VirtualSystemSnapshotSettingData\" TYPE=\"boolean\">"
	"<VALUE>TRUE</VALUE></PROPERTY>"
	"<PROPERTY NAME=\"InstanceID\" CLASSORIGIN=\"CIM_SettingData\" TYPE=\"string\"></PROPERTY>"
	"</INSTANCE>";

static void test_xml_snapshot_settings(void **state)
{
	(void)state;
	struct cim_instance *inst = inst_ok(snapshot_xml);
	assert_string_equal(inst->class_name, "Msvm_VirtualSystemSnapshotSettingData");
	assert_int_equal(inst->nprops, 7);
	const struct cim_prop *p = cim_instance_prop(inst, "consistencylevel");
	assert_non_null(p);
	assert_string_equal(p->name, "ConsistencyLevel");
	assert_int_equal(p->type, CIM_TYPE_UINT8);
	assert_false(p->is_array);
	assert_false(p->is_null);
	assert_false(p->type_inferred);
	assert_int_equal(p->nvalues, 1);
	assert_string_equal(p->values[0], "1");
	p = cim_instance_prop(inst, "IgnoreNonSnapshottableDisks");
	assert_int_equal(p->type, CIM_TYPE_BOOLEAN);
	assert_string_equal(p->values[0], "TRUE");
	p = cim_instance_prop(inst, "GuestBackupType");
	assert_true(p->is_null);
	assert_int_equal(p->nvalues, 0);
	assert_int_equal(p->type, CIM_TYPE_UINT8);
	assert_null(cim_instance_get(inst, "GuestBackupType"));
	assert_true(cim_instance_prop(inst, "ElementName")->is_null); /* <PROPERTY .../> */
	assert_string_equal(cim_instance_get(inst, "CONSISTENCYLEVEL"), "1");
	assert_null(cim_instance_prop(inst, "NoSuchProperty"));
	/* document order is kept for iteration */
	assert_string_equal(inst->props[0].name, "__PATH");
	assert_string_equal(inst->props[6].name, "InstanceID");
	cim_instance_free(inst);
}

static void test_xml_disk_merge_settings(void **state)
{
	(void)state;
	/* as PowerShell ConvertTo-CimEmbeddedString writes it: declaration, blanks, lower-case
	 * boolean elsewhere; backslashes are plain characters in XML */
	const char *doc = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
			  "<INSTANCE CLASSNAME=\"Msvm_DiskMergeSettingData\">\n"
			  "  <PROPERTY NAME=\"EnabledState\" TYPE=\"uint32\">\n"
			  "    <VALUE>1</VALUE>\n"
			  "  </PROPERTY>\n"
			  "  <PROPERTY NAME=\"InstanceID\" TYPE=\"string\">"
			  "<VALUE>Microsoft:" VM_GUID "\\Dev</VALUE></PROPERTY>\n"
			  "</INSTANCE>\n";
	struct cim_instance *inst = inst_ok(doc);
	assert_string_equal(inst->class_name, "Msvm_DiskMergeSettingData");
	assert_int_equal(cim_instance_prop(inst, "EnabledState")->type, CIM_TYPE_UINT32);
	assert_string_equal(cim_instance_get(inst, "EnabledState"), "1");
	assert_string_equal(cim_instance_get(inst, "InstanceID"), "Microsoft:" VM_GUID "\\Dev");
	cim_instance_free(inst);
}

static void test_xml_arrays(void **state)
{
	(void)state;
	const char *doc =
		"<INSTANCE CLASSNAME=\"Msvm_VirtualSystemReferencePointExportSettingData\">"
		"<PROPERTY.ARRAY NAME=\"DisksToExport\" TYPE=\"string\"><VALUE.ARRAY>"
		"<VALUE>Microsoft:A\\0\\0\\D</VALUE><VALUE>Microsoft:B\\0\\1\\D</VALUE>"
		"</VALUE.ARRAY></PROPERTY.ARRAY>"
		"<PROPERTY.ARRAY NAME=\"Empty\" TYPE=\"uint64\"><VALUE.ARRAY></VALUE.ARRAY>"
		"</PROPERTY.ARRAY>"
		"<PROPERTY.ARRAY NAME=\"Missing\" TYPE=\"uint16\" ARRAYSIZE=\"4\"></PROPERTY.ARRAY>"
		"<PROPERTY.ARRAY NAME=\"Offsets\" TYPE=\"uint64\"><VALUE.ARRAY><VALUE>0</VALUE>"
		"<VALUE>18446744073709551615</VALUE><VALUE></VALUE></VALUE.ARRAY></PROPERTY.ARRAY>"
		"</INSTANCE>";
	struct cim_instance *inst = inst_ok(doc);
	const struct cim_prop *p = cim_instance_prop(inst, "DisksToExport");
	assert_true(p->is_array);
	assert_false(p->is_null);
	assert_int_equal(p->nvalues, 2);
	assert_string_equal(p->values[0], "Microsoft:A\\0\\0\\D");
	assert_string_equal(p->values[1], "Microsoft:B\\0\\1\\D");
	assert_null(cim_instance_get(inst, "DisksToExport")); /* not a scalar */
	p = cim_instance_prop(inst, "Empty");
	assert_true(p->is_array);
	assert_false(p->is_null);
	assert_int_equal(p->nvalues, 0);
	p = cim_instance_prop(inst, "Missing");
	assert_true(p->is_array);
	assert_true(p->is_null);
	p = cim_instance_prop(inst, "Offsets");
	assert_int_equal(p->nvalues, 3);
	assert_string_equal(p->values[1], "18446744073709551615");
	assert_string_equal(p->values[2], "");
	cim_instance_free(inst);
}

static void test_xml_references(void **state)
{
	(void)state;
	const char *doc =
		"<INSTANCE CLASSNAME=\"Msvm_VirtualSystemExportSettingData\">"
		"<PROPERTY.REFERENCE NAME=\"Full\" REFERENCECLASS=\"CIM_ComputerSystem\">"
		"<VALUE.REFERENCE><INSTANCEPATH><NAMESPACEPATH><HOST>HOST</HOST><LOCALNAMESPACEPATH>"
		"<NAMESPACE NAME=\"root\"/><NAMESPACE NAME=\"virtualization\"/><NAMESPACE NAME=\"v2\"/>"
		"</LOCALNAMESPACEPATH></NAMESPACEPATH><INSTANCENAME CLASSNAME=\"Msvm_ComputerSystem\">"
		"<KEYBINDING NAME=\"Name\"><KEYVALUE VALUETYPE=\"string\">" VM_GUID "</KEYVALUE>"
		"</KEYBINDING><KEYBINDING NAME=\"CreationClassName\"><KEYVALUE VALUETYPE=\"string\">"
		"Msvm_ComputerSystem</KEYVALUE></KEYBINDING></INSTANCENAME></INSTANCEPATH>"
		"</VALUE.REFERENCE></PROPERTY.REFERENCE>"
		"<PROPERTY.REFERENCE NAME=\"Local\"><VALUE.REFERENCE><LOCALINSTANCEPATH>"
		"<LOCALNAMESPACEPATH><NAMESPACE NAME=\"root\"/><NAMESPACE NAME=\"cimv2\"/>"
		"</LOCALNAMESPACEPATH><INSTANCENAME CLASSNAME=\"Win32_Process\"><KEYBINDING "
		"NAME=\"Handle\"><KEYVALUE VALUETYPE=\"numeric\">4</KEYVALUE></KEYBINDING>"
		"</INSTANCENAME></LOCALINSTANCEPATH></VALUE.REFERENCE></PROPERTY.REFERENCE>"
		"<PROPERTY.REFERENCE NAME=\"Name\"><VALUE.REFERENCE><INSTANCENAME "
		"CLASSNAME=\"Msvm_DiskMergeSettingData\"><KEYBINDING NAME=\"InstanceID\"><KEYVALUE>"
		"Microsoft:X\\Y \"q\"</KEYVALUE></KEYBINDING></INSTANCENAME></VALUE.REFERENCE>"
		"</PROPERTY.REFERENCE>"
		"<PROPERTY.REFERENCE NAME=\"Singleton\"><VALUE.REFERENCE><INSTANCENAME "
		"CLASSNAME=\"Msvm_Svc\"/></VALUE.REFERENCE></PROPERTY.REFERENCE>"
		"<PROPERTY.REFERENCE NAME=\"Nested\"><VALUE.REFERENCE><INSTANCENAME "
		"CLASSNAME=\"Msvm_AffectedJobElement\"><KEYBINDING NAME=\"AffectingElement\">"
		"<VALUE.REFERENCE><INSTANCENAME CLASSNAME=\"Msvm_ConcreteJob\"><KEYBINDING "
		"NAME=\"InstanceID\"><KEYVALUE>J1</KEYVALUE></KEYBINDING></INSTANCENAME>"
		"</VALUE.REFERENCE></KEYBINDING></INSTANCENAME></VALUE.REFERENCE></PROPERTY.REFERENCE>"
		"<PROPERTY.REFERENCE NAME=\"Class\"><VALUE.REFERENCE><CLASSNAME NAME=\"Msvm_X\"/>"
		"</VALUE.REFERENCE></PROPERTY.REFERENCE>"
		"<PROPERTY.REFERENCE NAME=\"Unset\" REFERENCECLASS=\"CIM_X\"></PROPERTY.REFERENCE>"
		"</INSTANCE>";
	struct cim_instance *inst = inst_ok(doc);
	const struct cim_prop *p = cim_instance_prop(inst, "Full");
	assert_int_equal(p->type, CIM_TYPE_REFERENCE);
	assert_string_equal(p->values[0], HOSTNS "Msvm_ComputerSystem.CreationClassName="
						 "\"Msvm_ComputerSystem\",Name=\"" VM_GUID "\"");
	assert_string_equal(cim_instance_get(inst, "Local"),
			    "root\\cimv2:Win32_Process.Handle=4");
	assert_string_equal(cim_instance_get(inst, "Name"),
			    "Msvm_DiskMergeSettingData.InstanceID=\"Microsoft:X\\\\Y \\\"q\\\"\"");
	assert_string_equal(cim_instance_get(inst, "Singleton"), "Msvm_Svc=@");
	assert_string_equal(cim_instance_get(inst, "Nested"),
			    "Msvm_AffectedJobElement.AffectingElement="
			    "\"Msvm_ConcreteJob.InstanceID=\\\"J1\\\"\"");
	assert_string_equal(cim_instance_get(inst, "Class"), "Msvm_X");
	assert_true(cim_instance_prop(inst, "Unset")->is_null);
	/* every rendered reference parses back as a path with the right keys */
	struct cim_path *path = path_ok(cim_instance_get(inst, "Name"));
	assert_string_equal(cim_path_key(path, "InstanceID"), "Microsoft:X\\Y \"q\"");
	cim_path_free(path);
	cim_instance_free(inst);
}

static const char *ref_doc(char *buf, size_t n, const char *vref_content)
{
	snprintf(buf, n,
		 "<INSTANCE CLASSNAME=\"X\"><PROPERTY.REFERENCE NAME=\"R\"><VALUE.REFERENCE>%s"
		 "</VALUE.REFERENCE></PROPERTY.REFERENCE></INSTANCE>",
		 vref_content);
	return buf;
}

static void test_xml_reference_forms_and_limits(void **state)
{
	(void)state;
	char doc[4096];
	struct cim_instance *inst;
	static const struct {
		const char *xml, *path;
	} forms[] = {
		{"<CLASSPATH><NAMESPACEPATH><HOST>H</HOST><LOCALNAMESPACEPATH><NAMESPACE NAME=\"root\"/>"
		 "<NAMESPACE NAME=\"cimv2\"/></LOCALNAMESPACEPATH></NAMESPACEPATH>"
		 "<CLASSNAME NAME=\"Win32_Process\"/></CLASSPATH>",
		 "\\\\H\\root\\cimv2:Win32_Process"},
		{"<LOCALCLASSPATH><LOCALNAMESPACEPATH><NAMESPACE NAME=\"root\"/></LOCALNAMESPACEPATH>"
		 "<CLASSNAME NAME=\"C\"/></LOCALCLASSPATH>",
		 "root:C"},
		{"<INSTANCENAME CLASSNAME=\"Adapter\"><KEYVALUE VALUETYPE=\"string\">AHA-294X</KEYVALUE>"
		 "</INSTANCENAME>",
		 "Adapter=\"AHA-294X\""},
		{"<INSTANCENAME CLASSNAME=\"C\"><KEYBINDING NAME=\"B\"><KEYVALUE VALUETYPE=\"boolean\">"
		 "TRUE</KEYVALUE></KEYBINDING></INSTANCENAME>",
		 "C.B=TRUE"},
	};
	for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
		inst = inst_ok(ref_doc(doc, sizeof doc, forms[i].xml));
		assert_string_equal(cim_instance_get(inst, "R"), forms[i].path);
		/* and the writer produces the same form back */
		char *xml = cim_instance_to_xml(inst);
		assert_non_null(strstr(xml, forms[i].xml));
		free(xml);
		cim_instance_free(inst);
	}
	static const struct {
		const char *xml, *msg;
	} bad[] = {
		{"<INSTANCEPATH><NAMESPACEPATH><LOCALNAMESPACEPATH><NAMESPACE NAME=\"r\"/>"
		 "</LOCALNAMESPACEPATH></NAMESPACEPATH><INSTANCENAME CLASSNAME=\"C\"/></INSTANCEPATH>",
		 "NAMESPACEPATH needs HOST and LOCALNAMESPACEPATH"},
		{"<INSTANCEPATH><NAMESPACEPATH><HOST>H</HOST><HOST>I</HOST></NAMESPACEPATH>"
		 "<INSTANCENAME CLASSNAME=\"C\"/></INSTANCEPATH>",
		 "unexpected <HOST> in NAMESPACEPATH"},
		{"<LOCALINSTANCEPATH><LOCALNAMESPACEPATH></LOCALNAMESPACEPATH>"
		 "<INSTANCENAME CLASSNAME=\"C\"/></LOCALINSTANCEPATH>",
		 "LOCALNAMESPACEPATH without NAMESPACE"},
		{"<LOCALINSTANCEPATH><LOCALNAMESPACEPATH><NAMESPACE/></LOCALNAMESPACEPATH>"
		 "<INSTANCENAME CLASSNAME=\"C\"/></LOCALINSTANCEPATH>",
		 "expected <NAMESPACE NAME>"},
		{"<INSTANCEPATH><LOCALNAMESPACEPATH><NAMESPACE NAME=\"r\"/></LOCALNAMESPACEPATH>"
		 "<INSTANCENAME CLASSNAME=\"C\"/></INSTANCEPATH>",
		 "<LOCALNAMESPACEPATH> in INSTANCEPATH"},
		{"<LOCALINSTANCEPATH><LOCALNAMESPACEPATH><NAMESPACE NAME=\"r\"/></LOCALNAMESPACEPATH>"
		 "<CLASSNAME NAME=\"C\"/></LOCALINSTANCEPATH>",
		 "<CLASSNAME> in LOCALINSTANCEPATH, expected <INSTANCENAME>"},
		{"<LOCALCLASSPATH><LOCALNAMESPACEPATH><NAMESPACE NAME=\"r\"/></LOCALNAMESPACEPATH>"
		 "<CLASSNAME/></LOCALCLASSPATH>",
		 "expected <CLASSNAME NAME>"},
		{"<INSTANCENAME CLASSNAME=\"C\"><VALUE>1</VALUE></INSTANCENAME>",
		 "<VALUE> where a KEYVALUE or VALUE.REFERENCE belongs"},
		{"<INSTANCENAME/>", "INSTANCENAME without CLASSNAME"},
		{"<INSTANCENAME CLASSNAME=\"\"/>", "empty class name in reference"},
		{"<INSTANCENAME CLASSNAME=\"C\"><KEYBINDING NAME=\"K\"><KEYVALUE>1</KEYVALUE>"
		 "<KEYVALUE>2</KEYVALUE></KEYBINDING></INSTANCENAME>",
		 "KEYBINDING 'K' with more than one value"},
		{"<INSTANCENAME CLASSNAME=\"C\"/><INSTANCENAME CLASSNAME=\"D\"/>",
		 "exactly one path element"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		inst_bad(ref_doc(doc, sizeof doc, bad[i].xml), bad[i].msg);
	/* nesting of references inside key bindings is bounded */
	char *nest = malloc(8192), *big = malloc(16384);
	size_t n = 0;
	for (int i = 0; i < 12; i++)
		n += (size_t)sprintf(nest + n, "<INSTANCENAME CLASSNAME=\"C\"><KEYBINDING NAME=\"K\">"
						"<VALUE.REFERENCE>");
	n += (size_t)sprintf(nest + n, "<INSTANCENAME CLASSNAME=\"C\"/>");
	for (int i = 0; i < 12; i++)
		n += (size_t)sprintf(nest + n, "</VALUE.REFERENCE></KEYBINDING></INSTANCENAME>");
	inst_bad(ref_doc(big, 16384, nest), "VALUE.REFERENCE nested deeper than 8");
	free(big);
	free(nest);
}

static void test_xml_entities_cdata_and_wrapping(void **state)
{
	(void)state;
	struct cim_instance *inst = inst_ok(
		"\xEF\xBB\xBF  <INSTANCE CLASSNAME=\"X\"><PROPERTY NAME=\"S\" TYPE=\"string\"><VALUE>"
		"a&lt;b&gt;c&amp;d&quot;e&apos;f&#65;&#x42;</VALUE></PROPERTY>"
		"<PROPERTY NAME=\"C\" TYPE=\"string\"><VALUE><![CDATA[<raw> & \"x\"]]></VALUE>"
		"</PROPERTY><!-- comment --><?pi ignored?></INSTANCE>");
	assert_string_equal(cim_instance_get(inst, "S"), "a<b>c&d\"e'fAB");
	assert_string_equal(cim_instance_get(inst, "C"), "<raw> & \"x\"");
	cim_instance_free(inst);

	const char *inner = "<INSTANCE CLASSNAME=\"W\"><PROPERTY NAME=\"P\" TYPE=\"uint16\">"
			    "<VALUE>7</VALUE></PROPERTY></INSTANCE>";
	char doc[1024];
	/* <VALUE> around the element */
	snprintf(doc, sizeof doc, "<VALUE>%s</VALUE>", inner);
	inst = inst_ok(doc);
	assert_string_equal(cim_instance_get(inst, "P"), "7");
	cim_instance_free(inst);
	/* <VALUE> holding it as CDATA */
	snprintf(doc, sizeof doc, "<VALUE><![CDATA[%s]]></VALUE>", inner);
	inst = inst_ok(doc);
	assert_string_equal(inst->class_name, "W");
	cim_instance_free(inst);
	/* <VALUE> holding it as escaped text */
	inst = inst_ok("<VALUE>&lt;INSTANCE CLASSNAME=&quot;W&quot;&gt;&lt;PROPERTY NAME=&quot;P"
		       "&quot; TYPE=&quot;uint16&quot;&gt;&lt;VALUE&gt;8&lt;/VALUE&gt;&lt;/PROPERTY"
		       "&gt;&lt;/INSTANCE&gt;</VALUE>");
	assert_string_equal(cim_instance_get(inst, "P"), "8");
	cim_instance_free(inst);
	/* <VALUE> holding MOF text */
	inst = inst_ok("<VALUE>instance of M { P = 3; };</VALUE>");
	assert_string_equal(cim_instance_get(inst, "P"), "3");
	cim_instance_free(inst);
	/* wrapping is bounded */
	inst_bad("<VALUE>&lt;VALUE&gt;&lt;![CDATA[&lt;VALUE&gt;x&lt;/VALUE&gt;]]&gt;&lt;/VALUE&gt;"
		 "</VALUE>",
		 "wrapping nested deeper");
}

static void expect_same_instance(const struct cim_instance *a, const struct cim_instance *b)
{
	assert_string_equal(a->class_name, b->class_name);
	assert_int_equal(a->nprops, b->nprops);
	for (size_t i = 0; i < a->nprops; i++) {
		const struct cim_prop *pa = &a->props[i], *pb = &b->props[i];
		assert_string_equal(pa->name, pb->name);
		assert_int_equal(pa->type, pb->type);
		assert_int_equal(pa->is_array, pb->is_array);
		assert_int_equal(pa->is_null, pb->is_null);
		assert_int_equal(pa->nvalues, pb->nvalues);
		for (size_t k = 0; k < pa->nvalues; k++)
			assert_string_equal(pa->values[k], pb->values[k]);
	}
}

static void test_xml_round_trip(void **state)
{
	(void)state;
	struct cim_instance *inst = NULL, *back = NULL;
	assert_int_equal(cim_instance_new("Msvm_VirtualSystemExportSettingData", &inst), 0);
	assert_int_equal(cim_instance_set(inst, "CopySnapshotConfiguration", CIM_TYPE_UINT8, "3"), 0);
	assert_int_equal(cim_instance_set(inst, "CopyVmStorage", CIM_TYPE_BOOLEAN, "FALSE"), 0);
	assert_int_equal(cim_instance_set(inst, "SnapshotVirtualSystem", CIM_TYPE_STRING,
					  HOSTNS "Msvm_VirtualSystemSettingData.InstanceID="
						 "\"Microsoft:S1\""),
			 0);
	assert_int_equal(cim_instance_set(inst, "Description", CIM_TYPE_STRING, NULL), 0);
	assert_int_equal(cim_instance_set(inst, "Tricky", CIM_TYPE_STRING,
					  "<a href=\"x\">&amp;</a>\ttab\nline\r\n'q'"),
			 0);
	assert_int_equal(cim_instance_set(inst, "When", CIM_TYPE_DATETIME,
					  "20261126123456.789012+000"),
			 0);
	assert_int_equal(cim_instance_set(inst, "Real", CIM_TYPE_REAL64, "-1.25e-3"), 0);
	assert_int_equal(cim_instance_set(inst, "Ch", CIM_TYPE_CHAR16, "\xc3\xa9"), 0);
	assert_int_equal(cim_instance_set(inst, "Neg", CIM_TYPE_SINT32, "-2147483648"), 0);
	const char *disks[] = {"Microsoft:A\\0\\0\\D", "", "<&>"};
	assert_int_equal(cim_instance_set_array(inst, "ExcludedVirtualHardDisks", CIM_TYPE_STRING,
						disks, 3),
			 0);
	assert_int_equal(cim_instance_set_array(inst, "Nothing", CIM_TYPE_UINT16, NULL, 0), 0);
	assert_int_equal(cim_instance_set_array(inst, "NoElems", CIM_TYPE_UINT16, disks, 0), 0);
	assert_int_equal(cim_instance_set(inst, "Base", CIM_TYPE_REFERENCE,
					  HOSTNS "Msvm_VirtualSystemReferencePoint.InstanceID="
						 "\"RP\\\\1\",VirtualSystemIdentifier=\"" VM_GUID "\""),
			 0);
	assert_int_equal(cim_instance_set(inst, "LocalRef", CIM_TYPE_REFERENCE,
					  "root\\cimv2:W.B=TRUE,K=5"),
			 0);
	assert_int_equal(cim_instance_set(inst, "RelRef", CIM_TYPE_REFERENCE, "S=@"), 0);
	assert_int_equal(cim_instance_set(inst, "ClassRef", CIM_TYPE_REFERENCE, "Msvm_X"), 0);
	assert_int_equal(cim_instance_set(inst, "NullRef", CIM_TYPE_REFERENCE, NULL), 0);
	char *xml = cim_instance_to_xml(inst);
	assert_non_null(xml);
	back = inst_ok(xml);
	expect_same_instance(inst, back);
	/* a second trip is byte-stable */
	char *xml2 = cim_instance_to_xml(back);
	assert_string_equal(xml, xml2);
	free(xml);
	free(xml2);
	cim_instance_free(back);
	cim_instance_free(inst);

	/* the exact bytes for a small instance, as GetText(CimDtd20) lays them out */
	assert_int_equal(cim_instance_new("Msvm_DiskMergeSettingData", &inst), 0);
	assert_int_equal(cim_instance_set(inst, "EnabledState", CIM_TYPE_UINT32, "1"), 0);
	assert_int_equal(cim_instance_set(inst, "InstanceID", CIM_TYPE_STRING, "a\"b"), 0);
	assert_int_equal(cim_instance_set(inst, "Caption", CIM_TYPE_STRING, NULL), 0);
	xml = cim_instance_to_xml(inst);
	assert_string_equal(xml, "<INSTANCE CLASSNAME=\"Msvm_DiskMergeSettingData\">"
				 "<PROPERTY NAME=\"EnabledState\" TYPE=\"uint32\"><VALUE>1</VALUE>"
				 "</PROPERTY><PROPERTY NAME=\"InstanceID\" TYPE=\"string\"><VALUE>"
				 "a&quot;b</VALUE></PROPERTY><PROPERTY NAME=\"Caption\" "
				 "TYPE=\"string\"></PROPERTY></INSTANCE>");
	free(xml);
	cim_instance_free(inst);

	/* the .NET-shaped document survives parse -> write -> parse */
	inst = inst_ok(snapshot_xml);
	xml = cim_instance_to_xml(inst);
	back = inst_ok(xml);
	expect_same_instance(inst, back);
	free(xml);
	cim_instance_free(back);
	cim_instance_free(inst);
}

static void test_instance_builder_rules(void **state)
{
	(void)state;
	struct cim_instance *inst = NULL;
	assert_int_equal(cim_instance_new("", &inst), HV_EINVAL);
	assert_int_equal(cim_instance_new("X", &inst), 0);
	assert_int_equal(cim_instance_set(inst, "P", CIM_TYPE_UINT8, "1"), 0);
	assert_int_equal(cim_instance_set(inst, "p", CIM_TYPE_UINT16, "2"), 0); /* replaces */
	assert_int_equal(inst->nprops, 1);
	assert_string_equal(inst->props[0].name, "p");
	assert_int_equal(inst->props[0].type, CIM_TYPE_UINT16);
	assert_string_equal(cim_instance_get(inst, "P"), "2");
	assert_int_equal(cim_instance_set(inst, "", CIM_TYPE_UINT8, "1"), HV_EINVAL);
	assert_int_equal(cim_instance_set(inst, "Q", (enum cim_type)77, "1"), HV_EINVAL);
	assert_int_equal(cim_instance_set_array(inst, "A", CIM_TYPE_STRING, NULL, 2), HV_EINVAL);
	assert_int_equal(inst->nprops, 1);
	/* what the CIM-XML writer refuses, with the property named */
	const char *refs[] = {"X.K=1"};
	assert_int_equal(cim_instance_set_array(inst, "Refs", CIM_TYPE_REFERENCE, refs, 1), 0);
	assert_null(cim_instance_to_xml(inst));
	msg_has("property Refs: reference arrays");
	assert_int_equal(cim_instance_set(inst, "Refs", CIM_TYPE_REFERENCE, "not a path"), 0);
	assert_null(cim_instance_to_xml(inst));
	msg_has("property Refs");
	msg_has("object path");
	assert_int_equal(cim_instance_set(inst, "Refs", CIM_TYPE_STRING, "bell\x07"), 0);
	assert_null(cim_instance_to_xml(inst));
	msg_has("property Refs: a value holds a control character");
	cim_instance_free(inst);
}

static void test_xml_malformed(void **state)
{
	(void)state;
	inst_bad("<INSTANCE CLASSNAME=\"X\">", "not well-formed XML");
	inst_bad("<INSTANCE CLASSNAME=\"X\"></INSTANC>", "not well-formed XML");
	inst_bad("<CLASS NAME=\"X\"></CLASS>", "root element <CLASS>, expected <INSTANCE>");
	inst_bad("<INSTANCE></INSTANCE>", "INSTANCE without CLASSNAME");
	inst_bad("<INSTANCE CLASSNAME=\"\"></INSTANCE>", "INSTANCE without CLASSNAME");
	inst_bad("<INSTANCE CLASSNAME=\"X\">\n"
		 "<PROPERTY NAME=\"A\" TYPE=\"uint8\"><VALUE>1</VALUE></PROPERTY>\n"
		 "<PROPERTY TYPE=\"uint8\"><VALUE>1</VALUE></PROPERTY>\n"
		 "</INSTANCE>",
		 "embedded instance: line 3: PROPERTY without NAME");
	inst_bad("<INSTANCE CLASSNAME=\"X\"><PROPERTY NAME=\"A\"><VALUE>1</VALUE></PROPERTY>"
		 "</INSTANCE>",
		 "PROPERTY A without TYPE");
	inst_bad("<INSTANCE CLASSNAME=\"X\"><PROPERTY NAME=\"A\" TYPE=\"int32\"></PROPERTY>"
		 "</INSTANCE>",
		 "PROPERTY A: unknown TYPE 'int32'");
	inst_bad("<INSTANCE CLASSNAME=\"X\"><PROPERTY.ARRAY NAME=\"A\" TYPE=\"foo\">"
		 "</PROPERTY.ARRAY></INSTANCE>",
		 "unknown TYPE 'foo'");
	inst_bad("<INSTANCE CLASSNAME=\"X\"><PROPERTY NAME=\"A\" TYPE=\"uint8\"><VALUE>1</VALUE>"
		 "<VALUE>2</VALUE></PROPERTY></INSTANCE>",
		 "more than one <VALUE>");
	inst_bad("<INSTANCE CLASSNAME=\"X\"><PROPERTY NAME=\"A\" TYPE=\"uint8\"><VALUE.ARRAY/>"
		 "</PROPERTY></INSTANCE>",
		 "<VALUE.ARRAY> in PROPERTY, expected <VALUE>");
	inst_bad("<INSTANCE CLASSNAME=\"X\"><METHOD NAME=\"M\"/></INSTANCE>",
		 "unexpected <METHOD> in INSTANCE");
	inst_bad("<INSTANCE CLASSNAME=\"X\">text<PROPERTY NAME=\"A\" TYPE=\"uint8\"/></INSTANCE>",
		 "unexpected text inside <INSTANCE>");
	inst_bad("<INSTANCE CLASSNAME=\"X\"><PROPERTY NAME=\"A\" TYPE=\"uint8\"/>"
		 "<PROPERTY NAME=\"a\" TYPE=\"uint8\"/></INSTANCE>",
		 "duplicate property a");
	inst_bad("<INSTANCE CLASSNAME=\"X\"><PROPERTY.ARRAY NAME=\"A\" TYPE=\"uint8\"><VALUE.ARRAY>"
		 "<VALUE.NULL/></VALUE.ARRAY></PROPERTY.ARRAY></INSTANCE>",
		 "NULL array elements are not supported");
	inst_bad("<INSTANCE CLASSNAME=\"X\"><PROPERTY NAME=\"A\" TYPE=\"string\"><VALUE><b>x</b>"
		 "</VALUE></PROPERTY></INSTANCE>",
		 "<b> inside <VALUE>, expected text");
	inst_bad("<INSTANCE CLASSNAME=\"X\"><PROPERTY.REFERENCE NAME=\"R\"><VALUE.REFERENCE>"
		 "<OBJECTPATH/></VALUE.REFERENCE></PROPERTY.REFERENCE></INSTANCE>",
		 "<OBJECTPATH> in VALUE.REFERENCE");
	inst_bad("<INSTANCE CLASSNAME=\"X\"><PROPERTY.REFERENCE NAME=\"R\"><VALUE.REFERENCE>"
		 "</VALUE.REFERENCE></PROPERTY.REFERENCE></INSTANCE>",
		 "exactly one path element");
	inst_bad("<INSTANCE CLASSNAME=\"X\"><PROPERTY.REFERENCE NAME=\"R\"><VALUE.REFERENCE>"
		 "<INSTANCENAME CLASSNAME=\"Y\"><KEYBINDING><KEYVALUE>1</KEYVALUE></KEYBINDING>"
		 "</INSTANCENAME></VALUE.REFERENCE></PROPERTY.REFERENCE></INSTANCE>",
		 "KEYBINDING needs NAME");
	inst_bad("<INSTANCE CLASSNAME=\"X\"><PROPERTY.REFERENCE NAME=\"R\"><VALUE.REFERENCE>"
		 "<INSTANCEPATH><INSTANCENAME CLASSNAME=\"Y\"/></INSTANCEPATH></VALUE.REFERENCE>"
		 "</PROPERTY.REFERENCE></INSTANCE>",
		 "INSTANCEPATH needs exactly a namespace part and a name");
	inst_bad("<INSTANCE CLASSNAME=\"X\"><PROPERTY.REFERENCE NAME=\"R\"><VALUE.REFERENCE>"
		 "<INSTANCENAME CLASSNAME=\"Y\"><KEYBINDING NAME=\"K\"><KEYVALUE>1</KEYVALUE>"
		 "</KEYBINDING><KEYBINDING NAME=\"k\"><KEYVALUE>2</KEYVALUE></KEYBINDING>"
		 "</INSTANCENAME></VALUE.REFERENCE></PROPERTY.REFERENCE></INSTANCE>",
		 "key 'k' given twice");
	inst_bad("<VALUE><INSTANCE CLASSNAME=\"A\"/><INSTANCE CLASSNAME=\"B\"/></VALUE>",
		 "exactly one <INSTANCE>");
	inst_bad("<INSTANCE CLASSNAME=\"X\"><PROPERTY NAME=\"A\" TYPE=\"string\"><VALUE>&foo;"
		 "</VALUE></PROPERTY></INSTANCE>",
		 "embedded instance: line 1:");
	inst_bad("", "empty text");
	inst_bad(" \n\t ", "empty text");
	struct cim_instance *inst = NULL;
	assert_int_equal(cim_instance_parse("<INSTANCE CLASSNAME=\"X\"/>\0junk", 31, &inst),
			 HV_EINVAL);
	msg_has("NUL byte");
	assert_int_equal(cim_instance_parse(NULL, 0, &inst), HV_EINVAL);
}

static void test_xml_hostile_documents(void **state)
{
	(void)state;
	/* billion laughs: refused at the DOCTYPE, nothing expanded */
	const char *laughs =
		"<?xml version=\"1.0\"?>\n<!DOCTYPE INSTANCE [\n<!ENTITY lol \"lol\">\n"
		"<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
		"<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
		"<!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
		"<!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
		"<!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
		"<!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
		"<!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
		"<!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
		"]>\n<INSTANCE CLASSNAME=\"X\"><PROPERTY NAME=\"P\" TYPE=\"string\"><VALUE>&lol9;"
		"</VALUE></PROPERTY></INSTANCE>";
	inst_bad(laughs, "line 2: DOCTYPE is not allowed");
	/* external entities: local file and network */
	inst_bad("<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>"
		 "<INSTANCE CLASSNAME=\"X\"><PROPERTY NAME=\"P\" TYPE=\"string\"><VALUE>&xxe;"
		 "</VALUE></PROPERTY></INSTANCE>",
		 "DOCTYPE is not allowed");
	inst_bad("<!DOCTYPE x [<!ENTITY xxe SYSTEM \"http://127.0.0.1:9/x\">]><INSTANCE "
		 "CLASSNAME=\"X\"><PROPERTY NAME=\"P\" TYPE=\"string\"><VALUE>&xxe;</VALUE>"
		 "</PROPERTY></INSTANCE>",
		 "DOCTYPE is not allowed");
	inst_bad("<!DOCTYPE x [<!ENTITY % pe SYSTEM \"http://127.0.0.1:9/x\"> %pe;]>"
		 "<INSTANCE CLASSNAME=\"X\"/>",
		 "DOCTYPE is not allowed");
	inst_bad("<!DOCTYPE INSTANCE SYSTEM \"http://127.0.0.1:9/cim.dtd\"><INSTANCE "
		 "CLASSNAME=\"X\"/>",
		 "DOCTYPE is not allowed");
	inst_bad("<!DOCTYPE INSTANCE><INSTANCE CLASSNAME=\"X\"/>", "DOCTYPE is not allowed");
	/* the same attack smuggled inside a <VALUE> wrapper */
	inst_bad("<VALUE><![CDATA[<!DOCTYPE x [<!ENTITY a \"b\">]><INSTANCE CLASSNAME=\"X\"/>]]>"
		 "</VALUE>",
		 "DOCTYPE is not allowed");
	/* XInclude is not processed: the element is just unexpected */
	inst_bad("<INSTANCE CLASSNAME=\"X\" xmlns:xi=\"http://www.w3.org/2001/XInclude\">"
		 "<xi:include href=\"file:///etc/passwd\"/></INSTANCE>",
		 "unexpected <include> in INSTANCE");
}

static void test_xml_size_limit(void **state)
{
	(void)state;
	const char *head = "<INSTANCE CLASSNAME=\"X\"><PROPERTY NAME=\"P\" TYPE=\"string\"><VALUE>";
	const char *tail = "</VALUE></PROPERTY></INSTANCE>";
	size_t n = CIM_INSTANCE_MAX;
	char *doc = malloc(2 * n + 1);
	size_t hl = strlen(head), tl = strlen(tail);
	memcpy(doc, head, hl);
	memset(doc + hl, 'v', n - hl - tl);
	memcpy(doc + n - tl, tail, tl);
	struct cim_instance *inst = NULL;
	assert_int_equal(cim_instance_parse(doc, n, &inst), 0); /* exactly 1 MiB */
	assert_int_equal(strlen(cim_instance_get(inst, "P")), n - hl - tl);
	cim_instance_free(inst);
	/* 2 MiB refused before any parsing */
	memset(doc + hl, 'v', 2 * n - hl - tl);
	memcpy(doc + 2 * n - tl, tail, tl);
	assert_int_equal(cim_instance_parse(doc, 2 * n, &inst), HV_EINVAL);
	assert_null(inst);
	msg_has("2097152 bytes, more than the 1048576 allowed");
	assert_int_equal(cim_instance_parse(doc, n + 1, &inst), HV_EINVAL);
	free(doc);
}

/* ==== embedded instances: MOF ===============================================================*/

static void test_mof_instances(void **state)
{
	(void)state;
	struct cim_instance *inst =
		inst_ok("instance of Msvm_X { Prop = 1; Other = \"s\\\"q\"; Arr = {\"a\",\"b\"}; };");
	assert_string_equal(inst->class_name, "Msvm_X");
	assert_int_equal(inst->nprops, 3);
	const struct cim_prop *p = cim_instance_prop(inst, "Prop");
	assert_true(p->type_inferred);
	assert_int_equal(p->type, CIM_TYPE_SINT64);
	assert_string_equal(p->values[0], "1");
	assert_string_equal(cim_instance_get(inst, "Other"), "s\"q");
	p = cim_instance_prop(inst, "Arr");
	assert_true(p->is_array);
	assert_int_equal(p->type, CIM_TYPE_STRING);
	assert_int_equal(p->nvalues, 2);
	assert_string_equal(p->values[1], "b");
	cim_instance_free(inst);

	/* shaped like GetText(TextFormat.Mof): leading newline, tabs, TRUE, an escaped path */
	inst = inst_ok("\ninstance of Msvm_VirtualSystemExportSettingData\n{\n"
		       "\tBackupIntent = 1;\n\tCaptureLiveState = 0;\n"
		       "\tCopySnapshotConfiguration = 3;\n\tCopyVmRuntimeInformation = TRUE;\n"
		       "\tCopyVmStorage = false;\n"
		       "\tSnapshotVirtualSystem = \"\\\\\\\\HOST\\\\root\\\\virtualization\\\\v2:"
		       "Msvm_VirtualSystemSettingData.InstanceID=\\\"Microsoft:S1\\\"\";\n"
		       "\tDescription = NULL;\n};\n");
	assert_string_equal(cim_instance_get(inst, "SnapshotVirtualSystem"),
			    HOSTNS "Msvm_VirtualSystemSettingData.InstanceID=\"Microsoft:S1\"");
	assert_int_equal(cim_instance_prop(inst, "CopyVmRuntimeInformation")->type,
			 CIM_TYPE_BOOLEAN);
	assert_string_equal(cim_instance_get(inst, "CopyVmStorage"), "FALSE");
	assert_true(cim_instance_prop(inst, "Description")->is_null);
	assert_int_equal(cim_instance_get(inst, "CopySnapshotConfiguration")[0], '3');
	cim_instance_free(inst);

	/* qualifiers, comments, alias, numbers of every kind, escapes, concatenation */
	inst = inst_ok("#pragma namespace(\"\\\\\\\\.\\\\root\\\\virtualization\\\\v2\")\n"
		       "// a comment\n[Locale(1033), Description(\"x [y]\")]\n"
		       "instance of Msvm_Y as $y /* block\ncomment */ {\n"
		       "  [key] Neg = -42;\n  Big = 18446744073709551615;\n  Hex = 0x1F;\n"
		       "  Real = 2.5e3;\n  Frac = .5;\n  Ch = 'c';\n  Esc = \"t\\tn\\nx\\x41\\x263A\";\n"
		       "  Cat = \"ab\" \"cd\";\n  Empty = {};\n  Nums = {1, -2, 3};\n"
		       "  Mixed = {1, 2.5};\n  Bools = {TRUE, false};\n  Big2 = {1, 18446744073709551615};\n"
		       "}");
	assert_int_equal(cim_instance_prop(inst, "Neg")->type, CIM_TYPE_SINT64);
	assert_string_equal(cim_instance_get(inst, "Neg"), "-42");
	assert_int_equal(cim_instance_prop(inst, "Big")->type, CIM_TYPE_UINT64);
	assert_string_equal(cim_instance_get(inst, "Hex"), "31");
	assert_int_equal(cim_instance_prop(inst, "Real")->type, CIM_TYPE_REAL64);
	assert_string_equal(cim_instance_get(inst, "Real"), "2.5e3");
	assert_string_equal(cim_instance_get(inst, "Frac"), ".5");
	assert_int_equal(cim_instance_prop(inst, "Ch")->type, CIM_TYPE_CHAR16);
	assert_string_equal(cim_instance_get(inst, "Esc"), "t\tn\nxA\xe2\x98\xba");
	assert_string_equal(cim_instance_get(inst, "Cat"), "abcd");
	assert_int_equal(cim_instance_prop(inst, "Empty")->nvalues, 0);
	assert_false(cim_instance_prop(inst, "Empty")->is_null);
	p = cim_instance_prop(inst, "Nums");
	assert_int_equal(p->type, CIM_TYPE_SINT64);
	assert_string_equal(p->values[1], "-2");
	assert_int_equal(cim_instance_prop(inst, "Mixed")->type, CIM_TYPE_REAL64);
	assert_int_equal(cim_instance_prop(inst, "Bools")->type, CIM_TYPE_BOOLEAN);
	assert_int_equal(cim_instance_prop(inst, "Big2")->type, CIM_TYPE_UINT64);
	/* a MOF instance writes out as CIM-XML like any other */
	char *xml = cim_instance_to_xml(inst);
	assert_non_null(xml);
	struct cim_instance *back = inst_ok(xml);
	expect_same_instance(inst, back);
	free(xml);
	cim_instance_free(back);
	cim_instance_free(inst);
}

static void test_mof_malformed(void **state)
{
	(void)state;
	inst_bad("instance of X { A = 1 }", "line 1: MOF: expected ';' after the value, found '}'");
	inst_bad("instance of X {\n A = 1;\n", "line 3: MOF: expected a property name, found end");
	inst_bad("instance of X { A = \"abc; };", "unterminated string");
	inst_bad("instance of X {\n\n A = \"a\\qb\"; };", "line 3: MOF: unknown escape '\\q'");
	inst_bad("instance of X { A = {1, \"x\"}; };", "array A mixes sint64 and string values");
	inst_bad("instance of X { A = {1, NULL}; };", "NULL inside array A");
	inst_bad("instance of X { A = $other; };", "alias reference $other is not supported");
	inst_bad("instance of X { A = 1; }; instance of Y { };", "only one is accepted");
	inst_bad("class X { uint8 A; };", "expected 'instance of', found 'class'");
	inst_bad("instance X { };", "expected 'of' after 'instance'");
	inst_bad("instance of { };", "expected a class name");
	inst_bad("instance of X A = 1; };", "expected '{' after the class name");
	inst_bad("instance of X { A = 1; a = 2; };", "duplicate property a");
	inst_bad("instance of X { A 1; };", "expected '=' after the property name");
	inst_bad("instance of X { A = ; };", "expected a value, found ';'");
	inst_bad("instance of X { A = {1 2}; };", "expected ',' or '}' between array elements");
	inst_bad("instance of X { A = 1.2.3; };", "malformed number");
	inst_bad("instance of X { A = -99999999999999999999; };", "out of range");
	inst_bad("instance of X { A = 12abc; };", "integer 12abc out of range or malformed");
	inst_bad("instance of X { A = 'ab'; };", "character literal must hold one character");
	inst_bad("instance of X { A = 1; } /* open", "unterminated comment");
	inst_bad("[Abstract instance of X { };", "unterminated qualifier list");
	inst_bad("instance of X { A = 1; } @", "unexpected character '@'");
	inst_bad("hello", "expected 'instance of', found 'hello'");
	inst_bad("instance of X as y { };", "expected $alias after 'as'");
	inst_bad("instance of X { A = 99999999999999999999999; };", "integer 99999999999999999999999 "
								  "out of range or malformed");
	/* a two-byte \\x escape */
	struct cim_instance *inst = inst_ok("instance of X { A = \"caf\\xE9\"; };");
	assert_string_equal(cim_instance_get(inst, "A"), "caf\xc3\xa9");
	cim_instance_free(inst);
}

/* ==== WQL ===================================================================================*/

static void expect_cmp(const struct wql_expr *e, const char *prop, enum wql_op op,
		       const char *str)
{
	assert_non_null(e);
	assert_int_equal(e->kind, WQL_EXPR_CMP);
	assert_string_equal(e->prop, prop);
	assert_int_equal(e->op, op);
	assert_int_equal(e->lit.kind, WQL_LIT_STRING);
	assert_string_equal(e->lit.s, str);
}

static void expect_select(const struct wql_query *q, const char *cls)
{
	assert_int_equal(q->kind, WQL_SELECT);
	assert_true(q->select_all);
	assert_string_equal(q->class_name, cls);
}

static void test_wql_engine_queries(void **state)
{
	(void)state;
	struct wql_query *q;
	/* SELECT forms of wmi-backup.md 1.5 */
	q = wql_ok("SELECT * FROM Msvm_ComputerSystem WHERE ElementName=\"backup-vm\"");
	expect_select(q, "Msvm_ComputerSystem");
	assert_int_equal(q->class_pos, 14);
	expect_cmp(q->where, "ElementName", WQL_OP_EQ, "backup-vm");
	assert_int_equal(q->where->pos, 40);
	wql_query_free(q);

	q = wql_ok("SELECT * FROM Msvm_ComputerSystem WHERE ElementName='vm' AND "
		   "Caption='Virtual Machine'");
	assert_int_equal(q->where->kind, WQL_EXPR_AND);
	expect_cmp(q->where->left, "ElementName", WQL_OP_EQ, "vm");
	expect_cmp(q->where->right, "Caption", WQL_OP_EQ, "Virtual Machine");
	wql_query_free(q);

	q = wql_ok("SELECT * FROM Msvm_ComputerSystem WHERE Name='" VM_GUID "'");
	expect_cmp(q->where, "Name", WQL_OP_EQ, VM_GUID);
	wql_query_free(q);

	static const char *const singletons[] = {
		"Msvm_VirtualSystemSnapshotService", "Msvm_VirtualSystemReferencePointService",
		"Msvm_VirtualSystemManagementService", "Msvm_ImageManagementService",
		"Msvm_VirtualSystemManagementServiceSettingData"};
	for (size_t i = 0; i < sizeof singletons / sizeof singletons[0]; i++) {
		char text[128];
		snprintf(text, sizeof text, "SELECT * FROM %s", singletons[i]);
		q = wql_ok(text);
		expect_select(q, singletons[i]);
		assert_null(q->where);
		assert_null(q->object);
		wql_query_free(q);
	}

	q = wql_ok("SELECT * FROM Msvm_VirtualSystemReferencePoint WHERE "
		   "VirtualSystemIdentifier='" VM_GUID "'");
	expect_cmp(q->where, "VirtualSystemIdentifier", WQL_OP_EQ, VM_GUID);
	wql_query_free(q);
	q = wql_ok("SELECT * FROM Msvm_VirtualSystemReferencePoint WHERE InstanceID='Microsoft:RP'");
	expect_cmp(q->where, "InstanceID", WQL_OP_EQ, "Microsoft:RP");
	wql_query_free(q);
	/* bareos fixup_instance_id: backslashes doubled inside the literal */
	q = wql_ok("select * from Msvm_StorageAllocationSettingData where "
		   "InstanceID='Microsoft:" VM_GUID "\\\\83F8638B\\\\0\\\\0\\\\D'");
	expect_select(q, "Msvm_StorageAllocationSettingData");
	expect_cmp(q->where, "InstanceID", WQL_OP_EQ, "Microsoft:" VM_GUID "\\83F8638B\\0\\0\\D");
	wql_query_free(q);
	q = wql_ok("SELECT * FROM Msvm_ConcreteJob WHERE InstanceID='J-1'");
	expect_cmp(q->where, "InstanceID", WQL_OP_EQ, "J-1");
	wql_query_free(q);
	q = wql_ok("SELECT * FROM Msvm_ConcreteJob WHERE __PATH='\\\\\\\\HOST\\\\root\\\\"
		   "virtualization\\\\v2:Msvm_ConcreteJob.InstanceID=\\\"J-1\\\"'");
	expect_cmp(q->where, "__PATH", WQL_OP_EQ,
		   HOSTNS "Msvm_ConcreteJob.InstanceID=\"J-1\"");
	wql_query_free(q);

	/* ASSOCIATORS forms */
	const char *vm = "\\\\HOST\\root\\virtualization\\v2:Msvm_ComputerSystem.CreationClassName="
			 "\"Msvm_ComputerSystem\",Name=\"" VM_GUID "\"";
	static const struct {
		const char *result, *assoc;
	} assocs[] = {
		{"Msvm_VirtualSystemReferencePoint", "Msvm_ReferencePointOfVirtualSystem"},
		{"CIM_VirtualSystemSettingData", "Msvm_SnapshotOfVirtualSystem"},
		{"Msvm_VirtualSystemSettingData", "Msvm_SettingsDefineState"},
		{"Msvm_VirtualSystemExportSettingData", "Msvm_SystemExportSettingData"},
	};
	for (size_t i = 0; i < sizeof assocs / sizeof assocs[0]; i++) {
		char text[512];
		snprintf(text, sizeof text, "ASSOCIATORS OF {%s} WHERE ResultClass=%s AssocClass=%s",
			 vm, assocs[i].result, assocs[i].assoc);
		q = wql_ok(text);
		assert_int_equal(q->kind, WQL_ASSOCIATORS);
		assert_string_equal(q->object_text, vm);
		assert_string_equal(q->object->class_name, "Msvm_ComputerSystem");
		assert_string_equal(cim_path_key(q->object, "Name"), VM_GUID);
		assert_string_equal(q->result_class, assocs[i].result);
		assert_string_equal(q->assoc_class, assocs[i].assoc);
		assert_null(q->role);
		assert_null(q->result_role);
		assert_false(q->class_defs_only);
		wql_query_free(q);
	}
	q = wql_ok("ASSOCIATORS OF {Msvm_VirtualSystemSettingData.InstanceID=\"Microsoft:S1\"} "
		   "WHERE ResultClass=Msvm_StorageAllocationSettingData "
		   "AssocClass=Msvm_VirtualSystemSettingDataComponent");
	assert_string_equal(cim_path_key(q->object, "InstanceID"), "Microsoft:S1");
	assert_string_equal(q->assoc_class, "Msvm_VirtualSystemSettingDataComponent");
	wql_query_free(q);
	q = wql_ok("ASSOCIATORS OF {Msvm_ConcreteJob.InstanceID=\"J-1\"} WHERE "
		   "ResultClass=Msvm_VirtualSystemReferencePoint");
	assert_string_equal(q->result_class, "Msvm_VirtualSystemReferencePoint");
	assert_null(q->assoc_class);
	wql_query_free(q);
	/* REFERENCES (GetRelationships) */
	q = wql_ok("REFERENCES OF {Msvm_ComputerSystem.CreationClassName=\"Msvm_ComputerSystem\","
		   "Name=\"" VM_GUID "\"} WHERE ResultClass=Msvm_SnapshotOfVirtualSystem");
	assert_int_equal(q->kind, WQL_REFERENCES);
	assert_string_equal(q->result_class, "Msvm_SnapshotOfVirtualSystem");
	wql_query_free(q);
}

static void test_wql_select_lists_and_case(void **state)
{
	(void)state;
	struct wql_query *q = wql_ok("select Name , ElementName,__PATH,__RELPATH, __CLASS FROM "
				     "msvm_computersystem where name = 'x'");
	assert_false(q->select_all);
	assert_int_equal(q->nprops, 5);
	assert_string_equal(q->props[0], "Name");
	assert_string_equal(q->props[2], "__PATH");
	assert_string_equal(q->props[4], "__CLASS");
	assert_string_equal(q->class_name, "msvm_computersystem");
	expect_cmp(q->where, "name", WQL_OP_EQ, "x");
	wql_query_free(q);
	q = wql_ok("  SeLeCt * fRoM X   ");
	expect_select(q, "X");
	wql_query_free(q);
	q = wql_ok("SELECT * FROM X WHERE\n\ta\t=\r\n1");
	assert_int_equal(q->where->lit.kind, WQL_LIT_INT);
	wql_query_free(q);
}

static void test_wql_precedence(void **state)
{
	(void)state;
	/* NOT > AND > OR */
	struct wql_query *q = wql_ok("SELECT * FROM X WHERE a='1' OR b='2' AND NOT c='3'");
	const struct wql_expr *e = q->where;
	assert_int_equal(e->kind, WQL_EXPR_OR);
	expect_cmp(e->left, "a", WQL_OP_EQ, "1");
	assert_int_equal(e->right->kind, WQL_EXPR_AND);
	expect_cmp(e->right->left, "b", WQL_OP_EQ, "2");
	assert_int_equal(e->right->right->kind, WQL_EXPR_NOT);
	expect_cmp(e->right->right->left, "c", WQL_OP_EQ, "3");
	assert_null(e->right->right->right);
	wql_query_free(q);
	/* parentheses override */
	q = wql_ok("SELECT * FROM X WHERE (a='1' OR b='2') AND c='3'");
	assert_int_equal(q->where->kind, WQL_EXPR_AND);
	assert_int_equal(q->where->left->kind, WQL_EXPR_OR);
	assert_int_equal(q->where->left->pos, 29); /* the OR node sits at its keyword */
	wql_query_free(q);
	/* chains are left-associative */
	q = wql_ok("SELECT * FROM X WHERE a='1' AND b='2' AND c='3'");
	assert_int_equal(q->where->kind, WQL_EXPR_AND);
	assert_int_equal(q->where->left->kind, WQL_EXPR_AND);
	expect_cmp(q->where->right, "c", WQL_OP_EQ, "3");
	expect_cmp(q->where->left->left, "a", WQL_OP_EQ, "1");
	wql_query_free(q);
	/* NOT binds tighter than AND; NOT NOT nests */
	q = wql_ok("SELECT * FROM X WHERE NOT NOT a='1' AND b='2'");
	assert_int_equal(q->where->kind, WQL_EXPR_AND);
	assert_int_equal(q->where->left->kind, WQL_EXPR_NOT);
	assert_int_equal(q->where->left->left->kind, WQL_EXPR_NOT);
	wql_query_free(q);
	q = wql_ok("SELECT * FROM X WHERE NOT (a='1' OR b='2')");
	assert_int_equal(q->where->kind, WQL_EXPR_NOT);
	assert_int_equal(q->where->left->kind, WQL_EXPR_OR);
	wql_query_free(q);
	q = wql_ok("SELECT * FROM X WHERE ((((a='1'))))");
	expect_cmp(q->where, "a", WQL_OP_EQ, "1");
	wql_query_free(q);
}

static void test_wql_normalisation(void **state)
{
	(void)state;
	static const struct {
		const char *where;
		enum wql_expr_kind kind;
		enum wql_op op;
	} cases[] = {
		{"5 < X", WQL_EXPR_CMP, WQL_OP_GT},   {"5 > X", WQL_EXPR_CMP, WQL_OP_LT},
		{"5 <= X", WQL_EXPR_CMP, WQL_OP_GE},  {"5 >= X", WQL_EXPR_CMP, WQL_OP_LE},
		{"5 = X", WQL_EXPR_CMP, WQL_OP_EQ},   {"5 <> X", WQL_EXPR_CMP, WQL_OP_NE},
		{"5 != X", WQL_EXPR_CMP, WQL_OP_NE},  {"X != 5", WQL_EXPR_CMP, WQL_OP_NE},
		{"X <> 5", WQL_EXPR_CMP, WQL_OP_NE},  {"X >= 5", WQL_EXPR_CMP, WQL_OP_GE},
		{"X = NULL", WQL_EXPR_ISNULL, 0},     {"NULL = X", WQL_EXPR_ISNULL, 0},
		{"X <> NULL", WQL_EXPR_ISNOTNULL, 0}, {"X != null", WQL_EXPR_ISNOTNULL, 0},
		{"NULL <> X", WQL_EXPR_ISNOTNULL, 0}, {"X IS NULL", WQL_EXPR_ISNULL, 0},
		{"X is not null", WQL_EXPR_ISNOTNULL, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char text[128];
		snprintf(text, sizeof text, "SELECT * FROM C WHERE %s", cases[i].where);
		struct wql_query *q = wql_ok(text);
		const struct wql_expr *e = q->where;
		if (e->kind != cases[i].kind || strcmp(e->prop, "X") ||
		    (e->kind == WQL_EXPR_CMP && (e->op != cases[i].op || e->lit.i != 5)))
			fail_msg("'%s' -> kind %d op %s prop %s", cases[i].where, e->kind,
				 wql_op_text(e->op), e->prop);
		assert_int_equal(e->pos, 22);
		wql_query_free(q);
	}
	assert_string_equal(wql_op_text(WQL_OP_NE), "<>");
	assert_string_equal(wql_op_text(WQL_OP_GE), ">=");
}

static void test_wql_literals(void **state)
{
	(void)state;
	static const struct {
		const char *lit;
		enum wql_lit_kind kind;
		const char *s;
		int64_t i;
		double r;
	} cases[] = {
		{"'plain'", WQL_LIT_STRING, "plain", 0, 0},
		{"\"double\"", WQL_LIT_STRING, "double", 0, 0},
		{"''", WQL_LIT_STRING, "", 0, 0},
		{"'it\\'s'", WQL_LIT_STRING, "it's", 0, 0},
		{"\"say \\\"hi\\\"\"", WQL_LIT_STRING, "say \"hi\"", 0, 0},
		{"'a\"b'", WQL_LIT_STRING, "a\"b", 0, 0},
		{"\"a'b\"", WQL_LIT_STRING, "a'b", 0, 0},
		{"'C:\\\\'", WQL_LIT_STRING, "C:\\", 0, 0}, /* KB 242507's example */
		{"'\xc3\xa9t\xc3\xa9'", WQL_LIT_STRING, "\xc3\xa9t\xc3\xa9", 0, 0},
		{"'(AND) OR {x}'", WQL_LIT_STRING, "(AND) OR {x}", 0, 0},
		{"42", WQL_LIT_INT, NULL, 42, 0},
		{"-42", WQL_LIT_INT, NULL, -42, 0},
		{"+7", WQL_LIT_INT, NULL, 7, 0},
		{"0x1F", WQL_LIT_INT, NULL, 31, 0},
		{"0XfF", WQL_LIT_INT, NULL, 255, 0},
		{"-9223372036854775808", WQL_LIT_INT, NULL, INT64_MIN, 0},
		{"9223372036854775807", WQL_LIT_INT, NULL, INT64_MAX, 0},
		{"1.5", WQL_LIT_REAL, NULL, 0, 1.5},
		{"-2e3", WQL_LIT_REAL, NULL, 0, -2000},
		{".5", WQL_LIT_REAL, NULL, 0, 0.5},
		{"5.", WQL_LIT_REAL, NULL, 0, 5},
		{"1E+2", WQL_LIT_REAL, NULL, 0, 100},
		{"TRUE", WQL_LIT_BOOL, NULL, 1, 0},
		{"false", WQL_LIT_BOOL, NULL, 0, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char text[128];
		snprintf(text, sizeof text, "SELECT * FROM C WHERE P = %s", cases[i].lit);
		struct wql_query *q = wql_ok(text);
		const struct wql_literal *l = &q->where->lit;
		if (l->kind != cases[i].kind)
			fail_msg("%s: kind %d", cases[i].lit, l->kind);
		if (l->kind == WQL_LIT_STRING)
			assert_string_equal(l->s, cases[i].s);
		else
			assert_null(l->s);
		if (l->kind == WQL_LIT_INT)
			assert_true(l->i == cases[i].i);
		if (l->kind == WQL_LIT_REAL)
			assert_true(l->r == cases[i].r);
		if (l->kind == WQL_LIT_BOOL)
			assert_int_equal(l->b, cases[i].i);
		wql_query_free(q);
	}
	struct wql_query *q = wql_ok("SELECT * FROM C WHERE P = 18446744073709551615");
	assert_int_equal(q->where->lit.kind, WQL_LIT_UINT);
	assert_true(q->where->lit.u == UINT64_MAX);
	wql_query_free(q);
	q = wql_ok("SELECT * FROM C WHERE P = 9223372036854775808");
	assert_int_equal(q->where->lit.kind, WQL_LIT_UINT);
	assert_true(q->where->lit.u == (uint64_t)INT64_MAX + 1);
	wql_query_free(q);
}

static void test_wql_like_and_is(void **state)
{
	(void)state;
	struct wql_query *q = wql_ok("SELECT * FROM meta_class WHERE __CLASS LIKE \"%[_][_]%\"");
	assert_int_equal(q->where->kind, WQL_EXPR_LIKE);
	assert_string_equal(q->where->prop, "__CLASS");
	assert_int_equal(q->where->lit.kind, WQL_LIT_STRING);
	assert_string_equal(q->where->lit.s, "%[_][_]%");
	wql_query_free(q);
	q = wql_ok("SELECT * FROM Msvm_VirtualSystemSettingData WHERE VirtualSystemType LIKE "
		   "'%:Snapshot:Recovery' AND Parent IS NOT NULL");
	assert_int_equal(q->where->left->kind, WQL_EXPR_LIKE);
	assert_int_equal(q->where->right->kind, WQL_EXPR_ISNOTNULL);
	assert_string_equal(q->where->right->prop, "Parent");
	wql_query_free(q);
}

static void test_wql_associators_keywords(void **state)
{
	(void)state;
	struct wql_query *q = wql_ok(
		"associators of { X.K=\"a}b\" }  where schemaonly KeysOnly Role=Dependent "
		"ResultRole = Antecedent RequiredQualifier=Association "
		"RequiredAssocQualifier=Assoc2 ResultClass=R AssocClass=A");
	assert_string_equal(q->object_text, "X.K=\"a}b\"");
	assert_string_equal(cim_path_key(q->object, "K"), "a}b");
	assert_true(q->schema_only);
	assert_true(q->keys_only);
	assert_false(q->class_defs_only);
	assert_string_equal(q->role, "Dependent");
	assert_string_equal(q->result_role, "Antecedent");
	assert_string_equal(q->required_qualifier, "Association");
	assert_string_equal(q->required_assoc_qualifier, "Assoc2");
	assert_string_equal(q->result_class, "R");
	assert_string_equal(q->assoc_class, "A");
	wql_query_free(q);
	q = wql_ok("ASSOCIATORS OF {Adapter=\"AHA-294X\"} WHERE ClassDefsOnly");
	assert_true(q->class_defs_only);
	assert_string_equal(cim_path_key(q->object, ""), "AHA-294X");
	wql_query_free(q);
	q = wql_ok("ASSOCIATORS OF {Adapter}");
	assert_string_equal(q->object->class_name, "Adapter");
	assert_int_equal(q->object->nkeys, 0);
	wql_query_free(q);
	q = wql_ok("REFERENCES OF {X=@} WHERE Role=Antecedent ClassDefsOnly KeysOnly "
		   "RequiredQualifier=Q ResultClass=Msvm_AffectedJobElement");
	assert_int_equal(q->kind, WQL_REFERENCES);
	assert_true(q->object->singleton);
	assert_string_equal(q->role, "Antecedent");
	assert_string_equal(q->result_class, "Msvm_AffectedJobElement");
	wql_query_free(q);
	q = wql_ok("REFERENCES OF {X.K='q\\'s'}");
	assert_null(q->result_class);
	assert_string_equal(cim_path_key(q->object, "K"), "q's");
	wql_query_free(q);
}

static void test_wql_malformed_positions(void **state)
{
	(void)state;
	static const struct {
		const char *q, *at;
		int delta;
		const char *msg;
	} bad[] = {
		{"", NULL, 0, "empty query"},
		{"   ", NULL, 0, "empty query"},
		{"SELEC * FROM X", "SELEC", 0, "expected SELECT, ASSOCIATORS OF or REFERENCES OF"},
		{"DELETE FROM X", "DELETE", 0, "expected SELECT"},
		{"SELECT * X", "X", 0, "expected FROM, found 'X'"},
		{"SELECT *", NULL, 0, "expected FROM, found end of query"},
		{"SELECT * FROM", NULL, 0, "expected a class name after FROM"},
		{"SELECT * FROM 'x'", "'x'", 0, "expected a class name after FROM, found string"},
		{"SELECT FROM X", "FROM", 0, "expected '*' or a property name"},
		{"SELECT a b FROM X", "b FROM", 0, "expected FROM (or ','"},
		{"SELECT a, FROM X", "FROM", 0, "expected '*' or a property name"},
		{"SELECT *, a FROM X", ",", 0, "expected FROM"},
		{"SELECT * FROM X Y", "Y", 0, "expected WHERE or end of query"},
		{"SELECT * FROM X WHERE", NULL, 0, "expected a property name, a literal or '('"},
		{"SELECT * FROM X WHERE a", NULL, 0, "expected a comparison operator"},
		{"SELECT * FROM X WHERE a =", NULL, 0, "expected a literal after the operator"},
		{"SELECT * FROM X WHERE a = b", "b", 0, "comparing two properties"},
		{"SELECT * FROM X WHERE 1 = 2", "2", 0, "comparing two literals"},
		{"SELECT * FROM X WHERE a = 'x", "'x", 0, "unterminated string"},
		{"SELECT * FROM X WHERE a = \"x", "\"x", 0, "unterminated string"},
		{"SELECT * FROM X WHERE a = 'it''s'", "''s", 1, "doubled quote is not a WQL escape"},
		{"SELECT * FROM X WHERE a = 'a\\qb'", "\\q", 0, "unknown escape"},
		{"SELECT * FROM X WHERE a = 'a\\", "'a", 0, "unterminated string"},
		{"SELECT * FROM X WHERE a = 'a\\'", "'a", 0, "unterminated string"},
		{"SELECT * FROM X WHERE a == 1", "= 1", 0, "expected a literal after the operator"},
		{"SELECT * FROM X WHERE a ! 1", "!", 0, "unexpected character '!'"},
		{"SELECT * FROM X WHERE a => 1", "> 1", 0, "expected a literal"},
		{"SELECT * FROM X WHERE (a = 1", "(", 0, "unbalanced '('"},
		{"SELECT * FROM X WHERE a = 1)", ")", 0, "unbalanced ')'"},
		{"SELECT * FROM X WHERE ((a = 1)", "(", 0, "unbalanced '('"},
		{"SELECT * FROM X WHERE (a = 1 b", "b", 0, "expected ')'"},
		{"SELECT * FROM X WHERE ()", ")", 0, "expected a property name, a literal or '('"},
		{"SELECT * FROM X WHERE a = 1 AND", NULL, 0, "expected a property name"},
		{"SELECT * FROM X WHERE a = 1 OR OR b = 2", "OR b", 0, "expected a property name"},
		{"SELECT * FROM X WHERE NOT", NULL, 0, "expected a property name"},
		{"SELECT * FROM X WHERE a IS 5", "5", 0, "expected NULL after IS"},
		{"SELECT * FROM X WHERE a IS NOT 'x'", "'x'", 0, "expected NULL after IS"},
		{"SELECT * FROM X WHERE a LIKE 5", "5", 0, "expected a string pattern after LIKE"},
		{"SELECT * FROM X WHERE a LIKE '%[abc'", "'%", 0, "character 1 has no closing ']'"},
		{"SELECT * FROM X WHERE a ISA 'Y'", "ISA", 0, "ISA is not supported"},
		{"SELECT * FROM X ISA Y", "ISA", 0, "ISA is not supported"},
		{"SELECT * FROM X WHERE a < NULL", "<", 0, "NULL can only be compared"},
		{"SELECT * FROM X WHERE NULL > a", ">", 0, "NULL can only be compared"},
		{"SELECT * FROM X WHERE 'x' LIKE a", "LIKE", 0, "LIKE needs the property on its left"},
		{"SELECT * FROM X WHERE 5 IS NULL", "IS", 0, "IS needs the property on its left"},
		{"SELECT * FROM X WHERE a NOT LIKE 'x'", "NOT", 0, "expected a comparison operator"},
		{"SELECT * FROM X WHERE a = 0x", "0x", 0, "malformed hex number"},
		{"SELECT * FROM X WHERE a = 12abc", "12abc", 0, "malformed number"},
		{"SELECT * FROM X WHERE a = 1.2.3", "1.2", 0, "malformed number"},
		{"SELECT * FROM X WHERE a = 99999999999999999999", "999", 0, "integer out of range"},
		{"SELECT * FROM X WHERE a = -9223372036854775809", "-9", 0, "integer out of range"},
		{"SELECT * FROM X WHERE a = 1e", "1e", 0, "exponent without digits"},
		{"SELECT * FROM X WHERE a = 1e999", "1e", 0, "real number out of range"},
		{"SELECT * FROM X WHERE a = - 1", "-", 0, "unexpected character '-'"},
		{"SELECT * FROM X WHERE a = 1.000000000000000000000000000000000000000000000000000000"
		 "0000000000000000000000000001",
		 "1.", 0, "number too long"},
		{"SELECT * FROM X WHERE a = 1 # b", "#", 0, "unexpected character '#'"},
		{"SELECT * FROM X WHERE a = 'x' \x01", "\x01", 0, "unexpected byte 0x01"},
		{"SELECT * FROM X WHERE \xc3\xa9 = 1", "\xc3", 0, "unexpected byte 0xc3"},
		{"SELECT * FROM X WHERE a = 1 b = 2", "b =", 0, "expected AND, OR or end of query"},
		{"SELECT * FROM X WHERE a = 'x' 'y'", "'y'", 0, "expected AND, OR or end of query"},
		{"SELECT * FROM X WITHIN 5", "WITHIN", 0, "event queries (WITHIN) are not supported"},
		{"SELECT * FROM X GROUP WITHIN 5", "GROUP", 0, "event queries"},
		{"SELECT * FROM X WHERE a = TRUE AND", NULL, 0, "expected a property name"},
		{"SELECT * FROM X WHERE AND = 1", "AND", 0, "expected a property name, a literal"},
		{"SELECT * FROM X }", "}", 0, "unexpected character '}'"},
		{"ASSOCIATORS {X.K=1}", "{", 0, "expected OF after ASSOCIATORS"},
		{"REFERENCES X", "X", 0, "expected OF after REFERENCES"},
		{"ASSOCIATORS OF X.K=1", "X", 0, "expected '{' object path '}'"},
		{"ASSOCIATORS OF", NULL, 0, "expected '{' object path '}'"},
		{"ASSOCIATORS OF {X.K=1", "{", 0, "unterminated '{'"},
		{"ASSOCIATORS OF {X.K=\"}", "{", 0, "unterminated '{'"},
		{"ASSOCIATORS OF {}", "}", 0, "empty object path between '{' and '}'"},
		{"ASSOCIATORS OF {   }", "{", 1, "empty object path"},
		{"ASSOCIATORS OF {X.K=}", "}", 0, "object path: expected a key value"},
		{"ASSOCIATORS OF {  X.K=\"a\\qb\" }", "\\q", 0, "object path: unknown escape"},
		{"ASSOCIATORS OF {X.K = 1}", " =", 0, "object path: white space is not allowed"},
		{"ASSOCIATORS OF {X.K=1} WHERE", NULL, 0, "expected a keyword after WHERE"},
		{"ASSOCIATORS OF {X.K=1} WHERE ResultClass", NULL, 0, "expected '=' after ResultClass"},
		{"ASSOCIATORS OF {X.K=1} WHERE ResultClass <> Y", "<>", 0, "expected '='"},
		{"ASSOCIATORS OF {X.K=1} WHERE ResultClass =", NULL, 0,
		 "expected a name after ResultClass ="},
		{"ASSOCIATORS OF {X.K=1} WHERE ResultClass = 'Y'", "'Y'", 0, "expected a name"},
		{"ASSOCIATORS OF {X.K=1} WHERE ResultClass=A resultclass=B", "resultclass", 0,
		 "ResultClass given twice"},
		{"ASSOCIATORS OF {X.K=1} WHERE ResultClass=A AND AssocClass=B", "AND", 0,
		 "AND is not used in ASSOCIATORS OF"},
		{"ASSOCIATORS OF {X.K=1} WHERE Foo=B", "Foo", 0, "expected an ASSOCIATORS OF keyword"},
		{"REFERENCES OF {X.K=1} WHERE AssocClass=B", "AssocClass", 0,
		 "AssocClass is not valid in REFERENCES OF"},
		{"REFERENCES OF {X.K=1} WHERE ResultRole=B", "ResultRole", 0, "not valid in REFERENCES"},
		{"REFERENCES OF {X.K=1} WHERE RequiredAssocQualifier=B", "Required", 0,
		 "not valid in REFERENCES"},
		{"REFERENCES OF {X.K=1} WHERE Foo", "Foo", 0, "expected a REFERENCES OF keyword"},
		{"ASSOCIATORS OF {X.K=1} WHERE ClassDefsOnly ClassDefsOnly", "ClassDefsOnly C", 14,
		 "ClassDefsOnly given twice"},
		{"ASSOCIATORS OF {X.K=1} WHERE ClassDefsOnly SchemaOnly", "SchemaOnly", 0,
		 "cannot be combined"},
		{"ASSOCIATORS OF {X.K=1} junk", "junk", 0, "expected WHERE or end of query"},
		{"ASSOCIATORS OF {X.K=1} {Y}", "{Y", 0, "expected WHERE or end of query"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct wql_query *q = (struct wql_query *)1;
		size_t pos = 999999;
		int rc = wql_parse_ex(bad[i].q, &q, &pos);
		if (rc != HV_EINVAL)
			fail_msg("query '%s' accepted (rc %d)", bad[i].q, rc);
		assert_null(q);
		check_pos_msg("query", bad[i].q, pos_of(bad[i].q, bad[i].at, bad[i].delta), pos,
			      bad[i].msg);
		msg_has("WQL: ");
	}
	assert_true(sizeof bad / sizeof bad[0] >= 40);
	struct wql_query *q;
	assert_int_equal(wql_parse(NULL, &q), HV_EINVAL);
}

static void test_wql_bounds(void **state)
{
	(void)state;
	const char *head = "SELECT * FROM X WHERE ";
	size_t hl = strlen(head);
	char *text = malloc(hl + 4 * 10000 + 64);
	struct wql_query *q = NULL;
	size_t pos = 0;
	/* 10000 '(' : refused at the 65th, no stack exhaustion */
	strcpy(text, head);
	memset(text + hl, '(', 10000);
	strcpy(text + hl + 10000, "a=1");
	memset(text + hl + 10003, ')', 10000);
	text[hl + 20003] = 0;
	assert_int_equal(wql_parse_ex(text, &q, &pos), HV_EINVAL);
	assert_int_equal(pos, hl + 64);
	msg_has("nested deeper than 64");
	/* 64 levels are fine */
	strcpy(text, head);
	memset(text + hl, '(', 64);
	strcpy(text + hl + 64, "a='1'");
	memset(text + hl + 69, ')', 64);
	text[hl + 133] = 0;
	q = wql_ok(text);
	expect_cmp(q->where, "a", WQL_OP_EQ, "1");
	wql_query_free(q);
	/* 10000 NOTs */
	strcpy(text, head);
	for (int i = 0; i < 10000; i++)
		memcpy(text + hl + 4 * i, "NOT ", 4);
	strcpy(text + hl + 40000, "a='1'");
	assert_int_equal(wql_parse_ex(text, &q, &pos), HV_EINVAL);
	assert_int_equal(pos, hl + 4 * 64);
	free(text);

	/* more than WQL_MAX_NODES conditions */
	char *chain = malloc(20000);
	size_t n = (size_t)sprintf(chain, "%s", head);
	for (int i = 0; i < 600; i++)
		n += (size_t)sprintf(chain + n, "a=1 AND ");
	sprintf(chain + n, "a=1");
	assert_int_equal(wql_parse_ex(chain, &q, &pos), HV_EINVAL);
	msg_has("more than 1024 conditions");
	n = (size_t)sprintf(chain, "%s", head);
	for (int i = 0; i < 500; i++)
		n += (size_t)sprintf(chain + n, "a=1 AND ");
	sprintf(chain + n, "a=1");
	q = wql_ok(chain);
	wql_query_free(q);
	free(chain);

	/* length bound */
	char *huge = malloc(WQL_MAX_LEN + 2);
	memcpy(huge, "SELECT * FROM X WHERE a='", 25);
	memset(huge + 25, 'x', WQL_MAX_LEN - 26);
	huge[WQL_MAX_LEN - 1] = '\'';
	huge[WQL_MAX_LEN] = 0;
	q = wql_ok(huge); /* exactly 64 KiB */
	assert_int_equal(strlen(q->where->lit.s), WQL_MAX_LEN - 26);
	wql_query_free(q);
	huge[WQL_MAX_LEN - 1] = 'x';
	huge[WQL_MAX_LEN] = '\'';
	huge[WQL_MAX_LEN + 1] = 0;
	assert_int_equal(wql_parse_ex(huge, &q, &pos), HV_EINVAL);
	assert_int_equal(pos, WQL_MAX_LEN);
	msg_has("query longer than 65536 bytes");
	free(huge);
}

/* ==== LIKE ==================================================================================*/

static void test_like_table(void **state)
{
	(void)state;
	static const struct {
		const char *s, *pat;
		bool match;
	} cases[] = {
		{"abc", "abc", true},
		{"ABC", "abc", true},
		{"abc", "ABC", true},
		{"abc", "ab", false},
		{"ab", "abc", false},
		{"abc", "a%", true},
		{"abc", "%c", true},
		{"abc", "%b%", true},
		{"abc", "%d%", false},
		{"abc", "a_c", true},
		{"ac", "a_c", false},
		{"abbc", "a_c", false},
		{"abc", "a[bx]c", true},
		{"axc", "a[bx]c", true},
		{"ayc", "a[bx]c", false},
		{"axc", "a[^b]c", true},
		{"abc", "a[^b]c", false},
		{"aBc", "a[a-c]c", true},
		{"abc", "a[A-C]c", true},
		{"aDc", "a[a-c]c", false},
		{"aDc", "a[^a-c]c", true},
		{"a_c", "a[_]c", true},
		{"abc", "a[_]c", false},
		{"50%", "50[%]", true},
		{"500", "50[%]", false},
		{"a[c", "a[[]c", true},
		{"a]b", "a[]]b", true},
		{"a-b", "a[-]b", true},
		{"a-c", "a[b-]c", true},
		{"abc", "a[b-]c", true},
		{"ab[c", "ab[c", true},   /* '[' without ']' is itself */
		{"ab[", "ab[", true},
		{"", "%", true},
		{"", "", true},
		{"", "_", false},
		{"a", "", false},
		{"abc", "%%%", true},
		{"abc", "%_%_%_%", true},
		{"ab", "%_%_%_%", false},
		{"__PATH", "[_][_]%", true},
		{"_PATH", "[_][_]%", false},
		{"Msvm_ComputerSystem", "msvm[_]%", true},
		{"Win32_Process", "%Win32%", true},
		{"Microsoft:Hyper-V:Snapshot:Recovery", "%:Snapshot:%", true},
		{"Microsoft:Hyper-V:Snapshot:Realized", "%:Recovery", false},
		{"\xc3\xa9", "_", true},            /* one character, two bytes */
		{"\xc3\xa9" "a", "_a", true},
		{"a\xc3\xa9", "a[\xc3\xa9x]", true},
		{"a\xc3\xa9", "a[^\xc3\xa9]", false},
		{"\xc3\xa9t\xc3\xa9", "%t%", true},
		{"mississippi", "%iss%ipp%", true},
		{"mississippi", "m%ss%ss%pi", true},
		{"mississippi", "m%ss%ss%ss%", false},
		{"aaa", "a%a%a", true},
		{"aa", "a%a%a", false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (wql_like_match(cases[i].s, cases[i].pat) != cases[i].match)
			fail_msg("'%s' LIKE '%s' should be %s", cases[i].s, cases[i].pat,
				 cases[i].match ? "true" : "false");
	/* worst cases for backtracking matchers: bounded by construction (n * m) */
	char *s = malloc(20001);
	memset(s, 'a', 20000);
	s[20000] = 0;
	assert_false(wql_like_match(s, "%a%a%a%a%a%a%a%a%a%a%a%a%b"));
	assert_true(wql_like_match(s, "%a%a%a%a%a%a%a%a%a%a%a%a"));
	s[19999] = 'b';
	assert_true(wql_like_match(s, "%a%a%a%a%a%a%a%a%a%a%a%a%b"));
	char *pat = malloc(4002);
	for (int i = 0; i < 2000; i++)
		memcpy(pat + 2 * i, "%a", 2);
	pat[4000] = '%';
	pat[4001] = 0;
	assert_true(wql_like_match(s, pat));
	pat[3999] = 'c';
	assert_false(wql_like_match(s, pat));
	free(pat);
	free(s);

	size_t at = 99;
	assert_int_equal(wql_like_check("%[_][_]%", &at), 0);
	assert_int_equal(wql_like_check("a[]]b[^]]", &at), 0);
	assert_int_equal(wql_like_check("ab[cd", &at), HV_EINVAL);
	assert_int_equal(at, 2);
	assert_int_equal(wql_like_check("[]", &at), HV_EINVAL); /* ']' right after '[' is a member */
	assert_int_equal(at, 0);
}

/* Independent reference: plain recursion over bytes (ASCII inputs only, tiny lengths). */
static bool ref_set(const char *p, const char **end, char c, bool *ok)
{
	const char *q = p + 1;
	bool neg = false, hit = false;
	if (*q == '^') {
		neg = true;
		q++;
	}
	const char *first = q;
	while (*q && (*q != ']' || q == first))
		q++;
	if (!*q) {
		*ok = false;
		return false;
	}
	*end = q + 1;
	*ok = true;
	for (const char *r = first; r < q; r++) {
		char lo = r[0], hi = r[0];
		if (r + 2 < q && r[1] == '-') {
			hi = r[2];
			r += 2;
		}
		lo = (char)(lo >= 'A' && lo <= 'Z' ? lo + 32 : lo);
		hi = (char)(hi >= 'A' && hi <= 'Z' ? hi + 32 : hi);
		char lc = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		if (lc >= lo && lc <= hi)
			hit = true;
	}
	return hit != neg;
}

static bool ref_like(const char *s, const char *p)
{
	if (!*p)
		return !*s;
	if (*p == '%')
		return ref_like(s, p + 1) || (*s && ref_like(s + 1, p));
	if (!*s)
		return false;
	if (*p == '_')
		return ref_like(s + 1, p + 1);
	if (*p == '[') {
		const char *end;
		bool ok;
		bool in = ref_set(p, &end, *s, &ok);
		if (ok)
			return in && ref_like(s + 1, end);
	}
	char a = (char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
	char b = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	return a == b && ref_like(s + 1, p + 1);
}

static void test_like_against_reference(void **state)
{
	(void)state;
	struct hv_rng r = hv_rng_stream(42, "like");
	static const char salpha[] = "abAB-]";
	static const char palpha[] = "abAB%_[]^-";
	for (int n = 0; n < 30000; n++) {
		char s[8], p[8];
		size_t ls = hv_rng_next(&r) % 7, lp = hv_rng_next(&r) % 7;
		for (size_t i = 0; i < ls; i++)
			s[i] = salpha[hv_rng_next(&r) % (sizeof salpha - 1)];
		for (size_t i = 0; i < lp; i++)
			p[i] = palpha[hv_rng_next(&r) % (sizeof palpha - 1)];
		s[ls] = p[lp] = 0;
		if (wql_like_match(s, p) != ref_like(s, p))
			fail_msg("'%s' LIKE '%s': matcher %d, reference %d", s, p,
				 wql_like_match(s, p), ref_like(s, p));
	}
}

/* ==== datetimes =============================================================================*/

static void expect_datetime(uint64_t ft, const char *text)
{
	char out[CIM_DATETIME_LEN + 1];
	uint64_t back = 1;
	assert_int_equal(cim_datetime_format(ft, out), 0);
	assert_string_equal(out, text);
	assert_int_equal(cim_datetime_parse(text, &back), 0);
	assert_true(back == ft - ft % 10); /* below a microsecond is not representable */
}

static void test_datetime_known_answers(void **state)
{
	(void)state;
	/* expected FILETIMEs computed with Python's datetime, not with this code */
	expect_datetime(0, "16010101000000.000000+000");
	expect_datetime(116444736000000000ull, "19700101000000.000000+000");
	assert_int_equal(CIM_FILETIME_UNIX_EPOCH, 116444736000000000ull);
	expect_datetime(134401700967890120ull, "20261126123456.789012+000");
	expect_datetime(134401700967890129ull, "20261126123456.789012+000");
	expect_datetime(125962560000000000ull, "20000229000000.000000+000");
	expect_datetime(133537247990000000ull, "20240229235959.000000+000");
	expect_datetime(2650467743999999999ull, "99991231235959.999999+000");
	char out[CIM_DATETIME_LEN + 1] = "junk";
	assert_int_equal(cim_datetime_format(2650467744000000000ull, out), HV_EINVAL);
	assert_string_equal(out, "");
	msg_has("after year 9999");
	assert_int_equal(cim_datetime_format(UINT64_MAX, out), HV_EINVAL);
}

static void test_datetime_offsets_and_leap_years(void **state)
{
	(void)state;
	uint64_t ft;
	/* 12:34 at UTC+60 is 11:34 UTC; at UTC-300 it is 17:34 UTC */
	assert_int_equal(cim_datetime_parse("20261126123456.789012+060", &ft), 0);
	assert_true(ft == 134401700967890120ull - 3600ull * CIM_TICKS_PER_SECOND);
	assert_int_equal(cim_datetime_parse("20261126123456.789012-300", &ft), 0);
	assert_true(ft == 134401700967890120ull + 5ull * 3600 * CIM_TICKS_PER_SECOND);
	/* the offset may cross midnight and the year */
	char out[CIM_DATETIME_LEN + 1];
	assert_int_equal(cim_datetime_parse("20270101003000.000000+060", &ft), 0);
	assert_int_equal(cim_datetime_format(ft, out), 0);
	assert_string_equal(out, "20261231233000.000000+000");
	/* leap rules: 2000 and 2400 leap, 1900 and 2100 not */
	assert_int_equal(cim_datetime_parse("20000229120000.000000+000", &ft), 0);
	assert_int_equal(cim_datetime_parse("24000229120000.000000+000", &ft), 0);
	assert_int_equal(cim_datetime_parse("19000229120000.000000+000", &ft), HV_EINVAL);
	assert_int_equal(cim_datetime_parse("21000229120000.000000+000", &ft), HV_EINVAL);
	assert_int_equal(cim_datetime_parse("20230229120000.000000+000", &ft), HV_EINVAL);
	assert_int_equal(cim_datetime_parse("20240229120000.000000+000", &ft), 0);
	/* the day after 1900-02-28 is 03-01; after 2000-02-28 it is 02-29 */
	assert_int_equal(cim_datetime_parse("19000228000000.000000+000", &ft), 0);
	assert_int_equal(cim_datetime_format(ft + 864000000000ull, out), 0);
	assert_string_equal(out, "19000301000000.000000+000");
	assert_int_equal(cim_datetime_parse("20000228000000.000000+000", &ft), 0);
	assert_int_equal(cim_datetime_format(ft + 864000000000ull, out), 0);
	assert_string_equal(out, "20000229000000.000000+000");
	/* before 1601 (also through the offset) */
	assert_int_equal(cim_datetime_parse("16001231235959.000000+000", &ft), HV_EINVAL);
	msg_has("before 1601-01-01 UTC");
	assert_int_equal(cim_datetime_parse("16010101000000.000000+001", &ft), HV_EINVAL);
	assert_int_equal(cim_datetime_parse("16010101000000.000000-001", &ft), 0);
	assert_true(ft == 60ull * CIM_TICKS_PER_SECOND);
}

/* An independent calendar: walk every day from 1601-01-01 with month lengths, and check the
 * formatter agrees at each midnight (and the parser gives the same day count back). */
static void test_datetime_day_by_day_walk(void **state)
{
	(void)state;
	static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y = 1601, m = 1, d = 1;
	for (uint64_t day = 0; y <= 2500; day++) {
		char want[64], got[CIM_DATETIME_LEN + 1];
		uint64_t ft = day * 864000000000ull, back;
		snprintf(want, sizeof want, "%04d%02d%02d000000.000000+000", y, m, d);
		assert_int_equal(cim_datetime_format(ft, got), 0);
		if (strcmp(want, got))
			fail_msg("day %llu: formatted %s, calendar says %s", (unsigned long long)day,
				 got, want);
		assert_int_equal(cim_datetime_parse(want, &back), 0);
		assert_true(back == ft);
		bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
		if (++d > dim[m - 1] + (m == 2 && leap)) {
			d = 1;
			if (++m > 12) {
				m = 1;
				y++;
			}
		}
	}
}

static void test_intervals(void **state)
{
	(void)state;
	char out[CIM_DATETIME_LEN + 1];
	uint64_t t;
	cim_interval_format(5ull * 60 * CIM_TICKS_PER_SECOND, out);
	assert_string_equal(out, "00000000000500.000000:000"); /* TimeBeforeRemoval default */
	cim_interval_format(0, out);
	assert_string_equal(out, "00000000000000.000000:000");
	uint64_t v = ((((1ull * 24 + 2) * 60 + 3) * 60 + 4) * 1000000 + 5) * 10;
	cim_interval_format(v, out);
	assert_string_equal(out, "00000001020304.000005:000");
	assert_int_equal(cim_interval_parse(out, &t), 0);
	assert_true(t == v);
	cim_interval_format(UINT64_MAX, out);
	assert_string_equal(out, "21350398053610.955161:000");
	assert_int_equal(cim_interval_parse(out, &t), 0);
	assert_true(t == UINT64_MAX - 5);
	assert_int_equal(cim_interval_parse("99999999235959.999999:000", &t), HV_EINVAL);
	msg_has("longer than 2^64 ticks");
	assert_int_equal(cim_interval_parse("00000000000500.000000:000", &t), 0);
	assert_true(t == 3000000000ull);
}

static void test_datetime_malformed(void **state)
{
	(void)state;
	static const char *const bad_dt[] = {
		"",
		"20261126123456.789012+00",
		"20261126123456.789012+0000",
		"20261126123456,789012+000",
		"20261126123456.789012*000",
		"2026112612345*.789012+000",
		"********123456.789012+000",
		"20261326123456.789012+000",
		"20260026123456.789012+000",
		"20261100123456.789012+000",
		"20261132123456.789012+000",
		"20260431123456.789012+000",
		"20261126243456.789012+000",
		"20261126126056.789012+000",
		"20261126123460.789012+000",
		"2026112612345a.789012+000",
		"20261126123456.78901x+000",
		"20261126123456.789012+0a0",
		" 0261126123456.789012+000",
		"-0261126123456.789012+000",
		"00000000000500.000000:000", /* an interval is not a timestamp */
	};
	uint64_t t;
	for (size_t i = 0; i < sizeof bad_dt / sizeof bad_dt[0]; i++)
		if (cim_datetime_parse(bad_dt[i], &t) != HV_EINVAL)
			fail_msg("datetime '%s' accepted", bad_dt[i]);
	assert_int_equal(cim_datetime_parse("2026112612345*.789012+000", &t), HV_EINVAL);
	msg_has("wildcard");
	static const char *const bad_iv[] = {
		"00000000000500.000000:00",   "00000000000500.000000+000",
		"00000000000500.000000:001",  "00000000240000.000000:000",
		"00000000006000.000000:000",  "00000000000060.000000:000",
		"0000000000050.0000000:000",  "0000000a000500.000000:000",
		"20261126123456.789012+000",
	};
	for (size_t i = 0; i < sizeof bad_iv / sizeof bad_iv[0]; i++)
		if (cim_interval_parse(bad_iv[i], &t) != HV_EINVAL)
			fail_msg("interval '%s' accepted", bad_iv[i]);
}

/* Each of these was found by the mutation loops or a libFuzzer run; under ASan they also check
 * that the error paths free what they built. */
static void test_regressions_from_fuzzing(void **state)
{
	(void)state;
	struct wql_query *q = NULL;
	size_t pos;
	/* a parenthesised operand whose ')' is followed by a bad byte leaked the inner tree */
	assert_int_equal(wql_parse_ex("select a from X where (a <> 5 or NOT(b IS NULL)\x8d and c=1",
				      &q, &pos),
			 HV_EINVAL);
	assert_int_equal(pos, 47);
	msg_has("unexpected byte 0x8d");
	/* a MOF literal followed by a lexer error leaked the literal */
	inst_bad("instance of X { A = 'c' \x01", "unexpected character");
	inst_bad("instance of X { A = 12 \x01", "unexpected character");
	/* MOF text must be UTF-8: a stray byte became a value the XML writer emitted raw */
	inst_bad("instance of X {\n CC = '\xff'; };", "line 2: MOF: text is not valid UTF-8");
	inst_bad("instance of X { S = \"\xc3\"; };", "not valid UTF-8");
	inst_bad("instance of X { S = \"\xed\xa0\x80\"; };", "not valid UTF-8"); /* surrogate */
	inst_bad("instance of X { S = \"\\xD800\"; };", "unknown escape");
	/* and the writer refuses invalid UTF-8 from the builder instead of emitting it */
	struct cim_instance *inst = NULL;
	assert_int_equal(cim_instance_new("X", &inst), 0);
	assert_int_equal(cim_instance_set(inst, "S", CIM_TYPE_STRING, "a\xff" "b"), 0);
	assert_null(cim_instance_to_xml(inst));
	msg_has("invalid UTF-8");
	cim_instance_free(inst);
	/* U+FFFF is valid UTF-8 but not an XML character: the writer must refuse it too */
	inst = inst_ok("instance of sm_X {m_Xpr= \"\xef\xbf\xbfor IOT \";}");
	assert_null(cim_instance_to_xml(inst));
	msg_has("property m_Xpr");
	cim_instance_free(inst);
	assert_int_equal(cim_instance_new("X", &inst), 0);
	assert_int_equal(cim_instance_set(inst, "S", CIM_TYPE_STRING, "\xef\xbf\xbe"), 0);
	assert_null(cim_instance_to_xml(inst));
	assert_int_equal(cim_instance_set(inst, "S", CIM_TYPE_STRING, "\xef\xbf\xbd"), 0);
	char *ok = cim_instance_to_xml(inst); /* U+FFFD is fine */
	assert_non_null(ok);
	free(ok);
	cim_instance_free(inst);
	/* a declared legacy encoding is decoded to UTF-8 by libxml2 */
	inst = inst_ok("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><INSTANCE CLASSNAME=\"X\">"
		       "<PROPERTY NAME=\"S\" TYPE=\"string\"><VALUE>caf\xe9</VALUE></PROPERTY>"
		       "</INSTANCE>");
	assert_string_equal(cim_instance_get(inst, "S"), "caf\xc3\xa9");
	cim_instance_free(inst);
	/* a CDATA-wrapped instance inside <VALUE> was taken for stray text */
	inst = inst_ok("<VALUE> <![CDATA[<INSTANCE CLASSNAME=\"Y\"/>]]> </VALUE>");
	assert_string_equal(inst->class_name, "Y");
	cim_instance_free(inst);
}

/* ==== robustness ============================================================================*/

static const char *const wql_seeds[] = {
	"SELECT * FROM Msvm_ComputerSystem WHERE ElementName='vm' AND Caption='Virtual Machine'",
	"select Name, __PATH from X where (a <> 5 or NOT b IS NULL) and c LIKE '%[_]x[^a-c]'",
	"SELECT * FROM Msvm_StorageAllocationSettingData WHERE InstanceID='Microsoft:A\\\\0\\\\D'",
	"ASSOCIATORS OF {\\\\HOST\\root\\virtualization\\v2:Msvm_ComputerSystem."
	"CreationClassName=\"Msvm_ComputerSystem\",Name=\"x\"} WHERE "
	"ResultClass=Msvm_VirtualSystemReferencePoint AssocClass=Msvm_ReferencePointOfVirtualSystem",
	"REFERENCES OF {X.K='a}b'} WHERE ResultClass=R Role=Dependent KeysOnly",
	"SELECT * FROM C WHERE 5 >= X OR -0x1F < Y AND Z = 1.5e3 OR W = \"q\\\"\"",
};

static const char *const path_seeds[] = {
	"\\\\HOST\\root\\virtualization\\v2:Msvm_ComputerSystem.CreationClassName="
	"\"Msvm_ComputerSystem\",Name=\"" VM_GUID "\"",
	"Msvm_StorageAllocationSettingData.InstanceID=\"Microsoft:A\\\\0\\\\0\\\\D\"",
	"X.A='it\\'s',B=-42,C=0x1F,D=TRUE",
	"//./root/cimv2:S=@",
	"Adapter=\"AHA\"",
};

static const char *const inst_seeds[] = {
	snapshot_xml,
	"<?xml version=\"1.0\"?><VALUE><INSTANCE CLASSNAME=\"A\"><PROPERTY.ARRAY NAME=\"L\" "
	"TYPE=\"string\"><VALUE.ARRAY><VALUE>a&amp;b</VALUE><VALUE><![CDATA[<x>]]></VALUE>"
	"</VALUE.ARRAY></PROPERTY.ARRAY><PROPERTY.REFERENCE NAME=\"R\"><VALUE.REFERENCE>"
	"<INSTANCEPATH><NAMESPACEPATH><HOST>H</HOST><LOCALNAMESPACEPATH><NAMESPACE NAME=\"root\"/>"
	"</LOCALNAMESPACEPATH></NAMESPACEPATH><INSTANCENAME CLASSNAME=\"C\"><KEYBINDING NAME=\"K\">"
	"<KEYVALUE VALUETYPE=\"numeric\">1</KEYVALUE></KEYBINDING></INSTANCENAME></INSTANCEPATH>"
	"</VALUE.REFERENCE></PROPERTY.REFERENCE></INSTANCE></VALUE>",
	"instance of Msvm_X { [key] Prop = 1; Other = \"s\\\"q\" \"t\"; Arr = {\"a\",\"b\"}; "
	"N = NULL; R = -2.5e3; C = 'c'; };",
};

/* One seeded mutation of `src` into buf (NUL-terminated); returns the length. */
static size_t mutate(struct hv_rng *r, const char *src, char *buf, size_t cap)
{
	static const char interesting[] = "\"'\\{}()[]=,.:@%_^-<>!&;*# \t\n\x01\xff\xc3"
					  "aZ09$/";
	size_t n = strlen(src);
	memcpy(buf, src, n + 1);
	int edits = 1 + (int)(hv_rng_next(r) % 4);
	for (int e = 0; e < edits && n + 8 < cap; e++) {
		size_t at = n ? hv_rng_next(r) % n : 0;
		char c = interesting[hv_rng_next(r) % (sizeof interesting - 1)];
		switch (hv_rng_next(r) % 5) {
		case 0: /* replace */
			if (n)
				buf[at] = c;
			break;
		case 1: /* insert */
			memmove(buf + at + 1, buf + at, n - at + 1);
			buf[at] = c;
			n++;
			break;
		case 2: /* delete */
			if (n) {
				memmove(buf + at, buf + at + 1, n - at);
				n--;
			}
			break;
		case 3: /* truncate */
			n = at;
			buf[n] = 0;
			break;
		default: { /* duplicate a short slice */
			size_t len = 1 + hv_rng_next(r) % 8;
			if (at + len > n)
				len = n - at;
			if (n + len + 1 < cap) {
				memmove(buf + at + len, buf + at, n - at + 1);
				n += len;
			}
		}
		}
	}
	return n;
}

/* Walks a parsed WHERE tree checking the shape the translator relies on. */
static void check_expr(const struct wql_expr *e)
{
	switch (e->kind) {
	case WQL_EXPR_AND:
	case WQL_EXPR_OR:
		assert_non_null(e->left);
		assert_non_null(e->right);
		check_expr(e->left);
		check_expr(e->right);
		break;
	case WQL_EXPR_NOT:
		assert_non_null(e->left);
		assert_null(e->right);
		check_expr(e->left);
		break;
	default:
		assert_non_null(e->prop);
		assert_null(e->left);
		if (e->kind == WQL_EXPR_LIKE)
			assert_int_equal(e->lit.kind, WQL_LIT_STRING);
		if (e->kind == WQL_EXPR_CMP)
			assert_int_not_equal(e->lit.kind, WQL_LIT_NULL);
	}
}

static void test_fuzz_wql(void **state)
{
	(void)state;
	struct hv_rng r = hv_rng_stream(1, "fuzz-wql");
	char buf[1024];
	for (int i = 0; i < 30000; i++) {
		mutate(&r, wql_seeds[i % (sizeof wql_seeds / sizeof wql_seeds[0])], buf, sizeof buf);
		struct wql_query *q = NULL;
		size_t pos = SIZE_MAX;
		int rc = wql_parse_ex(buf, &q, &pos);
		if (rc) {
			assert_int_equal(rc, HV_EINVAL);
			assert_null(q);
			assert_true(pos <= strlen(buf));
			continue;
		}
		if (q->where)
			check_expr(q->where);
		if (q->kind != WQL_SELECT)
			assert_non_null(q->object);
		wql_query_free(q);
	}
}

static void test_fuzz_paths(void **state)
{
	(void)state;
	struct hv_rng r = hv_rng_stream(2, "fuzz-path");
	char buf[1024];
	for (int i = 0; i < 30000; i++) {
		size_t n = mutate(&r, path_seeds[i % (sizeof path_seeds / sizeof path_seeds[0])], buf,
				  sizeof buf);
		struct cim_path *p = NULL, *back = NULL;
		size_t pos = SIZE_MAX;
		if (cim_path_parse_ex(buf, n, &p, &pos)) {
			assert_true(pos <= n);
			continue;
		}
		/* whatever parses prints back to text that parses to the same path */
		char *full = cim_path_format_full(p, NULL, NULL);
		if (cim_path_parse(full, &back))
			fail_msg("'%s' parsed, but its text '%s' does not: %s", buf, full,
				 hv_errmsg());
		assert_true(cim_path_equal(p, back));
		free(full);
		cim_path_free(back);
		cim_path_free(p);
	}
}

static void test_fuzz_instances(void **state)
{
	(void)state;
	struct hv_rng r = hv_rng_stream(3, "fuzz-instance");
	char buf[4096];
	for (int i = 0; i < 6000; i++) {
		size_t n = mutate(&r, inst_seeds[i % (sizeof inst_seeds / sizeof inst_seeds[0])], buf,
				  sizeof buf);
		struct cim_instance *inst = NULL, *back = NULL;
		if (cim_instance_parse(buf, n, &inst)) {
			assert_null(inst);
			continue;
		}
		char *xml = cim_instance_to_xml(inst);
		if (xml) { /* refused only for values XML cannot carry */
			if (cim_instance_parse(xml, strlen(xml), &back))
				fail_msg("own output refused: %s\n%s", hv_errmsg(), xml);
			assert_int_equal(back->nprops, inst->nprops);
			cim_instance_free(back);
			free(xml);
		}
		cim_instance_free(inst);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wbem_hresults_match_microsoft),
		cmocka_unit_test(test_return_code_text),
		cmocka_unit_test(test_job_states),
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_value_check),
		cmocka_unit_test(test_path_shapes_from_reference),
		cmocka_unit_test(test_path_other_shapes),
		cmocka_unit_test(test_path_key_sorting_is_case_insensitive),
		cmocka_unit_test(test_path_escaping_round_trip),
		cmocka_unit_test(test_path_equality_rules),
		cmocka_unit_test(test_path_key_lookup_and_builder),
		cmocka_unit_test(test_path_malformed_positions),
		cmocka_unit_test(test_path_bounds),
		cmocka_unit_test(test_xml_snapshot_settings),
		cmocka_unit_test(test_xml_disk_merge_settings),
		cmocka_unit_test(test_xml_arrays),
		cmocka_unit_test(test_xml_references),
		cmocka_unit_test(test_xml_reference_forms_and_limits),
		cmocka_unit_test(test_xml_entities_cdata_and_wrapping),
		cmocka_unit_test(test_xml_round_trip),
		cmocka_unit_test(test_instance_builder_rules),
		cmocka_unit_test(test_xml_malformed),
		cmocka_unit_test(test_xml_hostile_documents),
		cmocka_unit_test(test_xml_size_limit),
		cmocka_unit_test(test_mof_instances),
		cmocka_unit_test(test_mof_malformed),
		cmocka_unit_test(test_wql_engine_queries),
		cmocka_unit_test(test_wql_select_lists_and_case),
		cmocka_unit_test(test_wql_precedence),
		cmocka_unit_test(test_wql_normalisation),
		cmocka_unit_test(test_wql_literals),
		cmocka_unit_test(test_wql_like_and_is),
		cmocka_unit_test(test_wql_associators_keywords),
		cmocka_unit_test(test_wql_malformed_positions),
		cmocka_unit_test(test_wql_bounds),
		cmocka_unit_test(test_like_table),
		cmocka_unit_test(test_like_against_reference),
		cmocka_unit_test(test_datetime_known_answers),
		cmocka_unit_test(test_datetime_offsets_and_leap_years),
		cmocka_unit_test(test_datetime_day_by_day_walk),
		cmocka_unit_test(test_intervals),
		cmocka_unit_test(test_datetime_malformed),
		cmocka_unit_test(test_regressions_from_fuzzing),
		cmocka_unit_test(test_fuzz_wql),
		cmocka_unit_test(test_fuzz_paths),
		cmocka_unit_test(test_fuzz_instances),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
