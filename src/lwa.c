/* Login with Amazon: the token request body and the parsing of the answer.
 * Pure (no I/O), shared by every transport. Contains a tiny JSON reader for
 * flat objects: string values (escapes, \uXXXX, surrogate pairs → UTF-8),
 * numbers, true/false/null; nested values are skipped. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "spapi.h"

/* Integral values become integers on 5.3+ (so string.format("%d") works). */
static void spapi_pushnum(lua_State *L, double d) {
#if LUA_VERSION_NUM >= 503
  if (d == floor(d) && d >= -9007199254740992.0 && d <= 9007199254740992.0) {
    lua_pushinteger(L, (lua_Integer)d);
    return;
  }
#endif
  lua_pushnumber(L, (lua_Number)d);
}

/* --- flat JSON object reader ---------------------------------------------- */

typedef struct jr {
  const char *p, *end;
  spapi_buf *sb; /* scratch for decoded strings (owned by a userdata) */
} jr;

static void jr_ws(jr *r) {
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

static int hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  int i;
  for (i = 0; i < 4; i++) {
    int c = (unsigned char)p[i], d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return 0;
    v = v * 16 + (unsigned)d;
  }
  *out = v;
  return 1;
}

static int put_utf8(spapi_buf *b, unsigned cp) {
  char t[4];
  size_t n;
  if (cp < 0x80) { t[0] = (char)cp; n = 1; }
  else if (cp < 0x800) { t[0] = (char)(0xC0 | (cp >> 6)); t[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
  else if (cp < 0x10000) {
    t[0] = (char)(0xE0 | (cp >> 12)); t[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    t[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
  } else {
    t[0] = (char)(0xF0 | (cp >> 18)); t[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    t[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); t[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
  }
  return spapi_buf_add(b, t, n);
}

/* Decode a JSON string at r->p (which points at the opening quote) into r->sb.
 * Returns NULL on success, or an error message. */
static const char *jr_string(jr *r) {
  spapi_buf *b = r->sb;
  spapi_buf_reset(b);
  r->p++; /* opening quote */
  while (r->p < r->end) {
    unsigned char c = (unsigned char)*r->p++;
    if (c == '"') return NULL;
    if (c < 0x20) return "control character in string";
    if (c != '\\') {
      if (!spapi_buf_addc(b, (char)c)) return "out of memory";
      continue;
    }
    if (r->p >= r->end) break;
    c = (unsigned char)*r->p++;
    switch (c) {
      case '"': case '\\': case '/':
        if (!spapi_buf_addc(b, (char)c)) return "out of memory";
        break;
      case 'b': if (!spapi_buf_addc(b, '\b')) return "out of memory"; break;
      case 'f': if (!spapi_buf_addc(b, '\f')) return "out of memory"; break;
      case 'n': if (!spapi_buf_addc(b, '\n')) return "out of memory"; break;
      case 'r': if (!spapi_buf_addc(b, '\r')) return "out of memory"; break;
      case 't': if (!spapi_buf_addc(b, '\t')) return "out of memory"; break;
      case 'u': {
        unsigned cp, lo;
        if (r->end - r->p < 4 || !hex4(r->p, &cp)) return "bad \\u escape";
        r->p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (r->end - r->p >= 6 && r->p[0] == '\\' && r->p[1] == 'u' && hex4(r->p + 2, &lo) &&
              lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            r->p += 6;
          } else {
            cp = 0xFFFD; /* lone high surrogate */
          }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          cp = 0xFFFD; /* lone low surrogate */
        }
        if (!put_utf8(b, cp)) return "out of memory";
        break;
      }
      default:
        return "bad escape in string";
    }
  }
  return "unterminated string";
}

static int lit(jr *r, const char *w) {
  size_t n = strlen(w);
  if ((size_t)(r->end - r->p) >= n && memcmp(r->p, w, n) == 0) {
    r->p += n;
    return 1;
  }
  return 0;
}

/* The end of the JSON number (RFC 8259's grammar) at p, or NULL when none starts there. */
static const char *jr_number_end(const char *p, const char *end) {
  if (p < end && *p == '-') p++;
  if (p < end && *p == '0') {
    p++;
  } else if (p < end && *p >= '1' && *p <= '9') {
    while (p < end && *p >= '0' && *p <= '9') p++;
  } else {
    return NULL;
  }
  if (p < end && *p == '.') {
    p++;
    if (p >= end || !(*p >= '0' && *p <= '9')) return NULL;
    while (p < end && *p >= '0' && *p <= '9') p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (p >= end || !(*p >= '0' && *p <= '9')) return NULL;
    while (p < end && *p >= '0' && *p <= '9') p++;
  }
  return p;
}

#define JR_MAX_DEPTH 100

/* Skips one JSON value of any kind (a nested member), checking that it is well formed. */
static const char *jr_skip(jr *r, int depth) {
  const char *e, *q;
  char close;
  jr_ws(r);
  if (r->p >= r->end) return "unexpected end";
  if (*r->p == '"') return jr_string(r);
  if (*r->p != '{' && *r->p != '[') {
    if (lit(r, "true") || lit(r, "false") || lit(r, "null")) return NULL;
    if ((q = jr_number_end(r->p, r->end)) == NULL) return "unexpected character";
    r->p = q;
    return NULL;
  }
  if (depth >= JR_MAX_DEPTH) return "nesting too deep";
  close = *r->p == '{' ? '}' : ']';
  r->p++;
  jr_ws(r);
  if (r->p < r->end && *r->p == close) {
    r->p++;
    return NULL;
  }
  for (;;) {
    if (close == '}') {
      jr_ws(r);
      if (r->p >= r->end || *r->p != '"') return "expected a member name";
      if ((e = jr_string(r)) != NULL) return e;
      jr_ws(r);
      if (r->p >= r->end || *r->p != ':') return "expected ':'";
      r->p++;
    }
    if ((e = jr_skip(r, depth + 1)) != NULL) return e;
    jr_ws(r);
    if (r->p < r->end && *r->p == ',') {
      r->p++;
      continue;
    }
    if (r->p < r->end && *r->p == close) {
      r->p++;
      return NULL;
    }
    return close == '}' ? "expected ',' or '}'" : "expected ',' or ']'";
  }
}

/* Parse a flat JSON object and push a table with its scalar members (null and
 * nested values left out). Returns NULL (table pushed) or an error message
 * (nothing pushed). */
static const char *json_flat(lua_State *L, const char *s, size_t n) {
  jr r;
  const char *e;
  int top = lua_gettop(L);
  r.p = s;
  r.end = s + n;
  r.sb = spapi_buf_push(L); /* top + 1 */
  lua_newtable(L);          /* top + 2 */
  jr_ws(&r);
  if (r.p >= r.end || *r.p != '{') { e = "not a JSON object"; goto fail; }
  r.p++;
  jr_ws(&r);
  if (r.p < r.end && *r.p == '}') { r.p++; goto done; }
  for (;;) {
    jr_ws(&r);
    if (r.p >= r.end || *r.p != '"') { e = "expected a member name"; goto fail; }
    if ((e = jr_string(&r)) != NULL) goto fail;
    lua_pushlstring(L, r.sb->p ? r.sb->p : "", r.sb->len); /* key */
    jr_ws(&r);
    if (r.p >= r.end || *r.p != ':') { e = "expected ':'"; goto fail; }
    r.p++;
    jr_ws(&r);
    if (r.p >= r.end) { e = "unexpected end"; goto fail; }
    if (*r.p == '"') {
      if ((e = jr_string(&r)) != NULL) goto fail;
      lua_pushlstring(L, r.sb->p ? r.sb->p : "", r.sb->len);
      lua_rawset(L, top + 2);
    } else if (*r.p == '{' || *r.p == '[') {
      lua_pop(L, 1);
      if ((e = jr_skip(&r, 1)) != NULL) goto fail;
    } else if (lit(&r, "true")) {
      lua_pushboolean(L, 1);
      lua_rawset(L, top + 2);
    } else if (lit(&r, "false")) {
      lua_pushboolean(L, 0);
      lua_rawset(L, top + 2);
    } else if (lit(&r, "null")) {
      lua_pop(L, 1);
    } else if (*r.p == '-' || (*r.p >= '0' && *r.p <= '9')) {
      const char *q = jr_number_end(r.p, r.end);
      double d;
      if (q == NULL || q - r.p >= 64 || !spapi_strtod(L, r.p, (size_t)(q - r.p), &d)) {
        e = "bad number";
        goto fail;
      }
      r.p = q;
      spapi_pushnum(L, d);
      lua_rawset(L, top + 2);
    } else {
      e = "unexpected character";
      goto fail;
    }
    jr_ws(&r);
    if (r.p < r.end && *r.p == ',') { r.p++; continue; }
    if (r.p < r.end && *r.p == '}') { r.p++; break; }
    e = "expected ',' or '}'";
    goto fail;
  }
done:
  jr_ws(&r);
  if (r.p != r.end) { e = "trailing data after the object"; goto fail; }
  spapi_buf_free(r.sb);
  lua_replace(L, top + 1); /* table where the buffer was */
  lua_settop(L, top + 1);
  return NULL;
fail:
  spapi_buf_free(r.sb);
  lua_settop(L, top);
  return e;
}

/* core.json_flat(s) → table | nil, err (exposed for tests and small decoders) */
static int l_json_flat(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  const char *e = json_flat(L, s, n);
  if (e) {
    lua_pushnil(L);
    lua_pushstring(L, e);
    return 2;
  }
  return 1;
}

/* --- lwa_form --------------------------------------------------------------- */

static const char *opt_field(lua_State *L, int t, const char *name, size_t *len) {
  const char *v;
  spapi_rawfield(L, t, name);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  if (lua_type(L, -1) != LUA_TSTRING) {
    luaL_error(L, "lwa_form: '%s' must be a string", name);
    return NULL;
  }
  v = lua_tolstring(L, -1, len);
  if (*len == 0) luaL_error(L, "lwa_form: '%s' must not be empty", name);
  lua_pop(L, 1); /* the table still holds the string */
  return v;
}

static int l_lwa_form(lua_State *L) {
  static const char *const order[] = {"grant_type", "refresh_token", "scope", "client_id", "client_secret"};
  const char *vals[5];
  size_t lens[5];
  int i, first = 1;
  spapi_buf *b;
  luaL_checktype(L, 1, LUA_TTABLE);
  for (i = 0; i < 5; i++) vals[i] = opt_field(L, 1, order[i], &lens[i]);
  if (vals[0] == NULL) return luaL_error(L, "lwa_form: 'grant_type' is required");
  if (strcmp(vals[0], "refresh_token") == 0) {
    if (vals[1] == NULL) return luaL_error(L, "lwa_form: 'refresh_token' is required for grant_type refresh_token");
  } else if (strcmp(vals[0], "client_credentials") == 0) {
    if (vals[2] == NULL) return luaL_error(L, "lwa_form: 'scope' is required for grant_type client_credentials");
  } else {
    return luaL_error(L, "lwa_form: 'grant_type' must be \"refresh_token\" or \"client_credentials\"");
  }
  if (vals[3] == NULL) return luaL_error(L, "lwa_form: 'client_id' is required");
  if (vals[4] == NULL) return luaL_error(L, "lwa_form: 'client_secret' is required");
  b = spapi_buf_push(L);
  for (i = 0; i < 5; i++) {
    if (vals[i] == NULL) continue;
    if ((!first && !spapi_buf_addc(b, '&')) || !spapi_buf_addstr(b, order[i]) ||
        !spapi_buf_addc(b, '=') || !spapi_urlencode_buf(b, vals[i], lens[i]))
      return luaL_error(L, "lwa_form: out of memory");
    first = 0;
  }
  lua_pushlstring(L, b->p, b->len);
  spapi_buf_free(b);
  return 1;
}

/* --- lwa_parse -------------------------------------------------------------- */

static void push_err(lua_State *L, lua_Integer status, const char *code, const char *msg, size_t msglen) {
  lua_pushnil(L);
  lua_createtable(L, 0, 3);
  spapi_pushint(L, status);
  lua_setfield(L, -2, "status");
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  lua_pushlstring(L, msg, msglen);
  lua_setfield(L, -2, "message");
}

static int copy_string_field(lua_State *L, int from, int to, const char *name) {
  lua_getfield(L, from, name);
  if (lua_type(L, -1) == LUA_TSTRING) {
    lua_setfield(L, to, name);
    return 1;
  }
  lua_pop(L, 1);
  return 0;
}

static int l_lwa_parse(lua_State *L) {
  lua_Integer status = luaL_checkinteger(L, 1);
  size_t n;
  const char *body = luaL_optlstring(L, 2, "", &n);
  const char *e;
  int t;
  lua_settop(L, 2);
  e = json_flat(L, body, n);
  if (e != NULL) {
    char msg[160];
    size_t ml = (size_t)snprintf(msg, sizeof(msg), "LWA answered HTTP %d with a body that is not a JSON object (%s)",
                                 (int)status, e);
    if (ml >= sizeof(msg)) ml = sizeof(msg) - 1;
    push_err(L, status, "invalid_response", msg, ml);
    return 2;
  }
  t = lua_gettop(L);
  if (status >= 200 && status < 300) {
    lua_createtable(L, 0, 4);
    if (!copy_string_field(L, t, t + 1, "access_token")) {
      static const char m[] = "LWA response has no access_token";
      push_err(L, status, "invalid_response", m, sizeof(m) - 1);
      return 2;
    }
    copy_string_field(L, t, t + 1, "token_type");
    copy_string_field(L, t, t + 1, "refresh_token");
    spapi_rawfield(L, t, "expires_in");
    if (lua_type(L, -1) == LUA_TSTRING) {
      double d = strtod(lua_tostring(L, -1), NULL);
      lua_pop(L, 1);
      spapi_pushnum(L, d);
    }
    if (lua_type(L, -1) == LUA_TNUMBER) lua_setfield(L, t + 1, "expires_in");
    else lua_pop(L, 1);
    return 1;
  }
  {
    const char *code = "invalid_response", *msg = NULL;
    size_t ml = 0;
    char def[64];
    spapi_rawfield(L, t, "error");
    if (lua_type(L, -1) == LUA_TSTRING) code = lua_tostring(L, -1);
    spapi_rawfield(L, t, "error_description");
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      spapi_rawfield(L, t, "message");
    }
    if (lua_type(L, -1) == LUA_TSTRING) {
      msg = lua_tolstring(L, -1, &ml);
    } else {
      ml = (size_t)snprintf(def, sizeof(def), "LWA answered HTTP %d", (int)status);
      msg = def;
    }
    push_err(L, status, code, msg, ml);
    return 2;
  }
}

static const luaL_Reg funcs[] = {
  {"lwa_form", l_lwa_form},
  {"lwa_parse", l_lwa_parse},
  {"json_flat", l_json_flat},
  {NULL, NULL},
};

void spapi_lwa_open(lua_State *L) { luaL_setfuncs(L, funcs, 0); }
