/*
 * wmi_client.c — the simulator as a wmi_client transport (hyperv/cim/wmi_client.h): a connection
 * opens the host state folder and a provider on it, in the client's process. This is what an
 * engine links on Linux to talk to a simulated host, as it links libvirtdisk for virtdisk.h.
 *
 * Must not: add behaviour of its own (everything goes through hvsim_wmi_*).
 */
#include <stdlib.h>

#include "wmi.h"
#include "../host/host.h"

struct wmi_conn {
	struct host *h;
	struct hvsim_wmi *w;
};

int wmi_connect(const char *target, struct wmi_conn **out)
{
	struct wmi_conn *c = calloc(1, sizeof *c);
	if (!c)
		return hv_err(HV_ENOMEM, "out of memory");
	/* HVSIM_NOSYNC=1: the same switch the hvsim CLI honours (tests, bulk runs) */
	const char *ns = getenv("HVSIM_NOSYNC");
	int r = host_open(target, ns && ns[0] == '1' ? HOST_OPEN_NOSYNC : 0, &c->h);
	if (!r && (r = hvsim_wmi_open(c->h, &c->w)))
		host_close(c->h);
	if (r) {
		free(c);
		return r;
	}
	*out = c;
	return 0;
}

void wmi_disconnect(struct wmi_conn *c)
{
	if (!c)
		return;
	hvsim_wmi_close(c->w);
	host_close(c->h);
	free(c);
}

int wmi_exec_query(struct wmi_conn *c, const char *wql, struct wmi_result *out, uint32_t *hresult)
{
	return hvsim_wmi_query(c->w, wql, out, hresult);
}

int wmi_get_object(struct wmi_conn *c, const char *path, struct wmi_object *out, uint32_t *hresult)
{
	return hvsim_wmi_get(c->w, path, out, hresult);
}

int wmi_exec_method(struct wmi_conn *c, const char *path, const char *method, const struct cim_instance *in,
		    struct cim_instance **out, uint32_t *hresult)
{
	return hvsim_wmi_invoke(c->w, path, method, in, out, hresult);
}
