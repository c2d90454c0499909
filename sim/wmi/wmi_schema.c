/*
 * wmi_schema.c — the classes of the simulated root\virtualization\v2, as SQL views over host.db.
 *
 * Each concrete class is a temporary view (created per connection, so host.db never stores SQL of
 * a particular hvsim version) with one column per property and the system properties __PATH and
 * __RELPATH. Paths are built by the SQL function wmi_ref(class, key, value, …), which uses the
 * same formatter (cim_path_format_full) that normalises a client's path, so a path compares equal
 * to its canonical text whatever key order or case the client used.
 *
 * Formats marked [INF] in reference/wmi-backup.md are choices made here (settable where hosts
 * may differ):
 *   VM active settings  InstanceID "Microsoft:<VM GUID>"
 *   snapshot settings   InstanceID "Microsoft:<snapshot GUID>"
 *   SASD                InstanceID "Microsoft:<VM or snapshot GUID>\<controller GUID>\0\<slot>\L"
 *   reference point     InstanceID "Microsoft:<GUID>", key VirtualSystemIdentifier = VM GUID
 *   job                 InstanceID "<GUID>"
 *   disk merge settings InstanceID "Microsoft:<VM GUID>\DiskMergeSettings"
 *   export settings     InstanceID "Microsoft:<VM GUID>\ExportSettingData"
 *   services            Name vssnapsvc, vsrpsvc, vmms, vhdsvc
 *
 * Must not: change host state (views only read).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wmi_internal.h"
#include "../host/host.h"

#define T(x) CIM_TYPE_##x
#define P(name, type, expr) {name, T(type), false, false, expr}
#define K(name, type, expr) {name, T(type), false, true, expr}
#define A(name, type, expr) {name, T(type), true, false, expr}
#define N(arr) arr, sizeof arr / sizeof *arr

#define VM_PATH(v) "wmi_ref('Msvm_ComputerSystem','CreationClassName','Msvm_ComputerSystem','Name'," v ")"
#define VSSD_PATH(iid) "wmi_ref('Msvm_VirtualSystemSettingData','InstanceID'," iid ")"

/* ---- Msvm_ComputerSystem: the host and the VMs ------------------------------------------------ */
static const struct wmi_prop cs_props[] = {
	K("CreationClassName", STRING, "'Msvm_ComputerSystem'"),
	K("Name", STRING, "name"),
	P("ElementName", STRING, "ename"),
	P("Caption", STRING, "CASE kind WHEN 'vm' THEN 'Virtual Machine' ELSE 'Hosting Computer System' END"),
	P("Description", STRING,
	  "CASE kind WHEN 'vm' THEN 'Microsoft Virtual Machine' ELSE 'Microsoft Hosting Computer System' END"),
	P("EnabledState", UINT16, "state"),
	P("RequestedState", UINT16, "12"),
	P("HealthState", UINT16, "5"),
	A("OperationalStatus", UINT16, "json_array(2)"),
	P("InstallDate", DATETIME, "CASE kind WHEN 'vm' THEN wmi_dt(created) END"),
	P("ProcessID", UINT32, "NULL"),
};
static const char cs_src[] = "SELECT 'host' AS kind, wmi_host() AS name, wmi_host() AS ename, 2 AS state, 0 AS created"
			     " UNION ALL SELECT 'vm', guid, name, state, created FROM vm";

