/* Baseline for `make bench`, in the bench's own process: N sequential GETs on
 * one libcurl easy handle (one keep-alive connection), body discarded. Living
 * in the same process as the pipeline it is compared with, the baseline's
 * rounds see the same warm connection, caches and CPU as the pipeline's,
 * instead of a fresh process's first connect and cold start in every round.
 *
 *   local raw = require "rawloop"
 *   local h = raw.open(url, { "Name: value", ... })  -- headers sent with every request
 *   h:run(n)                                         -- n requests; errors raise
 *
 * The bench times h:run with the clock it times the pipeline with.
 *
 * Build (scripts/bench.sh): cc -O2 -shared -fPIC -I<lua headers> -Isrc bench/rawloop.c -lcurl */
#include <string.h>
#include <curl/curl.h>
#include "compat.h" /* src/: the Lua headers and the 5.1/5.4 shims the core uses */

#define RAWLOOP_MT "rawloop.handle"

typedef struct {
  CURL *easy;
  struct curl_slist *headers;
} rawloop;

static size_t discard(char *p, size_t size, size_t nmemb, void *ud) {
  (void)p;
  (void)ud;
  return size * nmemb;
}

static void release(rawloop *r) {
  if (r->easy) curl_easy_cleanup(r->easy);
  if (r->headers) curl_slist_free_all(r->headers);
  r->easy = NULL;
  r->headers = NULL;
}

static int l_gc(lua_State *L) {
  release((rawloop *)luaL_checkudata(L, 1, RAWLOOP_MT));
  return 0;
}

static int l_open(lua_State *L) {
  const char *url = luaL_checkstring(L, 1);
  rawloop *r;
  int i, n;
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  n = lua_isnoneornil(L, 2) ? 0 : (int)lua_rawlen(L, 2);
  lua_settop(L, 2); /* the handle goes to index 3 */
  r = (rawloop *)spapi_newuserdata(L, sizeof *r);
  memset(r, 0, sizeof *r);
  luaL_setmetatable(L, RAWLOOP_MT);
  /* from here on the userdata's __gc frees what is allocated, whatever raises */
  r->easy = curl_easy_init();
  if (r->easy == NULL) return luaL_error(L, "rawloop: curl_easy_init failed");
  curl_easy_setopt(r->easy, CURLOPT_URL, url);
  curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(r->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, discard);
  for (i = 1; i <= n; i++) {
    struct curl_slist *next;
    lua_rawgeti(L, 2, i);
    if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "rawloop.open: header %d is not a string", i);
    next = curl_slist_append(r->headers, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (next == NULL) return luaL_error(L, "rawloop: out of memory");
    r->headers = next;
  }
  if (r->headers) curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
  return 1;
}

static int l_run(lua_State *L) {
  rawloop *r = (rawloop *)luaL_checkudata(L, 1, RAWLOOP_MT);
  lua_Integer n = luaL_checkinteger(L, 2), i;
  long status = 0;
  CURLcode rc = CURLE_OK;
  if (r->easy == NULL) return luaL_error(L, "rawloop: handle is closed");
  for (i = 0; i < n && rc == CURLE_OK; i++) rc = curl_easy_perform(r->easy);
  if (rc != CURLE_OK) return luaL_error(L, "rawloop: request %d: %s", (int)i, curl_easy_strerror(rc));
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) return luaL_error(L, "rawloop: HTTP %d", (int)status);
  return 0;
}

int luaopen_rawloop(lua_State *L) {
  static const luaL_Reg methods[] = { { "run", l_run }, { NULL, NULL } };
  if (luaL_newmetatable(L, RAWLOOP_MT)) {
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__gc");
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, l_open);
  lua_setfield(L, -2, "open");
  return 1;
}
