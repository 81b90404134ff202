/* JSON decoding for spapi.json: one pass over the text, building the final Lua
 * values directly (lua-cjson stays the encoder).
 *
 * core.json_decoder(array_mt) → decode(s) → value | nil, message
 *
 *   objects → tables (a duplicate key: the last one wins); arrays → sequences;
 *   an empty array → a new empty table with metatable array_mt (so it
 *   re-encodes as []); null → lightuserdata NULL (cjson.null); strings → the
 *   bytes with every JSON escape decoded (\uXXXX and surrogate pairs to UTF-8;
 *   a lone surrogate is an error, as in lua-cjson); raw bytes are copied.
 *   Numbers: on Lua 5.3+ an integer literal that fits in 64 bits is an integer,
 *   anything else a float, and a float that is integral with |v| < 2^53 an
 *   integer (1e3 → 1000, 10.0 → 10); on Lua 5.1/LuaJIT everything is a double.
 *   Numbers follow RFC 8259 strictly (no leading zeros, "1.", ".5", NaN,
 *   Infinity, hex, "+"); a literal out of double range is ±HUGE_VAL, as with
 *   strtod, whatever LC_NUMERIC says. Whitespace is JSON's four; any value may
 *   be the top level; anything after it but whitespace is an error (a NUL
 *   byte too: lua-cjson stopped there); a NUL inside a string is copied
 *   (lua-cjson failed). Nesting deeper than 1000 is an error ({} counts as a
 *   level, [] does not, as with the cjson path this replaces).
 *
 * The same reader serves C code (spapi_json_decode_mem: a session's JSON
 * bodies, the LWA answer in lwa.c).
 *
 * Failures never raise (only a Lua memory error can): decode returns nil and
 * "spapi.json.decode: <what> at character <1-based byte position>". Nothing is
 * malloc'd: a string with escapes is unescaped into a scratch userdata, made
 * for the first such string of a decode and replaced only by a bigger one.
 *
 * Tables are sized exactly: a container's first items wait on the Lua stack
 * and the table is made when the container closes (or once JSON_BATCH items
 * are waiting, or when the stack is already deep — LuaJIT lets a C function
 * use only 8000 slots). */
#include <limits.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "spapi.h"

#define JSON_MAX_DEPTH 1000
#define JSON_BATCH 32           /* items (array) or pairs (object) kept on the stack */
#define JSON_STACK_BUDGET 3000  /* above this stack height, set items directly */
#define JSON_POW2_53 9007199254740992.0

typedef struct jparser {
  lua_State *L;
  const unsigned char *s;   /* the text; Lua guarantees a '\0' at end */
  const unsigned char *p;   /* the read position */
  const unsigned char *end;
  int depth;
  int scratch_slot;         /* stack slot anchoring the scratch userdata */
  int cache_slot;           /* stack slot of the key cache (Lua 5.3+), 0: none */
  int mt_slot;              /* index of array_mt (a stack slot or an upvalue), 0: none */
  unsigned char *scratch;
  size_t scratch_cap;
  const char *err;          /* static message when parsing failed */
  const unsigned char *errat;
} jparser;

/* 1: JSON whitespace. */
static const unsigned char ws_tab[256] = {
  ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, [' '] = 1,
};

/* 1: a byte that ends a run of plain bytes in a string ('"', '\\', '\0'). */
static const unsigned char str_stop[256] = {
  ['\0'] = 1, ['"'] = 1, ['\\'] = 1,
};

