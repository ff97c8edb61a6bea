# relloc: Relative-Location self-supervised learning and its benchmarks, as Unix tools.
#
#   make            build tools/rl-* (runs `make deps` first if a library is missing)
#   make check      build and run every test (tests/run.sh); alias: test
#   make check-cpus the tests under each OpenBLAS and libxsmm kernel set (stand-ins for
#                   other CPUs)
#   make bench      the speed benchmarks against the peers (bench/*.sh, slow)
#   make demo       the whole method on Fashion-MNIST (pipelines/fashion.mk)
#   make lint       mandoc -Tlint on man/*
#   make asan       an -fsanitize=address,undefined build that runs the tests
#   make deps       apt-get install what the project needs (idempotent)
#   make deps-bench also the peers `make bench` runs (bench/*.py: PyTorch, PIL,
#                   scikit-learn)
#   make fuzz       libFuzzer on every parser of untrusted bytes (fuzz/, clang)
#
# Every common/*.c goes into libcommon.a; every tools/X.c is a program X;
# every tests/t_X.c is a test program; tests/cli/*.sh are CLI tests; every
# bench/X.c is a program build/bench/X that `make bench` builds for its
# scripts.

VERSION   = 0.1.0
PREFIX   ?= /usr/local
MANPREFIX = $(PREFIX)/share/man

CC      ?= cc
CFLAGS  ?= -O3 -g -march=native
PKG      = vips libjpeg libzmq msgpack lmdb libxsmm openblas jansson zlib ompi-c

# Debian packages: the libraries, the data set, the man-page linter, the plotter.
DEB_BUILD = build-essential pkg-config libvips-dev libzmq3-dev libopenblas-dev \
	liblmdb-dev libmsgpack-dev libjansson-dev zlib1g-dev libjpeg62-turbo-dev \
	libopenmpi-dev libxsmm-dev
DEB_RUN   = mandoc gnuplot-nox lmdb-utils libvips-tools dataset-fashion-mnist \
	openmpi-bin
# The peers for `make bench` only (PyTorch, PIL, scikit-learn).
# `make fuzz` only: clang with libFuzzer and its OpenMP.
DEB_FUZZ  = clang libclang-rt-dev libomp-dev
DEB_BENCH = python3 python3-numpy python3-pil python3-torch python3-torchvision python3-sklearn \
	python3-msgpack time

BUILD ?= build
# make Q= shows the compiler lines
Q ?= @
STAMP = $(BUILD)/.deps

PKG_CFLAGS = $(shell pkg-config --cflags $(PKG) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKG) 2>/dev/null)
RL_CFLAGS  = -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wpedantic \
	-fopenmp -I. $(PKG_CFLAGS) -DRL_VERSION=\"$(VERSION)\"
RL_LIBS    = $(PKG_LIBS) -fopenmp -lm -lpthread

