/*
 * hvsim vhdx — the VHDX commands. Thin: parses options, calls hyperv/vhdx, prints. Raw-image
 * I/O (import reads holes with SEEK_DATA/SEEK_HOLE, export writes a sparse file) lives here
 * because it is about raw files, not VHDX.
 *
 * Output files are written under a temporary name and renamed into place when complete, so an
 * interrupted command never leaves a partial output under the requested name.
 */
#include "../../hyperv/vhdx/vhdx.h"
#include "commands.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IO_CHUNK (4u * 1024 * 1024)

static const char *const USAGE =
	"usage: hvsim vhdx <command> [options]\n"
	"\n"
	"  create FILE --size SIZE [--type dynamic|fixed] [--block-size SIZE]\n"
	"              [--sector-size 512|4096] [--physical-sector-size 512|4096]\n"
	"              [--parent PARENT.vhdx] [--seed N]\n"
	"      New empty disk; with --parent a differencing disk (size from the parent).\n"
	"  import RAW FILE [--type dynamic|fixed] [--block-size SIZE] [--sector-size 512|4096] [--seed N]\n"
	"              [--no-sync]\n"
	"      Raw image -> new VHDX, skipping holes and zero blocks.\n"
	"  export FILE RAW [--no-sync]\n"
	"      VHDX, read through its parent chain -> sparse raw image.\n"
	"  info FILE [--json]      Geometry, GUIDs, log state, parent locator.\n"
	"  check FILE              Exit 0 clean, 1 problems found (each printed), 2 cannot open.\n"
	"  map FILE [--json]       Virtual ranges this file (not its parents) defines.\n"
	"  read FILE --offset N --length N [--to OUT]     Bytes to OUT or stdout.\n"
	"  write FILE --offset N (--pattern BYTE --length N | --from IN)\n"
	"\n"
	"SIZE and N accept plain bytes or KiB/MiB/GiB/TiB suffixes. Every GUID a command creates comes\n"
	"from --seed (default for create/import: derived from the new file's name; writes mix in the\n"
	"file's current header), so the same commands give byte-identical files.\n"
	"import and export flush their output before putting it in place; --no-sync skips the flush\n"
	"(faster, like qemu-img's default; after a power loss the output may be incomplete).\n";

struct opts {
	const char *pos[3];
	int npos;
	const char *size, *type, *block_size, *sector, *psector, *parent, *seed, *offset, *length,
		*to, *pattern, *from;
	int json;
	int no_sync;
};

static int parse(int argc, char **argv, struct opts *o, const char *allowed)
{
	memset(o, 0, sizeof *o);
	static const struct {
		const char *name;
		size_t off;
	} known[] = {
		{"--size", offsetof(struct opts, size)},
		{"--type", offsetof(struct opts, type)},
		{"--block-size", offsetof(struct opts, block_size)},
		{"--sector-size", offsetof(struct opts, sector)},
		{"--physical-sector-size", offsetof(struct opts, psector)},
		{"--parent", offsetof(struct opts, parent)},
		{"--seed", offsetof(struct opts, seed)},
		{"--offset", offsetof(struct opts, offset)},
		{"--length", offsetof(struct opts, length)},
		{"--to", offsetof(struct opts, to)},
		{"--pattern", offsetof(struct opts, pattern)},
		{"--from", offsetof(struct opts, from)},
	};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--json") && strstr(allowed, "--json ")) {
			o->json = 1;
			continue;
		}
		if (!strcmp(a, "--no-sync") && strstr(allowed, "--no-sync ")) {
			o->no_sync = 1;
			continue;
		}
		if (a[0] == '-' && a[1] == '-') {
			size_t k;
			for (k = 0; k < sizeof known / sizeof known[0]; k++)
				if (!strcmp(a, known[k].name))
					break;
			char want[64];
			snprintf(want, sizeof want, "%s ", a);
			if (k == sizeof known / sizeof known[0] || !strstr(allowed, want)) {
				fprintf(stderr, "hvsim: vhdx %s: unknown option '%s'\n", argv[0], a);
				return 2;
			}
			if (i + 1 >= argc) {
				fprintf(stderr, "hvsim: vhdx %s: option '%s' needs a value\n", argv[0], a);
				return 2;
			}
			*(const char **)((char *)o + known[k].off) = argv[++i];
			continue;
		}
		if (o->npos == 3) {
			fprintf(stderr, "hvsim: vhdx %s: unexpected argument '%s'\n", argv[0], a);
			return 2;
		}
		o->pos[o->npos++] = a;
	}
	return 0;
}

