/* Login with Amazon: the token request body and the parsing of the answer.
 * Pure (no I/O), shared by every transport. The answer is read by json.c's
 * decoder, as every JSON text is. */
#include <stdio.h>
#include <string.h>
#include "spapi.h"

/* --- the answer's members ------------------------------------------------------- */

/* Pushes the members of the JSON object s[0..n) (s[n] is '\0', as in a Lua
 * string) that are strings, numbers or booleans, as a table (1); nested values
 * and nulls are left out. Else pushes a message saying why it is not one (0). */
static int json_flat(lua_State *L, const char *s, size_t n) {
  spapi_json_error why;
  const char *p = s, *end = s + n;
  int t;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  if (p == end || *p != '{') {
    lua_pushliteral(L, "not a JSON object");
    return 0;
  }
  if (!spapi_json_decode_mem(L, 0, s, n, &why)) {
    char msg[128];
    snprintf(msg, sizeof(msg), "%s at character %lu", why.what, (unsigned long)why.at);
    lua_pushstring(L, msg);
    return 0;
  }
  t = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    int ty = lua_type(L, -1);
    lua_pop(L, 1);
    if (ty != LUA_TSTRING && ty != LUA_TNUMBER && ty != LUA_TBOOLEAN) {
      lua_pushvalue(L, -1); /* clearing a field during the traversal is allowed */
      lua_pushnil(L);
      lua_rawset(L, t);
    }
  }
  return 1;
}

/* core.json_flat(s) → table | nil, err (exposed for tests and small decoders) */
static int l_json_flat(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  if (json_flat(L, s, n)) return 1;
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
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
  int t;
  lua_settop(L, 2);
  if (!json_flat(L, body, n)) {
    lua_pushfstring(L, "LWA answered HTTP %d with a body that is not a JSON object (%s)", (int)status,
                    lua_tostring(L, -1));
    push_err(L, status, "invalid_response", lua_tostring(L, -1), lua_rawlen(L, -1));
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
    if (lua_type(L, -1) == LUA_TSTRING) { /* "3600": read as the JSON number it holds */
      size_t sl;
      const char *sv = lua_tolstring(L, -1, &sl);
      if (spapi_json_decode_mem(L, 0, sv, sl, NULL)) lua_remove(L, -2);
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
