/*
 * vhdx_create — new fixed, dynamic and differencing files.
 *
 * Layout (the one Hyper-V is reported to use; see reference/vhdx.md 5.3 for what is unverified):
 *   0       file type identifier, creator "hvsim"
 *   64 KiB  header 1 (sequence 1), 128 KiB header 2 (sequence 2, current)
 *   192 KiB region table 1, 256 KiB region table 2 (identical; BAT and metadata Required = 1)
 *   1 MiB   log (1 MiB)
 *   2 MiB   metadata region (1 MiB): table, then the items packed from 64 KiB
 *   3 MiB   BAT, sized for S x (CR + 1) entries (the safe writer rule), rounded up to 1 MiB
 *   then    payload (fixed: every block, in order) and, later, blocks appended on demand.
 *
 * Choices where the spec or the reference leaves it open, each a field of vhdx_create_opts:
 * default block size 32 MiB (2 MiB for differencing, the AVHDX size Hyper-V is reported to use
 * [INF]), logical sector 512, physical sector 4096. A differencing child keeps its parent's
 * Virtual Disk ID (as libyal observed on Hyper-V files) and writes parent_linkage lowercase with
 * braces (libvhdi accepts only that form). Linux paths map to Windows ones by putting the host
 * root at drive C: (absolute_win32_path "\\?\C:\dir\parent.vhdx") and at a volume whose GUID comes
 * from the seed (volume_path); open maps them back the same way.
 *
 * The file is built under a temporary name and linked into place only when complete and flushed,
 * so a crash never leaves a half-written file that looks valid under the final name.
 */
#include "vhdx_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_OFF (1ull * VHDX_MIB)
#define LOG_LEN VHDX_MIB
#define META_OFF (2ull * VHDX_MIB)
#define META_LEN VHDX_MIB
#define BAT_OFF (3ull * VHDX_MIB)

static int write_all(int fd, const void *buf, size_t len, uint64_t off, const char *path)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return hv_err(HV_EIO, "%s: write at offset %llu failed: %s", path,
				      (unsigned long long)off, strerror(errno));
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static void rt_encode(uint8_t *t, uint32_t bat_len)
{
	memset(t, 0, VHDX_RT_SIZE);
	memcpy(t, "regi", 4);
	hv_put32(t + 8, 2);
	uint8_t *e = t + 16;
	memcpy(e, VHDX_GUID_BAT.b, 16);
	hv_put64(e + 16, BAT_OFF);
	hv_put32(e + 24, bat_len);
	hv_put32(e + 28, 1);
	e += 32;
	memcpy(e, VHDX_GUID_METADATA.b, 16);
	hv_put64(e + 16, META_OFF);
	hv_put32(e + 24, META_LEN);
	hv_put32(e + 28, 1);
	hv_put32(t + 4, hv_crc32c(t, VHDX_RT_SIZE));
}

/* Relative path from directory `from` to file `to` (both absolute, normalised by realpath),
 * '\\' separated, ".\\" for the same directory. */
static char *relative_win(const char *from, const char *to)
{
	/* common leading components */
	size_t i = 0, common = 0;
	while (from[i] && from[i] == to[i]) {
		i++;
		if (to[i] == '/' && (from[i] == '/' || !from[i]))
			common = i;
	}
	if (!strcmp(from, "/"))
		common = 0;
	size_t ups = 0;
	for (const char *p = from + common; strcmp(from, "/") && *p; p++)
		if (*p == '/')
			ups++;
	const char *rest = to + common + 1;
	size_t n = ups * 3 + strlen(rest) + 3;
	char *out = malloc(n), *o = out;
	if (!out)
		return NULL;
	if (!ups) {
		memcpy(o, ".\\", 2);
		o += 2;
	}
	for (size_t k = 0; k < ups; k++, o += 3)
		memcpy(o, "..\\", 3);
	for (const char *p = rest; *p; p++)
		*o++ = *p == '/' ? '\\' : *p;
	*o = 0;
	return out;
}

static char *posix_to_win(const char *prefix, const char *abs)
{
	size_t n = strlen(prefix) + strlen(abs) + 1;
	char *out = malloc(n);
	if (!out)
		return NULL;
	snprintf(out, n, "%s%s", prefix, abs);
	for (char *p = out + strlen(prefix); *p; p++)
		if (*p == '/')
			*p = '\\';
	return out;
}

