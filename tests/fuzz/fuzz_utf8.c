/* libFuzzer target: gateway/utf8.c against an independent decoder.
 *
 * bl_utf8_valid must agree with a code-point decoder (overlongs, surrogates
 * and values above U+10FFFF are invalid); bl_utf8_feed must report the same
 * first invalid offset whether the bytes come whole or in pieces (the first
 * byte is the split seed), since the WebSocket layer fails fast on it. */
#include "bayleaf/proto/utf8.h"
#include "fuzz_common.h"

#include <stdbool.h>

/* Can a sequence whose code point starts with the bits of cp, with rest
 * continuation bytes still to come, end up valid? Its completions form the
 * interval [lo, hi]; the valid ones are [min, U+10FFFF] minus the surrogates. */
static bool viable(uint32_t cp, int rest, uint32_t min)
{
    uint32_t lo = cp << (6 * rest), hi = lo | ((1u << (6 * rest)) - 1);
    if (lo < min)
        lo = min;
    if (hi > 0x10ffff)
        hi = 0x10ffff;
    return lo <= hi && !(lo >= 0xd800 && hi <= 0xdfff);
}

/* Offset of the first byte after which no valid text can follow (fail fast),
 * or len; *open: the last sequence is cut by the end. */
static size_t first_invalid(const uint8_t *p, size_t len, bool *open)
{
    size_t i = 0;
    *open = false;
    while (i < len) {
        uint32_t c = p[i], cp, min;
        int n;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return i;
        }
        if (!viable(cp, n, min))
            return i;
        for (int k = 1; k <= n; k++) {
            if (i + (size_t)k == len) {
                *open = true;
                return len;
            }
            uint8_t b = p[i + (size_t)k];
            if ((b & 0xc0) != 0x80)
                return i + (size_t)k;
            cp = cp << 6 | (b & 0x3f);
            if (!viable(cp, n - k, min))
                return i + (size_t)k;
        }
        i += (size_t)n + 1;
    }
    return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    fuzz_rng_t rng;
    fuzz_rng_init(&rng, data[0]);
    const uint8_t *p = data + 1;
    size_t len = size - 1;

    bool open;
    size_t want = first_invalid(p, len, &open);
    bool valid = want == len && !open;
    FUZZ_CHECK(bl_utf8_valid(p, len) == valid);

    /* Whole: the offset of the first invalid byte. */
    bl_utf8_t s;
    bl_utf8_init(&s);
    size_t got = bl_utf8_feed(&s, p, len);
    FUZZ_CHECK(got == want);
    if (got == len)
        FUZZ_CHECK(bl_utf8_complete(&s) == !open);

    /* In pieces: the same offset, counted from the start. */
    bl_utf8_init(&s);
    size_t off = 0;
    while (off < len) {
        size_t n = fuzz_piece(&rng, len - off);
        size_t k = bl_utf8_feed(&s, p + off, n);
        FUZZ_CHECK(k <= n);
        if (k < n) {
            FUZZ_CHECK(off + k == want);
            return 0;
        }
        off += n;
    }
    FUZZ_CHECK(want == len);
    FUZZ_CHECK(bl_utf8_complete(&s) == !open);
    return 0;
}