static int need_pos(const char *cmd, const struct opts *o, int n, const char *what)
{
	if (o->npos != n) {
		fprintf(stderr, "hvsim: vhdx %s: expected %s (see 'hvsim vhdx --help')\n", cmd, what);
		return 2;
	}
	return 0;
}

static int num(const char *opt, const char *v, uint64_t *out)
{
	if (hv_parse_size(v, out)) {
		fprintf(stderr, "hvsim: %s: %s\n", opt, hv_errmsg());
		return 2;
	}
	return 0;
}

static int fail(void)
{
	fprintf(stderr, "hvsim: %s\n", hv_errmsg());
	return 1;
}

static int create_opts(const char *cmd, const struct opts *o, struct vhdx_create_opts *c)
{
	memset(c, 0, sizeof *c);
	c->type = VHDX_TYPE_DYNAMIC;
	uint64_t v;
	if (o->type) {
		if (!strcmp(o->type, "dynamic"))
			c->type = VHDX_TYPE_DYNAMIC;
		else if (!strcmp(o->type, "fixed"))
			c->type = VHDX_TYPE_FIXED;
		else {
			fprintf(stderr, "hvsim: vhdx %s: --type must be dynamic or fixed, not '%s'\n", cmd, o->type);
			return 2;
		}
	}
	if (o->block_size) {
		if (num("--block-size", o->block_size, &v))
			return 2;
		if (v > UINT32_MAX) {
			fprintf(stderr, "hvsim: --block-size: %s is too large (at most 256MiB)\n", o->block_size);
			return 2;
		}
		c->block_size = (uint32_t)v;
	}
	const char *ss[2] = {o->sector, o->psector};
	uint32_t *dst[2] = {&c->logical_sector, &c->physical_sector};
	for (int i = 0; i < 2; i++) {
		if (!ss[i])
			continue;
		if (strcmp(ss[i], "512") && strcmp(ss[i], "4096")) {
			fprintf(stderr, "hvsim: vhdx %s: sector size must be 512 or 4096, not '%s'\n", cmd, ss[i]);
			return 2;
		}
		*dst[i] = (uint32_t)atoi(ss[i]);
	}
	if (o->seed && num("--seed", o->seed, &c->seed))
		return 2;
	return 0;
}

/* Without --seed, GUIDs derive from the new file's name: still reproducible, but two disks made
 * side by side do not share a Virtual Disk ID or DataWriteGuid. */
static void default_seed(const struct opts *o, struct vhdx_create_opts *c, const char *file)
{
	if (o->seed)
		return;
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
	c->seed = hv_hash64(base, strlen(base), 0xcbf29ce484222325ull);
}

/* ---- create --------------------------------------------------------------------------------*/

static int do_create(int argc, char **argv)
{
	struct opts o;
	struct vhdx_create_opts c;
	int rc = parse(argc, argv, &o,
		       "--size --type --block-size --sector-size --physical-sector-size --parent --seed ");
	if (rc || (rc = need_pos("create", &o, 1, "FILE")) || (rc = create_opts("create", &o, &c)))
		return rc;
	default_seed(&o, &c, o.pos[0]);
	if (o.parent) {
		if (o.type) {
			fprintf(stderr, "hvsim: vhdx create: --type does not apply to a differencing disk (--parent)\n");
			return 2;
		}
		c.type = VHDX_TYPE_DIFFERENCING;
		c.parent_path = o.parent;
		if (o.size) {
			struct vhdx_file *p;
			uint64_t want;
			if (num("--size", o.size, &want))
				return 2;
			if (vhdx_open(o.parent, VHDX_OPEN_NO_PARENT, &p))
				return fail();
			uint64_t have = vhdx_get_info(p)->virtual_size;
			vhdx_close(p);
			if (want != have) {
				fprintf(stderr, "hvsim: %s: --size %" PRIu64 " differs from the parent's virtual size %" PRIu64 "\n",
					o.pos[0], want, have);
				return 2;
			}
		}
	} else {
		if (!o.size) {
			fprintf(stderr, "hvsim: vhdx create: --size is required (or --parent)\n");
			return 2;
		}
		if (num("--size", o.size, &c.virtual_size))
			return 2;
	}
	if (vhdx_create(o.pos[0], &c))
		return fail();
	return 0;
}