/* Encodes the parent locator item; returns its length or 0 on failure. */
static size_t locator_encode(uint8_t *out, size_t cap, const char *const kv[][2], int nkv)
{
	memset(out, 0, cap);
	memcpy(out, VHDX_GUID_LOCATOR_TYPE_VHDX.b, 16);
	hv_put16(out + 18, (uint16_t)nkv);
	size_t pos = 20 + 12 * (size_t)nkv;
	for (int i = 0; i < nkv; i++) {
		uint32_t offs[2];
		size_t lens[2];
		for (int j = 0; j < 2; j++) {
			size_t n;
			uint8_t *u = vhdx_utf8_to_utf16(kv[i][j], &n);
			if (!u || n == 0 || n > 0xFFFF || pos + n > cap) {
				free(u);
				return 0;
			}
			memcpy(out + pos, u, n);
			free(u);
			offs[j] = (uint32_t)pos;
			lens[j] = n;
			pos += n;
		}
		uint8_t *e = out + 20 + 12 * i;
		hv_put32(e, offs[0]);
		hv_put32(e + 4, offs[1]);
		hv_put16(e + 8, (uint16_t)lens[0]);
		hv_put16(e + 10, (uint16_t)lens[1]);
	}
	return pos;
}

struct newfile {
	uint64_t vsize;
	uint32_t bs, lss, pss;
	bool fixed, diff;
	struct hv_guid disk_id, fwg, dwg;
	uint8_t *locator;
	size_t locator_len;
};

static int build(int fd, const char *path, const struct newfile *nf)
{
	uint64_t bs = nf->bs;
	uint64_t P = (nf->vsize + bs - 1) / bs;
	uint64_t CR = (VHDX_SB_BLOCK_BITS * nf->lss) / bs;
	uint64_t S = (P + CR - 1) / CR;
	uint64_t nent = S * (CR + 1);
	uint64_t bat_len = (nent * 8 + VHDX_MIB - 1) / VHDX_MIB * VHDX_MIB;
	if (bat_len > UINT32_MAX)
		return hv_err(HV_EINVAL, "%s: BAT of %llu bytes does not fit the region table (use a larger block size)",
			      path, (unsigned long long)bat_len);
	uint64_t payload = BAT_OFF + bat_len;
	uint64_t end = nf->fixed ? payload + P * bs : payload;
	uint8_t *buf = calloc(1, VHDX_MIB);
	if (!buf)
		return hv_err(HV_ENOMEM, "%s: out of memory", path);
	int rc;
	/* size first: a fixed disk that does not fit fails before anything is written */
	if (ftruncate(fd, (off_t)end) != 0) {
		rc = hv_err(HV_EIO, "%s: cannot size the file to %llu bytes: %s", path,
			    (unsigned long long)end, strerror(errno));
		goto out;
	}
	/* file identifier */
	memcpy(buf, "vhdxfile", 8);
	static const char creator[] = "hvsim";
	for (size_t i = 0; i < sizeof creator - 1; i++)
		hv_put16(buf + 8 + 2 * i, (uint16_t)creator[i]);
	if ((rc = write_all(fd, buf, 64 * KIB, 0, path)))
		goto out;
	/* region tables */
	rt_encode(buf, (uint32_t)bat_len);
	if ((rc = write_all(fd, buf, VHDX_RT_SIZE, VHDX_RT1_OFF, path)) ||
	    (rc = write_all(fd, buf, VHDX_RT_SIZE, VHDX_RT2_OFF, path)))
		goto out;
	/* metadata region */
	memset(buf, 0, VHDX_MIB);
	memcpy(buf, "metadata", 8);
	struct {
		const struct hv_guid *id;
		uint32_t len, flags;
	} items[6] = {
		{&VHDX_GUID_FILE_PARAMS, 8, 4},     {&VHDX_GUID_VDISK_SIZE, 8, 6},
		{&VHDX_GUID_LOGICAL_SECTOR, 4, 6},  {&VHDX_GUID_PHYSICAL_SECTOR, 4, 6},
		{&VHDX_GUID_VDISK_ID, 16, 6},       {&VHDX_GUID_PARENT_LOCATOR, (uint32_t)nf->locator_len, 4},
	};
	int nitems = nf->diff ? 6 : 5;
	hv_put16(buf + 10, (uint16_t)nitems);
	uint32_t ioff = VHDX_MT_SIZE;
	for (int i = 0; i < nitems; i++) {
		uint8_t *e = buf + 32 + 32 * i;
		memcpy(e, items[i].id->b, 16);
		hv_put32(e + 16, ioff);
		hv_put32(e + 20, items[i].len);
		hv_put32(e + 24, items[i].flags);
		uint8_t *v = buf + ioff;
		switch (i) {
		case 0:
			hv_put32(v, nf->bs);
			hv_put32(v + 4, (nf->fixed ? 1u : 0u) | (nf->diff ? 2u : 0u));
			break;
		case 1:
			hv_put64(v, nf->vsize);
			break;
		case 2:
			hv_put32(v, nf->lss);
			break;
		case 3:
			hv_put32(v, nf->pss);
			break;
		case 4:
			memcpy(v, nf->disk_id.b, 16);
			break;
		case 5:
			memcpy(v, nf->locator, nf->locator_len);
			break;
		}
		ioff += items[i].len;
	}
	if ((rc = write_all(fd, buf, META_LEN, META_OFF, path)))
		goto out;
	/* BAT: zero for dynamic/differencing (ftruncate made it); fixed: every block present */
	if (nf->fixed) {
		uint64_t per = VHDX_MIB / 8;
		for (uint64_t base = 0; base < nent; base += per) {
			uint64_t cnt = nent - base < per ? nent - base : per;
			memset(buf, 0, VHDX_MIB);
			for (uint64_t j = 0; j < cnt; j++) {
				uint64_t idx = base + j;
				if (idx % (CR + 1) == CR)
					continue;
				uint64_t b = idx - idx / (CR + 1);
				if (b < P)
					hv_put64(buf + 8 * j, (payload + b * bs) | VHDX_BLOCK_FULLY_PRESENT);
			}
			if ((rc = write_all(fd, buf, cnt * 8, BAT_OFF + base * 8, path)))
				goto out;
		}
	}
	/* headers last: until they exist nothing would open this as a VHDX */
	struct vhdx_header h = {.seq = 1, .file_write_guid = nf->fwg, .data_write_guid = nf->dwg,
				.version = 1, .log_length = LOG_LEN, .log_offset = LOG_OFF};
	vhdx_header_encode(&h, buf);
	if ((rc = write_all(fd, buf, VHDX_HEADER_SIZE, VHDX_HEADER1_OFF, path)))
		goto out;
	h.seq = 2;
	vhdx_header_encode(&h, buf);
	if ((rc = write_all(fd, buf, VHDX_HEADER_SIZE, VHDX_HEADER2_OFF, path)))
		goto out;
	if (fsync(fd) != 0)
		rc = hv_err(HV_EIO, "%s: fsync failed: %s", path, strerror(errno));
out:
	free(buf);
	return rc;
}

