/*
 * empty_responder - the FastCGI ceiling: a libfcgi responder that answers
 * every request with a fixed JSON body and does nothing else.  Started by
 * tests/bench/run.sh under spawn-fcgi (listening socket on fd 0) behind the
 * project's own nginx config; no libfcgi backend can be faster than this.
 */
#include <fcgiapp.h>

int main(void)
{
    static const char answer[] = "Status: 200 OK\r\n"
                                 "Content-Type: application/json\r\n"
                                 "Content-Length: 15\r\n\r\n"
                                 "{\"status\":\"ok\"}";
    FCGX_Request req;
    if (FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0)
        return 1;
    while (FCGX_Accept_r(&req) >= 0) {
        FCGX_PutStr(answer, (int)sizeof answer - 1, req.out);
        FCGX_Finish_r(&req);
    }
    return 0;
}
