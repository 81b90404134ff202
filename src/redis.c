/* core.redis: one blocking connection to a Redis server through hiredis, for the
 * Redis store of plain Lua (inside nginx the store speaks RESP over cosockets).
 *
 *   core.redis_connect(host, port [, {connect_timeout=, command_timeout=, password=, db=}])
 *     → spapi.Redis | nil, message, kind
 *   r:command(name, arg...) → reply | nil, message, kind
 *     reply: a string (bulk and status replies), an integer, false (Redis nil), or a
 *     table of replies (arrays); kind: "reply" (the server answered with an error:
 *     the connection stays usable), "timeout", "closed", "io", "protocol", "oom"
 *     (the connection is closed then: its state is unknown)
 *   r:close() (also __close and __gc; safe twice), r:closed() → boolean
 *
 * The userdata is made and given its metatable before the connection, so __gc
 * always frees it. A reply being converted to Lua is owned by the userdata
 * (r->reply), so a memory error raised while pushing it leaves it to __gc. The
 * password never appears in a message or in tostring. SIGPIPE from a server
 * that went away is blocked around each exchange (and a pending one consumed),
 * so a dead server is an error, not a dead process. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <hiredis/hiredis.h>
#include "spapi.h"

#define REDIS_MT "spapi.Redis"
#define MAX_DEPTH 8

typedef struct redis_conn {
  redisContext *c;
  redisReply *reply; /* being pushed to Lua; freed by close/__gc after an error */
  int port;
} redis_conn;

static redis_conn *check_conn(lua_State *L) {
  return (redis_conn *)luaL_checkudata(L, 1, REDIS_MT);
}

static void conn_free(redis_conn *r) {
  if (r->reply != NULL) {
    freeReplyObject(r->reply);
    r->reply = NULL;
  }
  if (r->c != NULL) {
    redisFree(r->c);
    r->c = NULL;
  }
}

static int conn_close(lua_State *L) {
  conn_free(check_conn(L));
  return 0;
}

static int conn_closed(lua_State *L) {
  lua_pushboolean(L, check_conn(L)->c == NULL);
  return 1;
}

static int conn_tostring(lua_State *L) {
  redis_conn *r = check_conn(L);
  lua_pushfstring(L, "spapi.Redis: port %d%s", r->port, r->c == NULL ? " (closed)" : "");
  return 1;
}

/* A context's error as kind and message (the context is then unusable). */
static const char *err_kind(redisContext *c) {
  switch (c->err) {
  case REDIS_ERR_EOF: return "closed";
  case REDIS_ERR_PROTOCOL: return "protocol";
  case REDIS_ERR_OOM: return "oom";
#ifdef REDIS_ERR_TIMEOUT
  case REDIS_ERR_TIMEOUT: return "timeout";
#endif
  case REDIS_ERR_IO:
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ETIMEDOUT || errno == EINPROGRESS) return "timeout";
    return "io";
  default: return "io";
  }
}

/* nil, message, kind for the connection's failure; the connection is closed. */
static int push_failure(lua_State *L, redis_conn *r, const char *what) {
  const char *kind = err_kind(r->c);
  if (strcmp(what, "connect") == 0 && strcmp(kind, "timeout") != 0) kind = "connect";
  lua_pushnil(L);
  lua_pushfstring(L, "redis %s: %s", what, r->c->errstr[0] ? r->c->errstr : kind);
  lua_pushstring(L, kind);
  conn_free(r);
  return 3;
}

/* Blocks SIGPIPE for one exchange; sigpipe_end consumes one raised meanwhile. */
typedef struct pipe_guard {
  sigset_t old;
  int was_pending;
} pipe_guard;

