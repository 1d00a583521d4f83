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

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/err.h>

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

/* The kernel's generator (getrandom), not libcrypto's DRBG: RAND_bytes
 * sets up OpenSSL's random subsystem on first use (its seed source, a
 * primary generator and two more for every thread that draws), which kept
 * about 0.15 MiB of heap resident in every worker, for a trace id pool
 * refilled once every 170 requests (core/trace.c), where the system call
 * (about 7 us for the pool's 4 KiB, against RAND_bytes's 2.4 us) adds
 * 0.04 us a request.  getrandom never reads an unseeded pool, and
 * a forked child draws fresh bytes without any reseeding of its own. */
int crypto_random(void *buf, size_t len)
{
    unsigned char *out = buf;
    while (len > 0) {
        ssize_t n = getrandom(out, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        out += n;
        len -= (size_t)n;
    }
    return 0;
}

void crypto_wipe(void *p, size_t n)
{
    OPENSSL_cleanse(p, n);
}

/* ---- public keys and signatures ------------------------------------------ */

struct crypto_pubkey {
    EVP_PKEY *pkey;
    enum crypto_key_type type;
};

static struct crypto_pubkey *crypto_pubkey_wrap(EVP_PKEY *pkey,
                                                enum crypto_key_type type)
{
    if (pkey == NULL)
        return NULL;
    struct crypto_pubkey *k = OPENSSL_zalloc(sizeof *k);
    if (k == NULL) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    k->pkey = pkey;
    k->type = type;
    return k;
}

/* A public key from OSSL_PARAMs (the provider checks what it is given). */
static EVP_PKEY *crypto_pkey_fromdata(const char *type, OSSL_PARAM *params)
{
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

struct crypto_pubkey *crypto_pubkey_rsa(const unsigned char *n, size_t nlen,
                                        const unsigned char *e, size_t elen,
                                        unsigned min_bits)
{
    if (crypto_init() != 0 || nlen == 0 || elen == 0 || nlen > INT_MAX ||
        elen > INT_MAX)
        return NULL;
    BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL), *be = BN_bin2bn(e, (int)elen, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY *pkey = NULL;
    /* An even or tiny exponent is no RSA key anyone generates. */
    if (bn != NULL && be != NULL && bld != NULL &&
        (unsigned)BN_num_bits(bn) >= min_bits && BN_is_odd(be) &&
        BN_num_bits(be) >= 2 && BN_num_bits(be) <= 64 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1 &&
        (params = OSSL_PARAM_BLD_to_param(bld)) != NULL)
        pkey = crypto_pkey_fromdata("RSA", params);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    return crypto_pubkey_wrap(pkey, CRYPTO_KEY_RSA);
}

struct crypto_pubkey *crypto_pubkey_ec(enum crypto_key_type curve,
                                       const unsigned char *x, size_t xlen,
                                       const unsigned char *y, size_t ylen)
{
    size_t size = curve == CRYPTO_KEY_P256 ? 32 : curve == CRYPTO_KEY_P384 ? 48 : 0;
    if (crypto_init() != 0 || size == 0 || xlen != size || ylen != size)
        return NULL;
    /* SEC 1 2.3.3: the uncompressed point, 0x04 || x || y. */
    unsigned char point[1 + 2 * 48];
    point[0] = 0x04;
    memcpy(point + 1, x, size);
    memcpy(point + 1 + size, y, size);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                         curve == CRYPTO_KEY_P256 ? "P-256" : "P-384", 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * size),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY *pkey = crypto_pkey_fromdata("EC", params);
    /* fromdata decodes the point; the check proves it lies on the curve. */
    EVP_PKEY_CTX *ctx = pkey ? EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL) : NULL;
    if (pkey != NULL && (ctx == NULL || EVP_PKEY_public_check(ctx) != 1)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return crypto_pubkey_wrap(pkey, curve);
}

struct crypto_pubkey *crypto_pubkey_ed25519(const unsigned char *x, size_t xlen)
{
    if (crypto_init() != 0 || xlen != 32)
        return NULL;
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, x, xlen);
    return crypto_pubkey_wrap(pkey, CRYPTO_KEY_ED25519);
}