/* ---- Msvm_VirtualSystemSettingData: active settings and every checkpoint --------------------- */
static const struct wmi_prop vssd_props[] = {
	K("InstanceID", STRING, "'Microsoft:' || iid"),
	P("ElementName", STRING, "ename"),
	P("Caption", STRING, "CASE kind WHEN 'active' THEN 'Virtual Machine Settings' ELSE 'Snapshot' END"),
	P("Description", STRING,
	  "CASE kind WHEN 'active' THEN 'Active settings for the virtual machine'"
	  " ELSE 'Snapshot settings for the virtual machine' END"),
	P("VirtualSystemIdentifier", STRING, "vmguid"),
	P("VirtualSystemType", STRING,
	  "CASE WHEN kind='active' THEN 'Microsoft:Hyper-V:System:Realized' WHEN stype=32768 THEN"
	  " 'Microsoft:Hyper-V:Snapshot:Recovery' ELSE 'Microsoft:Hyper-V:Snapshot:Realized' END"),
	P("VirtualSystemSubType", STRING, "'Microsoft:Hyper-V:SubType:2'"),
	P("Version", STRING, "'9.0'"),
	P("CreationTime", DATETIME, "wmi_dt(created)"),
	P("ConfigurationID", STRING, "cfgid"),
	P("ConfigurationDataRoot", STRING, "wmi_win(vmname)"),
	P("ConfigurationFile", STRING,
	  "CASE kind WHEN 'active' THEN 'Virtual Machines\\' || vmguid || '.vmcx' ELSE 'Snapshots\\' || iid || '.vmcx' END"),
	P("SnapshotDataRoot", STRING, "wmi_win(vmname)"),
	P("Parent", REFERENCE, "CASE WHEN parent_guid IS NOT NULL THEN " VSSD_PATH("'Microsoft:' || parent_guid") " END"),
	P("IsSaved", BOOLEAN, "kind='active' AND state=32769"),
	P("IncrementalBackupEnabled", BOOLEAN, "0"),
	P("UserSnapshotType", UINT16, "3"),
	P("AutomaticSnapshotsEnabled", BOOLEAN, "0"),
	P("IsAutomaticSnapshot", BOOLEAN, "0"),
};
static const char vssd_src[] =
	"SELECT 'active' AS kind, v.guid AS iid, v.name AS ename, v.guid AS vmguid, NULL AS stype, v.created AS created,"
	" v.settings_guid AS cfgid, v.name AS vmname, v.state AS state,"
	" (SELECT s.guid FROM snapshot s WHERE s.vm_id=v.id ORDER BY s.id DESC LIMIT 1) AS parent_guid FROM vm v"
	" UNION ALL SELECT 'snapshot', s.guid, s.name, v.guid, s.type, s.created, s.guid, v.name, v.state,"
	" (SELECT p.guid FROM snapshot p WHERE p.id=s.parent_id) FROM snapshot s JOIN vm v ON v.id=s.vm_id";

/* ---- Msvm_StorageAllocationSettingData: the VM's disks and each checkpoint's frozen disks ----- */
static const struct wmi_prop sasd_props[] = {
	K("InstanceID", STRING, "iid"),
	P("ElementName", STRING, "'Hard Disk Image'"),
	P("Caption", STRING, "'Hard Disk Image'"),
	P("Description", STRING, "'Settings for the Microsoft Hard Disk Image.'"),
	P("ResourceType", UINT16, "31"),
	P("ResourceSubType", STRING, "'Microsoft:Hyper-V:Virtual Hard Disk'"),
	A("HostResource", STRING, "json_array(wmi_win(rel))"),
	P("Parent", STRING,
	  "wmi_ref('Msvm_ResourceAllocationSettingData','InstanceID','Microsoft:' || owner || '\\' || ctrl || '\\0\\' || slot || '\\D')"),
	P("Address", STRING, "NULL"),
	P("AddressOnParent", STRING, "NULL"),
	P("Access", UINT16, "3"),
	P("PoolID", STRING, "''"),
	P("VirtualResourceBlockSize", UINT64, "1"),
	P("IOPSLimit", UINT64, "0"),
	P("IOPSReservation", UINT64, "0"),
};
static const char sasd_src[] =
	"SELECT d.instance_id AS iid, (SELECT c.path FROM chain c WHERE c.disk_id=d.id ORDER BY c.depth DESC LIMIT 1) AS rel,"
	" d.slot AS slot, v.controller_guid AS ctrl, v.guid AS owner FROM disk d JOIN vm v ON v.id=d.vm_id WHERE d.attached"
	" UNION ALL SELECT 'Microsoft:' || s.guid || '\\' || v.controller_guid || '\\0\\' || d.slot || '\\L', c.path, d.slot,"
	" v.controller_guid, s.guid FROM snapshot_disk sd JOIN snapshot s ON s.id=sd.snapshot_id JOIN disk d ON"
	" d.id=sd.disk_id JOIN vm v ON v.id=s.vm_id JOIN chain c ON c.disk_id=sd.disk_id AND c.depth=sd.depth";

/* ---- the four services (singletons) ----------------------------------------------------------- */
#define SERVICE_PROPS(cls, name, ename)                                                                     \
	K("CreationClassName", STRING, "'" cls "'"), K("Name", STRING, "'" name "'"),                          \
		K("SystemCreationClassName", STRING, "'Msvm_ComputerSystem'"), K("SystemName", STRING, "wmi_host()"), \
		P("ElementName", STRING, "'" ename "'"), P("Caption", STRING, "'" ename "'"),                     \
		P("EnabledState", UINT16, "2"), P("HealthState", UINT16, "5"), P("Started", BOOLEAN, "1"),        \
		A("OperationalStatus", UINT16, "json_array(2)")
