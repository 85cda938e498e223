/* UTF-8 validator (gateway/utf8.c) against a reference decoder that works on
 * code points, exhaustively for short strings. */
#include "bayleaf/proto/utf8.h"
#include "check.h"

/* Each test runs in a child process: a crash is one failure. */
#define RUN(fn) check_isolated(#fn, fn, NULL)

/* Reference: decode by bit arithmetic, then apply the code point rules. */
static bool ref_valid(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t b = p[i];
        size_t n;
        uint32_t cp, min;
        if (b < 0x80) {
            i++;
            continue;
        } else if ((b & 0xe0) == 0xc0) {
            n = 1, cp = b & 0x1f, min = 0x80;
        } else if ((b & 0xf0) == 0xe0) {
            n = 2, cp = b & 0x0f, min = 0x800;
        } else if ((b & 0xf8) == 0xf0) {
            n = 3, cp = b & 0x07, min = 0x10000;
        } else {
            return false;
        }
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len || (p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

/* Can p[0, len) be completed into valid UTF-8? The code points a partial
 * sequence can still reach form an interval, so trying the lowest and the
 * highest continuation bytes is enough. */
static bool ref_prefix_ok(const uint8_t *p, size_t len)
{
    uint8_t buf[80];
    if (len > sizeof(buf) - 3)
        return false;
    memcpy(buf, p, len);
    if (ref_valid(buf, len))
        return true;
    for (size_t extra = 1; extra <= 3; extra++) {
        for (unsigned bits = 0; bits < (1u << extra); bits++) {
            for (size_t k = 0; k < extra; k++)
                buf[len + k] = (bits >> k) & 1 ? 0xbf : 0x80;
            if (ref_valid(buf, len + extra))
                return true;
        }
    }
    return false;
}

/* The validator stops exactly at the first byte no completion can save. */
static bool fails_fast(const uint8_t *p, size_t len)
{
    bl_utf8_t s;
    bl_utf8_init(&s);
    size_t r = bl_utf8_feed(&s, p, len);
    if (!ref_prefix_ok(p, r))
        return false;
    if (r < len)
        return !ref_prefix_ok(p, r + 1);
    return bl_utf8_complete(&s) == ref_valid(p, len);
}

static void test_vectors(void)
{
    static const struct {
        const char *s;
        size_t len;
        bool valid;
        size_t bad; /* offset of the first bad byte (len if none) */
    } v[] = {
        {"", 0, true, 0},
        {"hello", 5, true, 5},
        {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 11, true, 11}, /* "kosme" */
        {"\xf0\x9f\x98\x80", 4, true, 4},                               /* U+1F600 */
        {"\xf4\x8f\xbf\xbf", 4, true, 4},                               /* U+10FFFF */
        {"\xef\xbf\xbf", 3, true, 3},                                   /* U+FFFF */
        {"\xed\x9f\xbf", 3, true, 3},                                   /* U+D7FF */
        {"\xee\x80\x80", 3, true, 3},                                   /* U+E000 */
        {"\xc2\x80", 2, true, 2},                                       /* U+0080 */
        {"\xe0\xa0\x80", 3, true, 3},                                   /* U+0800 */
        {"\xf0\x90\x80\x80", 4, true, 4},                               /* U+10000 */
        {"\xc0\xaf", 2, false, 0},                                      /* overlong "/" */
        {"\xc1\xbf", 2, false, 0},
        {"\xe0\x80\xaf", 3, false, 1},
        {"\xe0\x9f\xbf", 3, false, 1},
        {"\xf0\x80\x80\xaf", 4, false, 1},
        {"\xf0\x8f\xbf\xbf", 4, false, 1},
        {"\xed\xa0\x80", 3, false, 1},     /* U+D800 */
        {"\xed\xbf\xbf", 3, false, 1},     /* U+DFFF */
        {"\xf4\x90\x80\x80", 4, false, 1}, /* U+110000 */
        {"\xf5\x80\x80\x80", 4, false, 0},
        {"\xff", 1, false, 0},
        {"\xfe", 1, false, 0},
        {"\x80", 1, false, 0},
        {"ab\xbf", 3, false, 2},
        {"\xe2\x82\x28", 3, false, 2},
        {"\xe2\x82", 2, false, 2}, /* truncated: no bad byte, incomplete */
        {"a\xf0\x9f\x98", 4, false, 4},
        {"abcdefgh\xc3", 9, false, 9},
        {"abcdefghijklmnop\xc3\xa9xyz\xed\xa0\x80", 23, false, 22},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        const uint8_t *p = (const uint8_t *)v[i].s;
        bl_utf8_t s;
        bl_utf8_init(&s);
        size_t r = bl_utf8_feed(&s, p, v[i].len);
        if (r != v[i].bad || bl_utf8_valid(p, v[i].len) != v[i].valid ||
            ref_valid(p, v[i].len) != v[i].valid) {
            fprintf(stderr, "  vector %zu: feed=%zu valid=%d\n", i, r, bl_utf8_valid(p, v[i].len));
            check_result(false, __FILE__, __LINE__, "case above");
        }
    }
}

static void test_exhaustive_short(void)
{
    uint8_t b[3];
    size_t bad = 0;
    for (unsigned x = 0; x < 256; x++) {
        b[0] = (uint8_t)x;
        bad += bl_utf8_valid(b, 1) != ref_valid(b, 1) || !fails_fast(b, 1);
        for (unsigned y = 0; y < 256; y++) {
            b[1] = (uint8_t)y;
            bad += bl_utf8_valid(b, 2) != ref_valid(b, 2) || !fails_fast(b, 2);
            for (unsigned z = 0; z < 256; z++) {
                b[2] = (uint8_t)z;
                bad += bl_utf8_valid(b, 3) != ref_valid(b, 3);
            }
        }
    }
    CHECK(bad == 0);
}

static void test_exhaustive_four(void)
{
    static const uint8_t tail[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff};
    uint8_t b[4];
    size_t bad = 0;
    for (unsigned w = 0xe0; w < 256; w++) {
        b[0] = (uint8_t)w;
        for (unsigned x = 0; x < 256; x++) {
            b[1] = (uint8_t)x;
            for (unsigned y = 0; y < 256; y++) {
                b[2] = (uint8_t)y;
                for (size_t z = 0; z < sizeof(tail); z++) {
                    b[3] = tail[z];
                    bad += bl_utf8_valid(b, 4) != ref_valid(b, 4);
                }
            }
        }
    }
    CHECK(bad == 0);
}

static uint32_t rng = 12345;
static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

/* Mostly valid text with the odd random byte, so errors land anywhere. */
static size_t random_text(uint8_t *p, size_t max)
{
    size_t n = 0;
    while (n + 4 <= max) {
        uint32_t r = next_rand() % 100;
        if (r < 40) {
            p[n++] = (uint8_t)(next_rand() % 0x80);
        } else if (r < 55) {
            uint32_t cp = 0x80 + next_rand() % 0x780;
            p[n++] = (uint8_t)(0xc0 | cp >> 6);
            p[n++] = (uint8_t)(0x80 | (cp & 0x3f));
        } else if (r < 75) {
            uint32_t cp = 0x800 + next_rand() % 0xf800;
            p[n++] = (uint8_t)(0xe0 | cp >> 12);
            p[n++] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
            p[n++] = (uint8_t)(0x80 | (cp & 0x3f));
        } else if (r < 90) {
            uint32_t cp = 0x10000 + next_rand() % 0x100000;
            p[n++] = (uint8_t)(0xf0 | cp >> 18);
            p[n++] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
            p[n++] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
            p[n++] = (uint8_t)(0x80 | (cp & 0x3f));
        } else if (r < 93) {
            p[n++] = (uint8_t)next_rand();
        } else {
            break;
        }
    }
    return n;
}

static void test_random_incremental(void)
{
    uint8_t p[64];
    size_t bad = 0;
    for (int iter = 0; iter < 200000; iter++) {
        size_t len = random_text(p, sizeof(p));
        bool whole = bl_utf8_valid(p, len);
        bad += whole != ref_valid(p, len) || !fails_fast(p, len);
        /* Any split into two feeds gives the same answer and the same offset. */
        bl_utf8_t s0;
        bl_utf8_init(&s0);
        size_t first_bad = bl_utf8_feed(&s0, p, len);
        size_t cut = len ? next_rand() % (len + 1) : 0;
        bl_utf8_t s;
        bl_utf8_init(&s);
        size_t r = bl_utf8_feed(&s, p, cut);
        if (r == cut)
            r = cut + bl_utf8_feed(&s, p + cut, len - cut);
        bad += r != first_bad || (r == len && bl_utf8_complete(&s) != whole);
    }
    CHECK(bad == 0);
}

static void test_byte_at_a_time(void)
{
    const uint8_t *p = (const uint8_t *)"a\xe2\x82\xac\xf0\x9f\x98\x80z";
    bl_utf8_t s;
    bl_utf8_init(&s);
    for (size_t i = 0; i < 9; i++) {
        CHECK(bl_utf8_feed(&s, p + i, 1) == 1);
        CHECK(bl_utf8_complete(&s) == (i == 0 || i == 3 || i == 7 || i == 8));
    }
    bl_utf8_init(&s);
    CHECK(bl_utf8_feed(&s, (const uint8_t *)"\xed", 1) == 1);
    CHECK(bl_utf8_feed(&s, (const uint8_t *)"\xa0", 1) == 0);
}

int main(void)
{
    RUN(test_vectors);
    RUN(test_exhaustive_short);
    RUN(test_exhaustive_four);
    RUN(test_random_incremental);
    RUN(test_byte_at_a_time);
    return check_report();
}
