/* Shared by the fuzz targets: a failed invariant aborts (libFuzzer saves the
 * input), and a tiny deterministic PRNG turns input bytes into split points. */
#ifndef BAYLEAF_FUZZ_COMMON_H
#define BAYLEAF_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* xorshift32: the same seed gives the same splits, so a crash reproduces. */
typedef struct {
    uint32_t s;
} fuzz_rng_t;

static inline void fuzz_rng_init(fuzz_rng_t *r, uint32_t seed)
{
    r->s = seed * 2654435761u + 0x9e3779b9u;
    if (r->s == 0)
        r->s = 1;
}

static inline uint32_t fuzz_rng_next(fuzz_rng_t *r)
{
    uint32_t x = r->s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return r->s = x;
}

/* The next piece length for a split feed: mostly tiny, sometimes large, so
 * both byte-at-a-time and bulk paths are covered. Never 0 unless left is 0. */
static inline size_t fuzz_piece(fuzz_rng_t *r, size_t left)
{
    uint32_t x = fuzz_rng_next(r);
    size_t n;
    switch (x & 3) {
    case 0:
        n = 1;
        break;
    case 1:
        n = 1 + (x >> 8) % 7;
        break;
    case 2:
        n = 1 + (x >> 8) % 64;
        break;
    default:
        n = 1 + (x >> 8) % 4096;
        break;
    }
    return n < left ? n : left;
}

/* FNV-1a: a digest of what a parser reported, to compare split and whole feeds. */
static inline uint64_t fuzz_hash(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

#define FUZZ_HASH_INIT 0xcbf29ce484222325ull

#endif
