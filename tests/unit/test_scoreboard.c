/*
 * test_scoreboard.c - the pool's status board (fcgi/scoreboard.c) without a
 * pool: the master's and two workers' views of one shared area in this
 * process; the per-request record, saturation episodes, the JSON and the
 * metrics; and the listen queue read from real unix and TCP sockets with
 * connections waiting that nobody accepts.
 */
#include <arpa/inet.h>
#include <check.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "scoreboard.h"
#include "testdir.h"

static struct scoreboard *board;

/* A worker's view: attach takes (and closes) the descriptor it is named,
 * so each view gets its own copy of the master's. */
static struct scoreboard *attach_as(int slot, int master_fd)
{
    char num[16];
    int fd = dup(master_fd);
    ck_assert_int_ge(fd, 0);
    snprintf(num, sizeof num, "%d", fd);
    setenv("ORDERS_SCOREBOARD_FD", num, 1);
    char var[48];
    scoreboard_slot_var(slot, var, sizeof var);
    ck_assert(scoreboard_is_slot_var(var));
    ck_assert(!scoreboard_is_slot_var("ORDERS_POOL_SLOTS=1"));
    char *eq = strchr(var, '=');
    ck_assert_ptr_nonnull(eq);
    *eq = '\0';
    ck_assert_int_eq(setenv(var, eq + 1, 1), 0);
    struct scoreboard *sb = scoreboard_attach();
    ck_assert_ptr_nonnull(sb);
    ck_assert_ptr_null(getenv("ORDERS_POOL_SLOT"));
    return sb;
}

static int master_fd;

static void setup(void)
{
    board = scoreboard_create(6, 2);
    ck_assert_ptr_nonnull(board);
    master_fd = atoi(getenv("ORDERS_SCOREBOARD_FD"));
}

static void teardown(void)
{
    scoreboard_destroy(board);
    unsetenv("ORDERS_SCOREBOARD_FD");
}

static cJSON *status(bool full, int listen_fd)
{
    struct metrics m;
    memset(&m, 0, sizeof m);
    atomic_store(&m.slow_requests, 3);
    atomic_store(&m.worker_restarts, 4);
    size_t len = 0;
    char *text = scoreboard_render_json(board, &m, listen_fd, full, &len);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(strlen(text), len);
    cJSON *doc = cJSON_Parse(text);
    ck_assert_ptr_nonnull(doc);
    free(text);
    return doc;
}

static double num(const cJSON *doc, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);
    ck_assert_msg(cJSON_IsNumber(v), "%s", key);
    return v->valuedouble;
}

static const cJSON *worker_of(const cJSON *doc, int pid)
{
    const cJSON *w;
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(doc, "workers"))
        if ((int)num(w, "pid") == pid)
            return w;
    ck_abort_msg("no worker %d", pid);
    return NULL;
}

START_TEST(test_requests_and_saturation)
{
    scoreboard_slot_spawned(board, 0, 1001);
    scoreboard_slot_spawned(board, 1, 1002);
    struct scoreboard *a = attach_as(0, master_fd), *b = attach_as(1, master_fd);

    cJSON *doc = status(true, -1);
    ck_assert_int_eq((int)num(doc, "total_workers"), 2);
    ck_assert_int_eq((int)num(doc, "idle_workers"), 0); /* both starting */
    ck_assert_int_eq((int)num(doc, "listen_queue"), -1); /* no socket: unknown */
    ck_assert_int_eq((int)num(doc, "slow_requests"), 3);
    ck_assert_int_eq((int)num(doc, "worker_restarts"), 4);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(worker_of(doc, 1001), "state")),
                     "starting");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(worker_of(doc, 1001), "request")));
    cJSON_Delete(doc);

    scoreboard_worker_ready(a, 1);
    scoreboard_worker_ready(b, 1);
    scoreboard_connection_accepted(a);
    scoreboard_request_begin(a, "POST", 100.0);
    scoreboard_request_routed(a, "POST /orders");
    doc = status(true, -1);
    ck_assert_int_eq((int)num(doc, "active_workers"), 1);
    ck_assert_int_eq((int)num(doc, "idle_workers"), 1);
    ck_assert_int_eq((int)num(doc, "saturated"), 0);
    ck_assert_int_eq((int)num(doc, "accepted_connections"), 1);
    const cJSON *r = cJSON_GetObjectItem(worker_of(doc, 1001), "request");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(r, "method")), "POST");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(r, "route")), "POST /orders");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(r, "running")));
    cJSON_Delete(doc);

    /* The second worker takes the last idle slot: one episode, however
     * many requests start while every worker stays busy. */
    scoreboard_request_begin(b, "GET", 101.0);
    scoreboard_request_end(b, 200, 102.0);
    scoreboard_request_begin(b, "GET", 103.0);
    doc = status(false, -1);
    ck_assert_int_eq((int)num(doc, "saturated"), 2); /* b freed a slot in between */
    ck_assert_int_eq((int)num(doc, "max_active_workers"), 2);
    ck_assert_ptr_null(cJSON_GetObjectItem(doc, "workers"));
    cJSON_Delete(doc);

    scoreboard_request_end(a, 201, 112.5);
    doc = status(true, -1);
    r = cJSON_GetObjectItem(worker_of(doc, 1001), "request");
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(r, "running")));
    ck_assert_int_eq((int)num(r, "status"), 201);
    ck_assert_double_eq_tol(num(r, "duration_ms"), 12.5, 1e-9);
    ck_assert_int_eq((int)num(worker_of(doc, 1001), "requests"), 1);
    ck_assert_int_eq((int)num(worker_of(doc, 1002), "requests"), 1);
    ck_assert_int_eq((int)num(doc, "active_workers"), 1);
    cJSON_Delete(doc);

    /* A worker that dies while busy leaves its slot, and the counts. */
    scoreboard_slot_retiring(board, 1);
    doc = status(true, -1);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(worker_of(doc, 1002), "retiring")));
    cJSON_Delete(doc);
    scoreboard_slot_exited(board, 1);
    doc = status(true, -1);
    ck_assert_int_eq((int)num(doc, "active_workers"), 0);
    ck_assert_int_eq((int)num(doc, "total_workers"), 1);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "workers")), 1);
    cJSON_Delete(doc);

    scoreboard_detach(a);
    scoreboard_detach(b);
}
END_TEST

