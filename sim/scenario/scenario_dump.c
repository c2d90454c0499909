/*
 * scenario_dump.c — the canonical text of a scenario: YAML in the file format itself, keys in a
 * fixed order, every default written out (except `until` and `io`, whose absence means something),
 * sizes in the largest exact binary unit, durations as scenario_duration_format spells them, VM
 * targets as `vms:` lists, every string double-quoted. Loading the dump under the same file name
 * gives an equal scenario, and dumping that gives the same bytes (the tests check both).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario_internal.h"

static void size_text(uint64_t v, char *buf, size_t n)
{
	static const char *const units[] = {"TiB", "GiB", "MiB", "KiB"};
	for (int i = 0; i < 4; i++) {
		unsigned shift = 40 - 10 * (unsigned)i;
		if (v && !(v & ((1ull << shift) - 1))) {
			snprintf(buf, n, "%llu%s", (unsigned long long)(v >> shift), units[i]);
			return;
		}
	}
	snprintf(buf, n, "%llu", (unsigned long long)v);
}

/* A YAML double-quoted scalar; code points YAML does not allow as they are get an escape. */
static void q(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	fputc('"', f);
	while (*p) {
		uint32_t c = *p;
		int len = 1;
		if (c >= 0xF0 && p[1] && p[2] && p[3]) {
			c = (c & 7u) << 18 | (p[1] & 0x3Fu) << 12 | (p[2] & 0x3Fu) << 6 |
			    (p[3] & 0x3Fu);
			len = 4;
		} else if (c >= 0xE0 && p[1] && p[2]) {
			c = (c & 15u) << 12 | (p[1] & 0x3Fu) << 6 | (p[2] & 0x3Fu);
			len = 3;
		} else if (c >= 0xC0 && p[1]) {
			c = (c & 31u) << 6 | (p[1] & 0x3Fu);
			len = 2;
		}
		/* YAML 1.1 c-printable: tab, LF, CR, 0x20-0x7E, 0x85, 0xA0-0xD7FF, 0xE000-0xFFFD,
		 * 0x10000+ */
		bool printable = (c >= 0x20 && c <= 0x7E) || c == 0x85 ||
		                 (c >= 0xA0 && c <= 0xD7FF) ||
		                 (c >= 0xE000 && c <= 0xFFFD && c != 0xFEFF) || c >= 0x10000;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", (int)c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (!printable)
			fprintf(f, "\\u%04X", (unsigned)c);
		else
			fwrite(p, 1, (size_t)len, f);
		p += len;
	}
	fputc('"', f);
}

static void duration(FILE *f, const char *key, uint64_t secs, const char *indent)
{
	char t[32];
	scenario_duration_format(secs, t, sizeof t);
	fprintf(f, "%s%s: \"%s\"\n", indent, key, t);
}

static void disk(FILE *f, const struct scenario_disk *d, const char *indent, bool with_name)
{
	char sz[32], bl[32];
	size_text(d->size, sz, sizeof sz);
	size_text(d->block, bl, sizeof bl);
	if (with_name) {
		fprintf(f, "%sname: ", indent);
		q(f, d->name);
		fputc('\n', f);
	}
	fprintf(f, "%ssize: \"%s\"\n%stype: %s\n%sblock: \"%s\"\n%ssector: %u\n", indent, sz,
	        indent, d->fixed ? "fixed" : "dynamic", indent, bl, indent, d->sector);
}

static void settings(FILE *f, const struct scenario_setting *v, size_t n, const char *indent)
{
	for (size_t i = 0; i < n; i++) {
		fputs(indent, f);
		q(f, v[i].key);
		fputs(": ", f);
		q(f, v[i].value);
		fputc('\n', f);
	}
}

static void target(FILE *f, const struct scenario_target *t, const char *indent)
{
	if (t->all) {
		fprintf(f, "%svms: all\n", indent);
		return;
	}
	fprintf(f, "%svms: [", indent);
	for (size_t i = 0; i < t->nnames; i++) {
		if (i)
			fputs(", ", f);
		q(f, t->names[i]);
	}
	fputs("]\n", f);
}

