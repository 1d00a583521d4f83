/*
 * test_sink.c - the sink port's table and adapters that need no server:
 * which EVENT_SINK values are refused and how (one line, naming the
 * setting, never the password), credential-free descriptions and error
 * texts, and the file sink's durability: the directory is fsync'ed after
 * the file is created and again after it is rotated, before the batch
 * written to it is acknowledged.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sink_file.h"
#include "sink_util.h"
#include "sinks.h"
#include "testdir.h"

static const struct sink_options options = {
    .connect_timeout_ms = 500, .timeout_ms = 1000, .user_agent = "test-sink"};

static struct sink_message message(const char *envelope)
{
    return (struct sink_message){.id = "id", .type = "t", .source = "/s", .subject = "x",
                                 .time = "2026-11-30T00:00:00Z", .envelope = envelope,
                                 .envelope_len = strlen(envelope)};
}

/* ---- the table ---------------------------------------------------------- */

START_TEST(test_accepted_forms)
{
    static const char *const good[] = {
        "stdout", "file:/tmp/x.jsonl", "file:relative.jsonl", "http://127.0.0.1:9/e",
        "HTTPS://user:pw@example.com/events?token=t",
        "amqp://guest:guest@127.0.0.1:5672/%2f?exchange=orders&mode=binary",
        "amqps://u:p@broker.example/vh?cacert=/etc/ssl/ca.pem",
        "nats://127.0.0.1:4222?subject=orders.events&stream=ORDERS",
        "tls://token@nats.example:4222",
    };
    char err[256];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        err[0] = '\0';
        ck_assert_msg(sinks_check(good[i], err, sizeof(err)) == 0, "%s: %s", good[i], err);
    }
}
END_TEST

START_TEST(test_refused_forms_name_the_setting_not_the_secret)
{
    static const char *const bad[] = {
        "ftp://user:hunter22@host/x",  /* unknown scheme */
        "user:hunter22@host",          /* no scheme at all */
        "http://user:hunter22@",       /* no host */
        "http://user:hunter22@[::1/x", /* malformed */
        "file:",                       /* no path */
        "stdout:hunter22",             /* stdout takes nothing */
        "hunter22",
        "amqp://user:hunter22@",                   /* no host */
        "amqp://user:hunter22@h/?exchange",        /* a parameter without value */
        "amqp://user:hunter22@h/?password=x",      /* not a parameter of amqp */
        "nats://user:hunter22@h:4222?mode=fast",   /* no such mode */
        "nats://user:hunter22@h:notaport",
    };
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(err, 0, sizeof(err));
        ck_assert_msg(sinks_check(bad[i], err, sizeof(err)) == -1, "%s accepted", bad[i]);
        ck_assert_msg(strstr(err, "EVENT_SINK") != NULL, "%s: %s", bad[i], err);
        ck_assert_msg(strstr(err, "hunter22") == NULL, "%s: %s", bad[i], err);
        ck_assert_msg(strchr(err, '\n') == NULL, "%s: %s", bad[i], err);
    }
    ck_assert_msg(sinks_check("ftp://x", err, sizeof(err)) == -1 && strstr(err, "\"ftp\"") != NULL,
                  "%s", err);
}
END_TEST

/* ---- descriptions and scrubbing ------------------------------------------ */

START_TEST(test_url_describe)
{
    static const char *const keep[] = {"stream", NULL};
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"http://h:1/p", "http://h:1/p"},
        {"https://user:pw@h/p?token=abc&x", "https://***@h/p?token=***&x"},
        {"amqp://u:p/w@d@h:5672/v?stream=orders&password=s#frag",
         "amqp://***@h:5672/v?stream=orders&password=***"},
        {"nats://tok@h", "nats://***@h"},
        {"not a url user:pw@h", "(not a URL)"},
    };
    char out[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sink_url_describe(cases[i].in, keep, out, sizeof(out));
        ck_assert_str_eq(out, cases[i].out);
    }
    sink_url_describe("https://user:pw@host/a/long/path", NULL, out, 12);
    ck_assert_str_eq(out, "https://***");
}
END_TEST

START_TEST(test_scrub)
{
    char text[32] = "auth failed for pw in pw";
    char tiny[7] = "ab:ab";

    sink_scrub(text, sizeof(text), "pw");
    ck_assert_str_eq(text, "auth failed for *** in ***");
    sink_scrub(tiny, sizeof(tiny), "ab");
    ck_assert_str_eq(tiny, "***:");
    sink_scrub(text, sizeof(text), "");
    ck_assert_str_eq(text, "auth failed for *** in ***");
}
END_TEST

/* The user name "orders" is part of the password: scrubbed first, it
 * would leave "***-horse" of the password in the text. */
