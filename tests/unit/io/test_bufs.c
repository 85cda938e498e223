/* bl_buf / bl_bufs_split: write buffers keep size_t lengths, and long ones are
 * split into pieces of at most max bytes, in order, covering every byte. */
#include "bayleaf/io/bufs.h"

#include "check.h"

static void test_bl_buf_keeps_the_length(void)
{
    /* uv_buf_init takes an unsigned int: 4 GiB + 5 would become 5. */
    size_t big = ((size_t)1 << 32) + 5;
    uv_buf_t b = bl_buf("x", big);
    CHECK(b.len == big);
    CHECK(uv_buf_init("x", (unsigned)big).len == 5); /* what it replaced */
}

/* Splits in[] with a small max; checks the pieces tile the input. */
static void check_split(const uv_buf_t *in, size_t nin, size_t max, size_t want)
{
    size_t n = bl_bufs_split(in, nin, NULL, 0, max);
    CHECK_EQ_INT(n, want);
    uv_buf_t *out = calloc(n + 1, sizeof(*out));
    out[n].base = (char *)"sentinel";
    CHECK_EQ_INT(bl_bufs_split(in, nin, out, n, max), n);
    CHECK(strcmp(out[n].base, "sentinel") == 0); /* nothing past cap */
    size_t k = 0;
    for (size_t i = 0; i < nin; i++) {
        size_t off = 0;
        do {
            if (!CHECK(k < n))
                break;
            CHECK(out[k].base == in[i].base + off);
            CHECK(out[k].len <= max);
            CHECK(out[k].len > 0 || in[i].len == 0);
            off += out[k].len;
            k++;
        } while (off < in[i].len);
        CHECK(off == in[i].len);
    }
    CHECK_EQ_INT(k, n);
    free(out);
}

static void test_split(void)
{
    static char data[100];
    uv_buf_t in[4] = {bl_buf(data, 10), bl_buf(data + 10, 0), bl_buf(data + 10, 25),
                      bl_buf(data + 35, 7)};
    check_split(in, 4, 100, 4); /* nothing to split */
    check_split(in, 4, 10, 1 + 1 + 3 + 1);
    check_split(in, 4, 7, 2 + 1 + 4 + 1);
    check_split(in, 4, 1, 10 + 1 + 25 + 7);
    check_split(in, 0, 10, 0);

    /* A cap smaller than needed writes only cap entries. */
    uv_buf_t out[3];
    memset(out, 0, sizeof(out));
    CHECK_EQ_INT(bl_bufs_split(in + 2, 1, out, 2, 10), 3);
    CHECK(out[0].base == data + 10 && out[0].len == 10);
    CHECK(out[1].base == data + 20 && out[1].len == 10);
    CHECK(out[2].base == NULL);

    /* A length past 32 bits, with the real bound: counted, never touched. */
    uv_buf_t huge = bl_buf(data, ((size_t)5 << 30) + 3);
    CHECK_EQ_INT(bl_bufs_split(&huge, 1, NULL, 0, BL_BUF_MAX), 6);
    uv_buf_t pieces[6];
    bl_bufs_split(&huge, 1, pieces, 6, BL_BUF_MAX);
    size_t total = 0;
    for (int i = 0; i < 6; i++) {
        CHECK(pieces[i].len <= BL_BUF_MAX && pieces[i].len <= UINT32_MAX);
        CHECK(pieces[i].base == data + total);
        total += pieces[i].len;
    }
    CHECK(total == huge.len);
}

int main(void)
{
    test_bl_buf_keeps_the_length();
    test_split();
    return check_report();
}
