/* WebSocket session on wslay's event API (see ws.h). wslay parses frames,
 * validates text UTF-8, checks close codes, answers pings and runs the close
 * handshake; the guard (ws_guard.c) catches what it misses before it sees
 * the bytes; reassembly is ours so memory grows with data actually received,
 * never with a length a frame header claims. */
#include "bayleaf/proto/ws.h"
#include "bayleaf/common/buf.h"
#include "bayleaf/proto/utf8.h"
#include "bayleaf/proto/ws_deflate.h"
#include "bayleaf/proto/ws_guard.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <wslay/wslay.h>

/* More message starts than wslay can hold unread in its 4 KiB buffer. */
#define KINDS_BITS 1024

struct bl_ws_s {
    wslay_event_context_ptr ctx; /* NULL while asleep (bl_ws_sleep_if_idle) */
    bl_ws_callbacks_t cb;
    void *data;
    bl_ws_guard_t guard;
    /* bytes being fed, up to what the guard let through */
    const uint8_t *in;
    size_t in_len;
    size_t in_cut; /* a read ends after this many of them (0: none) */
    /* the start of a close frame that has yet to arrive whole */
    uint8_t *held;
    uint8_t held_len;
    bool in_recv;    /* inside wslay_event_recv: don't call wslay_event_send */
    bool ctrl_frame; /* the frame being received is a control frame */
    bool out_failed; /* the output buffer couldn't grow */
    /* the data message being reassembled */
    uint8_t *msg;
    size_t msg_len, msg_cap;
    bool msg_failed;     /* it couldn't grow: the connection is being failed */
    bool msg_compressed; /* its first frame had RSV1 */
    bool msg_text;       /* uncompressed text, shown to wslay as binary: UTF-8 checked here */
    bl_utf8_t msg_utf8;
    /* follows the frames in the bytes handed to wslay, already checked by
     * guard (see relabel) */
    bl_ws_guard_t wire;
    /* for each message wslay has been given the start of but not yet begun:
     * was it relabelled (uncompressed text)? A ring of bits */
    uint64_t kinds[KINDS_BITS / 64];
    uint16_t kinds_head, kinds_len;
    uint64_t max_message;
    bl_ws_deflate_t *pmd; /* permessage-deflate, once negotiated */
    /* frames to write */
    uint8_t *out;
    size_t out_len, out_cap;
    uint64_t pongs;
    bool rsv1;       /* RSV1 allowed (permessage-deflate) */
    bool used;       /* since the last bl_ws_sleep_if_idle */
    bool hold_fault; /* a fault's close waits for bl_ws_fault_close */
    uint16_t fault;  /* the close code held, 0: none */
};

/* A reassembly buffer this large is not kept between messages. */
#define KEEP_MSG_CAP (64 * 1024)

/* wslay checks text UTF-8 a byte at a time through a table, storing its state
 * after every byte: most of the CPU a 64 KiB text message costs. So each
 * uncompressed text frame reaches it relabelled binary, and we check UTF-8
 * ourselves, eight ASCII bytes at a time (frame_chunk_cb); wslay never checks
 * compressed ones. Which messages were text goes through a FIFO of bits, in
 * the order wslay reads them and then starts them (frame_start_cb). relabel
 * follows the frames in wslay's copy of the bytes, which the guard checked. */
static void kinds_push(bl_ws_t *ws, bool text)
{
    unsigned i = (unsigned)(ws->kinds_head + ws->kinds_len++) % KINDS_BITS;
    uint64_t bit = 1ull << (i % 64);
    ws->kinds[i / 64] = text ? ws->kinds[i / 64] | bit : ws->kinds[i / 64] & ~bit;
}

static bool kinds_pop(bl_ws_t *ws)
{
    unsigned i = ws->kinds_head;
    if (ws->kinds_len == 0)
        return false; /* cannot happen: every start was read first */
    ws->kinds_head = (uint16_t)((i + 1) % KINDS_BITS);
    ws->kinds_len--;
    return (ws->kinds[i / 64] >> (i % 64)) & 1;
}

/* bl_ws_guard_scan up to the end of the frame header or payload under way, so
 * the caller sees each frame start. */
