/* AWS Signature Version 4 (non-S3 services): a pure function from a request
 * description to the headers to add. Follows AWS's published test suite:
 * path normalised and each segment URI-encoded (again, for already-encoded
 * input), query decoded then RFC 3986-encoded and sorted, header names
 * lowercased, values trimmed with inner whitespace runs collapsed, duplicate
 * headers joined with ",", signed headers sorted. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "spapi.h"

typedef struct kv {
  const char *k, *v;
  size_t kl, vl;
} kv;

enum { A_ARGS = 1, A_HDRS, A_ANCHOR, A_CREQ, A_TMP, A_TOP = A_TMP };

static const char HEXL[] = "0123456789abcdef";

static void hexify(const unsigned char *in, size_t n, char *out) {
  size_t i;
  for (i = 0; i < n; i++) {
    out[2 * i] = HEXL[in[i] >> 4];
    out[2 * i + 1] = HEXL[in[i] & 15];
  }
  out[2 * n] = 0;
}

static void sha256_hex(const char *s, size_t n, char out[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int ml = 0;
  EVP_Digest(s, n, md, &ml, EVP_sha256(), NULL);
  hexify(md, 32, out);
}

static void hmac(const void *k, size_t kl, const char *m, size_t ml, unsigned char out[32]) {
  unsigned int ol = 0;
  HMAC(EVP_sha256(), k, (int)kl, (const unsigned char *)m, ml, out, &ol);
}

static const char *field(lua_State *L, const char *op, const char *name, int required, size_t *len) {
  const char *v;
  size_t l = 0;
  spapi_rawfield(L, A_ARGS, name);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    if (required) luaL_error(L, "%s: '%s' is required", op, name);
    if (len) *len = 0;
    return NULL;
  }
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "%s: '%s' must be a string", op, name);
  v = lua_tolstring(L, -1, &l);
  lua_rawseti(L, A_ANCHOR, (int)lua_rawlen(L, A_ANCHOR) + 1); /* keep it alive */
  if (len) *len = l;
  return v;
}

static void oom(lua_State *L, const char *op) { luaL_error(L, "%s: out of memory", op); }

/* Canonical header value: each line trimmed, inner whitespace runs collapsed to
 * one space, lines (obs-fold continuation) joined with ",". */
static int canon_value(spapi_buf *b, const char *s, size_t n) {
  size_t i = 0;
  int first_line = 1;
  while (i <= n) {
    size_t e = i, a, z;
    int space = 0, any = 0;
    while (e < n && s[e] != '\n') e++;
    a = i;
    z = e;
    while (a < z && (s[a] == ' ' || s[a] == '\t' || s[a] == '\r')) a++;
    while (z > a && (s[z - 1] == ' ' || s[z - 1] == '\t' || s[z - 1] == '\r')) z--;
    if (a < z) {
      if (!first_line && !spapi_buf_addc(b, ',')) return 0;
      for (; a < z; a++) {
        char c = s[a];
        if (c == ' ' || c == '\t' || c == '\r') {
          space = 1;
          continue;
        }
        if (space && any && !spapi_buf_addc(b, ' ')) return 0;
        space = 0;
        any = 1;
        if (!spapi_buf_addc(b, c)) return 0;
      }
      first_line = 0;
    }
    i = e + 1;
  }
  return 1;
}

/* Add (name, value) to the canonical header table, lowercasing the name and
 * joining duplicates with ",". */
