/* Growable buffers (see buf.h). */
#include "bayleaf/common/buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int bl_buf_reserve(void *bufp, size_t *cap, size_t need, size_t first)
{
    if (need <= *cap)
        return 0;
    /* No object may be larger than PTRDIFF_MAX: pointer differences in it
     * would overflow. That bound also keeps the doubling below from wrapping. */
    if (need > PTRDIFF_MAX)
        return -ENOMEM;
    size_t n = *cap ? *cap : first;
    if (n == 0)
        n = need;
    while (n < need)
        n = n > PTRDIFF_MAX / 2 ? need : n * 2;
    void *old;
    memcpy(&old, bufp, sizeof(old));
    void *p = realloc(old, n);
    if (p == NULL)
        return -ENOMEM;
    memcpy(bufp, &p, sizeof(p));
    *cap = n;
    return 0;
}

int bl_buf_reserve_n(void *bufp, size_t *cap, size_t need, size_t first, size_t size)
{
    if (need <= *cap)
        return 0;
    if (size == 0 || need > PTRDIFF_MAX / size || first > PTRDIFF_MAX / size)
        return -ENOMEM;
    /* In bytes every size the policy picks is a multiple of size: the first,
     * its doublings, or need. */
    size_t bytes = *cap * size;
    if (bl_buf_reserve(bufp, &bytes, need * size, first * size) != 0)
        return -ENOMEM;
    *cap = bytes / size;
    return 0;
}