static size_t guard_step(bl_ws_guard_t *g, const uint8_t *p, size_t len, uint16_t *code)
{
    uint64_t step = g->in_payload ? g->remaining : (uint64_t)(g->hdr_need - g->hdr_len);
    return bl_ws_guard_scan(g, p, step < len ? (size_t)step : len, code);
}

static bool at_frame_start(const bl_ws_guard_t *g)
{
    return !g->in_payload && g->hdr_len == 0;
}

static void relabel(bl_ws_t *ws, uint8_t *buf, size_t len)
{
    size_t i = 0;
    uint16_t code = 0;
    while (i < len && code == 0) {
        if (at_frame_start(&ws->wire)) {
            uint8_t op = buf[i] & 0x0f;
            bool plain_text = op == WSLAY_TEXT_FRAME && !(buf[i] & 0x40); /* 0x40: RSV1 */
            if (op == WSLAY_TEXT_FRAME || op == WSLAY_BINARY_FRAME)
                kinds_push(ws, plain_text);
            if (plain_text)
                buf[i] = (uint8_t)((buf[i] & 0xf0) | WSLAY_BINARY_FRAME);
        }
        i += guard_step(&ws->wire, buf + i, len - i, &code);
    }
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    bl_ws_t *ws = user;
    (void)flags;
    if (ws->in_len == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (len > ws->in_len)
        len = ws->in_len;
    if (ws->in_cut > 0) {
        if (len > ws->in_cut)
            len = ws->in_cut;
        ws->in_cut -= len;
    }
    memcpy(buf, ws->in, len);
    ws->in += len;
    ws->in_len -= len;
    relabel(ws, buf, len);
    return (ssize_t)len;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    bl_ws_t *ws = user;
    (void)flags;
    if (len > SIZE_MAX - ws->out_len ||
        bl_buf_reserve(&ws->out, &ws->out_cap, ws->out_len + len, 256) != 0) {
        ws->out_failed = true;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    memcpy(ws->out + ws->out_len, data, len);
    ws->out_len += len;
    return (ssize_t)len;
}

static void frame_start_cb(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
    bl_ws_t *ws = user;
    (void)ctx;
    ws->ctrl_frame = wslay_is_ctrl_frame(arg->opcode);
    /* RFC 7692 6: RSV1 on a message's first frame marks it compressed (the
     * guard refuses it elsewhere). */
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) {
        ws->msg_compressed = ws->pmd != NULL && (arg->rsv & WSLAY_RSV1_BIT) != 0;
        ws->msg_text = kinds_pop(ws);
        bl_utf8_init(&ws->msg_utf8);
    }
}

static void fail_read(bl_ws_t *ws, uint16_t code);

static void frame_chunk_cb(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_chunk_arg *arg, void *user)
{
    bl_ws_t *ws = user;
    /* wslay buffers control frames itself and hands them to msg_cb whole. */
    if (ws->ctrl_frame || ws->msg_failed || arg->data_length == 0)
        return;
    if (bl_buf_reserve(&ws->msg, &ws->msg_cap, ws->msg_len + arg->data_length, 256) != 0) {
        /* Out of memory for this message: give up on the connection. */
        ws->msg_failed = true;
        wslay_event_queue_close(ctx, WSLAY_CODE_INTERNAL_SERVER_ERROR, NULL, 0);
        wslay_event_shutdown_read(ctx);
        return;
    }
    memcpy(ws->msg + ws->msg_len, arg->data, arg->data_length);
    ws->msg_len += arg->data_length;
    /* Compressed text is checked once inflated (deliver). */
    if (ws->msg_text &&
        bl_utf8_feed(&ws->msg_utf8, arg->data, arg->data_length) != arg->data_length) {
        ws->msg_failed = true;
        fail_read(ws, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA);
    }
}

static void message_done(bl_ws_t *ws)
{
    ws->msg_len = 0;
    if (ws->msg_cap > KEEP_MSG_CAP) {
        free(ws->msg);
        ws->msg = NULL;
        ws->msg_cap = 0;
    }
}

/* Callbacks always get a valid pointer, even for empty payloads. */
static const uint8_t *nonnull(const uint8_t *p)
{
    return p != NULL ? p : (const uint8_t *)"";
}

/* Fails the connection from inside wslay_event_recv: nothing more is read. */
static void fail_read(bl_ws_t *ws, uint16_t code)
{
    wslay_event_queue_close(ws->ctx, code, NULL, 0);
    wslay_event_shutdown_read(ws->ctx);
}

/* A reassembled data message to the owner, inflated first if compressed. */
static void deliver(bl_ws_t *ws, int opcode)
{
    const uint8_t *data = nonnull(ws->msg);
    size_t len = ws->msg_len;
    if (ws->msg_compressed) {
        int r = bl_ws_deflate_inflate(ws->pmd, data, len, ws->max_message, &data, &len);
        uint16_t code = r == 0 ? 0 : r == -EMSGSIZE ? 1009 : r == -EBADMSG ? 1007 : 1011;
        /* wslay doesn't check compressed text: the inflated bytes must be UTF-8. */
        if (code == 0 && opcode == WSLAY_TEXT_FRAME && !bl_utf8_valid(data, len))
            code = 1007;
        if (code != 0) {
            fail_read(ws, code);
            return;
        }
    }
    if (ws->cb.on_message != NULL)
        ws->cb.on_message(ws, opcode, data, len);
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user)
{
    bl_ws_t *ws = user;
    (void)ctx;
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
    case WSLAY_BINARY_FRAME:
        if (ws->msg_failed) {
            /* already answered */
        } else if (ws->msg_text && !bl_utf8_complete(&ws->msg_utf8)) {
            fail_read(ws, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA); /* ends inside a character */
        } else {
            deliver(ws, ws->msg_text ? WSLAY_TEXT_FRAME : arg->opcode);
        }
        message_done(ws);
        break;
    case WSLAY_CONNECTION_CLOSE:
        if (ws->cb.on_close != NULL) {
            const uint8_t *reason = arg->msg_length > 2 ? arg->msg + 2 : nonnull(NULL);
            size_t len = arg->msg_length > 2 ? arg->msg_length - 2 : 0;
            ws->cb.on_close(ws, arg->status_code ? arg->status_code : WSLAY_CODE_NO_STATUS_RCVD,
                            reason, len);
        }
        break;
    case WSLAY_PONG:
        ws->pongs++;
        if (ws->cb.on_pong != NULL)
            ws->cb.on_pong(ws, nonnull(arg->msg), arg->msg_length);
        break;
    default:
        break; /* pings: wslay has queued the pong */
    }
}