/* ---- import --------------------------------------------------------------------------------*/

static bool is_zero(const uint8_t *p, size_t n)
{
	static const uint8_t z[4096];
	for (size_t i = 0; i < n; i += sizeof z) {
		size_t k = n - i < sizeof z ? n - i : sizeof z;
		if (memcmp(p + i, z, k))
			return false;
	}
	return true;
}

/* Publishes `tmp` as `dst` without replacing an existing file. */
static int publish(const char *tmp, const char *dst, bool replace)
{
	if (replace ? rename(tmp, dst) : link(tmp, dst)) {
		int e = errno;
		unlink(tmp);
		return hv_err(HV_EIO, "%s: cannot create: %s", dst, e == EEXIST ? "already exists" : strerror(e));
	}
	if (!replace)
		unlink(tmp);
	return 0;
}

static int import_data(int in, const char *raw, struct vhdx_file *f, uint64_t rawsize)
{
	uint8_t *buf = malloc(IO_CHUNK);
	if (!buf)
		return hv_err(HV_ENOMEM, "out of memory");
	int rc = 0;
	uint64_t pos = 0;
	while (!rc && pos < rawsize) {
		off_t d = lseek(in, (off_t)pos, SEEK_DATA);
		if (d < 0) {
			if (errno == ENXIO)
				break; /* only a hole remains */
			d = (off_t)pos; /* SEEK_DATA unsupported: read densely */
		}
		off_t h = lseek(in, d, SEEK_HOLE);
		if (h < 0)
			h = (off_t)rawsize;
		for (uint64_t o = (uint64_t)d; !rc && o < (uint64_t)h;) {
			size_t n = (uint64_t)h - o < IO_CHUNK ? (size_t)((uint64_t)h - o) : IO_CHUNK;
			ssize_t got = pread(in, buf, n, (off_t)o);
			if (got <= 0) {
				rc = hv_err(HV_EIO, "%s: read at offset %" PRIu64 " failed: %s", raw, o,
					    got < 0 ? strerror(errno) : "unexpected end of file");
				break;
			}
			/* write the non-zero 64 KiB runs only */
			size_t g = (size_t)got;
			for (size_t i = 0; !rc && i < g;) {
				size_t k = g - i < 65536 ? g - i : 65536;
				if (is_zero(buf + i, k)) {
					i += k;
					continue;
				}
				size_t j = i + k;
				while (j < g) {
					size_t k2 = g - j < 65536 ? g - j : 65536;
					if (is_zero(buf + j, k2))
						break;
					j += k2;
				}
				rc = vhdx_write(f, buf + i, o + i, j - i);
				i = j;
			}
			o += g;
		}
		pos = (uint64_t)h;
	}
	free(buf);
	return rc;
}

