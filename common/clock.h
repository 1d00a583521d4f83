/*
 * clock.h - the one clock of every binary: wall-clock and monotonic time,
 * and the RFC 3339 rendering the contract asks of every timestamp.
 *
 * clock_gettime() cannot fail on Linux with these clocks and a valid
 * pointer; should it ever, the functions answer 0 rather than garbage.
 * All of them are async-signal-safe (the worker's watchdog reads the
 * monotonic clock in a signal handler).
 */
#ifndef ORDERS_CLOCK_H
#define ORDERS_CLOCK_H

#define CLOCK_RFC3339_LEN 24 /* 2026-11-25T12:34:56.789Z */

/* Milliseconds since the Unix epoch (UTC). */
long long clock_now_ms(void);

/* Nanoseconds since the Unix epoch (UTC), for trace spans. */
long long clock_now_ns(void);

/* Monotonic milliseconds, for durations and deadlines (fractional: request
 * durations are logged to the microsecond). */
double clock_monotonic_ms(void);

/* out must hold CLOCK_RFC3339_LEN + 1 bytes.  Returns 0 or -1. */
int clock_format_rfc3339(long long ms, char *out);

#endif
