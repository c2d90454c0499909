# hvsim — build, test, demo, bench. Out-of-tree: objects in $(BUILD)/obj, binaries in $(BUILD)/bin.
# `make test` and `make demo` install missing Debian packages first (ci/deps.sh, a no-op when
# everything is present).

BUILD ?= build
CC ?= gcc
PY := /usr/bin/python3

SAN ?=
OPT ?= -O2
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
               -Wstrict-prototypes -Wmissing-prototypes -fno-strict-aliasing
ifeq ($(SAN),1)
CFLAGS_BASE += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
LDFLAGS_SAN := -fsanitize=address,undefined
endif
XML_CFLAGS = $(shell pkg-config --cflags libxml-2.0 2>/dev/null || echo -I/usr/include/libxml2)
CFLAGS = $(CFLAGS_BASE) $(XML_CFLAGS) $(EXTRA_CFLAGS)
LDLIBS := -lisal -lsqlite3 -lxml2 -lxxhash -lyaml -lm

LIBVHDI_CFLAGS = $(shell pkg-config --cflags libvhdi 2>/dev/null)
LIBVHDI_LIBS = $(shell pkg-config --libs libvhdi 2>/dev/null || echo -lvhdi)

# ---- sources -------------------------------------------------------------------------------
HYPERV_SRC := $(wildcard hyperv/base/*.c) $(wildcard hyperv/vhdx/*.c) $(wildcard hyperv/cim/*.c)
# every sim/<module>/*.c except the CLI goes into libsim.a (sim/ never links engine/)
SIM_SRC := $(filter-out sim/hvsim/%,$(wildcard sim/*/*.c))
HVSIM_SRC := $(wildcard sim/hvsim/*.c)
# every engine/<module>/*.c except the CLI goes into libengine.a (engine/ never links libsim.a)
ENGINE_SRC := $(filter-out engine/hvbackup/%,$(wildcard engine/*/*.c))
ENGINE_TESTS := $(wildcard engine/*/tests/test_*.c)
ENGINE_LDLIBS := -lzstd -lcrypto
UNIT_TESTS := $(wildcard hyperv/*/tests/test_*.c) $(wildcard sim/*/tests/test_*.c)
CONF_TESTS := $(wildcard conformance/*/test_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
HYPERV_LIB := $(BUILD)/lib/libhyperv.a
SIM_LIB := $(BUILD)/lib/libsim.a
ENGINE_LIB := $(BUILD)/lib/libengine.a
HVSIM := $(BUILD)/bin/hvsim
# hvbackup: the engine, linked with what implements the host interfaces it uses (wmi_client.h,
# virtdisk.h): today the simulator's in-process provider and libvirtdisk (libsim.a)
HVBACKUP_SRC := $(wildcard engine/hvbackup/*.c)
HVBACKUP := $(BUILD)/bin/hvbackup
UNIT_BINS := $(patsubst %.c,$(BUILD)/tests/%,$(notdir $(UNIT_TESTS)))
CONF_BINS := $(patsubst %.c,$(BUILD)/tests/conf_%,$(notdir $(CONF_TESTS)))
ENGINE_TEST_BINS := $(patsubst %.c,$(BUILD)/tests/%,$(notdir $(ENGINE_TESTS)))

.PHONY: all test test-asan test-long test-fuzz demo bench clean deps tests
.DEFAULT_GOAL := all

all: $(HVSIM) $(HVBACKUP)

deps:
	@bash ci/deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(HYPERV_LIB): $(call obj,$(HYPERV_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

$(SIM_LIB): $(call obj,$(SIM_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

$(ENGINE_LIB): $(call obj,$(ENGINE_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

$(HVSIM): $(call obj,$(HVSIM_SRC)) $(SIM_LIB) $(HYPERV_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_SAN) -o $@ $^ $(LDLIBS)

$(HVBACKUP): $(call obj,$(HVBACKUP_SRC)) $(ENGINE_LIB) $(SIM_LIB) $(HYPERV_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_SAN) -o $@ $^ $(ENGINE_LDLIBS) $(LDLIBS) -lpthread

# unit tests: {hyperv,sim}/<module>/tests/test_<module>.c -> $(BUILD)/tests/test_<module>
# (hyperv/ tests link only libhyperv.a; sim/ tests also libsim.a)
define unit_rule
$(BUILD)/tests/$(basename $(notdir $(1))): $(call obj,$(1)) $(if $(filter sim/%,$(1)),$(SIM_LIB)) $(HYPERV_LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS_SAN) -o $$@ $$^ -lcmocka $$(LDLIBS)
endef
$(foreach t,$(UNIT_TESTS),$(eval $(call unit_rule,$(t))))

# engine unit tests: engine/<module>/tests/test_<module>.c -> $(BUILD)/tests/test_<module>,
# linked with libengine.a and libhyperv.a only (never libsim.a)
define engine_test_rule
$(BUILD)/tests/$(basename $(notdir $(1))): $(call obj,$(1)) $(ENGINE_LIB) $(HYPERV_LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS_SAN) -o $$@ $$^ -lcmocka $$(ENGINE_LDLIBS) $$(LDLIBS)
endef
$(foreach t,$(ENGINE_TESTS),$(eval $(call engine_test_rule,$(t))))

# conformance tests in C link the independent implementation (libvhdi) — tests only, never hvsim
$(BUILD)/obj/conformance/%.o: conformance/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIBVHDI_CFLAGS) -MMD -MP -c $< -o $@
# (conformance tests may link both sides: the engine and the simulator it runs against)
define conf_rule
$(BUILD)/tests/conf_$(basename $(notdir $(1))): $(call obj,$(1)) $(ENGINE_LIB) $(SIM_LIB) $(HYPERV_LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS_SAN) -o $$@ $$^ -lcmocka $$(LIBVHDI_LIBS) $$(ENGINE_LDLIBS) $$(LDLIBS) -lpthread
endef
$(foreach t,$(CONF_TESTS),$(eval $(call conf_rule,$(t))))

tests: $(HVSIM) $(HVBACKUP) $(UNIT_BINS) $(CONF_BINS) $(ENGINE_TEST_BINS)

# the scenario library runs after the tests (scenarios tagged `long`: make test-long)
test: deps
	@$(MAKE) --no-print-directory tests
	@$(PY) ci/run-tests --build $(BUILD)
	@$(PY) ci/run-scenarios scenarios --build $(BUILD) -j 2

test-asan: deps
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/asan SAN=1 OPT=-O1 tests
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		$(PY) ci/run-tests --build $(BUILD)/asan
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		$(PY) ci/run-scenarios scenarios --build $(BUILD)/asan -j 2

# every scenario of the library, the long ones too
test-long: deps
	@$(MAKE) --no-print-directory all
	@$(PY) ci/run-scenarios scenarios --build $(BUILD) -j 2 --include-long

FUZZ_SECONDS ?= 60
test-fuzz: deps
	@mkdir -p $(BUILD)/fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
		-o $(BUILD)/fuzz/fuzz_vhdx conformance/vhdx/fuzz/fuzz_vhdx.c $(HYPERV_SRC) $(LDLIBS)
	@mkdir -p $(BUILD)/fuzz/corpus
	$(BUILD)/fuzz/fuzz_vhdx -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 \
		$(BUILD)/fuzz/corpus conformance/vhdx/fuzz/seeds

demo: deps
	@$(MAKE) --no-print-directory all
	@bash ci/demo.sh $(BUILD)

bench: deps
	@$(MAKE) --no-print-directory all
	@bash ci/bench-vhdx.sh $(BUILD)
	@bash ci/bench-host.sh $(BUILD)
	@$(PY) ci/bench_engine.py --build $(BUILD) --runs $${BENCH_RUNS:-3} --tmp $(BUILD)/bench

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
