/* HTTP over libcurl. A session is one CURLSH share handle (connections, DNS,
 * TLS sessions) plus a pool of reusable easy handles, so sequential requests
 * reuse one keep-alive connection. A multi runs many requests at once over
 * the same share and pool.
 *
 * Rules kept here: Lua values are read and checked before any curl resource
 * is taken (so a raise cannot leak one); curl callbacks only append to C
 * buffers owned by the request (no Lua calls inside libcurl); messages never
 * contain header values.
 *
 * Cost per request (measured with callgrind against a raw libcurl loop): a
 * pooled handle keeps its header list, reused while the lines are byte-equal,
 * and the option values it last had, so only what changed is set again; header
 * lines are built on the C stack; option and field names are method upvalues;
 * response header names, and values that repeat, come from a per-session cache
 * of Lua strings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include <curl/curl.h>
#include "spapi.h"

#define SESSION_MT "spapi.Session"
#define MULTI_MT "spapi.Multi"
#define POOL_MAX 64
#define USER_AGENT "spapi/0.1 (Language=Lua)"
#define LINES_STACK 2048 /* request header lines kept on the C stack up to this size */
#define PICK_MAX 4       /* response headers a session can pick out (session option 'pick') */
#define PICK_LEN 64

typedef struct req {
  CURL *easy;
  struct curl_slist *hdrs; /* set as CURLOPT_HTTPHEADER; kept while the handle is pooled */
  spapi_buf lines; /* the header lines hdrs was built from (NUL-terminated each) */
  /* option values last set on easy, so an unchanged one is not set again
   * (0: unknown, i.e. set it) */
  long set_timeout_ms, set_connect_ms;
  int set_follow;   /* follow + 1 */
  int set_ae;       /* 1: CURLOPT_ACCEPT_ENCODING holds a value (not NULL) */
  int set_get;      /* 1: configured as a plain GET (HTTPGET, no NOBODY, no CUSTOMREQUEST) */
  int lines_ok;     /* 1: hdrs was built from lines and is set on easy */
  spapi_buf body;  /* response body */
  spapi_buf rhdr;  /* raw header lines of the latest (final) response */
  int nrhdr;       /* how many lines rhdr holds */
  /* the picked headers of the latest response: value at rhdr.p + pick_off[i],
   * pick_len[i] bytes; pick_seen[i]: how many lines had the name (0, 1, 2 = more) */
  size_t pick_off[PICK_MAX], pick_len[PICK_MAX];
  unsigned char pick_seen[PICK_MAX];
  const struct session *owner; /* the session whose pool the handle is in */
  spapi_buf desc;  /* "METHOD URL" for messages */
  char errbuf[CURL_ERROR_SIZE];
  double timeout;
  int oom;
  lua_Integer id;
  CURLcode rc;     /* result once done (multi) */
  struct req *next;
  struct req *busy_next; /* the next request down the session's busy stack */
} req;

/* Response header names already made into Lua strings, by the bytes received
 * (a direct-mapped cache: a hit costs a table read instead of lowercasing and
 * interning the name again). */
#define NAME_SLOTS 64
#define NAME_LEN 47
#define NAME_WAYS 4
#define VALUE_LEN 62
typedef struct hname {
  unsigned char len;
  char raw[NAME_LEN];
  /* the last value seen in this slot, also kept as a Lua string (many values
   * repeat from response to response: content type, server, rate limit...) */
  unsigned char has_value, value_len;
  char value[VALUE_LEN];
} hname;

typedef struct session {
  CURLSH *share;
  req *pool[POOL_MAX];
  int npool;
  req *busy;       /* the requests session:request is performing, innermost first (Lua
                      code run while a response is pushed, a finalizer, may make one of
                      its own); see busy_push/busy_pop */
  int closed;
  int nmulti;      /* live multis using the share */
  double connect_timeout, timeout;
  long verify, max_host_connections;
  char *proxy, *noproxy, *cainfo, *capath, *user_agent;
  char *ua_line;   /* "User-Agent: ..." sent unless a request has its own */
  int env_proxy;   /* a proxy is set in the environment (libcurl reads it) */
  size_t ua_len;
  lua_Number requests, connects, reused;
  int names_ref;   /* registry: array of the lowercase names of names[] (LUA_NOREF: none) */
  int hmt_ref;     /* registry: metatable given to response header tables (LUA_NOREF: none) */
  int header_block; /* return response headers as the raw block of lines, not a table */
  int json_ref;    /* registry: the JSON decoder for requests with json = true (LUA_NOREF: none) */
  int npick;       /* header names to pick out of each response (lowercase) */
  size_t pick_nl[PICK_MAX];
  char pick[PICK_MAX][PICK_LEN];
  hname names[NAME_SLOTS];
} session;

typedef struct multi {
  CURLM *m;
  session *s;
  int sref;        /* registry reference keeping the session alive */
  req *inflight;   /* linked list */
  req *done;       /* completed, not yet returned to Lua */
  int count;
  lua_Integer next_id;
  int closed;
  int waiting;       /* wait is making its results (Lua code may run: finalizers) */
  int close_pending; /* closed meanwhile: wait releases it when done */
} multi;