static const struct wmi_prop snapsvc_props[] = {
	SERVICE_PROPS("Msvm_VirtualSystemSnapshotService", "vssnapsvc", "Microsoft Hyper-V Virtual System Snapshot Service"),
};
static const struct wmi_prop rpsvc_props[] = {
	SERVICE_PROPS("Msvm_VirtualSystemReferencePointService", "vsrpsvc",
		      "Microsoft Hyper-V Virtual System Reference Point Service"),
};
static const struct wmi_prop vsms_props[] = {
	SERVICE_PROPS("Msvm_VirtualSystemManagementService", "vmms", "Microsoft Hyper-V Virtual System Management Service"),
};
static const struct wmi_prop ims_props[] = {
	SERVICE_PROPS("Msvm_ImageManagementService", "vhdsvc", "Microsoft Hyper-V Image Management Service"),
};
static const char one_row[] = "SELECT 1 AS one";

/* Msvm_VirtualSystemManagementServiceSettingData: the host's defaults (one instance) */
static const struct wmi_prop vsmssd_props[] = {
	K("InstanceID", STRING, "'Microsoft:' || wmi_host()"),
	P("ElementName", STRING, "'Hyper-V'"),
	P("Caption", STRING, "'Hyper-V'"),
	P("Description", STRING, "'Settings of the Virtual System Management Service'"),
	P("DefaultExternalDataRoot", STRING, "wmi_win('')"),
	P("DefaultVirtualHardDiskPath", STRING, "wmi_win('')"),
	P("MinimumMacAddress", STRING, "'00155D000000'"),
	P("MaximumMacAddress", STRING, "'00155D0000FF'"),
	P("NumaSpanningEnabled", BOOLEAN, "1"),
	P("EnhancedSessionModeEnabled", BOOLEAN, "0"),
};

/* ---- reference points ------------------------------------------------------------------------- */
static const struct wmi_prop rp_props[] = {
	K("InstanceID", STRING, "'Microsoft:' || guid"),
	K("VirtualSystemIdentifier", STRING, "vguid"),
	P("ElementName", STRING, "'Reference point'"),
	P("Caption", STRING, "'Reference point'"),
	P("ReferencePointType", UINT16, "type"),
	P("ConsistencyLevel", UINT16, "consistency"),
	P("HasAssociatedData", BOOLEAN, "0"),
	A("VirtualDiskIdentifiers", STRING,
	  "(SELECT json_group_array(disk_instance_id) FROM (SELECT disk_instance_id FROM refpoint_disk WHERE rp_id=rid ORDER BY idx))"),
	A("ResilientChangeTrackingIdentifiers", STRING,
	  "(SELECT json_group_array(rct_id) FROM (SELECT rct_id FROM refpoint_disk WHERE rp_id=rid ORDER BY idx))"),
};
static const char rp_src[] = "SELECT r.id AS rid, r.guid AS guid, r.type AS type, r.consistency AS consistency,"
			     " v.guid AS vguid FROM refpoint r JOIN vm v ON v.id=r.vm_id";

/* ---- jobs ------------------------------------------------------------------------------------- */
static const struct wmi_prop job_props[] = {
	K("InstanceID", STRING, "guid"),
	P("Caption", STRING, "caption"),
	P("Description", STRING, "caption"),
	P("ElementName", STRING, "method"),
	P("Name", STRING, "method"),
	P("JobState", UINT16, "state"),
	P("JobStatus", STRING,
	  "CASE state WHEN 2 THEN 'Job is new' WHEN 3 THEN 'Job is starting' WHEN 4 THEN 'Job is running'"
	  " WHEN 7 THEN 'Job completed successfully' WHEN 32768 THEN 'Job completed with warnings'"
	  " WHEN 8 THEN 'Job was terminated' WHEN 9 THEN 'Job was killed' WHEN 10 THEN 'Job failed' ELSE '' END"),
	P("PercentComplete", UINT16, "percent"),
	P("ErrorCode", UINT16, "error_code"),
	P("ErrorDescription", STRING, "error_desc"),
	P("ErrorSummaryDescription", STRING, "error_desc"),
	P("JobType", UINT16, "job_type"),
	P("Cancellable", BOOLEAN, "0"),
	P("DeleteOnCompletion", BOOLEAN, "1"),
	P("TimeBeforeRemoval", DATETIME, "wmi_iv(tbr)"),
	P("TimeSubmitted", DATETIME, "wmi_dt(submitted)"),
	P("StartTime", DATETIME, "wmi_dt(started)"),
	P("TimeOfLastStateChange", DATETIME, "wmi_dt(changed)"),
	P("ElapsedTime", DATETIME, "wmi_iv(coalesce(finished, changed) - coalesce(started, submitted))"),
};
static const char job_src[] = "SELECT * FROM wmi_job";

