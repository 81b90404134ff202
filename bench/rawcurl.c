/* Baseline for `make bench`: N sequential GETs on one libcurl easy handle
 * (one keep-alive connection), body discarded.
 * Build: cc -O2 bench/rawcurl.c -lcurl -o build/rawcurl
 * Usage: rawcurl URL N [HEADER...]  →  "requests=N seconds=S rate=R"
 * HEADERs ("Name: value") are sent with every request, so the baseline sends
 * the same request as the client it is compared with. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <curl/curl.h>

static size_t discard(char *p, size_t size, size_t nmemb, void *ud) {
  (void)p;
  (void)ud;
  return size * nmemb;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  CURL *e;
  long n, i, ok = 0;
  double t0, dt;
  struct curl_slist *hdrs = NULL;
  int a;
  if (argc < 3 || (n = strtol(argv[2], NULL, 10)) <= 0) {
    fprintf(stderr, "usage: %s URL N [HEADER...]\n", argv[0]);
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  e = curl_easy_init();
  if (e == NULL) return 1;
  curl_easy_setopt(e, CURLOPT_URL, argv[1]);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
  for (a = 3; a < argc; a++) hdrs = curl_slist_append(hdrs, argv[a]);
  if (hdrs) curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
  t0 = now();
  for (i = 0; i < n; i++) {
    CURLcode rc = curl_easy_perform(e);
    if (rc != CURLE_OK) {
      fprintf(stderr, "rawcurl: request %ld: %s\n", i + 1, curl_easy_strerror(rc));
      break;
    }
    ok++;
  }
  dt = now() - t0;
  printf("requests=%ld seconds=%.6f rate=%.1f\n", ok, dt, dt > 0 ? (double)ok / dt : 0.0);
  curl_easy_cleanup(e);
  curl_slist_free_all(hdrs);
  curl_global_cleanup();
  return ok == n ? 0 : 1;
}
