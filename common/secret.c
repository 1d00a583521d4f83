/*
 * secret.c - loading the JWT secret (secret.h lists the sources).
 */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "settings.h"

#define SECRET_GENERATED_BYTES 32 /* rendered as 64 hex digits */

void secret_free(struct secret *s)
{
    if (s == NULL)
        return;
    if (s->bytes != NULL)
        explicit_bzero(s->bytes, s->len);
    free(s->bytes);
    s->bytes = NULL;
    s->len = 0;
}

static int secret_keep(struct secret *out, const void *bytes, size_t len, char *err,
                       size_t errlen)
{
    out->bytes = malloc(len + 1);
    if (out->bytes == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(out->bytes, bytes, len);
    out->bytes[len] = '\0';
    out->len = len;
    return 0;
}

/* unsetenv() only drops the pointer from environ; the "NAME=value" string
 * itself stays in the block the kernel shows as /proc/PID/environ (or in
 * the copy setenv() made, which glibc never frees).  Wiping the whole
 * entry in place removes it from both. */
void secret_scrub_environment(void)
{
    char *v = getenv(SECRET_ENV);
    if (v == NULL)
        return;
    char *entry = v - (sizeof SECRET_ENV); /* "JWT_SECRET_KEY=" precedes the value */
    size_t n = sizeof SECRET_ENV + strlen(v);
    (void)unsetenv(SECRET_ENV);
    explicit_bzero(entry, n);
}

/* Reads all of fd (at most SECRET_FILE_MAX bytes) from offset 0. */
static int secret_read_fd(int fd, const char *what, struct secret *out, char *err,
                          size_t errlen)
{
    unsigned char buf[SECRET_FILE_MAX + 1];
    size_t n = 0;
    for (;;) {
        ssize_t r = pread(fd, buf + n, sizeof buf - n, (off_t)n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s cannot be read (%s)", what, strerror(errno));
            explicit_bzero(buf, sizeof buf);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > SECRET_FILE_MAX) {
            snprintf(err, errlen, "%s: unreadable or longer than 1 KiB", what);
            explicit_bzero(buf, sizeof buf);
            return -1;
        }
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    int rc = secret_keep(out, buf, n, err, errlen);
    explicit_bzero(buf, sizeof buf);
    return rc;
}

/* Returns 0, 1 when the file does not exist (and missing_ok), or -1. */
static int secret_read_file(const char *path, bool missing_ok, struct secret *out,
                            char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 && errno == ENOENT && missing_ok)
        return 1;
    if (fd < 0) {
        snprintf(err, errlen, "the JWT secret file %s cannot be read (%s)", path,
                 strerror(errno));
        return -1;
    }
    int rc = secret_read_fd(fd, path, out, err, errlen);
    close(fd);
    return rc;
}

/* Writes a fresh random key to path, atomically: a temporary file made
 * with O_EXCL then link()ed into place, so that two processes starting at
 * once end up with one key (the loser reads the winner's). */
static int secret_generate(const char *path, char *err, size_t errlen)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[SECRET_GENERATED_BYTES];
    char text[2 * SECRET_GENERATED_BYTES + 1];
    char tmp[4300];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        snprintf(err, errlen, "cannot generate a JWT secret: no randomness (%s)",
                 strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < sizeof raw; i++) {
        text[2 * i] = hex[raw[i] >> 4];
        text[2 * i + 1] = hex[raw[i] & 15];
    }
    text[sizeof text - 1] = '\n';
    explicit_bzero(raw, sizeof raw);
    int n = snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    int fd = n > 0 && (size_t)n < sizeof tmp
                 ? open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)
                 : (errno = ENAMETOOLONG, -1);
    int rc = -1;
    if (fd < 0) {
        snprintf(err, errlen, "cannot generate the JWT secret %s (%s); set JWT_SECRET_KEY "
                 "or JWT_SECRET_FILE", path, strerror(errno));
        goto out;
    }
    bool ok = write(fd, text, sizeof text) == (ssize_t)sizeof text && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || (link(tmp, path) != 0 && errno != EEXIST)) {
        snprintf(err, errlen, "cannot write the JWT secret %s (%s)", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    unlink(tmp);
    rc = 0;
out:
    explicit_bzero(text, sizeof text);
    return rc;
}

/* The key the pool master handed over (secret_hand_over()); the
 * descriptor is closed once read, so only the master keeps it. */
static int secret_from_master(const char *v, struct secret *out, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    long fd = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || fd < 3 || fd > 65535) {
        snprintf(err, errlen, "%s must name an inherited descriptor, not '%s'",
                 SECRET_FD_ENV, v);
        return -1;
    }
    int rc = secret_read_fd((int)fd, SECRET_FD_ENV, out, err, errlen);
    close((int)fd);
    (void)unsetenv(SECRET_FD_ENV);
    return rc;
}

