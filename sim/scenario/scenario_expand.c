/*
 * scenario_expand.c — the timeline as concrete events, and the checks that need time order.
 *
 * Order: by time, then by position in the file, then by the order of the entry's target VMs. The
 * keys are unique, so the order is total and the same on every machine. The walk over the sorted
 * events keeps, per VM, the disks attached at that moment (labels, sizes, sectors), the number of
 * backups so far and the engine-killed faults waiting for a backup; that is what lets the loader
 * reject a write to a disk removed the day before, a restore of point 5 when only 4 backups came
 * before, or a kill with no backup after it.
 *
 * Write seeds: each write event gets the first value of hv_rng_stream(seed, "<workload>/<vm>/<n>"),
 * where n counts that VM's writes (1-based) and seed is the workload's own seed when it has one,
 * else the scenario's (or the runner's --seed).
 * The host derives per-disk seeds from it (host_workload_seed).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "scenario_internal.h"

struct vdisk {
	const char *label; /* points into the scenario (group disk or disk-add fault) */
	uint64_t size;
	uint32_t sector;
	bool attached;
	bool backed_up; /* attached during some backup of the VM so far (a restore can name it) */
};

struct vstate {
	struct vdisk
	    *d; /* every disk the VM ever had, removed ones kept (restores may name them) */
	size_t n, cap;
	uint32_t count[SCENARIO_ACTION_COUNT]; /* events of each action so far */
	uint32_t kill; /* 1 + entry index of a pending engine-killed, or 0 */
};

struct occ {
	uint64_t time;
	uint32_t entry, pos; /* pos: index in the entry's target VMs (0 without VMs) */
};

static int cmp_occ(const void *a, const void *b)
{
	const struct occ *x = a, *y = b;
	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	if (x->entry != y->entry)
		return x->entry < y->entry ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Actions that happen once per target VM (host-wide faults and `set` have no VM). */
static size_t targets(const struct scenario_entry *e)
{
	return e->target.nvms;
}

static struct vdisk *disk_of(struct vstate *v, const char *label)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strcasecmp(v->d[i].label, label))
			return &v->d[i];
	return NULL;
}

static size_t attached(const struct vstate *v)
{
	size_t n = 0;
	for (size_t i = 0; i < v->n; i++)
		n += v->d[i].attached;
	return n;
}

static int add_disk(struct vstate *v, const struct scenario_disk *d)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 4;
		struct vdisk *x = realloc(v->d, cap * sizeof *x);
		if (!x)
			return hv_err(HV_ENOMEM, "out of memory");
		v->d = x;
		v->cap = cap;
	}
	v->d[v->n++] = (struct vdisk){d->name, d->size, d->sector, true, false};
	return 0;
}

struct walk {
	const struct scenario *s;
	const struct scenario_entry *e;
	uint64_t time;
};

