/*
 * empty_responder - the FastCGI ceiling: a libfcgi responder that answers
 * every request with a fixed JSON body and does nothing else.  Started by
 * tests/bench/ceiling-orders-fcgi (listening socket on fd 0) behind the
 * project's own nginx config; no libfcgi backend can do less per request.
 *
 * RESPONDER_THREADS=N (default 1) runs N threads, each blocking in
 * FCGX_Accept_r on its own FCGX_Request: libfcgi's own threaded model.
 */
#include <fcgiapp.h>
#include <pthread.h>
#include <stdlib.h>

#define MAX_THREADS 64

static void *serve(void *arg)
{
    (void)arg;
    static const char answer[] = "Status: 200 OK\r\n"
                                 "Content-Type: application/json\r\n"
                                 "Content-Length: 15\r\n\r\n"
                                 "{\"status\":\"ok\"}";
    FCGX_Request req;
    if (FCGX_InitRequest(&req, 0, 0) != 0)
        return NULL;
    while (FCGX_Accept_r(&req) >= 0) {
        FCGX_PutStr(answer, (int)sizeof answer - 1, req.out);
        FCGX_Finish_r(&req);
    }
    FCGX_Free(&req, 1);
    return NULL;
}

int main(void)
{
    const char *v = getenv("RESPONDER_THREADS");
    int n = v != NULL ? atoi(v) : 1;
    if (n < 1 || n > MAX_THREADS)
        return 2;
    if (FCGX_Init() != 0)
        return 1;
    pthread_t tid[MAX_THREADS];
    int started = 0;
    for (; started < n - 1; started++)
        if (pthread_create(&tid[started], NULL, serve, NULL) != 0)
            return 1;
    serve(NULL);
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    return 0;
}
