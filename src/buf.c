/* Growable byte buffers owned either by a C struct (inside a userdata) or by a
 * userdata of their own. Nothing here raises a Lua error while memory is held. */
#include <stdlib.h>
#include <string.h>
#include "spapi.h"

#define BUF_MT "spapi.Buf"

int spapi_buf_reserve(spapi_buf *b, size_t extra) {
  size_t need, cap;
  char *p;
  if (extra > (size_t)-1 - b->len) return 0;
  need = b->len + extra;
  if (need <= b->cap) return 1;
  cap = b->cap ? b->cap : 256;
  while (cap < need) {
    if (cap > (size_t)-1 / 2) { cap = need; break; }
    cap *= 2;
  }
  p = realloc(b->p, cap);
  if (p == NULL) return 0;
  b->p = p;
  b->cap = cap;
  return 1;
}

int spapi_buf_add(spapi_buf *b, const void *s, size_t n) {
  if (n == 0) return 1;
  if (!spapi_buf_reserve(b, n)) return 0;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  return 1;
}

int spapi_buf_addstr(spapi_buf *b, const char *s) { return spapi_buf_add(b, s, strlen(s)); }

int spapi_buf_addc(spapi_buf *b, char c) { return spapi_buf_add(b, &c, 1); }

void spapi_buf_reset(spapi_buf *b) { b->len = 0; }

void spapi_buf_free(spapi_buf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

static int buf_gc(lua_State *L) {
  spapi_buf *b = (spapi_buf *)luaL_checkudata(L, 1, BUF_MT);
  spapi_buf_free(b);
  return 0;
}

spapi_buf *spapi_buf_push(lua_State *L) {
  spapi_buf *b = (spapi_buf *)spapi_newuserdata(L, sizeof(spapi_buf));
  memset(b, 0, sizeof(*b));
  luaL_setmetatable(L, BUF_MT);
  return b;
}

char *spapi_scratch(lua_State *L, size_t n) {
  return (char *)spapi_newuserdata(L, n ? n : 1);
}

static const char HEXU[] = "0123456789ABCDEF";

int spapi_urlencode_buf(spapi_buf *b, const char *s, size_t n) {
  size_t i;
  if (!spapi_buf_reserve(b, n * 3)) return 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        c == '-' || c == '.' || c == '_' || c == '~') {
      b->p[b->len++] = (char)c;
    } else {
      b->p[b->len++] = '%';
      b->p[b->len++] = HEXU[c >> 4];
      b->p[b->len++] = HEXU[c & 15];
    }
  }
  return 1;
}

void spapi_buf_open(lua_State *L) {
  if (luaL_newmetatable(L, BUF_MT)) {
    lua_pushcfunction(L, buf_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, "spapi.Buf");
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
}
