/* The WebSocket protocol of a connection (bl_conn_ws_proto), from its
 * upgrade request on: the app's decision, the 101, frames both ways through
 * bl_ws_t, keepalive pings, timeouts and closing. Before the 101, and after
 * a refusal, the connection speaks HTTP: those entries call conn_http.c's. */
#include "bayleaf/io/bufs.h"
#include "bayleaf/common/log.h"
#include "bayleaf/proto/ws.h"
#include "bayleaf/proto/ws_handshake.h"
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CLOSE_HANDSHAKE_TIMEOUT_MS 5000
/* How long a protocol fault's close waits for the app's reply to the messages
 * that came just before it (bl_ws_fault_pending). */
#define FAULT_REPLY_TIMEOUT_MS 1000

static uint64_t now_ms(bl_conn_t *c)
{
    return uv_now(&c->server->loop);
}

/* ---- deadlines ------------------------------------------------------------- */

/* A WebSocket's deadlines, each with its own due time (ws_due). The
 * protocol's timer (TIMER_WS) is armed for the nearest by ws_schedule, and
 * on_timer acts on each that fell due. */
typedef enum {
    WS_DUE_CONNECT, /* --websocket-connect-timeout: the app must accept or refuse */
    WS_DUE_FAULT,   /* a protocol fault's close waits for the app's reply */
    WS_DUE_AGE,     /* --websocket-timeout: the connection's whole life */
    WS_DUE_PONG,    /* --ping-timeout: our ping must be answered */
    WS_DUE_PING,    /* --ping-interval: a quiet client gets a ping */
    WS_DUE_CLOSING, /* our close frame must be answered */
    WS_DUE_COUNT,
} ws_deadline_t;

static uint64_t secs_ms(double secs)
{
    return (uint64_t)(secs * 1000);
}

/* Loop time deadline d falls due; UINT64_MAX when it is not armed. */
static uint64_t ws_due(const bl_conn_t *c, ws_deadline_t d)
{
    const bl_config_t *cfg = c->server->cfg;
    /* A held fault reads nothing more: only the wait for the app's reply. */
    bool open = c->ws_phase == WS_OPEN && c->ws_fault_since == 0;
    switch (d) {
    case WS_DUE_CONNECT:
        if (c->ws_phase == WS_HANDSHAKE && cfg->websocket_connect_timeout >= 0)
            return c->ws_started + secs_ms(cfg->websocket_connect_timeout);
        break;
    case WS_DUE_FAULT:
        if (c->ws_phase == WS_OPEN && c->ws_fault_since != 0)
            return c->ws_fault_since + FAULT_REPLY_TIMEOUT_MS;
        break;
    case WS_DUE_AGE:
        if (open && cfg->websocket_timeout >= 0)
            return c->ws_started + secs_ms(cfg->websocket_timeout);
        break;
    case WS_DUE_PONG:
        if (open && c->ws_ping_sent != 0)
            return c->ws_ping_sent + secs_ms(cfg->ping_timeout);
        break;
    case WS_DUE_PING:
        if (open && c->ws_ping_sent == 0 && cfg->ping_interval > 0)
            return c->ws_last_read + secs_ms(cfg->ping_interval);
        break;
    case WS_DUE_CLOSING:
        if (c->ws_phase == WS_CLOSING)
            return c->ws_closing_since + CLOSE_HANDSHAKE_TIMEOUT_MS;
        break;
    case WS_DUE_COUNT:
        break;
    }
    return UINT64_MAX;
}

/* Arms the protocol's timer for the nearest deadline. */
static void ws_schedule(bl_conn_t *c)
{
    if (bl_conn_is_shut(c))
        return;
    uint64_t next = UINT64_MAX;
    for (ws_deadline_t d = 0; d < WS_DUE_COUNT; d++) {
        uint64_t at = ws_due(c, d);
        if (at < next)
            next = at;
    }
    if (next == UINT64_MAX) {
        bl_conn_timer_set(c, TIMER_NONE, 0);
        return;
    }
    uint64_t now = now_ms(c);
    double secs = next > now ? (double)(next - now) / 1000.0 : 0.001;
    bl_conn_timer_set(c, TIMER_WS, secs);
}

/* ---- writing ---------------------------------------------------------------- */

