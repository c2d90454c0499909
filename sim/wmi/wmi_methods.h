/* wmi_methods — the method table and the job plumbing shared by wmi_methods.c and wmi_jobs.c. */
#ifndef HVSIM_WMI_METHODS_H
#define HVSIM_WMI_METHODS_H

#include "wmi_internal.h"

struct wmi_trajectory {
	bool sync;
	uint32_t starting, running;
	uint32_t end;        /* terminal JobState */
	uint32_t error_code; /* for exception */
};

int wmi_trajectory_parse(const char *text, struct wmi_trajectory *t);
/* The trajectory configured for `method` (settings job.<Method>, job.default) or `dflt`;
 * *text is malloc'd. */
int wmi_trajectory_for(struct hvsim_wmi *w, const char *method, const char *dflt, char **text,
		       struct wmi_trajectory *t);
/* Inserts a job in state Starting; *job_path (malloc'd) is its canonical path. */
int wmi_job_create(struct hvsim_wmi *w, const char *method, const char *caption, uint16_t job_type,
		   const char *target, const char *args, const char *trajectory, char **job_path);
/* Runs the work of `method` on `target` with the serialized in-parameters `args` (CIM-XML of the
 * __PARAMETERS instance). *result (malloc'd or NULL) is the path of the object the work created. */
int wmi_method_work(struct hvsim_wmi *w, const char *method, const char *target, const char *args,
		    char **result);

#endif
