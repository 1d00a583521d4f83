#include "idempotency.h"

#include <stdlib.h>
#include <string.h>

#include "crypto.h"

static bool is_visible_ascii(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e;
}

bool idempotency_key_parse(const char *value, int count,
                           char out[IDEMPOTENCY_KEY_MAX + 1], const char **why)
{
    if (count > 1) {
        *why = "Idempotency-Key must be given at most once";
        return false;
    }
    size_t len = value ? strlen(value) : 0;
    size_t o = 0;
    if (len >= 2 && value[0] == '"' && value[len - 1] == '"') {
        /* RFC 8941 sf-string: \" and \\ are the only escapes.  A space is
         * a valid sf-string character but not a key character. */
        for (size_t i = 1; i + 1 < len; i++) {
            unsigned char c = (unsigned char)value[i];
            if (c == '\\') {
                if (i + 2 >= len || (value[i + 1] != '"' && value[i + 1] != '\\')) {
                    *why = "Idempotency-Key has a bad escape in its quoted form";
                    return false;
                }
                c = (unsigned char)value[++i];
            } else if (c == '"') {
                *why = "Idempotency-Key has an unescaped quote in its quoted form";
                return false;
            }
            if (!is_visible_ascii(c)) {
                *why = "Idempotency-Key must be visible ASCII characters (0x21-0x7E)";
                return false;
            }
            if (o >= IDEMPOTENCY_KEY_MAX) {
                *why = "Idempotency-Key must be at most 255 characters";
                return false;
            }
            out[o++] = (char)c;
        }
    } else {
        for (size_t i = 0; i < len; i++) {
            if (!is_visible_ascii((unsigned char)value[i])) {
                *why = "Idempotency-Key must be visible ASCII characters (0x21-0x7E)";
                return false;
            }
        }
        if (len > IDEMPOTENCY_KEY_MAX) {
            *why = "Idempotency-Key must be at most 255 characters";
            return false;
        }
        if (len > 0) /* value may be NULL (no header) */
            memcpy(out, value, len);
        o = len;
    }
    if (o == 0) {
        *why = "Idempotency-Key must not be empty";
        return false;
    }
    out[o] = '\0';
    return true;
}

int idempotency_fingerprint(const char *customer_id, const char *items_json,
                            unsigned char out[IDEMPOTENCY_FINGERPRINT_LEN])
{
    /* customerId, a NUL (which neither part can contain: the parser refuses
     * it), then the items array as stored. */
    size_t c = strlen(customer_id), i = strlen(items_json);
    char *canonical = malloc(c + 1 + i);
    if (canonical == NULL)
        return -1;
    memcpy(canonical, customer_id, c + 1);
    memcpy(canonical + c + 1, items_json, i);
    bool ok = crypto_digest(CRYPTO_SHA256, canonical, c + 1 + i, out);
    free(canonical);
    return ok ? 0 : -1;
}
