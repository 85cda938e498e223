/* The close codes (RFC 6455 7.4, IANA registry): one table says which a peer
 * may send us (bl_ws_close_code_valid, ws_guard.h) and which we may send
 * (bl_ws_close_code_sendable, ws.h). */
#include "bayleaf/proto/ws.h"
#include "bayleaf/proto/ws_guard.h"

#include <stddef.h>

enum {
    RECEIVABLE = 1 << 0, /* valid in a close frame a peer sends */
    SENDABLE = 1 << 1    /* we may put it in our close frame */
};

/* Codes outside every range are neither. 1004 is reserved; 1005, 1006 and
 * 1015 only report what happened and never go on the wire. 1012..1014 came
 * later (IANA): we send them, but wslay fails a peer's close that carries
 * them, so the guard refuses them first and both agree. */
static const struct {
    uint16_t first, last;
    uint8_t flags;
} close_codes[] = {
    {1000, 1003, RECEIVABLE | SENDABLE},
    {1007, 1011, RECEIVABLE | SENDABLE},
    {1012, 1014, SENDABLE},
    {3000, 4999, RECEIVABLE | SENDABLE},
};

static unsigned close_code_flags(uint16_t code)
{
    for (size_t i = 0; i < sizeof(close_codes) / sizeof(close_codes[0]); i++) {
        if (code >= close_codes[i].first && code <= close_codes[i].last)
            return close_codes[i].flags;
    }
    return 0;
}

bool bl_ws_close_code_valid(uint16_t code)
{
    return (close_code_flags(code) & RECEIVABLE) != 0;
}

bool bl_ws_close_code_sendable(uint16_t code)
{
    return (close_code_flags(code) & SENDABLE) != 0;
}
