/*
 * Full-read benchmark reader through hvsim's VHDX library (vhdx_open + vhdx_read in 4 MiB
 * chunks), or with --raw through plain pread of a raw image, skipping its holes (ground truth
 * for the checksum, and the check of exported raw files).
 * usage: read_ours FILE.vhdx | read_ours --raw FILE.raw
 */
#include "../../hyperv/vhdx/vhdx.h"
#include "bench_read.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static int rd_vhdx(void *ctx, uint8_t *buf, uint64_t off, size_t len)
{
	if (vhdx_read(ctx, buf, off, len)) {
		fprintf(stderr, "read_ours: %s\n", hv_errmsg());
		return 1;
	}
	return 0;
}

/* Raw image: holes (SEEK_DATA/SEEK_HOLE) are zero-filled without reading them, so checking a
 * sparse export does not drag gigabytes of zero pages through the page cache. */
static int rd_raw(void *ctx, uint8_t *buf, uint64_t off, size_t len)
{
	int fd = *(int *)ctx;
	uint64_t end = off + len;
	for (uint64_t pos = off; pos < end;) {
		off_t d = lseek(fd, (off_t)pos, SEEK_DATA);
		if (d < 0 && errno != ENXIO)
			d = (off_t)pos; /* SEEK_DATA unsupported: read densely */
		if (d < 0 || (uint64_t)d >= end) {
			memset(buf + (pos - off), 0, end - pos);
			break;
		}
		memset(buf + (pos - off), 0, (uint64_t)d - pos);
		off_t h = lseek(fd, d, SEEK_HOLE);
		uint64_t stop = h < 0 || (uint64_t)h > end ? end : (uint64_t)h;
		for (uint64_t o = (uint64_t)d; o < stop;) {
			ssize_t n = pread(fd, buf + (o - off), stop - o, (off_t)o);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				fprintf(stderr, "read_ours: raw read at %" PRIu64 " failed\n", o);
				return 1;
			}
			o += (uint64_t)n;
		}
		pos = stop;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--raw")) {
		int fd = open(argv[2], O_RDONLY);
		struct stat st;
		if (fd < 0 || fstat(fd, &st)) {
			fprintf(stderr, "read_ours: %s: %s\n", argv[2], strerror(errno));
			return 1;
		}
		int rc = bench_run(&fd, rd_raw, (uint64_t)st.st_size);
		close(fd);
		return rc;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: read_ours FILE.vhdx | read_ours --raw FILE.raw\n");
		return 2;
	}
	struct vhdx_file *f;
	if (vhdx_open(argv[1], VHDX_OPEN_RDONLY, &f)) {
		fprintf(stderr, "read_ours: %s\n", hv_errmsg());
		return 1;
	}
	int rc = bench_run(f, rd_vhdx, vhdx_get_info(f)->virtual_size);
	vhdx_close(f);
	return rc;
}
