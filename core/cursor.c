#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cursor.h"

#define CURSOR_VERSION 1
#define CURSOR_TAG_LEN 16 /* HMAC-SHA-256 truncated to 128 bits */
#define CURSOR_RAW_LEN (1 + 8 + CURSOR_TAG_LEN)

static const char cursor_label[] = "orders cursor key v1";

int cursor_key_derive(const unsigned char *secret, size_t secret_len,
                      struct cursor_key *out)
{
    unsigned int n = 0;
    if (secret == NULL || secret_len == 0 ||
        HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)cursor_label,
             sizeof cursor_label - 1, out->bytes, &n) == NULL ||
        n != CURSOR_KEY_LEN)
        return -1;
    return 0;
}

static int cursor_tag(const struct cursor_key *key, const unsigned char *msg,
                      size_t len, unsigned char tag[CURSOR_TAG_LEN])
{
    unsigned char full[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (HMAC(EVP_sha256(), key->bytes, CURSOR_KEY_LEN, msg, len, full, &n) == NULL ||
        n < CURSOR_TAG_LEN)
        return -1;
    memcpy(tag, full, CURSOR_TAG_LEN);
    return 0;
}

/* Lowercase hex with OpenSSL's encoder (which writes uppercase). */
static int cursor_hex(const unsigned char *raw, char out[CURSOR_TEXT_LEN + 1])
{
    size_t n = 0;
    if (OPENSSL_buf2hexstr_ex(out, CURSOR_TEXT_LEN + 1, &n, raw, CURSOR_RAW_LEN, '\0') != 1 ||
        n != CURSOR_TEXT_LEN + 1)
        return -1;
    for (size_t i = 0; i < CURSOR_TEXT_LEN; i++)
        if (out[i] >= 'A' && out[i] <= 'F')
            out[i] = (char)(out[i] - 'A' + 'a');
    return 0;
}

static void cursor_body(unsigned char raw[CURSOR_RAW_LEN], long long position)
{
    uint64_t p = (uint64_t)position;
    raw[0] = CURSOR_VERSION;
    for (int i = 0; i < 8; i++)
        raw[1 + i] = (unsigned char)(p >> (56 - 8 * i));
}

int cursor_encode(const struct cursor_key *key, long long position,
                  char out[CURSOR_TEXT_LEN + 1])
{
    unsigned char raw[CURSOR_RAW_LEN];
    cursor_body(raw, position);
    if (cursor_tag(key, raw, 9, raw + 9) != 0)
        return -1;
    return cursor_hex(raw, out);
}

bool cursor_decode(const struct cursor_key *key, const char *text,
                   long long *position)
{
    if (text == NULL || strlen(text) != CURSOR_TEXT_LEN)
        return false;
    unsigned char raw[CURSOR_RAW_LEN];
    size_t n = 0;
    if (OPENSSL_hexstr2buf_ex(raw, sizeof raw, &n, text, '\0') != 1 || n != CURSOR_RAW_LEN)
        return false;
    /* One spelling per cursor: "AB" decodes as "ab" does, and a changed
     * letter case is an altered cursor. */
    char again[CURSOR_TEXT_LEN + 1];
    if (cursor_hex(raw, again) != 0 || memcmp(again, text, CURSOR_TEXT_LEN) != 0)
        return false;
    unsigned char tag[CURSOR_TAG_LEN];
    if (raw[0] != CURSOR_VERSION || cursor_tag(key, raw, 9, tag) != 0 ||
        CRYPTO_memcmp(tag, raw + 9, CURSOR_TAG_LEN) != 0)
        return false;
    uint64_t p = 0;
    for (int i = 0; i < 8; i++)
        p = (p << 8) | raw[1 + i];
    if (p > (uint64_t)INT64_MAX)
        return false;
    *position = (long long)p;
    return true;
}