static void add_header(lua_State *L, const char *op, const char *name, size_t nl, const char *val, size_t vl) {
  spapi_buf *tmp = (spapi_buf *)lua_touserdata(L, A_TMP);
  size_t i;
  char *lname = spapi_scratch(L, nl);
  for (i = 0; i < nl; i++) lname[i] = spapi_lower(name[i]);
  lua_pushlstring(L, lname, nl);
  lua_remove(L, -2);
  spapi_buf_reset(tmp);
  if (!canon_value(tmp, val, vl)) oom(L, op);
  lua_pushvalue(L, -1);
  lua_rawget(L, A_HDRS);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushlstring(L, tmp->p ? tmp->p : "", tmp->len);
  } else {
    lua_pushliteral(L, ",");
    lua_pushlstring(L, tmp->p ? tmp->p : "", tmp->len);
    lua_concat(L, 3);
  }
  lua_rawset(L, A_HDRS);
}

static int skip_header(const char *name, size_t nl, int own_sha) {
  static const char *const skip[] = {"authorization", "x-amz-date", NULL};
  int i;
  for (i = 0; skip[i]; i++)
    if (strlen(skip[i]) == nl && spapi_same_ci(name, skip[i], nl)) return 1;
  if (own_sha && nl == 20 && spapi_same_ci(name, "x-amz-content-sha256", nl)) return 1;
  return 0;
}

static void push_header_value(lua_State *L, const char *op, int idx, const char *name) {
  int t = lua_type(L, idx);
  if (t != LUA_TSTRING && t != LUA_TNUMBER) luaL_error(L, "%s: header '%s' must have a string value", op, name);
}

static void collect_headers(lua_State *L, const char *op, int own_sha, int *have_host) {
  spapi_rawfield(L, A_ARGS, "headers");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  if (!lua_istable(L, -1)) luaL_error(L, "%s: 'headers' must be a table", op);
  {
    int h = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, h) != 0) {
      /* key at -2, value at -1 */
      size_t nl, vl;
      const char *name, *val;
      if (lua_type(L, -2) == LUA_TNUMBER) {
        /* list form: { {name, value}, ... } */
        if (!lua_istable(L, -1)) luaL_error(L, "%s: header list entries must be {name, value}", op);
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "%s: header name must be a string", op);
        name = lua_tolstring(L, -2, &nl);
        push_header_value(L, op, -1, name);
        val = lua_tolstring(L, -1, &vl);
        if (!skip_header(name, nl, own_sha)) {
          if (nl == 4 && spapi_same_ci(name, "host", 4)) *have_host = 1;
          add_header(L, op, name, nl, val, vl);
        }
        lua_pop(L, 2);
      } else if (lua_type(L, -2) == LUA_TSTRING) {
        name = lua_tolstring(L, -2, &nl);
        if (!skip_header(name, nl, own_sha)) {
          if (nl == 4 && spapi_same_ci(name, "host", 4)) *have_host = 1;
          if (lua_istable(L, -1)) { /* several values for one name */
            int i, n = (int)lua_rawlen(L, -1);
            for (i = 1; i <= n; i++) {
              lua_rawgeti(L, -1, i);
              push_header_value(L, op, -1, name);
              val = lua_tolstring(L, -1, &vl);
              add_header(L, op, name, nl, val, vl);
              lua_pop(L, 1);
            }
          } else {
            push_header_value(L, op, -1, name);
            lua_pushvalue(L, -1);
            val = lua_tolstring(L, -1, &vl);
            add_header(L, op, name, nl, val, vl);
            lua_pop(L, 1);
          }
        }
      } else {
        luaL_error(L, "%s: header names must be strings", op);
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
}

static int hexv(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* percent-decode s into b ('+' stays '+') */
static int pdecode(spapi_buf *b, const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n + 0 && hexv((unsigned char)s[i + 1]) >= 0 && hexv((unsigned char)s[i + 2]) >= 0) {
      if (!spapi_buf_addc(b, (char)(hexv((unsigned char)s[i + 1]) * 16 + hexv((unsigned char)s[i + 2])))) return 0;
      i += 2;
    } else if (!spapi_buf_addc(b, s[i])) {
      return 0;
    }
  }
  return 1;
}