/* Writes what the session produced; ends the connection once it is done. */
static void ws_flush(bl_conn_t *c, size_t accounted, bl_event_t *ev)
{
    uint8_t *buf;
    size_t len;
    bl_ws_take_output(c->ws, &buf, &len);
    if (len > 0) {
        uv_buf_t b = bl_buf((char *)buf, len);
        bl_conn_write(c, &b, 1, ev, (char *)buf, accounted);
    } else if (ev != NULL) {
        bl_conn_event_drop(ev); /* nothing left the session (it was closing) */
    }
    if (!bl_conn_is_shut(c) && bl_ws_done(c->ws))
        bl_conn_end_after_writes(c);
}

static void post_disconnect(bl_conn_t *c, uint16_t code, const uint8_t *reason, size_t len)
{
    bl_exchange_t *ex = c->ex;
    if (ex == NULL)
        return;
    bl_exchange_post_disconnect(ex, code, reason, len);
    /* The app has heard: the connection no longer needs its exchange. */
    bl_conn_access_log(c, "WSDISCONNECT");
    c->ex = NULL;
    ex->conn = NULL;
    bl_exchange_unref(ex);
}

/* Every move into WS_CLOSING, whoever closed first: the closing handshake's
 * deadline runs from now. */
static void ws_closing_enter(bl_conn_t *c)
{
    if (c->ws_phase == WS_CLOSING)
        return;
    c->ws_phase = WS_CLOSING;
    c->ws_closing_since = now_ms(c);
    c->ws_fault_since = 0;
    bl_conn_topics_close(c); /* no topic frame after our close, or the client's */
}

/* The session failed the connection (1002, 1007, 1009...): the app hears it. */
static void ws_failed(bl_conn_t *c)
{
    ws_closing_enter(c);
    if (c->ex != NULL)
        post_disconnect(c, bl_ws_close_code_sent(c->ws), (const uint8_t *)"", 0);
}

/* Sends the close of a fault held for the app's reply (bl_ws_fault_pending). */
static void ws_fault_close(bl_conn_t *c)
{
    if (bl_ws_fault_close(c->ws) != 0) {
        bl_conn_close(c);
        return;
    }
    ws_failed(c);
    ws_flush(c, 0, NULL);
    if (!bl_conn_is_closing(c))
        ws_schedule(c);
}

/* Starts our side of the closing handshake. */
static void ws_close(bl_conn_t *c, uint16_t code, const char *reason, size_t len)
{
    if (c->ws_phase != WS_OPEN)
        return;
    if (bl_ws_fault_pending(c->ws) != 0) {
        ws_fault_close(c); /* the client broke the protocol: that is the reason */
        return;
    }
    ws_closing_enter(c);
    if (bl_ws_close(c->ws, code, reason, len) == -EINVAL)
        bl_ws_close(c->ws, 1011, "", 0); /* never leave the client without a close frame */
    ws_flush(c, 0, NULL);
    ws_schedule(c);
}

void bl_conn_ws_close(bl_conn_t *c, uint16_t code, const char *reason)
{
    ws_close(c, code, reason, strlen(reason));
}

/* ---- session callbacks ------------------------------------------------------ */

static void on_message(bl_ws_t *ws, int opcode, const uint8_t *data, size_t len)
{
    bl_conn_t *c = bl_ws_data(ws);
    bl_exchange_t *ex = c->ex;
    if (ex == NULL || c->ws_phase != WS_OPEN)
        return; /* the app is gone or closing: drop it */
    bl_event_t *ev = bl_event_new(BL_EV_WS_MESSAGE, ex, len);
    if (ev == NULL) {
        ws_close(c, 1011, "out of memory", 13);
        return;
    }
    if (len > 0)
        memcpy(ev->data, data, len);
    ev->flags = opcode == BL_WS_BINARY ? BL_EVF_BINARY : 0;
    ex->body_inflight += bl_event_readahead(ev);
    bl_bridge_post_up(ev);
}

static void on_close(bl_ws_t *ws, uint16_t code, const uint8_t *reason, size_t len)
{
    bl_conn_t *c = bl_ws_data(ws);
    ws_closing_enter(c);
    post_disconnect(c, code, reason, len);
}

