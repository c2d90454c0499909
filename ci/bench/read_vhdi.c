/*
 * Full-read benchmark reader through libvhdi's C API (the independent anchor):
 * libvhdi_file_read_buffer_at_offset in 4 MiB chunks. usage: read_vhdi FILE.vhdx
 */
#include "bench_read.h"

#include <libvhdi.h>

static void report(const char *what, libvhdi_error_t *err)
{
	char msg[1024] = "";
	if (err) {
		libvhdi_error_sprint(err, msg, sizeof msg);
		libvhdi_error_free(&err);
	}
	fprintf(stderr, "read_vhdi: %s: %s\n", what, msg);
}

static int rd_vhdi(void *ctx, uint8_t *buf, uint64_t off, size_t len)
{
	libvhdi_file_t *f = ctx;
	for (size_t done = 0; done < len;) {
		libvhdi_error_t *err = NULL;
		ssize_t n = libvhdi_file_read_buffer_at_offset(f, buf + done, len - done, (off64_t)(off + done), &err);
		if (n <= 0) {
			report("read", err);
			return 1;
		}
		done += (size_t)n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: read_vhdi FILE.vhdx\n");
		return 2;
	}
	libvhdi_file_t *f = NULL;
	libvhdi_error_t *err = NULL;
	size64_t size = 0;
	if (libvhdi_file_initialize(&f, &err) != 1) {
		report("initialize", err);
		return 1;
	}
	if (libvhdi_file_open(f, argv[1], LIBVHDI_OPEN_READ, &err) != 1) {
		report(argv[1], err);
		return 1;
	}
	if (libvhdi_file_get_media_size(f, &size, &err) != 1) {
		report("media size", err);
		return 1;
	}
	int rc = bench_run(f, rd_vhdi, (uint64_t)size);
	libvhdi_file_close(f, NULL);
	libvhdi_file_free(&f, NULL);
	return rc;
}
