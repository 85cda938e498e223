/* The token helpers every header splitter and name check shares
 * (include/bayleaf/proto/tokens.h). */
#include "bayleaf/proto/tokens.h"
#include "check.h"

#define RUN(fn) check_isolated(#fn, fn, NULL)

/* Collects the elements of v, joined by '|', into out. */
static void walk_with(bool (*next)(const char *, size_t, size_t *, const char **, size_t *),
                      const char *v, char *out, size_t cap)
{
    size_t pos = 0, n = 0, len = strlen(v), tl;
    const char *t;
    out[0] = '\0';
    while (next(v, len, &pos, &t, &tl)) {
        n += (size_t)snprintf(out + n, cap - n, "%s%.*s", n ? "|" : "", (int)tl, t);
        CHECK(pos <= len);
    }
    CHECK(pos == len);
}

static void walk(const char *v, char *out, size_t cap)
{
    walk_with(bl_token_next, v, out, cap);
}

static void walk_quoted(const char *v, char *out, size_t cap)
{
    walk_with(bl_token_next_quoted, v, out, cap);
}

static void test_walk_empty(void)
{
    char out[64];
    walk("", out, sizeof out);
    CHECK(strcmp(out, "") == 0);
    walk(" ,\t, ,", out, sizeof out);
    CHECK(strcmp(out, "") == 0);
}

static void test_walk_trims_ows(void)
{
    char out[64];
    walk("a, b ,\tc\t", out, sizeof out);
    CHECK(strcmp(out, "a|b|c") == 0);
}

static void test_walk_skips_empty_elements(void)
{
    char out[64];
    walk(",,a,,, b,", out, sizeof out);
    CHECK(strcmp(out, "a|b") == 0);
}

static void test_walk_keeps_inner_space(void)
{
    char out[64];
    walk("permessage-deflate; x=1 , keep-alive", out, sizeof out);
    CHECK(strcmp(out, "permessage-deflate; x=1|keep-alive") == 0);
}

/* The plain walker knows no quotes; the quoted one keeps a comma inside
 * "..." (escapes included) in its element and trims and skips the same. */
static void test_walk_quoted(void)
{
    char out[128];
    walk("a; x=\"1,2\", b", out, sizeof out);
    CHECK(strcmp(out, "a; x=\"1|2\"|b") == 0);
    walk_quoted("a; x=\"1,2\", b", out, sizeof out);
    CHECK(strcmp(out, "a; x=\"1,2\"|b") == 0);
    walk_quoted("a=\"\\\",\" ,,\t b ,", out, sizeof out);
    CHECK(strcmp(out, "a=\"\\\",\"|b") == 0);
    walk_quoted(",, \t,x , y\t", out, sizeof out);
    CHECK(strcmp(out, "x|y") == 0);
    walk_quoted(" ,\t, ,", out, sizeof out);
    CHECK(strcmp(out, "") == 0);
}

/* An unterminated quote runs to the end; a quote outside an element's
 * parameters still opens one (as the parsers that resynchronise did). */
static void test_walk_quoted_unterminated(void)
{
    char out[128];
    walk_quoted("a, b=\"c, d ", out, sizeof out);
    CHECK(strcmp(out, "a|b=\"c, d") == 0);
    walk_quoted("x\"y, z\", w", out, sizeof out);
    CHECK(strcmp(out, "x\"y, z\"|w") == 0);
    walk_quoted("p, \"q\\", out, sizeof out);
    CHECK(strcmp(out, "p|\"q\\") == 0);
}

static void test_token_char_matches_rfc(void)
{
    const char *delims = "\"(),/:;<=>?@[\\]{}";
    for (int c = 0; c < 256; c++) {
        bool want = c > 32 && c < 127 && strchr(delims, c) == NULL;
        CHECK(bl_token_char((unsigned char)c) == want);
    }
    CHECK(bl_token_char('a') && bl_token_char('Z') && bl_token_char('9'));
    CHECK(bl_token_char('!') && bl_token_char('~') && bl_token_char('`'));
    CHECK(!bl_token_char('\0') && !bl_token_char(' ') && !bl_token_char(0x7f));
    CHECK(!bl_token_char(0x80));
}

int main(void)
{
    RUN(test_walk_empty);
    RUN(test_walk_trims_ows);
    RUN(test_walk_skips_empty_elements);
    RUN(test_walk_keeps_inner_space);
    RUN(test_walk_quoted);
    RUN(test_walk_quoted_unterminated);
    RUN(test_token_char_matches_rfc);
    return check_report();
}