static void sigpipe_begin(pipe_guard *g) {
  sigset_t set, pending;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  sigpending(&pending);
  g->was_pending = sigismember(&pending, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void sigpipe_end(pipe_guard *g) {
  sigset_t set, pending;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  sigpending(&pending);
  if (!g->was_pending && sigismember(&pending, SIGPIPE)) {
    struct timespec zero = {0, 0};
    while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR) {}
  }
  pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

static struct timeval to_timeval(double s) {
  struct timeval tv;
  if (s < 0.001) s = 0.001;
  tv.tv_sec = (time_t)s;
  tv.tv_usec = (suseconds_t)((s - (double)tv.tv_sec) * 1e6);
  return tv;
}

/* Pushes reply as a Lua value (may raise a memory error: the caller's reply is
 * owned by the userdata). */
static void push_reply(lua_State *L, const redisReply *rep, int depth) {
  switch (rep->type) {
  case REDIS_REPLY_STRING:
  case REDIS_REPLY_STATUS:
  case REDIS_REPLY_ERROR:
#ifdef REDIS_REPLY_VERB
  case REDIS_REPLY_VERB:
#endif
#ifdef REDIS_REPLY_BIGNUM
  case REDIS_REPLY_BIGNUM:
#endif
    lua_pushlstring(L, rep->str, rep->len);
    break;
  case REDIS_REPLY_INTEGER:
    spapi_pushint(L, rep->integer);
    break;
#ifdef REDIS_REPLY_DOUBLE
  case REDIS_REPLY_DOUBLE:
    lua_pushnumber(L, rep->dval);
    break;
#endif
#ifdef REDIS_REPLY_BOOL
  case REDIS_REPLY_BOOL:
    lua_pushboolean(L, rep->integer != 0);
    break;
#endif
  case REDIS_REPLY_ARRAY:
#ifdef REDIS_REPLY_SET
  case REDIS_REPLY_SET:
#endif
#ifdef REDIS_REPLY_MAP
  case REDIS_REPLY_MAP:
#endif
    {
      size_t i;
      if (depth >= MAX_DEPTH) {
        lua_pushboolean(L, 0);
        break;
      }
      luaL_checkstack(L, 4, "redis reply");
      lua_createtable(L, (int)rep->elements, 0);
      for (i = 0; i < rep->elements; i++) {
        push_reply(L, rep->element[i], depth + 1);
        lua_rawseti(L, -2, (int)i + 1);
      }
    }
    break;
  default: /* REDIS_REPLY_NIL and anything newer */
    lua_pushboolean(L, 0);
  }
}

/* One command from the Lua arguments from index `first` on; leaves r->reply set
 * (the caller frees it) or returns 0 with the connection failed. */
static int exchange(lua_State *L, redis_conn *r, int first) {
  int top = lua_gettop(L), argc = top - first + 1, i;
  const char **argv;
  size_t *lens;
  pipe_guard g;
  char *mem = spapi_scratch(L, (size_t)argc * (sizeof(char *) + sizeof(size_t)));
  lens = (size_t *)mem;
  argv = (const char **)(mem + (size_t)argc * sizeof(size_t));
  for (i = 0; i < argc; i++) argv[i] = lua_tolstring(L, first + i, &lens[i]);
  sigpipe_begin(&g);
  r->reply = (redisReply *)redisCommandArgv(r->c, argc, argv, lens);
  sigpipe_end(&g);
  lua_pop(L, 1); /* the scratch */
  return r->reply != NULL;
}

static int conn_command(lua_State *L) {
  redis_conn *r = check_conn(L);
  int top = lua_gettop(L), i, n = 1;
  if (top < 2) return luaL_argerror(L, 2, "command: a command name is required");
  for (i = 2; i <= top; i++) {
    int t = lua_type(L, i);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
      return luaL_argerror(L, i, lua_pushfstring(L, "command: string or number expected, got %s",
                                                 luaL_typename(L, i)));
  }
  if (r->c == NULL) {
    lua_pushnil(L);
    lua_pushliteral(L, "redis: the connection is closed");
    lua_pushliteral(L, "closed");
    return 3;
  }
  if (!exchange(L, r, 2)) return push_failure(L, r, "command");
  if (r->reply->type == REDIS_REPLY_ERROR) {
    lua_pushnil(L);
    lua_pushlstring(L, r->reply->str, r->reply->len);
    lua_pushliteral(L, "reply");
    n = 3;
  } else {
    push_reply(L, r->reply, 0);
  }
  freeReplyObject(r->reply);
  r->reply = NULL;
  return n;
}

/* Sends one setup command with fixed arguments; 1 on success, else the failure
 * pushed (3 values) and 0. what names it in the message (never its arguments). */
static int setup(lua_State *L, redis_conn *r, const char *what, int argc, const char **argv, const size_t *lens) {
  pipe_guard g;
  redisReply *rep;
  sigpipe_begin(&g);
  rep = (redisReply *)redisCommandArgv(r->c, argc, argv, lens);
  sigpipe_end(&g);
  if (rep == NULL) {
    push_failure(L, r, what);
    return 0;
  }
  if (rep->type == REDIS_REPLY_ERROR) {
    r->reply = rep; /* owned by the userdata while the message is pushed */
    lua_pushnil(L);
    lua_pushfstring(L, "redis %s refused: %s", what, rep->str);
    lua_pushliteral(L, "reply");
    conn_free(r);
    return 0;
  }
  freeReplyObject(rep);
  return 1;
}

static double opt_number(lua_State *L, int t, const char *name, double dflt) {
  double v;
  if (t == 0) return dflt;
  spapi_rawfield(L, t, name);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return dflt;
  }
  if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) > 0))
    luaL_error(L, "redis_connect: %s must be a positive number", name);
  v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