static int do_import(int argc, char **argv)
{
	struct opts o;
	struct vhdx_create_opts c;
	int rc = parse(argc, argv, &o, "--type --block-size --sector-size --physical-sector-size --seed --no-sync ");
	if (rc || (rc = need_pos("import", &o, 2, "RAW FILE")) || (rc = create_opts("import", &o, &c)))
		return rc;
	default_seed(&o, &c, o.pos[1]);
	const char *raw = o.pos[0], *dst = o.pos[1];
	int in = open(raw, O_RDONLY);
	if (in < 0) {
		fprintf(stderr, "hvsim: %s: cannot open: %s\n", raw, strerror(errno));
		return 1;
	}
	struct stat st;
	if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		fprintf(stderr, "hvsim: %s: not a non-empty regular file\n", raw);
		close(in);
		return 1;
	}
	if (access(dst, F_OK) == 0) {
		fprintf(stderr, "hvsim: %s: already exists\n", dst);
		close(in);
		return 1;
	}
	uint32_t lss = c.logical_sector ? c.logical_sector : 512;
	uint64_t rawsize = (uint64_t)st.st_size;
	c.virtual_size = (rawsize + lss - 1) / lss * lss;
	if (c.virtual_size != rawsize)
		fprintf(stderr, "hvsim: %s: size %" PRIu64 " is not a multiple of the %u-byte sector; the disk is %" PRIu64
				" bytes, zero-padded\n", raw, rawsize, lss, c.virtual_size);
	size_t n = strlen(dst) + 32;
	char *tmp = malloc(n);
	struct vhdx_file *f = NULL;
	if (!tmp) {
		close(in);
		return 1;
	}
	snprintf(tmp, n, "%s.hvsim-import", dst);
	unlink(tmp);
	rc = vhdx_create(tmp, &c);
	if (!rc) {
		struct vhdx_open_opts oo = {.flags = VHDX_OPEN_RDWR | VHDX_OPEN_NOSYNC, .has_seed = true,
					    .seed = c.seed, .crash_after_steps = -1};
		rc = vhdx_open_ex(tmp, &oo, &f);
	}
	if (!rc)
		rc = import_data(in, raw, f, rawsize);
	if (f) {
		int rc2 = vhdx_close(f);
		rc = rc ? rc : rc2;
	}
	if (!rc && !o.no_sync) {
		int fd = open(tmp, O_RDONLY);
		if (fd < 0 || fsync(fd) != 0)
			rc = hv_err(HV_EIO, "%s: fsync failed: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	if (!rc)
		rc = publish(tmp, dst, false);
	else
		unlink(tmp);
	close(in);
	free(tmp);
	return rc ? fail() : 0;
}

/* ---- export --------------------------------------------------------------------------------*/

struct range {
	uint64_t off, len;
};
struct ranges {
	struct range *r;
	size_t n, cap;
};

static int add_range(void *ctx, uint64_t off, uint64_t len, enum vhdx_map_kind kind)
{
	(void)kind;
	struct ranges *rs = ctx;
	if (rs->n == rs->cap) {
		size_t nc = rs->cap ? rs->cap * 2 : 256;
		struct range *nr = realloc(rs->r, nc * sizeof *nr);
		if (!nr)
			return hv_err(HV_ENOMEM, "out of memory");
		rs->r = nr;
		rs->cap = nc;
	}
	rs->r[rs->n++] = (struct range){off, len};
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

static int write_all(int fd, const uint8_t *p, size_t n, uint64_t off, const char *path)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return hv_err(HV_EIO, "%s: write at offset %" PRIu64 " failed: %s", path, off, strerror(errno));
		}
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static int do_export(int argc, char **argv)
{
	struct opts o;
	int rc = parse(argc, argv, &o, "--no-sync ");
	if (rc || (rc = need_pos("export", &o, 2, "FILE RAW")))
		return rc;
	struct vhdx_file *f;
	if (vhdx_open(o.pos[0], VHDX_OPEN_RDONLY, &f))
		return fail();
	/* every range where some layer of the chain may hold non-zero bytes; the rest reads as zeros
	 * (a child's zero or hole over parent data is still read through the child, so it wins) */
	struct ranges rs = {0};
	for (struct vhdx_file *l = f; l && !rc; l = vhdx_parent(l))
		rc = vhdx_map_ex(l, VHDX_MAP_NONZERO, add_range, &rs);
	if (rs.n)
		qsort(rs.r, rs.n, sizeof *rs.r, cmp_range);
	const char *dst = o.pos[1];
	size_t n = strlen(dst) + 32;
	char *tmp = malloc(n);
	uint8_t *buf = malloc(IO_CHUNK);
	int out = -1;
	if (!tmp || !buf) {
		rc = hv_err(HV_ENOMEM, "out of memory");
		goto done;
	}
	struct stat ds;
	if (stat(dst, &ds) == 0)
		for (struct vhdx_file *l = f; l; l = vhdx_parent(l)) {
			struct stat ls;
			if (stat(vhdx_path(l), &ls) == 0 && ls.st_dev == ds.st_dev && ls.st_ino == ds.st_ino) {
				rc = hv_err(HV_EINVAL, "%s: is %s, a disk being exported; choose another output",
					    dst, l == f ? "the input" : "a parent of the input");
				goto done;
			}
		}
	snprintf(tmp, n, "%s.hvsim-export", dst);
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0) {
		rc = hv_err(HV_EIO, "%s: cannot create: %s", tmp, strerror(errno));
		goto done;
	}
	uint64_t vs = vhdx_get_info(f)->virtual_size;
	if (ftruncate(out, (off_t)vs) != 0) {
		rc = hv_err(HV_EIO, "%s: cannot size to %" PRIu64 " bytes: %s", dst, vs, strerror(errno));
		goto done;
	}
	uint64_t done_to = 0; /* ranges overlap across layers: never read a byte twice */
	for (size_t i = 0; !rc && i < rs.n; i++) {
		uint64_t a = rs.r[i].off > done_to ? rs.r[i].off : done_to, e = rs.r[i].off + rs.r[i].len;
		for (; !rc && a < e;) {
			size_t k = e - a < IO_CHUNK ? (size_t)(e - a) : IO_CHUNK;
			if ((rc = vhdx_read(f, buf, a, k)))
				break;
			/* write maximal runs of non-zero 64 KiB pieces */
			for (size_t j = 0; !rc && j < k;) {
				size_t m = k - j < 65536 ? k - j : 65536;
				if (is_zero(buf + j, m)) {
					j += m;
					continue;
				}
				size_t run = m;
				while (j + run < k) {
					size_t m2 = k - j - run < 65536 ? k - j - run : 65536;
					if (is_zero(buf + j + run, m2))
						break;
					run += m2;
				}
				rc = write_all(out, buf + j, run, a + j, dst);
				j += run;
			}
			a += k;
		}
		if (e > done_to)
			done_to = e;
	}
	if (!rc && !o.no_sync && fsync(out) != 0)
		rc = hv_err(HV_EIO, "%s: fsync failed: %s", dst, strerror(errno));
	close(out);
	out = -1;
	if (!rc)
		rc = publish(tmp, dst, true);
done:
	if (out >= 0)
		close(out);
	if (rc && tmp)
		unlink(tmp);
	free(tmp);
	free(buf);
	free(rs.r);
	vhdx_close(f);
	return rc ? fail() : 0;
}

