/*
 * libcurl.c - see libcurl.h.
 */
#include "libcurl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static struct libcurl libcurl;
static pthread_once_t libcurl_once = PTHREAD_ONCE_INIT;
static bool libcurl_ready;

static void libcurl_open(void)
{
    void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "orders-fcgi: %s\n", dlerror());
        return;
    }
    /* POSIX allows converting dlsym's void * to a function pointer; ISO C
     * does not, hence the memcpy. */
    static const struct {
        const char *name;
        size_t offset;
    } syms[] = {
        {"curl_global_init", offsetof(struct libcurl, global_init)},
        {"curl_easy_init", offsetof(struct libcurl, easy_init)},
        {"curl_easy_setopt", offsetof(struct libcurl, easy_setopt)},
        {"curl_easy_perform", offsetof(struct libcurl, easy_perform)},
        {"curl_easy_getinfo", offsetof(struct libcurl, easy_getinfo)},
        {"curl_easy_cleanup", offsetof(struct libcurl, easy_cleanup)},
        {"curl_slist_append", offsetof(struct libcurl, slist_append)},
        {"curl_slist_free_all", offsetof(struct libcurl, slist_free_all)},
        {"curl_easy_strerror", offsetof(struct libcurl, easy_strerror)},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *f = dlsym(h, syms[i].name);
        if (f == NULL) {
            fprintf(stderr, "orders-fcgi: libcurl.so.4 has no %s\n", syms[i].name);
            return;
        }
        memcpy((char *)&libcurl + syms[i].offset, &f, sizeof f);
    }
    /* Once per process, before any thread that uses it exists; never
     * cleaned up, as the library stays loaded until the process exits. */
    if (libcurl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "orders-fcgi: cannot initialise libcurl\n");
        return;
    }
    libcurl_ready = true;
}

const struct libcurl *libcurl_load(void)
{
    pthread_once(&libcurl_once, libcurl_open);
    return libcurl_ready ? &libcurl : NULL;
}
