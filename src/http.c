#include "spapi.h"
void spapi_http_open(lua_State *L) { (void)L; }