static void on_pong(bl_ws_t *ws, const uint8_t *data, size_t len)
{
    (void)data;
    (void)len;
    bl_conn_t *c = bl_ws_data(ws);
    if (c->ws_ping_sent != 0 && bl_ws_pongs(ws) > c->ws_pongs) {
        c->ws_ping_sent = 0;
        ws_schedule(c);
    }
}

static const bl_ws_callbacks_t callbacks = {on_message, on_close, on_pong};

/* ---- the upgrade, input ---------------------------------------------------- */

/* permessage-deflate from the client's offers, unless switched off. */
static void ws_negotiate(bl_conn_t *c, const char *offers)
{
    const bl_config_t *cfg = c->server->cfg;
    bl_ws_deflate_config_t dc = {
        .context_takeover = cfg->ws_compression_context_takeover,
        .window_bits = (uint8_t)cfg->ws_compression_window_bits,
    };
    bool agreed = cfg->ws_compression && offers != NULL &&
                  bl_ws_deflate_negotiate(offers, strlen(offers), &dc, &c->ws_deflate_params) == 1;
    bl_conn_put(c, BL_CONN_F_WS_DEFLATE, agreed);
}

/* The 101 head: the agreed extension, then the app's headers. */
static int ws_response_head(bl_conn_t *c, const char *sub, const char *extra, size_t extra_len,
                            char **head, size_t *head_len)
{
    static const char name[] = "Sec-WebSocket-Extensions: ";
    char value[BL_WS_DEFLATE_RESPONSE_MAX];
    if (!bl_conn_has(c, BL_CONN_F_WS_DEFLATE))
        return bl_ws_handshake_response(c->ws_accept, sub, extra, extra_len,
                                        c->server->cfg->server_name, head, head_len);
    size_t vlen = bl_ws_deflate_response(&c->ws_deflate_params, value, sizeof(value));
    size_t n = sizeof(name) - 1 + vlen + 2;
    char *lines = malloc(n + extra_len);
    if (lines == NULL)
        return -ENOMEM;
    memcpy(lines, name, sizeof(name) - 1);
    memcpy(lines + sizeof(name) - 1, value, vlen);
    memcpy(lines + n - 2, "\r\n", 2);
    if (extra_len > 0)
        memcpy(lines + n, extra, extra_len);
    int r = bl_ws_handshake_response(c->ws_accept, sub, lines, n + extra_len,
                                     c->server->cfg->server_name, head, head_len);
    free(lines);
    return r;
}

static int on_upgrade(bl_conn_t *c, bl_head_t *head, bl_exchange_t *ex)
{
    bl_ws_handshake_t hs;
    int status = bl_ws_handshake_check(head, &hs);
    if (status == 0) {
        memcpy(c->ws_accept, hs.accept, sizeof(hs.accept));
        ws_negotiate(c, hs.extensions);
    } else
        BL_DEBUG("refusing a WebSocket handshake with %d: %s", status, hs.reason);
    bl_ws_handshake_free(&hs);
    if (status != 0)
        return status;
    ex->kind = BL_KIND_WEBSOCKET;
    c->proto = &bl_conn_ws_proto;
    bl_conn_clear(c, BL_CONN_F_KEEP_ALIVE);
    c->ws_phase = WS_HANDSHAKE;
    c->ws_started = c->ws_last_read = now_ms(c);
    bl_conn_access_log(c, "WSCONNECTING");
    ws_schedule(c);
    return 0;
}

/* Feeds one slice of input to the session. */
static void ws_feed(bl_conn_t *c, const char *data, size_t len)
{
    c->ws_last_read = now_ms(c);
    if (bl_ws_feed(c->ws, data, len) != 0) {
        bl_conn_close(c);
        return;
    }
    if (c->ws_phase == WS_OPEN && bl_ws_close_sent(c->ws)) {
        ws_failed(c);
    } else if (c->ws_phase == WS_OPEN && bl_ws_fault_pending(c->ws) != 0 &&
               c->ws_fault_since == 0) {
        /* A fault while the app has messages it has not taken (a message,
         * then reserved bits, in one read): its replies to them go out first,
         * for FAULT_REPLY_TIMEOUT_MS at most (see ws_send). */
        if (c->ex == NULL || c->ex->body_inflight == 0) {
            ws_fault_close(c);
            return;
        }
        c->ws_fault_since = now_ms(c);
    }
    ws_flush(c, 0, NULL);
    if (!bl_conn_is_closing(c))
        ws_schedule(c);
}

