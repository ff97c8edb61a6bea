# relloc: Relative-Location self-supervised learning and its benchmarks, as Unix tools.
#
#   make            build tools/rl-* (runs `make deps` first if a library is missing)
#   make check      build and run every test (tests/run.sh); alias: test
#   make bench      the speed benchmarks against the peers (bench/*.sh, slow)
#   make demo       the whole method on Fashion-MNIST (pipelines/fashion.mk)
#   make lint       mandoc -Tlint on man/*
#   make asan       an -fsanitize=address,undefined build that runs the tests
#   make deps       apt-get install what the project needs (idempotent)
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
PKG      = vips libjpeg libzmq msgpack lmdb openblas jansson zlib ompi-c

# Debian packages: the libraries, the data set, the man-page linter, the plotter.
DEB_BUILD = build-essential pkg-config libvips-dev libzmq3-dev libopenblas-dev \
	liblmdb-dev libmsgpack-dev libjansson-dev zlib1g-dev libjpeg62-turbo-dev \
	libopenmpi-dev
DEB_RUN   = mandoc gnuplot-nox lmdb-utils libvips-tools dataset-fashion-mnist \
	openmpi-bin
# The peers for `make bench` only (PyTorch, PIL, scikit-learn).
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
BENCHPROG  = $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
MAN        = $(wildcard man/*.[1-9])
LIB        = $(BUILD)/libcommon.a

.PHONY: all check test bench demo lint asan deps deps-bench install uninstall clean

all: $(TOOLS) $(TESTS)

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

$(BUILD)/tests/%: tests/%.c tests/check.h $(LIB) common/*.h
	$(LINK)

# bench/*.c: programs the bench scripts time (`make bench` builds them).
$(BUILD)/bench/%: bench/%.c $(LIB) common/*.h
	$(LINK)

check test: all
	@BUILD=$(BUILD) sh tests/run.sh

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
	mkdir -p $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MANPREFIX)/man1 $(DESTDIR)$(MANPREFIX)/man5
	for t in $(TOOLS); do cp -f $$t $(DESTDIR)$(PREFIX)/bin/; done
	for m in $(MAN); do s=$${m##*.}; cp -f $$m $(DESTDIR)$(MANPREFIX)/man$$s/; done

uninstall:
	for t in $(TOOLS); do rm -f $(DESTDIR)$(PREFIX)/bin/$${t##*/}; done
	for m in $(MAN); do s=$${m##*.}; rm -f $(DESTDIR)$(MANPREFIX)/man$$s/$${m##*/}; done

clean:
	rm -rf build build-asan
