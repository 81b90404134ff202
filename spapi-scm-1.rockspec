rockspec_format = "3.0"
package = "spapi"
version = "scm-1"
source = { url = "git+file:///spapi" }
description = {
  summary = "Amazon Selling Partner API (SP-API) client with a C core: MCF, MLI, VDF, Buy Shipping",
  detailed = [[
    spapi scripts Amazon's Selling Partner API fulfillment programs from Lua 5.4 and
    LuaJIT/OpenResty: libcurl HTTP, LWA tokens, restricted data tokens, SigV4, JSON,
    rate limiting, retries, pagination, documents, and a local SP-API sandbox.
  ]],
  license = "Apache-2.0",
}
dependencies = { "lua >= 5.1", "lua-cjson" }
external_dependencies = {
  CURL = { header = "curl/curl.h", library = "curl" },
  OPENSSL = { header = "openssl/evp.h", library = "crypto" },
  ZLIB = { header = "zlib.h", library = "z" },
}
build = {
  type = "builtin",
  modules = {
    ["spapi.core"] = {
      sources = { "src/buf.c", "src/codec.c", "src/core.c", "src/http.c", "src/lwa.c", "src/sigv4.c", "src/sys.c" },
      libraries = { "curl", "crypto", "z" },
      incdirs = { "$(CURL_INCDIR)", "$(OPENSSL_INCDIR)", "$(ZLIB_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)", "$(OPENSSL_LIBDIR)", "$(ZLIB_LIBDIR)" },
      defines = { "_POSIX_C_SOURCE=200809L" },
    },
  },
  copy_directories = {},
  install = { bin = { spapi = "bin/spapi" } },
}
test = { type = "busted" }
