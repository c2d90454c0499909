/*
 * wmi_jobs.c — Msvm_ConcreteJob: creation, scripted trajectories, polls, removal.
 *
 * A trajectory is text, chosen per method by the host setting `job.<Method>` (else `job.default`,
 * else the method's own default):
 *     sync                             the method completes synchronously (ReturnValue 0)
 *     [starting=N] [running=N] END     comma- or space-separated; END is one of
 *                                      completed | warnings | exception[=CODE] | killed | terminated
 * The default is "running=2,completed": the job is created Starting (3), the first poll shows
 * Running 33 %, the second Running 66 %, the third Completed (7) 100 %. `starting=N` keeps it in
 * Starting for N polls first (clients that poll only while Running give up there). The method's
 * work runs at the poll that reaches a successful end; if the work fails there, the job ends in
 * Exception (10) with ErrorCode 32768 and the work's error as ErrorDescription.
 *
 * Each poll advances the virtual clock by `job.poll_ticks` (default 1 s). A finished job is
 * removed once TimeBeforeRemoval (`job.time_before_removal_ticks`, default 5 min) of virtual time
 * has passed; polling it then fails with WBEM_E_NOT_FOUND, as on Windows.
 *
 * Must not: run a method's work anywhere but at completion (wmi_methods.c owns the work).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wmi_internal.h"
#include "wmi_methods.h"
#include "../host/host.h"

#define DEFAULT_TBR (5ull * 60ull * 10000000ull)

int wmi_trajectory_parse(const char *text, struct wmi_trajectory *t)
{
	memset(t, 0, sizeof *t);
	t->end = CIM_JOB_STATE_COMPLETED;
	t->error_code = 32768;
	char *dup = strdup(text), *save = NULL;
	if (!dup)
		return hv_err(HV_ENOMEM, "out of memory");
	int r = 0;
	bool have_end = false;
	for (char *tok = strtok_r(dup, ", ", &save); tok && !r; tok = strtok_r(NULL, ", ", &save)) {
		char *eq = strchr(tok, '=');
		long v = 0;
		if (eq) {
			char *end;
			v = strtol(eq + 1, &end, 0);
			if (*end || v < 0 || v > 100000)
				r = hv_err(HV_EINVAL, "job trajectory '%s': '%s' needs a count 0..100000", text, tok);
			*eq = 0;
		}
		if (r)
			break;
		if (have_end) {
			r = hv_err(HV_EINVAL, "job trajectory '%s': nothing may follow the end state", text);
		} else if (!strcmp(tok, "sync") && !eq) {
			t->sync = true;
			have_end = true;
		} else if (!strcmp(tok, "starting") && eq) {
			t->starting = (uint32_t)v;
		} else if (!strcmp(tok, "running") && eq) {
			t->running = (uint32_t)v;
		} else if (!strcmp(tok, "completed") && !eq) {
			have_end = true;
		} else if (!strcmp(tok, "warnings") && !eq) {
			t->end = CIM_JOB_STATE_COMPLETED_WITH_WARNINGS;
			have_end = true;
		} else if (!strcmp(tok, "exception")) {
			t->end = CIM_JOB_STATE_EXCEPTION;
			if (eq) {
				if (v == 0 || v > 65535)
					r = hv_err(HV_EINVAL, "job trajectory '%s': exception code must be 1..65535", text);
				t->error_code = (uint32_t)v;
			}
			have_end = true;
		} else if (!strcmp(tok, "killed") && !eq) {
			t->end = CIM_JOB_STATE_KILLED;
			have_end = true;
		} else if (!strcmp(tok, "terminated") && !eq) {
			t->end = CIM_JOB_STATE_TERMINATED;
			have_end = true;
		} else {
			r = hv_err(HV_EINVAL, "job trajectory '%s': unknown step '%s' (sync, starting=N, running=N, completed,"
					      " warnings, exception[=CODE], killed, terminated)", text, tok);
		}
	}
	if (!r && !have_end)
		r = hv_err(HV_EINVAL, "job trajectory '%s': missing the end state (completed, warnings, exception, killed,"
				      " terminated) or sync", text);
	free(dup);
	return r;
}

int hvsim_wmi_trajectory_check(const char *text)
{
	struct wmi_trajectory t;
	return wmi_trajectory_parse(text, &t);
}

int wmi_trajectory_for(struct hvsim_wmi *w, const char *method, const char *dflt, char **text,
		       struct wmi_trajectory *t)
{
	/* job.<Method> wins; job.default applies to the methods that make a job by default (not to
	 * the synchronous ones such as GetVirtualDiskChanges, whose async form loses its arrays) */
	char key[96];
	snprintf(key, sizeof key, "job.%s", method);
	char *s = host_setting_get(w->h, key);
	if (!s && strcmp(dflt, "sync")) {
		snprintf(key, sizeof key, "job.default");
		s = host_setting_get(w->h, key);
	}
	if (!s) {
		snprintf(key, sizeof key, "the default of %s", method);
		s = strdup(dflt);
	}
	if (!s)
		return hv_err(HV_ENOMEM, "out of memory");
	int r = wmi_trajectory_parse(s, t);
	if (r) {
		free(s);
		return hv_err_prefix(r, "%s%s", strncmp(key, "job.", 4) ? "" : "host setting ", key);
	}
	*text = s;
	return 0;
}