static void entry(FILE *f, const struct scenario *s, const struct scenario_entry *e)
{
	const char *in = "      ";
	if (e->every) {
		duration(f, "  - every", e->period, "");
		duration(f, "from", e->at, "    ");
		if (e->has_until)
			duration(f, "until", e->until, "    ");
	} else {
		duration(f, "  - at", e->at, "");
	}
	if (e->note) {
		fputs("    note: ", f);
		q(f, e->note);
		fputc('\n', f);
	}
	fprintf(f, "    %s:\n", scenario_action_name(e->action));
	switch (e->action) {
	case SCENARIO_WRITE:
		target(f, &e->target, in);
		fprintf(f, "%sworkload: ", in);
		q(f, s->workloads[e->write.workload].name);
		fputc('\n', f);
		if (e->write.disk) {
			fprintf(f, "%sdisk: ", in);
			q(f, e->write.disk);
			fputc('\n', f);
		}
		break;
	case SCENARIO_BACKUP:
		target(f, &e->target, in);
		fprintf(f, "%sengine: ", in);
		q(f, e->backup.engine ? s->engines[e->backup.engine - 1].name : "default");
		fprintf(f, "\n%spath: %s\n%smode: %s\n", in, scenario_path_name(e->backup.path), in,
		        scenario_mode_name(e->backup.mode));
		break;
	case SCENARIO_RESTORE:
		target(f, &e->target, in);
		if (e->restore.point == SCENARIO_POINT_LAST)
			fprintf(f, "%spoint: last\n", in);
		else if (e->restore.point == SCENARIO_POINT_ALL)
			fprintf(f, "%spoint: all\n", in);
		else
			fprintf(f, "%spoint: %u\n", in, e->restore.point);
		if (e->restore.disk) {
			fprintf(f, "%sdisk: ", in);
			q(f, e->restore.disk);
			fputc('\n', f);
		}
		fprintf(f, "%sformat: %s\n", in,
		        e->restore.format == SCENARIO_FORMAT_VHDX ? "vhdx" : "raw");
		break;
	case SCENARIO_FAULT: {
		fprintf(f, "%sname: %s\n", in, scenario_fault_name(e->fault.kind));
		if (e->target.nvms)
			target(f, &e->target, in);
		if (e->fault.disk) {
			fprintf(f, "%sdisk: ", in);
			q(f, e->fault.disk);
			fputc('\n', f);
		}
		char sz[32];
		switch (e->fault.kind) {
		case SCENARIO_FAULT_DISK_RESIZE:
			size_text(e->fault.size, sz, sizeof sz);
			fprintf(f, "%ssize: \"%s\"\n", in, sz);
			break;
		case SCENARIO_FAULT_DISK_ADD:
			disk(f, &e->fault.add, in, false);
			break;
		case SCENARIO_FAULT_LIVE_MIGRATION:
			fprintf(f, "%sreset: %s\n", in, e->fault.reset ? "true" : "false");
			break;
		case SCENARIO_FAULT_JOB_EXCEPTION:
		case SCENARIO_FAULT_SLOW_JOBS:
			if (e->fault.method)
				fprintf(f, "%smethod: %s\n", in, e->fault.method);
			if (e->fault.code)
				fprintf(f, "%scode: %u\n", in, e->fault.code);
			if (e->fault.kind == SCENARIO_FAULT_SLOW_JOBS && !e->fault.clear)
				fprintf(f, "%sstarting: %u\n%srunning: %u\n", in, e->fault.starting,
				        in, e->fault.running);
			break;
		case SCENARIO_FAULT_ENGINE_KILLED:
			if (e->fault.after_blocks)
				fprintf(f, "%safter_blocks: %llu\n", in,
				        (unsigned long long)e->fault.after_blocks);
			if (e->fault.at_commit)
				fprintf(f, "%sat_commit: %u\n", in, e->fault.at_commit);
			break;
		default:
			break;
		}
		if (e->fault.clear)
			fprintf(f, "%sclear: true\n", in);
		break;
	}
	case SCENARIO_STATE:
		target(f, &e->target, in);
		fprintf(f, "%sto: %s\n", in, scenario_vm_state_name(e->state.to));
		break;
	case SCENARIO_SET:
		settings(f, e->set.v, e->set.n, in);
		break;
	}
}