static const double pow10_tab[] = {
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static int parse_value(jparser *j);

static int fail(jparser *j, const char *msg, const unsigned char *at) {
  j->err = msg;
  j->errat = at;
  return 0;
}

static inline void skip_ws(jparser *j) {
  const unsigned char *p = j->p;
  while (ws_tab[*p]) p++;   /* stops at the terminating '\0' */
  j->p = p;
}

/* ---- strings ---- */

static int hex4(const unsigned char *q) {
  int i, v = 0;
  for (i = 0; i < 4; i++) {   /* stops at the first non-hex byte: never past the closing quote */
    unsigned char c = q[i];
    if (c >= '0' && c <= '9') v = (v << 4) | (c - '0');
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') v = (v << 4) | ((c | 0x20) - 'a' + 10);
    else return -1;
  }
  return v;
}

static unsigned char *put_utf8(unsigned char *o, unsigned long cp) {
  if (cp < 0x80) {
    *o++ = (unsigned char)cp;
  } else if (cp < 0x800) {
    *o++ = (unsigned char)(0xC0 | (cp >> 6));
    *o++ = (unsigned char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *o++ = (unsigned char)(0xE0 | (cp >> 12));
    *o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    *o++ = (unsigned char)(0x80 | (cp & 0x3F));
  } else {
    *o++ = (unsigned char)(0xF0 | (cp >> 18));
    *o++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    *o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    *o++ = (unsigned char)(0x80 | (cp & 0x3F));
  }
  return o;
}

#if LUA_VERSION_NUM >= 503
/* Object keys repeat (every summary in a list has the same ones), so on Lua
 * 5.3+ short unescaped keys come from a direct-mapped cache of Lua strings
 * (upvalue 2 of decode, on the stack while decoding) rather than from Lua's
 * interning, which hashes every byte. It keeps at most JSON_KEY_CACHE short
 * strings alive. LuaJIT has none: its interning is quicker than the lookup. */
#define JSON_KEY_CACHE 512        /* a power of 2 */
#define JSON_KEY_CACHE_MAXLEN 40  /* Lua 5.4's short strings */

static unsigned key_slot(const unsigned char *s, size_t len) {
  uint64_t a = 0, b = 0, x;
  if (len >= 8) {
    memcpy(&a, s, 8);
    memcpy(&b, s + len - 8, 8);
  } else {
    size_t i;
    for (i = 0; i < len; i++) a = (a << 8) | s[i];
  }
  x = a * 0x9E3779B97F4A7C15ULL ^ (b + len) * 0xC2B2AE3D27D4EB4FULL;
  return (unsigned)(x >> 40) & (JSON_KEY_CACHE - 1);
}

static void push_key(lua_State *L, int cache, const unsigned char *s, size_t len) {
  lua_Integer slot = (lua_Integer)key_slot(s, len) + 1;
  if (lua_rawgeti(L, cache, slot) == LUA_TSTRING) {
    size_t n;
    const char *c = lua_tolstring(L, -1, &n);
    if (n == len && memcmp(c, s, len) == 0) return;
  }
  lua_pop(L, 1);
  lua_pushlstring(L, (const char *)s, len);
  lua_pushvalue(L, -1);
  lua_rawseti(L, cache, slot);
}
#endif

/* The string literal starting at j->p ('"'): pushes its value. cache: the
 * key cache's stack slot for an object key, else 0. */
static int parse_string(jparser *j, int cache) {
  lua_State *L = j->L;
  const unsigned char *open = j->p, *start = open + 1, *q = start, *close, *end = j->end;
  unsigned char *o;
#if LUA_VERSION_NUM < 503
  (void)cache;
#endif
  for (;;) {
    while (!str_stop[*q]) q++;
    if (*q == '"') {   /* no escapes: straight from the text */
#if LUA_VERSION_NUM >= 503
      if (cache && q - start <= JSON_KEY_CACHE_MAXLEN) push_key(L, cache, start, (size_t)(q - start));
      else
#endif
      lua_pushlstring(L, (const char *)start, (size_t)(q - start));
      j->p = q + 1;
      return 1;
    }
    if (*q == '\\') break;
    if (q == end) return fail(j, "unterminated string", open);
    q++;   /* a '\0' inside the text is an ordinary byte */
  }
  /* Escapes: find the closing quote, then unescape into the scratch memory
   * (the result is never longer than the literal). */
  close = q;
  while (close < end && *close != '"') close += (*close == '\\') ? 2 : 1;
  if (close >= end) return fail(j, "unterminated string", open);
  if ((size_t)(close - start) > j->scratch_cap) {
    size_t cap = (size_t)(close - start);
    if (cap < 2 * j->scratch_cap) cap = 2 * j->scratch_cap;
    if (cap < 256) cap = 256;
    j->scratch = (unsigned char *)spapi_scratch(L, cap);
    j->scratch_cap = cap;
    lua_replace(L, j->scratch_slot);   /* the old one (if any) is garbage now */
  }
  o = j->scratch;
  memcpy(o, start, (size_t)(q - start));
  o += q - start;
  while (q < close) {
    unsigned char c = *q;
    if (c != '\\') {
      *o++ = c;
      q++;
      continue;
    }
    switch (q[1]) {   /* q + 1 < close: the escaped byte is never the closing quote */
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '/': *o++ = '/'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'n': *o++ = '\n'; break;
      case 'r': *o++ = '\r'; break;
      case 't': *o++ = '\t'; break;
      case 'u': {
        long cp = hex4(q + 2), lo;
        if (cp < 0) return fail(j, "invalid unicode escape", q);
        if ((cp & 0xF800) == 0xD800) {   /* a surrogate: must be a high one followed by a low one */
          if ((cp & 0x400) || q[6] != '\\' || q[7] != 'u') return fail(j, "invalid unicode escape", q);
          lo = hex4(q + 8);
          if (lo < 0 || (lo & 0xFC00) != 0xDC00) return fail(j, "invalid unicode escape", q);
          cp = 0x10000 + (((cp & 0x3FF) << 10) | (lo & 0x3FF));
          q += 6;
        }
        o = put_utf8(o, (unsigned long)cp);
        q += 6;
        continue;
      }
      default:
        return fail(j, "invalid escape", q);
    }
    q += 2;
  }
  lua_pushlstring(L, (const char *)j->scratch, (size_t)(o - j->scratch));
  j->p = close + 1;
  return 1;
}

/* ---- numbers ---- */

/* strtod on text[0..n) (a validated JSON number), whatever LC_NUMERIC says:
 * the '.' becomes the locale's decimal point, as Lua's lua_str2number does.
 * 1 when all n bytes were the number. */
static int to_double(lua_State *L, const char *text, size_t n, double *out) {
  char local[128], *buf = local, *endp;
  char dp = localeconv()->decimal_point[0];
  size_t i;
  if (n >= sizeof(local)) {
    buf = spapi_scratch(L, n + 1);   /* popped below; nothing can collect it before */
  }
  for (i = 0; i < n; i++) buf[i] = (text[i] == '.') ? dp : text[i];
  buf[n] = '\0';
  *out = strtod(buf, &endp);
  if (buf != local) lua_pop(L, 1);
  return endp == buf + n;
}

static int parse_number(jparser *j) {
  lua_State *L = j->L;
  const unsigned char *start = j->p, *p = start;
  uint64_t w = 0;          /* the digits, integer and fraction, while they fit */
  int neg = 0, exact = 1, isfloat = 0, nd = 0;
  long frac = 0, ex = 0;   /* fraction digits taken into w; the exponent (capped) */
  double d;
  if (*p == '-') { neg = 1; p++; }
  if (*p == '0') {
    p++;
    if (*p >= '0' && *p <= '9') return fail(j, "invalid number (leading zero)", start);
  } else if (*p >= '1' && *p <= '9') {
    for (; *p >= '0' && *p <= '9'; p++, nd++) {
      unsigned d1 = (unsigned)(*p - '0');
      if (nd < 19) w = w * 10 + d1;    /* 19 digits always fit in 64 bits */
      else if (exact && w <= (UINT64_MAX - d1) / 10) w = w * 10 + d1;
      else exact = 0;
    }
  } else {
    return fail(j, "invalid number", start);
  }
  if (*p == '.') {
    isfloat = 1;
    p++;
    if (!(*p >= '0' && *p <= '9')) return fail(j, "invalid number", start);
    for (; *p >= '0' && *p <= '9'; p++) {
      unsigned d1 = (unsigned)(*p - '0');
      if (exact && w <= (UINT64_MAX - d1) / 10) { w = w * 10 + d1; frac++; }
      else exact = 0;
    }
  }
  if (*p == 'e' || *p == 'E') {
    int eneg = 0;
    isfloat = 1;
    p++;
    if (*p == '+' || *p == '-') eneg = (*p++ == '-');
    if (!(*p >= '0' && *p <= '9')) return fail(j, "invalid number", start);
    for (; *p >= '0' && *p <= '9'; p++)
      if (ex < 100000) ex = ex * 10 + (*p - '0');
    if (eneg) ex = -ex;
  }
  j->p = p;
#if LUA_VERSION_NUM >= 503
  if (!isfloat && exact) {   /* an integer literal: exact when it fits in 64 bits */
    if (!neg && w <= (uint64_t)LUA_MAXINTEGER) {
      lua_pushinteger(L, (lua_Integer)w);
      return 1;
    }
    if (neg && w <= (uint64_t)LUA_MAXINTEGER + 1) {
      lua_pushinteger(L, w == (uint64_t)LUA_MAXINTEGER + 1 ? LUA_MININTEGER : -(lua_Integer)w);
      return 1;
    }
  }
#else
  if (!isfloat && exact && w <= (uint64_t)1 << 53) {
    d = (double)w;
    lua_pushnumber(L, neg ? -d : d);
    return 1;
  }
#endif
  /* A float: w * 10^e10 in one correctly rounded operation when both are exact
   * doubles (Clinger's fast path, the same result as strtod), else strtod. */
  {
    long e10 = ex - frac;
    if (exact && w <= (uint64_t)1 << 53 && e10 >= -22 && e10 <= 22) {
      d = (double)w;
      d = e10 < 0 ? d / pow10_tab[-e10] : d * pow10_tab[e10];
      if (neg) d = -d;
    } else if (!to_double(j->L, (const char *)start, (size_t)(p - start), &d)) {
      return fail(j, "invalid number", start);
    }
  }
#if LUA_VERSION_NUM >= 503
  if (d > -JSON_POW2_53 && d < JSON_POW2_53 && d == (double)(lua_Integer)d) {
    lua_pushinteger(L, (lua_Integer)d);
    return 1;
  }
#endif
  lua_pushnumber(L, d);
  return 1;
}

/* ---- containers ---- */

/* Room for the items of one container: JSON_BATCH (pairs) plus a few
 * temporaries while it collects on the stack, a few when it sets directly. */
static int make_room(jparser *j, int *collect) {
  lua_State *L = j->L;
  if (lua_gettop(L) < JSON_STACK_BUDGET && lua_checkstack(L, 2 * JSON_BATCH + 8)) {
    *collect = 1;
    return 1;
  }
  *collect = 0;
  if (lua_checkstack(L, 6)) return 1;
  return fail(j, "nesting too deep for the Lua stack", j->p);
}

static int parse_array(jparser *j) {
  lua_State *L = j->L;
  int base, t = 0, n = 0, collect, i;
  const unsigned char *open = j->p;
  j->p++;
  skip_ws(j);
  if (*j->p == ']') {   /* [] → a new empty table that re-encodes as [] */
    j->p++;
    lua_createtable(L, 0, 0);
    if (j->mt_slot) {
      lua_pushvalue(L, j->mt_slot);
      lua_setmetatable(L, -2);
    }
    return 1;
  }
  if (++j->depth > JSON_MAX_DEPTH) return fail(j, "nesting deeper than 1000", open);
  if (!make_room(j, &collect)) return 0;
  base = lua_gettop(L);
  if (collect) {
    lua_pushnil(L);   /* the table's slot; the items follow it */
  } else {
    lua_createtable(L, 4, 0);
    t = base + 1;
  }
  for (;;) {
    if (!t && n == JSON_BATCH) {   /* a long array: make the table, set the rest directly */
      lua_createtable(L, 2 * JSON_BATCH, 0);
      lua_replace(L, base + 1);
      t = base + 1;
      for (i = n; i > 0; i--) lua_rawseti(L, t, i);
    }
    if (!parse_value(j)) return 0;
    if (n == INT_MAX) return fail(j, "array too long", j->p);
    n++;
    if (t) lua_rawseti(L, t, n);
    skip_ws(j);
    if (*j->p == ',') {
      j->p++;
      continue;
    }
    if (*j->p == ']') break;
    if (j->p == j->end) return fail(j, "unexpected end of text", j->p);
    return fail(j, "expected ',' or ']'", j->p);
  }
  j->p++;
  if (!t) {
    lua_createtable(L, n, 0);
    lua_replace(L, base + 1);
    for (i = n; i > 0; i--) lua_rawseti(L, base + 1, i);
  }
  j->depth--;
  return 1;
}

static int parse_object(jparser *j) {
  lua_State *L = j->L;
  int base, t = 0, n = 0, collect, i;
  const unsigned char *open = j->p;
  /* {} counts as a level and [] does not, as with spapi.json before (its
   * cjson pass saw [] as a string) */
  if (++j->depth > JSON_MAX_DEPTH) return fail(j, "nesting deeper than 1000", open);
  j->p++;
  skip_ws(j);
  if (*j->p == '}') {
    j->p++;
    j->depth--;
    lua_createtable(L, 0, 0);
    return 1;
  }
  if (!make_room(j, &collect)) return 0;
  base = lua_gettop(L);
  if (collect) {
    lua_pushnil(L);   /* the table's slot; the pairs follow it */
  } else {
    lua_createtable(L, 0, 4);
    t = base + 1;
  }
  for (;;) {
    if (!t && n == JSON_BATCH) {   /* a big object: make the table, set the rest directly */
      lua_createtable(L, 0, 2 * JSON_BATCH);
      lua_replace(L, base + 1);
      t = base + 1;
      for (i = 0; i < n; i++) {   /* in text order: the last duplicate wins */
        lua_pushvalue(L, t + 1 + 2 * i);
        lua_pushvalue(L, t + 2 + 2 * i);
        lua_rawset(L, t);
      }
      lua_settop(L, t);
    }
    if (*j->p != '"') {
      if (j->p == j->end) return fail(j, "unexpected end of text", j->p);
      return fail(j, "expected a string key", j->p);
    }
    if (!parse_string(j, j->cache_slot)) return 0;
    skip_ws(j);
    if (*j->p != ':') {
      if (j->p == j->end) return fail(j, "unexpected end of text", j->p);
      return fail(j, "expected ':'", j->p);
    }
    j->p++;
    if (!parse_value(j)) return 0;
    n++;
    if (t) lua_rawset(L, t);
    skip_ws(j);
    if (*j->p == ',') {
      j->p++;
      skip_ws(j);
      continue;
    }
    if (*j->p == '}') break;
    if (j->p == j->end) return fail(j, "unexpected end of text", j->p);
    return fail(j, "expected ',' or '}'", j->p);
  }
  j->p++;
  if (!t) {
    lua_createtable(L, 0, n);
    lua_replace(L, base + 1);
    t = base + 1;
    for (i = 0; i < n; i++) {
      lua_pushvalue(L, t + 1 + 2 * i);
      lua_pushvalue(L, t + 2 + 2 * i);
      lua_rawset(L, t);
    }
    lua_settop(L, t);
  }
  j->depth--;
  return 1;
}

static int literal(jparser *j, const char *word, size_t n) {
  if ((size_t)(j->end - j->p) >= n && memcmp(j->p, word, n) == 0) {
    j->p += n;
    return 1;
  }
  return fail(j, "expected a value", j->p);
}

/* Pushes the value at j->p (after whitespace). */
static int parse_value(jparser *j) {
  skip_ws(j);
  switch (*j->p) {
    case '{': return parse_object(j);
    case '[': return parse_array(j);
    case '"': return parse_string(j, 0);
    case 't':
      if (!literal(j, "true", 4)) return 0;
      lua_pushboolean(j->L, 1);
      return 1;
    case 'f':
      if (!literal(j, "false", 5)) return 0;
      lua_pushboolean(j->L, 0);
      return 1;
    case 'n':
      if (!literal(j, "null", 4)) return 0;
      lua_pushlightuserdata(j->L, NULL);
      return 1;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
      return parse_number(j);
    default:
      if (j->p == j->end) return fail(j, "unexpected end of text", j->p);
      return fail(j, "expected a value", j->p);
  }
}

/* Parses all of s[0..n) (s[n] is '\0') with the decoder's stack slots (scratch
 * userdata, array_mt, key cache): 1 and the value pushed, or 0 (j->err, j->errat
 * say why; the stack above the slots is the caller's to settle). */
static int parse_text(jparser *j, lua_State *L, const char *s, size_t n, int scratch_slot, int mt_slot,
                      int cache_slot) {
  memset(j, 0, sizeof(*j));
  j->L = L;
  j->s = j->p = (const unsigned char *)s;
  j->end = j->s + n;
  j->scratch_slot = scratch_slot;
  j->mt_slot = mt_slot;
  j->cache_slot = cache_slot;
  if (!parse_value(j)) return 0;
  skip_ws(j);
  if (j->p == j->end) return 1;
  return fail(j, "expected the end of the text", j->p);
}

static int json_decode(lua_State *L) {
  jparser j;
  size_t n;
  const char *s;
  char msg[160];
  if (lua_type(L, 1) != LUA_TSTRING) {
    lua_pushnil(L);
    lua_pushfstring(L, "spapi.json.decode: expected a string, got %s",
                    lua_isnone(L, 1) ? "nil" : luaL_typename(L, 1));
    return 2;
  }
  s = lua_tolstring(L, 1, &n);
  lua_settop(L, 1);
  lua_pushnil(L);   /* slot 2: the scratch userdata, once needed */
#if LUA_VERSION_NUM >= 503
  lua_pushvalue(L, lua_upvalueindex(2));   /* slot 3: the key cache */
#endif
  if (parse_text(&j, L, s, n, 2, lua_upvalueindex(1), 3)) return 1;
  lua_settop(L, 0);
  lua_pushnil(L);
  snprintf(msg, sizeof(msg), "spapi.json.decode: %s at character %lu", j.err,
           (unsigned long)(j.errat - j.s) + 1);
  lua_pushstring(L, msg);
  return 2;
}

int spapi_json_is_decoder(lua_State *L, int i) {
  return lua_tocfunction(L, i) == json_decode;
}

/* For C code holding JSON text outside Lua (spapi.h). A decoder's own message
 * is for a json.decode of the same text to give. */
int spapi_json_decode_mem(lua_State *L, int decoder, const char *s, size_t n, spapi_json_error *why) {
  jparser j;
  int top;
  if (decoder) decoder = lua_absindex(L, decoder);
  top = lua_gettop(L);
  if (!lua_checkstack(L, 8)) {
    if (why) {
      why->what = "nesting too deep for the Lua stack";
      why->at = 1;
    }
    return 0;
  }
  lua_pushnil(L);                  /* top + 1: the scratch userdata, once needed */
  if (decoder) {
    lua_getupvalue(L, decoder, 1); /* top + 2: array_mt */
#if LUA_VERSION_NUM >= 503
    lua_getupvalue(L, decoder, 2); /* top + 3: the key cache */
#endif
  }
  if (parse_text(&j, L, s, n, top + 1, decoder ? top + 2 : 0, decoder ? top + 3 : 0)) {
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return 1;
  }
  if (why) {
    why->what = j.err;
    why->at = (size_t)(j.errat - j.s) + 1;
  }
  lua_settop(L, top);
  return 0;
}

/* core.json_decoder(array_mt) → decode */
static int json_decoder(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
#if LUA_VERSION_NUM >= 503
  lua_createtable(L, JSON_KEY_CACHE, 0);
  lua_pushcclosure(L, json_decode, 2);
#else
  lua_pushcclosure(L, json_decode, 1);
#endif
  return 1;
}

static const luaL_Reg funcs[] = {
  {"json_decoder", json_decoder},
  {NULL, NULL},
};

void spapi_json_open(lua_State *L) {
  luaL_setfuncs(L, funcs, 0);
}
