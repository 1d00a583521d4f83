/*
 * libpq_load.h - libpq, loaded with dlopen by the processes that use a
 * PostgreSQL database.
 *
 * Linked, libpq maps itself and some twenty libraries it depends on
 * (GnuTLS, Kerberos, LDAP, SASL, p11-kit...) into every process, and
 * GnuTLS's constructor parses its ASN.1 tables at load: measured on a
 * worker serving SQLite (4 threads, 1,000 orders, 2026-11-30), those
 * libraries made 0.6 to 1.1 MiB of its proportional memory (Pss: their
 * pages divided among the processes mapping them, so it depends on what
 * else runs) and libtasn1 105 KiB of its heap, for an engine it never
 * used.  The largest worker's Pss went from 4.2-4.6 MiB to 3.2-3.3 MiB
 * (runs minutes apart).
 *
 * So the binaries do not link libpq: libpq_load.c defines the libpq
 * functions store_postgres.c calls (the prototypes are <libpq-fe.h>'s,
 * checked by the compiler) and forwards each to the library, opened once
 * per process (soname libpq.so.5, the libpq5 package the build found).
 * Calling one more libpq function from the adapter means one more row in
 * libpq_load.c's table; the link fails until it has one.
 */
#ifndef ORDERS_LIBPQ_LOAD_H
#define ORDERS_LIBPQ_LOAD_H

#include <stddef.h>

/* Opens libpq once per process (thread-safe).  Returns 0, or -1 with the
 * reason in err.  The store selection calls it before it opens a
 * PostgreSQL store; never unloaded. */
int libpq_load(char *err, size_t errlen);

#endif