int wmi_job_create(struct hvsim_wmi *w, const char *method, const char *caption, uint16_t job_type,
		   const char *target, const char *args, const char *trajectory, char **job_path)
{
	char guid[37];
	int r = host_guid_str(w->h, "job", guid);
	if (r)
		return r;
	uint64_t now = host_now(w->h);
	uint64_t tbr = (uint64_t)host_setting_int(w->h, "job.time_before_removal_ticks", (int64_t)DEFAULT_TBR);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(w->db,
			       "INSERT INTO wmi_job(guid, method, caption, target, args, job_type, trajectory, state,"
			       " submitted, changed, tbr) VALUES(?1,?2,?3,?4,?5,?6,?7,3,?8,?8,?9)",
			       -1, &st, NULL) != SQLITE_OK)
		return hv_err(HV_EIO, "wmi: job: %s", sqlite3_errmsg(w->db));
	sqlite3_bind_text(st, 1, guid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, method, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, caption, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, target, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, args, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, job_type);
	sqlite3_bind_text(st, 7, trajectory, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, (int64_t)now);
	sqlite3_bind_int64(st, 9, (int64_t)tbr);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return hv_err(HV_EIO, "wmi: job: %s", sqlite3_errmsg(w->db));
	struct cim_path *p;
	if (cim_path_new("Msvm_ConcreteJob", &p) || cim_path_add_key(p, "InstanceID", guid, true))
		return hv_err(HV_ENOMEM, "out of memory");
	*job_path = cim_path_format_full(p, w->host_name, WMI_NAMESPACE);
	cim_path_free(p);
	return *job_path ? 0 : hv_err(HV_ENOMEM, "out of memory");
}

int wmi_jobs_expire(struct hvsim_wmi *w)
{
	char *sql = sqlite3_mprintf("DELETE FROM wmi_job WHERE finished IS NOT NULL AND finished + tbr <= %lld",
				    (long long)host_now(w->h));
	int r = host_exec(w->h, sql);
	sqlite3_free(sql);
	return r;
}

struct job_row {
	int64_t id;
	char method[64], target[1024];
	char *args, *traj;
	uint32_t state, step, polls;
};

static int load_job(struct hvsim_wmi *w, const char *instance_id, struct job_row *j)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(w->db, "SELECT id, method, target, args, trajectory, state, step, polls FROM wmi_job"
				      " WHERE guid=?1", -1, &st, NULL) != SQLITE_OK)
		return hv_err(HV_EIO, "wmi: job: %s", sqlite3_errmsg(w->db));
	sqlite3_bind_text(st, 1, instance_id, -1, SQLITE_STATIC);
	int r = 0;
	if (sqlite3_step(st) != SQLITE_ROW) {
		r = hv_err(HV_ENOTFOUND, "job %s: no such job (removed after TimeBeforeRemoval?)", instance_id);
	} else {
		memset(j, 0, sizeof *j);
		j->id = sqlite3_column_int64(st, 0);
		snprintf(j->method, sizeof j->method, "%s", (const char *)sqlite3_column_text(st, 1));
		snprintf(j->target, sizeof j->target, "%s", (const char *)sqlite3_column_text(st, 2));
		j->args = strdup((const char *)sqlite3_column_text(st, 3));
		j->traj = strdup((const char *)sqlite3_column_text(st, 4));
		j->state = (uint32_t)sqlite3_column_int(st, 5);
		j->step = (uint32_t)sqlite3_column_int(st, 6);
		j->polls = (uint32_t)sqlite3_column_int(st, 7);
		if (!j->args || !j->traj)
			r = hv_err(HV_ENOMEM, "out of memory");
	}
	sqlite3_finalize(st);
	return r;
}

