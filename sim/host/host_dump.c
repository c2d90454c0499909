/*
 * host_dump.c — `hvsim state dump`: the canonical text of a host, for diffs and for the
 * determinism test. Every table of host.db in name order, rows ordered by all columns, values
 * printed as SQL-ish literals; then every file of the folder (except host.db and its WAL/SHM) in
 * path order with its size and XXH3-128 digest. Two hosts built from the same seed and commands
 * print the same text, wherever their folders are.
 *
 * Must not: change anything.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "host_internal.h"

static int dump_table(struct host *h, FILE *o, const char *table)
{
	char *sql = sqlite3_mprintf("SELECT * FROM \"%w\"", table);
	sqlite3_stmt *st;
	int r = hdb_prep(h, &st, sql);
	sqlite3_free(sql);
	if (r)
		return r;
	int nc = sqlite3_column_count(st);
	sqlite3_finalize(st);
	/* ORDER BY every column: a canonical order without knowing the keys */
	char *order = sqlite3_mprintf("1");
	for (int i = 2; i <= nc; i++) {
		char *n = sqlite3_mprintf("%s,%d", order, i);
		sqlite3_free(order);
		order = n;
	}
	sql = sqlite3_mprintf("SELECT * FROM \"%w\" ORDER BY %s", table, order);
	sqlite3_free(order);
	r = hdb_prep(h, &st, sql);
	sqlite3_free(sql);
	if (r)
		return r;
	fprintf(o, "[%s]\n", table);
	while (sqlite3_step(st) == SQLITE_ROW) {
		for (int i = 0; i < nc; i++) {
			fprintf(o, "%s%s=", i ? " " : "", sqlite3_column_name(st, i));
			switch (sqlite3_column_type(st, i)) {
			case SQLITE_NULL:
				fputs("NULL", o);
				break;
			case SQLITE_INTEGER:
				fprintf(o, "%lld", (long long)sqlite3_column_int64(st, i));
				break;
			case SQLITE_FLOAT:
				fprintf(o, "%.17g", sqlite3_column_double(st, i));
				break;
			case SQLITE_BLOB: {
				const uint8_t *b = sqlite3_column_blob(st, i);
				int n = sqlite3_column_bytes(st, i);
				fputs("x'", o);
				for (int k = 0; k < n; k++)
					fprintf(o, "%02x", b[k]);
				fputc('\'', o);
				break;
			}
			default: {
				char *q = sqlite3_mprintf("%Q", (const char *)sqlite3_column_text(st, i));
				fputs(q, o);
				sqlite3_free(q);
			}
			}
		}
		fputc('\n', o);
	}
	sqlite3_finalize(st);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct list {
	char **v;
	size_t n, cap;
};

static int walk(const char *root, const char *rel, struct list *l)
{
	char *dir;
	if (asprintf(&dir, "%s%s%s", root, *rel ? "/" : "", rel) < 0)
		return hv_err(HV_ENOMEM, "out of memory");
	DIR *d = opendir(dir);
	free(dir);
	if (!d)
		return 0;
	struct dirent *e;
	int r = 0;
	while (!r && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!*rel && (!strcmp(e->d_name, "host.db") || !strcmp(e->d_name, "host.db-wal") ||
			      !strcmp(e->d_name, "host.db-shm")))
			continue;
		char *p;
		if (asprintf(&p, "%s%s%s", rel, *rel ? "/" : "", e->d_name) < 0) {
			r = hv_err(HV_ENOMEM, "out of memory");
			break;
		}
		char *full;
		struct stat sb;
		if (asprintf(&full, "%s/%s", root, p) < 0) {
			free(p);
			r = hv_err(HV_ENOMEM, "out of memory");
			break;
		}
		int isdir = !lstat(full, &sb) && S_ISDIR(sb.st_mode);
		free(full);
		if (isdir) {
			r = walk(root, p, l);
			free(p);
			continue;
		}
		if (l->n == l->cap) {
			size_t nc = l->cap ? 2 * l->cap : 64;
			char **nv = realloc(l->v, nc * sizeof *nv);
			if (!nv) {
				free(p);
				r = hv_err(HV_ENOMEM, "out of memory");
				break;
			}
			l->v = nv;
			l->cap = nc;
		}
		l->v[l->n++] = p;
	}
	closedir(d);
	return r;
}

