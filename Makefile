# spapi — Lua module with a C core for Amazon's Selling Partner API.
# `make` builds the C core for Lua 5.4 and LuaJIT in build/ (it installs nothing);
# `make test` and `make demo` first run `make deps`, which installs what is missing.
LUA          ?= lua5.4
LUAJIT       ?= luajit
LUA_VERSION  ?= 5.4
LUA_INCDIR   ?= /usr/include/lua$(LUA_VERSION)
LUAJIT_INCDIR ?= /usr/include/luajit-2.1
PREFIX       ?= /usr/local
DESTDIR      ?=
LUA_CMODDIR  ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
LUA_LMODDIR  ?= $(PREFIX)/share/lua/$(LUA_VERSION)
BINDIR       ?= $(PREFIX)/bin
MODELS       ?= $(shell scripts/models.sh)
CC           ?= cc
CFLAGS       ?= -O2 -g
WARN         ?= -Wall -Wextra -Werror
PKGS          = libcurl libcrypto zlib hiredis
PKG_CFLAGS    = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS      = $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lcurl -lcrypto -lz -lhiredis)

SRC  = $(wildcard src/*.c)
HDR  = $(wildcard src/*.h)
CORE = build/$(LUA_VERSION)/spapi/core.so

.PHONY: all deps build build-jit test bench install operations rockspec clean valgrind demo

all: build $(if $(filter 5.4,$(LUA_VERSION)),build-jit)

# the Debian packages to build, test and run the sandbox (apt-get; root or sudo)
deps:
	@scripts/deps.sh --check 2>/dev/null || scripts/deps.sh

build: $(CORE)

$(CORE): $(SRC) $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC -fvisibility=hidden \
	  -I$(LUA_INCDIR) $(PKG_CFLAGS) -shared -o $@ $(SRC) $(PKG_LIBS)

build-jit:
	@if [ -f $(LUAJIT_INCDIR)/lua.h ]; then \
	  $(MAKE) --no-print-directory build LUA_VERSION=5.1 LUA_INCDIR=$(LUAJIT_INCDIR); \
	else echo "LuaJIT headers not found in $(LUAJIT_INCDIR): skipping the 5.1 build"; fi

# Regenerate the operation tables and the schemas from Amazon's models (committed; never hand-edit).
operations:
	@[ -n "$(MODELS)" ] || { echo "make operations: no models found (MODELS=dir or SPAPI_MODELS=dir; see scripts/models.sh)" >&2; exit 1; }
	@mkdir -p lua/spapi/schemas
	$(LUA) tools/gen_operations.lua $(MODELS) lua/spapi/operations
	$(LUA) tools/gen_schemas.lua $(MODELS) lua/spapi/schemas
	$(LUA) tools/gen_feed_schema.lua $(MODELS)/schemas/listings-feed-schema-v2.json lua/spapi/schemas/listings_feed.lua

rockspec:
	$(LUA) tools/gen_rockspec.lua > spapi-scm-1.rockspec

test: deps
	@$(MAKE) --no-print-directory all
	@scripts/test.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh $(EXAMPLES)

bench: all
	@scripts/bench.sh

valgrind: all
	@scripts/valgrind.sh

install: build
	install -d $(DESTDIR)$(LUA_CMODDIR)/spapi $(DESTDIR)$(LUA_LMODDIR) $(DESTDIR)$(BINDIR)
	install -m 0755 $(CORE) $(DESTDIR)$(LUA_CMODDIR)/spapi/core.so
	cd lua && find spapi -name '*.lua' -o -name '*.txt' | while read f; do \
	  install -D -m 0644 "$$f" "$(DESTDIR)$(LUA_LMODDIR)/$$f"; done
	sed '1s|.*|#!/usr/bin/env $(if $(filter 5.1,$(LUA_VERSION)),$(LUAJIT),$(LUA))|' bin/spapi > $(DESTDIR)$(BINDIR)/spapi
	chmod 0755 $(DESTDIR)$(BINDIR)/spapi

clean:
	rm -rf build/5.4 build/5.1
