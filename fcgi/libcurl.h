/*
 * libcurl.h - libcurl, loaded with dlopen by the processes that need it.
 *
 * Linked, libcurl maps itself and some thirty libraries it depends on
 * (TLS, Kerberos, LDAP, SSH, IDN...) into every worker, about 3 MiB of
 * resident memory per worker, for features that are off by default: trace
 * export (fcgi/exporter.c, in the workers) and fetching the identity
 * provider's key set (fcgi/jwks_fetch.c, in the pool master only).
 * <curl/curl.h> still gives the types and constants; only these entry
 * points are looked up, from the libcurl4 package (soname libcurl.so.4)
 * the build found.
 */
#ifndef ORDERS_LIBCURL_H
#define ORDERS_LIBCURL_H

#include <curl/curl.h>

struct libcurl {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
    CURLcode (*easy_perform)(CURL *curl);
    CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *curl);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
    void (*slist_free_all)(struct curl_slist *list);
    const char *(*easy_strerror)(CURLcode code);
};

/* Loads and initialises libcurl once per process (call it before starting
 * the threads that use it); NULL, with the reason on stderr, when it
 * cannot.  Never unloaded. */
const struct libcurl *libcurl_load(void);

#endif