static int l_connect(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2);
  int t = lua_isnoneornil(L, 3) ? 0 : 3;
  double ctimeout, timeout;
  const char *password = NULL;
  size_t pwlen = 0;
  lua_Integer db = 0;
  redis_conn *r;
  struct timeval tv;
  if (port <= 0 || port > 65535) return luaL_argerror(L, 2, "redis_connect: port must be 1..65535");
  if (t) luaL_checktype(L, 3, LUA_TTABLE);
  ctimeout = opt_number(L, t, "connect_timeout", 1.0);
  timeout = opt_number(L, t, "command_timeout", 1.0);
  if (t) {
    spapi_rawfield(L, t, "password");
    if (!lua_isnil(L, -1)) {
      if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "redis_connect: password must be a string");
      password = lua_tolstring(L, -1, &pwlen); /* anchored by the options table */
    }
    lua_pop(L, 1);
    spapi_rawfield(L, t, "db");
    if (!lua_isnil(L, -1)) {
      if (!lua_isnumber(L, -1) || lua_tonumber(L, -1) < 0 || lua_tonumber(L, -1) != (lua_Number)lua_tointeger(L, -1))
        return luaL_error(L, "redis_connect: db must be a non-negative integer");
      db = lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
  }
  /* everything read: the userdata and its metatable, then the connection */
  r = (redis_conn *)lua_newuserdata(L, sizeof(redis_conn));
  memset(r, 0, sizeof(*r));
  r->port = (int)port;
  luaL_setmetatable(L, REDIS_MT);
  r->c = redisConnectWithTimeout(host, (int)port, to_timeval(ctimeout));
  if (r->c == NULL) {
    lua_pushnil(L);
    lua_pushliteral(L, "redis connect: out of memory");
    lua_pushliteral(L, "oom");
    return 3;
  }
  if (r->c->err) return push_failure(L, r, "connect");
  tv = to_timeval(timeout);
  if (redisSetTimeout(r->c, tv) != REDIS_OK) return push_failure(L, r, "connect");
  if (password != NULL) {
    const char *argv[2] = {"AUTH", password};
    size_t lens[2] = {4, pwlen};
    if (!setup(L, r, "AUTH", 2, argv, lens)) return 3;
  }
  if (db != 0) {
    char num[32];
    const char *argv[2] = {"SELECT", num};
    size_t lens[2] = {6, 0};
    snprintf(num, sizeof num, "%lld", (long long)db);
    lens[1] = strlen(num);
    if (!setup(L, r, "SELECT", 2, argv, lens)) return 3;
  }
  return 1;
}

static const luaL_Reg methods[] = {
  {"command", conn_command},
  {"close", conn_close},
  {"closed", conn_closed},
  {NULL, NULL},
};

static const luaL_Reg funcs[] = {
  {"redis_connect", l_connect},
  {NULL, NULL},
};

void spapi_redis_open(lua_State *L) {
  if (luaL_newmetatable(L, REDIS_MT)) {
    luaL_newlibtable(L, methods);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, conn_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, conn_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, conn_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, REDIS_MT);
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, funcs, 0);
}
