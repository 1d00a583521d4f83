/*
 * clock.h - wall-clock milliseconds and their RFC 3339 rendering.
 */
#ifndef ORDERS_CLOCK_H
#define ORDERS_CLOCK_H

#define CLOCK_RFC3339_LEN 24 /* 2026-11-25T12:34:56.789Z */

/* Milliseconds since the Unix epoch (UTC). */
long long clock_now_ms(void);

/* Monotonic milliseconds, for durations. */
double clock_monotonic_ms(void);

/* out must hold CLOCK_RFC3339_LEN + 1 bytes.  Returns 0 or -1. */
int clock_format_rfc3339(long long ms, char *out);

#endif
