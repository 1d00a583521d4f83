/*
 * crypto.c - thin wrappers over OpenSSL libcrypto 3.0 (see crypto.h).
 *
 * OpenSSL 3 looks an algorithm up by name in its provider store on every
 * "implicit fetch" (EVP_sha256(), HMAC(), EVP_Q_mac()), which takes a lock
 * and costs microseconds; the algorithms are therefore fetched once here
 * and kept for the life of the process.  The fetched objects are never
 * freed: they are process-wide and live until exit, like libcrypto itself.
 */
#include "crypto.h"

#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

static const char *const crypto_md_names[] = {
    [CRYPTO_SHA256] = "SHA256",
    [CRYPTO_SHA384] = "SHA384",
    [CRYPTO_SHA512] = "SHA512",
};
#define CRYPTO_NHASH (sizeof crypto_md_names / sizeof crypto_md_names[0])

static EVP_MD *crypto_md[CRYPTO_NHASH];
static EVP_MAC *crypto_hmac_alg;
static int crypto_init_rc = -1;
static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;

static void crypto_fetch_all(void)
{
    if (OPENSSL_init_crypto(0, NULL) != 1)
        return;
    for (size_t i = 0; i < CRYPTO_NHASH; i++) {
        crypto_md[i] = EVP_MD_fetch(NULL, crypto_md_names[i], NULL);
        if (crypto_md[i] == NULL)
            return;
    }
    crypto_hmac_alg = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    if (crypto_hmac_alg == NULL)
        return;
    crypto_init_rc = 0;
}

int crypto_init(void)
{
    pthread_once(&crypto_once, crypto_fetch_all);
    return crypto_init_rc;
}

static const EVP_MD *crypto_md_of(enum crypto_hash h)
{
    if (crypto_init() != 0 || (unsigned)h >= CRYPTO_NHASH)
        return NULL;
    return crypto_md[h];
}

size_t crypto_hash_size(enum crypto_hash h)
{
    switch (h) {
    case CRYPTO_SHA256:
        return 32;
    case CRYPTO_SHA384:
        return 48;
    case CRYPTO_SHA512:
        return 64;
    }
    return 0;
}

bool crypto_digest(enum crypto_hash h, const void *data, size_t len,
                   unsigned char *out)
{
    const EVP_MD *md = crypto_md_of(h);
    unsigned int n = 0;
    return md != NULL && EVP_Digest(data, len, out, &n, md, NULL) == 1 &&
           n == crypto_hash_size(h);
}

/* ---- HMAC ------------------------------------------------------------- */

struct crypto_hmac {
    EVP_MAC_CTX *ctx; /* keyed; EVP_MAC_init(ctx, NULL, ...) rewinds it */
    enum crypto_hash hash;
};

struct crypto_hmac *crypto_hmac_new(enum crypto_hash h, const void *key,
                                    size_t keylen)
{
    static const unsigned char empty[1];
    if (crypto_md_of(h) == NULL)
        return NULL;
    struct crypto_hmac *k = OPENSSL_zalloc(sizeof *k);
    if (k == NULL)
        return NULL;
    k->hash = h;
    k->ctx = EVP_MAC_CTX_new(crypto_hmac_alg);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                         (char *)crypto_md_names[h], 0),
        OSSL_PARAM_construct_end(),
    };
    /* A NULL key would mean "keep the current key"; an empty key is a
     * key all the same (RFC 2104 allows it). */
    if (k->ctx == NULL ||
        EVP_MAC_init(k->ctx, key != NULL ? key : empty, keylen, params) != 1) {
        crypto_hmac_free(k);
        return NULL;
    }
    return k;
}

void crypto_hmac_free(struct crypto_hmac *k)
{
    if (k == NULL)
        return;
    EVP_MAC_CTX_free(k->ctx); /* the provider cleanses its key copy */
    OPENSSL_free(k);
}

size_t crypto_hmac_size(const struct crypto_hmac *k)
{
    return crypto_hash_size(k->hash);
}

bool crypto_hmac(struct crypto_hmac *k, const void *msg, size_t len,
                 unsigned char *out)
{
    size_t want = crypto_hash_size(k->hash), n = 0;
    return EVP_MAC_init(k->ctx, NULL, 0, NULL) == 1 &&
           EVP_MAC_update(k->ctx, msg, len) == 1 &&
           EVP_MAC_final(k->ctx, out, &n, want) == 1 && n == want;
}

bool crypto_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

/* ---- base64url -------------------------------------------------------- */

/* libcrypto speaks standard base64 (RFC 4648 4) with padding; the url-safe
 * form differs only in two characters and in dropping the padding, so the
 * translation is done here on libcrypto's output and input. */

size_t crypto_b64url_len(size_t n)
{
    return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

size_t crypto_b64url_encode(const void *in, size_t len, char *out)
{
    /* EVP_EncodeBlock takes an int; callers encode digests, signatures
     * and small JSON documents, far below that. */
    if (len > INT_MAX / 4 * 3) {
        out[0] = '\0';
        return 0;
    }
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    size_t m = n > 0 ? (size_t)n : 0;
    while (m > 0 && out[m - 1] == '=')
        m--;
    for (size_t i = 0; i < m; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    out[m] = '\0';
    return m;
}

static bool crypto_b64url_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
}

bool crypto_b64url_valid(const char *in, size_t len)
{
    if (len % 4 == 1)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!crypto_b64url_char((unsigned char)in[i]))
            return false;
    return true;
}

/* Decodes in chunks through a small buffer, so that no allocation is
 * needed for any length: each chunk is translated to the standard
 * alphabet, and the last one padded as EVP_DecodeBlock wants. */
#define CRYPTO_B64_CHUNK 256 /* characters; a multiple of 4 */

bool crypto_b64url_decode(const char *in, size_t len, unsigned char *out,
                          size_t *outlen)
{
    *outlen = 0;
    if (!crypto_b64url_valid(in, len))
        return false;
    unsigned char buf[CRYPTO_B64_CHUNK + 4];
    size_t o = 0;
    for (size_t at = 0; at < len;) {
        size_t take = len - at < CRYPTO_B64_CHUNK ? len - at : CRYPTO_B64_CHUNK;
        for (size_t i = 0; i < take; i++) {
            char c = in[at + i];
            buf[i] = (unsigned char)(c == '-' ? '+' : c == '_' ? '/' : c);
        }
        size_t pad = (4 - take % 4) % 4; /* 0, 1 or 2: 4k+1 was refused */
        for (size_t i = 0; i < pad; i++)
            buf[take + i] = '=';
        int n = EVP_DecodeBlock(out + o, buf, (int)(take + pad));
        if (n < 0 || (size_t)n < pad)
            return false;
        /* EVP_DecodeBlock counts the padding as zero bytes. */
        o += (size_t)n - pad;
        at += take;
    }
    *outlen = o;
    return true;
}

/* ---- randomness and hygiene ------------------------------------------- */

int crypto_random(void *buf, size_t len)
{
    if (len > INT_MAX || crypto_init() != 0)
        return -1;
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

void crypto_wipe(void *p, size_t n)
{
    OPENSSL_cleanse(p, n);
}