/* ---- settings classes ------------------------------------------------------------------------- */
static const struct wmi_prop dmsd_props[] = {
	K("InstanceID", STRING, "'Microsoft:' || guid || '\\DiskMergeSettings'"),
	P("ElementName", STRING, "'Disk Merge Settings'"),
	P("Caption", STRING, "'Disk Merge Settings'"),
	P("Description", STRING, "'Disk merge settings of the virtual machine'"),
	P("EnabledState", UINT32, "merge_enabled"),
};
static const char vm_src[] = "SELECT * FROM vm";

static const struct wmi_prop esd_props[] = {
	K("InstanceID", STRING, "'Microsoft:' || guid || '\\ExportSettingData'"),
	P("ElementName", STRING, "'Export Setting Data'"),
	P("Caption", STRING, "'Export Setting Data'"),
	P("Description", STRING, "'Microsoft Virtual System Export Setting Data'"),
	P("CopySnapshotConfiguration", UINT8, "0"),
	P("CopyVmRuntimeInformation", BOOLEAN, "1"),
	P("CopyVmStorage", BOOLEAN, "1"),
	P("CreateVmExportSubdirectory", BOOLEAN, "1"),
	P("SnapshotVirtualSystem", STRING, "NULL"),
	P("DifferentialBackupBase", STRING, "NULL"),
	P("BackupIntent", UINT8, "0"),
	P("CaptureLiveState", UINT8, "0"),
	P("ExportForLiveMigration", BOOLEAN, "0"),
	P("DisableDifferentialOfIgnoredStorage", BOOLEAN, "0"),
	A("ExcludedVirtualHardDisks", STRING, "NULL"),
};

/* Embedded-only classes: they exist (so embedded instances can be checked against them) but
 * enumerate to nothing. */
#define SD_PROPS                                                                                     \
	P("InstanceID", STRING, NULL), P("Caption", STRING, NULL), P("Description", STRING, NULL), \
		P("ElementName", STRING, NULL)
static const struct wmi_prop snapsd_props[] = {
	SD_PROPS,
	P("ConsistencyLevel", UINT8, NULL),
	P("IgnoreNonSnapshottableDisks", BOOLEAN, NULL),
	P("GuestBackupType", UINT8, NULL),
};
/* No Microsoft page documents this class; scripts send ConsistencyLevel and some also
 * ReferencePointType (wmi-backup.md 1.2), so both are accepted. */
static const struct wmi_prop rpsd_props[] = {
	SD_PROPS,
	P("ConsistencyLevel", UINT8, NULL),
	P("ReferencePointType", UINT16, NULL),
};
static const struct wmi_prop vhdsd_props[] = {
	SD_PROPS,
	P("Type", UINT16, NULL),
	P("Format", UINT16, NULL),
	P("Path", STRING, NULL),
	P("ParentPath", STRING, NULL),
	P("ParentIdentifier", STRING, NULL),
	P("ParentTimestamp", DATETIME, NULL),
	P("MaxInternalSize", UINT64, NULL),
	P("BlockSize", UINT32, NULL),
	P("LogicalSectorSize", UINT32, NULL),
	P("PhysicalSectorSize", UINT32, NULL),
	P("VirtualDiskId", STRING, NULL),
	P("DataAlignment", UINT64, NULL),
	P("PmemAddressAbstractionType", UINT16, NULL),
	P("IsPmemCompatible", BOOLEAN, NULL),
};
static const struct wmi_prop err_props[] = {
	P("ErrorType", UINT16, NULL),
	P("OtherErrorType", STRING, NULL),
	P("OwningEntity", STRING, NULL),
	P("MessageID", STRING, NULL),
	P("Message", STRING, NULL),
	A("MessageArguments", STRING, NULL),
	P("PerceivedSeverity", UINT16, NULL),
	P("ProbableCause", UINT16, NULL),
	P("ErrorSource", STRING, NULL),
	P("ErrorSourceFormat", UINT16, NULL),
	P("CIMStatusCode", UINT32, NULL),
	P("CIMStatusCodeDescription", STRING, NULL),
};