/* --- requests ---------------------------------------------------------------- */

static void req_free(req *r) {
  if (r == NULL) return;
  if (r->easy) curl_easy_cleanup(r->easy);
  curl_slist_free_all(r->hdrs);
  spapi_buf_free(&r->lines);
  spapi_buf_free(&r->body);
  spapi_buf_free(&r->rhdr);
  spapi_buf_free(&r->desc);
  free(r);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud);
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud);

/* Options that never change for a session's handles: set once per handle.
 * Handles are never curl_easy_reset (that costs a re-initialisation per
 * request); req_setup sets every per-request option explicitly instead. */
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
  ok &= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)r) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L) == CURLE_OK;
  /* The User-Agent goes with the header lines (read_opts): CURLOPT_USERAGENT costs
   * a formatted copy per request. A proxy's CONNECT still needs it here. */
  if (s->proxy || s->env_proxy) ok &= curl_easy_setopt(e, CURLOPT_USERAGENT, s->user_agent ? s->user_agent : USER_AGENT) == CURLE_OK;
  if (s->proxy) ok &= curl_easy_setopt(e, CURLOPT_PROXY, s->proxy) == CURLE_OK;
  /* No proxy configured or in the environment (read when the session was made):
   * "" tells libcurl so, which spares it five getenv scans per request. */
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

static req *pool_take(session *s) {
  req *r;
  if (s->npool > 0) return s->pool[--s->npool];
  r = (req *)calloc(1, sizeof(req));
  if (r == NULL) return NULL;
  r->owner = s;
  r->easy = curl_easy_init();
  if (r->easy == NULL || !req_init_static(s, r)) {
    req_free(r);
    return NULL;
  }
  return r;
}

/* The header list stays set on the handle: the next request with the same
 * header lines (the common case: one client, one token) reuses it. */
static void pool_give(session *s, req *r) {
  if (r == NULL) return;
  r->next = NULL;
  if (r->body.cap > (1u << 20)) spapi_buf_free(&r->body);
  spapi_buf_reset(&r->body);
  spapi_buf_reset(&r->rhdr);
  spapi_buf_reset(&r->desc);
  if (!s->closed && s->npool < POOL_MAX) s->pool[s->npool++] = r;
  else req_free(r);
}

/* spapi_buf_add with the common case (it fits) inlined: callbacks run per line */
static int buf_append(spapi_buf *b, const char *s, size_t n) {
  if (b->p != NULL && n <= b->cap - b->len) {
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 1;
  }
  return spapi_buf_add(b, s, n);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  req *r = (req *)ud;
  size_t n = size * nmemb;
  if (!buf_append(&r->body, ptr, n)) {
    r->oom = 1;
    return 0;
  }
  return n;
}

/* b is lowercase */
static int same_name_ci(const char *a, const char *b, size_t n);

/* Notes where the line just appended at rhdr offset off holds a picked header. */
static void pick_line(req *r, const char *line, size_t n, size_t off) {
  const struct session *s = r->owner;
  int i;
  char c0 = n > 0 ? line[0] : 0;
  if (c0 >= 'A' && c0 <= 'Z') c0 = (char)(c0 + 32);
  for (i = 0; i < s->npick; i++) {
    size_t nl = s->pick_nl[i], vs, ve;
    /* the first byte rejects most other lines */
    if (n <= nl || c0 != s->pick[i][0] || line[nl] != ':' || !same_name_ci(line, s->pick[i], nl)) continue;
    vs = nl + 1;
    ve = n;
    while (vs < ve && (line[vs] == ' ' || line[vs] == '\t')) vs++;
    while (ve > vs && (line[ve - 1] == '\n' || line[ve - 1] == '\r' || line[ve - 1] == ' ' || line[ve - 1] == '\t')) ve--;
    if (r->pick_seen[i] < 2) r->pick_seen[i]++;
    r->pick_off[i] = off + vs;
    r->pick_len[i] = ve - vs;
    return;
  }
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud) {
  req *r = (req *)ud;
  size_t n = size * nmemb, off;
  if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) { /* a new response begins */
    spapi_buf_reset(&r->rhdr);
    r->nrhdr = 0;
    memset(r->pick_seen, 0, sizeof(r->pick_seen));
  }
  r->nrhdr++; /* libcurl passes one whole line per call */
  off = r->rhdr.len;
  if (!buf_append(&r->rhdr, ptr, n)) {
    r->oom = 1;
    return 0;
  }
  if (r->owner->npick > 0) pick_line(r, ptr, n, off);
  return n;
}

/* Request header lines, each NUL-terminated: on the C stack while they fit
 * (nothing to free when a Lua error unwinds), else in a userdata-owned buffer
 * kept in a stack slot that read_opts reserves. */
typedef struct lines {
  char *p;
  size_t len, cap;
  spapi_buf *heap;
  int slot;
  char stack[LINES_STACK];
} lines;

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

/* Request options read from Lua (strings anchored on the Lua stack). */
typedef struct reqopts {
  const char *method, *url, *body, *accept_encoding;
  size_t body_len, url_len;
  double timeout, connect_timeout;
  int follow, has_body, has_ua, json;
  lines hl; /* header lines */
} reqopts;

