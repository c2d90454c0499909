/*
 * test_base — CRC-32C known answers, GUID byte order against the MS-VHDX tables, size parsing,
 * and the seeded PRNG's determinism. Expected values come from the spec and the reference (never
 * from this code's own output).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../base.h"

static void test_crc32c_known_answer(void **state)
{
	(void)state;
	/* check value of CRC-32C (iSCSI) for "123456789" */
	assert_int_equal(hv_crc32c("123456789", 9), 0xE3069283u);
	/* RFC 3720 B.4: 32 bytes of zeros -> 0x8A9136AA, 32 bytes of 0xFF -> 0x62A8AB43 */
	uint8_t z[32] = {0}, ff[32];
	memset(ff, 0xFF, sizeof ff);
	assert_int_equal(hv_crc32c(z, 32), 0x8A9136AAu);
	assert_int_equal(hv_crc32c(ff, 32), 0x62A8AB43u);
	/* incrementing 0..31 -> 0x46DD794E */
	uint8_t inc[32];
	for (int i = 0; i < 32; i++)
		inc[i] = (uint8_t)i;
	assert_int_equal(hv_crc32c(inc, 32), 0x46DD794Eu);
}

static void test_crc32c_streaming_equals_one_shot(void **state)
{
	(void)state;
	static uint8_t buf[100003];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	uint32_t one = hv_crc32c(buf, sizeof buf);
	uint32_t c = HV_CRC32C_INIT;
	c = hv_crc32c_update(c, buf, 1);
	c = hv_crc32c_update(c, buf + 1, 4095);
	c = hv_crc32c_update(c, buf + 4096, sizeof buf - 4096);
	assert_int_equal(hv_crc32c_final(c), one);
}

static void test_guid_byte_order_matches_spec(void **state)
{
	(void)state;
	/* MS-VHDX: BAT region GUID 2DC27766-F623-4200-9D64-115E9BFD4A08 is stored as these bytes */
	static const uint8_t want[16] = {0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42,
					 0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08};
	struct hv_guid g;
	const char *s = "{2DC27766-F623-4200-9D64-115E9BFD4A08}";
	assert_int_equal(hv_guid_parse(s, strlen(s), &g), 0);
	assert_memory_equal(g.b, want, 16);
	char out[HV_GUID_STRLEN + 1];
	hv_guid_format(&g, out);
	assert_string_equal(out, "{2dc27766-f623-4200-9d64-115e9bfd4a08}");
	/* case and braces do not matter */
	struct hv_guid h;
	const char *t = " 2dc27766-f623-4200-9D64-115e9bfd4a08\n";
	assert_int_equal(hv_guid_parse(t, strlen(t), &h), 0);
	assert_true(hv_guid_eq(&g, &h));
}

static void test_guid_parse_rejects_junk(void **state)
{
	(void)state;
	struct hv_guid g;
	const char *bad[] = {"", "{}", "2dc27766-f623-4200-9d64-115e9bfd4a0",
			     "2dc27766-f623-4200-9d64-115e9bfd4a0g", "2dc27766f6234200-9d64-115e9bfd4a08x",
			     "{2dc27766-f623-4200-9d64-115e9bfd4a08"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(hv_guid_parse(bad[i], strlen(bad[i]), &g), HV_EINVAL);
	assert_non_null(strstr(hv_errmsg(), "not a GUID"));
}

static void test_parse_size(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(hv_parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(hv_parse_size("64MiB", &v), 0);
	assert_int_equal(v, 64ull << 20);
	assert_int_equal(hv_parse_size("2GiB", &v), 0);
	assert_int_equal(v, 2ull << 30);
	assert_int_equal(hv_parse_size("64TiB", &v), 0);
	assert_int_equal(v, 64ull << 40);
	assert_int_equal(hv_parse_size("8k", &v), 0);
	assert_int_equal(v, 8192);
	assert_int_equal(hv_parse_size("1KB", &v), HV_EINVAL);
	assert_non_null(strstr(hv_errmsg(), "unknown unit"));
	assert_int_equal(hv_parse_size("abc", &v), HV_EINVAL);
	assert_int_equal(hv_parse_size("-1", &v), HV_EINVAL);
	assert_int_equal(hv_parse_size("99999999999999999999", &v), HV_EINVAL);
	assert_int_equal(hv_parse_size("20000000TiB", &v), HV_EINVAL);
	assert_non_null(strstr(hv_errmsg(), "too large"));
}

static void test_rng_streams_are_deterministic_and_independent(void **state)
{
	(void)state;
	struct hv_rng a1 = hv_rng_stream(42, "guids"), a2 = hv_rng_stream(42, "guids");
	struct hv_rng b = hv_rng_stream(42, "workload"), c = hv_rng_stream(43, "guids");
	uint64_t x = hv_rng_next(&a1);
	/* drawing from another stream in between changes nothing */
	(void)hv_rng_next(&b);
	assert_int_equal(x, hv_rng_next(&a2));
	assert_int_not_equal(x, hv_rng_next(&c));
	struct hv_rng b2 = hv_rng_stream(42, "workload");
	assert_int_not_equal(x, hv_rng_next(&b2));
	struct hv_guid g = hv_rng_guid(&a1);
	assert_int_equal(g.b[7] >> 4, 4);       /* version 4 */
	assert_int_equal(g.b[8] & 0xC0, 0x80); /* RFC 4122 variant */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_known_answer),
		cmocka_unit_test(test_crc32c_streaming_equals_one_shot),
		cmocka_unit_test(test_guid_byte_order_matches_spec),
		cmocka_unit_test(test_guid_parse_rejects_junk),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_rng_streams_are_deterministic_and_independent),
	};
	return cmocka_run_group_tests_name("base", tests, NULL, NULL);
}
