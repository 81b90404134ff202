/* Response header lines: collected by libcurl's header callback (with the
 * session's picked names noted as they arrive), and read back as a header
 * table (lowercase name → value, repeats joined with ", ") or one value
 * (core.header). */
#include <stdint.h>
#include <string.h>
#include "http.h"

/* --- while the response arrives --------------------------------------------------- */

/* Notes where the line just appended at rhdr offset off holds a picked header. */
static void pick_line(req *r, const char *line, size_t n, size_t off) {
  const struct session *s = r->owner;
  int i;
  char c0 = n > 0 ? spapi_lower(line[0]) : 0;
  for (i = 0; i < s->npick; i++) {
    size_t nl = s->pick_nl[i], vs, ve;
    /* the first byte rejects most other lines */
    if (n <= nl || c0 != s->pick[i][0] || line[nl] != ':' || !spapi_same_ci(line, s->pick[i], nl)) continue;
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

/* libcurl's header callback: one whole line per call. */
size_t spapi_on_header(char *ptr, size_t size, size_t nmemb, void *ud) {
  req *r = (req *)ud;
  size_t n = size * nmemb, off;
  if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) { /* a new response begins */
    spapi_buf_reset(&r->rhdr);
    r->nrhdr = 0;
    memset(r->pick_seen, 0, sizeof(r->pick_seen));
  }
  r->nrhdr++;
  off = r->rhdr.len;
  if (!spapi_buf_append(&r->rhdr, ptr, n)) {
    r->oom = 1;
    return 0;
  }
  if (r->owner->npick > 0) pick_line(r, ptr, n, off);
  return n;
}

/* session option pick = { name, ... }: header names whose values request()
 * returns after the body (see session.c: do_request). */
void spapi_read_pick(lua_State *L, int t, session *s) {
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
    if (lua_type(L, -1) != LUA_TSTRING || nl >= PICK_LEN || !spapi_header_name_ok(name, nl))
      luaL_error(L, "session: 'pick' entry %d must be a header name shorter than %d bytes", i + 1, PICK_LEN);
    for (k = 0; k < nl; k++) s->pick[i][k] = spapi_lower(name[k]);
    s->pick_nl[i] = nl;
    for (k = 0; k < (size_t)i; k++)
      if (s->pick_nl[k] == nl && memcmp(s->pick[k], s->pick[i], nl) == 0)
        luaL_error(L, "session: 'pick' names '%s' twice", name);
    lua_pop(L, 1);
  }
  s->npick = n;
  lua_pop(L, 1);
}

/* --- header tables ---------------------------------------------------------------- */

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
  for (i = 0; i < nl; i++) w[i] = spapi_lower(p[i]);
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
  uint64_t seen = 0; /* names pushed so far, by a 6-bit hash: a repeat is looked up only on a hit */
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

/* Pushes the response's headers as the session returns them: a table, or the raw block. */
void spapi_push_headers(lua_State *L, session *s, req *r) {
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

static const luaL_Reg funcs[] = {
  {"header", l_header},
  {"parse_headers", l_parse_headers},
  {NULL, NULL},
};

void spapi_headers_open(lua_State *L) { luaL_setfuncs(L, funcs, 0); }