START_TEST(test_scrub_all_longest_first)
{
    char text[64] = "login orders / orders-horse refused";
    const char *secrets[] = {"orders", NULL, "orders-horse", ""};

    sink_scrub_all(text, sizeof(text), secrets, 4);
    ck_assert_str_eq(text, "login *** / *** refused");
}
END_TEST

START_TEST(test_why_keeps_the_first_reason_scrubbed)
{
    struct sink_why why = {.secrets = {"orders", "orders-horse"}};

    sink_why_clear(&why);
    sink_why_note(&why, "connecting as %s:%s: %s", "orders", "orders-horse", "refused");
    sink_why_note(&why, "no confirm within %d ms", 5000);
    ck_assert_str_eq(why.text, "connecting as ***:***: refused");
    sink_why_clear(&why);
    ck_assert_str_eq(why.text, "");
    sink_why_note(&why, "no confirm within %d ms", 5000);
    ck_assert_str_eq(why.text, "no confirm within 5000 ms");
}
END_TEST

/* ---- the file sink -------------------------------------------------------- */

#define MAX_SYNCS 16

static struct {
    ino_t ino[MAX_SYNCS];
    int is_dir[MAX_SYNCS];
    int count;
} syncs;

static int record_fsync(int fd)
{
    struct stat st;

    if (fstat(fd, &st) == 0 && syncs.count < MAX_SYNCS) {
        syncs.ino[syncs.count] = st.st_ino;
        syncs.is_dir[syncs.count] = S_ISDIR(st.st_mode);
        syncs.count++;
    }
    return fsync(fd);
}

static ino_t inode_of(const char *path)
{
    struct stat st;

    ck_assert_msg(stat(path, &st) == 0, "%s: %s", path, strerror(errno));
    return st.st_ino;
}

/* Index of the first fsync of a directory with this inode, or -1. */
static int dir_synced_at(ino_t dir, int from)
{
    for (int i = from; i < syncs.count; i++) {
        if (syncs.is_dir[i] && syncs.ino[i] == dir)
            return i;
    }
    return -1;
}