void crypto_pubkey_free(struct crypto_pubkey *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->pkey);
    OPENSSL_free(k);
}

enum crypto_key_type crypto_pubkey_type(const struct crypto_pubkey *k)
{
    return k->type;
}

/* RFC 7518 3.4: the JWS form of an ECDSA signature is r || s, each as
 * long as the curve's order; libcrypto verifies the DER form (X9.62). */
static unsigned char *crypto_ecdsa_der(const unsigned char *sig, size_t siglen,
                                       size_t size, int *derlen)
{
    if (siglen != 2 * size)
        return NULL;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)size, NULL);
    BIGNUM *s = BN_bin2bn(sig + size, (int)size, NULL);
    unsigned char *der = NULL;
    if (es != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s) == 1) {
        r = s = NULL; /* owned by es now */
        *derlen = i2d_ECDSA_SIG(es, &der);
        if (*derlen <= 0) {
            OPENSSL_free(der);
            der = NULL;
        }
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return der;
}

static bool crypto_scheme_fits(enum crypto_key_type t, enum crypto_sig_scheme s)
{
    switch (s) {
    case CRYPTO_SIG_RSA_PKCS1:
    case CRYPTO_SIG_RSA_PSS:
        return t == CRYPTO_KEY_RSA;
    case CRYPTO_SIG_ECDSA:
        return t == CRYPTO_KEY_P256 || t == CRYPTO_KEY_P384;
    case CRYPTO_SIG_EDDSA:
        return t == CRYPTO_KEY_ED25519;
    }
    return false;
}

bool crypto_verify(const struct crypto_pubkey *k, enum crypto_sig_scheme scheme,
                   enum crypto_hash h, const void *msg, size_t len,
                   const unsigned char *sig, size_t siglen)
{
    if (k == NULL || !crypto_scheme_fits(k->type, scheme) || crypto_md_of(h) == NULL)
        return false;
    const unsigned char *s = sig;
    unsigned char *der = NULL;
    if (scheme == CRYPTO_SIG_ECDSA) {
        int derlen = 0;
        der = crypto_ecdsa_der(sig, siglen, k->type == CRYPTO_KEY_P256 ? 32 : 48, &derlen);
        if (der == NULL)
            return false;
        s = der;
        siglen = (size_t)derlen;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const char *mdname = scheme == CRYPTO_SIG_EDDSA ? NULL : crypto_md_names[h];
    bool ok = ctx != NULL &&
              EVP_DigestVerifyInit_ex(ctx, &pctx, mdname, NULL, NULL, k->pkey, NULL) == 1;
    if (ok && scheme == CRYPTO_SIG_RSA_PSS)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, crypto_md_names[h], NULL) == 1;
    else if (ok && scheme == CRYPTO_SIG_RSA_PKCS1)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
    ok = ok && EVP_DigestVerify(ctx, s, siglen, msg, len) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    /* A failed verification leaves errors on the thread's queue; they say
     * nothing a caller needs and must not pile up. */
    ERR_clear_error();
    return ok;
}

/* ---- private keys and signing ---------------------------------------------- */


struct crypto_privkey {
    EVP_PKEY *pkey;
    enum crypto_key_type type;
};

static bool crypto_key_type_of(EVP_PKEY *pkey, enum crypto_key_type *type)
{
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        *type = CRYPTO_KEY_RSA;
        return true;
    }
    if (EVP_PKEY_is_a(pkey, "ED25519")) {
        *type = CRYPTO_KEY_ED25519;
        return true;
    }
    char group[64];
    if (EVP_PKEY_is_a(pkey, "EC") &&
        EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                       sizeof group, NULL) == 1) {
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
            *type = CRYPTO_KEY_P256;
            return true;
        }
        if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
            *type = CRYPTO_KEY_P384;
            return true;
        }
    }
    return false;
}

