/* libFuzzer target: client bytes -> bl_ws_feed (gateway/proto/ws.c + ws_guard.c over
 * wslay), as conn_ws.c drives it, output taken and freed after every feed.
 *
 * Input: byte 0 picks the configuration (message size limit, RSV1 allowed,
 * what the callbacks do), byte 1 seeds the split points, the rest is what the
 * client sent. Each input runs in one piece and in random pieces; both runs
 * must deliver the same messages and end the same way. Delivered text is
 * checked with a UTF-8 decoder written independently of gateway/utf8.c, and
 * everything the server writes is parsed back and checked against RFC 6455
 * (unmasked, minimal lengths, short whole control frames, sendable close codes,
 * nothing after the close frame). */
#include "bayleaf/proto/ws.h"
#include "fuzz_common.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* CFG_RSV1: permessage-deflate agreed (bl_ws_use_deflate); text is then
 * still checked, after inflating. */
enum { CFG_RSV1 = 0x08, CFG_ECHO = 0x10, CFG_CLOSE_ON_MSG = 0x20, CFG_SEND_AFTER = 0x40 };

typedef struct {
    uint8_t cfg;
    uint64_t max;
    uint64_t hash; /* messages, closes and pongs, in order */
    unsigned messages, closes;
    int feed_error;
    uint16_t code_sent;
    /* the server's output, parsed back */
    uint8_t *out;
    size_t out_len;
    bool close_seen;
} run_t;

/* Decodes code points one by one: an algorithm unlike gateway/utf8.c's. */
static bool utf8_ok(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint32_t c = p[i], cp, min;
        int n;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (len - i <= (size_t)n)
            return false;
        for (int k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += (size_t)n + 1;
    }
    return true;
}

static void on_message(bl_ws_t *ws, int opcode, const uint8_t *data, size_t len)
{
    run_t *r = bl_ws_data(ws);
    FUZZ_CHECK(data != NULL);
    FUZZ_CHECK(opcode == BL_WS_TEXT || opcode == BL_WS_BINARY);
    if (r->max != 0)
        FUZZ_CHECK(len <= r->max);
    if (opcode == BL_WS_TEXT)
        FUZZ_CHECK(utf8_ok(data, len));
    uint8_t op = (uint8_t)opcode;
    r->hash = fuzz_hash(r->hash, &op, 1);
    r->hash = fuzz_hash(r->hash, &len, sizeof(len));
    r->hash = fuzz_hash(r->hash, data, len);
    r->messages++;
    if (r->cfg & CFG_ECHO) {
        int rc = opcode == BL_WS_TEXT ? bl_ws_send_text(ws, data, len)
                                      : bl_ws_send_binary(ws, data, len);
        FUZZ_CHECK(rc == 0 || rc == -EPIPE);
    }
    if ((r->cfg & CFG_CLOSE_ON_MSG) && r->messages == 2) {
        /* A text message as the reason: exercises the cut at 123 bytes. */
        bool text = opcode == BL_WS_TEXT;
        int rc =
            text ? bl_ws_close(ws, 4000, (const char *)data, len) : bl_ws_close(ws, 0, NULL, 0);
        FUZZ_CHECK(rc == 0 || rc == -EPIPE);
    }
}

static void on_close(bl_ws_t *ws, uint16_t code, const uint8_t *reason, size_t len)
{
    run_t *r = bl_ws_data(ws);
    FUZZ_CHECK(reason != NULL && len <= 123);
    /* Only codes a peer may send get this far (RFC 6455 7.4.1), and text reasons. */
    FUZZ_CHECK(code == 1005 ||
               (code >= 1000 && code <= 4999 && code != 1004 && code != 1006 && code != 1015));
    FUZZ_CHECK(utf8_ok(reason, len));
    FUZZ_CHECK(code != 1005 || len == 0);
    r->hash = fuzz_hash(r->hash, "C", 1);
    r->hash = fuzz_hash(r->hash, &code, sizeof(code));
    r->hash = fuzz_hash(r->hash, reason, len);
    r->closes++;
}

static void on_pong(bl_ws_t *ws, const uint8_t *data, size_t len)
{
    run_t *r = bl_ws_data(ws);
    FUZZ_CHECK(data != NULL && len <= 125);
    r->hash = fuzz_hash(r->hash, "P", 1);
    r->hash = fuzz_hash(r->hash, data, len);
}

static const bl_ws_callbacks_t callbacks = {on_message, on_close, on_pong};

/* Server frames parsed back from the output: checks each complete frame and
 * keeps an incomplete tail for the next take. */
