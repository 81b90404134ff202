/* Lua 5.1 / LuaJIT .. 5.4 compatibility shims for the spapi C core.
 * Include right after the Lua headers. Maps the 5.2+ auxiliary API onto 5.1
 * with private (static) implementations, so nothing clashes with LuaJIT's own
 * copies of some of these functions.
 *
 * luaL_Buffer is deliberately not used by the core: on 5.1/LuaJIT it lives on
 * the C stack, must keep the Lua stack balanced between calls, and has no
 * luaL_prepbuffsize/luaL_buffinitsize. Output of unknown size goes into an
 * spapi_buf owned by a userdata (spapi.h: spapi_buf_push), output of known
 * size into userdata scratch memory (spapi_scratch); both are released by the
 * GC if a Lua error unwinds, on every Lua version alike. */
#ifndef SPAPI_COMPAT_H
#define SPAPI_COMPAT_H

#include "lua.h"
#include "lauxlib.h"

/* LuaJIT's headers say LUA_VERSION_NUM 501 too; only theirs define LUA_LJDIR. The Lua
 * layer needs 5.2+ (load of a string, goto, ...) or LuaJIT's extensions of 5.1. */
#if LUA_VERSION_NUM < 502 && !defined(LUA_LJDIR)
#error "spapi needs Lua 5.4 or LuaJIT, not PUC Lua 5.1: build with luarocks --lua-version 5.4 (or for LuaJIT, see the README)"
#endif

#if LUA_VERSION_NUM < 502

static inline void spapi_compat_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
  luaL_checkstack(L, nup + 1, "too many upvalues");
  for (; l->name != NULL; l++) {
    int i;
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}

static inline void *spapi_compat_testudata(lua_State *L, int ud, const char *tname) {
  void *p = lua_touserdata(L, ud);
  if (p != NULL && lua_getmetatable(L, ud)) {
    lua_getfield(L, LUA_REGISTRYINDEX, tname);
    if (!lua_rawequal(L, -1, -2)) p = NULL;
    lua_pop(L, 2);
    return p;
  }
  return NULL;
}

static inline void spapi_compat_setmetatable(lua_State *L, const char *tname) {
  luaL_getmetatable(L, tname);
  lua_setmetatable(L, -2);
}

#undef luaL_newlibtable
#undef luaL_newlib
#define luaL_setfuncs(L, l, n)   spapi_compat_setfuncs((L), (l), (n))
#define luaL_testudata(L, i, t)  spapi_compat_testudata((L), (i), (t))
#define luaL_setmetatable(L, t)  spapi_compat_setmetatable((L), (t))
#define luaL_newlibtable(L, l)   lua_createtable((L), 0, (int)(sizeof(l) / sizeof((l)[0]) - 1))
#define luaL_newlib(L, l)        (luaL_newlibtable((L), (l)), luaL_setfuncs((L), (l), 0))
#define lua_rawlen(L, i)         lua_objlen((L), (i))
#define lua_absindex(L, i) \
  ((i) > 0 || (i) <= LUA_REGISTRYINDEX ? (i) : lua_gettop(L) + (i) + 1)
#define spapi_newuserdata(L, sz) lua_newuserdata((L), (sz))

#else

#if LUA_VERSION_NUM >= 504
#define spapi_newuserdata(L, sz) lua_newuserdatauv((L), (sz), 0)
#else
#define spapi_newuserdata(L, sz) lua_newuserdata((L), (sz))
#endif

#endif /* LUA_VERSION_NUM < 502 */

/* Integer results: lua_Integer on 5.3+, a number with an integral value on 5.1. */
#if LUA_VERSION_NUM >= 503
#define spapi_pushint(L, n) lua_pushinteger((L), (lua_Integer)(n))
#else
#define spapi_pushint(L, n) lua_pushnumber((L), (lua_Number)(n))
#endif

/* lua_rawget returning the type of the value it pushed, as on 5.3+. */
#if LUA_VERSION_NUM >= 503
#define spapi_rawget(L, t) lua_rawget((L), (t))
#else
static inline int spapi_rawget(lua_State *L, int t) {
  lua_rawget(L, t);
  return lua_type(L, -1);
}
#endif

#endif /* SPAPI_COMPAT_H */
