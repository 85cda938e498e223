/* Incremental UTF-8 validation (Unicode 15, Table 3-7 "Well-Formed UTF-8 Byte
 * Sequences"): rejects overlongs, surrogates and code points above U+10FFFF at
 * the first byte that can no longer start or continue a well-formed sequence. */
#ifndef BAYLEAF_UTF8_H
#define BAYLEAF_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t need;   /* continuation bytes still expected */
    uint8_t lo, hi; /* range allowed for the next continuation byte */
} bl_utf8_t;

static inline void bl_utf8_init(bl_utf8_t *s)
{
    s->need = 0;
    s->lo = 0x80;
    s->hi = 0xbf;
}

/* Feeds len more bytes. Returns len, or the offset of the first invalid byte
 * (the state is then undefined). */
size_t bl_utf8_feed(bl_utf8_t *s, const uint8_t *p, size_t len);
/* True when no sequence is left open: the text may end here. */
static inline bool bl_utf8_complete(const bl_utf8_t *s)
{
    return s->need == 0;
}
/* Whole-buffer check. */
bool bl_utf8_valid(const uint8_t *p, size_t len);

#endif