/* ---- info ----------------------------------------------------------------------------------*/

static const char *type_name(enum vhdx_type t)
{
	return t == VHDX_TYPE_FIXED ? "fixed" : t == VHDX_TYPE_DYNAMIC ? "dynamic" : "differencing";
}

static void json_str(FILE *o, const char *s)
{
	fputc('"', o);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(o, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(o, "\\u%04x", *p);
		else
			fputc(*p, o);
	}
	fputc('"', o);
}

static int do_info(int argc, char **argv)
{
	struct opts o;
	int rc = parse(argc, argv, &o, "--json ");
	if (rc || (rc = need_pos("info", &o, 1, "FILE")))
		return rc;
	struct vhdx_file *f;
	if (vhdx_open(o.pos[0], VHDX_OPEN_NO_PARENT, &f))
		return fail();
	const struct vhdx_info *in = vhdx_get_info(f);
	char dwg[HV_GUID_STRLEN + 1], fwg[HV_GUID_STRLEN + 1], lg[HV_GUID_STRLEN + 1], id[HV_GUID_STRLEN + 1];
	hv_guid_format(&in->data_write_guid, dwg);
	hv_guid_format(&in->file_write_guid, fwg);
	hv_guid_format(&in->log_guid, lg);
	hv_guid_format(&in->disk_id, id);
	uint64_t nblocks = (in->virtual_size + in->block_size - 1) / in->block_size;
	/* the chain, opened separately so a broken parent does not hide this file's own facts */
	char parent_status[1024] = "";
	const char *parent_path = NULL;
	struct vhdx_file *full = NULL;
	if (in->type == VHDX_TYPE_DIFFERENCING) {
		if (vhdx_open(o.pos[0], VHDX_OPEN_RDONLY, &full) == 0) {
			parent_path = vhdx_get_info(full)->parent_path;
			snprintf(parent_status, sizeof parent_status, "ok");
		} else {
			snprintf(parent_status, sizeof parent_status, "%s", hv_errmsg());
		}
	}
	FILE *out = stdout;
	if (o.json) {
		fprintf(out, "{\"path\": ");
		json_str(out, o.pos[0]);
		fprintf(out, ", \"type\": \"%s\", \"virtual_size\": %" PRIu64 ", \"block_size\": %u, "
			     "\"logical_sector_size\": %u, \"physical_sector_size\": %u, \"disk_id\": \"%s\", "
			     "\"data_write_guid\": \"%s\", \"file_write_guid\": \"%s\", \"log_guid\": \"%s\", "
			     "\"header_sequence\": %" PRIu64 ", \"log_offset\": %" PRIu64 ", \"log_length\": %u, "
			     "\"bat_offset\": %" PRIu64 ", \"bat_entries\": %" PRIu64 ", \"file_size\": %" PRIu64 ", "
			     "\"blocks_total\": %" PRIu64 ", \"blocks_present\": %" PRIu64 ", "
			     "\"log_entries_replayed\": %u, \"log_replayed_in_memory\": %s",
			type_name(in->type), in->virtual_size, in->block_size, in->logical_sector,
			in->physical_sector, id, dwg, fwg, lg, in->header_sequence, in->log_offset,
			in->log_length, in->bat_offset, in->bat_entries, in->file_size, nblocks,
			in->blocks_present, in->log_entries_replayed, in->log_replayed_in_memory ? "true" : "false");
		if (in->type == VHDX_TYPE_DIFFERENCING) {
			fprintf(out, ", \"parent_locator\": {");
			for (uint32_t i = 0; i < in->locator_count; i++) {
				fprintf(out, "%s", i ? ", " : "");
				json_str(out, in->locator[i].key);
				fprintf(out, ": ");
				json_str(out, in->locator[i].value);
			}
			fprintf(out, "}, \"parent_path\": ");
			if (parent_path)
				json_str(out, parent_path);
			else
				fprintf(out, "null");
			fprintf(out, ", \"parent_status\": ");
			json_str(out, parent_status);
		}
		fprintf(out, "}\n");
	} else {
		fprintf(out, "file:              %s\n", o.pos[0]);
		fprintf(out, "type:              %s\n", type_name(in->type));
		fprintf(out, "virtual size:      %" PRIu64 " bytes (%.2f GiB)\n", in->virtual_size,
			in->virtual_size / 1073741824.0);
		fprintf(out, "block size:        %u bytes (%u MiB)\n", in->block_size, in->block_size >> 20);
		fprintf(out, "sector size:       logical %u, physical %u\n", in->logical_sector, in->physical_sector);
		fprintf(out, "blocks present:    %" PRIu64 " of %" PRIu64 "\n", in->blocks_present, nblocks);
		fprintf(out, "virtual disk id:   %s\n", id);
		fprintf(out, "data write guid:   %s\n", dwg);
		fprintf(out, "file write guid:   %s\n", fwg);
		fprintf(out, "header sequence:   %" PRIu64 "\n", in->header_sequence);
		fprintf(out, "log:               offset %" PRIu64 ", length %u, %s\n", in->log_offset, in->log_length,
			hv_guid_is_zero(&in->log_guid) ? "empty" : "PENDING (replayed in memory for this read-only view)");
		if (in->log_entries_replayed)
			fprintf(out, "log replayed:      %u entries\n", in->log_entries_replayed);
		fprintf(out, "BAT:               offset %" PRIu64 ", %" PRIu64 " entries\n", in->bat_offset, in->bat_entries);
		fprintf(out, "file size:         %" PRIu64 " bytes\n", in->file_size);
		if (in->type == VHDX_TYPE_DIFFERENCING) {
			for (uint32_t i = 0; i < in->locator_count; i++)
				fprintf(out, "parent locator:    %s = %s\n", in->locator[i].key, in->locator[i].value);
			if (parent_path)
				fprintf(out, "parent:            %s (linkage ok)\n", parent_path);
			else
				fprintf(out, "parent:            PROBLEM: %s\n", parent_status);
		}
	}
	vhdx_close(full);
	vhdx_close(f);
	return 0;
}