struct crypto_privkey *crypto_privkey_load(const char *path, char *err, size_t errlen)
{
    if (crypto_init() != 0) {
        snprintf(err, errlen, "libcrypto is not usable");
        return NULL;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    EVP_PKEY *pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    ERR_clear_error();
    enum crypto_key_type type;
    if (pkey == NULL || !crypto_key_type_of(pkey, &type)) {
        snprintf(err, errlen, "%s: not a PEM private key of type RSA, EC P-256, EC P-384 "
                              "or Ed25519", path);
        EVP_PKEY_free(pkey);
        return NULL;
    }
    struct crypto_privkey *k = OPENSSL_zalloc(sizeof *k);
    if (k == NULL) {
        EVP_PKEY_free(pkey);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    k->pkey = pkey;
    k->type = type;
    return k;
}

void crypto_privkey_free(struct crypto_privkey *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->pkey);
    OPENSSL_free(k);
}

enum crypto_key_type crypto_privkey_type(const struct crypto_privkey *k)
{
    return k->type;
}

/* DER (X9.62) to the JWS form r || s, each size bytes. */
static size_t crypto_ecdsa_raw(const unsigned char *der, size_t derlen, size_t size,
                               unsigned char *out)
{
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
    size_t n = 0;
    if (es != NULL && BN_bn2binpad(ECDSA_SIG_get0_r(es), out, (int)size) == (int)size &&
        BN_bn2binpad(ECDSA_SIG_get0_s(es), out + size, (int)size) == (int)size)
        n = 2 * size;
    ECDSA_SIG_free(es);
    return n;
}

size_t crypto_sign(const struct crypto_privkey *k, enum crypto_sig_scheme scheme,
                   enum crypto_hash h, const void *msg, size_t len,
                   unsigned char *sig)
{
    if (k == NULL || !crypto_scheme_fits(k->type, scheme) || crypto_md_of(h) == NULL)
        return 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const char *mdname = scheme == CRYPTO_SIG_EDDSA ? NULL : crypto_md_names[h];
    unsigned char der[CRYPTO_SIG_MAX];
    size_t n = sizeof der;
    bool ok = ctx != NULL &&
              EVP_DigestSignInit_ex(ctx, &pctx, mdname, NULL, NULL, k->pkey, NULL) == 1;
    if (ok && scheme == CRYPTO_SIG_RSA_PSS)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, crypto_md_names[h], NULL) == 1;
    ok = ok && EVP_DigestSign(ctx, der, &n, msg, len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    if (!ok)
        return 0;
    if (scheme == CRYPTO_SIG_ECDSA)
        return crypto_ecdsa_raw(der, n, k->type == CRYPTO_KEY_P256 ? 32 : 48, sig);
    memcpy(sig, der, n);
    return n;
}

static bool crypto_bn_param(EVP_PKEY *pkey, const char *name, unsigned char *out,
                            size_t *len, int pad)
{
    BIGNUM *bn = NULL;
    bool ok = EVP_PKEY_get_bn_param(pkey, name, &bn) == 1 && BN_num_bytes(bn) <= 1024;
    if (ok) {
        int w = pad > 0 ? BN_bn2binpad(bn, out, pad) : BN_bn2bin(bn, out);
        ok = w > 0;
        *len = ok ? (size_t)w : 0;
    }
    BN_free(bn);
    return ok;
}

bool crypto_privkey_public(const struct crypto_privkey *k, unsigned char *a,
                           size_t *alen, unsigned char *b, size_t *blen)
{
    *alen = *blen = 0;
    switch (k->type) {
    case CRYPTO_KEY_RSA:
        return crypto_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_N, a, alen, 0) &&
               crypto_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_E, b, blen, 0);
    case CRYPTO_KEY_P256:
    case CRYPTO_KEY_P384: {
        int size = k->type == CRYPTO_KEY_P256 ? 32 : 48;
        return crypto_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, a, alen, size) &&
               crypto_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, b, blen, size);
    }
    case CRYPTO_KEY_ED25519: {
        size_t n = 1024;
        if (EVP_PKEY_get_raw_public_key(k->pkey, a, &n) != 1)
            return false;
        *alen = n;
        return true;
    }
    }
    return false;
}
