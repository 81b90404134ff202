/* Time, file and loopback-network helpers: wall clock, monotonic clock, sleep,
 * isatty, fsync, a free ephemeral port, and a TCP connect probe. */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include "spapi.h"

static double ts_seconds(const struct timespec *ts) {
  return (double)ts->tv_sec + (double)ts->tv_nsec / 1e9;
}

static int l_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, ts_seconds(&ts));
  return 1;
}

double spapi_monotonic(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts_seconds(&ts);
}

static int l_monotonic(lua_State *L) {
  lua_pushnumber(L, spapi_monotonic());
  return 1;
}

/* core.clocks() → now, monotonic: both clocks in one call (the call path reads
 * both on every attempt) */
static int l_clocks(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, ts_seconds(&ts));
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, ts_seconds(&ts));
  return 2;
}

static int l_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  struct timespec req, rem;
  luaL_argcheck(L, s == s && s < 1e9, 1, "sleep: seconds must be a finite number");
  if (s <= 0) return 0;
  req.tv_sec = (time_t)s;
  req.tv_nsec = (long)((s - (double)req.tv_sec) * 1e9);
  if (req.tv_nsec >= 1000000000L) req.tv_nsec = 999999999L;
  while (nanosleep(&req, &rem) != 0 && errno == EINTR) req = rem;
  return 0;
}

/* --- files ------------------------------------------------------------------ */

/* core.isatty(fd | file) → boolean: is the descriptor (0 stdin, 1 stdout, 2 stderr,
 * or an open Lua file handle's) a terminal? A descriptor that is not open is not. */
static int l_isatty(lua_State *L) {
  void *ud = luaL_testudata(L, 1, "FILE*"); /* LUA_FILEHANDLE on 5.1 .. 5.4 and LuaJIT */
  int fd;
  if (ud != NULL) {
#if LUA_VERSION_NUM >= 502
    luaL_Stream *st = (luaL_Stream *)ud;
    FILE *f = st->closef != NULL ? st->f : NULL; /* 5.4 keeps f after close */
#else
    FILE *f = *(FILE **)ud; /* LuaJIT's IOFileUD starts with the FILE *, NULL once closed */
#endif
    luaL_argcheck(L, f != NULL, 1, "isatty: the file is closed");
    fd = fileno(f);
  } else {
    lua_Integer n;
    luaL_argcheck(L, lua_type(L, 1) == LUA_TNUMBER, 1, "isatty: fd must be an integer or a file");
    n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0 && n <= INT_MAX, 1, "isatty: fd must be >= 0");
    fd = (int)n;
  }
  lua_pushboolean(L, fd >= 0 && isatty(fd) == 1);
  return 1;
}

/* core.fsync(path) → true | nil, message: open, fsync, close — a file or a directory
 * (after a rename, fsync the directory so that the new name is durable). */
static int l_fsync(lua_State *L) {
  size_t n;
  const char *path = luaL_checklstring(L, 1, &n);
  int fd, e;
  luaL_argcheck(L, n > 0 && strlen(path) == n, 1, "fsync: path must be a non-empty string without NUL");
  do fd = open(path, O_RDONLY | O_CLOEXEC); while (fd < 0 && errno == EINTR);
  if (fd < 0 && errno == EACCES) { /* a write-only file still fsyncs */
    do fd = open(path, O_WRONLY | O_CLOEXEC); while (fd < 0 && errno == EINTR);
  }
  if (fd < 0) {
    e = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "fsync: cannot open %s: %s", path, strerror(e));
    return 2;
  }
  e = fsync(fd) == 0 ? 0 : errno;
  if (close(fd) != 0 && e == 0 && errno != EINTR) e = errno;
  if (e != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "fsync: %s: %s", path, strerror(e));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* --- loopback network -------------------------------------------------------- */

static int l_free_port(lua_State *L) {
  struct sockaddr_in a;
  socklen_t alen = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM, 0), port;
  if (fd < 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "free_port: socket: %s", strerror(errno));
    return 2;
  }
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
    int e = errno;
    close(fd);
    lua_pushnil(L);
    lua_pushfstring(L, "free_port: %s", strerror(e));
    return 2;
  }
  port = ntohs(a.sin_port);
  close(fd);
  spapi_pushint(L, port);
  return 1;
}

/* Try one address; returns 0 on success, an errno value otherwise. */
static int probe_one(const struct addrinfo *ai, double deadline) {
  int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol), fl, err = 0;
  if (fd < 0) return errno;
  fl = fcntl(fd, F_GETFL, 0);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      err = errno;
    } else {
      for (;;) {
        struct pollfd p;
        double left = deadline - spapi_monotonic();
        int rc;
        socklen_t elen = sizeof(err);
        if (left <= 0) { err = ETIMEDOUT; break; }
        p.fd = fd;
        p.events = POLLOUT;
        p.revents = 0;
        rc = poll(&p, 1, (int)ceil(left * 1000));
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) { err = errno; break; }
        if (rc == 0) { err = ETIMEDOUT; break; }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) err = errno;
        break;
      }
    }
  }
  close(fd);
  return err;
}

static int l_tcp_probe(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2);
  lua_Number timeout = luaL_optnumber(L, 3, 1.0);
  struct addrinfo hints, *res = NULL, *ai;
  char ports[16];
  int rc, err = 0;
  double deadline;
  luaL_argcheck(L, port > 0 && port < 65536, 2, "tcp_probe: port must be 1..65535");
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  snprintf(ports, sizeof(ports), "%d", (int)port);
  rc = getaddrinfo(host, ports, &hints, &res);
  if (rc != 0) {
    lua_pushboolean(L, 0);
    lua_pushfstring(L, "tcp_probe: cannot resolve %s: %s", host, gai_strerror(rc));
    return 2;
  }
  deadline = spapi_monotonic() + (timeout > 0 ? timeout : 0.001);
  for (ai = res; ai != NULL; ai = ai->ai_next) {
    err = probe_one(ai, deadline);
    if (err == 0) break;
  }
  freeaddrinfo(res);
  if (err == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushboolean(L, 0);
  lua_pushfstring(L, "tcp_probe %s:%d: %s", host, (int)port,
                  err == ETIMEDOUT ? "timeout" : strerror(err));
  return 2;
}

static const luaL_Reg funcs[] = {
  {"now", l_now},
  {"monotonic", l_monotonic},
  {"clocks", l_clocks},
  {"sleep", l_sleep},
  {"isatty", l_isatty},
  {"fsync", l_fsync},
  {"free_port", l_free_port},
  {"tcp_probe", l_tcp_probe},
  {NULL, NULL},
};

void spapi_sys_open(lua_State *L) { luaL_setfuncs(L, funcs, 0); }
