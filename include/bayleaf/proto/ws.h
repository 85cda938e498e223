/* Socket-free WebSocket session, server side: wslay's event API underneath,
 * received bytes in, complete messages and bytes to write out.
 *
 * Strict RFC 6455: fragmented messages are reassembled here (wslay buffers
 * nothing but control frames); text is checked as UTF-8 as it arrives (1007);
 * a message over max_message_size fails with 1009 as soon as a frame header
 * announces it; protocol errors fail with 1002. Failing means: a close frame is
 * queued, reading stops, and bl_ws_done() becomes true once it is written
 * (with hold_fault, the close of a frame-check fault waits for
 * bl_ws_fault_close). */
#ifndef BAYLEAF_WS_H
#define BAYLEAF_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bayleaf/proto/ws_deflate.h"

enum {
    BL_WS_TEXT = 0x1,
    BL_WS_BINARY = 0x2,
};

typedef struct bl_ws_s bl_ws_t;

/* Called from inside bl_ws_feed. They may queue messages (bl_ws_send_*,
 * bl_ws_close; written out when the feed ends) but must not feed or free the
 * session. Pointers are never NULL and are valid during the call only. */
typedef struct {
    /* A complete text (valid UTF-8) or binary message. */
    void (*on_message)(bl_ws_t *ws, int opcode, const uint8_t *data, size_t len);
    /* The peer's close frame: code is 1005 when it carried none. The reply
     * (an echo of the code) is already queued unless we had sent a close. */
    void (*on_close)(bl_ws_t *ws, uint16_t code, const uint8_t *reason, size_t len);
    /* A pong (for ping timeouts); may be NULL. Pings are answered by wslay. */
    void (*on_pong)(bl_ws_t *ws, const uint8_t *data, size_t len);
} bl_ws_callbacks_t;

typedef struct {
    uint64_t max_message_size; /* bytes of one data message; 0: no limit */
    uint64_t max_frame_size;   /* payload bytes of one data frame (1009 beyond); 0: no limit */
    /* A protocol fault found by the frame checks (ws_guard.h) stops reading
     * but its close waits for bl_ws_fault_close, so the owner can let the
     * app's replies to the messages before it go out first. */
    bool hold_fault;
} bl_ws_config_t;

/* 0 or -ENOMEM. cb is copied; data is the owner's (bl_ws_data). */
int bl_ws_new(bl_ws_t **out, const bl_ws_callbacks_t *cb, const bl_ws_config_t *cfg, void *data);
void bl_ws_free(bl_ws_t *ws);
void *bl_ws_data(const bl_ws_t *ws);
/* Lets data messages carry RSV1: call once permessage-deflate is negotiated
 * (the inflating layer must then check UTF-8 itself; wslay skips it for
 * compressed text). */
void bl_ws_allow_rsv1(bl_ws_t *ws);
/* permessage-deflate was agreed: RSV1 messages are inflated (limit:
 * max_message_size, 1009 while inflating; bad data 1007; text checked as
 * UTF-8), and data messages of threshold bytes or more go out compressed.
 * 0 or -ENOMEM. */
int bl_ws_use_deflate(bl_ws_t *ws, const bl_ws_deflate_params_t *params, size_t threshold);

/* Called about once a second: frees wslay's context (about 9 KiB) if the
 * session was not used since the previous call and sits between messages with
 * nothing queued and no close begun; the next feed or send makes a new one.
 * Returns whether the session is asleep now. */
bool bl_ws_sleep_if_idle(bl_ws_t *ws);
bool bl_ws_sleeping(const bl_ws_t *ws);

/* Hands received bytes to the session: callbacks run, replies are queued and
 * written to the output buffer. Bytes after the session stopped reading are
 * ignored. 0, or -ENOMEM / -EIO: the connection must be dropped. */
int bl_ws_feed(bl_ws_t *ws, const void *data, size_t len);

/* Queue a message and write it to the output buffer. 0, -EPIPE once a close
 * was queued or sent, -EINVAL (ping payload > 125 bytes), -ENOMEM. */
int bl_ws_send_text(bl_ws_t *ws, const void *data, size_t len);
int bl_ws_send_binary(bl_ws_t *ws, const void *data, size_t len);
int bl_ws_send_ping(bl_ws_t *ws, const void *data, size_t len);
/* Starts the closing handshake. code 0 sends an empty close; otherwise it
 * must be sendable: bl_ws_close_code_sendable (-EINVAL). The reason is
 * cut to 123 bytes on a UTF-8 character boundary. 0 or -EPIPE, -ENOMEM. */
int bl_ws_close(bl_ws_t *ws, uint16_t code, const char *reason, size_t len);

/* The close code of a fault held (see hold_fault), 0 when none. */
uint16_t bl_ws_fault_pending(const bl_ws_t *ws);
/* Queues the held fault's close frame: 0 (also when none), -ENOMEM. */
int bl_ws_fault_close(bl_ws_t *ws);

/* May a server send this close code? (1000-1003, 1007-1014, 3000-4999.) */
bool bl_ws_close_code_sendable(uint16_t code);

/* Bytes to write, in order. Takes ownership of the buffer (free() it);
 * *buf is NULL and *len 0 when there is nothing. The buffer is unbounded:
 * the owner applies backpressure (stop reading, tell the app) on its size. */
void bl_ws_take_output(bl_ws_t *ws, uint8_t **buf, size_t *len);
size_t bl_ws_output_len(const bl_ws_t *ws);

bool bl_ws_close_sent(const bl_ws_t *ws);
bool bl_ws_close_received(const bl_ws_t *ws);
/* Code of the close frame sent / received; 1006 when none, 1005 when empty. */
uint16_t bl_ws_close_code_sent(const bl_ws_t *ws);
uint16_t bl_ws_close_code_received(const bl_ws_t *ws);
/* wslay_event_want_read: frames from the peer are still expected. */
bool bl_ws_want_read(const bl_ws_t *ws);
/* Frames are still to be produced, or output is waiting to be taken. */
bool bl_ws_want_write(const bl_ws_t *ws);
/* Neither: once the output is written, close the TCP connection. */
bool bl_ws_done(const bl_ws_t *ws);
/* Pongs received so far: a ping timeout compares it with the count at ping time. */
uint64_t bl_ws_pongs(const bl_ws_t *ws);

#endif
