/*
 * secret.h - the JWT secret: where it comes from, and that it does not stay
 * in the environment.
 *
 * Sources, first found wins:
 *   1. the pool master's hand-over (SECRET_FD_ENV, an inherited memfd): how a
 *      worker gets a key that came from the master's environment;
 *   2. JWT_SECRET_KEY, the key itself;
 *   3. JWT_SECRET_FILE, a file holding it;
 *   4. $CREDENTIALS_DIRECTORY/jwt-secret, systemd's LoadCredential=jwt-secret;
 *   5. $RUNTIME_DIR/jwt-secret, generated there (mode 0600) on the service's
 *      first run when asked to (SECRET_READ_OR_GENERATE).
 * A file is taken whole (at most 1 KiB, raw bytes), less the trailing
 * newline an editor may add.  Whatever the source, a key shorter than
 * SECRET_MIN_LEN bytes is refused (RFC 7518, 3.2: an HMAC key at least as
 * long as the hash).  The key's bytes never reach a message.
 *
 * Once loaded, JWT_SECRET_KEY is removed from the environment and its bytes
 * wiped where the kernel shows them (/proc/PID/environ), so a worker's
 * environment, a crash report or a child process does not carry it.  A
 * program that never needs the key (the publisher) calls
 * secret_scrub_environment() and never loads it.
 */
#ifndef ORDERS_SECRET_H
#define ORDERS_SECRET_H

#include <stddef.h>

#define SECRET_MIN_LEN 32
#define SECRET_FILE_MAX 1024
#define SECRET_ENV "JWT_SECRET_KEY"
#define SECRET_FILE_ENV "JWT_SECRET_FILE"
#define SECRET_FD_ENV "ORDERS_SECRET_FD"

struct secret {
    unsigned char *bytes; /* NUL-terminated for convenience; may hold NULs */
    size_t len;
};

enum secret_mode { SECRET_READ, SECRET_READ_OR_GENERATE };

/* runtime_dir: where the generated secret lives.  Returns 0, or -1 with one
 * line in err naming the variable or file. */
int secret_load(const char *runtime_dir, enum secret_mode mode, struct secret *out,
                char *err, size_t errlen);

/* Wipes and frees; s may be NULL or empty. */
void secret_free(struct secret *s);

/* Removes JWT_SECRET_KEY from the environment, bytes wiped. */
void secret_scrub_environment(void);

/* For a process that execs children which need the key (the pool master):
 * puts it in a sealed memfd inherited by them and names it in
 * SECRET_FD_ENV, so that it need not stay in the environment.  Returns 0,
 * or -1 with a message in err. */
int secret_hand_over(const struct secret *s, char *err, size_t errlen);

#endif
