/* Write buffers of any length. uv_buf_init takes an unsigned int, so a body
 * or message of 4 GiB or more would be cut (and a chunked response desync):
 * bl_buf keeps the size_t length, and bl_conn_write splits long buffers. */
#ifndef BAYLEAF_BUFS_H
#define BAYLEAF_BUFS_H

#include <stddef.h>
#include <uv.h>

_Static_assert(sizeof(((uv_buf_t *)0)->len) >= sizeof(size_t), "uv_buf_t.len holds a size_t");

/* The longest single buffer handed to libuv (a writev entry). */
#define BL_BUF_MAX ((size_t)1 << 30)

static inline uv_buf_t bl_buf(const char *base, size_t len)
{
    uv_buf_t b;
    b.base = (char *)base;
    b.len = len;
    return b;
}

/* in[0, nin) as buffers of at most max bytes each, in order, into out[0, cap).
 * Returns how many that takes (out may be NULL to count; none written past cap). */
size_t bl_bufs_split(const uv_buf_t *in, size_t nin, uv_buf_t *out, size_t cap, size_t max);

#endif