static int kv_cmp(const void *a, const void *b) {
  const kv *x = (const kv *)a, *y = (const kv *)b;
  size_t n = x->kl < y->kl ? x->kl : y->kl;
  int c = memcmp(x->k, y->k, n);
  if (c != 0) return c;
  if (x->kl != y->kl) return x->kl < y->kl ? -1 : 1;
  n = x->vl < y->vl ? x->vl : y->vl;
  c = memcmp(x->v, y->v, n);
  if (c != 0) return c;
  if (x->vl != y->vl) return x->vl < y->vl ? -1 : 1;
  return 0;
}

/* Encoded (key, value) pair pushed as two strings anchored in A_ANCHOR. */
static const char *anchor(lua_State *L, const char *s, size_t n, size_t *out_len) {
  const char *r;
  lua_pushlstring(L, s, n);
  r = lua_tolstring(L, -1, out_len);
  lua_rawseti(L, A_ANCHOR, (int)lua_rawlen(L, A_ANCHOR) + 1);
  return r;
}

static void canonical_query(lua_State *L, const char *op, spapi_buf *out, const char *q, size_t qn) {
  spapi_buf *tmp = (spapi_buf *)lua_touserdata(L, A_TMP);
  spapi_buf *enc;
  size_t count = 1, i, np = 0, start = 0;
  kv *pairs;
  for (i = 0; i < qn; i++)
    if (q[i] == '&') count++;
  pairs = (kv *)spapi_scratch(L, count * sizeof(kv)); /* anchored by the stack */
  enc = spapi_buf_push(L);
  for (i = 0; i <= qn; i++) {
    if (i == qn || q[i] == '&') {
      const char *part = q + start;
      size_t pl = i - start, eq = 0;
      start = i + 1;
      if (pl == 0) continue;
      while (eq < pl && part[eq] != '=') eq++;
      /* key */
      spapi_buf_reset(tmp);
      spapi_buf_reset(enc);
      if (!pdecode(tmp, part, eq) || !spapi_urlencode_buf(enc, tmp->p ? tmp->p : "", tmp->len)) oom(L, op);
      pairs[np].k = anchor(L, enc->p ? enc->p : "", enc->len, &pairs[np].kl);
      /* value */
      spapi_buf_reset(tmp);
      spapi_buf_reset(enc);
      if (eq < pl && !pdecode(tmp, part + eq + 1, pl - eq - 1)) oom(L, op);
      if (!spapi_urlencode_buf(enc, tmp->p ? tmp->p : "", tmp->len)) oom(L, op);
      pairs[np].v = anchor(L, enc->p ? enc->p : "", enc->len, &pairs[np].vl);
      np++;
    }
  }
  qsort(pairs, np, sizeof(kv), kv_cmp);
  for (i = 0; i < np; i++) {
    if ((i > 0 && !spapi_buf_addc(out, '&')) || !spapi_buf_add(out, pairs[i].k, pairs[i].kl) ||
        !spapi_buf_addc(out, '=') || !spapi_buf_add(out, pairs[i].v, pairs[i].vl))
      oom(L, op);
  }
  spapi_buf_free(enc);
  lua_pop(L, 2); /* enc, pairs */
}

/* Normalised path (dot segments removed, empty segments collapsed), each
 * segment RFC 3986-encoded. */
