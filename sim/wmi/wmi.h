/*
 * wmi — the simulated root\virtualization\v2 provider: the Msvm_* classes a backup engine reads,
 * WQL (SELECT, ASSOCIATORS OF, REFERENCES OF) answered by translating to SQL over host.db, the
 * backup methods with Hyper-V's return codes (families A and B), and asynchronous jobs that
 * advance along scripted trajectories, one step per poll.
 *
 * The API is in-process and transport-free: a remote front end (DCOM/WinRM look-alike, daemon)
 * calls the same three functions. Every call is written to the audit log with its arguments,
 * result and virtual time.
 *
 * Conventions:
 *  - `hresult` receives WBEM_S_NO_ERROR or a WBEM_E_* code (hyperv/cim/cim.h); the function
 *    returns 0 when hresult is 0, else a negative HV_E* with hv_errmsg() saying why (for
 *    WBEM_E_INVALID_QUERY: "WQL: position N: …").
 *  - Objects are returned as cim_instance (typed properties, values as text) plus the system
 *    properties __CLASS, __PATH (full, `\\HVSIM-HOST\root\virtualization\v2:Class.Key="v"`) and
 *    __RELPATH.
 *  - Method in-parameters are a cim_instance of class "__PARAMETERS" (names case-insensitive);
 *    out-parameters come back the same way (ReturnValue, Job, result REFs, arrays).
 *
 * Strict mode (host setting wmi.strict, default 1): unknown properties in embedded instances are
 * errors (Invalid Parameter) and are recorded as client mistakes; lenient mode ignores them.
 *
 * Must not: touch host files directly (sim/host does), read the wall clock.
 */
#ifndef HVSIM_WMI_H
#define HVSIM_WMI_H

#include <stddef.h>
#include <stdint.h>

#include "../../hyperv/cim/cim.h"
#include "../../hyperv/cim/wmi_client.h"

struct host;
struct hvsim_wmi;

#define WMI_NAMESPACE "root\\virtualization\\v2"

/* Binds a provider to an open host (creates the provider's tables on first use, and its
 * temporary views). The host must outlive the provider. */
int hvsim_wmi_open(struct host *h, struct hvsim_wmi **out);
void hvsim_wmi_close(struct hvsim_wmi *w);

/* struct wmi_object / wmi_result and their clear functions: hyperv/cim/wmi_client.h. This
 * provider is also a wmi_client transport (wmi_client.c: wmi_connect(host folder)). */

/* Runs a WQL query. Reading Msvm_ConcreteJob instances is a poll: each job returned advances one
 * step of its trajectory (and the state returned is the state after that step). */
int hvsim_wmi_query(struct hvsim_wmi *w, const char *wql, struct wmi_result *out, uint32_t *hresult);
/* GetObject by path (full or relative). WBEM_E_NOT_FOUND when nothing has that path; a job read
 * this way is polled as above. */
int hvsim_wmi_get(struct hvsim_wmi *w, const char *path, struct wmi_object *out, uint32_t *hresult);
/* ExecMethod. *out receives the out-parameters (free with cim_instance_free). WBEM_E_NOT_FOUND
 * (object), WBEM_E_INVALID_METHOD (class has no such method), WBEM_E_INVALID_METHOD_PARAMETERS
 * (unknown parameter or a value that is not of the parameter's type) fail the call itself;
 * everything else is a method return value in out.ReturnValue. */
int hvsim_wmi_invoke(struct hvsim_wmi *w, const char *path, const char *method, const struct cim_instance *in,
		     struct cim_instance **out, uint32_t *hresult);

/* The declared type of a method parameter (for front ends that receive untyped text, like the
 * CLI). Returns 0, or HV_ENOTFOUND when the class/method/parameter is unknown. */
int hvsim_wmi_param_type(const char *class_name, const char *method, const char *param, enum cim_type *type,
			 int *is_array);
/* The class a path names, resolved case-insensitively to the schema's spelling (static string),
 * or NULL. */
const char *hvsim_wmi_class_name(const char *name);

/* Checks a job trajectory text (grammar in wmi_jobs.c): 0 or HV_EINVAL with the reason. */
int hvsim_wmi_trajectory_check(const char *text);


#endif