static const char *opt_str(lua_State *L, int t, const char *name, const char *op, size_t *len) {
  const char *v = NULL;
  spapi_rawfield(L, t, name);
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "%s: '%s' must be a string", op, name);
    v = lua_tolstring(L, -1, len);
  }
  lua_pop(L, 1); /* still anchored by the options table */
  return v;
}

static double opt_num(lua_State *L, int t, const char *name, const char *op, double dflt) {
  double v = dflt;
  spapi_rawfield(L, t, name);
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "%s: '%s' must be a number", op, name);
    v = (double)lua_tonumber(L, -1);
    if (!(v > 0)) luaL_error(L, "%s: '%s' must be positive", op, name);
  }
  lua_pop(L, 1);
  return v;
}

static int valid_header_name(const char *s, size_t n) {
  size_t i;
  if (n == 0) return 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 32 || c >= 127 || c == ':') return 0;
  }
  return 1;
}

static int has_crlf(const char *s, size_t n) {
  return n > 0 && (memchr(s, '\n', n) != NULL || memchr(s, '\r', n) != NULL);
}

/* b is lowercase */
static int same_name_ci(const char *a, const char *b, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
    if (c != b[i]) return 0;
  }
  return 1;
}

static void add_header_line(lua_State *L, reqopts *o, const char *op, int name_idx, int value_idx) {
  size_t nl, vl;
  const char *name, *val;
  int vt = lua_type(L, value_idx);
  if (lua_type(L, name_idx) != LUA_TSTRING) luaL_error(L, "%s: header names must be strings", op);
  name = lua_tolstring(L, name_idx, &nl);
  if (!valid_header_name(name, nl)) luaL_error(L, "%s: invalid header name '%s'", op, name);
  if (nl == 10 && same_name_ci(name, "user-agent", 10)) o->has_ua = 1;
  if (vt != LUA_TSTRING && vt != LUA_TNUMBER) luaL_error(L, "%s: header '%s' must have a string value", op, name);
  if (vt == LUA_TNUMBER) { /* convert a copy: never change a key of the table being traversed */
    lua_pushvalue(L, value_idx);
    value_idx = lua_gettop(L);
  }
  val = lua_tolstring(L, value_idx, &vl);
  if (has_crlf(val, vl)) luaL_error(L, "%s: header '%s' contains a line break", op, name);
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

/* Request option and result field names, kept as upvalues 2.. of the methods
 * (see new_class) so that reading an option or setting a field interns nothing. */
static const char *const OPT_NAMES[] = {"url", "method", "body", "accept_encoding", "timeout", "connect_timeout",
                                        "follow", "headers", "id", "status", "err", "kind", "curl_code", "json", NULL};
enum {
  OPT_URL, OPT_METHOD, OPT_BODY, OPT_AE, OPT_TIMEOUT, OPT_CTIMEOUT, OPT_FOLLOW, OPT_HEADERS,
  F_ID, F_STATUS, F_ERR, F_KIND, F_CODE, OPT_JSON, OPT_N
};
#define F_HEADERS OPT_HEADERS
#define F_BODY OPT_BODY

/* Pushes the name numbered which (a method's upvalue). */
#define push_opt_name(L, which) lua_pushvalue((L), lua_upvalueindex(2 + (which)))

/* The request fields read_opts reads, in the order it pushes them. */
static const int REQ_FIELDS[] = {OPT_METHOD, OPT_URL, OPT_BODY, OPT_AE, OPT_TIMEOUT, OPT_CTIMEOUT,
                                 OPT_FOLLOW, OPT_JSON, OPT_HEADERS};
enum { RF_METHOD, RF_URL, RF_BODY, RF_AE, RF_TIMEOUT, RF_CTIMEOUT, RF_FOLLOW, RF_JSON, RF_HEADERS, RF_N };

/* Reads the request table at index t (raw: metamethods are not consulted);
 * pushes one value (nil, or the userdata holding header lines that did not fit
 * on the C stack). Strings stay anchored by the table. */
static void read_opts(lua_State *L, int t, session *s, reqopts *o, const char *op) {
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

static void same_text(char *dst, size_t n, const char *src) {
  size_t l = strlen(src);
  if (l >= n) l = n - 1;
  memcpy(dst, src, l);
  dst[l] = 0;
}

/* Seconds → curl milliseconds: at least 1 (0 would mean "no timeout"), at most ~24 days. */
static long to_ms(double seconds) {
  double ms = seconds * 1000 + 0.5;
  if (ms < 1) return 1;
  if (ms > 2147483647.0) return 2147483647L;
  return (long)ms;
}

/* "METHOD URL" for messages. Built only when needed (an error, a multi request). */
static void req_desc(req *r, const char *method, const char *url, size_t url_len) {
  spapi_buf_reset(&r->desc);
  if (!spapi_buf_addstr(&r->desc, method) || !spapi_buf_addc(&r->desc, ' ') ||
      !spapi_buf_add(&r->desc, url, url_len) || !spapi_buf_addc(&r->desc, '\0'))
    spapi_buf_reset(&r->desc);
}

/* Sets the header list, reusing the handle's current one when the lines are the same. */
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

/* Configures a pooled easy handle. No Lua calls. Returns 0 on success. */
static int req_setup(req *r, const reqopts *o) {
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

static const char *error_kind(CURLcode rc) {
  switch (rc) {
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

static void count_stats(session *s, req *r) {
  long nc = 0;
  curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &nc);
  s->requests += 1;
  s->connects += (lua_Number)nc;
  if (r->rc == CURLE_OK && nc == 0) s->reused += 1;
}

/* Error message without header values: "<what>: METHOD URL". */
static void push_error_message(lua_State *L, req *r) {
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

/* Pushes a table of response headers (lowercase name → value, repeats joined with ", "). */
/* Pushes the lowercase header name p[0..nl) (0 < nl < 256). cache: stack index of
 * the session's name table, or 0. A name's slot is one of NAME_WAYS after its hash.
 * Returns the slot that now holds the name, or -1. */
static int push_name(lua_State *L, session *s, int cache, const char *p, size_t nl) {
  char name[256], *w;
  size_t i;
  unsigned slot = 0, k;
  if (cache) {
    unsigned h = (unsigned)(nl * 31u + (unsigned char)p[0] * 7u + (unsigned char)p[nl / 2] * 3u + (unsigned char)p[nl - 1]);
    for (k = 0; k < NAME_WAYS; k++) {
      hname *e = &s->names[(h + k) & (NAME_SLOTS - 1)];
      if (e->len == nl && memcmp(e->raw, p, nl) == 0) {
        lua_rawgeti(L, cache, (int)((h + k) & (NAME_SLOTS - 1)) + 1);
        return (int)((h + k) & (NAME_SLOTS - 1));
      }
    }
    slot = h & (NAME_SLOTS - 1); /* replaced unless one of the slots is free */
    for (k = 0; k < NAME_WAYS; k++)
      if (s->names[(h + k) & (NAME_SLOTS - 1)].len == 0) {
        slot = (h + k) & (NAME_SLOTS - 1);
        break;
      }
  }
  /* lowercased in name[], or in scratch memory (a userdata) when longer */
  w = nl <= sizeof(name) ? name : spapi_scratch(L, nl);
  for (i = 0; i < nl; i++) w[i] = (p[i] >= 'A' && p[i] <= 'Z') ? (char)(p[i] + 32) : p[i];
  lua_pushlstring(L, w, nl);
  if (w != name) lua_remove(L, -2);
  if (cache && nl <= NAME_LEN) {
    hname *e = &s->names[slot];
    lua_pushvalue(L, -1);
    lua_rawseti(L, cache, (int)slot + 1); /* the array part is preallocated: cannot raise */
    e->len = (unsigned char)nl;
    memcpy(e->raw, p, nl);
    return (int)slot;
  }
  return -1;
}

/* Pushes the value v[0..vl), reusing the string last seen in the name's slot when
 * the bytes are the same (values live at NAME_SLOTS + slot + 1 in the cache). */
static void push_value(lua_State *L, session *s, int cache, int slot, const char *v, size_t vl) {
  hname *e;
  if (slot < 0) {
    lua_pushlstring(L, v, vl);
    return;
  }
  e = &s->names[slot];
  if (e->has_value && e->value_len == vl && memcmp(e->value, v, vl) == 0) {
    lua_rawgeti(L, cache, NAME_SLOTS + slot + 1);
    return;
  }
  lua_pushlstring(L, v, vl);
  if (vl <= VALUE_LEN) {
    lua_pushvalue(L, -1);
    lua_rawseti(L, cache, NAME_SLOTS + slot + 1); /* preallocated too */
    e->has_value = 1;
    e->value_len = (unsigned char)vl;
    memcpy(e->value, v, vl);
  }
}

/* The next header line of [*pp, end) ("Name: value", not the status line): sets
 * name/nl and the trimmed value v/vl, advances *pp; 0 at the end. */
static int next_header(const char **pp, const char *end, const char **name, size_t *nl, const char **v,
                       size_t *vl) {
  const char *p = *pp;
  while (p < end) {
    const char *eol = (const char *)memchr(p, '\n', (size_t)(end - p)), *colon, *ve;
    if (eol == NULL) eol = end;
    colon = (const char *)memchr(p, ':', (size_t)(eol - p));
    if (colon != NULL && colon > p && !(eol - p >= 5 && memcmp(p, "HTTP/", 5) == 0)) {
      const char *vs = colon + 1;
      ve = eol;
      while (vs < ve && (*vs == ' ' || *vs == '\t')) vs++;
      while (ve > vs && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
      *name = p;
      *nl = (size_t)(colon - p);
      *v = vs;
      *vl = (size_t)(ve - vs);
      *pp = eol + 1;
      return 1;
    }
    p = eol + 1;
  }
  *pp = end;
  return 0;
}

/* Pushes the table of the header block p[0..len) of n lines (lowercase name →
 * value, repeats joined with ", "); s (or NULL) lends its name cache and headers_mt. */
static void push_header_table(lua_State *L, session *s, const char *p, size_t len, int n) {
  const char *end = p ? p + len : NULL, *name, *v;
  size_t nl, vl;
  uint64_t seen = 0; /* names pushed so far, by a 6-bit hash: look up only on a hit */
  int t, cache = 0;
  lua_createtable(L, 0, n > 2 ? n - 2 : 0); /* less the status line and the blank line */
  t = lua_gettop(L);
  if (s != NULL && s->hmt_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->hmt_ref);
    lua_setmetatable(L, t);
  }
  if (s != NULL && s->names_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->names_ref);
    cache = t + 1;
  }
  while (p && next_header(&p, end, &name, &nl, &v, &vl)) {
    /* case-folded (| 0x20) so that names differing only in case share a bit */
    unsigned bit = (unsigned)(nl * 7u + ((unsigned char)name[0] | 0x20u) * 3u +
                              ((unsigned char)name[nl - 1] | 0x20u)) & 63u;
    int slot = push_name(L, s, cache, name, nl);
    if (!(seen & ((uint64_t)1 << bit))) {
      seen |= (uint64_t)1 << bit;
      push_value(L, s, cache, slot, v, vl);
    } else {
      lua_pushvalue(L, -1);
      lua_rawget(L, t);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushlstring(L, v, vl);
      } else {
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, vl);
        lua_concat(L, 3);
      }
    }
    lua_rawset(L, t);
  }
  if (cache) lua_pop(L, 1);
}

/* The response's headers as the session returns them: a table, or the raw block. */
static void push_headers(lua_State *L, session *s, req *r) {
  if (s != NULL && s->header_block) lua_pushlstring(L, r->rhdr.p ? r->rhdr.p : "", r->rhdr.len);
  else push_header_table(L, s, r->rhdr.p, r->rhdr.len, r->nrhdr);
}

/* core.header(block, name) → value | nil: one header of a raw block, any case,
 * repeats joined with ", " (as in the tables). */
static int l_header(lua_State *L) {
  size_t len, want, nl, vl, firstl = 0;
  const char *p = luaL_checklstring(L, 1, &len), *end = p + len;
  const char *name = luaL_checklstring(L, 2, &want), *hn, *v, *first = NULL;
  int count = 0;
  luaL_Buffer b;
  while (next_header(&p, end, &hn, &nl, &v, &vl)) {
    if (nl != want || !spapi_same_ci(hn, name, nl)) continue;
    if (count == 0) {
      first = v;
      firstl = vl;
    } else {
      if (count == 1) {
        luaL_buffinit(L, &b);
        luaL_addlstring(&b, first, firstl);
      }
      luaL_addlstring(&b, ", ", 2);
      luaL_addlstring(&b, v, vl);
    }
    count++;
  }
  if (count == 0) lua_pushnil(L);
  else if (count == 1) lua_pushlstring(L, first, firstl);
  else luaL_pushresult(&b);
  return 1;
}

/* core.parse_headers(block [, mt]) → the table a session without header_block
 * returns (lowercase names, repeats joined), with metatable mt if given. */
static int l_parse_headers(lua_State *L) {
  size_t len;
  const char *p = luaL_checklstring(L, 1, &len), *q = p, *end = p + len;
  int n = 0;
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2); /* the table goes to slot 3 (slot 2: the metatable or nil) */
  while (q < end && (q = (const char *)memchr(q, '\n', (size_t)(end - q))) != NULL) {
    n++;
    q++;
  }
  push_header_table(L, NULL, p, len, n + 1);
  if (!lua_isnoneornil(L, 2)) {
    lua_pushvalue(L, 2);
    lua_setmetatable(L, -2);
  }
  return 1;
}

/* --- session ----------------------------------------------------------------- */

static session *check_session(lua_State *L, int i) {
  return (session *)luaL_checkudata(L, i, SESSION_MT);
}

/* For methods: argument 1 checked against the metatable in upvalue 1 (cheaper
 * than luaL_checkudata's registry lookup); NULL if it is not one. */
static void *method_self(lua_State *L) {
  void *p = lua_touserdata(L, 1);
  if (p != NULL && lua_getmetatable(L, 1)) {
    int same = lua_rawequal(L, -1, lua_upvalueindex(1));
    lua_pop(L, 1);
    if (same) return p;
  }
  return NULL;
}

static session *open_session(lua_State *L, int i, const char *op) {
  session *s = (i == 1 ? (session *)method_self(L) : NULL);
  if (s == NULL) s = check_session(L, i);
  if (s->closed) luaL_error(L, "%s: the session is closed", op);
  return s;
}

/* Once closed and nothing uses the share (no multi, no request in progress:
 * libcurl refuses to free a share an easy handle still holds). The session's
 * strings stay until __gc: a finalizer may close the session while a request
 * is reading its options, which still reads the User-Agent line. */
static void session_free_share(session *s) {
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
    for (i = 0; i < s->npool; i++) req_free(s->pool[i]);
    s->npool = 0;
    if (s->names_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, s->names_ref);
    s->names_ref = LUA_NOREF; /* a multi still running pushes names without the cache */
    if (s->hmt_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, s->hmt_ref);
    s->hmt_ref = LUA_NOREF;
    if (s->json_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, s->json_ref);
    s->json_ref = LUA_NOREF;
  }
  session_free_share(s);
  return 0;
}