/* ---- associations ----------------------------------------------------------------------------- */
static const struct wmi_prop snapof_props[] = {
	K("Antecedent", REFERENCE, VM_PATH("vguid")),
	K("Dependent", REFERENCE, VSSD_PATH("'Microsoft:' || sguid")),
};
static const char snapof_src[] = "SELECT s.guid AS sguid, v.guid AS vguid FROM snapshot s JOIN vm v ON v.id=s.vm_id";

static const struct wmi_prop rpof_props[] = {
	K("Antecedent", REFERENCE, VM_PATH("vguid")),
	K("Dependent", REFERENCE,
	  "wmi_ref('Msvm_VirtualSystemReferencePoint','InstanceID','Microsoft:' || rguid,'VirtualSystemIdentifier',vguid)"),
};
static const char rpof_src[] = "SELECT r.guid AS rguid, v.guid AS vguid FROM refpoint r JOIN vm v ON v.id=r.vm_id";

static const struct wmi_prop sds_props[] = {
	K("ManagedElement", REFERENCE, VM_PATH("guid")),
	K("SettingData", REFERENCE, VSSD_PATH("'Microsoft:' || guid")),
};

static const struct wmi_prop vssdc_props[] = {
	K("GroupComponent", REFERENCE, VSSD_PATH("'Microsoft:' || owner")),
	K("PartComponent", REFERENCE, "wmi_ref('Msvm_StorageAllocationSettingData','InstanceID',iid)"),
};

static const struct wmi_prop sesd_props[] = {
	K("ManagedElement", REFERENCE, VM_PATH("guid")),
	K("SettingData", REFERENCE, "wmi_ref('Msvm_VirtualSystemExportSettingData','InstanceID','Microsoft:' || guid || '\\ExportSettingData')"),
};

static const struct wmi_prop ajd_props[] = {
	K("AffectedElement", REFERENCE, "result_path"),
	K("AffectingElement", REFERENCE, "wmi_ref('Msvm_ConcreteJob','InstanceID',guid)"),
	A("ElementEffects", UINT16, "json_array(5)"),
};
static const char ajd_src[] = "SELECT * FROM wmi_job WHERE result_path IS NOT NULL AND state IN (7, 32768)";

