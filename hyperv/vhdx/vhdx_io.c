/*
 * vhdx_io — the only place that touches the file descriptor.
 *
 * Reads: past the real end of file read as zeros (a replayed log may extend the file only in
 * memory), and the in-memory log overlay of a read-only open is laid over every read, so every
 * structure, BAT page and payload byte is seen as if the log had been replayed.
 * Writes: each pwrite/ftruncate/fsync is one step of the write sequence; the test fault point
 * cuts the sequence after N steps to prove crash safety.
 */
#include "vhdx_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* Reads of at least this size ask the file system where its holes are and zero-fill them instead
 * of copying zero pages: sparse blocks (imported disks, fixed disks, a 64 TiB disk's BAT) then
 * cost almost nothing to read. */
#define HOLE_AWARE_MIN (256u * 1024u)

static int pread_all(struct vhdx_file *f, uint8_t *p, size_t len, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(f->fd, p + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return hv_err(HV_EIO, "%s: read of %zu bytes at offset %llu failed: %s", f->path,
				      len - done, (unsigned long long)(off + done), strerror(errno));
		}
		if (n == 0) {
			memset(p + done, 0, len - done);
			break;
		}
		done += (size_t)n;
	}
	return 0;
}

int vio_pread(struct vhdx_file *f, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	size_t done = 0;
	int rc;
	while (len >= HOLE_AWARE_MIN && done < len) {
		off_t cur = (off_t)(off + done);
		off_t d = lseek(f->fd, cur, SEEK_DATA);
		if (d < 0) {
			if (errno != ENXIO)
				break; /* no hole support: plain reads below */
			memset(p + done, 0, len - done); /* only a hole (or EOF) remains */
			done = len;
			break;
		}
		if (d > cur) {
			size_t z = (uint64_t)(d - cur) < len - done ? (size_t)(d - cur) : len - done;
			memset(p + done, 0, z);
			done += z;
			continue;
		}
		off_t h = lseek(f->fd, cur, SEEK_HOLE);
		size_t n = h > cur && (uint64_t)(h - cur) < len - done ? (size_t)(h - cur) : len - done;
		if ((rc = pread_all(f, p + done, n, off + done)))
			return rc;
		done += n;
	}
	if (done < len && (rc = pread_all(f, p + done, len - done, off + done)))
		return rc;
	/* first segment ending after off */
	size_t lo_i = 0, hi_i = f->novl;
	while (lo_i < hi_i) {
		size_t mid = lo_i + (hi_i - lo_i) / 2;
		if (f->ovl[mid].off + f->ovl[mid].len <= off)
			lo_i = mid + 1;
		else
			hi_i = mid;
	}
	for (size_t i = lo_i; i < f->novl && f->ovl[i].off < off + len; i++) {
		const struct vhdx_overlay *o = &f->ovl[i];
		uint64_t lo = o->off > off ? o->off : off;
		uint64_t hi = o->off + o->len < off + len ? o->off + o->len : off + len;
		if (lo >= hi)
			continue;
		if (o->data)
			memcpy(p + (lo - off), o->data + (lo - o->off), hi - lo);
		else
			memset(p + (lo - off), 0, hi - lo);
	}
	return 0;
}

/* Calls cb for each part of [off, off+len) that the file stores as data (not a hole). */
int vio_data_extents(struct vhdx_file *f, uint64_t off, uint64_t len,
		     int (*cb)(void *ctx, uint64_t off, uint64_t len), void *ctx)
{
	uint64_t end = off + len;
	while (off < end) {
		off_t d = lseek(f->fd, (off_t)off, SEEK_DATA);
		if (d < 0)
			return errno == ENXIO ? 0 : cb(ctx, off, end - off); /* no hole support: all data */
		if ((uint64_t)d >= end)
			return 0;
		off_t h = lseek(f->fd, d, SEEK_HOLE);
		uint64_t he = h < 0 || (uint64_t)h > end ? end : (uint64_t)h;
		int rc = cb(ctx, (uint64_t)d, he - (uint64_t)d);
		if (rc)
			return rc;
		off = he;
	}
	return 0;
}

static int step(struct vhdx_file *f)
{
	if (f->crashed)
		return hv_err(HV_ECRASHED, "%s: write sequence cut by fault point", f->path);
	if (f->crash_after >= 0 && f->steps >= f->crash_after) {
		f->crashed = true;
		return hv_err(HV_ECRASHED, "%s: write sequence cut by fault point after %ld steps",
			      f->path, f->steps);
	}
	f->steps++;
	return 0;
}

int vio_pwrite(struct vhdx_file *f, const void *buf, size_t len, uint64_t off)
{
	int rc = step(f);
	if (rc)
		return rc;
	const uint8_t *p = buf;
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(f->fd, p + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return hv_err(HV_EIO, "%s: write of %zu bytes at offset %llu failed: %s",
				      f->path, len - done, (unsigned long long)(off + done),
				      strerror(errno));
		}
		done += (size_t)n;
	}
	if (off + len > f->file_size)
		f->file_size = off + len;
	return 0;
}

int vio_truncate(struct vhdx_file *f, uint64_t size)
{
	int rc = step(f);
	if (rc)
		return rc;
	if (ftruncate(f->fd, (off_t)size) != 0)
		return hv_err(HV_EIO, "%s: cannot set file size to %llu: %s", f->path,
			      (unsigned long long)size, strerror(errno));
	f->file_size = size;
	return 0;
}

int vio_sync(struct vhdx_file *f)
{
	int rc = step(f);
	if (rc)
		return rc;
	if (f->flags & VHDX_OPEN_NOSYNC)
		return 0;
	if (fdatasync(f->fd) != 0)
		return hv_err(HV_EIO, "%s: fdatasync failed: %s", f->path, strerror(errno));
	return 0;
}

int vio_zero(struct vhdx_file *f, uint64_t off, uint64_t len)
{
	int rc = step(f);
	if (rc)
		return rc;
	if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
		return 0;
	static const uint8_t zeros[65536];
	for (uint64_t o = 0; o < len; o += sizeof zeros) {
		size_t n = len - o < sizeof zeros ? (size_t)(len - o) : sizeof zeros;
		f->steps--; /* one logical step, however many pwrites it takes */
		if ((rc = vio_pwrite(f, zeros, n, off + o)))
			return rc;
	}
	return 0;
}
