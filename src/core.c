/* spapi.core: registration only. Every concern lives in its own file and adds
 * its functions to the module table through spapi_<file>_open(L). */
#include "spapi.h"

__attribute__((visibility("default"))) int luaopen_spapi_core(lua_State *L) {
  lua_newtable(L);
  spapi_buf_open(L);
  spapi_codec_open(L);
  spapi_sys_open(L);
  spapi_lwa_open(L);
  spapi_sigv4_open(L);
  spapi_http_open(L);
  spapi_json_open(L);
  lua_pushliteral(L, "0.1.0");
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
