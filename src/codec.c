/* Codecs: RFC 3986 percent-encoding, base64, hex, SHA-256/HMAC, gzip/gunzip,
 * MD5, AES-256-CBC, random bytes. Outputs are built in memory owned by userdata, so a
 * Lua error (out of memory) can never leak a heap block. */
#include <string.h>
#include <zlib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include "spapi.h"

#define ZSTREAM_MT "spapi.ZStream"

static int push_buf_result(lua_State *L, spapi_buf *b) {
  lua_pushlstring(L, b->p ? b->p : "", b->len);
  return 1;
}

/* --- percent-encoding ------------------------------------------------------ */

static int unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

/* Most values (ids, SKUs, marketplace ids) need no encoding: the argument is
 * returned as it is. Short results are built on the C stack. */
static int l_urlencode(lua_State *L) {
  size_t n, i = 0;
  const char *s = luaL_checklstring(L, 1, &n);
  while (i < n && unreserved((unsigned char)s[i])) i++;
  if (i == n) {
    lua_settop(L, 1);
    return 1;
  }
  if (n <= 256) {
    char out[768];
    spapi_buf b;
    b.p = out;
    b.len = 0;
    b.cap = sizeof(out);
    spapi_urlencode_buf(&b, s, n); /* fits: 3 * n bytes at most */
    lua_pushlstring(L, out, b.len);
    return 1;
  }
  {
    spapi_buf *b = spapi_buf_push(L);
    if (!spapi_urlencode_buf(b, s, n)) return luaL_error(L, "urlencode: out of memory");
    return push_buf_result(L, b);
  }
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int l_urldecode(lua_State *L) {
  size_t n, i, o = 0;
  const char *s = luaL_checklstring(L, 1, &n);
  int plus = lua_toboolean(L, 2);
  char *out = spapi_scratch(L, n);
  for (i = 0; i < n; i++) {
    char c = s[i];
    if (c == '%' && i + 2 < n) {
      int h = hexval((unsigned char)s[i + 1]);
      int l = hexval((unsigned char)s[i + 2]);
      if (h >= 0 && l >= 0) {
        out[o++] = (char)(h * 16 + l);
        i += 2;
        continue;
      }
    }
    out[o++] = (plus && c == '+') ? ' ' : c;
  }
  lua_pushlstring(L, out, o);
  return 1;
}

/* --- hex ------------------------------------------------------------------- */

static int l_hex(lua_State *L) {
  static const char HEXL[] = "0123456789abcdef";
  size_t n, i;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  char *out = spapi_scratch(L, n * 2);
  for (i = 0; i < n; i++) {
    out[2 * i] = HEXL[s[i] >> 4];
    out[2 * i + 1] = HEXL[s[i] & 15];
  }
  lua_pushlstring(L, out, n * 2);
  return 1;
}

/* --- base64 ---------------------------------------------------------------- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int l_b64encode(lua_State *L) {
  size_t n, i, o = 0;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  char *out = spapi_scratch(L, ((n + 2) / 3) * 4);
  for (i = 0; i + 2 < n; i += 3) {
    unsigned v = ((unsigned)s[i] << 16) | ((unsigned)s[i + 1] << 8) | s[i + 2];
    out[o++] = B64[(v >> 18) & 63];
    out[o++] = B64[(v >> 12) & 63];
    out[o++] = B64[(v >> 6) & 63];
    out[o++] = B64[v & 63];
  }
  if (n - i == 1) {
    unsigned v = (unsigned)s[i] << 16;
    out[o++] = B64[(v >> 18) & 63];
    out[o++] = B64[(v >> 12) & 63];
    out[o++] = '=';
    out[o++] = '=';
  } else if (n - i == 2) {
    unsigned v = ((unsigned)s[i] << 16) | ((unsigned)s[i + 1] << 8);
    out[o++] = B64[(v >> 18) & 63];
    out[o++] = B64[(v >> 12) & 63];
    out[o++] = B64[(v >> 6) & 63];
    out[o++] = '=';
  }
  lua_pushlstring(L, out, o);
  return 1;
}

static int b64val(int c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

static int l_b64decode(lua_State *L) {
  size_t n, i, o = 0;
  const char *s = luaL_checklstring(L, 1, &n);
  char *out = spapi_scratch(L, (n / 4 + 1) * 3);
  unsigned acc = 0;
  int bits = 0, pad = 0, nchars = 0;
  for (i = 0; i < n; i++) {
    int c = (unsigned char)s[i], v;
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    if (c == '=') { pad++; continue; }
    if (pad) {
      lua_pushnil(L);
      lua_pushliteral(L, "b64decode: data after padding");
      return 2;
    }
    v = b64val(c);
    if (v < 0) {
      lua_pushnil(L);
      lua_pushfstring(L, "b64decode: invalid character at offset %d", (int)i);
      return 2;
    }
    nchars++;
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (char)((acc >> bits) & 0xFF);
    }
  }
  if (nchars % 4 == 1 || pad > 2) {
    lua_pushnil(L);
    lua_pushliteral(L, "b64decode: truncated input");
    return 2;
  }
  lua_pushlstring(L, out, o);
  return 1;
}

/* --- digests --------------------------------------------------------------- */

/* the digest of argument 1 under md, pushed as raw bytes; why names the
 * function in the error OpenSSL's refusal raises (nothing is held then) */
static int push_digest(lua_State *L, const EVP_MD *type, const char *why) {
  size_t n;
  unsigned int mlen = 0;
  unsigned char md[EVP_MAX_MD_SIZE];
  const char *s = luaL_checklstring(L, 1, &n);
  if (!EVP_Digest(s, n, md, &mlen, type, NULL))
    return luaL_error(L, "%s", why);
  lua_pushlstring(L, (const char *)md, mlen);
  return 1;
}

static int l_sha256(lua_State *L) {
  return push_digest(L, EVP_sha256(), "sha256: OpenSSL failure");
}

/* core.md5(s) → 16 raw bytes. Not for security: Merchant Fulfillment's label
 * checksum (FileContents.Checksum, a base64 MD5) is the one use. */
static int l_md5(lua_State *L) {
  return push_digest(L, EVP_md5(), "md5: OpenSSL failure (MD5 unavailable, FIPS mode?)");
}

static int l_hmac_sha256(lua_State *L) {
  size_t kn, mn;
  unsigned int mlen = 0;
  unsigned char md[EVP_MAX_MD_SIZE];
  const char *k = luaL_checklstring(L, 1, &kn);
  const char *m = luaL_checklstring(L, 2, &mn);
  if (HMAC(EVP_sha256(), k, (int)kn, (const unsigned char *)m, mn, md, &mlen) == NULL)
    return luaL_error(L, "hmac_sha256: OpenSSL failure");
  lua_pushlstring(L, (const char *)md, mlen);
  return 1;
}

/* --- zlib ------------------------------------------------------------------ */

typedef struct zbox {
  z_stream z;
  int mode; /* 0 none, 1 inflate, 2 deflate */
  spapi_buf out;
} zbox;

static void zbox_release(zbox *b) {
  if (b->mode == 1) inflateEnd(&b->z);
  else if (b->mode == 2) deflateEnd(&b->z);
  b->mode = 0;
  spapi_buf_free(&b->out);
}

static int zbox_gc(lua_State *L) {
  zbox_release((zbox *)luaL_checkudata(L, 1, ZSTREAM_MT));
  return 0;
}

static zbox *zbox_push(lua_State *L) {
  zbox *b = (zbox *)spapi_newuserdata(L, sizeof(zbox));
  memset(b, 0, sizeof(*b));
  luaL_setmetatable(L, ZSTREAM_MT);
  return b;
}

static int fail(lua_State *L, zbox *b, const char *msg) {
  zbox_release(b);
  lua_pushnil(L);
  lua_pushstring(L, msg);
  return 2;
}

static int l_gunzip(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_Number maxn = luaL_optnumber(L, 2, 256.0 * 1024 * 1024);
  size_t max = maxn < 0 ? 0 : (maxn > 1e15 ? (size_t)1e15 : (size_t)maxn);
  zbox *b = zbox_push(L);
  int rc;
  if (n == 0) return fail(L, b, "gunzip: empty input");
  if (inflateInit2(&b->z, 15 + 32) != Z_OK) return fail(L, b, "gunzip: inflateInit failed");
  b->mode = 1;
  b->z.next_in = (Bytef *)s;
  b->z.avail_in = 0;
  {
    size_t left = n;
    for (;;) {
      size_t chunk;
      if (b->z.avail_in == 0 && left > 0) {
        unsigned take = left > 0x40000000u ? 0x40000000u : (unsigned)left;
        b->z.avail_in = take;
        left -= take;
      }
      chunk = b->out.cap - b->out.len;
      if (chunk < 16384) {
        size_t want = b->out.len < 65536 ? 65536 : b->out.len;
        if (!spapi_buf_reserve(&b->out, want)) return fail(L, b, "gunzip: out of memory");
        chunk = b->out.cap - b->out.len;
      }
      if (chunk > 0x40000000u) chunk = 0x40000000u;
      b->z.next_out = (Bytef *)(b->out.p + b->out.len);
      b->z.avail_out = (uInt)chunk;
      rc = inflate(&b->z, Z_NO_FLUSH);
      b->out.len += chunk - b->z.avail_out;
      if (b->out.len > max) return fail(L, b, "gunzip: output exceeds max_bytes");
      if (rc == Z_STREAM_END) {
        /* concatenated members: continue with the next one, if any */
        if (b->z.avail_in == 0 && left == 0) break;
        if (inflateReset(&b->z) != Z_OK) return fail(L, b, "gunzip: inflateReset failed");
        continue;
      }
      if (rc == Z_OK) continue;
      if (rc == Z_BUF_ERROR) {
        if (b->z.avail_in == 0 && left == 0) return fail(L, b, "gunzip: truncated input");
        continue;
      }
      if (rc == Z_MEM_ERROR) return fail(L, b, "gunzip: out of memory");
      {
        char msg[200];
        const char *zm = b->z.msg;
        size_t ml;
        strcpy(msg, "gunzip: invalid data");
        if (zm) {
          ml = strlen(msg);
          strncat(msg + ml, ": ", sizeof(msg) - ml - 1);
          ml = strlen(msg);
          strncat(msg + ml, zm, sizeof(msg) - ml - 1);
        }
        return fail(L, b, msg);
      }
    }
  }
  inflateEnd(&b->z);
  b->mode = 0;
  lua_pushlstring(L, b->out.p ? b->out.p : "", b->out.len);
  spapi_buf_free(&b->out);
  return 1;
}

static int l_gzip(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  int level = (int)luaL_optinteger(L, 2, Z_DEFAULT_COMPRESSION);
  zbox *b;
  int rc;
  luaL_argcheck(L, level >= -1 && level <= 9, 2, "gzip: level must be -1..9");
  b = zbox_push(L);
  if (deflateInit2(&b->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return fail(L, b, "gzip: deflateInit failed");
  b->mode = 2;
  b->z.next_in = (Bytef *)s;
  {
    size_t left = n;
    for (;;) {
      size_t chunk;
      int flush;
      if (b->z.avail_in == 0 && left > 0) {
        unsigned take = left > 0x40000000u ? 0x40000000u : (unsigned)left;
        b->z.avail_in = take;
        left -= take;
      }
      flush = (left == 0) ? Z_FINISH : Z_NO_FLUSH;
      if (b->out.cap - b->out.len < 16384) {
        size_t want = b->out.len < 65536 ? 65536 : b->out.len;
        if (!spapi_buf_reserve(&b->out, want)) return fail(L, b, "gzip: out of memory");
      }
      chunk = b->out.cap - b->out.len;
      if (chunk > 0x40000000u) chunk = 0x40000000u;
      b->z.next_out = (Bytef *)(b->out.p + b->out.len);
      b->z.avail_out = (uInt)chunk;
      rc = deflate(&b->z, flush);
      b->out.len += chunk - b->z.avail_out;
      if (rc == Z_STREAM_END) break;
      if (rc != Z_OK && rc != Z_BUF_ERROR) return fail(L, b, "gzip: deflate failed");
    }
  }
  deflateEnd(&b->z);
  b->mode = 0;
  lua_pushlstring(L, b->out.p ? b->out.p : "", b->out.len);
  spapi_buf_free(&b->out);
  return 1;
}

/* --- AES-256-CBC ----------------------------------------------------------- */

static int aes(lua_State *L, int enc) {
  size_t kn, ivn, n;
  const char *key = luaL_checklstring(L, 1, &kn);
  const char *iv = luaL_checklstring(L, 2, &ivn);
  const char *data = luaL_checklstring(L, 3, &n);
  const char *op = enc ? "aes256cbc_encrypt" : "aes256cbc_decrypt";
  unsigned char *out;
  int l1 = 0, l2 = 0, ok;
  EVP_CIPHER_CTX *ctx;
  if (kn != 32) return luaL_error(L, "%s: key must be 32 bytes (got %d)", op, (int)kn);
  if (ivn != 16) return luaL_error(L, "%s: iv must be 16 bytes (got %d)", op, (int)ivn);
  if (n > 0x7FFFFFF0u) return luaL_error(L, "%s: data too large", op);
  out = (unsigned char *)spapi_scratch(L, n + 32);
  ctx = EVP_CIPHER_CTX_new();
  if (ctx == NULL) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: out of memory", op);
    return 2;
  }
  /* no Lua call may raise between EVP_CIPHER_CTX_new and _free */
  ok = EVP_CipherInit_ex(ctx, EVP_aes_256_cbc(), NULL, (const unsigned char *)key,
                         (const unsigned char *)iv, enc) &&
       EVP_CipherUpdate(ctx, out, &l1, (const unsigned char *)data, (int)n) &&
       EVP_CipherFinal_ex(ctx, out + l1, &l2);
  EVP_CIPHER_CTX_free(ctx);
  if (!ok) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", op, enc ? "cipher failure" : "bad padding or data length (wrong key?)");
    return 2;
  }
  lua_pushlstring(L, (const char *)out, (size_t)l1 + (size_t)l2);
  return 1;
}

static int l_aes_encrypt(lua_State *L) { return aes(L, 1); }
static int l_aes_decrypt(lua_State *L) { return aes(L, 0); }

/* --- random ---------------------------------------------------------------- */

static int l_random_bytes(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  char *out;
  luaL_argcheck(L, n >= 0 && n <= 0x40000000, 1, "random_bytes: n must be 0..2^30");
  out = spapi_scratch(L, (size_t)n);
  if (n > 0 && RAND_bytes((unsigned char *)out, (int)n) != 1)
    return luaL_error(L, "random_bytes: RAND_bytes failed");
  lua_pushlstring(L, out, (size_t)n);
  return 1;
}

static const luaL_Reg funcs[] = {
  {"urlencode", l_urlencode},
  {"urldecode", l_urldecode},
  {"hex", l_hex},
  {"b64encode", l_b64encode},
  {"b64decode", l_b64decode},
  {"sha256", l_sha256},
  {"md5", l_md5},
  {"hmac_sha256", l_hmac_sha256},
  {"gunzip", l_gunzip},
  {"gzip", l_gzip},
  {"aes256cbc_encrypt", l_aes_encrypt},
  {"aes256cbc_decrypt", l_aes_decrypt},
  {"random_bytes", l_random_bytes},
  {NULL, NULL},
};

void spapi_codec_open(lua_State *L) {
  if (luaL_newmetatable(L, ZSTREAM_MT)) {
    lua_pushcfunction(L, zbox_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, funcs, 0);
}