/* Unreachable: no request can be running, so every busy entry is a leftover. */
static int session_gc(lua_State *L) {
  session *s = check_session(L, 1);
  session_close(L);
  while (s->busy != NULL) {
    req *r = s->busy;
    s->busy = r->busy_next;
    req_free(r);
  }
  session_free_share(s);
  free(s->proxy);
  free(s->noproxy);
  free(s->cainfo);
  free(s->capath);
  free(s->user_agent);
  free(s->ua_line);
  s->proxy = s->noproxy = s->cainfo = s->capath = s->user_agent = s->ua_line = NULL;
  return 0;
}

static int dupopt(lua_State *L, int t, const char *name, char **dst) {
  const char *v = opt_str(L, t, name, "session", NULL);
  if (v == NULL) return 1;
  *dst = strdup(v);
  return *dst != NULL;
}

/* session option pick = { name, ... }: header names whose values request()
 * returns after the body (see session_request). */
static void read_pick(lua_State *L, int t, session *s) {
  int i, n;
  spapi_rawfield(L, t, "pick");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  if (!lua_istable(L, -1)) luaL_error(L, "session: 'pick' must be a list of header names");
  n = (int)lua_rawlen(L, -1);
  if (n > PICK_MAX) luaL_error(L, "session: 'pick' takes at most %d names", PICK_MAX);
  for (i = 0; i < n; i++) {
    size_t nl, k;
    const char *name;
    lua_rawgeti(L, -1, i + 1);
    name = lua_tolstring(L, -1, &nl);
    if (lua_type(L, -1) != LUA_TSTRING || nl >= PICK_LEN || !valid_header_name(name, nl))
      luaL_error(L, "session: 'pick' entry %d must be a header name shorter than %d bytes", i + 1, PICK_LEN);
    for (k = 0; k < nl; k++) s->pick[i][k] = (name[k] >= 'A' && name[k] <= 'Z') ? (char)(name[k] + 32) : name[k];
    s->pick_nl[i] = nl;
    for (k = 0; k < (size_t)i; k++)
      if (s->pick_nl[k] == nl && memcmp(s->pick[k], s->pick[i], nl) == 0)
        luaL_error(L, "session: 'pick' names '%s' twice", name);
    lua_pop(L, 1);
  }
  s->npick = n;
  lua_pop(L, 1);
}

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
  s->connect_timeout = opt_num(L, t, "connect_timeout", "session", 10.0);
  s->timeout = opt_num(L, t, "timeout", "session", 60.0);
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
    if (has_crlf(ua, n)) return luaL_error(L, "session: 'user_agent' contains a line break");
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
  read_pick(L, t, s);
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

