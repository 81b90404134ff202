/* core.session: one libcurl share handle (connections, DNS, TLS sessions) and a
 * pool of easy handles, so sequential requests reuse one keep-alive connection.
 * session:request performs one request on a pooled handle; session:multi
 * (multi.c) runs many over the same share and pool. */
#include <stdlib.h>
#include <string.h>
#include "http.h"

/* --- the pool of easy handles --------------------------------------------------- */

req *spapi_pool_take(session *s) {
  if (s->npool > 0) return s->pool[--s->npool];
  return spapi_req_new(s);
}

/* The header list stays set on the handle, for the next request with the same lines. */
void spapi_pool_give(session *s, req *r) {
  if (r == NULL) return;
  r->next = NULL;
  if (r->body.cap > (1u << 20)) spapi_buf_free(&r->body);
  spapi_buf_reset(&r->body);
  spapi_buf_reset(&r->rhdr);
  spapi_buf_reset(&r->desc);
  if (!s->closed && s->npool < POOL_MAX) s->pool[s->npool++] = r;
  else spapi_req_free(r);
}

/* Adds a finished transfer to the session's stats. */
void spapi_session_count(session *s, req *r) {
  long nc = 0;
  curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &nc);
  s->requests += 1;
  s->connects += (lua_Number)nc;
  if (r->rc == CURLE_OK && nc == 0) s->reused += 1;
}

/* --- the session ---------------------------------------------------------------- */

static session *check_session(lua_State *L, int i) {
  return (session *)luaL_checkudata(L, i, SESSION_MT);
}

/* The session at argument i, which must not be closed (op names the call). */
session *spapi_session_open_arg(lua_State *L, int i, const char *op) {
  session *s = (i == 1 ? (session *)spapi_http_self(L) : NULL);
  if (s == NULL) s = check_session(L, i);
  if (s->closed) luaL_error(L, "%s: the session is closed", op);
  return s;
}

/* Once closed and nothing uses the share (no multi, no request in progress:
 * libcurl refuses to free a share an easy handle still holds). The session's
 * strings stay until __gc: a finalizer may close the session while a request
 * is reading its options, which still reads the User-Agent line. */
void spapi_session_free_share(session *s) {
  if (s->share != NULL && s->nmulti == 0 && s->busy == NULL) {
    curl_share_cleanup(s->share);
    s->share = NULL;
  }
}

/* Requests still running (close from Lua code run inside one of them) free
 * their handle when they end; __gc frees what memory errors left busy. */
static int session_close(lua_State *L) {
  session *s = check_session(L, 1);
  if (!s->closed) {
    int i;
    s->closed = 1;
    for (i = 0; i < s->npool; i++) spapi_req_free(s->pool[i]);
    s->npool = 0;
    if (s->names_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, s->names_ref);
    s->names_ref = LUA_NOREF; /* a multi still running pushes names without the cache */
    if (s->hmt_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, s->hmt_ref);
    s->hmt_ref = LUA_NOREF;
    if (s->json_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, s->json_ref);
    s->json_ref = LUA_NOREF;
  }
  spapi_session_free_share(s);
  return 0;
}

/* Unreachable: no request can be running, so every busy entry is a leftover. */
static int session_gc(lua_State *L) {
  session *s = check_session(L, 1);
  session_close(L);
  while (s->busy != NULL) {
    req *r = s->busy;
    s->busy = r->busy_next;
    spapi_req_free(r);
  }
  spapi_session_free_share(s);
  free(s->proxy);
  free(s->noproxy);
  free(s->cainfo);
  free(s->capath);
  free(s->user_agent);
  free(s->ua_line);
  s->proxy = s->noproxy = s->cainfo = s->capath = s->user_agent = s->ua_line = NULL;
  return 0;
}

static const char *opt_str(lua_State *L, int t, const char *name, size_t *len) {
  const char *v = NULL;
  spapi_rawfield(L, t, name);
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "session: '%s' must be a string", name);
    v = lua_tolstring(L, -1, len);
  }
  lua_pop(L, 1); /* still anchored by the options table */
  return v;
}

static double opt_num(lua_State *L, int t, const char *name, double dflt) {
  double v = dflt;
  spapi_rawfield(L, t, name);
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "session: '%s' must be a number", name);
    v = (double)lua_tonumber(L, -1);
    if (!(v > 0)) luaL_error(L, "session: '%s' must be positive", name);
  }
  lua_pop(L, 1);
  return v;
}