static void canonical_path(lua_State *L, const char *op, spapi_buf *out, const char *p, size_t pn) {
  size_t i = 0, nseg = 0, cap = 1;
  kv *segs;
  int trailing = 0;
  for (i = 0; i < pn; i++)
    if (p[i] == '/') cap++;
  segs = (kv *)spapi_scratch(L, cap * sizeof(kv));
  i = 0;
  while (i < pn) {
    size_t s, e;
    while (i < pn && p[i] == '/') i++;
    s = i;
    while (i < pn && p[i] != '/') i++;
    e = i;
    trailing = (e == pn) ? 0 : 1; /* a slash follows this segment */
    if (e == s) {
      trailing = 1;
      continue;
    }
    if (e - s == 1 && p[s] == '.') {
      trailing = 1;
      continue;
    }
    if (e - s == 2 && p[s] == '.' && p[s + 1] == '.') {
      if (nseg > 0) nseg--;
      trailing = 1;
      continue;
    }
    segs[nseg].k = p + s;
    segs[nseg].kl = e - s;
    nseg++;
  }
  if (!spapi_buf_addc(out, '/')) oom(L, op);
  for (i = 0; i < nseg; i++) {
    if ((i > 0 && !spapi_buf_addc(out, '/')) || !spapi_urlencode_buf(out, segs[i].k, segs[i].kl)) oom(L, op);
  }
  if (nseg > 0 && trailing && !spapi_buf_addc(out, '/')) oom(L, op);
  lua_pop(L, 1);
}

typedef struct signing {
  char amzdate[17], date[9];
  char payload_hash[65];
  const char *access_key, *secret_key, *region, *service, *token;
  size_t secret_len;
  int content_sha;
  const char *signed_headers; /* anchored */
  size_t signed_len;
} signing;