/* wslay's context is about 9 KiB (two 4 KiB buffers), most of what an idle
 * connection costs: it exists only while frames move (see bl_ws_sleep_if_idle).
 * Between frames the only state that matters is ours (the guard, the
 * callbacks, RSV1), so a fresh context takes over where the last left off. */
static int wake(bl_ws_t *ws)
{
    static const struct wslay_event_callbacks wcb = {
        .recv_callback = recv_cb,
        .send_callback = send_cb,
        .on_frame_recv_start_callback = frame_start_cb,
        .on_frame_recv_chunk_callback = frame_chunk_cb,
        .on_msg_recv_callback = msg_cb,
    };
    ws->used = true;
    if (ws->ctx != NULL)
        return 0;
    if (wslay_event_context_server_init(&ws->ctx, &wcb, ws) != 0) {
        ws->ctx = NULL;
        return -ENOMEM;
    }
    /* We reassemble; the size limit is the guard's, from frame headers. */
    wslay_event_config_set_no_buffering(ws->ctx, 1);
    wslay_event_config_set_max_recv_msg_length(ws->ctx, UINT64_MAX);
    if (ws->rsv1)
        wslay_event_config_set_allowed_rsv_bits(ws->ctx, WSLAY_RSV1_BIT);
    return 0;
}

int bl_ws_new(bl_ws_t **out, const bl_ws_callbacks_t *cb, const bl_ws_config_t *cfg, void *data)
{
    bl_ws_t *ws = calloc(1, sizeof(*ws));
    if (ws == NULL)
        return -ENOMEM;
    ws->cb = *cb;
    ws->data = data;
    ws->max_message = cfg ? cfg->max_message_size : 0;
    ws->hold_fault = cfg && cfg->hold_fault;
    bl_ws_guard_init(&ws->guard, ws->max_message);
    ws->guard.max_frame = cfg ? cfg->max_frame_size : 0;
    bl_ws_guard_init(&ws->wire, 0);
    ws->wire.allowed_rsv = 0x40; /* guard has refused RSV1 where it is not allowed */
    *out = ws;
    return 0;
}