static const struct wmi_class classes[] = {
	/* abstract CIM classes engines name in ResultClass/AssocClass filters */
	{"CIM_ManagedElement", NULL, NULL, NULL, 0, false},
	{"CIM_ManagedSystemElement", "CIM_ManagedElement", NULL, NULL, 0, false},
	{"CIM_LogicalElement", "CIM_ManagedSystemElement", NULL, NULL, 0, false},
	{"CIM_System", "CIM_LogicalElement", NULL, NULL, 0, false},
	{"CIM_ComputerSystem", "CIM_System", NULL, NULL, 0, false},
	{"CIM_Service", "CIM_LogicalElement", NULL, NULL, 0, false},
	{"CIM_VirtualSystemManagementService", "CIM_Service", NULL, NULL, 0, false},
	{"CIM_VirtualSystemSnapshotService", "CIM_Service", NULL, NULL, 0, false},
	{"CIM_Job", "CIM_LogicalElement", NULL, NULL, 0, false},
	{"CIM_ConcreteJob", "CIM_Job", NULL, NULL, 0, false},
	{"CIM_SettingData", "CIM_ManagedElement", NULL, NULL, 0, false},
	{"CIM_VirtualSystemSettingData", "CIM_SettingData", NULL, NULL, 0, false},
	{"CIM_ResourceAllocationSettingData", "CIM_SettingData", NULL, NULL, 0, false},
	{"CIM_Error", NULL, NULL, NULL, 0, false},
	{"CIM_Dependency", NULL, NULL, NULL, 0, true},
	{"CIM_Component", NULL, NULL, NULL, 0, true},
	{"CIM_ElementSettingData", NULL, NULL, NULL, 0, true},
	{"CIM_SettingsDefineState", NULL, NULL, NULL, 0, true},
	{"CIM_AffectedJobElement", NULL, NULL, NULL, 0, true},
	{"CIM_ElementSnapshot", "CIM_Dependency", NULL, NULL, 0, true},
	/* concrete */
	{"Msvm_ComputerSystem", "CIM_ComputerSystem", cs_src, N(cs_props), false},
	{"Msvm_VirtualSystemSettingData", "CIM_VirtualSystemSettingData", vssd_src, N(vssd_props), false},
	{"Msvm_StorageAllocationSettingData", "CIM_ResourceAllocationSettingData", sasd_src, N(sasd_props), false},
	{"Msvm_VirtualSystemSnapshotService", "CIM_VirtualSystemSnapshotService", one_row, N(snapsvc_props), false},
	{"Msvm_VirtualSystemReferencePointService", "CIM_Service", one_row, N(rpsvc_props), false},
	{"Msvm_VirtualSystemManagementService", "CIM_VirtualSystemManagementService", one_row, N(vsms_props), false},
	{"Msvm_ImageManagementService", "CIM_Service", one_row, N(ims_props), false},
	{"Msvm_VirtualSystemManagementServiceSettingData", "CIM_SettingData", one_row, N(vsmssd_props), false},
	{"Msvm_VirtualSystemReferencePoint", "CIM_ManagedElement", rp_src, N(rp_props), false},
	{"Msvm_ConcreteJob", "CIM_ConcreteJob", job_src, N(job_props), false},
	{"Msvm_DiskMergeSettingData", "CIM_SettingData", vm_src, N(dmsd_props), false},
	{"Msvm_VirtualSystemExportSettingData", "CIM_SettingData", vm_src, N(esd_props), false},
	{"Msvm_VirtualSystemSnapshotSettingData", "CIM_SettingData", "", N(snapsd_props), false},
	{"Msvm_VirtualSystemReferencePointSettingData", "CIM_SettingData", "", N(rpsd_props), false},
	{"Msvm_VirtualHardDiskSettingData", "CIM_SettingData", "", N(vhdsd_props), false},
	{"Msvm_Error", "CIM_Error", "", N(err_props), false},
	{"Msvm_SnapshotOfVirtualSystem", "CIM_ElementSnapshot", snapof_src, N(snapof_props), true},
	{"Msvm_ReferencePointOfVirtualSystem", "CIM_Dependency", rpof_src, N(rpof_props), true},
	{"Msvm_SettingsDefineState", "CIM_SettingsDefineState", vm_src, N(sds_props), true},
	{"Msvm_VirtualSystemSettingDataComponent", "CIM_Component", sasd_src, N(vssdc_props), true},
	{"Msvm_SystemExportSettingData", "CIM_ElementSettingData", vm_src, N(sesd_props), true},
	{"Msvm_AffectedJobElement", "CIM_AffectedJobElement", ajd_src, N(ajd_props), true},
};

size_t wmi_class_count(void) { return sizeof classes / sizeof *classes; }
const struct wmi_class *wmi_class_at(size_t i) { return i < wmi_class_count() ? &classes[i] : NULL; }

const struct wmi_class *wmi_class_find(const char *name)
{
	for (size_t i = 0; name && i < wmi_class_count(); i++)
		if (!strcasecmp(classes[i].name, name))
			return &classes[i];
	return NULL;
}

const char *hvsim_wmi_class_name(const char *name)
{
	const struct wmi_class *c = wmi_class_find(name);
	return c ? c->name : NULL;
}

bool wmi_class_isa(const char *cls, const char *ancestor)
{
	for (const struct wmi_class *c = wmi_class_find(cls); c; c = wmi_class_find(c->super))
		if (!strcasecmp(c->name, ancestor))
			return true;
	return false;
}

const struct wmi_prop *wmi_class_prop(const struct wmi_class *c, const char *name)
{
	for (size_t i = 0; i < c->nprops; i++)
		if (!strcasecmp(c->props[i].name, name))
			return &c->props[i];
	return NULL;
}

/* ---- SQL functions ---------------------------------------------------------------------------- */