/* Builds the canonical request into the A_CREQ buffer and fills sg. */
static void build(lua_State *L, const char *op, signing *sg, int need_keys) {
  size_t ml, ul, bl, i, nnames = 0;
  const char *method, *url, *body, *a, *auth_end, *path, *q = NULL, *host_s, *host_e, *port_s = NULL;
  size_t pn, qn = 0;
  time_t t;
  struct tm tm;
  spapi_buf *creq, *tmp;
  int have_host = 0;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_newtable(L); /* A_HDRS */
  lua_newtable(L); /* A_ANCHOR */
  creq = spapi_buf_push(L);
  tmp = spapi_buf_push(L);
  (void)tmp;

  method = field(L, op, "method", 1, &ml);
  url = field(L, op, "url", 1, &ul);
  sg->region = field(L, op, "region", 1, NULL);
  sg->service = field(L, op, "service", 1, NULL);
  sg->access_key = field(L, op, "access_key", need_keys, NULL);
  sg->secret_key = field(L, op, "secret_key", need_keys, &sg->secret_len);
  sg->token = field(L, op, "session_token", 0, NULL);
  body = field(L, op, "body", 0, &bl);
  spapi_rawfield(L, A_ARGS, "content_sha256");
  sg->content_sha = lua_toboolean(L, -1);
  lua_pop(L, 1);
  spapi_rawfield(L, A_ARGS, "time");
  if (lua_isnil(L, -1)) {
    t = time(NULL);
  } else {
    if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "%s: 'time' must be a number (Unix seconds)", op);
    double secs = floor((double)lua_tonumber(L, -1));
    /* (a double beyond time_t's range, or NaN, would not convert) */
    if (!(secs >= -1e14 && secs <= 1e14)) luaL_error(L, "%s: 'time' out of range", op);
    t = (time_t)secs;
  }
  lua_pop(L, 1);
  /* x-amz-date has a four-digit year: 0000..9999 */
  if (gmtime_r(&t, &tm) == NULL || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900 ||
      strftime(sg->amzdate, sizeof(sg->amzdate), "%Y%m%dT%H%M%SZ", &tm) != 16)
    luaL_error(L, "%s: 'time' out of range", op);
  memcpy(sg->date, sg->amzdate, 8);
  sg->date[8] = 0;
  sha256_hex(body ? body : "", body ? bl : 0, sg->payload_hash);

  /* URL: scheme://[userinfo@]host[:port][/path][?query][#fragment] */
  a = strstr(url, "://");
  if (a == NULL) luaL_error(L, "%s: 'url' must be absolute (scheme://host/path)", op);
  a += 3;
  auth_end = a;
  while (*auth_end && *auth_end != '/' && *auth_end != '?' && *auth_end != '#') auth_end++;
  host_s = a;
  for (i = 0; a + i < auth_end; i++)
    if (a[i] == '@') host_s = a + i + 1;
  host_e = auth_end;
  if (*host_s == '[') {
    const char *rb = host_s;
    while (rb < auth_end && *rb != ']') rb++;
    if (rb < auth_end && rb[1] == ':') { port_s = rb + 2; host_e = rb + 1; }
  } else {
    const char *c;
    for (c = host_s; c < auth_end; c++)
      if (*c == ':') { port_s = c + 1; host_e = c; break; }
  }
  if (host_e == host_s) luaL_error(L, "%s: 'url' has no host", op);
  path = auth_end;
  pn = 0;
  while (path[pn] && path[pn] != '?' && path[pn] != '#') pn++;
  if (path[pn] == '?') {
    q = path + pn + 1;
    while (q[qn] && q[qn] != '#') qn++;
  }

  /* headers */
  collect_headers(L, op, sg->content_sha, &have_host);
  if (!have_host) {
    size_t scheme_len = (size_t)(strstr(url, "://") - url);
    int dflt = 0;
    lua_pushlstring(L, host_s, (size_t)(host_e - host_s));
    if (port_s != NULL && port_s < auth_end) {
      size_t portl = (size_t)(auth_end - port_s);
      if ((scheme_len == 5 && spapi_same_ci(url, "https", 5) && portl == 3 && memcmp(port_s, "443", 3) == 0) ||
          (scheme_len == 4 && spapi_same_ci(url, "http", 4) && portl == 2 && memcmp(port_s, "80", 2) == 0))
        dflt = 1;
      if (!dflt) {
        lua_pushliteral(L, ":");
        lua_pushlstring(L, port_s, portl);
        lua_concat(L, 3);
      }
    }
    {
      size_t hl;
      const char *hv = lua_tolstring(L, -1, &hl);
      char *low = spapi_scratch(L, hl);
      for (i = 0; i < hl; i++) low[i] = spapi_lower(hv[i]);
      lua_pushlstring(L, low, hl);
      lua_setfield(L, A_HDRS, "host");
      lua_pop(L, 2);
    }
  }
  lua_pushstring(L, sg->amzdate);
  lua_setfield(L, A_HDRS, "x-amz-date");
  if (sg->token) {
    lua_pushstring(L, sg->token);
    lua_setfield(L, A_HDRS, "x-amz-security-token");
  }
  if (sg->content_sha) {
    lua_pushstring(L, sg->payload_hash);
    lua_setfield(L, A_HDRS, "x-amz-content-sha256");
  }

  /* canonical request */
  for (i = 0; i < ml; i++) {
    char c = method[i];
    if (!spapi_buf_addc(creq, (c >= 'a' && c <= 'z') ? (char)(c - 32) : c)) oom(L, op);
  }
  if (!spapi_buf_addc(creq, '\n')) oom(L, op);
  canonical_path(L, op, creq, path, pn);
  if (!spapi_buf_addc(creq, '\n')) oom(L, op);
  if (q) canonical_query(L, op, creq, q, qn);
  if (!spapi_buf_addc(creq, '\n')) oom(L, op);
  {
    kv *names;
    spapi_buf *sh;
    lua_pushnil(L);
    while (lua_next(L, A_HDRS) != 0) {
      nnames++;
      lua_pop(L, 1);
    }
    names = (kv *)spapi_scratch(L, (nnames ? nnames : 1) * sizeof(kv));
    nnames = 0;
    lua_pushnil(L);
    while (lua_next(L, A_HDRS) != 0) {
      names[nnames].k = lua_tolstring(L, -2, &names[nnames].kl); /* anchored by A_HDRS */
      names[nnames].v = lua_tolstring(L, -1, &names[nnames].vl);
      nnames++;
      lua_pop(L, 1);
    }
    qsort(names, nnames, sizeof(kv), kv_cmp);
    sh = spapi_buf_push(L);
    for (i = 0; i < nnames; i++) {
      if (!spapi_buf_add(creq, names[i].k, names[i].kl) || !spapi_buf_addc(creq, ':') ||
          !spapi_buf_add(creq, names[i].v, names[i].vl) || !spapi_buf_addc(creq, '\n') ||
          (i > 0 && !spapi_buf_addc(sh, ';')) || !spapi_buf_add(sh, names[i].k, names[i].kl))
        oom(L, op);
    }
    if (!spapi_buf_addc(creq, '\n') || !spapi_buf_add(creq, sh->p ? sh->p : "", sh->len) ||
        !spapi_buf_addc(creq, '\n') || !spapi_buf_add(creq, sg->payload_hash, 64))
      oom(L, op);
    sg->signed_headers = anchor(L, sh->p ? sh->p : "", sh->len, &sg->signed_len);
    spapi_buf_free(sh);
    lua_pop(L, 2); /* sh, names */
  }
}

