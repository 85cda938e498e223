/* Frame header and close payload checks ahead of wslay (see ws_guard.h). Each
 * fault is found at the byte that makes it certain, so that byte and the
 * rest can be withheld from wslay. */
#include "bayleaf/proto/ws_guard.h"

#include <string.h>

enum {
    OP_CONT = 0x0,
    OP_TEXT = 0x1,
    OP_BINARY = 0x2,
    OP_CLOSE = 0x8,
    OP_PING = 0x9,
    OP_PONG = 0xa
};

enum { FIN = 0x80, RSV_BITS = 0x70, RSV1 = 0x40, MASKED = 0x80 };

enum { PROTOCOL_ERROR = 1002, MESSAGE_TOO_BIG = 1009 };

void bl_ws_guard_init(bl_ws_guard_t *g, uint64_t max_message)
{
    memset(g, 0, sizeof(*g));
    g->max_message = g->max_compressed = max_message;
    g->hdr_need = 2;
}

/* The first two header bytes: 0 or a close code. */
static uint16_t check_start(bl_ws_guard_t *g)
{
    uint8_t b0 = g->hdr[0], b1 = g->hdr[1];
    uint8_t rsv = b0 & RSV_BITS, op = b0 & 0x0f, len7 = b1 & 0x7f;

    if ((rsv & ~g->allowed_rsv) || !(b1 & MASKED))
        return PROTOCOL_ERROR; /* RFC 6455 5.2, 5.3: clients always mask */
    switch (op) {
    case OP_CONT:
        /* RFC 7692 6.1: RSV1 marks only the first frame of a message. */
        if (!g->fragmented || (rsv & RSV1))
            return PROTOCOL_ERROR;
        break;
    case OP_TEXT:
    case OP_BINARY:
        if (g->fragmented)
            return PROTOCOL_ERROR; /* a new message inside a fragmented one */
        g->compressed = (rsv & RSV1) != 0;
        break;
    case OP_CLOSE:
    case OP_PING:
    case OP_PONG:
        /* RFC 6455 5.5: control frames are short, whole, and not compressed;
         * 5.5.1: a close body starts with a two-byte code. */
        if (!(b0 & FIN) || len7 > 125 || rsv || (op == OP_CLOSE && len7 == 1))
            return PROTOCOL_ERROR;
        break;
    default:
        return PROTOCOL_ERROR; /* reserved opcodes */
    }
    g->opcode = op;
    g->len_end = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
    g->hdr_need = g->len_end + 4;
    return 0;
}

/* The payload length, once read: 0 or a close code. */
static uint16_t check_length(bl_ws_guard_t *g)
{
    uint8_t len7 = g->hdr[1] & 0x7f;
    uint64_t len = len7;

    if (len7 == 126) {
        len = (uint64_t)g->hdr[2] << 8 | g->hdr[3];
        if (len < 126)
            return PROTOCOL_ERROR; /* RFC 6455 5.2: the minimal length encoding */
    } else if (len7 == 127) {
        len = 0;
        for (int i = 2; i < 10; i++)
            len = len << 8 | g->hdr[i];
        if ((len >> 63) || len <= 0xffff)
            return PROTOCOL_ERROR;
    }
    if (g->opcode == OP_TEXT || g->opcode == OP_BINARY || g->opcode == OP_CONT) {
        uint64_t total = g->opcode == OP_CONT ? g->msg_len : 0;
        uint64_t max = g->compressed ? g->max_compressed : g->max_message;
        /* total never exceeds the limit, so the subtraction can't wrap. */
        if (max && len > max - total)
            return MESSAGE_TOO_BIG;
        if (g->max_frame && len > g->max_frame)
            return MESSAGE_TOO_BIG; /* --websocket-max-frame-size */
        g->msg_len = len > UINT64_MAX - total ? UINT64_MAX : total + len;
        g->fragmented = !(g->hdr[0] & FIN);
    }
    g->remaining = len;
    return 0;
}

/* One byte of a close payload, unmasked: 0 or a close code. */
static uint16_t check_close_byte(bl_ws_guard_t *g, uint8_t b)
{
    if (g->off < 2) {
        g->close_code = (uint16_t)(g->close_code << 8 | b);
        if (g->off == 1 && !bl_ws_close_code_valid(g->close_code))
            return PROTOCOL_ERROR;
        return 0;
    }
    /* RFC 6455 5.5.1: the reason is UTF-8; a fault is a protocol error here
     * (wslay would say 1007). */
    if (bl_utf8_feed(&g->close_utf8, &b, 1) != 1)
        return PROTOCOL_ERROR;
    return 0;
}

static size_t fail(bl_ws_guard_t *g, size_t at, uint16_t why, uint16_t *code)
{
    g->failed = why;
    *code = why;
    return at;
}

size_t bl_ws_guard_scan(bl_ws_guard_t *g, const uint8_t *p, size_t len, uint16_t *code)
{
    size_t i = 0;
    uint16_t why = 0;

    *code = g->failed;
    if (g->failed)
        return 0;
    while (i < len) {
        if (!g->in_payload) {
            g->hdr[g->hdr_len++] = p[i];
            if (g->hdr_len == 2)
                why = check_start(g);
            if (!why && g->hdr_len == g->len_end)
                why = check_length(g);
            if (why)
                return fail(g, i, why, code);
            if (g->hdr_len == g->hdr_need) {
                memcpy(g->mask, g->hdr + g->hdr_len - 4, 4);
                g->hdr_len = 0;
                g->hdr_need = 2;
                g->off = 0;
                g->close_code = 0;
                bl_utf8_init(&g->close_utf8);
                g->in_payload = g->remaining > 0;
            }
            i++;
            continue;
        }
        size_t n = len - i;
        if (n > g->remaining)
            n = (size_t)g->remaining;
        if (g->opcode == OP_CLOSE) {
            for (size_t k = 0; k < n; k++, g->off++) {
                if ((why = check_close_byte(g, p[i + k] ^ g->mask[g->off & 3])) != 0)
                    return fail(g, i + k, why, code);
            }
            /* A reason cut inside a character: withhold the frame's last byte. */
            if (n == g->remaining && !bl_utf8_complete(&g->close_utf8))
                return fail(g, i + n - 1, PROTOCOL_ERROR, code);
        } else {
            g->off += n;
        }
        g->remaining -= n;
        i += n;
        if (g->remaining == 0)
            g->in_payload = false;
    }
    return len;
}
