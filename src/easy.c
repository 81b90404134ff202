/* One libcurl easy handle (req): made once with the options its session fixes,
 * then, per request, the options read from a Lua request table, the callbacks
 * that collect the response, and the outcome as Lua values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "http.h"

void spapi_req_free(req *r) {
  if (r == NULL) return;
  if (r->easy) curl_easy_cleanup(r->easy);
  curl_slist_free_all(r->hdrs);
  spapi_buf_free(&r->lines);
  spapi_buf_free(&r->body);
  spapi_buf_free(&r->rhdr);
  spapi_buf_free(&r->desc);
  free(r);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  req *r = (req *)ud;
  size_t n = size * nmemb;
  if (!spapi_buf_append(&r->body, ptr, n)) {
    r->oom = 1;
    return 0;
  }
  return n;
}

/* Options that never change for a session's handles: set once per handle.
 * Handles are never curl_easy_reset (it would undo these); spapi_req_setup
 * sets every per-request option explicitly instead. */
static int req_init_static(session *s, req *r) {
  CURL *e = r->easy;
  int ok = 1;
  ok &= curl_easy_setopt(e, CURLOPT_SHARE, s->share) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)r) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, spapi_on_header) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)r) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L) == CURLE_OK;
  /* The User-Agent is one of the header lines (spapi_req_read), not this option,
   * which libcurl formats anew for every request; a proxy's CONNECT needs it. */
  if (s->proxy || s->env_proxy) ok &= curl_easy_setopt(e, CURLOPT_USERAGENT, s->user_agent ? s->user_agent : USER_AGENT) == CURLE_OK;
  if (s->proxy) ok &= curl_easy_setopt(e, CURLOPT_PROXY, s->proxy) == CURLE_OK;
  /* No proxy configured or in the environment (read when the session was made):
   * "" tells libcurl so, and it reads no proxy variables per request. */
  else if (!s->env_proxy) ok &= curl_easy_setopt(e, CURLOPT_PROXY, "") == CURLE_OK;
  if (s->noproxy) ok &= curl_easy_setopt(e, CURLOPT_NOPROXY, s->noproxy) == CURLE_OK;
  if (s->cainfo) ok &= curl_easy_setopt(e, CURLOPT_CAINFO, s->cainfo) == CURLE_OK;
  if (s->capath) ok &= curl_easy_setopt(e, CURLOPT_CAPATH, s->capath) == CURLE_OK;
  if (!s->verify) {
    ok &= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L) == CURLE_OK;
  }
  return ok;
}

req *spapi_req_new(session *s) {
  req *r = (req *)calloc(1, sizeof(req));
  if (r == NULL) return NULL;
  r->owner = s;
  r->easy = curl_easy_init();
  if (r->easy == NULL || !req_init_static(s, r)) {
    spapi_req_free(r);
    return NULL;
  }
  return r;
}

/* --- the request table ---------------------------------------------------------- */

static void lines_init(lua_State *L, lines *b) {
  b->p = b->stack;
  b->len = 0;
  b->cap = sizeof(b->stack);
  b->heap = NULL;
  lua_pushnil(L);
  b->slot = lua_gettop(L);
}

/* Room for n more bytes at b->p + b->len (the caller adds n to len), NULL when
 * out of memory. May raise (a Lua memory error making the userdata). */
static char *lines_room(lua_State *L, lines *b, size_t n) {
  if (n > b->cap - b->len) {
    if (b->heap == NULL) {
      b->heap = spapi_buf_push(L);
      lua_replace(L, b->slot);
      if (!spapi_buf_add(b->heap, b->p, b->len)) return NULL;
    }
    b->heap->len = b->len;
    if (!spapi_buf_reserve(b->heap, n)) return NULL;
    b->p = b->heap->p;
    b->cap = b->heap->cap;
  }
  return b->p + b->len;
}

