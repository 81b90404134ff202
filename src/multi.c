/* session:multi(): a libcurl multi handle running many requests at once over
 * the session's share and pool of easy handles. */
#include <string.h>
#include "http.h"

typedef struct multi {
  CURLM *m;
  session *s;
  int sref;        /* registry reference keeping the session alive */
  req *inflight;   /* linked list */
  req *done;       /* completed, not yet returned to Lua */
  int count;
  lua_Integer next_id;
  int closed;
  int waiting;       /* wait is making its results (Lua code may run: finalizers) */
  int close_pending; /* closed meanwhile: wait releases it when done */
} multi;

static multi *check_multi(lua_State *L, int i) { return (multi *)luaL_checkudata(L, i, MULTI_MT); }

static multi *open_multi(lua_State *L, int i, const char *op) {
  multi *m = (i == 1 ? (multi *)spapi_http_self(L) : NULL);
  if (m == NULL) m = check_multi(L, i);
  if (m->closed) luaL_error(L, "%s: the multi is closed", op);
  return m;
}

static void multi_release(lua_State *L, multi *m) {
  req *r, *nx;
  for (r = m->inflight; r; r = nx) {
    nx = r->next;
    if (m->m) curl_multi_remove_handle(m->m, r->easy);
    if (m->s) spapi_pool_give(m->s, r);
    else spapi_req_free(r);
  }
  m->inflight = NULL;
  for (r = m->done; r; r = nx) {
    nx = r->next;
    if (m->s) spapi_pool_give(m->s, r);
    else spapi_req_free(r);
  }
  m->done = NULL;
  m->count = 0;
  if (m->m) curl_multi_cleanup(m->m);
  m->m = NULL;
  if (m->s) {
    m->s->nmulti--;
    if (m->s->closed) spapi_session_free_share(m->s);
    m->s = NULL;
  }
  if (m->sref != LUA_NOREF && m->sref != LUA_REFNIL) luaL_unref(L, LUA_REGISTRYINDEX, m->sref);
  m->sref = LUA_NOREF;
}

/* Closed from a finalizer while wait makes its results: wait releases it after. */
static int multi_close(lua_State *L) {
  multi *m = check_multi(L, 1);
  if (m->closed) return 0;
  m->closed = 1;
  if (m->waiting) m->close_pending = 1;
  else multi_release(L, m);
  return 0;
}

/* session:multi() → spapi.Multi (a method of the session: its upvalues are the methods'). */
int spapi_multi_new(lua_State *L) {
  session *s = spapi_session_open_arg(L, 1, "multi");
  multi *m = (multi *)spapi_newuserdata(L, sizeof(multi));
  memset(m, 0, sizeof(*m));
  m->sref = LUA_NOREF;
  m->closed = 1; /* until fully set up, __gc has nothing to release */
  luaL_setmetatable(L, MULTI_MT);
  lua_pushvalue(L, 1);
  m->sref = luaL_ref(L, LUA_REGISTRYINDEX);
  m->m = curl_multi_init();
  m->s = s;
  s->nmulti++;
  m->closed = 0;
  if (m->m == NULL) return luaL_error(L, "multi: out of memory");
  if (s->max_host_connections > 0)
    curl_multi_setopt(m->m, CURLMOPT_MAX_HOST_CONNECTIONS, s->max_host_connections);
  m->next_id = 1;
  return 1;
}

/* multi:add(req) → id */
static int multi_add(lua_State *L) {
  multi *m = open_multi(L, 1, "multi:add");
  session *s = m->s;
  reqopts o;
  req *r;
  if (s->closed) return luaL_error(L, "multi:add: the session is closed");
  spapi_req_read(L, 2, s, &o, "multi:add");
  /* a finalizer run while the options were read may have closed either */
  if (m->closed) return luaL_error(L, "multi:add: the multi is closed");
  if (s->closed) return luaL_error(L, "multi:add: the session is closed");
  r = spapi_pool_take(s);
  if (r == NULL) return luaL_error(L, "multi:add: out of memory");
  if (spapi_req_setup(r, &o) != 0) {
    spapi_pool_give(s, r);
    return luaL_error(L, "multi:add: cannot configure libcurl (out of memory?)");
  }
  spapi_req_desc(r, o.method, o.url, o.url_len);
  r->id = m->next_id++;
  if (curl_multi_add_handle(m->m, r->easy) != CURLM_OK) {
    spapi_pool_give(s, r);
    return luaL_error(L, "multi:add: curl_multi_add_handle failed");
  }
  r->next = m->inflight;
  m->inflight = r;
  m->count++;
  spapi_pushint(L, r->id);
  return 1;
}

