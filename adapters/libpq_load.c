/*
 * libpq_load.c - see libpq_load.h.
 */
#include "libpq_load.h"

#include <dlfcn.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The functions: X(return type, name, (parameters), (arguments)) for those
 * that return a value, XV(...) for those that return nothing. */
#define LIBPQ_FUNCTIONS(X, XV)                                                                    \
    X(PGconn *, PQconnectdbParams,                                                              \
      (const char *const *keywords, const char *const *values, int expand_dbname),             \
      (keywords, values, expand_dbname))                                                        \
    X(PQconninfoOption *, PQconninfoParse, (const char *conninfo, char **errmsg),               \
      (conninfo, errmsg))                                                                       \
    XV(PQconninfoFree, (PQconninfoOption * options), (options))                                 \
    XV(PQfinish, (PGconn * conn), (conn))                                                       \
    X(ConnStatusType, PQstatus, (const PGconn *conn), (conn))                                   \
    X(char *, PQerrorMessage, (const PGconn *conn), (conn))                                     \
    X(int, PQsocket, (const PGconn *conn), (conn))                                              \
    X(PQnoticeReceiver, PQsetNoticeReceiver,                                                    \
      (PGconn * conn, PQnoticeReceiver proc, void *arg), (conn, proc, arg))                     \
    X(PGresult *, PQexec, (PGconn * conn, const char *query), (conn, query))                    \
    X(PGresult *, PQexecParams,                                                                 \
      (PGconn * conn, const char *command, int nParams, const Oid *paramTypes,                  \
       const char *const *paramValues, const int *paramLengths, const int *paramFormats,        \
       int resultFormat),                                                                       \
      (conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats,             \
       resultFormat))                                                                           \
    X(PGresult *, PQprepare,                                                                    \
      (PGconn * conn, const char *stmtName, const char *query, int nParams,                     \
       const Oid *paramTypes),                                                                  \
      (conn, stmtName, query, nParams, paramTypes))                                             \
    X(PGresult *, PQexecPrepared,                                                               \
      (PGconn * conn, const char *stmtName, int nParams, const char *const *paramValues,        \
       const int *paramLengths, const int *paramFormats, int resultFormat),                     \
      (conn, stmtName, nParams, paramValues, paramLengths, paramFormats, resultFormat))        \
    X(int, PQconsumeInput, (PGconn * conn), (conn))                                             \
    X(PGnotify *, PQnotifies, (PGconn * conn), (conn))                                          \
    X(ExecStatusType, PQresultStatus, (const PGresult *res), (res))                             \
    X(char *, PQresultErrorMessage, (const PGresult *res), (res))                               \
    X(char *, PQresultErrorField, (const PGresult *res, int fieldcode), (res, fieldcode))      \
    X(int, PQntuples, (const PGresult *res), (res))                                             \
    X(int, PQnfields, (const PGresult *res), (res))                                             \
    X(char *, PQgetvalue, (const PGresult *res, int tup_num, int field_num),                    \
      (res, tup_num, field_num))                                                                \
    X(int, PQgetisnull, (const PGresult *res, int tup_num, int field_num),                      \
      (res, tup_num, field_num))                                                                \
    X(char *, PQcmdTuples, (PGresult * res), (res))                                             \
    XV(PQclear, (PGresult * res), (res))                                                        \
    XV(PQfreemem, (void *ptr), (ptr))

#define LIBPQ_POINTER(ret, name, params, args) ret(*name) params;
#define LIBPQ_POINTER_VOID(name, params, args) void(*name) params;
static struct {
    LIBPQ_FUNCTIONS(LIBPQ_POINTER, LIBPQ_POINTER_VOID)
} libpq;

#define LIBPQ_ROW(ret, name, params, args) {#name, &libpq.name},
#define LIBPQ_ROW_VOID(name, params, args) {#name, &libpq.name},
static const struct {
    const char *name;
    void *slot; /* the function pointer to fill */
} libpq_symbols[] = {LIBPQ_FUNCTIONS(LIBPQ_ROW, LIBPQ_ROW_VOID)};

static pthread_once_t libpq_once = PTHREAD_ONCE_INIT;
static bool libpq_ready;
static char libpq_error[256];

static void libpq_open(void)
{
    void *h = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(libpq_error, sizeof libpq_error, "cannot load libpq: %s", dlerror());
        return;
    }
    for (size_t i = 0; i < sizeof libpq_symbols / sizeof libpq_symbols[0]; i++) {
        void *f = dlsym(h, libpq_symbols[i].name);
        if (f == NULL) {
            snprintf(libpq_error, sizeof libpq_error, "libpq.so.5 has no %s",
                     libpq_symbols[i].name);
            return;
        }
        /* POSIX allows converting dlsym's void * to a function pointer;
         * ISO C does not, hence the memcpy. */
        memcpy(libpq_symbols[i].slot, &f, sizeof f);
    }
    libpq_ready = true;
}

int libpq_load(char *err, size_t errlen)
{
    pthread_once(&libpq_once, libpq_open);
    if (libpq_ready)
        return 0;
    snprintf(err, errlen, "%s", libpq_error);
    return -1;
}

/* The forwarders.  The store calls none before libpq_load has succeeded
 * (store_select.c), so this only costs pthread_once's check; should one be
 * reached anyway, it loads the library then, and a process without it
 * stops with one line rather than call through NULL. */
static void libpq_require(void)
{
    char err[256];
    if (libpq_load(err, sizeof err) != 0) {
        fprintf(stderr, "orders: %s\n", err);
        abort();
    }
}

#define LIBPQ_FORWARD(ret, name, params, args)                                                   \
    ret name params                                                                             \
    {                                                                                           \
        libpq_require();                                                                        \
        return libpq.name args;                                                                 \
    }
#define LIBPQ_FORWARD_VOID(name, params, args)                                                   \
    void name params                                                                            \
    {                                                                                           \
        libpq_require();                                                                        \
        libpq.name args;                                                                        \
    }
LIBPQ_FUNCTIONS(LIBPQ_FORWARD, LIBPQ_FORWARD_VOID)
