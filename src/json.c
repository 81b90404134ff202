/* JSON glue: lua-cjson does the parsing; this scan tells spapi.json, in one pass
 * over the text, whether it needs its slower fix-ups at all:
 *   1  an empty array "[ ]" outside a string (cjson would make it an object)
 *   2  an integer literal of 16+ digits outside a string (a double loses it)
 *   4  any number outside a string (Lua 5.4: integral floats become integers)
 * core.json_scan(s) → flags (0 when the plain cjson result is already right). */
#include "spapi.h"

static int json_scan(lua_State *L) {
  size_t n, i = 0;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  int flags = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c == '"') { /* skip the string, honouring escapes */
      for (i++; i < n && s[i] != '"'; i++)
        if (s[i] == '\\') i++;
      i++;
    } else if (c == '[') {
      size_t j = i + 1;
      while (j < n && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r')) j++;
      if (j < n && s[j] == ']') flags |= 1;
      i++;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      size_t start = i, digits = 0;
      if (c == '-') i++;
      while (i < n && s[i] >= '0' && s[i] <= '9') { i++; digits++; }
      flags |= 4;
      if (digits >= 16 && !(i < n && (s[i] == '.' || s[i] == 'e' || s[i] == 'E'))) flags |= 2;
      if (i == start) i++;
    } else {
      i++;
    }
  }
  lua_pushinteger(L, flags);
  return 1;
}

static const luaL_Reg funcs[] = {
  {"json_scan", json_scan},
  {NULL, NULL},
};

void spapi_json_open(lua_State *L) {
  luaL_setfuncs(L, funcs, 0);
}
