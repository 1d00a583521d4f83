/*
 * auth_cache.c - accepted tokens by their keyed MAC (see auth_cache.h).
 *
 * A slot is found by HMAC-SHA-256 of the token under a key drawn at random
 * when the cache is made, and the whole MAC is compared (in constant time)
 * to say "same token".  So the cache keeps no token bytes, only what a
 * request already carries (sub, scope bits, time claims); tokens of any
 * accepted length are cached; a client cannot choose tokens that fight
 * over one slot, and neither the slot nor the timing of a lookup tells it
 * anything about another client's token.  Two different tokens with the
 * same MAC would need a collision of HMAC-SHA-256.
 *
 * Bounded: AUTH_CACHE_SLOTS direct-mapped slots, allocated once (untouched
 * slots cost no resident memory), wiped when freed.
 */
#include "auth_cache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

#define AUTH_CACHE_SLOTS 64

struct auth_cache_entry {
    bool used;
    unsigned char mac[AUTH_CACHE_KEY_LEN];
    struct auth_times times;
    struct auth_principal principal;
};

struct auth_cache {
    struct crypto_hmac *prf;
    struct auth_cache_entry slot[AUTH_CACHE_SLOTS];
};

struct auth_cache *auth_cache_new(void)
{
    struct auth_cache *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    unsigned char key[32];
    if (crypto_random(key, sizeof key) == 0)
        c->prf = crypto_hmac_new(CRYPTO_SHA256, key, sizeof key);
    crypto_wipe(key, sizeof key);
    if (c->prf == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

void auth_cache_free(struct auth_cache *c)
{
    if (c == NULL)
        return;
    crypto_hmac_free(c->prf);
    crypto_wipe(c, sizeof *c);
    free(c);
}

static struct auth_cache_entry *slot_of(struct auth_cache *c,
                                        const struct auth_cache_key *key)
{
    uint32_t h;
    memcpy(&h, key->mac, sizeof h);
    return &c->slot[h % AUTH_CACHE_SLOTS];
}

bool auth_cache_lookup(struct auth_cache *c, const char *tok, size_t len,
                       struct auth_cache_key *key,
                       struct auth_principal *principal,
                       struct auth_times *times)
{
    if (!crypto_hmac(c->prf, tok, len, key->mac)) {
        memset(key->mac, 0, sizeof key->mac);
        return false;
    }
    const struct auth_cache_entry *e = slot_of(c, key);
    if (!e->used || !crypto_equal(e->mac, key->mac, sizeof e->mac))
        return false;
    *principal = e->principal;
    *times = e->times;
    return true;
}

void auth_cache_store(struct auth_cache *c, const struct auth_cache_key *key,
                      const struct auth_principal *principal,
                      const struct auth_times *times)
{
    static const unsigned char zero[AUTH_CACHE_KEY_LEN];
    if (memcmp(key->mac, zero, sizeof zero) == 0)
        return;
    struct auth_cache_entry *e = slot_of(c, key);
    e->used = true;
    memcpy(e->mac, key->mac, sizeof e->mac);
    e->principal = *principal;
    e->times = *times;
}