bool bl_ws_sleeping(const bl_ws_t *ws)
{
    return ws->ctx == NULL;
}

bool bl_ws_sleep_if_idle(bl_ws_t *ws)
{
    const bl_ws_guard_t *g = &ws->guard;
    if (ws->used) {
        ws->used = false;
        return ws->ctx == NULL;
    }
    if (ws->ctx == NULL)
        return true;
    /* Only between messages, with nothing queued, before any close: then
     * wslay holds no state a fresh context would lack. */
    if (ws->in_recv || !at_frame_start(g) || g->fragmented || ws->held_len != 0 ||
        ws->msg_len != 0 || ws->kinds_len != 0 || !wslay_event_get_read_enabled(ws->ctx) ||
        !wslay_event_get_write_enabled(ws->ctx) || wslay_event_get_close_sent(ws->ctx) ||
        wslay_event_get_close_received(ws->ctx) || wslay_event_want_write(ws->ctx))
        return false;
    wslay_event_context_free(ws->ctx);
    ws->ctx = NULL;
    free(ws->msg);
    ws->msg = NULL;
    ws->msg_cap = 0;
    return true;
}

void bl_ws_free(bl_ws_t *ws)
{
    if (ws == NULL)
        return;
    if (ws->ctx != NULL)
        wslay_event_context_free(ws->ctx);
    bl_ws_deflate_free(ws->pmd);
    free(ws->held);
    free(ws->msg);
    free(ws->out);
    free(ws);
}

void *bl_ws_data(const bl_ws_t *ws)
{
    return ws->data;
}

void bl_ws_allow_rsv1(bl_ws_t *ws)
{
    ws->rsv1 = true;
    if (ws->ctx != NULL)
        wslay_event_config_set_allowed_rsv_bits(ws->ctx, WSLAY_RSV1_BIT);
    ws->guard.allowed_rsv = 0x40;
    /* Incompressible data grows by 5 bytes a block, blocks as short as 128
     * bytes at memLevel 1: allow zlib's conservative deflateBound, 1/8 more.
     * Without a message limit, inflation still stops at the cap: a
     * compressed message too long to fit under it is refused from its
     * headers, before it is reassembled. */
    uint64_t max = ws->guard.max_message ? ws->guard.max_message : BL_WS_DEFLATE_INFLATE_CAP;
    if (max < UINT64_MAX / 2)
        ws->guard.max_compressed = max + max / 8 + 64;
}

int bl_ws_use_deflate(bl_ws_t *ws, const bl_ws_deflate_params_t *params, size_t threshold)
{
    if (ws->pmd == NULL && bl_ws_deflate_new(&ws->pmd, params, threshold) != 0)
        return -ENOMEM;
    bl_ws_allow_rsv1(ws);
    return 0;
}

/* Writes queued frames to the output buffer (not from inside wslay_event_recv). */
static int flush(bl_ws_t *ws)
{
    if (ws->in_recv || ws->ctx == NULL)
        return 0;
    if (wslay_event_send(ws->ctx) != 0)
        return ws->out_failed ? -ENOMEM : -EIO;
    return 0;
}

/* wslay 1.1.1 checks a close reason's UTF-8 from byte 2 of every chunk it
 * reads rather than of the payload, so a valid reason cut inside a character
 * by TCP, or by wslay's own 4 KiB reads, fails with 1007. So each close frame
 * reaches wslay in one read; the guard has checked its code and reason. */

/* The largest close frame the guard lets through: no extended length, masked. */
#define CLOSE_FRAME_MAX (2 + 4 + 125)

/* bl_ws_guard_scan, stepping a frame header or payload at a time until the
 * first close frame is over, to find it: *close_at is its offset in p (0 when
 * it began in held bytes, SIZE_MAX if none) and *close_end where it ends
 * (SIZE_MAX if not in the bytes let through). */