/* ---- check ---------------------------------------------------------------------------------*/

static void print_problem(void *ctx, const char *msg)
{
	fprintf(stdout, "%s: %s\n", (const char *)ctx, msg);
}

static int do_check(int argc, char **argv)
{
	struct opts o;
	int rc = parse(argc, argv, &o, "");
	if (rc || (rc = need_pos("check", &o, 1, "FILE")))
		return rc;
	int n = vhdx_check(o.pos[0], print_problem, (void *)o.pos[0]);
	if (n < 0) {
		fprintf(stderr, "hvsim: %s\n", hv_errmsg());
		return 2;
	}
	if (n > 0) {
		fprintf(stderr, "hvsim: %s: %d problem%s found\n", o.pos[0], n, n == 1 ? "" : "s");
		return 1;
	}
	printf("%s: no problems found\n", o.pos[0]);
	return 0;
}

/* ---- map -----------------------------------------------------------------------------------*/

struct map_out {
	FILE *o;
	int json;
	uint64_t n;
};

static int print_range(void *ctx, uint64_t off, uint64_t len, enum vhdx_map_kind kind)
{
	struct map_out *m = ctx;
	const char *k = kind == VHDX_MAP_DATA ? "data" : "zero";
	if (m->json)
		fprintf(m->o, "%s\n  {\"offset\": %" PRIu64 ", \"length\": %" PRIu64 ", \"kind\": \"%s\"}",
			m->n ? "," : "", off, len, k);
	else
		fprintf(m->o, "%" PRIu64 " %" PRIu64 " %s\n", off, len, k);
	m->n++;
	return 0;
}