static int push_failure(lua_State *L, req *r) {
  lua_pushnil(L);
  push_error_message(L, r);
  lua_pushstring(L, r->oom ? "other" : error_kind(r->rc));
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
    pool_give(s, stale);
  }
  if (s->busy == r) s->busy = r->busy_next;
  r->busy_next = NULL;
  pool_give(s, r);
  if (s->closed) session_free_share(s); /* closed by Lua code run inside this request */
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
  ok = spapi_json_decode_mem(L, -1, r->body.p, r->body.len);
  lua_remove(L, ok ? -2 : -1);
  return ok;
}

/* One request, the table at index 2 (see session_request). */
static int do_request(lua_State *L, session *s) {
  reqopts o;
  req *r;
  long status = 0;
  int i;
  read_opts(L, 2, s, &o, "request");
  /* reading the options allocates, and a finalizer run then may have closed the session */
  if (s->closed) return luaL_error(L, "request: the session is closed");
  r = pool_take(s);
  if (r == NULL) return luaL_error(L, "request: out of memory");
  busy_push(s, r);
  if (req_setup(r, &o) != 0) {
    busy_pop(s, r);
    return luaL_error(L, "request: cannot configure libcurl (out of memory?)");
  }
  r->rc = curl_easy_perform(r->easy);
  count_stats(s, r);
  if (r->rc != CURLE_OK || r->oom) {
    int n;
    req_desc(r, o.method, o.url, o.url_len);
    n = push_failure(L, r);
    busy_pop(s, r);
    return n;
  }
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  spapi_pushint(L, status);
  push_headers(L, s, r);
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
  return do_request(L, open_session(L, 1, "request"));
}