/* Bytes to read now: no more than fit under the read-ahead bound
 * (BL_BODY_HIGH_WATER) as events. An empty message is a 6-byte frame but a
 * whole event. */
static size_t read_size(bl_conn_t *c, size_t max)
{
    if (c->ex == NULL || c->ws == NULL)
        return max; /* nothing is queued for an app from this read */
    uint64_t room = bl_conn_readahead_room(c);
    size_t event = bl_alloc_cost(sizeof(bl_event_t));
    uint64_t n = room / event * 6; /* the smallest client frame */
    if (n < 1024)
        n = 1024; /* progress: the app takes at least one message of it */
    return n < max ? (size_t)n : max;
}

/* With permessage-deflate a few bytes may inflate to a thousand times as
 * many: such input is fed a slice at a time, so the read-ahead bound is
 * overshot by one slice's worth (plus the message it completes), not by a
 * whole read's. */
#define WS_DEFLATE_SLICE 1024

/* Feeds WebSocket input while the app's read-ahead has room. Returns how
 * much was fed; the caller keeps the rest. */
static size_t ws_feed_bounded(bl_conn_t *c, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len && !bl_conn_is_shut(c) && !bl_conn_readahead_full(c)) {
        size_t n = read_size(c, len - off);
        if (bl_conn_has(c, BL_CONN_F_WS_DEFLATE) && n > WS_DEFLATE_SLICE)
            n = WS_DEFLATE_SLICE;
        ws_feed(c, data + off, n);
        off += n;
    }
    return off;
}

/* Kept input: frames a client sent before the 101, or the part of a read
 * the read-ahead bound did not let in. Fed as reads would be; the rest waits
 * for the app. */
static void ws_replay(bl_conn_t *c)
{
    char *data = c->rbuf;
    size_t len = c->rlen;
    c->rbuf = NULL;
    c->rlen = 0;
    size_t off = ws_feed_bounded(c, data, len);
    if (off < len && !bl_conn_is_shut(c)) {
        memmove(data, data + off, len - off);
        c->rbuf = data;
        c->rlen = len - off;
        return;
    }
    free(data);
}

static int on_read(bl_conn_t *c, const char *data, size_t len)
{
    if (c->ws == NULL)
        return bl_conn_http_read(c, data, len); /* before the 101 */
    size_t used = ws_feed_bounded(c, data, len);
    if (used < len && !bl_conn_is_shut(c) && bl_conn_input_keep(c, data + used, len - used) != 0)
        return -1;
    return 0;
}

static bool replay_kept(bl_conn_t *c)
{
    if (c->ws == NULL)
        return false;
    if (c->rlen > 0)
        ws_replay(c);
    return c->rlen > 0;
}

/* A WebSocket client that half-closes is gone; a refused one may still be
 * sending the request its HTTP answer is for. */
static bool input_may_complete(bl_conn_t *c, int unread)
{
    return c->ws_phase == WS_REFUSED && bl_conn_http_input_may_complete(c, unread);
}

/* ---- events from Python ------------------------------------------------------ */

/* The app accepted: 101, then frames. */
static void ws_accept(bl_conn_t *c, bl_event_t *ev)
{
    const bl_config_t *conf = c->server->cfg;
    bl_ws_config_t cfg = {
        .max_message_size = conf->websocket_max_message_size,
        .max_frame_size = conf->websocket_max_frame_size,
        .hold_fault = true,
    };
    char sub[256];
    char *head;
    size_t head_len;
    size_t sublen = ev->len2 < sizeof(sub) - 1 ? ev->len2 : sizeof(sub) - 1;
    memcpy(sub, ev->data + ev->len, sublen);
    sub[sublen] = '\0';
    if (bl_ws_new(&c->ws, &callbacks, &cfg, c) != 0 ||
        (bl_conn_has(c, BL_CONN_F_WS_DEFLATE) &&
         bl_ws_use_deflate(c->ws, &c->ws_deflate_params, conf->ws_compression_threshold) != 0) ||
        ws_response_head(c, sublen ? sub : NULL, ev->data, ev->len, &head, &head_len) != 0) {
        bl_event_free(ev);
        bl_conn_fail(c, 500);
        return;
    }
    bl_event_free(ev);
    bl_conn_set(c, BL_CONN_F_RESP_STARTED);
    c->status = 101;
    c->ws_phase = WS_OPEN;
    c->ws_last_read = now_ms(c);
    uv_buf_t b = bl_buf(head, head_len);
    bl_conn_write(c, &b, 1, NULL, head, 0);
    bl_conn_access_log(c, "WSCONNECT");
    ws_schedule(c);
    /* Frames the client sent right after its request wait in rbuf: fed from
     * here, within the read-ahead bound. */
    bl_conn_update_reading(c);
}