START_TEST(test_metrics_and_memory)
{
    scoreboard_slot_spawned(board, 2, (int)getpid());
    size_t len = 0;
    char *text = scoreboard_render_metrics(board, -1, &len);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "orders_pool_workers{state=\"idle\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(text, "# TYPE orders_pool_saturated_total counter\n"));
    ck_assert_ptr_nonnull(strstr(text, "# TYPE orders_pool_listen_queue gauge\n"));
    ck_assert_ptr_null(strstr(text, "orders_pool_listen_queue 0")); /* unknown: no sample */
    ck_assert_ptr_null(strstr(text, "orders_worker_memory_pss_bytes{")); /* not sampled yet */
    free(text);
    scoreboard_sample_worker(board, 2);
    text = scoreboard_render_metrics(board, -1, &len);
    char want[64];
    snprintf(want, sizeof want, "orders_worker_memory_pss_bytes{pid=\"%d\"} ", (int)getpid());
    const char *line = strstr(text, want);
    ck_assert_ptr_nonnull(line);
    ck_assert_int_gt(atoll(line + strlen(want)), 0);
    free(text);
}
END_TEST

/* Connections that nobody accepts wait in the listen queue. */
static void expect_queue(int listener, const struct sockaddr *addr, socklen_t alen,
                         int backlog)
{
    ck_assert_int_eq(listen(listener, backlog), 0);
    int clients[3];
    for (int i = 0; i < 3; i++) {
        clients[i] = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(clients[i], 0);
        ck_assert_int_eq(connect(clients[i], addr, alen), 0);
    }
    /* A TCP connection joins the queue when the handshake's last ACK is
     * processed, which on loopback is at once but not within connect(). */
    cJSON *doc = status(false, listener);
    for (int tries = 0; tries < 100 && (int)num(doc, "listen_queue") < 3; tries++) {
        cJSON_Delete(doc);
        usleep(10 * 1000);
        doc = status(false, listener);
    }
    ck_assert_int_eq((int)num(doc, "listen_queue"), 3);
    ck_assert_int_eq((int)num(doc, "listen_queue_max"), 3);
    ck_assert_int_eq((int)num(doc, "listen_queue_len"), backlog);
    cJSON_Delete(doc);
    for (int i = 0; i < 3; i++)
        close(clients[i]);
}

START_TEST(test_listen_queue_of_a_unix_socket)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s/pool.sock", testdir_path());
    unlink(sun.sun_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
    expect_queue(fd, (struct sockaddr *)&sun, sizeof sun, 7);
    close(fd);
    unlink(sun.sun_path);
}
END_TEST

START_TEST(test_listen_queue_of_a_tcp_socket)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t len = sizeof sin;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    expect_queue(fd, (struct sockaddr *)&sin, sizeof sin, 9);
    close(fd);
}
END_TEST

int main(void)
{
    testdir_create("scoreboard");
    Suite *s = suite_create("scoreboard");
    TCase *tc = tcase_create("board");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_requests_and_saturation);
    tcase_add_test(tc, test_metrics_and_memory);
    tcase_add_test(tc, test_listen_queue_of_a_unix_socket);
    tcase_add_test(tc, test_listen_queue_of_a_tcp_socket);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    testdir_remove();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
