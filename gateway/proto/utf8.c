/* UTF-8 validation from the well-formed byte sequence table of the Unicode
 * standard (chapter 3.9, Table 3-7). Only the second byte of a sequence has a
 * range narrower than 80..BF; that range is what excludes overlongs (E0, F0),
 * surrogates (ED) and code points above U+10FFFF (F4). */
#include "bayleaf/proto/utf8.h"

#include <string.h>

/* Sets the state for a lead byte; false if b can't start a sequence. */
static bool lead(bl_utf8_t *s, uint8_t b)
{
    s->lo = 0x80;
    s->hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) {
        s->need = 1;
    } else if (b >= 0xe0 && b <= 0xef) {
        s->need = 2;
        if (b == 0xe0)
            s->lo = 0xa0; /* below: overlong */
        else if (b == 0xed)
            s->hi = 0x9f; /* above: surrogates D800..DFFF */
    } else if (b >= 0xf0 && b <= 0xf4) {
        s->need = 3;
        if (b == 0xf0)
            s->lo = 0x90; /* below: overlong */
        else if (b == 0xf4)
            s->hi = 0x8f; /* above: beyond U+10FFFF */
    } else {
        return false; /* 80..C1 (stray continuation, overlong lead) and F5..FF */
    }
    return true;
}

size_t bl_utf8_feed(bl_utf8_t *s, const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (s->need == 0) {
            /* ASCII runs are the common case: skip them eight bytes at a time. */
            while (i + 8 <= len) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if (w & 0x8080808080808080ull)
                    break;
                i += 8;
            }
            if (i == len)
                break;
            uint8_t b = p[i];
            if (b >= 0x80 && !lead(s, b))
                return i;
            i++;
            continue;
        }
        uint8_t b = p[i];
        if (b < s->lo || b > s->hi)
            return i;
        s->lo = 0x80;
        s->hi = 0xbf;
        s->need--;
        i++;
    }
    return len;
}

bool bl_utf8_valid(const uint8_t *p, size_t len)
{
    bl_utf8_t s;
    bl_utf8_init(&s);
    return bl_utf8_feed(&s, p, len) == len && bl_utf8_complete(&s);
}
