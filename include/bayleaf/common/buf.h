/* The one growable byte buffer policy: every buffer that is appended to in
 * steps (a request head, a body, a WebSocket message, deflate output) grows
 * through bl_buf_reserve, so growth, overflow and failure behave alike. */
#ifndef BAYLEAF_BUF_H
#define BAYLEAF_BUF_H

#include <stddef.h>

/* Makes the buffer at *bufp hold at least need bytes. bufp is the address of
 * a char, unsigned char or uint8_t pointer (C11 6.2.5: these share void *'s
 * representation), NULL while *cap is 0. The capacity starts at first (or
 * need, if larger) and then doubles. Returns 0, or -ENOMEM when need exceeds
 * PTRDIFF_MAX or the allocator fails; on failure *bufp and *cap are left as
 * they were, so the caller still owns (and frees) the old buffer. */
int bl_buf_reserve(void *bufp, size_t *cap, size_t need, size_t first);

/* The same policy for an array of elements of size bytes each: *cap, need
 * and first count elements; bufp is the address of a pointer to them (an
 * array of headers, say: object pointers share void *'s representation on
 * every platform we build for). */
int bl_buf_reserve_n(void *bufp, size_t *cap, size_t need, size_t first, size_t size);

#endif