/* session:sender() → send(_, req): session:request as a function of two
 * arguments whose first is ignored, for a transport table's send method. */
static int session_send(lua_State *L) {
  session *s = (session *)lua_touserdata(L, lua_upvalueindex(2 + OPT_N));
  if (s->closed) return luaL_error(L, "request: the session is closed");
  return do_request(L, s);
}

/* Pushes a method's upvalues (the metatable and the names), for a closure made
 * by the method that reads options and fields as the methods do. */
static void push_method_upvalues(lua_State *L) {
  int i;
  luaL_checkstack(L, 2 + OPT_N, "spapi.core");
  for (i = 1; i <= 1 + OPT_N; i++) lua_pushvalue(L, lua_upvalueindex(i));
}

static int session_sender(lua_State *L) {
  open_session(L, 1, "sender");
  push_method_upvalues(L);
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

/* --- multi ------------------------------------------------------------------- */

static multi *check_multi(lua_State *L, int i) { return (multi *)luaL_checkudata(L, i, MULTI_MT); }

static multi *open_multi(lua_State *L, int i, const char *op) {
  multi *m = (i == 1 ? (multi *)method_self(L) : NULL);
  if (m == NULL) m = check_multi(L, i);
  if (m->closed) luaL_error(L, "%s: the multi is closed", op);
  return m;
}

static void multi_release(lua_State *L, multi *m) {
  req *r, *nx;
  for (r = m->inflight; r; r = nx) {
    nx = r->next;
    if (m->m) curl_multi_remove_handle(m->m, r->easy);
    if (m->s) pool_give(m->s, r);
    else req_free(r);
  }
  m->inflight = NULL;
  for (r = m->done; r; r = nx) {
    nx = r->next;
    if (m->s) pool_give(m->s, r);
    else req_free(r);
  }
  m->done = NULL;
  m->count = 0;
  if (m->m) curl_multi_cleanup(m->m);
  m->m = NULL;
  if (m->s) {
    m->s->nmulti--;
    if (m->s->closed) session_free_share(m->s);
    m->s = NULL;
  }
  if (m->sref != LUA_NOREF && m->sref != LUA_REFNIL) luaL_unref(L, LUA_REGISTRYINDEX, m->sref);
  m->sref = LUA_NOREF;
}

/* Closed from a finalizer while wait makes its results: wait releases it after. */
static int multi_close(lua_State *L) {
  multi *m = check_multi(L, 1);
  if (m->closed) return 0;
  m->closed = 1;
  if (m->waiting) m->close_pending = 1;
  else multi_release(L, m);
  return 0;
}

static int session_multi(lua_State *L) {
  session *s = open_session(L, 1, "multi");
  multi *m = (multi *)spapi_newuserdata(L, sizeof(multi));
  memset(m, 0, sizeof(*m));
  m->sref = LUA_NOREF;
  m->closed = 1; /* until fully set up, __gc has nothing to release */
  luaL_setmetatable(L, MULTI_MT);
  lua_pushvalue(L, 1);
  m->sref = luaL_ref(L, LUA_REGISTRYINDEX);
  m->m = curl_multi_init();
  m->s = s;
  s->nmulti++;
  m->closed = 0;
  if (m->m == NULL) return luaL_error(L, "multi: out of memory");
  if (s->max_host_connections > 0)
    curl_multi_setopt(m->m, CURLMOPT_MAX_HOST_CONNECTIONS, s->max_host_connections);
  m->next_id = 1;
  return 1;
}

static int multi_add(lua_State *L) {
  multi *m = open_multi(L, 1, "multi:add");
  session *s = m->s;
  reqopts o;
  req *r;
  if (s->closed) return luaL_error(L, "multi:add: the session is closed");
  read_opts(L, 2, s, &o, "multi:add");
  /* a finalizer run while the options were read may have closed either */
  if (m->closed) return luaL_error(L, "multi:add: the multi is closed");
  if (s->closed) return luaL_error(L, "multi:add: the session is closed");
  r = pool_take(s);
  if (r == NULL) return luaL_error(L, "multi:add: out of memory");
  if (req_setup(r, &o) != 0) {
    pool_give(s, r);
    return luaL_error(L, "multi:add: cannot configure libcurl (out of memory?)");
  }
  req_desc(r, o.method, o.url, o.url_len);
  r->id = m->next_id++;
  if (curl_multi_add_handle(m->m, r->easy) != CURLM_OK) {
    pool_give(s, r);
    return luaL_error(L, "multi:add: curl_multi_add_handle failed");
  }
  r->next = m->inflight;
  m->inflight = r;
  m->count++;
  spapi_pushint(L, r->id);
  return 1;
}

/* Move finished transfers from inflight to done. No Lua calls. */
static int harvest(multi *m) {
  CURLMsg *msg;
  int left, moved = 0;
  while ((msg = curl_multi_info_read(m->m, &left)) != NULL) {
    req **pp, *r;
    if (msg->msg != CURLMSG_DONE) continue;
    for (pp = &m->inflight; *pp; pp = &(*pp)->next)
      if ((*pp)->easy == msg->easy_handle) break;
    r = *pp;
    if (r == NULL) continue;
    r->rc = msg->data.result;
    *pp = r->next;
    curl_multi_remove_handle(m->m, r->easy);
    count_stats(m->s, r);
    r->next = m->done;
    m->done = r;
    m->count--;
    moved++;
  }
  return moved;
}

static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* wait's results, run protected by multi_wait: { id, status, headers, body } or
 * { id, err, kind, curl_code } per finished transfer, which goes back to the
 * pool once its table is made. Argument 1: the multi; upvalues: the methods'. */
static int wait_results(lua_State *L) {
  multi *m = (multi *)lua_touserdata(L, 1);
  int n = 0;
  {
    req *r;
    for (r = m->done; r != NULL; r = r->next) n++;
    lua_createtable(L, n, 0);
    n = 0;
  }
  while (m->done != NULL) {
    req *r = m->done;
    lua_createtable(L, 0, 4);
    push_opt_name(L, F_ID);
    spapi_pushint(L, r->id);
    lua_rawset(L, -3);
    if (r->rc != CURLE_OK || r->oom) {
      push_opt_name(L, F_ERR);
      push_error_message(L, r);
      lua_rawset(L, -3);
      push_opt_name(L, F_KIND);
      lua_pushstring(L, r->oom ? "other" : error_kind(r->rc));
      lua_rawset(L, -3);
      push_opt_name(L, F_CODE);
      spapi_pushint(L, (int)r->rc);
      lua_rawset(L, -3);
    } else {
      long status = 0;
      curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
      push_opt_name(L, F_STATUS);
      spapi_pushint(L, status);
      lua_rawset(L, -3);
      push_opt_name(L, F_HEADERS);
      push_headers(L, m->s, r);
      lua_rawset(L, -3);
      push_opt_name(L, F_BODY);
      lua_pushlstring(L, r->body.p ? r->body.p : "", r->body.len);
      lua_rawset(L, -3);
    }
    lua_rawseti(L, -2, ++n);
    m->done = r->next;
    pool_give(m->s, r);
  }
  return 1;
}

/* multi:wait([timeout]) → list of results. Making them allocates, and a
 * finalizer run then may close the multi (or call wait again): so they are made
 * under lua_pcall with the multi marked waiting, a close meanwhile is carried
 * out after, and a nested wait is refused. */
static int multi_wait(lua_State *L) {
  multi *m = open_multi(L, 1, "multi:wait");
  int forever = lua_isnoneornil(L, 2), rc;
  double timeout = forever ? 0 : (double)luaL_checknumber(L, 2);
  double deadline = mono() + (timeout > 0 ? timeout : 0);
  if (m->waiting) return luaL_error(L, "multi:wait: already waiting (called from a finalizer?)");
  lua_settop(L, 1);
  for (;;) {
    int running = 0;
    curl_multi_perform(m->m, &running);
    harvest(m);
    if (m->done != NULL || m->count == 0) break;
    {
      double left = forever ? 1.0 : deadline - mono();
      if (left <= 0) break;
      curl_multi_poll(m->m, NULL, 0, left >= 1.0 ? 1000 : (int)(left * 1000) + 1, NULL);
    }
  }
  push_method_upvalues(L);
  lua_pushcclosure(L, wait_results, 1 + OPT_N);
  lua_pushvalue(L, 1);
  m->waiting = 1;
  rc = lua_pcall(L, 1, 1, 0);
  m->waiting = 0;
  if (m->close_pending) {
    m->close_pending = 0;
    multi_release(L, m);
  }
  if (rc != 0) return lua_error(L);
  return 1;
}

static int multi_count(lua_State *L) {
  multi *m = check_multi(L, 1);
  spapi_pushint(L, m->count);
  return 1;
}

static int multi_tostring(lua_State *L) {
  multi *m = check_multi(L, 1);
  if (m->closed) lua_pushfstring(L, "spapi.Multi: %p (closed)", (void *)m);
  else lua_pushfstring(L, "spapi.Multi: %p (%d in flight)", (void *)m, m->count);
  return 1;
}

/* --- registration ------------------------------------------------------------ */

static const luaL_Reg session_methods[] = {
  {"request", session_request},
  {"sender", session_sender},
  {"multi", session_multi},
  {"stats", session_stats},
  {"close", session_close},
  {NULL, NULL},
};

static const luaL_Reg multi_methods[] = {
  {"add", multi_add},
  {"wait", multi_wait},
  {"count", multi_count},
  {"close", multi_close},
  {NULL, NULL},
};

static void new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc,
                      lua_CFunction close, lua_CFunction tostring) {
  if (luaL_newmetatable(L, name)) {
    lua_newtable(L);
    int i;
    lua_pushvalue(L, -2); /* methods get the metatable as upvalue 1 (see method_self) */
    for (i = 0; OPT_NAMES[i] != NULL; i++) lua_pushstring(L, OPT_NAMES[i]); /* and the option names */
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

static const luaL_Reg funcs[] = {
  {"session", l_session},
  {"header", l_header},
  {"parse_headers", l_parse_headers},
  {NULL, NULL},
};

void spapi_http_open(lua_State *L) {
  static int inited = 0;
  if (!inited) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    inited = 1;
  }
  new_class(L, SESSION_MT, session_methods, session_gc, session_close, session_tostring);
  new_class(L, MULTI_MT, multi_methods, multi_close, multi_close, multi_tostring);
  luaL_setfuncs(L, funcs, 0);
  {
    curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    lua_pushstring(L, v && v->version ? v->version : "unknown");
    lua_setfield(L, -2, "curl_version");
  }
}