static int digest_file(const char *path, uint64_t *size, char out[33])
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return hv_err(HV_EIO, "%s: cannot open", path);
	XXH3_state_t *s = XXH3_createState();
	uint8_t *buf = malloc(1u << 20);
	int r = (s && buf) ? 0 : hv_err(HV_ENOMEM, "out of memory");
	*size = 0;
	if (!r) {
		XXH3_128bits_reset(s);
		ssize_t n;
		while ((n = read(fd, buf, 1u << 20)) > 0) {
			XXH3_128bits_update(s, buf, (size_t)n);
			*size += (uint64_t)n;
		}
		if (n < 0)
			r = hv_err(HV_EIO, "%s: read failed", path);
		XXH128_canonical_t c;
		XXH128_canonicalFromHash(&c, XXH3_128bits_digest(s));
		for (int i = 0; i < 16; i++)
			snprintf(out + 2 * i, 3, "%02x", c.digest[i]);
	}
	XXH3_freeState(s);
	free(buf);
	close(fd);
	return r;
}

int host_state_dump(struct host *h, void *file)
{
	FILE *o = file;
	sqlite3_stmt *st;
	int r = hdb_prep(h, &st, "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
				 " ORDER BY name");
	if (r)
		return r;
	char *tables[128];
	size_t nt = 0;
	while (nt < 128 && sqlite3_step(st) == SQLITE_ROW)
		tables[nt++] = strdup(hdb_text(st, 0));
	sqlite3_finalize(st);
	for (size_t i = 0; i < nt; i++) {
		if (!r)
			r = tables[i] ? dump_table(h, o, tables[i]) : hv_err(HV_ENOMEM, "out of memory");
		free(tables[i]);
	}
	if (r)
		return r;
	struct list l = {0};
	r = walk(h->dir, "", &l);
	if (!r) {
		qsort(l.v, l.n, sizeof *l.v, cmp_str);
		fputs("[files]\n", o);
	}
	for (size_t i = 0; i < l.n; i++) {
		if (!r) {
			char *full = host_abs(h, l.v[i]), dg[33];
			uint64_t size = 0;
			r = full ? digest_file(full, &size, dg) : HV_ENOMEM;
			if (!r)
				fprintf(o, "%s size=%llu xxh128=%s\n", l.v[i], (unsigned long long)size, dg);
			free(full);
		}
		free(l.v[i]);
	}
	free(l.v);
	return r;
}

int host_list_vms(struct host *h, void *file)
{
	FILE *o = file;
	sqlite3_stmt *st;
	int r = hdb_prep(h, &st,
			 "SELECT v.name, v.guid, v.state, d.name, d.size, d.virtual_disk_id,"
			 " (SELECT count(*) FROM chain c WHERE c.disk_id=d.id), (SELECT count(*) FROM snapshot s WHERE"
			 " s.vm_id=v.id), (SELECT count(*) FROM refpoint p WHERE p.vm_id=v.id)"
			 " FROM vm v LEFT JOIN disk d ON d.vm_id=v.id AND d.attached ORDER BY v.name, d.slot");
	if (r)
		return r;
	char last[HOST_NAME_MAX_LEN + 1] = "";
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *vm = hdb_text(st, 0);
		if (strcmp(vm, last)) {
			int s = sqlite3_column_int(st, 2);
			fprintf(o, "%s  {%s}  %s  checkpoints=%d reference-points=%d\n", vm, hdb_text(st, 1),
				s == HOST_VM_RUNNING ? "running" : s == HOST_VM_OFF ? "off" : s == HOST_VM_SAVED ? "saved" : "other",
				sqlite3_column_int(st, 7), sqlite3_column_int(st, 8));
			snprintf(last, sizeof last, "%s", vm);
		}
		if (sqlite3_column_type(st, 3) != SQLITE_NULL)
			fprintf(o, "  disk %s  %llu bytes  VirtualDiskId {%s}  files in chain %d\n", hdb_text(st, 3),
				(unsigned long long)sqlite3_column_int64(st, 4), hdb_text(st, 5), sqlite3_column_int(st, 6));
	}
	sqlite3_finalize(st);
	return 0;
}