static int lines_add(lua_State *L, lines *b, const char *s, size_t n) {
  char *w = lines_room(L, b, n);
  if (w == NULL) return 0;
  memcpy(w, s, n);
  b->len += n;
  return 1;
}

static void add_header_line(lua_State *L, reqopts *o, const char *op, int name_idx, int value_idx) {
  size_t nl, vl;
  const char *name, *val;
  int vt = lua_type(L, value_idx);
  if (lua_type(L, name_idx) != LUA_TSTRING) luaL_error(L, "%s: header names must be strings", op);
  name = lua_tolstring(L, name_idx, &nl);
  if (!spapi_header_name_ok(name, nl)) luaL_error(L, "%s: invalid header name '%s'", op, name);
  if (nl == 10 && spapi_same_ci(name, "user-agent", 10)) o->has_ua = 1;
  if (vt != LUA_TSTRING && vt != LUA_TNUMBER) luaL_error(L, "%s: header '%s' must have a string value", op, name);
  if (vt == LUA_TNUMBER) { /* convert a copy: never change a key of the table being traversed */
    lua_pushvalue(L, value_idx);
    value_idx = lua_gettop(L);
  }
  val = lua_tolstring(L, value_idx, &vl);
  if (spapi_has_crlf(val, vl)) luaL_error(L, "%s: header '%s' contains a line break", op, name);
  /* a NUL would end the line early and start another one with what follows */
  if (vl > 0 && memchr(val, '\0', vl) != NULL) luaL_error(L, "%s: header '%s' contains a NUL byte", op, name);
  {
    /* "name: value\0", or "name;\0" (libcurl's way to send an empty value) */
    size_t need = nl + (vl == 0 ? 2 : vl + 3);
    char *w = lines_room(L, &o->hl, need);
    if (w == NULL) luaL_error(L, "%s: out of memory", op);
    memcpy(w, name, nl);
    w += nl;
    if (vl == 0) {
      w[0] = ';';
      w[1] = '\0';
    } else {
      w[0] = ':';
      w[1] = ' ';
      memcpy(w + 2, val, vl + 1); /* with the string's terminating NUL */
    }
    o->hl.len += need;
  }
  if (vt == LUA_TNUMBER) lua_pop(L, 1);
}

static void read_headers(lua_State *L, int h, reqopts *o, const char *op) {
  if (!lua_istable(L, h)) luaL_error(L, "%s: 'headers' must be a table", op);
  lua_pushnil(L);
  while (lua_next(L, h) != 0) {
    if (lua_type(L, -2) == LUA_TNUMBER) {
      if (!lua_istable(L, -1)) luaL_error(L, "%s: header list entries must be {name, value}", op);
      lua_rawgeti(L, -1, 1);
      lua_rawgeti(L, -2, 2);
      add_header_line(L, o, op, lua_gettop(L) - 1, lua_gettop(L));
      lua_pop(L, 2);
    } else {
      add_header_line(L, o, op, lua_gettop(L) - 1, lua_gettop(L));
    }
    lua_pop(L, 1);
  }
}

static const char *req_str(lua_State *L, int i, const char *name, const char *op, size_t *len) {
  if (lua_type(L, i) != LUA_TSTRING) luaL_error(L, "%s: '%s' must be a string", op, name);
  return lua_tolstring(L, i, len);
}

static double req_num(lua_State *L, int i, const char *name, const char *op) {
  double v;
  if (lua_type(L, i) != LUA_TNUMBER) luaL_error(L, "%s: '%s' must be a number", op, name);
  v = (double)lua_tonumber(L, i);
  if (!(v > 0)) luaL_error(L, "%s: '%s' must be positive", op, name);
  return v;
}

/* The names of the OPT_... and F_... upvalues, in their order. */
static const char *const OPT_NAMES[] = {"url", "method", "body", "accept_encoding", "timeout", "connect_timeout",
                                        "follow", "headers", "id", "status", "err", "kind", "curl_code", "json", NULL};

