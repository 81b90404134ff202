#include "spapi.h"
void spapi_lwa_open(lua_State *L) { (void)L; }
