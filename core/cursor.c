#include "cursor.h"

#include <stdint.h>
#include <string.h>

#include "crypto.h"

#define CURSOR_VERSION 1
#define CURSOR_TAG_LEN 16 /* HMAC-SHA-256 truncated to 128 bits */
#define CURSOR_BODY_LEN 9 /* version, position (big-endian) */
#define CURSOR_RAW_LEN (CURSOR_BODY_LEN + CURSOR_TAG_LEN)

static const char cursor_label[] = "orders cursor key v1";

int cursor_key_init(struct cursor_key *key, const unsigned char *secret,
                    size_t secret_len)
{
    key->mac = NULL;
    if (secret == NULL || secret_len == 0)
        return -1;
    struct crypto_hmac *outer = crypto_hmac_new(CRYPTO_SHA256, secret, secret_len);
    unsigned char derived[CRYPTO_DIGEST_MAX];
    bool ok = outer != NULL &&
              crypto_hmac(outer, cursor_label, sizeof cursor_label - 1, derived);
    crypto_hmac_free(outer);
    if (ok)
        key->mac = crypto_hmac_new(CRYPTO_SHA256, derived, crypto_hash_size(CRYPTO_SHA256));
    crypto_wipe(derived, sizeof derived);
    return key->mac != NULL ? 0 : -1;
}

void cursor_key_free(struct cursor_key *key)
{
    crypto_hmac_free(key->mac);
    key->mac = NULL;
}

static bool cursor_tag(const struct cursor_key *key, const unsigned char *body,
                       unsigned char tag[CURSOR_TAG_LEN])
{
    unsigned char full[CRYPTO_DIGEST_MAX];
    if (key->mac == NULL || !crypto_hmac(key->mac, body, CURSOR_BODY_LEN, full))
        return false;
    memcpy(tag, full, CURSOR_TAG_LEN);
    return true;
}

int cursor_encode(const struct cursor_key *key, long long position,
                  char out[CURSOR_TEXT_LEN + 1])
{
    unsigned char raw[CURSOR_RAW_LEN];
    uint64_t p = (uint64_t)position;
    raw[0] = CURSOR_VERSION;
    for (int i = 0; i < 8; i++)
        raw[1 + i] = (unsigned char)(p >> (56 - 8 * i));
    if (position < 0 || !cursor_tag(key, raw, raw + CURSOR_BODY_LEN))
        return -1;
    char text[CRYPTO_B64URL_ENCODED_MAX(CURSOR_RAW_LEN)];
    if (crypto_b64url_encode(raw, sizeof raw, text) != CURSOR_TEXT_LEN)
        return -1;
    memcpy(out, text, CURSOR_TEXT_LEN + 1);
    return 0;
}

bool cursor_decode(const struct cursor_key *key, const char *text,
                   long long *position)
{
    if (text == NULL || strlen(text) != CURSOR_TEXT_LEN)
        return false;
    unsigned char raw[CRYPTO_B64URL_DECODED_MAX(CURSOR_TEXT_LEN)];
    size_t n = 0;
    if (!crypto_b64url_decode(text, CURSOR_TEXT_LEN, raw, &n) || n != CURSOR_RAW_LEN)
        return false;
    /* One spelling per cursor: the decoder ignores the last character's
     * leftover bits, so a changed low bit there would decode the same. */
    char again[CRYPTO_B64URL_ENCODED_MAX(CURSOR_RAW_LEN)];
    if (crypto_b64url_encode(raw, CURSOR_RAW_LEN, again) != CURSOR_TEXT_LEN ||
        memcmp(again, text, CURSOR_TEXT_LEN) != 0)
        return false;
    unsigned char tag[CURSOR_TAG_LEN];
    if (raw[0] != CURSOR_VERSION || !cursor_tag(key, raw, tag) ||
        !crypto_equal(tag, raw + CURSOR_BODY_LEN, CURSOR_TAG_LEN))
        return false;
    uint64_t p = 0;
    for (int i = 0; i < 8; i++)
        p = (p << 8) | raw[1 + i];
    if (p > (uint64_t)INT64_MAX)
        return false;
    *position = (long long)p;
    return true;
}