COMMON_SRC = $(wildcard common/*.c)
COMMON_OBJ = $(COMMON_SRC:%.c=$(BUILD)/%.o)
TOOLS      = $(patsubst tools/%.c,$(BUILD)/%,$(wildcard tools/*.c))
TESTS      = $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/t_*.c))
FUZZ       = $(patsubst fuzz/%.c,%,$(wildcard fuzz/fz_*.c))
REPLAY     = $(FUZZ:%=$(BUILD)/fuzz/%)
BENCHPROG  = $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
MAN        = $(wildcard man/*.[1-9])
LIB        = $(BUILD)/libcommon.a

.PHONY: all check check-cpus test bench demo lint asan deps deps-bench deps-fuzz fuzz install \
	uninstall clean

all: $(TOOLS) $(TESTS) $(REPLAY)

# The stamp records that the packages were checked; it is remade when this
# Makefile changes, so a new dependency is installed on the next build.
$(STAMP): Makefile
	@$(MAKE) --no-print-directory deps
	@mkdir -p $(BUILD) && touch $@

deps:
	@missing=; for p in $(DEB_BUILD) $(DEB_RUN) $(EXTRA_DEB); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' \
			|| missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$missing"; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	else echo "deps: all installed"; fi

deps-bench:
	@$(MAKE) --no-print-directory deps EXTRA_DEB="$(DEB_BENCH)"

deps-fuzz:
	@$(MAKE) --no-print-directory deps EXTRA_DEB="$(DEB_FUZZ)"

$(BUILD)/common/%.o: common/%.c common/*.h $(STAMP)
	@mkdir -p $(@D)
	@echo "CC $<"
	$(Q)$(CC) $(RL_CFLAGS) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIB): $(COMMON_OBJ)
	rm -f $@ && $(AR) rcs $@ $(COMMON_OBJ)

# A program from one .c file and libcommon.a (tools, tests, benchmarks).
define LINK
@mkdir -p $(@D)
@echo "LD $@"
$(Q)$(CC) $(RL_CFLAGS) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(RL_LIBS) $(LDLIBS)
endef

$(BUILD)/%: tools/%.c $(LIB) common/*.h
	$(LINK)

$(BUILD)/tests/%: tests/%.c tests/*.h $(LIB) common/*.h
	$(LINK)

# bench/*.c: programs the bench scripts time (`make bench` builds them).
$(BUILD)/bench/%: bench/%.c $(LIB) common/*.h
	$(LINK)

# fuzz/fz_X.c with fuzz/replay.c: replays fuzz/corpus/X and fuzz/crashes/X
# in `make check` (tests/cli/t_fuzz.sh), no clang needed.
$(BUILD)/fuzz/%: fuzz/%.c fuzz/replay.c fuzz/fuzz.h $(LIB) common/*.h
	@mkdir -p $(@D)
	@echo "LD $@"
	$(Q)$(CC) $(RL_CFLAGS) $(CPPFLAGS) $(CFLAGS) -o $@ $< fuzz/replay.c $(LIB) $(LDFLAGS) $(RL_LIBS) $(LDLIBS)

# make fuzz [FUZZ=fz_npy] [FUZZ_TIME=s] [FUZZ_JOBS=n]: build the harnesses
# with clang, libFuzzer, ASan and UBSan in $(FUZZ_BUILD) and run each
# FUZZ_TIME seconds (fuzz/run.sh); crashes land in fuzz/crashes/<harness>.
FUZZ_BUILD  = build-fuzz
FUZZ_CFLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=undefined
FUZZ_TIME  ?= 60
FUZZ_JOBS  ?= 2
fuzz: deps-fuzz
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang \
		CFLAGS="$(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link" $(FUZZ_BUILD)/libcommon.a
	@for f in $(FUZZ); do echo "LD $(FUZZ_BUILD)/$$f"; \
		clang $(RL_CFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $(FUZZ_BUILD)/$$f \
		fuzz/$$f.c $(FUZZ_BUILD)/libcommon.a $(RL_LIBS) || exit 1; done
	@FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_TIME=$(FUZZ_TIME) FUZZ_JOBS=$(FUZZ_JOBS) \
		sh fuzz/run.sh $(FUZZ)

check test: all
	@BUILD=$(BUILD) sh tests/run.sh

# Another kernel set stands in for another CPU: the tests must hold on all.
# Each OpenBLAS core type goes with libxsmm's target for the same
# instructions (AVX, AVX2, AVX-512).
CORETYPES = Haswell:hsw SkylakeX:skx Cooperlake:cpx Zen:hsw Sandybridge:snb
check-cpus: all
	@for p in $(CORETYPES); do c=$${p%%:*}; x=$${p#*:}; \
		echo "== OPENBLAS_CORETYPE=$$c LIBXSMM_TARGET=$$x"; \
		OPENBLAS_CORETYPE=$$c LIBXSMM_TARGET=$$x BUILD=$(BUILD) sh tests/run.sh \
			>$(BUILD)/check-$$c.log 2>&1; \
		rc=$$?; grep -v '  0 failed  ' $(BUILD)/check-$$c.log; \
		[ $$rc -eq 0 ] || exit 1; done

bench: all $(BENCHPROG)
	@$(MAKE) --no-print-directory deps-bench
	@BUILD=$(BUILD) sh bench/run.sh $(BENCH)

demo: all
	@$(MAKE) --no-print-directory -f pipelines/fashion.mk BIN=$(BUILD)

lint: $(STAMP)
	mandoc -Tlint -W warning $(MAN)

asan:
	@$(MAKE) --no-print-directory check BUILD=build-asan \
		CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer"

install: $(TOOLS)
	mkdir -p $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MANPREFIX)/man1 $(DESTDIR)$(MANPREFIX)/man5 \
		$(DESTDIR)$(MANPREFIX)/man7
	for t in $(TOOLS); do cp -f $$t $(DESTDIR)$(PREFIX)/bin/; done
	for m in $(MAN); do s=$${m##*.}; cp -f $$m $(DESTDIR)$(MANPREFIX)/man$$s/; done

uninstall:
	for t in $(TOOLS); do rm -f $(DESTDIR)$(PREFIX)/bin/$${t##*/}; done
	for m in $(MAN); do s=$${m##*.}; rm -f $(DESTDIR)$(MANPREFIX)/man$$s/$${m##*/}; done

clean:
	rm -rf build build-asan build-fuzz