static void check_output(run_t *r, const uint8_t *buf, size_t len)
{
    uint8_t *all = realloc(r->out, r->out_len + len);
    FUZZ_CHECK(all != NULL);
    memcpy(all + r->out_len, buf, len);
    r->out = all;
    r->out_len += len;

    size_t i = 0;
    for (;;) {
        const uint8_t *f = r->out + i;
        size_t left = r->out_len - i, hl = 2;
        if (left < 2)
            break;
        uint8_t op = f[0] & 0x0f, len7 = f[1] & 0x7f;
        uint64_t n = len7;
        FUZZ_CHECK(!(f[1] & 0x80)); /* servers never mask */
        /* RSV1 only on compressed data messages */
        FUZZ_CHECK((f[0] & 0x30) == 0);
        FUZZ_CHECK(!(f[0] & 0x40) || ((r->cfg & CFG_RSV1) && (f[0] & 0x0f) < 0x8));
        FUZZ_CHECK(!r->close_seen); /* nothing after our close frame */
        if (len7 == 126) {
            hl = 4;
            if (left < hl)
                break;
            n = (uint64_t)f[2] << 8 | f[3];
            FUZZ_CHECK(n >= 126);
        } else if (len7 == 127) {
            hl = 10;
            if (left < hl)
                break;
            n = 0;
            for (int k = 2; k < 10; k++)
                n = n << 8 | f[k];
            FUZZ_CHECK(n > 0xffff && !(n >> 63));
        }
        if (left - hl < n)
            break;
        const uint8_t *pl = f + hl;
        if (op >= 0x8) {
            FUZZ_CHECK(op <= 0xa && (f[0] & 0x80) && n <= 125);
            if (op == 0x8) {
                FUZZ_CHECK(n != 1);
                if (n >= 2) {
                    uint16_t code = (uint16_t)(pl[0] << 8 | pl[1]);
                    FUZZ_CHECK(bl_ws_close_code_sendable(code));
                    FUZZ_CHECK(utf8_ok(pl + 2, n - 2));
                }
                r->close_seen = true;
            }
        } else {
            FUZZ_CHECK(op == 0x1 || op == 0x2 || op == 0x0);
            if (op == 0x1 && (f[0] & 0x80) && !(f[0] & 0x40))
                FUZZ_CHECK(utf8_ok(pl, n)); /* our echo of valid text */
        }
        i += hl + n;
    }
    memmove(r->out, r->out + i, r->out_len - i);
    r->out_len -= i;
}

static void drain(run_t *r, bl_ws_t *ws)
{
    uint8_t *buf;
    size_t len;
    bl_ws_take_output(ws, &buf, &len);
    FUZZ_CHECK((buf == NULL) == (len == 0));
    FUZZ_CHECK(bl_ws_output_len(ws) == 0);
    if (buf != NULL)
        check_output(r, buf, len);
    free(buf);
}

static void run(run_t *r, const uint8_t *data, size_t len, bool whole, uint32_t seed)
{
    bl_ws_t *ws;
    bl_ws_config_t cfg = {.max_message_size = r->max};
    fuzz_rng_t rng;
    size_t off = 0;

    fuzz_rng_init(&rng, seed);
    FUZZ_CHECK(bl_ws_new(&ws, &callbacks, &cfg, r) == 0);
    if (r->cfg & CFG_RSV1) {
        static const bl_ws_deflate_params_t pmd = {true, true, 15, 15, false, false};
        FUZZ_CHECK(bl_ws_use_deflate(ws, &pmd, 16) == 0);
    }
    while (off < len) {
        size_t n = whole ? len - off : fuzz_piece(&rng, len - off);
        int rc = bl_ws_feed(ws, data + off, n);
        off += n;
        FUZZ_CHECK(rc == 0 || rc == -EIO || rc == -ENOMEM);
        drain(r, ws);
        if (rc != 0) {
            r->feed_error = rc; /* conn_ws.c drops the connection */
            break;
        }
        if ((r->cfg & CFG_SEND_AFTER) && !whole) {
            int s = bl_ws_send_binary(ws, "x", 1);
            FUZZ_CHECK(s == 0 || s == -EPIPE);
            drain(r, ws);
        }
    }
    /* After a close was received and answered, or a failure, reading is over. */
    if (bl_ws_close_received(ws) && bl_ws_close_sent(ws))
        FUZZ_CHECK(!bl_ws_want_read(ws));
    if (r->feed_error == 0 && !bl_ws_close_sent(ws)) {
        /* Our side of the closing handshake: a close frame must go out. */
        FUZZ_CHECK(bl_ws_close(ws, 1001, "bye", 3) == 0);
        drain(r, ws);
        FUZZ_CHECK(r->close_seen);
        FUZZ_CHECK(bl_ws_send_text(ws, "late", 4) == -EPIPE);
    }
    r->hash = fuzz_hash(r->hash, &(uint16_t){bl_ws_close_code_received(ws)}, 2);
    r->code_sent = bl_ws_close_code_sent(ws);
    bl_ws_free(ws);
    free(r->out);
    r->out = NULL;
    r->out_len = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t limits[] = {0, 1, 125, 126, 65535, 65536, 1 << 20, 16};
    if (size < 2)
        return 0;
    uint8_t cfg = data[0];
    uint32_t seed = data[1];
    run_t whole = {.cfg = cfg, .max = limits[cfg & 7], .hash = FUZZ_HASH_INIT};
    run_t split = whole;
    run(&whole, data + 2, size - 2, true, seed);
    run(&split, data + 2, size - 2, false, seed);
    /* Received messages and closes don't depend on how TCP cut the stream
     * (the split run's extra sends don't change what it receives). */
    FUZZ_CHECK(whole.messages == split.messages);
    FUZZ_CHECK(whole.closes == split.closes);
    FUZZ_CHECK(whole.hash == split.hash);
    FUZZ_CHECK((whole.feed_error != 0) == (split.feed_error != 0));
    return 0;
}
