/* spapi.core: registration only. Every concern lives in its own file and adds
 * its functions to the module table through spapi_<file>_open(L).
 *
 * Lua API (programmer errors raise; run-time failures return nil, err):
 *   codec.c  urlencode(s) urldecode(s [,plus_as_space]) b64encode(s) b64decode(s)→s|nil,err
 *            hex(s) sha256(s) hmac_sha256(key,msg) gzip(s [,level]) gunzip(s [,max_bytes])→s|nil,err
 *            aes256cbc_encrypt(key32,iv16,plain) aes256cbc_decrypt(key32,iv16,data)→s|nil,err
 *            random_bytes(n)
 *   sys.c    now() monotonic() clocks()→now,monotonic sleep(s) free_port() tcp_probe(host,port[,timeout])→true|false,err
 *   lwa.c    lwa_form{grant_type=,refresh_token=,scope=,client_id=,client_secret=}→body
 *            lwa_parse(status,body)→{access_token,token_type,expires_in,refresh_token}|nil,{status,code,message}
 *            json_flat(s)→table|nil,err (a JSON object's scalar members; nested values and nulls left out)
 *   sigv4.c  sigv4_sign{method,url,headers,body,region,service,access_key,secret_key,
 *            session_token,time,content_sha256}→{Authorization,x-amz-date,...}
 *            sigv4_canonical{same}→canonical_request, string_to_sign
 *   easy.c   curl_version
 *   session.c session{connect_timeout,timeout,proxy,noproxy,cainfo,capath,verify,user_agent,
 *            max_host_connections,headers_mt,header_block,pick,json}→spapi.Session (headers_mt:
 *            metatable of every response header table; header_block: return the raw
 *            header lines as one string instead of a table; pick: up to 4 header names
 *            whose values request returns after the body; json: a core.json_decoder
 *            decode for requests with json = true)
 *            s:request{method,url,headers,body,timeout,connect_timeout,follow,accept_encoding,json}
 *              → status, headers, body, picked... | nil, message, kind, curl_code
 *            s:sender()→send(_, req) (s:request as a transport's send), s:stats()→{requests,connects,reused},
 *            s:close()
 *   multi.c  s:multi()→spapi.Multi: m:add(req)→id, m:wait([timeout])→{{id,status,headers,body}|
 *              {id,err,kind,curl_code}}, m:count(), m:close()
 *   headers.c header(block,name)→value|nil  parse_headers(block[,mt])→table
 *   json.c   json_decoder(array_mt)→decode(s)→value|nil,message (null: lightuserdata NULL,
 *            [] → an empty table with array_mt)
 *   redis.c  redis_connect(host,port[,{connect_timeout,command_timeout,password,db}])
 *              → spapi.Redis | nil, message, kind; r:command(name, arg...) → reply | nil,
 *              message, kind ("reply": the server's error); r:close(), r:closed() */
#include "spapi.h"

__attribute__((visibility("default"))) int luaopen_spapi_core(lua_State *L) {
  lua_newtable(L);
  spapi_buf_open(L);
  spapi_codec_open(L);
  spapi_sys_open(L);
  spapi_lwa_open(L);
  spapi_sigv4_open(L);
  spapi_easy_open(L);
  spapi_session_open(L);
  spapi_multi_open(L);
  spapi_headers_open(L);
  spapi_json_open(L);
  spapi_redis_open(L);
  lua_pushliteral(L, "0.1.0");
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
