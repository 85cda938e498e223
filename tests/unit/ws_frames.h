/* Scripted WebSocket client frames for the socket-free unit tests: a growable
 * byte buffer and masked frames with any length encoding. */
#ifndef BAYLEAF_TEST_WS_FRAMES_H
#define BAYLEAF_TEST_WS_FRAMES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *p;
    size_t len, cap;
} bytes_t;

static inline void put(bytes_t *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
}

static inline void put_byte(bytes_t *b, uint8_t v)
{
    put(b, &v, 1);
}

enum { FIN = 0x80, RSV1 = 0x40, RSV2 = 0x20, RSV3 = 0x10 };
enum { OP_CONT = 0, OP_TEXT = 1, OP_BIN = 2, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };
enum { LEN_MIN = 0, LEN_16 = 126, LEN_64 = 127 }; /* length encodings */

/* A client frame: b0 is FIN | RSV | opcode. Masked with a fixed key unless
 * mask is false; the length is encoded minimally unless lenform says. */
static inline void frame_ex(bytes_t *b, uint8_t b0, bool mask, int lenform, const void *payload,
                            size_t len)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t m = mask ? 0x80 : 0;
    if (lenform == LEN_MIN)
        lenform = len < 126 ? LEN_MIN : len <= 0xffff ? LEN_16 : LEN_64;
    put_byte(b, b0);
    if (lenform == LEN_MIN) {
        put_byte(b, (uint8_t)(m | len));
    } else if (lenform == LEN_16) {
        put_byte(b, m | 126);
        put_byte(b, (uint8_t)(len >> 8));
        put_byte(b, (uint8_t)len);
    } else {
        put_byte(b, m | 127);
        for (int i = 7; i >= 0; i--)
            put_byte(b, (uint8_t)((uint64_t)len >> (8 * i)));
    }
    if (mask)
        put(b, key, 4);
    const uint8_t *src = payload;
    for (size_t i = 0; i < len; i++)
        put_byte(b, mask ? src[i] ^ key[i % 4] : src[i]);
}

/* A masked client frame, length encoded minimally. */
static inline void frame(bytes_t *b, uint8_t b0, const void *payload, size_t len)
{
    frame_ex(b, b0, true, LEN_MIN, payload, len);
}

/* A close frame with a code and a reason of at most 123 bytes. */
static inline void close_frame(bytes_t *b, uint16_t code, const char *reason, size_t len)
{
    uint8_t p[130] = {(uint8_t)(code >> 8), (uint8_t)code};
    memcpy(p + 2, reason, len);
    frame(b, FIN | OP_CLOSE, p, len + 2);
}

#endif