static int do_map(int argc, char **argv)
{
	struct opts o;
	int rc = parse(argc, argv, &o, "--json ");
	if (rc || (rc = need_pos("map", &o, 1, "FILE")))
		return rc;
	struct vhdx_file *f;
	if (vhdx_open(o.pos[0], VHDX_OPEN_NO_PARENT, &f))
		return fail();
	struct map_out m = {stdout, o.json, 0};
	if (o.json)
		printf("{\"virtual_size\": %" PRIu64 ", \"ranges\": [", vhdx_get_info(f)->virtual_size);
	rc = vhdx_map(f, print_range, &m);
	if (o.json)
		printf("%s]}\n", m.n ? "\n" : "");
	vhdx_close(f);
	return rc ? fail() : 0;
}

/* ---- read / write --------------------------------------------------------------------------*/

/* Checked before the first byte moves, so a write that would run off the end writes nothing. */
static int check_span(struct vhdx_file *f, const char *name, uint64_t off, uint64_t len)
{
	uint64_t vs = vhdx_get_info(f)->virtual_size;
	if (off > vs || len > vs - off)
		return hv_err(HV_EINVAL, "%s: range [%" PRIu64 ", +%" PRIu64 ") is outside the virtual disk (%" PRIu64 " bytes)",
			      name, off, len, vs);
	return 0;
}

static int do_read(int argc, char **argv)
{
	struct opts o;
	int rc = parse(argc, argv, &o, "--offset --length --to ");
	if (rc || (rc = need_pos("read", &o, 1, "FILE")))
		return rc;
	uint64_t off, len;
	if (!o.offset || !o.length) {
		fprintf(stderr, "hvsim: vhdx read: --offset and --length are required\n");
		return 2;
	}
	if (num("--offset", o.offset, &off) || num("--length", o.length, &len))
		return 2;
	struct vhdx_file *f;
	if (vhdx_open(o.pos[0], VHDX_OPEN_RDONLY, &f))
		return fail();
	int out = 1;
	char tmp[4096] = "";
	if ((rc = check_span(f, o.pos[0], off, len))) {
		vhdx_close(f);
		return fail();
	}
	if (o.to) {
		/* through a temporary name: a failed read never clobbers OUT, and OUT may not be
		 * one of the disks being read */
		struct stat ds;
		for (struct vhdx_file *l = f; l && stat(o.to, &ds) == 0; l = vhdx_parent(l)) {
			struct stat ls;
			if (stat(vhdx_path(l), &ls) == 0 && ls.st_dev == ds.st_dev && ls.st_ino == ds.st_ino) {
				hv_err(HV_EINVAL, "%s: is a disk being read; choose another output", o.to);
				vhdx_close(f);
				return fail();
			}
		}
		snprintf(tmp, sizeof tmp, "%s.hvsim-read", o.to);
		if ((out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0) {
			hv_err(HV_EIO, "%s: cannot create: %s", tmp, strerror(errno));
			vhdx_close(f);
			return fail();
		}
	}
	uint8_t *buf = malloc(IO_CHUNK);
	if (!buf)
		rc = hv_err(HV_ENOMEM, "out of memory");
	for (uint64_t d = 0; !rc && d < len;) {
		size_t k = len - d < IO_CHUNK ? (size_t)(len - d) : IO_CHUNK;
		if (!(rc = vhdx_read(f, buf, off + d, k))) {
			for (size_t w = 0; w < k;) {
				ssize_t n = write(out, buf + w, k - w);
				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0) {
					rc = hv_err(HV_EIO, "%s: write failed: %s", o.to ? o.to : "stdout", strerror(errno));
					break;
				}
				w += (size_t)n;
			}
		}
		d += k;
	}
	free(buf);
	if (o.to) {
		close(out);
		if (!rc)
			rc = publish(tmp, o.to, true);
		else
			unlink(tmp);
	}
	vhdx_close(f);
	return rc ? fail() : 0;
}