/* Before the 101: refuse with 403 (websocket.close), or 500 when the app failed. */
static void ws_refuse(bl_conn_t *c, int status)
{
    bl_exchange_t *ex = c->ex;
    c->ws_phase = WS_REFUSED;
    bl_conn_access_log(c, "WSREJECT");
    if (ex != NULL) {
        /* The app learns the handshake is over (spec: websocket.disconnect). */
        c->ex = NULL;
        ex->conn = NULL;
        bl_exchange_post_disconnect(ex, 1006, NULL, 0);
        bl_exchange_unref(ex);
    }
    bl_conn_fail(c, status);
}

static void ws_send(bl_conn_t *c, bl_event_t *ev)
{
    size_t len = ev->len;
    int rc = (ev->flags & BL_EVF_BINARY) ? bl_ws_send_binary(c->ws, ev->data, len)
                                         : bl_ws_send_text(c->ws, ev->data, len);
    if (rc == -12 /* -ENOMEM */) {
        bl_conn_event_drop(ev);
        bl_conn_close(c);
        return;
    }
    /* The frame is copied into the session's output: ev goes with the write so
     * the app's unsent count drops when the bytes reach the socket. */
    ws_flush(c, len, ev);
    /* A held fault: once the app has taken every message before it, this is
     * its reply (its CONSUMED came first, down events keep their order). */
    if (!bl_conn_is_shut(c) && c->ws_fault_since != 0 && c->ex != NULL && c->ex->body_inflight == 0)
        ws_fault_close(c);
}

static void on_event(bl_conn_t *c, bl_event_t *ev)
{
    bool deciding = c->ws_phase == WS_HANDSHAKE;
    switch (ev->type) {
    case BL_EV_WS_ACCEPT:
        if (deciding) {
            ws_accept(c, ev);
            return;
        }
        break;
    case BL_EV_WS_SEND:
        if (c->ws_phase == WS_OPEN) {
            ws_send(c, ev);
            return;
        }
        break;
    case BL_EV_WS_CLOSE:
        if (deciding) {
            bl_event_free(ev);
            ws_refuse(c, 403);
            return;
        }
        if (c->ws_phase == WS_OPEN)
            ws_close(c, ev->status, ev->data, ev->len);
        break;
    case BL_EV_RESPONSE:
    case BL_EV_SEND_BODY:
        /* The denial-response extension: an ordinary HTTP response. */
        if (deciding || c->ws_phase == WS_REFUSED) {
            if (deciding) {
                c->ws_phase = WS_REFUSED;
                bl_conn_access_log(c, "WSREJECT");
            }
            bl_conn_timer_set(c, TIMER_NONE, 0);
            if (ev->type == BL_EV_RESPONSE)
                bl_conn_send_response(c, ev);
            else
                bl_conn_send_body(c, ev);
            return;
        }
        break;
    case BL_EV_TOPIC_SUB:
    case BL_EV_TOPIC_UNSUB:
        if (c->ws_phase == WS_OPEN) {
            bl_conn_topics_event(c, ev);
            return;
        }
        break;
    case BL_EV_FINISH:
        if (deciding) {
            /* The app ended without deciding. */
            ws_refuse(c, (ev->flags & BL_EVF_ERROR) ? 500 : 403);
        } else if (c->ws_phase == WS_OPEN) {
            bool failed = (ev->flags & BL_EVF_ERROR) != 0;
            ws_close(c, failed ? 1011 : 1000, "", 0);
        } else if (c->ws_phase == WS_REFUSED && !bl_conn_has(c, BL_CONN_F_RESP_DONE)) {
            bl_conn_close(c);
        }
        break;
    default:
        break;
    }
    bl_conn_event_drop(ev); /* a send after our close included */
}

