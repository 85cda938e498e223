/* bl_buf_reserve: the one growth policy. Capacity starts at the first size and
 * doubles; an exact fit keeps the buffer; a size past PTRDIFF_MAX is refused;
 * a failed growth leaves the old buffer and capacity as they were. */
#include "bayleaf/common/buf.h"
#include "check.h"

#include <errno.h>
#include <stdint.h>

static void test_growth(void)
{
    char *buf = NULL;
    size_t cap = 0;
    CHECK(bl_buf_reserve(&buf, &cap, 10, 256) == 0 && buf != NULL && cap == 256);
    memcpy(buf, "0123456789", 10);
    CHECK(bl_buf_reserve(&buf, &cap, 257, 256) == 0 && cap == 512);
    CHECK(memcmp(buf, "0123456789", 10) == 0); /* contents move with it */
    CHECK(bl_buf_reserve(&buf, &cap, 5000, 256) == 0 && cap == 8192);
    free(buf);

    uint8_t *u = NULL; /* uint8_t buffers go through the same call */
    cap = 0;
    CHECK(bl_buf_reserve(&u, &cap, 3000, 1024) == 0 && cap == 4096);
    free(u);

    buf = NULL; /* no first size: exactly what was asked for */
    cap = 0;
    CHECK(bl_buf_reserve(&buf, &cap, 7, 0) == 0 && cap == 7);
    free(buf);
}

static void test_exact_fit(void)
{
    char *buf = NULL;
    size_t cap = 0;
    CHECK(bl_buf_reserve(&buf, &cap, 100, 100) == 0 && cap == 100);
    char *before = buf;
    CHECK(bl_buf_reserve(&buf, &cap, 100, 100) == 0 && buf == before && cap == 100);
    CHECK(bl_buf_reserve(&buf, &cap, 0, 100) == 0 && buf == before && cap == 100);
    free(buf);
    buf = NULL;
    cap = 0;
    CHECK(bl_buf_reserve(&buf, &cap, 0, 16) == 0 && buf == NULL && cap == 0);
}

static void test_overflow_refused(void)
{
    char *buf = NULL;
    size_t cap = 0;
    CHECK(bl_buf_reserve(&buf, &cap, 8, 8) == 0);
    memcpy(buf, "intact!", 8);
    char *before = buf;
    CHECK(bl_buf_reserve(&buf, &cap, SIZE_MAX, 8) == -ENOMEM);
    CHECK(bl_buf_reserve(&buf, &cap, (size_t)PTRDIFF_MAX + 1, 8) == -ENOMEM);
    CHECK(buf == before && cap == 8 && memcmp(buf, "intact!", 8) == 0);
    free(buf);
}

/* Sanitizers abort on a huge allocation instead of returning NULL (gcc says
 * __SANITIZE_*__, clang __has_feature). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HUGE_ALLOC_FAILS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define HUGE_ALLOC_FAILS 0
#endif
#endif
#ifndef HUGE_ALLOC_FAILS
#define HUGE_ALLOC_FAILS 1
#endif

static void test_failure_keeps_old(void)
{
    char *buf = NULL;
    size_t cap = 0;
    CHECK(bl_buf_reserve(&buf, &cap, 16, 16) == 0);
    memcpy(buf, "still here", 11);
    char *before = buf;
#if HUGE_ALLOC_FAILS
    /* Within PTRDIFF_MAX, so it reaches realloc, which cannot map 2^61 bytes. */
    CHECK(bl_buf_reserve(&buf, &cap, (size_t)PTRDIFF_MAX / 4, 16) == -ENOMEM);
#endif
    CHECK(buf == before && cap == 16 && strcmp(buf, "still here") == 0);
    CHECK(bl_buf_reserve(&buf, &cap, 40, 16) == 0 && cap == 64); /* still usable */
    CHECK(strcmp(buf, "still here") == 0);
    free(buf);
}

/* Element counts: the same policy in units of the element's size. */
static void test_elements(void)
{
    struct pair {
        uint32_t a, b;
    } *v = NULL;
    size_t cap = 0;
    CHECK(bl_buf_reserve_n(&v, &cap, 1, 16, sizeof(*v)) == 0 && v != NULL && cap == 16);
    v[15].a = 7;
    CHECK(bl_buf_reserve_n(&v, &cap, 16, 16, sizeof(*v)) == 0 && cap == 16); /* fits */
    CHECK(bl_buf_reserve_n(&v, &cap, 17, 16, sizeof(*v)) == 0 && cap == 32);
    CHECK(v[15].a == 7);
    CHECK(bl_buf_reserve_n(&v, &cap, 100, 16, sizeof(*v)) == 0 && cap == 128);
    /* a count whose bytes would pass PTRDIFF_MAX is refused, the array kept */
    struct pair *before = v;
    CHECK(bl_buf_reserve_n(&v, &cap, (size_t)PTRDIFF_MAX / 4, 16, sizeof(*v)) == -ENOMEM);
    CHECK(bl_buf_reserve_n(&v, &cap, SIZE_MAX, 16, sizeof(*v)) == -ENOMEM);
    CHECK(v == before && cap == 128 && v[15].a == 7);
    free(v);
}

int main(void)
{
    test_elements();
    test_growth();
    test_exact_fit();
    test_overflow_refused();
    test_failure_keeps_old();
    return check_report();
}
