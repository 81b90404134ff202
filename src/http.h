/* What the libcurl files share (not exported):
 *   easy.c     one easy handle (req): its options from a Lua request table, its
 *              callbacks, its outcome as Lua values
 *   session.c  a session: one share handle (connections, DNS, TLS sessions) and
 *              a pool of easy handles; session:request performs one request
 *   multi.c    a multi handle running many requests over a session's share and pool
 *   headers.c  response header lines: picked values, header tables, core.header
 *
 * Rules kept by all of them: Lua values are read and checked before any curl
 * resource is taken (so a raise cannot leak one); libcurl callbacks only append
 * to C buffers owned by the request (no Lua calls inside libcurl); messages
 * never contain header values. */
#ifndef SPAPI_HTTP_H
#define SPAPI_HTTP_H

#include <string.h>
#include <curl/curl.h>
#include "spapi.h"

#define SESSION_MT "spapi.Session"
#define MULTI_MT "spapi.Multi"
#define POOL_MAX 64      /* idle easy handles a session keeps */
#define USER_AGENT "spapi/0.1 (Language=Lua)"
#define LINES_STACK 2048 /* request header lines kept on the C stack up to this size */
#define PICK_MAX 4       /* response headers a session can pick out (session option 'pick') */
#define PICK_LEN 64

/* One easy handle and what a request on it needs. Pooled by its session, so it
 * keeps the options last set on it and sets again only those that change. */
typedef struct req {
  CURL *easy;
  struct curl_slist *hdrs; /* set as CURLOPT_HTTPHEADER; kept while the handle is pooled */
  spapi_buf lines; /* the header lines hdrs was built from (NUL-terminated each) */
  /* option values last set on easy (0: unknown, i.e. set it) */
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

/* A slot of the session's cache of response header names as Lua strings, so a
 * name seen before is neither lowercased nor interned again (headers.c). */
#define NAME_SLOTS 64
#define NAME_LEN 47
#define NAME_WAYS 4
#define VALUE_LEN 62
typedef struct hname {
  unsigned char len;
  char raw[NAME_LEN];
  /* the last value seen in this slot, also kept as a Lua string (content type,
   * server, rate limit... repeat from response to response) */
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

/* Request header lines, each NUL-terminated: on the C stack while they fit
 * (nothing to free when a Lua error unwinds), else in a userdata-owned buffer
 * kept in a stack slot that spapi_req_read reserves. */
typedef struct lines {
  char *p;
  size_t len, cap;
  spapi_buf *heap;
  int slot;
  char stack[LINES_STACK];
} lines;

/* Request options read from Lua (strings anchored on the Lua stack). */
typedef struct reqopts {
  const char *method, *url, *body, *accept_encoding;
  size_t body_len, url_len;
  double timeout, connect_timeout;
  int follow, has_body, has_ua, json;
  lines hl; /* header lines */
} reqopts;

/* Request option and result field names, upvalues 2.. of the session's and the
 * multi's methods (see spapi_http_class), so reading an option or setting a
 * field makes no new string. */
enum {
  OPT_URL, OPT_METHOD, OPT_BODY, OPT_AE, OPT_TIMEOUT, OPT_CTIMEOUT, OPT_FOLLOW, OPT_HEADERS,
  F_ID, F_STATUS, F_ERR, F_KIND, F_CODE, OPT_JSON, OPT_N
};
#define F_HEADERS OPT_HEADERS
#define F_BODY OPT_BODY

/* Pushes the name numbered which (inside a method, or a closure given its upvalues). */
#define push_opt_name(L, which) lua_pushvalue((L), lua_upvalueindex(2 + (which)))

/* 1 when s[0..n) can be a header name (visible ASCII, no ':'). */
static inline int spapi_header_name_ok(const char *s, size_t n) {
  size_t i;
  if (n == 0) return 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 32 || c >= 127 || c == ':') return 0;
  }
  return 1;
}

static inline int spapi_has_crlf(const char *s, size_t n) {
  return n > 0 && (memchr(s, '\n', n) != NULL || memchr(s, '\r', n) != NULL);
}

/* spapi_buf_add, with the common case (it fits) inline: libcurl's callbacks
 * append every header line and body chunk with it. */
static inline int spapi_buf_append(spapi_buf *b, const char *s, size_t n) {
  if (b->p != NULL && n <= b->cap - b->len) {
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 1;
  }
  return spapi_buf_add(b, s, n);
}

/* easy.c */
SPAPI_HIDDEN req *spapi_req_new(session *s);  /* NULL when out of memory */
SPAPI_HIDDEN void spapi_req_free(req *r);     /* NULL is fine */
SPAPI_HIDDEN void spapi_req_read(lua_State *L, int t, session *s, reqopts *o, const char *op);
SPAPI_HIDDEN int spapi_req_setup(req *r, const reqopts *o);
SPAPI_HIDDEN void spapi_req_desc(req *r, const char *method, const char *url, size_t url_len);
SPAPI_HIDDEN int spapi_req_failed(const req *r);
SPAPI_HIDDEN const char *spapi_req_kind(const req *r);
SPAPI_HIDDEN void spapi_req_push_error(lua_State *L, const req *r);
SPAPI_HIDDEN void spapi_http_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc,
                                   lua_CFunction close, lua_CFunction tostring);
SPAPI_HIDDEN void *spapi_http_self(lua_State *L);
SPAPI_HIDDEN void spapi_http_push_upvalues(lua_State *L);

/* session.c */
SPAPI_HIDDEN session *spapi_session_open_arg(lua_State *L, int i, const char *op);
SPAPI_HIDDEN req *spapi_pool_take(session *s);
SPAPI_HIDDEN void spapi_pool_give(session *s, req *r);
SPAPI_HIDDEN void spapi_session_count(session *s, req *r);
SPAPI_HIDDEN void spapi_session_free_share(session *s);

/* multi.c */
SPAPI_HIDDEN int spapi_multi_new(lua_State *L); /* session:multi() */

/* headers.c */
SPAPI_HIDDEN size_t spapi_on_header(char *ptr, size_t size, size_t nmemb, void *ud);
SPAPI_HIDDEN void spapi_read_pick(lua_State *L, int t, session *s);
SPAPI_HIDDEN void spapi_push_headers(lua_State *L, session *s, req *r);

#endif