/* A malloc'd copy of the string option name in *dst (owned by the session). 0: out of memory. */
static int dupopt(lua_State *L, int t, const char *name, char **dst) {
  const char *v = opt_str(L, t, name, NULL);
  if (v == NULL) return 1;
  *dst = strdup(v);
  return *dst != NULL;
}

/* core.session(opts) → spapi.Session */
static int l_session(lua_State *L) {
  session *s;
  int t;
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  t = 1;
  s = (session *)spapi_newuserdata(L, sizeof(session));
  memset(s, 0, sizeof(*s));
  s->names_ref = s->hmt_ref = s->json_ref = LUA_NOREF;
  luaL_setmetatable(L, SESSION_MT);
  s->connect_timeout = opt_num(L, t, "connect_timeout", 10.0);
  s->timeout = opt_num(L, t, "timeout", 60.0);
  spapi_rawfield(L, t, "verify");
  s->verify = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
  lua_pop(L, 1);
  spapi_rawfield(L, t, "max_host_connections");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER || lua_tonumber(L, -1) < 0)
      luaL_error(L, "session: 'max_host_connections' must be a non-negative number");
    s->max_host_connections = (long)lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  /* everything read; now acquire resources (a raise below still leaves them to __gc) */
  s->share = curl_share_init();
  if (s->share == NULL || !dupopt(L, t, "proxy", &s->proxy) || !dupopt(L, t, "noproxy", &s->noproxy) ||
      !dupopt(L, t, "cainfo", &s->cainfo) || !dupopt(L, t, "capath", &s->capath) ||
      !dupopt(L, t, "user_agent", &s->user_agent))
    return luaL_error(L, "session: out of memory");
  {
    const char *ua = s->user_agent ? s->user_agent : USER_AGENT;
    size_t n = strlen(ua);
    if (spapi_has_crlf(ua, n)) return luaL_error(L, "session: 'user_agent' contains a line break");
    s->ua_line = (char *)malloc(n + 13);
    if (s->ua_line == NULL) return luaL_error(L, "session: out of memory");
    memcpy(s->ua_line, "User-Agent: ", 12);
    memcpy(s->ua_line + 12, ua, n + 1);
    s->ua_len = n + 12;
  }
  curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  {
    static const char *const vars[] = {"http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", NULL};
    int i;
    for (i = 0; vars[i] != NULL; i++) {
      const char *v = getenv(vars[i]);
      if (v != NULL && *v) s->env_proxy = 1;
    }
  }
  spapi_rawfield(L, t, "header_block");
  s->header_block = lua_toboolean(L, -1);
  lua_pop(L, 1);
  spapi_read_pick(L, t, s);
  spapi_rawfield(L, t, "json");
  if (spapi_json_is_decoder(L, -1)) s->json_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  else if (!lua_isnil(L, -1)) return luaL_error(L, "session: 'json' must be a decoder made by core.json_decoder");
  else lua_pop(L, 1);
  spapi_rawfield(L, t, "headers_mt");
  if (lua_istable(L, -1)) s->hmt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  else if (!lua_isnil(L, -1)) return luaL_error(L, "session: 'headers_mt' must be a table");
  else lua_pop(L, 1);
  lua_createtable(L, 2 * NAME_SLOTS, 0);
  s->names_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

/* --- one request ---------------------------------------------------------------- */

static int push_failure(lua_State *L, req *r) {
  lua_pushnil(L);
  spapi_req_push_error(L, r);
  lua_pushstring(L, spapi_req_kind(r));
  spapi_pushint(L, (int)r->rc);
  return 4;
}

static void busy_push(session *s, req *r) {
  r->busy_next = s->busy;
  s->busy = r;
}

/* Takes r off the busy stack and gives it back. Entries above r belong to
 * requests a Lua error unwound while their response was pushed (nested requests
 * end before the one they run in): they are done with and go back too. */
static void busy_pop(session *s, req *r) {
  while (s->busy != NULL && s->busy != r) {
    req *stale = s->busy;
    s->busy = stale->busy_next;
    spapi_pool_give(s, stale);
  }
  if (s->busy == r) s->busy = r->busy_next;
  r->busy_next = NULL;
  spapi_pool_give(s, r);
  if (s->closed) spapi_session_free_share(s); /* closed by Lua code run inside this request */
}

/* Pushes the body of r decoded (1) when it is a JSON object or array, else
 * pushes nothing (0): the caller pushes the text. */
