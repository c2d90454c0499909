/* wmi_object.c — freeing the objects of wmi_client.h (shared by every transport and client). */
#include <stdlib.h>
#include <string.h>

#include "wmi_client.h"

void wmi_object_clear(struct wmi_object *o)
{
	if (!o)
		return;
	free(o->path);
	free(o->relpath);
	cim_instance_free(o->inst);
	memset(o, 0, sizeof *o);
}

void wmi_result_clear(struct wmi_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		wmi_object_clear(&r->v[i]);
	free(r->v);
	memset(r, 0, sizeof *r);
}
