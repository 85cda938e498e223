/* A WebSocket frame checker that runs over the received byte stream ahead of
 * wslay (server side). It finds the RFC 6455 violations wslay misses or
 * answers without the right close code (oversized or fragmented control
 * frames, non-minimal lengths, one-byte close payloads, bad UTF-8 in close
 * reasons), and enforces the message and frame size limits from frame
 * headers, before any payload is buffered. */
#ifndef BAYLEAF_WS_GUARD_H
#define BAYLEAF_WS_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bayleaf/proto/utf8.h"

typedef struct {
    /* configuration */
    uint8_t allowed_rsv;  /* RSV bits allowed, as in the first header byte (0x40 = RSV1) */
    uint64_t max_message; /* data message size limit, bytes; 0: none */
    uint64_t max_frame;   /* data frame payload limit, bytes (as on the wire); 0: none */
    /* the limit on the wire for a compressed (RSV1) message: deflate can
     * expand incompressible data a little; its inflated size is checked
     * while inflating */
    uint64_t max_compressed;
    /* the frame being read */
    uint8_t hdr[14];
    uint8_t hdr_len, len_end, hdr_need; /* bytes read; end of the length; end of the header */
    bool in_payload;
    uint8_t opcode;
    uint8_t mask[4];
    uint64_t remaining; /* payload bytes still to come */
    uint64_t off;       /* payload bytes seen */
    /* the data message being read */
    bool fragmented;  /* its first frame had FIN clear, the final one hasn't come */
    bool compressed;  /* its first frame had RSV1 */
    uint64_t msg_len; /* declared so far */
    /* close frame payload, unmasked and checked byte by byte */
    uint16_t close_code;
    bl_utf8_t close_utf8;
    uint16_t failed; /* close code once a violation was found */
} bl_ws_guard_t;

void bl_ws_guard_init(bl_ws_guard_t *g, uint64_t max_message);
/* Scans len received bytes. Returns how many of them may be handed to the
 * frame parser; when that is less than len, *code says how to fail the
 * connection (1002 protocol error or 1009 message too big), otherwise it is 0.
 * The bytes handed on stop just before the offending byte, so wslay, which
 * checks some of the same things, never sees the fault itself. */
size_t bl_ws_guard_scan(bl_ws_guard_t *g, const uint8_t *p, size_t len, uint16_t *code);
/* RFC 6455 7.4: may a peer send this close code? (The set wslay accepts.) */
bool bl_ws_close_code_valid(uint16_t code);

#endif
