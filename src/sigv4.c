#include "spapi.h"
void spapi_sigv4_open(lua_State *L) { (void)L; }