static int efail(const struct walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int efail(const struct walk *w, const char *fmt, ...)
{
	char msg[800], t[32];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	scenario_duration_format(w->time, t, sizeof t);
	return sc_fail(w->s->path, w->e->mark, "at %s: %s", t, msg);
}

/* The disk an action names must be attached to the VM at that moment. */
static int need_disk(const struct walk *w, struct vstate *v, const char *vm, const char *label,
                     struct vdisk **out)
{
	struct vdisk *d = disk_of(v, label);
	if (!d)
		return efail(w, "VM '%s' has no disk '%s'", vm, label);
	if (!d->attached)
		return efail(w, "disk '%s' of VM '%s' was removed earlier", label, vm);
	*out = d;
	return 0;
}

static int check_write(const struct walk *w, struct vstate *v, const char *vm)
{
	const struct scenario_workload *wl = &w->s->workloads[w->e->write.workload];
	struct vdisk *one = NULL;
	int r;
	if (w->e->write.disk && (r = need_disk(w, v, vm, w->e->write.disk, &one)))
		return r;
	if (!one && !attached(v))
		return efail(w, "VM '%s' has no disk to write to", vm);
	for (size_t i = 0; i < v->n; i++) {
		const struct vdisk *d = one ? one : &v->d[i];
		if (!d->attached)
			continue;
		if (wl->bytes % d->sector || wl->io_min % d->sector || wl->io_max % d->sector)
			return efail(w,
			             "workload '%s' writes in pieces that are not multiples of the "
			             "%u-byte sectors of"
			             " disk '%s' of VM '%s' (bytes and io must be multiples of %u)",
			             wl->name, d->sector, d->label, vm, d->sector);
		if (one)
			break;
	}
	return 0;
}

static int check_fault(const struct walk *w, struct vstate *v, const char *vm)
{
	const struct scenario_entry *e = w->e;
	struct vdisk *d = NULL;
	int r = 0;
	switch (e->fault.kind) {
	case SCENARIO_FAULT_RCT_RESET:
	case SCENARIO_FAULT_TRACKING_OFF:
		if (e->fault.disk)
			r = need_disk(w, v, vm, e->fault.disk, &d);
		break;
	case SCENARIO_FAULT_DISK_REPLACE:
		r = need_disk(w, v, vm, e->fault.disk, &d);
		break;
	case SCENARIO_FAULT_DISK_REMOVE:
		if (!(r = need_disk(w, v, vm, e->fault.disk, &d)))
			d->attached = false;
		break;
	case SCENARIO_FAULT_DISK_RESIZE:
		if ((r = need_disk(w, v, vm, e->fault.disk, &d)))
			break;
		if (e->fault.size <= d->size)
			r = efail(w,
			          "disk-resize of '%s' on VM '%s' to %llu bytes: not larger than "
			          "its %llu bytes (only"
			          " growing is simulated)",
			          d->label, vm, (unsigned long long)e->fault.size,
			          (unsigned long long)d->size);
		else if (e->fault.size % d->sector)
			r = efail(w,
			          "disk-resize of '%s' on VM '%s': %llu is not a multiple of its "
			          "%u-byte sector",
			          d->label, vm, (unsigned long long)e->fault.size, d->sector);
		else
			d->size = e->fault.size;
		break;
	case SCENARIO_FAULT_DISK_ADD:
		d = disk_of(v, e->fault.disk);
		if (d && d->attached)
			r = efail(w, "disk-add: VM '%s' already has a disk '%s'", vm,
			          e->fault.disk);
		else if (attached(v) >= SCENARIO_MAX_DISKS)
			r = efail(w, "disk-add: VM '%s' already has %d disks", vm,
			          SCENARIO_MAX_DISKS);
		else if (d) /* the label comes back; older points keep the old disk */
			*d = (struct vdisk){e->fault.add.name, e->fault.add.size,
			                    e->fault.add.sector, true, d->backed_up};
		else
			r = add_disk(v, &e->fault.add);
		break;
	default:
		break;
	}
	return r;
}

int scenario_expand(const struct scenario *s, uint64_t seed, struct scenario_event **events,
                    size_t *nevents)
{
	*events = NULL;
	*nevents = 0;
	/* 1. count before allocating */
	uint64_t total = 0;
	for (size_t i = 0; i < s->nentries; i++) {
		const struct scenario_entry *e = &s->timeline[i];
		uint64_t times = e->every ? (e->until - e->at) / e->period + 1 : 1;
		uint64_t per = targets(e) ? targets(e) : 1;
		total += times * per;
		if (total > SCENARIO_MAX_EVENTS)
			return sc_fail(
			    s->path, e->mark,
			    "the timeline expands to more than %d events (with this entry: %llu"
			    " times × %llu VMs)",
			    SCENARIO_MAX_EVENTS, (unsigned long long)times,
			    (unsigned long long)per);
	}
	struct occ *occ = malloc((total ? total : 1) * sizeof *occ);
	struct scenario_event *ev = calloc(total ? total : 1, sizeof *ev);
	struct vstate *vs = calloc(s->nvms ? s->nvms : 1, sizeof *vs);
	int r = 0;
	if (!occ || !ev || !vs) {
		r = hv_err(HV_ENOMEM, "out of memory");
		goto out;
	}
	size_t n = 0;
	for (size_t i = 0; i < s->nentries; i++) {
		const struct scenario_entry *e = &s->timeline[i];
		size_t per = targets(e) ? targets(e) : 1;
		for (uint64_t t = e->at;; t += e->period) {
			for (size_t p = 0; p < per; p++)
				occ[n++] = (struct occ){t, (uint32_t)i, (uint32_t)p};
			if (!e->every || e->until - t < e->period)
				break;
		}
	}
	qsort(occ, n, sizeof *occ, cmp_occ);

	/* 2. walk in time order */
	for (size_t i = 0; i < s->nvms && !r; i++) {
		const struct scenario_group *g = &s->groups[s->vms[i].group];
		for (size_t j = 0; j < g->ndisks && !r; j++)
			r = add_disk(&vs[i], &g->disks[j]);
	}
	uint32_t seq[SCENARIO_ACTION_COUNT] = {0}, kill_any = 0;
	for (size_t i = 0; i < n && !r; i++) {
		const struct scenario_entry *e = &s->timeline[occ[i].entry];
		struct walk w = {s, e, occ[i].time};
		struct scenario_event *x = &ev[i];
		x->time = occ[i].time;
		x->entry = occ[i].entry;
		x->vm = targets(e) ? e->target.vms[occ[i].pos] : SCENARIO_NO_VM;
		x->seq = ++seq[e->action];
		struct vstate *v = x->vm == SCENARIO_NO_VM ? NULL : &vs[x->vm];
		const char *vm = v ? s->vms[x->vm].name : NULL;
		if (v)
			x->vm_seq = ++v->count[e->action];
		switch (e->action) {
		case SCENARIO_WRITE: {
			const struct scenario_workload *wl = &s->workloads[e->write.workload];
			char key[SCENARIO_MAX_LABEL + SCENARIO_MAX_NAME + 32];
			snprintf(key, sizeof key, "%s/%s/%u", wl->name, vm, x->vm_seq);
			struct hv_rng rng = hv_rng_stream(wl->has_seed ? wl->seed : seed, key);
			x->seed = hv_rng_next(&rng);
			r = check_write(&w, v, vm);
			break;
		}
		case SCENARIO_BACKUP: {
			uint32_t *k = v->kill ? &v->kill : kill_any ? &kill_any : NULL;
			if (k) {
				const struct scenario_entry *f = &s->timeline[*k - 1];
				x->crash_after_blocks = f->fault.after_blocks;
				x->crash_at_commit = f->fault.at_commit;
				*k = 0;
			}
			for (size_t j = 0; j < v->n; j++)
				v->d[j].backed_up |= v->d[j].attached;
			break;
		}
		case SCENARIO_RESTORE: {
			uint32_t have = v->count[SCENARIO_BACKUP];
			if (!have)
				r = efail(&w, "restore of VM '%s': no backup of it comes before",
				          vm);
			else if (e->restore.point != SCENARIO_POINT_LAST &&
			         e->restore.point != SCENARIO_POINT_ALL && e->restore.point > have)
				r = efail(&w,
				          "restore of VM '%s' point %u: only %u backup(s) of it "
				          "come before",
				          vm, e->restore.point, have);
			else if (e->restore.disk && !disk_of(v, e->restore.disk))
				r = efail(&w, "restore of VM '%s': it has no disk '%s'", vm,
				          e->restore.disk);
			else if (e->restore.disk && !disk_of(v, e->restore.disk)->backed_up)
				r = efail(&w,
				          "restore of VM '%s': disk '%s' was not attached during "
				          "any earlier backup",
				          vm, e->restore.disk);
			break;
		}
		case SCENARIO_FAULT:
			if (e->fault.kind == SCENARIO_FAULT_ENGINE_KILLED) {
				uint32_t *k = v ? &v->kill : &kill_any;
				if (*k)
					r = efail(&w,
					          "engine-killed: the one at line %u has not fired "
					          "yet (no backup%s%s between"
					          " them)",
					          s->timeline[*k - 1].mark.line, v ? " of " : "",
					          v ? vm : "");
				*k = occ[i].entry + 1;
			} else if (v) {
				r = check_fault(&w, v, vm);
			}
			break;
		case SCENARIO_STATE:
		case SCENARIO_SET:
			break;
		}
	}
	for (size_t i = 0; i <= s->nvms && !r; i++) {
		uint32_t k = i < s->nvms ? vs[i].kill : kill_any;
		if (k)
			r = sc_fail(s->path, s->timeline[k - 1].mark,
			            "engine-killed: no backup%s%s follows for it to kill",
			            i < s->nvms ? " of " : "", i < s->nvms ? s->vms[i].name : "");
	}
	if (!r) {
		*events = ev;
		*nevents = n;
		ev = NULL;
	}
out:
	for (size_t i = 0; vs && i < s->nvms; i++)
		free(vs[i].d);
	free(vs);
	free(occ);
	free(ev);
	return r;
}

/* ---- expectations that name backups ---------------------------------------------------------- */

int sc_resolve_expectations(struct scenario *s)
{
	uint32_t backups = 0, restores = 0, killed = 0;
	for (size_t i = 0; i < s->nevents; i++) {
		const struct scenario_event *x = &s->events[i];
		enum scenario_action a = s->timeline[x->entry].action;
		backups += a == SCENARIO_BACKUP;
		restores += a == SCENARIO_RESTORE;
		killed += a == SCENARIO_BACKUP && (x->crash_after_blocks || x->crash_at_commit);
	}
	const struct scenario_expect *ok = NULL, *bad = NULL;
	for (size_t i = 0; i < s->nexpect; i++) {
		struct scenario_expect *x = &s->expect[i];
		const char *name = scenario_expect_name(x->kind);
		switch (x->kind) {
		case SCENARIO_EXPECT_RESTORES_MATCH_TRUTH:
			if (!restores)
				return sc_fail(s->path, x->mark,
				               "%s: the timeline restores nothing", name);
			break;
		case SCENARIO_EXPECT_MIN_DEDUP_RATIO:
		case SCENARIO_EXPECT_REPOSITORY_VERIFIES:
			if (!backups)
				return sc_fail(s->path, x->mark,
				               "%s: the timeline backs nothing up", name);
			break;
		case SCENARIO_EXPECT_BACKUPS_SUCCEEDED:
			ok = x;
			if (x->all && killed)
				return sc_fail(
				    s->path, x->mark,
				    "backups_succeeded: all, but engine-killed faults kill %u"
				    " backup(s): give the number that should succeed",
				    killed);
			/* fallthrough */
		case SCENARIO_EXPECT_BACKUPS_FAILED:
			if (x->kind == SCENARIO_EXPECT_BACKUPS_FAILED)
				bad = x;
			if (!x->all && x->n > backups)
				return sc_fail(s->path, x->mark,
				               "%s: %llu, but the timeline has only %u backup(s)",
				               name, (unsigned long long)x->n, backups);
			break;
		case SCENARIO_EXPECT_BACKUP: {
			const struct scenario_event *b = NULL;
			if (!x->backup.by_vm && x->backup.index > backups)
				return sc_fail(
				    s->path, x->mark,
				    "expect backup: index %u, but the timeline has %u backup(s)"
				    " (hvsim scenario check --events numbers them)",
				    x->backup.index, backups);
			/* at most SCENARIO_MAX_EXPECT scans of SCENARIO_MAX_EVENTS events */
			for (size_t j = 0; j < s->nevents && !b; j++) {
				const struct scenario_event *e = &s->events[j];
				if (s->timeline[e->entry].action != SCENARIO_BACKUP)
					continue;
				if (x->backup.by_vm
				        ? e->vm == x->backup.vm && e->vm_seq == x->backup.nth
				        : e->seq == x->backup.index)
					b = e;
			}
			if (!b)
				return sc_fail(
				    s->path, x->mark,
				    "expect backup: VM '%s' has fewer than %u backups in the"
				    " timeline",
				    s->vms[x->backup.vm].name, x->backup.nth);
			x->backup.index = b->seq;
			enum scenario_mode m = s->timeline[b->entry].backup.mode;
			if ((m == SCENARIO_MODE_FULL &&
			     x->backup.type == SCENARIO_TYPE_INCREMENTAL) ||
			    (m == SCENARIO_MODE_INCREMENTAL &&
			     x->backup.type == SCENARIO_TYPE_FULL))
				return sc_fail(
				    s->path, x->mark,
				    "expect backup #%u: type %s, but that backup (line %u) has"
				    " mode: %s",
				    b->seq,
				    x->backup.type == SCENARIO_TYPE_FULL ? "full" : "incremental",
				    s->timeline[b->entry].mark.line, scenario_mode_name(m));
			break;
		}
		default:
			break;
		}
	}
	if (ok && bad && ok->all && bad->n)
		return sc_fail(s->path, bad->mark,
		               "backups_failed: %llu contradicts backups_succeeded: all",
		               (unsigned long long)bad->n);
	if (ok && bad && !ok->all && ok->n + bad->n != backups)
		return sc_fail(
		    s->path, bad->mark,
		    "backups_failed: %llu and backups_succeeded: %llu do not add up to the %u"
		    " backup(s) of the timeline",
		    (unsigned long long)bad->n, (unsigned long long)ok->n, backups);
	return 0;
}

/* ---- summaries ------------------------------------------------------------------------------- */

void scenario_count(const struct scenario *s, struct scenario_counts *c)
{
	memset(c, 0, sizeof *c);
	c->vms = s->nvms;
	for (size_t i = 0; i < s->nvms; i++)
		c->disks += s->groups[s->vms[i].group].ndisks;
	c->events = s->nevents;
	for (size_t i = 0; i < s->nevents; i++) {
		c->per_action[s->timeline[s->events[i].entry].action]++;
		if (s->events[i].time > c->end)
			c->end = s->events[i].time;
	}
	if (s->has_duration)
		c->end = s->duration;
}

int scenario_events_dump(const struct scenario *s, FILE *f)
{
	for (size_t i = 0; i < s->nevents; i++) {
		const struct scenario_event *x = &s->events[i];
		const struct scenario_entry *e = &s->timeline[x->entry];
		char t[32];
		scenario_duration_format(x->time, t, sizeof t);
		fprintf(f, "%-12s %-8s %-16s #%u", t, scenario_action_name(e->action),
		        x->vm == SCENARIO_NO_VM ? "-" : s->vms[x->vm].name, x->seq);
		if (x->vm != SCENARIO_NO_VM)
			fprintf(f, " (%u of VM)", x->vm_seq);
		switch (e->action) {
		case SCENARIO_WRITE:
			fprintf(f, " workload=%s disk=%s seed=%llu",
			        s->workloads[e->write.workload].name,
			        e->write.disk ? e->write.disk : "all", (unsigned long long)x->seed);
			break;
		case SCENARIO_BACKUP:
			fprintf(
			    f, " engine=%s path=%s mode=%s",
			    e->backup.engine ? s->engines[e->backup.engine - 1].name : "default",
			    scenario_path_name(e->backup.path), scenario_mode_name(e->backup.mode));
			if (x->crash_after_blocks)
				fprintf(f, " killed-after-blocks=%llu",
				        (unsigned long long)x->crash_after_blocks);
			if (x->crash_at_commit)
				fprintf(f, " killed-at-commit=%u", x->crash_at_commit);
			break;
		case SCENARIO_RESTORE:
			if (e->restore.point == SCENARIO_POINT_LAST)
				fprintf(f, " point=last");
			else if (e->restore.point == SCENARIO_POINT_ALL)
				fprintf(f, " point=all");
			else
				fprintf(f, " point=%u", e->restore.point);
			fprintf(f, " disk=%s format=%s", e->restore.disk ? e->restore.disk : "all",
			        e->restore.format == SCENARIO_FORMAT_VHDX ? "vhdx" : "raw");
			break;
		case SCENARIO_FAULT:
			fprintf(f, " %s", scenario_fault_name(e->fault.kind));
			if (e->fault.disk)
				fprintf(f, " disk=%s", e->fault.disk);
			if (e->fault.clear)
				fprintf(f, " clear");
			break;
		case SCENARIO_STATE:
			fprintf(f, " to=%s", scenario_vm_state_name(e->state.to));
			break;
		case SCENARIO_SET:
			for (size_t k = 0; k < e->set.n; k++)
				fprintf(f, " %s=%s", e->set.v[k].key, e->set.v[k].value);
			break;
		}
		fputc('\n', f);
	}
	return ferror(f) ? hv_err(HV_EIO, "cannot write the events") : 0;
}