static int parent_locator(const char *child, const char *parent, const char *win_path,
			  struct vhdx_file *pf, struct hv_rng *rng, struct newfile *nf)
{
	char pabs[PATH_MAX], cdir[PATH_MAX];
	if (!realpath(parent, pabs))
		return hv_err(HV_ENOTFOUND, "%s: cannot resolve parent path: %s", parent, strerror(errno));
	char *d = strdup(child), *slash = d ? strrchr(d, '/') : NULL;
	if (!d)
		return hv_err(HV_ENOMEM, "out of memory");
	const char *dir = slash ? (slash == d ? "/" : (*slash = 0, d)) : ".";
	if (!realpath(dir, cdir)) {
		free(d);
		return hv_err(HV_ENOTFOUND, "%s: cannot resolve directory: %s", child, strerror(errno));
	}
	free(d);
	char linkage[HV_GUID_STRLEN + 1], volguid[HV_GUID_STRLEN + 1], volprefix[64];
	hv_guid_format(&pf->hdr.data_write_guid, linkage);
	struct hv_guid vg = hv_rng_guid(rng);
	hv_guid_format(&vg, volguid);
	snprintf(volprefix, sizeof volprefix, "\\\\?\\Volume%s", volguid);
	char *rel = relative_win(cdir, pabs);
	char *vol, *abs;
	if (win_path && strlen(win_path) > 2 && win_path[1] == ':') {
		/* "C:\x\y" -> "\\?\C:\x\y" and "\\?\Volume{g}\x\y" */
		vol = posix_to_win(volprefix, win_path + 2);
		abs = posix_to_win("\\\\?\\", win_path);
	} else {
		vol = posix_to_win(volprefix, pabs);
		abs = posix_to_win("\\\\?\\C:", pabs);
	}
	int rc = 0;
	if (!rel || !vol || !abs) {
		rc = hv_err(HV_ENOMEM, "out of memory");
		goto out;
	}
	const char *kv[4][2] = {{"parent_linkage", linkage},
				{"relative_path", rel},
				{"volume_path", vol},
				{"absolute_win32_path", abs}};
	size_t cap = 20 + 4 * 12 + 2 * (strlen(linkage) + strlen(rel) + strlen(vol) + strlen(abs) + 64) * 2;
	nf->locator = malloc(cap);
	if (!nf->locator) {
		rc = hv_err(HV_ENOMEM, "out of memory");
		goto out;
	}
	nf->locator_len = locator_encode(nf->locator, cap, kv, 4);
	if (!nf->locator_len)
		rc = hv_err(HV_EINVAL, "%s: parent path cannot be encoded in a parent locator", parent);
out:
	free(rel);
	free(vol);
	free(abs);
	return rc;
}

