# portier: one hand-written GNU Makefile.
#
#   make            build build/portierd
#   make run        build and start the daemon on the embedded defaults
#   make test       deps, unit tests (plain and ASan/UBSan), integration tests
#                   against real peers (ASan build), short fuzz runs
#   make fuzz       longer libFuzzer runs (FUZZ_SECONDS=300)
#   make asan       build build/asan/portierd with ASan/UBSan
#   make install    install to $(DESTDIR)$(PREFIX)
#   make deps       install missing Debian packages (build and test; as root)
#                   or print the command
#
#   V=1 shows commands, WERROR=0 drops -Werror.

CC       ?= gcc
CLANG    ?= clang
BUILD    ?= build
PREFIX   ?= /usr/local
WERROR   ?= 1
SAN      ?= 0
FUZZ_SECONDS ?= 20

ifeq ($(V),1)
Q :=
else
Q := @
endif

PKGS := libuv libssl libcrypto libmicrohttpd sqlite3 jansson libcurl libnghttp2
WARN := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
        -Wformat=2 -Wpointer-arith -Wvla -Wno-missing-field-initializers
ifeq ($(WERROR),1)
WARN += -Werror
endif

CFLAGS_ALL := -std=c11 -D_GNU_SOURCE -I. -I$(BUILD)/gen -g -O2 -MMD -MP $(WARN) \
              -fno-strict-aliasing
LDLIBS_ALL := -lpthread
ifeq ($(SAN),1)
CFLAGS_ALL += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined
LDFLAGS_ALL += -fsanitize=address,undefined
endif

# pkg-config is asked only once the deps step has run (it may be what installs it).
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

COMMON_SRC := $(wildcard common/*.c)
DB_SRC     := $(wildcard db/*.c)
API_SRC    := $(wildcard api/*.c)
WORKER_SRC := $(wildcard worker/*.c)
DAEMON_SRC := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
LIB_SRC    := $(COMMON_SRC) $(DB_SRC) $(API_SRC) $(WORKER_SRC) $(DAEMON_SRC)
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/embedded.o
EMBED_IN   := $(sort $(wildcard db/migrations/*.sql) $(wildcard web/*.*))

UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN   := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)

.PHONY: all run test unit integration fuzz fuzz-short asan install deps check-layout clean help bench
.DEFAULT_GOAL := all

all: $(BUILD)/.deps $(BUILD)/portierd

help:
	@sed -n '3,13p' Makefile

# ---- dependencies ---------------------------------------------------------
# `make` needs only what builds portierd, so a newcomer without the test peers
# (nginx, pebble, clang...) can build and `make run`; `make test` adds the rest.
DEB_BUILD_PKGS := build-essential pkg-config libuv1-dev libssl-dev libmicrohttpd-dev \
                  libsqlite3-dev libjansson-dev libcurl4-openssl-dev libnghttp2-dev
DEB_TEST_PKGS  := libcriterion-dev curl openssl nginx libnginx-mod-stream python3 \
                  clang libclang-rt-14-dev iproute2 procps pebble util-linux systemd prometheus \
                  python3-jinja2 libnginx-mod-http-lua libnginx-mod-http-headers-more-filter \
                  fail2ban nghttp2-client python3-h2 dovecot-imapd postfix python3-cryptography \
                  strace

deps:
	@tools/deps.sh $(DEB_BUILD_PKGS) $(DEB_TEST_PKGS)

$(BUILD)/.deps: tools/deps.sh
	$(Q)tools/deps.sh $(DEB_BUILD_PKGS)
	$(Q)mkdir -p $(BUILD) && touch $@

$(BUILD)/.test-deps: tools/deps.sh Makefile
	$(Q)tools/deps.sh $(DEB_BUILD_PKGS) $(DEB_TEST_PKGS)
	$(Q)mkdir -p $(BUILD) && touch $@

# ---- build ----------------------------------------------------------------
$(BUILD)/obj/%.o: %.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) $(PKG_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/embed: tools/embed.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=c11 -O1 -Wall -Wextra -o $@ $<

$(BUILD)/gen/embedded.c: $(BUILD)/embed $(EMBED_IN)
	@mkdir -p $(dir $@)
	$(Q)$(BUILD)/embed $(EMBED_IN) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/embedded.o: $(BUILD)/gen/embedded.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/libportier.a: $(LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/portierd: $(BUILD)/obj/daemon/main.o $(BUILD)/libportier.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS_ALL)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libportier.a | $(BUILD)/.test-deps
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS_ALL) $(PKG_CFLAGS) $(LDFLAGS_ALL) -o $@ $< $(BUILD)/libportier.a \
	    -lcriterion $(PKG_LIBS) $(LDLIBS_ALL)

asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan SAN=1 build/asan/portierd

unit-bins: $(UNIT_BIN)

# ---- fuzzing (clang libFuzzer) -------------------------------------------
FUZZ_COMMON := $(filter-out common/embed.c,$(COMMON_SRC))
build/fuzz/%: tests/fuzz/%.c $(FUZZ_COMMON) | $(BUILD)/.test-deps
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(CLANG) -std=c11 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer,address,undefined \
	    -o $@ $< $(FUZZ_COMMON) $(PKG_CFLAGS) $(PKG_LIBS) $(LDLIBS_ALL)

# compiled into its harness: worker/ is not in FUZZ_COMMON
build/fuzz/fuzz_tlsrec: worker/tlsrec.c worker/tlsrec.h

fuzz-short: $(FUZZ_BIN)
	$(Q)tools/fuzz.sh 15 $(FUZZ_BIN)

fuzz: $(FUZZ_BIN)
	$(Q)tools/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

# ---- tests ----------------------------------------------------------------
test: $(BUILD)/.test-deps check-layout
	$(Q)$(MAKE) --no-print-directory all unit-bins
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan SAN=1 build/asan/portierd unit-bins
	$(Q)$(MAKE) --no-print-directory $(FUZZ_BIN)
	$(Q)tools/run-tests.sh

unit: $(BUILD)/.test-deps all unit-bins
	$(Q)tools/run-tests.sh unit

integration: $(BUILD)/.test-deps asan
	$(Q)tools/run-tests.sh integration

# worker/ sees only common/; nothing includes daemon/.
check-layout:
	$(Q)! grep -nE '#include "(daemon|db|api)/' worker/*.c worker/*.h common/*.c common/*.h 2>/dev/null \
	    || { echo "layout: worker/ and common/ may include only common/"; exit 1; }
	$(Q)! grep -nE '#include "daemon/' api/* db/* 2>/dev/null \
	    || { echo "layout: nothing includes daemon/"; exit 1; }

run: all
	$(Q)tools/run.sh $(BUILD)/portierd

bench: all
	$(Q)bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin
	install -m 0755 $(BUILD)/portierd $(DESTDIR)$(PREFIX)/sbin/portierd
	install -d $(DESTDIR)/lib/systemd/system
	install -m 0644 contrib/portierd.service $(DESTDIR)/lib/systemd/system/portierd.service

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
