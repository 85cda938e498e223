/* permessage-deflate (RFC 7692), server side, socket-free: choosing among the
 * client's offers, the response header, and compressing / inflating whole
 * messages.
 *
 * Memory: without context takeover (the default, which RFC 7692 7.1.1 lets the
 * server impose in both directions) every message is compressed and inflated
 * with streams shared by the thread and reset per message: a connection holds
 * only its bl_ws_deflate_t, a few dozen bytes. With context takeover a
 * connection gets its own streams on first use, sized by the negotiated
 * window bits (and a low memLevel for the compressor). */
#ifndef BAYLEAF_WS_DEFLATE_H
#define BAYLEAF_WS_DEFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    bool context_takeover; /* keep LZ77 windows between messages (per-connection streams) */
    uint8_t window_bits;   /* 9..15: the largest window we compress with, and ask for */
} bl_ws_deflate_config_t;

/* The agreed parameters. */
typedef struct {
    bool server_no_context_takeover;
    bool client_no_context_takeover;
    uint8_t server_bits;   /* our compressor's window, 9..15 */
    uint8_t client_bits;   /* the most the client compresses with, 8..15 */
    bool send_server_bits; /* name them in the response */
    bool send_client_bits;
} bl_ws_deflate_params_t;

/* Room for any response value, NUL included. */
#define BL_WS_DEFLATE_RESPONSE_MAX 128

/* Picks the first permessage-deflate offer in a Sec-WebSocket-Extensions
 * value (several headers joined with ", ") that can be honoured. Offers that
 * are malformed, repeat a parameter, carry an unknown one or a value out of
 * range are skipped. 1 with *out filled, or 0: no compression. */
int bl_ws_deflate_negotiate(const char *offers, size_t len, const bl_ws_deflate_config_t *cfg,
                            bl_ws_deflate_params_t *out);
/* The response's Sec-WebSocket-Extensions value into buf (cap >=
 * BL_WS_DEFLATE_RESPONSE_MAX), NUL-terminated; returns its length. */
size_t bl_ws_deflate_response(const bl_ws_deflate_params_t *p, char *buf, size_t cap);

typedef struct bl_ws_deflate_s bl_ws_deflate_t;

/* Messages shorter than threshold bytes go out uncompressed. 0 or -ENOMEM. */
int bl_ws_deflate_new(bl_ws_deflate_t **out, const bl_ws_deflate_params_t *p, size_t threshold);
void bl_ws_deflate_free(bl_ws_deflate_t *d);

/* Compresses a message for one frame with RSV1 (trailing 00 00 ff ff
 * stripped). *out is NULL when it should go uncompressed (under the threshold,
 * or no smaller); otherwise it points into a buffer of this thread, valid
 * until the next compression on it. 0 or -ENOMEM. */
int bl_ws_deflate_compress(bl_ws_deflate_t *d, const uint8_t *in, size_t len, const uint8_t **out,
                           size_t *out_len);

/* Without a message size limit, inflated messages are still capped here: a
 * 1 MB message of zeros would otherwise inflate to 1 GiB. */
#define BL_WS_DEFLATE_INFLATE_CAP ((uint64_t)64 << 20)

/* Inflates a compressed message. limit (0: BL_WS_DEFLATE_INFLATE_CAP) is
 * enforced while inflating: -EMSGSIZE as soon as the output would exceed it. -EBADMSG: not valid
 * DEFLATE data; -ENOMEM. *out points into a buffer of this thread, valid until
 * the next inflation on it. */
int bl_ws_deflate_inflate(bl_ws_deflate_t *d, const uint8_t *in, size_t len, uint64_t limit,
                          const uint8_t **out, size_t *out_len);

/* zlib memory held by this connection alone (context takeover streams). */
size_t bl_ws_deflate_conn_bytes(const bl_ws_deflate_t *d);
/* zlib memory and buffers of this thread's shared streams. */
size_t bl_ws_deflate_thread_bytes(void);
/* Frees this thread's shared streams now (they come back on next use);
 * thread exit frees them too. */
void bl_ws_deflate_thread_release(void);

#endif