static int secret_find(const char *runtime_dir, enum secret_mode mode, struct secret *out,
                       const char **source, char *path, size_t pathlen, char *err,
                       size_t errlen)
{
    const char *v;
    if ((v = settings_env(SECRET_FD_ENV)) != NULL) {
        *source = SECRET_ENV;
        return secret_from_master(v, out, err, errlen);
    }
    if ((v = settings_env(SECRET_ENV)) != NULL) {
        *source = SECRET_ENV;
        return secret_keep(out, v, strlen(v), err, errlen);
    }
    if ((v = settings_env(SECRET_FILE_ENV)) != NULL) {
        *source = v;
        return secret_read_file(v, false, out, err, errlen);
    }
    if ((v = settings_env("CREDENTIALS_DIRECTORY")) != NULL) {
        snprintf(path, pathlen, "%s/jwt-secret", v);
        *source = path;
        int rc = secret_read_file(path, true, out, err, errlen);
        if (rc <= 0)
            return rc;
    }
    if (runtime_dir == NULL)
        runtime_dir = "./var";
    int n = snprintf(path, pathlen, "%s/jwt-secret", runtime_dir);
    if (n < 0 || (size_t)n >= pathlen) {
        snprintf(err, errlen, "RUNTIME_DIR is too long");
        return -1;
    }
    *source = path;
    int rc = secret_read_file(path, true, out, err, errlen);
    if (rc == 1 && mode == SECRET_READ_OR_GENERATE) {
        if (secret_generate(path, err, errlen) != 0)
            return -1;
        rc = secret_read_file(path, false, out, err, errlen);
    } else if (rc == 1) {
        snprintf(err, errlen,
                 "JWT_SECRET_KEY is not set and %s cannot be read (%s); set "
                 "JWT_SECRET_KEY or JWT_SECRET_FILE, or start the service once to "
                 "generate it", path, strerror(ENOENT));
        rc = -1;
    }
    return rc;
}

int secret_load(const char *runtime_dir, enum secret_mode mode, struct secret *out,
                char *err, size_t errlen)
{
    char path[4200];
    const char *source = SECRET_ENV;
    memset(out, 0, sizeof *out);
    int rc = secret_find(runtime_dir, mode, out, &source, path, sizeof path, err, errlen);
    secret_scrub_environment();
    if (rc != 0) {
        secret_free(out);
        return -1;
    }
    if (out->len < SECRET_MIN_LEN) {
        snprintf(err, errlen,
                 "%s is %zu bytes; at least %d are required "
                 "(generate one with: head -c 48 /dev/urandom | base64)",
                 source, out->len, SECRET_MIN_LEN);
        secret_free(out);
        return -1;
    }
    return 0;
}

int secret_hand_over(const struct secret *s, char *err, size_t errlen)
{
    int fd = memfd_create("orders-jwt-secret", MFD_ALLOW_SEALING);
    char num[16];
    if (fd < 0) {
        snprintf(err, errlen, "cannot keep the JWT secret for the workers: memfd_create: %s",
                 strerror(errno));
        return -1;
    }
    ssize_t w = write(fd, s->bytes, s->len);
    if (w != (ssize_t)s->len ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0) {
        snprintf(err, errlen, "cannot keep the JWT secret for the workers: %s",
                 w < 0 ? strerror(errno) : "short write");
        close(fd);
        return -1;
    }
    snprintf(num, sizeof num, "%d", fd);
    if (setenv(SECRET_FD_ENV, num, 1) != 0) {
        snprintf(err, errlen, "out of memory");
        close(fd);
        return -1;
    }
    return 0;
}