static size_t scan(bl_ws_t *ws, const uint8_t *p, size_t len, uint16_t *code, size_t *close_at,
                   size_t *close_end)
{
    bl_ws_guard_t *g = &ws->guard;
    size_t i = 0;

    *code = 0;
    *close_at = ws->held_len > 0 ? 0 : SIZE_MAX;
    *close_end = SIZE_MAX;
    while (i < len) {
        if (at_frame_start(g)) {
            if (*close_at != SIZE_MAX)
                break;
            if ((p[i] & 0x0f) == WSLAY_CONNECTION_CLOSE)
                *close_at = i;
        }
        i += guard_step(g, p + i, len - i, code);
        if (*code != 0)
            return i;
    }
    if (*close_at != SIZE_MAX && at_frame_start(g))
        *close_end = i;
    if (i < len)
        i += bl_ws_guard_scan(g, p + i, len - i, code);
    return i;
}

/* Keeps the start of a close frame until the rest comes (once per connection:
 * nothing is read after a close). */
static int hold(bl_ws_t *ws, const uint8_t *p, size_t len)
{
    if (len > (size_t)(CLOSE_FRAME_MAX - ws->held_len))
        return -EIO; /* the guard stops longer ones */
    if (ws->held == NULL && (ws->held = malloc(CLOSE_FRAME_MAX)) == NULL)
        return -ENOMEM;
    memcpy(ws->held + ws->held_len, p, len);
    ws->held_len = (uint8_t)(ws->held_len + len);
    return 0;
}

static void drop_held(bl_ws_t *ws)
{
    free(ws->held);
    ws->held = NULL;
    ws->held_len = 0;
}

int bl_ws_feed(bl_ws_t *ws, const void *data, size_t len)
{
    uint16_t code;
    size_t close_at, close_end;
    int r;

    if ((r = wake(ws)) != 0)
        return r;
    if (!wslay_event_get_read_enabled(ws->ctx))
        return 0;
    ws->in = data;
    ws->in_len = scan(ws, data, len, &code, &close_at, &close_end);
    ws->in_cut = 0;
    bool from_held = false;
    if (close_at != SIZE_MAX && close_end == SIZE_MAX) {
        /* Not all here: wslay gets what precedes it and the rest waits for
         * the next read, unless the guard failed it: then wslay never sees it. */
        if (code != 0)
            drop_held(ws);
        else if ((r = hold(ws, ws->in + close_at, ws->in_len - close_at)) != 0)
            return r;
        ws->in_len = close_at;
    } else if (close_at != SIZE_MAX && ws->held_len > 0) {
        /* Whole now: wslay's buffer is empty (it stopped before the frame),
         * so it reads the frame in one go; nothing after a close is read. */
        if ((r = hold(ws, ws->in, close_end)) != 0)
            return r;
        ws->in = ws->held;
        ws->in_len = ws->held_len;
        from_held = true;
    } else if (close_at != SIZE_MAX) {
        /* Here whole: the read before it ends where it starts, so wslay's
         * next read, into an empty buffer, takes it in one go. */
        ws->in_cut = close_at;
    }
    ws->in_recv = true;
    r = wslay_event_recv(ws->ctx);
    ws->in_recv = false;
    ws->in_len = 0;
    if (from_held)
        drop_held(ws);
    if (r != 0) {
        flush(ws); /* best effort: wslay may have queued a close */
        return r == WSLAY_ERR_NOMEM ? -ENOMEM : -EIO;
    }
    /* wslay accepted everything before the offending bytes: fail now, unless
     * it already stopped reading for a reason of its own found earlier. */
    if (code != 0 && wslay_event_get_read_enabled(ws->ctx)) {
        if (ws->hold_fault)
            ws->fault = code; /* the owner lets replies go first: bl_ws_fault_close */
        else
            wslay_event_queue_close(ws->ctx, code, NULL, 0);
        wslay_event_shutdown_read(ws->ctx);
    }
    return flush(ws);
}

uint16_t bl_ws_fault_pending(const bl_ws_t *ws)
{
    return ws->fault;
}

int bl_ws_fault_close(bl_ws_t *ws)
{
    uint16_t code = ws->fault;
    if (code == 0)
        return 0;
    ws->fault = 0;
    int r = bl_ws_close(ws, code, "", 0);
    return r == -ENOMEM ? r : 0; /* -EPIPE: a close went out already */
}