static void expectation(FILE *f, const struct scenario *s, const struct scenario_expect *x)
{
	const char *name = scenario_expect_name(x->kind);
	switch (x->kind) {
	case SCENARIO_EXPECT_RESTORES_MATCH_TRUTH:
	case SCENARIO_EXPECT_NO_LEFTOVERS:
	case SCENARIO_EXPECT_NO_PENDING_MERGES:
	case SCENARIO_EXPECT_REPOSITORY_VERIFIES:
		fprintf(f, "  - %s: true\n", name);
		break;
	case SCENARIO_EXPECT_BACKUPS_SUCCEEDED:
		if (x->all) {
			fprintf(f, "  - %s: all\n", name);
			break;
		}
		/* fallthrough */
	case SCENARIO_EXPECT_BACKUPS_FAILED:
	case SCENARIO_EXPECT_AUDIT_MISTAKES:
		fprintf(f, "  - %s: %llu\n", name, (unsigned long long)x->n);
		break;
	case SCENARIO_EXPECT_MIN_DEDUP_RATIO: {
		/* the shortest text that reads back as the same double */
		char buf[40];
		for (int prec = 1; prec <= 6; prec++) {
			snprintf(buf, sizeof buf, "%.*f", prec, x->ratio);
			if (strtod(buf, NULL) == x->ratio)
				break;
		}
		fprintf(f, "  - %s: %s\n", name, buf);
		break;
	}
	case SCENARIO_EXPECT_BACKUP:
		fputs("  - backup:\n", f);
		if (x->backup.by_vm) {
			fputs("      vm: ", f);
			q(f, s->vms[x->backup.vm].name);
			fprintf(f, "\n      nth: %u\n", x->backup.nth);
		} else {
			fprintf(f, "      index: %u\n", x->backup.index);
		}
		if (x->backup.type != SCENARIO_TYPE_ANY)
			fprintf(f, "      type: %s\n",
			        x->backup.type == SCENARIO_TYPE_FULL ? "full" : "incremental");
		if (x->backup.result != SCENARIO_RESULT_ANY)
			fprintf(f, "      result: %s\n",
			        x->backup.result == SCENARIO_RESULT_FAILED ? "failed"
			                                                   : "succeeded");
		if (x->backup.reason_contains) {
			fputs("      reason_contains: ", f);
			q(f, x->backup.reason_contains);
			fputc('\n', f);
		}
		break;
	}
}

int scenario_dump(const struct scenario *s, FILE *f)
{
	char sz[32];
	fputs("name: ", f);
	q(f, s->name);
	fputc('\n', f);
	if (s->description) {
		fputs("description: ", f);
		q(f, s->description);
		fputc('\n', f);
	}
	fprintf(f, "seed: %llu\n", (unsigned long long)s->seed);
	if (s->ntags) {
		fputs("tags: [", f);
		for (size_t i = 0; i < s->ntags; i++) {
			if (i)
				fputs(", ", f);
			q(f, s->tags[i]);
		}
		fputs("]\n", f);
	}
	if (s->has_duration)
		duration(f, "duration", s->duration, "");
	size_text(s->rct_granularity, sz, sizeof sz);
	fprintf(f, "host:\n  rct_granularity: \"%s\"\n  strict: %s\n", sz,
	        s->strict ? "true" : "false");
	if (s->nsettings) {
		fputs("  settings:\n", f);
		settings(f, s->settings, s->nsettings, "    ");
	}
	if (s->nengines) {
		fputs("engines:\n", f);
		for (size_t i = 0; i < s->nengines; i++) {
			fputs("  ", f);
			q(f, s->engines[i].name);
			fputs(":\n    backup: ", f);
			q(f, s->engines[i].backup);
			fputc('\n', f);
			if (s->engines[i].restore) {
				fputs("    restore: ", f);
				q(f, s->engines[i].restore);
				fputc('\n', f);
			}
		}
	}
	fputs("vms:\n", f);
	for (size_t i = 0; i < s->ngroups; i++) {
		const struct scenario_group *g = &s->groups[i];
		fputs("  - name: ", f);
		q(f, g->name);
		fputc('\n', f);
		if (g->count)
			fprintf(f, "    count: %u\n", g->count);
		fprintf(f, "    state: %s\n    disks:\n", scenario_vm_state_name(g->state));
		for (size_t j = 0; j < g->ndisks; j++) {
			fputs("      - name: ", f);
			q(f, g->disks[j].name);
			fputc('\n', f);
			disk(f, &g->disks[j], "        ", false);
		}
	}
	if (s->nworkloads) {
		fputs("workloads:\n", f);
		for (size_t i = 0; i < s->nworkloads; i++) {
			const struct scenario_workload *w = &s->workloads[i];
			fputs("  ", f);
			q(f, w->name);
			fprintf(f, ":\n    pattern: %s\n", wl_pattern_name(w->pattern));
			if (w->pattern != WL_OVERWRITE) {
				size_text(w->bytes, sz, sizeof sz);
				fprintf(f, "    bytes: \"%s\"\n", sz);
			}
			if (w->io_max) {
				char lo[32];
				size_text(w->io_min, lo, sizeof lo);
				size_text(w->io_max, sz, sizeof sz);
				if (w->io_min == w->io_max)
					fprintf(f, "    io: \"%s\"\n", sz);
				else
					fprintf(f, "    io: \"%s-%s\"\n", lo, sz);
			}
			fprintf(f, "    compress: %u\n", w->compress);
			if (w->has_seed)
				fprintf(f, "    seed: %llu\n", (unsigned long long)w->seed);
		}
	}
	fputs("timeline:\n", f);
	for (size_t i = 0; i < s->nentries; i++)
		entry(f, s, &s->timeline[i]);
	fputs("expect:\n", f);
	for (size_t i = 0; i < s->nexpect; i++)
		expectation(f, s, &s->expect[i]);
	return ferror(f) ? hv_err(HV_EIO, "cannot write the scenario") : 0;
}