/* Moves finished transfers from inflight to done. No Lua calls. */
static int harvest(multi *m) {
  CURLMsg *msg;
  int left, moved = 0;
  while ((msg = curl_multi_info_read(m->m, &left)) != NULL) {
    req **pp, *r;
    if (msg->msg != CURLMSG_DONE) continue;
    for (pp = &m->inflight; *pp; pp = &(*pp)->next)
      if ((*pp)->easy == msg->easy_handle) break;
    r = *pp;
    if (r == NULL) continue;
    r->rc = msg->data.result;
    *pp = r->next;
    curl_multi_remove_handle(m->m, r->easy);
    spapi_session_count(m->s, r);
    r->next = m->done;
    m->done = r;
    m->count--;
    moved++;
  }
  return moved;
}

/* wait's results, run protected by multi_wait: { id, status, headers, body } or
 * { id, err, kind, curl_code } per finished transfer, which goes back to the
 * pool once its table is made. Argument 1: the multi; upvalues: the methods'. */
static int wait_results(lua_State *L) {
  multi *m = (multi *)lua_touserdata(L, 1);
  int n = 0;
  {
    req *r;
    for (r = m->done; r != NULL; r = r->next) n++;
    lua_createtable(L, n, 0);
    n = 0;
  }
  while (m->done != NULL) {
    req *r = m->done;
    lua_createtable(L, 0, 4);
    push_opt_name(L, F_ID);
    spapi_pushint(L, r->id);
    lua_rawset(L, -3);
    if (spapi_req_failed(r)) {
      push_opt_name(L, F_ERR);
      spapi_req_push_error(L, r);
      lua_rawset(L, -3);
      push_opt_name(L, F_KIND);
      lua_pushstring(L, spapi_req_kind(r));
      lua_rawset(L, -3);
      push_opt_name(L, F_CODE);
      spapi_pushint(L, (int)r->rc);
      lua_rawset(L, -3);
    } else {
      long status = 0;
      curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
      push_opt_name(L, F_STATUS);
      spapi_pushint(L, status);
      lua_rawset(L, -3);
      push_opt_name(L, F_HEADERS);
      spapi_push_headers(L, m->s, r);
      lua_rawset(L, -3);
      push_opt_name(L, F_BODY);
      lua_pushlstring(L, r->body.p ? r->body.p : "", r->body.len);
      lua_rawset(L, -3);
    }
    lua_rawseti(L, -2, ++n);
    m->done = r->next;
    spapi_pool_give(m->s, r);
  }
  return 1;
}

/* multi:wait([timeout]) → list of results. Making them allocates, and a
 * finalizer run then may close the multi (or call wait again): so they are made
 * under lua_pcall with the multi marked waiting, a close meanwhile is carried
 * out after, and a nested wait is refused. */
static int multi_wait(lua_State *L) {
  multi *m = open_multi(L, 1, "multi:wait");
  int forever = lua_isnoneornil(L, 2), rc;
  double timeout = forever ? 0 : (double)luaL_checknumber(L, 2);
  double deadline = spapi_monotonic() + (timeout > 0 ? timeout : 0);
  if (m->waiting) return luaL_error(L, "multi:wait: already waiting (called from a finalizer?)");
  lua_settop(L, 1);
  for (;;) {
    int running = 0;
    curl_multi_perform(m->m, &running);
    harvest(m);
    if (m->done != NULL || m->count == 0) break;
    {
      double left = forever ? 1.0 : deadline - spapi_monotonic();
      if (left <= 0) break;
      curl_multi_poll(m->m, NULL, 0, left >= 1.0 ? 1000 : (int)(left * 1000) + 1, NULL);
    }
  }
  spapi_http_push_upvalues(L);
  lua_pushcclosure(L, wait_results, 1 + OPT_N);
  lua_pushvalue(L, 1);
  m->waiting = 1;
  rc = lua_pcall(L, 1, 1, 0);
  m->waiting = 0;
  if (m->close_pending) {
    m->close_pending = 0;
    multi_release(L, m);
  }
  if (rc != 0) return lua_error(L);
  return 1;
}

static int multi_count(lua_State *L) {
  multi *m = check_multi(L, 1);
  spapi_pushint(L, m->count);
  return 1;
}

static int multi_tostring(lua_State *L) {
  multi *m = check_multi(L, 1);
  if (m->closed) lua_pushfstring(L, "spapi.Multi: %p (closed)", (void *)m);
  else lua_pushfstring(L, "spapi.Multi: %p (%d in flight)", (void *)m, m->count);
  return 1;
}

static const luaL_Reg multi_methods[] = {
  {"add", multi_add},
  {"wait", multi_wait},
  {"count", multi_count},
  {"close", multi_close},
  {NULL, NULL},
};

void spapi_multi_open(lua_State *L) {
  spapi_http_class(L, MULTI_MT, multi_methods, multi_close, multi_close, multi_tostring);
}