static int push_json_body(lua_State *L, session *s, req *r) {
  const char *p = r->body.p, *end = p + r->body.len;
  int ok;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  if (p == end || (*p != '{' && *p != '[')) return 0;
  if (!spapi_buf_reserve(&r->body, 1)) return 0;
  r->body.p[r->body.len] = '\0'; /* the decoder reads up to a NUL */
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->json_ref);
  ok = spapi_json_decode_mem(L, -1, r->body.p, r->body.len, NULL);
  lua_remove(L, ok ? -2 : -1);
  return ok;
}

/* One request, the table at index 2 (see session_request). */
static int do_request(lua_State *L, session *s) {
  reqopts o;
  req *r;
  long status = 0;
  int i;
  spapi_req_read(L, 2, s, &o, "request");
  /* reading the options allocates, and a finalizer run then may have closed the session */
  if (s->closed) return luaL_error(L, "request: the session is closed");
  r = spapi_pool_take(s);
  if (r == NULL) return luaL_error(L, "request: out of memory");
  busy_push(s, r);
  if (spapi_req_setup(r, &o) != 0) {
    busy_pop(s, r);
    return luaL_error(L, "request: cannot configure libcurl (out of memory?)");
  }
  r->rc = curl_easy_perform(r->easy);
  spapi_session_count(s, r);
  if (spapi_req_failed(r)) {
    int n;
    spapi_req_desc(r, o.method, o.url, o.url_len);
    n = push_failure(L, r);
    busy_pop(s, r);
    return n;
  }
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  spapi_pushint(L, status);
  spapi_push_headers(L, s, r);
  if (!(o.json && status >= 200 && status < 300 && s->json_ref != LUA_NOREF && push_json_body(L, s, r)))
    lua_pushlstring(L, r->body.p ? r->body.p : "", r->body.len);
  for (i = 0; i < s->npick; i++) {
    if (r->pick_seen[i] == 1) lua_pushlstring(L, r->rhdr.p + r->pick_off[i], r->pick_len[i]);
    else if (r->pick_seen[i] == 0) lua_pushboolean(L, 0);
    else lua_pushnil(L); /* repeated: the caller joins them from the headers */
  }
  busy_pop(s, r);
  return 3 + s->npick;
}

/* session:request(req) → status, headers, body, picked... | nil, message, kind, curl_code
 * body: with req.json and the session's json decoder, a 2xx body that is a JSON
 * object or array comes decoded (a table); otherwise the text.
 * picked: one value per name of the session's pick option, false when the
 * response has no such header, nil when it has several (read the headers). */
static int session_request(lua_State *L) {
  return do_request(L, spapi_session_open_arg(L, 1, "request"));
}

/* session:sender() → send(_, req): session:request as a function of two
 * arguments whose first is ignored, for a transport table's send method. */
static int session_send(lua_State *L) {
  session *s = (session *)lua_touserdata(L, lua_upvalueindex(2 + OPT_N));
  if (s->closed) return luaL_error(L, "request: the session is closed");
  return do_request(L, s);
}

static int session_sender(lua_State *L) {
  spapi_session_open_arg(L, 1, "sender");
  spapi_http_push_upvalues(L);
  lua_pushvalue(L, 1);
  lua_pushcclosure(L, session_send, 2 + OPT_N);
  return 1;
}

static int session_stats(lua_State *L) {
  session *s = check_session(L, 1);
  lua_createtable(L, 0, 3);
  spapi_pushint(L, s->requests);
  lua_setfield(L, -2, "requests");
  spapi_pushint(L, s->connects);
  lua_setfield(L, -2, "connects");
  spapi_pushint(L, s->reused);
  lua_setfield(L, -2, "reused");
  return 1;
}

static int session_tostring(lua_State *L) {
  session *s = check_session(L, 1);
  lua_pushfstring(L, "spapi.Session: %p%s", (void *)s, s->closed ? " (closed)" : "");
  return 1;
}

static const luaL_Reg session_methods[] = {
  {"request", session_request},
  {"sender", session_sender},
  {"multi", spapi_multi_new},
  {"stats", session_stats},
  {"close", session_close},
  {NULL, NULL},
};

static const luaL_Reg funcs[] = {
  {"session", l_session},
  {NULL, NULL},
};

void spapi_session_open(lua_State *L) {
  spapi_http_class(L, SESSION_MT, session_methods, session_gc, session_close, session_tostring);
  luaL_setfuncs(L, funcs, 0);
}