/* Pushes the string to sign. */
static void push_sts(lua_State *L, signing *sg) {
  spapi_buf *creq = (spapi_buf *)lua_touserdata(L, A_CREQ);
  char h[65];
  sha256_hex(creq->p, creq->len, h);
  lua_pushfstring(L, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", sg->amzdate, sg->date, sg->region,
                  sg->service, h);
}

static int l_sigv4_canonical(lua_State *L) {
  signing sg;
  spapi_buf *creq;
  memset(&sg, 0, sizeof(sg));
  build(L, "sigv4_canonical", &sg, 0);
  creq = (spapi_buf *)lua_touserdata(L, A_CREQ);
  lua_pushlstring(L, creq->p, creq->len);
  push_sts(L, &sg);
  return 2;
}

static int l_sigv4_sign(lua_State *L) {
  signing sg;
  unsigned char k1[32], k2[32];
  char sig[65];
  size_t stsl;
  const char *sts;
  char *kbuf;
  memset(&sg, 0, sizeof(sg));
  build(L, "sigv4_sign", &sg, 1);
  push_sts(L, &sg);
  sts = lua_tolstring(L, -1, &stsl);
  kbuf = spapi_scratch(L, sg.secret_len + 4);
  memcpy(kbuf, "AWS4", 4);
  memcpy(kbuf + 4, sg.secret_key, sg.secret_len);
  hmac(kbuf, sg.secret_len + 4, sg.date, 8, k1);
  OPENSSL_cleanse(kbuf, sg.secret_len + 4);
  hmac(k1, 32, sg.region, strlen(sg.region), k2);
  hmac(k2, 32, sg.service, strlen(sg.service), k1);
  hmac(k1, 32, "aws4_request", 12, k2);
  hmac(k2, 32, sts, stsl, k1);
  hexify(k1, 32, sig);
  OPENSSL_cleanse(k1, sizeof(k1));
  OPENSSL_cleanse(k2, sizeof(k2));
  lua_createtable(L, 0, 4);
  lua_pushfstring(L, "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
                  sg.access_key, sg.date, sg.region, sg.service, sg.signed_headers, sig);
  lua_setfield(L, -2, "Authorization");
  lua_pushstring(L, sg.amzdate);
  lua_setfield(L, -2, "x-amz-date");
  if (sg.token) {
    lua_pushstring(L, sg.token);
    lua_setfield(L, -2, "x-amz-security-token");
  }
  if (sg.content_sha) {
    lua_pushstring(L, sg.payload_hash);
    lua_setfield(L, -2, "x-amz-content-sha256");
  }
  return 1;
}

static const luaL_Reg funcs[] = {
  {"sigv4_sign", l_sigv4_sign},
  {"sigv4_canonical", l_sigv4_canonical},
  {NULL, NULL},
};

void spapi_sigv4_open(lua_State *L) { luaL_setfuncs(L, funcs, 0); }
