/* Internal declarations shared by the spapi C core's files (not exported). */
#ifndef SPAPI_H
#define SPAPI_H

#include <stddef.h>
#include "lua.h"
#include "lauxlib.h"
#include "compat.h"

#define SPAPI_HIDDEN __attribute__((visibility("hidden")))

/* Each adds its functions to the table on top of the stack. */
SPAPI_HIDDEN void spapi_buf_open(lua_State *L);
SPAPI_HIDDEN void spapi_codec_open(lua_State *L);
SPAPI_HIDDEN void spapi_sys_open(lua_State *L);
SPAPI_HIDDEN void spapi_lwa_open(lua_State *L);
SPAPI_HIDDEN void spapi_sigv4_open(lua_State *L);
SPAPI_HIDDEN void spapi_easy_open(lua_State *L);
SPAPI_HIDDEN void spapi_session_open(lua_State *L);
SPAPI_HIDDEN void spapi_multi_open(lua_State *L);
SPAPI_HIDDEN void spapi_headers_open(lua_State *L);
SPAPI_HIDDEN void spapi_json_open(lua_State *L);
SPAPI_HIDDEN void spapi_redis_open(lua_State *L);

/* A growable byte buffer. Its functions never raise and never touch Lua, so
 * they are safe inside libcurl/zlib callbacks; they return 0 when out of memory. */
typedef struct spapi_buf {
  char *p;
  size_t len, cap;
} spapi_buf;

SPAPI_HIDDEN int spapi_buf_reserve(spapi_buf *b, size_t extra);
SPAPI_HIDDEN int spapi_buf_add(spapi_buf *b, const void *s, size_t n);
SPAPI_HIDDEN int spapi_buf_addstr(spapi_buf *b, const char *s);
SPAPI_HIDDEN int spapi_buf_addc(spapi_buf *b, char c);
SPAPI_HIDDEN void spapi_buf_reset(spapi_buf *b);   /* len = 0, keeps memory */
SPAPI_HIDDEN void spapi_buf_free(spapi_buf *b);    /* idempotent */

/* Push a new userdata owning an empty spapi_buf (freed by __gc); never leaks on raise. */
SPAPI_HIDDEN spapi_buf *spapi_buf_push(lua_State *L);

/* Scratch memory owned by a new userdata pushed on the stack (collected by the GC). */
SPAPI_HIDDEN char *spapi_scratch(lua_State *L, size_t n);

/* Push t[name] without metamethods (t an absolute index), so a string read from an
 * options table stays anchored by that table. */
static inline void spapi_rawfield(lua_State *L, int t, const char *name) {
  lua_pushstring(L, name);
  lua_rawget(L, t);
}

/* ASCII c in lower case. */
static inline char spapi_lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }

/* 1 when a[0..n) and b[0..n) are the same ASCII text but for letter case: the
 * one case-insensitive compare of the core (header names, URL schemes). */
static inline int spapi_same_ci(const char *a, const char *b, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (spapi_lower(a[i]) != spapi_lower(b[i])) return 0;
  return 1;
}

/* JSON (json.c). spapi_json_decode_mem reads the text s[0..n) (s[n] must be
 * '\0') as core.json_decoder's decode does: 1 and the value pushed, or 0 and
 * nothing pushed, with why (unless NULL) saying what is wrong and where.
 * decoder: the stack index of a decode function (its array_mt and key cache
 * serve), or 0 (empty arrays get no metatable). Raises only a memory error. */
typedef struct spapi_json_error {
  const char *what; /* static text */
  size_t at;        /* 1-based byte position */
} spapi_json_error;
SPAPI_HIDDEN int spapi_json_decode_mem(lua_State *L, int decoder, const char *s, size_t n, spapi_json_error *why);
SPAPI_HIDDEN int spapi_json_is_decoder(lua_State *L, int i);

/* CLOCK_MONOTONIC in seconds (sys.c). */
SPAPI_HIDDEN double spapi_monotonic(void);

/* RFC 3986 percent-encoding of s into b (unreserved kept, %XX uppercase). */
SPAPI_HIDDEN int spapi_urlencode_buf(spapi_buf *b, const char *s, size_t n);

#endif