/* The request fields spapi_req_read reads, in the order it pushes them. */
static const int REQ_FIELDS[] = {OPT_METHOD, OPT_URL, OPT_BODY, OPT_AE, OPT_TIMEOUT, OPT_CTIMEOUT,
                                 OPT_FOLLOW, OPT_JSON, OPT_HEADERS};
enum { RF_METHOD, RF_URL, RF_BODY, RF_AE, RF_TIMEOUT, RF_CTIMEOUT, RF_FOLLOW, RF_JSON, RF_HEADERS, RF_N };

/* Reads the request table at index t (raw: metamethods are not consulted) in a
 * method of the session or the multi; pushes one value (nil, or the userdata
 * holding header lines that did not fit on the C stack). Strings stay anchored
 * by the table. Raises on a bad option. */
void spapi_req_read(lua_State *L, int t, session *s, reqopts *o, const char *op) {
  int ty[RF_N], v, i;
  o->method = o->url = o->body = o->accept_encoding = NULL;
  o->body_len = o->url_len = 0;
  o->timeout = s->timeout;
  o->connect_timeout = s->connect_timeout;
  o->has_ua = 0;
  luaL_checktype(L, t, LUA_TTABLE);
  lines_init(L, &o->hl);
  /* every field at once (at v + RF_...), then the stack back to the lines' slot */
  luaL_checkstack(L, RF_N + 8, op);
  v = lua_gettop(L) + 1;
  for (i = 0; i < RF_N; i++) {
    push_opt_name(L, REQ_FIELDS[i]);
    ty[i] = spapi_rawget(L, t);
  }
  o->method = ty[RF_METHOD] == LUA_TNIL ? "GET" : req_str(L, v + RF_METHOD, "method", op, NULL);
  if (ty[RF_URL] == LUA_TNIL) luaL_error(L, "%s: 'url' is required", op);
  o->url = req_str(L, v + RF_URL, "url", op, &o->url_len);
  if (ty[RF_BODY] != LUA_TNIL) o->body = req_str(L, v + RF_BODY, "body", op, &o->body_len);
  o->has_body = o->body != NULL;
  if (ty[RF_AE] != LUA_TNIL) o->accept_encoding = req_str(L, v + RF_AE, "accept_encoding", op, NULL);
  if (ty[RF_TIMEOUT] != LUA_TNIL) o->timeout = req_num(L, v + RF_TIMEOUT, "timeout", op);
  if (ty[RF_CTIMEOUT] != LUA_TNIL) o->connect_timeout = req_num(L, v + RF_CTIMEOUT, "connect_timeout", op);
  o->follow = ty[RF_FOLLOW] != LUA_TNIL && lua_toboolean(L, v + RF_FOLLOW);
  o->json = ty[RF_JSON] != LUA_TNIL && lua_toboolean(L, v + RF_JSON);
  if (ty[RF_HEADERS] != LUA_TNIL) read_headers(L, v + RF_HEADERS, o, op);
  lua_settop(L, v - 1);
  if (!o->has_ua && !lines_add(L, &o->hl, s->ua_line, s->ua_len + 1)) luaL_error(L, "%s: out of memory", op);
  /* no "Expect: 100-continue" round trip before a body (libcurl adds none without one) */
  if ((o->has_body || strcmp(o->method, "POST") == 0) && !lines_add(L, &o->hl, "Expect:", 8))
    luaL_error(L, "%s: out of memory", op);
}

/* --- configuring the handle ----------------------------------------------------- */

/* Seconds → curl milliseconds: at least 1 (0 would mean "no timeout"), at most ~24 days. */
static long to_ms(double seconds) {
  double ms = seconds * 1000 + 0.5;
  if (ms < 1) return 1;
  if (ms > 2147483647.0) return 2147483647L;
  return (long)ms;
}

