/*
 * wmi_client — how a client (the backup engine) talks to a host's root\virtualization\v2:
 * ExecQuery, GetObject, ExecMethod over a connection, with the objects as typed cim_instances.
 *
 * This header declares the interface only. The functions are provided by whatever transport the
 * client links, exactly as virtdisk.h's functions are: today the simulator's in-process provider
 * (sim/wmi/wmi_client.c, target = a host state folder); a remote transport can be linked instead
 * without changing the client. wmi_object_clear/wmi_result_clear live in hyperv/cim.
 *
 * Conventions: `hresult` receives WBEM_S_NO_ERROR or a WBEM_E_* code; the functions return 0 when
 * it is 0, else a negative HV_E* with hv_errmsg() explaining. Method out-parameters hold
 * ReturnValue, Job and the method's REF/array outputs.
 */
#ifndef HV_WMI_CLIENT_H
#define HV_WMI_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "cim.h"

struct wmi_object {
	char *path;                /* __PATH */
	char *relpath;             /* __RELPATH */
	struct cim_instance *inst; /* __CLASS is inst->class_name */
};

struct wmi_result {
	size_t n;
	struct wmi_object *v;
};

void wmi_object_clear(struct wmi_object *o);
void wmi_result_clear(struct wmi_result *r);

struct wmi_conn;

/* Connects to a host. `target` names it in the transport's terms (the simulator: the state
 * folder). Free with wmi_disconnect. */
int wmi_connect(const char *target, struct wmi_conn **out);
void wmi_disconnect(struct wmi_conn *c);
int wmi_exec_query(struct wmi_conn *c, const char *wql, struct wmi_result *out, uint32_t *hresult);
int wmi_get_object(struct wmi_conn *c, const char *path, struct wmi_object *out, uint32_t *hresult);
/* *out receives the out-parameters (cim_instance_free). */
int wmi_exec_method(struct wmi_conn *c, const char *path, const char *method, const struct cim_instance *in,
		    struct cim_instance **out, uint32_t *hresult);

#endif