/* wmi_ref(class, key1, value1, key2, value2, …) → canonical full path; NULL when a value is NULL. */
static void fn_ref(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct hvsim_wmi *w = sqlite3_user_data(ctx);
	if (argc < 1 || !(argc & 1)) {
		sqlite3_result_error(ctx, "wmi_ref: class then key/value pairs", -1);
		return;
	}
	for (int i = 0; i < argc; i++)
		if (sqlite3_value_type(argv[i]) == SQLITE_NULL) {
			sqlite3_result_null(ctx);
			return;
		}
	struct cim_path *p = NULL;
	if (cim_path_new((const char *)sqlite3_value_text(argv[0]), &p)) {
		sqlite3_result_error_nomem(ctx);
		return;
	}
	for (int i = 1; i + 1 < argc; i += 2)
		if (cim_path_add_key(p, (const char *)sqlite3_value_text(argv[i]),
				     (const char *)sqlite3_value_text(argv[i + 1]), true)) {
			cim_path_free(p);
			sqlite3_result_error(ctx, "wmi_ref: bad key", -1);
			return;
		}
	char *s = cim_path_format_full(p, w->host_name, WMI_NAMESPACE);
	cim_path_free(p);
	if (!s) {
		sqlite3_result_error_nomem(ctx);
		return;
	}
	sqlite3_result_text(ctx, s, -1, free);
}

/* wmi_rel(full path) → the relative path (text after the first ':' following the namespace). */
static void fn_rel(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	const char *s = (const char *)sqlite3_value_text(argv[0]);
	if (!s) {
		sqlite3_result_null(ctx);
		return;
	}
	const char *c = s[0] == '\\' ? strchr(s, ':') : NULL;
	sqlite3_result_text(ctx, c ? c + 1 : s, -1, SQLITE_TRANSIENT);
}

static void fn_dt(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
		sqlite3_result_null(ctx);
		return;
	}
	char out[CIM_DATETIME_LEN + 1];
	if (cim_datetime_format((uint64_t)sqlite3_value_int64(argv[0]), out))
		sqlite3_result_null(ctx);
	else
		sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
}

static void fn_iv(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
		sqlite3_result_null(ctx);
		return;
	}
	int64_t t = sqlite3_value_int64(argv[0]);
	char out[CIM_DATETIME_LEN + 1];
	cim_interval_format(t < 0 ? 0 : (uint64_t)t, out);
	sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
}

static void fn_host(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	(void)argv;
	struct hvsim_wmi *w = sqlite3_user_data(ctx);
	sqlite3_result_text(ctx, w->host_name, -1, SQLITE_TRANSIENT);
}

static void fn_win(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	struct hvsim_wmi *w = sqlite3_user_data(ctx);
	const char *rel = (const char *)sqlite3_value_text(argv[0]);
	if (!rel) {
		sqlite3_result_null(ctx);
		return;
	}
	char *p = host_path_windows(w->h, rel);
	if (!p)
		sqlite3_result_error_nomem(ctx);
	else
		sqlite3_result_text(ctx, p, -1, free);
}

static void fn_like(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	const char *s = (const char *)sqlite3_value_text(argv[0]), *p = (const char *)sqlite3_value_text(argv[1]);
	if (!s || !p)
		sqlite3_result_null(ctx);
	else
		sqlite3_result_int(ctx, wql_like_match(s, p));
}

/* wmi_canon(path text) → canonical full path, or NULL when it does not parse / names no class */
static void fn_canon(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	struct hvsim_wmi *w = sqlite3_user_data(ctx);
	const char *s = (const char *)sqlite3_value_text(argv[0]);
	char *c = NULL;
	if (!s || wmi_path_canon(w, s, &c, NULL))
		sqlite3_result_null(ctx);
	else
		sqlite3_result_text(ctx, c, -1, free);
}

static const char JOB_TABLE[] =
	"CREATE TABLE IF NOT EXISTS wmi_job(id INTEGER PRIMARY KEY, guid TEXT NOT NULL UNIQUE COLLATE NOCASE,"
	" method TEXT NOT NULL, caption TEXT NOT NULL, target TEXT NOT NULL, args TEXT NOT NULL,"
	" job_type INTEGER NOT NULL, trajectory TEXT NOT NULL, step INTEGER NOT NULL DEFAULT 0,"
	" state INTEGER NOT NULL, percent INTEGER NOT NULL DEFAULT 0, error_code INTEGER NOT NULL DEFAULT 0,"
	" error_desc TEXT NOT NULL DEFAULT '', submitted INTEGER NOT NULL, started INTEGER, changed INTEGER NOT NULL,"
	" finished INTEGER, tbr INTEGER NOT NULL, result_class TEXT, result_path TEXT, polls INTEGER NOT NULL DEFAULT 0);"
	/* GetVirtualDiskChanges answers that stopped short (ProcessedByteLength < ByteLength) and
	 * that the client has not continued yet: strict mode reports them as a client mistake */
	"CREATE TABLE IF NOT EXISTS wmi_paging(path TEXT NOT NULL COLLATE NOCASE, limit_id TEXT NOT NULL,"
	" next_offset INTEGER NOT NULL, end_offset INTEGER NOT NULL, PRIMARY KEY(path, limit_id));";