/* "METHOD URL" for messages. Built only when needed (an error, a multi request). */
void spapi_req_desc(req *r, const char *method, const char *url, size_t url_len) {
  spapi_buf_reset(&r->desc);
  if (!spapi_buf_addstr(&r->desc, method) || !spapi_buf_addc(&r->desc, ' ') ||
      !spapi_buf_add(&r->desc, url, url_len) || !spapi_buf_addc(&r->desc, '\0'))
    spapi_buf_reset(&r->desc);
}

/* Sets the header list, reusing the handle's current one when the lines are the
 * same (the common case: one client, one token). */
static int req_headers(req *r, const lines *hl) {
  struct curl_slist *list = NULL;
  size_t off = 0;
  if (r->lines_ok && r->lines.len == hl->len && (hl->len == 0 || memcmp(r->lines.p, hl->p, hl->len) == 0))
    return 1;
  while (off < hl->len) {
    const char *line = hl->p + off;
    struct curl_slist *n = curl_slist_append(list, line);
    if (n == NULL) {
      curl_slist_free_all(list);
      return 0;
    }
    list = n;
    off += strlen(line) + 1;
  }
  if (curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, list) != CURLE_OK) {
    curl_slist_free_all(list);
    return 0;
  }
  curl_slist_free_all(r->hdrs);
  r->hdrs = list;
  spapi_buf_reset(&r->lines);
  r->lines_ok = spapi_buf_add(&r->lines, hl->p, hl->len); /* else: rebuilt next time */
  return 1;
}

/* Configures a pooled easy handle for the request o. No Lua calls. Returns 0 on success. */
int spapi_req_setup(req *r, const reqopts *o) {
  CURL *e = r->easy;
  long ms;
  int ok = 1;
  r->oom = 0;
  r->errbuf[0] = 0;
  r->timeout = o->timeout;
  spapi_buf_reset(&r->body);
  spapi_buf_reset(&r->rhdr);
  r->nrhdr = 0;
  memset(r->pick_seen, 0, sizeof(r->pick_seen));
  spapi_buf_reset(&r->desc);
  if (!req_headers(r, &o->hl)) return -1;
  ok &= curl_easy_setopt(e, CURLOPT_URL, o->url) == CURLE_OK;
  /* options unchanged since the handle's previous request are not set again */
  ms = to_ms(o->timeout);
  if (ms != r->set_timeout_ms) {
    r->set_timeout_ms = curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms) == CURLE_OK ? ms : 0;
    ok &= r->set_timeout_ms != 0;
  }
  ms = to_ms(o->connect_timeout);
  if (ms != r->set_connect_ms) {
    r->set_connect_ms = curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ms) == CURLE_OK ? ms : 0;
    ok &= r->set_connect_ms != 0;
  }
  if (o->follow + 1 != r->set_follow) {
    r->set_follow = curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, o->follow ? 1L : 0L) == CURLE_OK ? o->follow + 1 : 0;
    ok &= r->set_follow != 0;
  }
  if (o->accept_encoding != NULL || r->set_ae) {
    /* NULL: no decoding */
    ok &= curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, o->accept_encoding) == CURLE_OK;
    r->set_ae = o->accept_encoding != NULL;
  }
  if (strcmp(o->method, "GET") == 0 && !o->has_body) {
    if (!r->set_get) {
      ok &= curl_easy_setopt(e, CURLOPT_NOBODY, 0L) == CURLE_OK;
      ok &= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, (char *)NULL) == CURLE_OK;
      ok &= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) == CURLE_OK;
      r->set_get = ok;
    }
    return ok ? 0 : -1;
  }
  /* any other method: undo whatever the previous request on this handle set */
  r->set_get = 0;
  ok &= curl_easy_setopt(e, CURLOPT_NOBODY, 0L) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, (char *)NULL) == CURLE_OK;
  if (strcmp(o->method, "HEAD") == 0) {
    ok &= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_NOBODY, 1L) == CURLE_OK;
  } else if (o->has_body || strcmp(o->method, "POST") == 0) {
    ok &= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->has_body ? o->body : "") == CURLE_OK;
    if (strcmp(o->method, "POST") != 0) ok &= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, o->method) == CURLE_OK;
  } else {
    ok &= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, o->method) == CURLE_OK;
  }
  return ok ? 0 : -1;
}