static int file_synced_at(ino_t file, int from)
{
    for (int i = from; i < syncs.count; i++) {
        if (!syncs.is_dir[i] && syncs.ino[i] == file)
            return i;
    }
    return -1;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    static char buf[4096];
    size_t n;

    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void file_setup(void)
{
    memset(&syncs, 0, sizeof(syncs));
    sink_file_set_fsync(record_fsync);
}

static void file_teardown(void)
{
    sink_file_set_fsync(NULL);
}

START_TEST(test_file_syncs_directory_after_create_and_rotation)
{
    char dir[512], path[600], spec[640], rotated[640], err[256];
    struct sink *s = NULL;
    struct sink_result r;
    struct sink_message m[2] = {message("{\"n\":1}"), message("{\"n\":2}")};
    int at;

    snprintf(dir, sizeof(dir), "%s/events-XXXXXX", testdir_path());
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/events.jsonl", dir);
    snprintf(spec, sizeof(spec), "file:%s", path);
    snprintf(rotated, sizeof(rotated), "%s/events.jsonl.1", dir);

    ck_assert_msg(sinks_open(&s, spec, &options, err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(sink_name(s), "file");
    /* Created: the directory entry is made durable at once. */
    ck_assert_int_ge(dir_synced_at(inode_of(dir), 0), 0);
    ck_assert_int_eq(sink_send(s, m, 2, &r), 2);
    ck_assert_int_eq(r.status, SINK_OK);
    ck_assert_int_ge(file_synced_at(inode_of(path), 0), 0);
    ck_assert_str_eq(read_all(path), "{\"n\":1}\n{\"n\":2}\n");

    /* Rotated away: the next batch goes to a new file, whose name is
     * synced before the batch's data, so before it is acknowledged. */
    ck_assert_int_eq(rename(path, rotated), 0);
    at = syncs.count;
    ck_assert_int_eq(sink_send(s, m, 1, &r), 1);
    ck_assert_int_eq(r.status, SINK_OK);
    ck_assert_int_ge(dir_synced_at(inode_of(dir), at), at);
    ck_assert_int_lt(dir_synced_at(inode_of(dir), at), file_synced_at(inode_of(path), at));
    ck_assert_str_eq(read_all(path), "{\"n\":1}\n");
    ck_assert_str_eq(read_all(rotated), "{\"n\":1}\n{\"n\":2}\n");

    /* Not rotated: no directory sync per batch (it would halve throughput). */
    at = syncs.count;
    ck_assert_int_eq(sink_send(s, m, 1, &r), 1);
    ck_assert_int_eq(dir_synced_at(inode_of(dir), at), -1);
    sink_close(s);
}
END_TEST

static int failing_fsync(int fd)
{
    (void)fd;
    errno = EIO;
    return -1;
}

START_TEST(test_file_failed_sync_acknowledges_nothing)
{
    char dir[512], path[600], spec[640], err[256];
    struct sink *s = NULL;
    struct sink_result r;
    struct sink_message m[2] = {message("{\"n\":1}"), message("{\"n\":2}")};

    snprintf(dir, sizeof(dir), "%s/fail-XXXXXX", testdir_path());
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/events.jsonl", dir);
    snprintf(spec, sizeof(spec), "file:%s", path);
    ck_assert_msg(sinks_open(&s, spec, &options, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(sink_send(s, m, 1, &r), 1);
    sink_file_set_fsync(failing_fsync);
    ck_assert_int_eq(sink_send(s, m, 2, &r), 0);
    ck_assert_int_eq(r.status, SINK_RETRY);
    ck_assert_msg(strstr(r.error, "Input/output error") != NULL, "%s", r.error);
    /* Rolled back to the batch's start: a retry never follows half a batch. */
    ck_assert_str_eq(read_all(path), "{\"n\":1}\n");
    sink_file_set_fsync(record_fsync);
    sink_close(s);
}
END_TEST

START_TEST(test_file_cuts_a_torn_tail)
{
    char path[600], spec[640], err[256];
    struct sink *s = NULL;
    struct sink_result r;
    struct sink_message m = message("{\"n\":3}");
    FILE *f;

    snprintf(path, sizeof(path), "%s/torn.jsonl", testdir_path());
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs("{\"n\":1}\n{\"n\":", f);
    fclose(f);
    snprintf(spec, sizeof(spec), "file:%s", path);
    ck_assert_msg(sinks_open(&s, spec, &options, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(sink_send(s, &m, 1, &r), 1);
    ck_assert_str_eq(read_all(path), "{\"n\":1}\n{\"n\":3}\n");
    sink_close(s);
}
END_TEST

START_TEST(test_file_open_failure_names_the_path)
{
    char spec[640], err[256];
    struct sink *s = NULL;

    snprintf(spec, sizeof(spec), "file:%s/missing/dir/events.jsonl", testdir_path());
    ck_assert_int_eq(sinks_open(&s, spec, &options, err, sizeof(err)), -1);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err, "missing/dir") != NULL && strstr(err, "No such file") != NULL, "%s", err);
}
END_TEST

/* ---- the HTTP sink, without a server ---------------------------------------- */

START_TEST(test_http_never_shows_credentials)
{
    char spec[256], err[256];
    struct sink *s = NULL;
    struct sink_result r;
    struct sink_message m = message("{}");
    int port;

    /* A port nobody listens on: bind one, note it, close it. */
    {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
        port = ntohs(a.sin_port);
        close(fd);
    }
    snprintf(spec, sizeof(spec), "http://alice:hunter22@127.0.0.1:%d/events?sig=topsecret", port);
    ck_assert_msg(sinks_open(&s, spec, &options, err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(sink_name(s), "http");
    ck_assert_int_eq(sink_max_batch(s), 1);
    ck_assert_msg(strstr(sink_describe(s), "hunter22") == NULL &&
                      strstr(sink_describe(s), "alice") == NULL &&
                      strstr(sink_describe(s), "topsecret") == NULL,
                  "%s", sink_describe(s));
    ck_assert_int_eq(sink_send(s, &m, 1, &r), 0);
    ck_assert_int_eq(r.status, SINK_RETRY);
    ck_assert_msg(r.error[0] != '\0', "no error text");
    ck_assert_msg(strstr(r.error, "hunter22") == NULL && strstr(r.error, "topsecret") == NULL,
                  "%s", r.error);
    sink_close(s);
}
END_TEST

static void base_setup(void)
{
    testdir_create("sink");
}

static void base_teardown(void)
{
    testdir_remove();
}

static Suite *sink_suite(void)
{
    Suite *s = suite_create("sink");
    TCase *table = tcase_create("table");
    TCase *text = tcase_create("redaction");
    TCase *file = tcase_create("file");
    TCase *http = tcase_create("http");

    tcase_add_test(table, test_accepted_forms);
    tcase_add_test(table, test_refused_forms_name_the_setting_not_the_secret);
    suite_add_tcase(s, table);
    tcase_add_test(text, test_url_describe);
    tcase_add_test(text, test_scrub);
    tcase_add_test(text, test_scrub_all_longest_first);
    tcase_add_test(text, test_why_keeps_the_first_reason_scrubbed);
    suite_add_tcase(s, text);
    tcase_add_unchecked_fixture(file, base_setup, base_teardown);
    tcase_add_checked_fixture(file, file_setup, file_teardown);
    tcase_add_test(file, test_file_syncs_directory_after_create_and_rotation);
    tcase_add_test(file, test_file_failed_sync_acknowledges_nothing);
    tcase_add_test(file, test_file_cuts_a_torn_tail);
    tcase_add_test(file, test_file_open_failure_names_the_path);
    suite_add_tcase(s, file);
    tcase_add_test(http, test_http_never_shows_credentials);
    suite_add_tcase(s, http);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sink_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