int vhdx_create(const char *path, const struct vhdx_create_opts *o)
{
	struct newfile nf = {0};
	struct vhdx_file *pf = NULL;
	struct hv_rng rng = hv_rng_stream(o->seed, "vhdx.create");
	int rc = 0, fd = -1;
	char *tmp = NULL;
	nf.diff = o->type == VHDX_TYPE_DIFFERENCING;
	nf.fixed = o->type == VHDX_TYPE_FIXED;
	if (o->type != VHDX_TYPE_FIXED && o->type != VHDX_TYPE_DYNAMIC && !nf.diff)
		return hv_err(HV_EINVAL, "%s: unknown disk type %d", path, (int)o->type);
	if (nf.diff != (o->parent_path != NULL))
		return hv_err(HV_EINVAL, "%s: a parent is required for, and only for, a differencing disk", path);
	nf.bs = o->block_size ? o->block_size : nf.diff ? 2 * VHDX_MIB : 32 * VHDX_MIB;
	if (nf.bs < VHDX_MIN_BLOCK_SIZE || nf.bs > VHDX_MAX_BLOCK_SIZE || (nf.bs & (nf.bs - 1)))
		return hv_err(HV_EINVAL, "%s: block size %u is not a power of two between 1 MiB and 256 MiB",
			      path, nf.bs);
	if (nf.diff) {
		if ((rc = vhdx_open(o->parent_path, VHDX_OPEN_RDONLY | VHDX_OPEN_NO_PARENT, &pf)))
			return rc;
		nf.vsize = pf->info.virtual_size;
		nf.lss = pf->info.logical_sector;
		nf.pss = pf->info.physical_sector;
		if ((o->logical_sector && o->logical_sector != nf.lss)) {
			rc = hv_err(HV_EINVAL, "%s: logical sector size %u differs from the parent's (%u)", path,
				    o->logical_sector, nf.lss);
			goto out;
		}
		if (o->physical_sector)
			nf.pss = o->physical_sector;
		nf.disk_id = pf->info.disk_id;
		if ((rc = parent_locator(path, o->parent_path, o->parent_win_path, pf, &rng, &nf)))
			goto out;
	} else {
		nf.vsize = o->virtual_size;
		nf.lss = o->logical_sector ? o->logical_sector : 512;
		nf.pss = o->physical_sector ? o->physical_sector : 4096;
		nf.disk_id = hv_rng_guid(&rng);
		if (o->disk_id)
			nf.disk_id = *o->disk_id;
	}
	if ((nf.lss != 512 && nf.lss != 4096) || (nf.pss != 512 && nf.pss != 4096)) {
		rc = hv_err(HV_EINVAL, "%s: sector sizes must be 512 or 4096 (logical %u, physical %u)", path,
			    nf.lss, nf.pss);
		goto out;
	}
	if (nf.vsize == 0 || nf.vsize > VHDX_MAX_VIRTUAL_SIZE || nf.vsize % nf.lss) {
		rc = hv_err(HV_EINVAL, "%s: size %llu must be a non-zero multiple of the %u-byte sector, at most 64 TiB",
			    path, (unsigned long long)nf.vsize, nf.lss);
		goto out;
	}
	nf.fwg = hv_rng_guid(&rng);
	nf.dwg = hv_rng_guid(&rng);
	if (access(path, F_OK) == 0) {
		rc = hv_err(HV_EINVAL, "%s: already exists", path);
		goto out;
	}
	size_t n = strlen(path) + 32;
	tmp = malloc(n);
	if (!tmp) {
		rc = hv_err(HV_ENOMEM, "out of memory");
		goto out;
	}
	snprintf(tmp, n, "%s.hvsim-partial", path);
	unlink(tmp);
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL, 0644);
	if (fd < 0) {
		rc = hv_err(HV_EIO, "%s: cannot create: %s", tmp, strerror(errno));
		goto out;
	}
	if ((rc = build(fd, path, &nf)))
		goto out;
	close(fd);
	fd = -1;
	/* link refuses to replace an existing file, rename would not */
	if (link(tmp, path) != 0) {
		rc = hv_err(errno == EEXIST ? HV_EINVAL : HV_EIO, "%s: cannot create: %s", path,
			    errno == EEXIST ? "already exists" : strerror(errno));
		goto out;
	}
out:
	if (fd >= 0)
		close(fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	free(nf.locator);
	vhdx_free(pf);
	return rc;
}