static int set_job(struct hvsim_wmi *w, const struct job_row *j, uint32_t state, uint32_t percent, uint32_t ecode,
		   const char *edesc, const char *result_path)
{
	uint64_t now = host_now(w->h);
	bool terminal = cim_job_state_is_terminal(state);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(w->db,
			       "UPDATE wmi_job SET state=?2, percent=?3, error_code=?4, error_desc=coalesce(?5, error_desc),"
			       " step=step+1, polls=polls+1, changed=CASE WHEN state<>?2 THEN ?6 ELSE changed END,"
			       " started=coalesce(started, CASE WHEN ?2<>3 THEN ?6 END),"
			       " finished=CASE WHEN ?7 THEN ?6 END, result_path=coalesce(?8, result_path) WHERE id=?1",
			       -1, &st, NULL) != SQLITE_OK)
		return hv_err(HV_EIO, "wmi: job: %s", sqlite3_errmsg(w->db));
	sqlite3_bind_int64(st, 1, j->id);
	sqlite3_bind_int(st, 2, (int)state);
	sqlite3_bind_int(st, 3, (int)percent);
	sqlite3_bind_int(st, 4, (int)ecode);
	if (edesc)
		sqlite3_bind_text(st, 5, edesc, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (int64_t)now);
	sqlite3_bind_int(st, 7, terminal);
	if (result_path)
		sqlite3_bind_text(st, 8, result_path, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : hv_err(HV_EIO, "wmi: job: %s", sqlite3_errmsg(w->db));
}

int wmi_job_poll(struct hvsim_wmi *w, const char *instance_id)
{
	struct job_row j;
	int r = load_job(w, instance_id, &j);
	if (r)
		return r;
	struct wmi_trajectory t;
	if (cim_job_state_is_terminal(j.state)) { /* a finished job stays as it is */
		char *sql = sqlite3_mprintf("UPDATE wmi_job SET polls=polls+1 WHERE id=%lld", (long long)j.id);
		r = host_exec(w->h, sql);
		sqlite3_free(sql);
		goto out;
	}
	if ((r = wmi_trajectory_parse(j.traj, &t)))
		goto out;
	if ((r = host_clock_advance(w->h, (uint64_t)host_setting_int(w->h, "job.poll_ticks", 10000000))))
		goto out;
	uint32_t k = j.step; /* polls seen so far */
	if (k < t.starting) {
		r = set_job(w, &j, CIM_JOB_STATE_STARTING, 0, 0, NULL, NULL);
	} else if (k < t.starting + t.running) {
		uint32_t n = k - t.starting + 1;
		r = set_job(w, &j, CIM_JOB_STATE_RUNNING, 100 * n / (t.running + 1), 0, NULL, NULL);
	} else if (t.end == CIM_JOB_STATE_COMPLETED || t.end == CIM_JOB_STATE_COMPLETED_WITH_WARNINGS) {
		/* the work and the job's new state commit together: a process killed in between leaves
		 * either both (the job completed) or neither (the next poll does the work again) */
		char *result = NULL;
		int wr = host_begin(w->h);
		if (!wr)
			wr = wmi_method_work(w, j.method, j.target, j.args, &result);
		if (wr) {
			char desc[600];
			snprintf(desc, sizeof desc, "%s", hv_errmsg());
			host_rollback(w->h);
			r = set_job(w, &j, CIM_JOB_STATE_EXCEPTION, 0, 32768, desc, NULL);
		} else {
			r = set_job(w, &j, t.end, 100, 0, t.end == CIM_JOB_STATE_COMPLETED ? NULL :
				    "The operation completed with warnings.", result);
			if (!r)
				r = host_commit(w->h);
			else
				host_rollback(w->h);
		}
		free(result);
	} else {
		char desc[200];
		snprintf(desc, sizeof desc, "%s failed (scripted job trajectory: %s).", j.method, j.traj);
		r = set_job(w, &j, t.end, 0, t.end == CIM_JOB_STATE_EXCEPTION ? t.error_code : 0,
			    t.end == CIM_JOB_STATE_EXCEPTION ? desc : NULL, NULL);
	}
out:
	free(j.args);
	free(j.traj);
	return r;
}