static void on_timer(bl_conn_t *c, timer_kind_t kind)
{
    if (kind != TIMER_WS) {
        bl_conn_http_timer(c, kind);
        return;
    }
    if (c->ws_phase != WS_HANDSHAKE && c->ws_phase != WS_OPEN && c->ws_phase != WS_CLOSING)
        return;
    const bl_config_t *cfg = c->server->cfg;
    uint64_t now = now_ms(c);
    if (now >= ws_due(c, WS_DUE_CONNECT)) {
        BL_WARN("WebSocket not accepted within %gs: 403", cfg->websocket_connect_timeout);
        ws_refuse(c, 403);
        return;
    }
    if (now >= ws_due(c, WS_DUE_FAULT)) {
        ws_fault_close(c); /* no reply in time */
        return;
    }
    if (now >= ws_due(c, WS_DUE_AGE)) {
        ws_close(c, 1000, "", 0);
        return;
    }
    if (now >= ws_due(c, WS_DUE_PONG)) {
        if (!bl_conn_has(c, BL_CONN_F_READING) && bl_conn_acked(c) >= c->ws_ping_end) {
            /* Not read (the app is behind): the pong waits unread, but the
             * client's kernel took the ping, so the client is there. */
            c->ws_ping_sent = 0;
            c->ws_last_read = now;
        } else {
            /* No pong: the client is gone without a word. */
            BL_DEBUG("WebSocket ping timeout: dropping the connection");
            if (c->ex != NULL)
                post_disconnect(c, 1006, (const uint8_t *)"", 0);
            bl_conn_close(c);
            return;
        }
    }
    if (now >= ws_due(c, WS_DUE_PING)) {
        c->ws_pongs = bl_ws_pongs(c->ws);
        c->ws_ping_sent = now;
        bl_ws_send_ping(c->ws, "", 0);
        ws_flush(c, 0, NULL);
        c->ws_ping_end = c->send_queued;
    }
    if (now >= ws_due(c, WS_DUE_CLOSING)) {
        if (c->ex != NULL)
            post_disconnect(c, 1006, (const uint8_t *)"", 0);
        bl_conn_close(c);
        return;
    }
    ws_schedule(c);
}

/* Shutdown: an open WebSocket closes with 1001 (going away). */
static bool on_shutdown(bl_conn_t *c)
{
    if (c->ws_phase != WS_OPEN)
        return false;
    ws_close(c, 1001, "", 0);
    return true;
}

static void on_closing(bl_conn_t *c)
{
    bl_conn_topics_close(c);
    /* The TCP connection dropped; or, as Daphne logs it, a refused handshake's
     * socket closed after its WSREJECT. */
    if ((c->ex != NULL && (c->ws_phase == WS_OPEN || c->ws_phase == WS_CLOSING)) ||
        c->ws_phase == WS_REFUSED)
        bl_conn_access_log(c, "WSDISCONNECT");
}

static void ws_free(bl_conn_t *c)
{
    if (c->ws != NULL)
        bl_ws_free(c->ws);
    c->ws = NULL;
    bl_conn_topics_free(c);
    bl_conn_http_free(c);
}

size_t bl_conn_ws_sweep(bl_server_t *s)
{
    size_t slept = 0;
    for (bl_conn_t *c = s->conns; c != NULL; c = c->next) {
        if (c->ws != NULL && c->ws_phase == WS_OPEN && !bl_conn_is_shut(c) &&
            !bl_ws_sleeping(c->ws) && bl_ws_sleep_if_idle(c->ws))
            slept++;
    }
    return slept;
}

const bl_conn_proto_t bl_conn_ws_proto = {
    .on_read = on_read,
    .read_size = read_size,
    .replay_kept = replay_kept,
    .input_may_complete = input_may_complete,
    .on_event = on_event,
    .on_timer = on_timer,
    .on_drain = bl_conn_http_drain, /* a refusal's HTTP response */
    .on_shutdown = on_shutdown,
    .on_close = on_closing,
    .on_upgrade = on_upgrade,
    .free = ws_free,
    .on_written = bl_conn_topics_written,
};
