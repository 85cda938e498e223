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