static int queue(bl_ws_t *ws, uint8_t opcode, const void *data, size_t len)
{
    uint8_t rsv = WSLAY_RSV_NONE;
    if (wake(ws) != 0)
        return -ENOMEM;
    if (ws->pmd != NULL && !wslay_is_ctrl_frame(opcode)) {
        const uint8_t *z;
        size_t zlen;
        if (bl_ws_deflate_compress(ws->pmd, data, len, &z, &zlen) != 0)
            return -ENOMEM;
        if (z != NULL) {
            data = z;
            len = zlen;
            rsv = WSLAY_RSV1_BIT;
        }
    }
    /* wslay copies the payload, so z (the thread's buffer) may be reused. */
    struct wslay_event_msg msg = {opcode, data, len};
    int r = wslay_event_queue_msg_ex(ws->ctx, &msg, rsv);
    if (r == WSLAY_ERR_NO_MORE_MSG)
        return -EPIPE;
    if (r == WSLAY_ERR_INVALID_ARGUMENT)
        return -EINVAL;
    if (r != 0)
        return -ENOMEM;
    return flush(ws);
}

int bl_ws_send_text(bl_ws_t *ws, const void *data, size_t len)
{
    return queue(ws, WSLAY_TEXT_FRAME, data, len);
}

int bl_ws_send_binary(bl_ws_t *ws, const void *data, size_t len)
{
    return queue(ws, WSLAY_BINARY_FRAME, data, len);
}

int bl_ws_send_ping(bl_ws_t *ws, const void *data, size_t len)
{
    if (len > 125)
        return -EINVAL;
    return queue(ws, WSLAY_PING, data, len);
}

/* The longest prefix of at most max bytes that doesn't split a UTF-8 character. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    while (max > 0 && ((uint8_t)s[max] & 0xc0) == 0x80)
        max--;
    return max;
}

int bl_ws_close(bl_ws_t *ws, uint16_t code, const char *reason, size_t len)
{
    int r;
    if (code != 0 && !bl_ws_close_code_sendable(code))
        return -EINVAL;
    if (reason == NULL) {
        reason = "";
        len = 0;
    }
    len = utf8_cut(reason, len, 123);
    if ((r = wake(ws)) != 0)
        return r;
    r = wslay_event_queue_close(ws->ctx, code, (const uint8_t *)reason, len);
    if (r == WSLAY_ERR_NO_MORE_MSG)
        return -EPIPE;
    if (r != 0)
        return r == WSLAY_ERR_INVALID_ARGUMENT ? -EINVAL : -ENOMEM;
    return flush(ws);
}

void bl_ws_take_output(bl_ws_t *ws, uint8_t **buf, size_t *len)
{
    if (ws->out_len == 0) {
        *buf = NULL;
        *len = 0;
        return;
    }
    *buf = ws->out;
    *len = ws->out_len;
    ws->out = NULL;
    ws->out_len = ws->out_cap = 0;
}

size_t bl_ws_output_len(const bl_ws_t *ws)
{
    return ws->out_len;
}

/* Asleep, a session is open both ways with nothing queued (it only sleeps so). */

bool bl_ws_close_sent(const bl_ws_t *ws)
{
    return ws->ctx != NULL && wslay_event_get_close_sent(ws->ctx);
}

bool bl_ws_close_received(const bl_ws_t *ws)
{
    return ws->ctx != NULL && wslay_event_get_close_received(ws->ctx);
}

uint16_t bl_ws_close_code_sent(const bl_ws_t *ws)
{
    return ws->ctx != NULL ? wslay_event_get_status_code_sent(ws->ctx)
                           : WSLAY_CODE_ABNORMAL_CLOSURE;
}

uint16_t bl_ws_close_code_received(const bl_ws_t *ws)
{
    return ws->ctx != NULL ? wslay_event_get_status_code_received(ws->ctx)
                           : WSLAY_CODE_ABNORMAL_CLOSURE;
}

bool bl_ws_want_read(const bl_ws_t *ws)
{
    return ws->ctx == NULL || wslay_event_want_read(ws->ctx);
}

bool bl_ws_want_write(const bl_ws_t *ws)
{
    return (ws->ctx != NULL && wslay_event_want_write(ws->ctx)) || ws->out_len > 0;
}

bool bl_ws_done(const bl_ws_t *ws)
{
    return ws->ctx != NULL && ws->fault == 0 && !wslay_event_want_read(ws->ctx) &&
           !wslay_event_want_write(ws->ctx);
}

uint64_t bl_ws_pongs(const bl_ws_t *ws)
{
    return ws->pongs;
}