static int do_write(int argc, char **argv)
{
	struct opts o;
	int rc = parse(argc, argv, &o, "--offset --length --pattern --from --seed ");
	if (rc || (rc = need_pos("write", &o, 1, "FILE")))
		return rc;
	uint64_t off, len = 0, pat = 0, seed = 0;
	if (!o.offset || (!o.pattern == !o.from) || (o.pattern && !o.length) || (o.from && o.length)) {
		fprintf(stderr, "hvsim: vhdx write: use --offset N with either --pattern BYTE --length N or --from IN\n");
		return 2;
	}
	if (num("--offset", o.offset, &off) || (o.length && num("--length", o.length, &len)) ||
	    (o.seed && num("--seed", o.seed, &seed)))
		return 2;
	if (o.pattern) {
		char *end;
		errno = 0;
		pat = strtoull(o.pattern, &end, 0);
		if (errno || *end || pat > 255) {
			fprintf(stderr, "hvsim: --pattern: '%s' is not a byte (0..255, e.g. 0xAA)\n", o.pattern);
			return 2;
		}
	}
	int in = -1;
	if (o.from) {
		struct stat st;
		if ((in = open(o.from, O_RDONLY)) < 0 || fstat(in, &st) != 0) {
			fprintf(stderr, "hvsim: %s: cannot open: %s\n", o.from, strerror(errno));
			if (in >= 0)
				close(in);
			return 1;
		}
		len = (uint64_t)st.st_size;
	}
	struct vhdx_open_opts oo = {.flags = VHDX_OPEN_RDWR, .has_seed = o.seed != NULL, .seed = seed,
				    .crash_after_steps = -1};
	/* Test hook: cut the write sequence after N steps (pwrite/ftruncate/fsync), as a power
	 * loss would, leaving e.g. a pending log for replay tests. */
	const char *cut = getenv("HVSIM_VHDX_CRASH_AFTER_STEPS");
	if (cut && *cut)
		oo.crash_after_steps = atol(cut);
	struct vhdx_file *f;
	if (vhdx_open_ex(o.pos[0], &oo, &f)) {
		if (in >= 0)
			close(in);
		return fail();
	}
	uint8_t *buf = malloc(IO_CHUNK);
	if (!buf)
		rc = hv_err(HV_ENOMEM, "out of memory");
	if (!rc)
		rc = check_span(f, o.pos[0], off, len);
	if (!rc && o.pattern)
		memset(buf, (int)pat, IO_CHUNK);
	for (uint64_t d = 0; !rc && d < len;) {
		size_t k = len - d < IO_CHUNK ? (size_t)(len - d) : IO_CHUNK;
		if (in >= 0) {
			ssize_t n = pread(in, buf, k, (off_t)d);
			if (n <= 0) {
				rc = hv_err(HV_EIO, "%s: read failed: %s", o.from, n < 0 ? strerror(errno) : "short file");
				break;
			}
			k = (size_t)n;
		}
		rc = vhdx_write(f, buf, off + d, k);
		d += k;
	}
	free(buf);
	if (in >= 0)
		close(in);
	if (rc) {
		char first[1024];
		snprintf(first, sizeof first, "%s", hv_errmsg());
		vhdx_close(f);
		fprintf(stderr, "hvsim: %s\n", first);
		return 1;
	}
	return vhdx_close(f) ? fail() : 0;
}

int cmd_vhdx(int argc, char **argv)
{
	if (argc < 2) {
		fputs(USAGE, stderr);
		return 2;
	}
	const char *c = argv[1];
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(USAGE, stdout);
			return 0;
		}
	if (!strcmp(c, "--help") || !strcmp(c, "-h") || !strcmp(c, "help")) {
		fputs(USAGE, stdout);
		return 0;
	}
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {{"create", do_create}, {"import", do_import}, {"export", do_export},
		    {"info", do_info},     {"check", do_check},   {"map", do_map},
		    {"read", do_read},     {"write", do_write}};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (!strcmp(c, cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "hvsim: vhdx: unknown command '%s'\n%s", c, USAGE);
	return 2;
}