static int create_view(struct hvsim_wmi *w, const struct wmi_class *c)
{
	/* SELECT expr AS "Prop", …, wmi_ref('Class', 'Key', expr, …) AS __PATH, … FROM (source) */
	char *cols = sqlite3_mprintf("");
	char *keys = sqlite3_mprintf("'%s'", c->name);
	for (size_t i = 0; i < c->nprops && cols && keys; i++) {
		const struct wmi_prop *p = &c->props[i];
		char *n = sqlite3_mprintf("%s%s(%s) AS \"%w\"", cols, i ? ", " : "", p->expr ? p->expr : "NULL", p->name);
		sqlite3_free(cols);
		cols = n;
		if (p->key) {
			n = sqlite3_mprintf("%s, '%s', %s", keys, p->name, p->expr);
			sqlite3_free(keys);
			keys = n;
		}
	}
	char *sql = NULL;
	if (cols && keys) {
		if (c->source && *c->source)
			sql = sqlite3_mprintf("CREATE TEMP VIEW IF NOT EXISTS \"%w\" AS SELECT %s, wmi_ref(%s) AS __PATH,"
					      " wmi_rel(wmi_ref(%s)) AS __RELPATH FROM (%s)",
					      c->name, cols, keys, keys, c->source);
		else
			sql = sqlite3_mprintf("CREATE TEMP VIEW IF NOT EXISTS \"%w\" AS SELECT %s, NULL AS __PATH, NULL AS __RELPATH"
					      " WHERE 0", c->name, cols);
	}
	sqlite3_free(cols);
	sqlite3_free(keys);
	if (!sql)
		return hv_err(HV_ENOMEM, "out of memory");
	char *msg = NULL;
	int rc = sqlite3_exec(w->db, sql, NULL, NULL, &msg);
	sqlite3_free(sql);
	if (rc != SQLITE_OK) {
		int r = hv_err(HV_EIO, "wmi: view %s: %s", c->name, msg ? msg : "error");
		sqlite3_free(msg);
		return r;
	}
	return 0;
}

static const struct {
	const char *name;
	int n;
	void (*fn)(sqlite3_context *, int, sqlite3_value **);
} fns[] = {{"wmi_ref", -1, fn_ref}, {"wmi_rel", 1, fn_rel},   {"wmi_dt", 1, fn_dt},	{"wmi_iv", 1, fn_iv},
	   {"wmi_host", 0, fn_host}, {"wmi_win", 1, fn_win}, {"wmi_like", 2, fn_like}, {"wmi_canon", 1, fn_canon}};

/* The SQL functions carry the provider handle: a closed provider takes them away again, so the
 * views cannot reach a freed handle (a later open registers them anew). */
void wmi_schema_uninstall(struct hvsim_wmi *w)
{
	for (size_t i = 0; i < sizeof fns / sizeof *fns; i++)
		sqlite3_create_function(w->db, fns[i].name, fns[i].n, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, NULL, NULL,
					NULL);
}

int wmi_schema_install(struct hvsim_wmi *w)
{
	for (size_t i = 0; i < sizeof fns / sizeof *fns; i++)
		if (sqlite3_create_function(w->db, fns[i].name, fns[i].n, SQLITE_UTF8 | SQLITE_DETERMINISTIC, w, fns[i].fn,
					    NULL, NULL) != SQLITE_OK)
			return hv_err(HV_EIO, "wmi: cannot register %s: %s", fns[i].name, sqlite3_errmsg(w->db));
	char *msg = NULL;
	if (sqlite3_exec(w->db, JOB_TABLE, NULL, NULL, &msg) != SQLITE_OK) {
		int r = hv_err(HV_EIO, "wmi: job table: %s", msg ? msg : "error");
		sqlite3_free(msg);
		return r;
	}
	for (size_t i = 0; i < wmi_class_count(); i++) {
		if (!classes[i].props)
			continue;
		int r = create_view(w, &classes[i]);
		if (r)
			return r;
	}
	return 0;
}