/* --- the outcome ---------------------------------------------------------------- */

/* 1 when the transfer failed (libcurl's error, or out of memory in a callback). */
int spapi_req_failed(const req *r) { return r->rc != CURLE_OK || r->oom; }

/* The kind of a failure, as the transport contract names it. */
const char *spapi_req_kind(const req *r) {
  if (r->oom) return "other";
  switch (r->rc) {
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_COULDNT_CONNECT: return "connect";
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return "resolve";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED: return "tls";
    case CURLE_SEND_ERROR: return "send";
    case CURLE_RECV_ERROR: return "recv";
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE: return "closed";
    default: return "other";
  }
}

static void same_text(char *dst, size_t n, const char *src) {
  size_t l = strlen(src);
  if (l >= n) l = n - 1;
  memcpy(dst, src, l);
  dst[l] = 0;
}

/* Pushes the failure's message, without header values: "<what>: METHOD URL". */
void spapi_req_push_error(lua_State *L, const req *r) {
  const char *desc = r->desc.len ? r->desc.p : "request";
  if (r->oom) {
    lua_pushfstring(L, "out of memory reading the response: %s", desc);
  } else if (r->rc == CURLE_OPERATION_TIMEDOUT) {
    char t[32];
    snprintf(t, sizeof(t), "%.1f", r->timeout);
    lua_pushfstring(L, "timeout after %ss: %s", t, desc);
  } else {
    char what[CURL_ERROR_SIZE + 8];
    same_text(what, sizeof(what), r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->rc));
    lua_pushfstring(L, "%s: %s", what, desc);
  }
}

/* --- classes whose methods read request tables ---------------------------------- */

/* Makes the metatable name (once); its methods get the metatable as upvalue 1
 * (spapi_http_self) and the OPT_NAMES as upvalues 2.. (push_opt_name). */
void spapi_http_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc,
                      lua_CFunction close, lua_CFunction tostring) {
  if (luaL_newmetatable(L, name)) {
    int i;
    lua_newtable(L);
    lua_pushvalue(L, -2);
    for (i = 0; OPT_NAMES[i] != NULL; i++) lua_pushstring(L, OPT_NAMES[i]);
    luaL_setfuncs(L, methods, 1 + OPT_N);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
}

/* In a method: argument 1 if its metatable is the one in upvalue 1 (no registry
 * lookup, unlike luaL_checkudata), else NULL. */
void *spapi_http_self(lua_State *L) {
  void *p = lua_touserdata(L, 1);
  if (p != NULL && lua_getmetatable(L, 1)) {
    int same = lua_rawequal(L, -1, lua_upvalueindex(1));
    lua_pop(L, 1);
    if (same) return p;
  }
  return NULL;
}

/* In a method: pushes its upvalues (the metatable and the names), for a closure
 * made there that reads requests and sets fields as the methods do. */
void spapi_http_push_upvalues(lua_State *L) {
  int i;
  luaL_checkstack(L, 2 + OPT_N, "spapi.core");
  for (i = 1; i <= 1 + OPT_N; i++) lua_pushvalue(L, lua_upvalueindex(i));
}

void spapi_easy_open(lua_State *L) {
  static int inited = 0;
  curl_version_info_data *v;
  if (!inited) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    inited = 1;
  }
  v = curl_version_info(CURLVERSION_NOW);
  lua_pushstring(L, v && v->version ? v->version : "unknown");
  lua_setfield(L, -2, "curl_version");
}
