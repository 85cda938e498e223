/* WebSocket session (gateway/proto/ws.c + ws_guard.c over wslay): scripted client
 * frames in, server frames out. */
#include "bayleaf/proto/ws.h"
#include "check.h"
#include "ws_frames.h"

/* Each test runs in a child process: a crash is one failure. */
#define RUN(fn) check_isolated(#fn, fn, NULL)

#include <errno.h>

/* ---- client frames ---- */

/* ---- session under test ---- */

typedef struct {
    int messages, closes, pongs;
    int opcode;
    uint8_t *data;
    size_t len;
    uint16_t code;
    uint8_t reason[128];
    size_t reason_len;
    const char *reply; /* on_message answers with this text, if set */
    bytes_t *log;      /* every message appended as opcode, data, if set */
} rec_t;

static void on_message(bl_ws_t *ws, int opcode, const uint8_t *data, size_t len)
{
    rec_t *r = bl_ws_data(ws);
    r->messages++;
    r->opcode = opcode;
    free(r->data);
    r->data = malloc(len + 1);
    memcpy(r->data, data, len);
    r->len = len;
    if (r->log) {
        put_byte(r->log, (uint8_t)opcode);
        put(r->log, data, len);
    }
    if (r->reply)
        bl_ws_send_text(ws, r->reply, strlen(r->reply));
}

static void on_close(bl_ws_t *ws, uint16_t code, const uint8_t *reason, size_t len)
{
    rec_t *r = bl_ws_data(ws);
    r->closes++;
    r->code = code;
    memcpy(r->reason, reason, len);
    r->reason_len = len;
}

static void on_pong(bl_ws_t *ws, const uint8_t *data, size_t len)
{
    rec_t *r = bl_ws_data(ws);
    (void)data;
    (void)len;
    r->pongs++;
}

static const bl_ws_callbacks_t callbacks = {on_message, on_close, on_pong};

static bl_ws_t *session(rec_t *r, uint64_t max)
{
    bl_ws_t *ws;
    bl_ws_config_t cfg = {.max_message_size = max};
    memset(r, 0, sizeof(*r));
    if (bl_ws_new(&ws, &callbacks, &cfg, r) != 0)
        abort();
    return ws;
}

static void finish(bl_ws_t *ws, rec_t *r, bytes_t *b)
{
    bl_ws_free(ws);
    free(r->data);
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* Does the server's pending output equal exp? Takes it. */
static bool out_is(bl_ws_t *ws, const char *exp, size_t len)
{
    uint8_t *buf;
    size_t n;
    bl_ws_take_output(ws, &buf, &n);
    bool same = n == len && (len == 0 || memcmp(buf, exp, len) == 0);
    if (!same) {
        fprintf(stderr, "  output (%zu bytes):", n);
        for (size_t i = 0; i < n && i < 32; i++)
            fprintf(stderr, " %02x", buf[i]);
        fprintf(stderr, "\n");
    }
    free(buf);
    return same;
}

#define OUT_IS(ws, lit) out_is(ws, lit, sizeof(lit) - 1)
#define CLOSE_1000      "\x88\x02\x03\xe8"
#define CLOSE_1002      "\x88\x02\x03\xea"
#define CLOSE_1007      "\x88\x02\x03\xef"
#define CLOSE_1009      "\x88\x02\x03\xf1"

static int feed(bl_ws_t *ws, const bytes_t *b)
{
    return bl_ws_feed(ws, b->p, b->len);
}

/* ---- messages ---- */

static void test_text_and_binary(void)
{
    rec_t r;
    bytes_t b = {0};
    bl_ws_t *ws = session(&r, 0);
    frame(&b, FIN | OP_TEXT, "Hello", 5);
    CHECK(feed(ws, &b) == 0);
    CHECK(r.messages == 1 && r.opcode == BL_WS_TEXT && r.len == 5);
    CHECK(memcmp(r.data, "Hello", 5) == 0);
    b.len = 0;
    frame(&b, FIN | OP_BIN, "\x00\xff\x80", 3);
    CHECK(feed(ws, &b) == 0);
    CHECK(r.messages == 2 && r.opcode == BL_WS_BINARY && r.len == 3);
    CHECK(memcmp(r.data, "\x00\xff\x80", 3) == 0);
    b.len = 0;
    frame(&b, FIN | OP_TEXT, "", 0); /* empty message */
    CHECK(feed(ws, &b) == 0);
    CHECK(r.messages == 3 && r.len == 0);
    CHECK(OUT_IS(ws, ""));
    CHECK(!bl_ws_want_write(ws) && bl_ws_want_read(ws) && !bl_ws_done(ws));

    CHECK(bl_ws_send_text(ws, "Hello", 5) == 0);
    CHECK(bl_ws_want_write(ws) && bl_ws_output_len(ws) == 7);
    CHECK(OUT_IS(ws, "\x81\x05Hello"));
    CHECK(bl_ws_send_binary(ws, "\x01\x02", 2) == 0);
    CHECK(OUT_IS(ws, "\x82\x02\x01\x02"));
    finish(ws, &r, &b);
}

static void test_lengths_16_and_64(void)
{
    rec_t r;
    bytes_t b = {0};
    bl_ws_t *ws = session(&r, 0);
    size_t sizes[] = {125, 126, 200, 65535, 65536, 70000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        uint8_t *p = malloc(n);
        for (size_t k = 0; k < n; k++)
            p[k] = (uint8_t)(k * 7);
        b.len = 0;
        frame(&b, FIN | OP_BIN, p, n);
        CHECK(feed(ws, &b) == 0);
        CHECK(r.messages == (int)i + 1 && r.len == n && memcmp(r.data, p, n) == 0);

        CHECK(bl_ws_send_binary(ws, p, n) == 0);
        uint8_t *out;
        size_t out_len;
        bl_ws_take_output(ws, &out, &out_len);
        size_t hdr = n < 126 ? 2 : n <= 0xffff ? 4 : 10;
        CHECK(out_len == hdr + n && out[0] == 0x82 && memcmp(out + hdr, p, n) == 0);
        if (n >= 126 && n <= 0xffff)
            CHECK(out[1] == 126 && out[2] == (n >> 8) && out[3] == (n & 0xff));
        if (n > 0xffff)
            CHECK(out[1] == 127 && out[2] == 0 && out[7] == (uint8_t)(n >> 16) &&
                  out[8] == (uint8_t)(n >> 8) && out[9] == (uint8_t)n);
        free(out);
        free(p);
    }
    finish(ws, &r, &b);
}

static void test_fragments_with_ping(void)
{
    rec_t r;
    bytes_t b = {0};
    bl_ws_t *ws = session(&r, 0);
    frame(&b, OP_TEXT, "Hel", 3);
    frame(&b, FIN | OP_PING, "p1", 2);
    frame(&b, OP_CONT, "lo, ", 4);
    frame(&b, FIN | OP_PONG, "x", 1);
    frame(&b, OP_CONT, "", 0);
    frame(&b, FIN | OP_CONT, "world", 5);
    CHECK(feed(ws, &b) == 0);
    CHECK(r.messages == 1 && r.opcode == BL_WS_TEXT && r.len == 12);
    CHECK(memcmp(r.data, "Hello, world", 12) == 0);
    CHECK(r.pongs == 1 && bl_ws_pongs(ws) == 1);
    CHECK(OUT_IS(ws, "\x8a\x02p1")); /* wslay's automatic pong */

    /* The same stream a byte at a time. */
    r.messages = 0;
    for (size_t i = 0; i < b.len; i++)
        CHECK(bl_ws_feed(ws, b.p + i, 1) == 0);
    CHECK(r.messages == 1 && r.len == 12 && memcmp(r.data, "Hello, world", 12) == 0);
    CHECK(OUT_IS(ws, "\x8a\x02p1"));

    /* Binary fragments. */
    b.len = 0;
    frame(&b, OP_BIN, "\x01", 1);
    frame(&b, FIN | OP_CONT, "\x02\x03", 2);
    CHECK(feed(ws, &b) == 0);
    CHECK(r.messages == 2 && r.opcode == BL_WS_BINARY && r.len == 3);
    CHECK(memcmp(r.data, "\x01\x02\x03", 3) == 0);
    finish(ws, &r, &b);
}

static void test_reply_from_callback(void)
{
    rec_t r;
    bytes_t b = {0};
    bl_ws_t *ws = session(&r, 0);
    r.reply = "ok";
    frame(&b, FIN | OP_TEXT, "a", 1);
    frame(&b, FIN | OP_TEXT, "b", 1);
    CHECK(feed(ws, &b) == 0);
    CHECK(r.messages == 2);
    CHECK(OUT_IS(ws, "\x81\x02ok\x81\x02ok"));
    finish(ws, &r, &b);
}

/* ---- size limit ---- */

static void test_max_size_single_frame(void)
{
    rec_t r;
    bytes_t b = {0};
    bl_ws_t *ws = session(&r, 10);
    frame(&b, FIN | OP_TEXT, "0123456789", 10); /* at the limit: fine */
    CHECK(feed(ws, &b) == 0);
    CHECK(r.messages == 1);
    b.len = 0;
    frame(&b, FIN | OP_TEXT, "0123456789A", 11);
    CHECK(feed(ws, &b) == 0);
    CHECK(r.messages == 1);
    CHECK(OUT_IS(ws, CLOSE_1009));
    CHECK(bl_ws_close_sent(ws) && bl_ws_close_code_sent(ws) == 1009);
    CHECK(!bl_ws_want_read(ws) && bl_ws_done(ws));
    /* Later bytes are ignored. */
    b.len = 0;
    frame(&b, FIN | OP_TEXT, "x", 1);
    CHECK(feed(ws, &b) == 0 && r.messages == 1 && OUT_IS(ws, ""));
    finish(ws, &r, &b);
}

static void test_max_size_fragments(void)
{
    rec_t r;
    bytes_t b = {0};
    bl_ws_t *ws = session(&r, 10);
    frame(&b, OP_BIN, "012345", 6);
    CHECK(feed(ws, &b) == 0);
    CHECK(OUT_IS(ws, ""));
    /* The second header alone is enough: 6 + 6 > 10, nothing more is read. */
    b.len = 0;
    frame(&b, FIN | OP_CONT, "abcdef", 6);
    CHECK(bl_ws_feed(ws, b.p, 6) == 0);
    CHECK(OUT_IS(ws, CLOSE_1009));
    CHECK(r.messages == 0 && bl_ws_done(ws));
    finish(ws, &r, &b);
}

static void test_max_size_huge_header(void)
{
    rec_t r;
    bytes_t b = {0};
    bl_ws_t *ws = session(&r, 1 << 20);
    /* A 64-bit length of 2^40 with no payload: refused from the header. */
    uint8_t h[] = {0x82, 0xff, 0, 0, 0x01, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    CHECK(bl_ws_feed(ws, h, sizeof(h)) == 0);
    CHECK(OUT_IS(ws, CLOSE_1009));
    finish(ws, &r, &b);

    /* Without a limit the same header just waits for data: nothing is
     * allocated for the announced length. */
    ws = session(&r, 0);
    CHECK(bl_ws_feed(ws, h, sizeof(h)) == 0);
    CHECK(bl_ws_feed(ws, "\x10\x20\x30", 3) == 0);
    CHECK(OUT_IS(ws, "") && bl_ws_want_read(ws));
    finish(ws, &r, &b);
}

/* --websocket-max-frame-size: a data frame whose header announces more than
 * the limit fails with 1009 from its header; at the limit it is delivered. */
static void test_max_frame_size(void)
{
    rec_t r;
    bytes_t b = {0};
    bl_ws_t *ws;
    bl_ws_config_t cfg = {.max_frame_size = 4};
    memset(&r, 0, sizeof(r));
    CHECK(bl_ws_new(&ws, &callbacks, &cfg, &r) == 0);
    /* a message of several frames at the limit: fine, whatever its size */
    frame(&b, OP_TEXT, "0123", 4);
    frame(&b, FIN | OP_CONT, "4567", 4);
    frame(&b, FIN | OP_PING, "pingpong", 8); /* control frames: 125 by the RFC */
    CHECK(feed(ws, &b) == 0);
    CHECK(r.messages == 1 && r.len == 8);
    CHECK(OUT_IS(ws, "\x8a\x08pingpong"));
    /* one byte over: only the header is needed */
    b.len = 0;
    frame(&b, FIN | OP_BIN, "01234", 5);
    CHECK(bl_ws_feed(ws, b.p, 2) == 0);
    CHECK(r.messages == 1 && OUT_IS(ws, CLOSE_1009));
    CHECK(!bl_ws_want_read(ws) && bl_ws_done(ws));
    finish(ws, &r, &b);
}

/* hold_fault: a protocol fault stops reading, but its close waits for
 * bl_ws_fault_close so that a reply goes out first. */
static void test_hold_fault(void)
{
    rec_t r;
    bytes_t b = {0};
    bl_ws_t *ws;
    bl_ws_config_t cfg = {.hold_fault = true};
    memset(&r, 0, sizeof(r));
    CHECK(bl_ws_new(&ws, &callbacks, &cfg, &r) == 0);
    frame(&b, FIN | OP_TEXT, "hello", 5);
    frame(&b, FIN | RSV2 | OP_TEXT, "bad", 3);
    frame(&b, FIN | OP_TEXT, "never", 5);
    CHECK(feed(ws, &b) == 0);
    CHECK(r.messages == 1 && r.len == 5);
    CHECK(bl_ws_fault_pending(ws) == 1002);
    CHECK(OUT_IS(ws, "") && !bl_ws_close_sent(ws) && !bl_ws_done(ws) && !bl_ws_want_read(ws));
    /* nothing more is read meanwhile */
    CHECK(feed(ws, &b) == 0 && r.messages == 1);
    CHECK(bl_ws_send_text(ws, "hello", 5) == 0);
    CHECK(bl_ws_fault_close(ws) == 0);
    CHECK(OUT_IS(ws, "\x81\x05hello" CLOSE_1002));
    CHECK(bl_ws_fault_pending(ws) == 0 && bl_ws_close_code_sent(ws) == 1002 && bl_ws_done(ws));
    finish(ws, &r, &b);

    /* a fault in a later feed, a size fault: held the same */
    memset(&r, 0, sizeof(r));
    cfg.max_message_size = 10;
    CHECK(bl_ws_new(&ws, &callbacks, &cfg, &r) == 0);
    frame(&b, FIN | OP_TEXT, "hello", 5);
    CHECK(feed(ws, &b) == 0 && r.messages == 1);
    b.len = 0;
    frame(&b, FIN | OP_BIN, "0123456789A", 11);
    CHECK(feed(ws, &b) == 0);
    CHECK(bl_ws_fault_pending(ws) == 1009 && OUT_IS(ws, ""));
    CHECK(bl_ws_fault_close(ws) == 0 && OUT_IS(ws, CLOSE_1009));
    /* a second call does nothing */
    CHECK(bl_ws_fault_close(ws) == 0 && OUT_IS(ws, "") && bl_ws_done(ws));
    finish(ws, &r, &b);
}

/* ---- UTF-8 ---- */

static void expect_close_after(const bytes_t *b, uint64_t max, const char *close, int messages,
                               const char *what)
{
    rec_t r;
    bl_ws_t *ws = session(&r, max);
    int rc = feed(ws, b);
    bool ok = rc == 0 && out_is(ws, close, 4) && r.messages == messages && !bl_ws_want_read(ws) &&
              bl_ws_done(ws);
    if (!ok) {
        fprintf(stderr, "  case: %s (rc %d, messages %d)\n", what, rc, r.messages);
        check_result(false, __FILE__, __LINE__, "case above");
    }
    bl_ws_free(ws);
    free(r.data);
}

static void test_invalid_utf8_one_frame(void)
{
    static const struct {
        const char *s;
        size_t len;
    } bad[] = {
        {"\xc0\xaf", 2},         /* overlong */
        {"\xe0\x80\xaf", 3},     /* overlong */
        {"\xed\xa0\x80", 3},     /* surrogate */
        {"\xf4\x90\x80\x80", 4}, /* > U+10FFFF */
        {"\xff", 1},
        {"ab\x80", 3},      /* stray continuation */
        {"abc\xe2\x82", 5}, /* truncated at the end of the message */
        {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
         "edited",
         20},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bytes_t b = {0};
        frame(&b, FIN | OP_TEXT, bad[i].s, bad[i].len);
        expect_close_after(&b, 0, CLOSE_1007, 0, bad[i].s);
        free(b.p);
    }
    /* Binary messages are not text. */
    rec_t r;
    bytes_t b = {0};
    bl_ws_t *ws = session(&r, 0);
    frame(&b, FIN | OP_BIN, "\xff\xc0", 2);
    CHECK(feed(ws, &b) == 0 && r.messages == 1 && OUT_IS(ws, ""));
    finish(ws, &r, &b);
}

static void test_invalid_utf8_across_fragments(void)
{
    rec_t r;
    bytes_t b = {0};
    /* A character split across fragments is fine. */
    bl_ws_t *ws = session(&r, 0);
    frame(&b, OP_TEXT, "a\xe2\x82", 3);
    frame(&b, FIN | OP_CONT, "\xac", 1);
    CHECK(feed(ws, &b) == 0 && r.messages == 1 && r.len == 4);
    CHECK(memcmp(r.data, "a\xe2\x82\xac", 4) == 0 && OUT_IS(ws, ""));
    finish(ws, &r, &b);

    /* Continuation that breaks the character. */
    frame(&b, OP_TEXT, "a\xe2\x82", 3);
    frame(&b, FIN | OP_CONT, "\x28", 1);
    expect_close_after(&b, 0, CLOSE_1007, 0, "split then bad");
    b.len = 0;
    /* Truncated at the final fragment. */
    frame(&b, OP_TEXT, "a", 1);
    frame(&b, FIN | OP_CONT, "\xf0\x9f", 2);
    expect_close_after(&b, 0, CLOSE_1007, 0, "truncated final");
    b.len = 0;

    /* Fail fast: the first fragment's bad byte closes at once, while the
     * message (and even the frame) is still open. */
    ws = session(&r, 0);
    frame(&b, OP_TEXT, "ok\xed\xa0\x80 and more to come", 23);
    CHECK(bl_ws_feed(ws, b.p, 6 + 4) == 0); /* header + "ok\xed\xa0" */
    CHECK(OUT_IS(ws, CLOSE_1007) && !bl_ws_want_read(ws));
    finish(ws, &r, &b);
}

/* ---- protocol errors ---- */

static void test_protocol_errors(void)
{
    uint8_t big[126];
    memset(big, 'x', sizeof(big));
    bytes_t b = {0};
#define CASE(what, build)                                                                          \
    do {                                                                                           \
        b.len = 0;                                                                                 \
        build;                                                                                     \
        expect_close_after(&b, 0, CLOSE_1002, 0, what);                                            \
    } while (0)
    CASE("unmasked", frame_ex(&b, FIN | OP_TEXT, false, LEN_MIN, "hi", 2));
    CASE("RSV1", frame(&b, FIN | RSV1 | OP_TEXT, "hi", 2));
    CASE("RSV2", frame(&b, FIN | RSV2 | OP_TEXT, "hi", 2));
    CASE("RSV3", frame(&b, FIN | RSV3 | OP_BIN, "hi", 2));
    CASE("opcode 3", frame(&b, FIN | 3, "hi", 2));
    CASE("opcode 7", frame(&b, FIN | 7, "", 0));
    CASE("opcode 0xb", frame(&b, FIN | 0xb, "hi", 2));
    CASE("opcode 0xf", frame(&b, FIN | 0xf, "", 0));
    CASE("ping 126 bytes", frame(&b, FIN | OP_PING, big, 126));
    CASE("ping 16-bit length", frame_ex(&b, FIN | OP_PING, true, LEN_16, "hi", 2));
    CASE("close 126 bytes", frame(&b, FIN | OP_CLOSE, big, 126));
    CASE("fragmented ping", frame(&b, OP_PING, "hi", 2));
    CASE("fragmented close", frame(&b, OP_CLOSE, "\x03\xe8", 2));
    CASE("fragmented pong", frame(&b, OP_PONG, "", 0));
    CASE("continuation first", frame(&b, FIN | OP_CONT, "hi", 2));
    CASE("text inside fragmented", (frame(&b, OP_TEXT, "a", 1), frame(&b, FIN | OP_TEXT, "b", 1)));
    CASE("binary inside fragmented", (frame(&b, OP_BIN, "a", 1), frame(&b, OP_BIN, "b", 1)));
    CASE("non-minimal 16-bit", frame_ex(&b, FIN | OP_BIN, true, LEN_16, "hi", 2));
    CASE("non-minimal 64-bit", frame_ex(&b, FIN | OP_BIN, true, LEN_64, big, 126));
    CASE("64-bit MSB", put(&b, "\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04", 14));
    CASE("close 1 byte", frame(&b, FIN | OP_CLOSE, "\x03", 1));
    static const uint16_t bad_codes[] = {0,    1,    999,  1004, 1005, 1006, 1012,
                                         1015, 1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof(bad_codes) / sizeof(bad_codes[0]); i++) {
        char what[32];
        snprintf(what, sizeof(what), "close code %u", bad_codes[i]);
        CASE(what, close_frame(&b, bad_codes[i], "", 0));
    }
    CASE("close reason bad UTF-8", close_frame(&b, 1000, "ok\xc0\xaf", 4));
    CASE("close reason surrogate", close_frame(&b, 1001, "\xed\xa0\x80", 3));
    CASE("close reason truncated", close_frame(&b, 1000, "\xe2\x82", 2));
#undef CASE
    /* A message before the error is still delivered. */
    b.len = 0;
    frame(&b, FIN | OP_TEXT, "a", 1);
    frame(&b, FIN | OP_CONT, "b", 1);
    expect_close_after(&b, 0, CLOSE_1002, 1, "continuation after the end");
    b.len = 0;
    frame(&b, FIN | OP_TEXT, "first", 5);
    frame(&b, FIN | OP_PING, big, 126);
    frame(&b, FIN | OP_TEXT, "never", 5);
    expect_close_after(&b, 0, CLOSE_1002, 1, "message then error");
    free(b.p);
}

static void test_protocol_error_split_feeds(void)
{
    /* A bad close reason split across feeds: the part already handed to wslay
     * must not let it accept (and echo) the frame. */
    rec_t r;
    bytes_t b = {0};
    bl_ws_t *ws = session(&r, 0);
    close_frame(&b, 1000, "bad\xff", 4);
    CHECK(bl_ws_feed(ws, b.p, 8) == 0);
    CHECK(OUT_IS(ws, ""));
    CHECK(bl_ws_feed(ws, b.p + 8, b.len - 8) == 0);
    CHECK(OUT_IS(ws, CLOSE_1002) && r.closes == 0 && !bl_ws_close_received(ws));
    finish(ws, &r, &b);
}

static void test_rsv1_hook(void)
{
    rec_t r;
    bytes_t b = {0};
    bl_ws_t *ws = session(&r, 0);
    bl_ws_allow_rsv1(ws);
    /* Compressed payloads are opaque here: no UTF-8 check on them. */
    frame(&b, RSV1 | OP_TEXT, "\xff", 1);
    frame(&b, FIN | OP_CONT, "\xfe", 1);
    CHECK(feed(ws, &b) == 0 && r.messages == 1 && r.len == 2 && OUT_IS(ws, ""));
    finish(ws, &r, &b);

    bytes_t c = {0};
    frame(&c, OP_TEXT | RSV1, "a", 1);
    frame(&c, FIN | RSV1 | OP_CONT, "b", 1); /* RSV1 only on the first frame */
    ws = session(&r, 0);
    bl_ws_allow_rsv1(ws);
    CHECK(feed(ws, &c) == 0 && OUT_IS(ws, CLOSE_1002) && r.messages == 0);
    finish(ws, &r, &c);

    frame(&c, FIN | RSV1 | OP_PING, "a", 1); /* never on control frames */
    ws = session(&r, 0);
    bl_ws_allow_rsv1(ws);
    CHECK(feed(ws, &c) == 0 && OUT_IS(ws, CLOSE_1002));
    finish(ws, &r, &c);

    frame(&c, FIN | RSV2 | OP_TEXT, "a", 1); /* RSV2 stays forbidden */
    ws = session(&r, 0);
    bl_ws_allow_rsv1(ws);
    CHECK(feed(ws, &c) == 0 && OUT_IS(ws, CLOSE_1002));
    finish(ws, &r, &c);
}

/* ---- closing handshake ---- */

static void test_client_close(void)
{
    rec_t r;
    bytes_t b = {0};
    bl_ws_t *ws = session(&r, 0);
    close_frame(&b, 1000, "", 0);
    CHECK(feed(ws, &b) == 0);
    CHECK(r.closes == 1 && r.code == 1000 && r.reason_len == 0);
    CHECK(OUT_IS(ws, CLOSE_1000));
    CHECK(bl_ws_close_received(ws) && bl_ws_close_sent(ws));
    CHECK(bl_ws_close_code_received(ws) == 1000 && bl_ws_close_code_sent(ws) == 1000);
    CHECK(!bl_ws_want_read(ws) && !bl_ws_want_write(ws) && bl_ws_done(ws));
    CHECK(bl_ws_send_text(ws, "late", 4) == -EPIPE);
    CHECK(bl_ws_close(ws, 1000, NULL, 0) == -EPIPE);
    finish(ws, &r, &b);

    /* With a reason: echoed. */
    ws = session(&r, 0);
    close_frame(&b, 4001, "bye \xe2\x82\xac", 7);
    CHECK(feed(ws, &b) == 0);
    CHECK(r.closes == 1 && r.code == 4001 && r.reason_len == 7);
    CHECK(memcmp(r.reason, "bye \xe2\x82\xac", 7) == 0);
    CHECK(OUT_IS(ws, "\x88\x09\x0f\xa1"
                     "bye \xe2\x82\xac"));
    finish(ws, &r, &b);

    /* Empty close: reported as 1005, answered with an empty close. */
    ws = session(&r, 0);
    frame(&b, FIN | OP_CLOSE, "", 0);
    CHECK(feed(ws, &b) == 0);
    CHECK(r.closes == 1 && r.code == 1005 && bl_ws_close_code_received(ws) == 1005);
    CHECK(OUT_IS(ws, "\x88\x00") && bl_ws_done(ws));
    finish(ws, &r, &b);

    /* Valid codes are accepted; anything after the close is ignored. */
    static const uint16_t good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009,
                                    1010, 1011, 3000, 3999, 4000, 4999};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ws = session(&r, 0);
        close_frame(&b, good[i], "", 0);
        frame(&b, FIN | OP_TEXT, "after", 5);
        CHECK(feed(ws, &b) == 0 && r.closes == 1 && r.code == good[i] && r.messages == 0);
        CHECK(bl_ws_close_code_sent(ws) == good[i]);
        finish(ws, &r, &b);
    }
}

static void test_server_close(void)
{
    rec_t r;
    bytes_t b = {0};
    bl_ws_t *ws = session(&r, 0);
    CHECK(bl_ws_close(ws, 1005, NULL, 0) == -EINVAL);
    CHECK(bl_ws_close(ws, 2000, NULL, 0) == -EINVAL);
    CHECK(bl_ws_close(ws, 1000, "bye", 3) == 0);
    CHECK(OUT_IS(ws, "\x88\x05\x03\xe8"
                     "bye"));
    CHECK(bl_ws_close_sent(ws) && !bl_ws_close_received(ws));
    CHECK(bl_ws_want_read(ws) && !bl_ws_done(ws)); /* waiting for the peer's close */
    CHECK(bl_ws_send_text(ws, "x", 1) == -EPIPE);
    CHECK(bl_ws_close(ws, 1000, NULL, 0) == -EPIPE);
    /* Messages still in flight from the peer are delivered. */
    frame(&b, FIN | OP_TEXT, "in flight", 9);
    close_frame(&b, 1000, "", 0);
    CHECK(feed(ws, &b) == 0);
    CHECK(r.messages == 1 && r.closes == 1 && r.code == 1000);
    CHECK(OUT_IS(ws, "") && bl_ws_close_received(ws) && bl_ws_done(ws));
    finish(ws, &r, &b);

    /* Code 0: an empty close. */
    ws = session(&r, 0);
    CHECK(bl_ws_close(ws, 0, "ignored", 7) == 0);
    CHECK(OUT_IS(ws, "\x88\x00") && bl_ws_close_code_sent(ws) == 1005);
    finish(ws, &r, &b);
}

static void test_close_reason_cut(void)
{
    rec_t r;
    bytes_t b = {0};
    char reason[200];
    /* 122 ASCII bytes then a 3-byte character: cut before it (122 bytes). */
    memset(reason, 'r', 122);
    memcpy(reason + 122, "\xe2\x82\xac", 3);
    memset(reason + 125, 's', 75);
    bl_ws_t *ws = session(&r, 0);
    CHECK(bl_ws_close(ws, 1001, reason, sizeof(reason)) == 0);
    uint8_t *out;
    size_t n;
    bl_ws_take_output(ws, &out, &n);
    CHECK(n == 2 + 2 + 122 && out[1] == 124 && memcmp(out + 4, reason, 122) == 0);
    free(out);
    finish(ws, &r, &b);
    /* Exactly 123 ASCII bytes fit. */
    ws = session(&r, 0);
    memset(reason, 'r', sizeof(reason));
    CHECK(bl_ws_close(ws, 1001, reason, sizeof(reason)) == 0);
    CHECK(bl_ws_output_len(ws) == 2 + 125);
    finish(ws, &r, &b);
}

/* ---- ping / pong ---- */

static void test_ping_pong(void)
{
    rec_t r;
    bytes_t b = {0};
    uint8_t big[126] = {0};
    bl_ws_t *ws = session(&r, 0);
    CHECK(bl_ws_send_ping(ws, "t1", 2) == 0);
    CHECK(OUT_IS(ws, "\x89\x02t1"));
    CHECK(bl_ws_send_ping(ws, big, 126) == -EINVAL);
    CHECK(bl_ws_pongs(ws) == 0);
    frame(&b, FIN | OP_PONG, "t1", 2);
    CHECK(feed(ws, &b) == 0 && r.pongs == 1 && bl_ws_pongs(ws) == 1);
    CHECK(OUT_IS(ws, ""));
    b.len = 0;
    frame(&b, FIN | OP_PING, big, 125);
    CHECK(feed(ws, &b) == 0);
    uint8_t *out;
    size_t n;
    bl_ws_take_output(ws, &out, &n);
    CHECK(n == 127 && out[0] == 0x8a && out[1] == 125);
    free(out);
    finish(ws, &r, &b);
}

/* ---- robustness ---- */

static uint32_t rng = 2463534242u;
static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

#define CLOSE_DONE                                                                                 \
    "\x88\x06\x03\xe8"                                                                             \
    "done"

static bool ends_with(const uint8_t *p, size_t len, const char *tail, size_t n)
{
    return len >= n && memcmp(p + len - n, tail, n) == 0;
}

/* A stream of valid frames fed in random pieces gives the same messages as
 * fed whole, and the same close. */
static void test_random_splits(void)
{
    uint8_t payload[300];
    for (int iter = 0; iter < 300; iter++) {
        bytes_t in = {0}, log1 = {0}, log2 = {0};
        int nframes = 1 + (int)(next_rand() % 12);
        bool open = false;
        for (int f = 0; f < nframes; f++) {
            size_t len = next_rand() % 3 == 0 ? next_rand() % 300 : next_rand() % 20;
            for (size_t k = 0; k < len; k++)
                payload[k] = (uint8_t)('a' + next_rand() % 26);
            uint32_t kind = next_rand() % 4;
            if (kind == 0) {
                frame(&in, FIN | OP_PING, payload, len % 126);
            } else {
                bool fin = next_rand() % 2;
                uint8_t op = open ? OP_CONT : (next_rand() % 2 ? OP_TEXT : OP_BIN);
                frame(&in, (uint8_t)((fin ? FIN : 0) | op), payload, len);
                open = !fin;
            }
        }
        if (open)
            frame(&in, FIN | OP_CONT, "", 0);
        close_frame(&in, 1000, "done", 4);

        rec_t r1, r2;
        bl_ws_t *a = session(&r1, 0), *b = session(&r2, 0);
        r1.log = &log1;
        r2.log = &log2;
        CHECK(feed(a, &in) == 0);
        for (size_t off = 0; off < in.len;) {
            size_t n = 1 + next_rand() % 40;
            if (n > in.len - off)
                n = in.len - off;
            CHECK(bl_ws_feed(b, in.p + off, n) == 0);
            off += n;
        }
        uint8_t *o1, *o2;
        size_t n1, n2;
        bl_ws_take_output(a, &o1, &n1);
        bl_ws_take_output(b, &o2, &n2);
        CHECK(r1.closes == 1 && r2.closes == 1 && bl_ws_done(a) && bl_ws_done(b));
        CHECK(log1.len == log2.len && (log1.len == 0 || memcmp(log1.p, log2.p, log1.len) == 0));
        /* Pongs may differ: wslay drops unsent ones once a close is queued,
         * and fed whole, the close arrives before anything is written. */
        CHECK(ends_with(o1, n1, CLOSE_DONE, 8) && ends_with(o2, n2, CLOSE_DONE, 8));
        free(o1);
        free(o2);
        finish(a, &r1, &in);
        finish(b, &r2, &log1);
        free(log2.p);
    }
}

/* Random bytes (with a valid-looking start) never crash the session, and
 * whatever it writes is a sequence of server frames ending in a close. */
static void test_garbage(void)
{
    uint8_t buf[96];
    for (int iter = 0; iter < 20000; iter++) {
        rec_t r;
        bl_ws_t *ws = session(&r, iter % 2 ? 0 : 64);
        for (size_t k = 0; k < sizeof(buf); k++)
            buf[k] = (uint8_t)next_rand();
        buf[0] = (uint8_t)((buf[0] & 0xcf) | 0x80);
        buf[1] |= 0x80;
        size_t off = 0;
        while (off < sizeof(buf)) {
            size_t n = 1 + next_rand() % 32;
            if (n > sizeof(buf) - off)
                n = sizeof(buf) - off;
            CHECK(bl_ws_feed(ws, buf + off, n) == 0);
            off += n;
        }
        uint8_t *o;
        size_t n;
        bl_ws_take_output(ws, &o, &n);
        if (!bl_ws_want_read(ws))
            CHECK(n >= 2 && bl_ws_close_sent(ws));
        free(o);
        bl_ws_free(ws);
        free(r.data);
    }
}

/* ---- sleeping between messages ---- */

/* Two sweeps in a row without use: the first only clears the "used" mark. */
static bool sweep_twice(bl_ws_t *ws)
{
    bl_ws_sleep_if_idle(ws);
    return bl_ws_sleep_if_idle(ws);
}

static void test_sleep_between_messages(void)
{
    rec_t r;
    bytes_t b = {0};
    bl_ws_t *ws = session(&r, 0);
    CHECK(bl_ws_sleeping(ws)); /* no framing state until the first frame */
    CHECK(bl_ws_want_read(ws) && !bl_ws_want_write(ws) && !bl_ws_done(ws));
    CHECK(!bl_ws_close_sent(ws) && bl_ws_close_code_sent(ws) == 1006);

    frame(&b, FIN | OP_TEXT, "hi", 2);
    CHECK(feed(ws, &b) == 0 && r.messages == 1 && !bl_ws_sleeping(ws));
    CHECK(!bl_ws_sleep_if_idle(ws)); /* used since the last sweep */
    CHECK(bl_ws_sleep_if_idle(ws) && bl_ws_sleeping(ws));

    /* Asleep, it still answers pings, takes messages, sends. */
    b.len = 0;
    frame(&b, FIN | OP_PING, "p", 1);
    frame(&b, FIN | OP_TEXT, "again", 5);
    CHECK(feed(ws, &b) == 0 && r.messages == 2 && r.len == 5 && memcmp(r.data, "again", 5) == 0);
    CHECK(OUT_IS(ws, "\x8a\x01p"));
    CHECK(sweep_twice(ws));
    CHECK(bl_ws_send_text(ws, "out", 3) == 0 && OUT_IS(ws, "\x81\x03out"));
    CHECK(sweep_twice(ws));

    /* Never inside a fragmented message or a frame. */
    b.len = 0;
    frame(&b, OP_TEXT, "Hel", 3);
    CHECK(feed(ws, &b) == 0 && !sweep_twice(ws));
    b.len = 0;
    frame(&b, FIN | OP_CONT, "lo", 2);
    CHECK(bl_ws_feed(ws, b.p, 3) == 0 && !sweep_twice(ws));
    CHECK(bl_ws_feed(ws, b.p + 3, b.len - 3) == 0 && r.messages == 3 && r.len == 5);
    CHECK(memcmp(r.data, "Hello", 5) == 0);
    CHECK(sweep_twice(ws));

    /* UTF-8 is still checked across fragments after a sleep. */
    b.len = 0;
    frame(&b, OP_TEXT, "\xc3", 1);
    frame(&b, FIN | OP_CONT, "\xa9", 1);
    CHECK(feed(ws, &b) == 0 && r.messages == 4 && r.len == 2);
    CHECK(sweep_twice(ws));

    /* Not once a close has begun: its state lives in wslay. */
    b.len = 0;
    close_frame(&b, 1000, "", 0);
    CHECK(feed(ws, &b) == 0 && r.closes == 1 && OUT_IS(ws, CLOSE_1000));
    CHECK(!sweep_twice(ws) && bl_ws_close_code_received(ws) == 1000 && bl_ws_close_sent(ws));
    finish(ws, &r, &b);

    /* RSV1 stays allowed across a sleep (permessage-deflate). */
    ws = session(&r, 0);
    bl_ws_allow_rsv1(ws);
    frame(&b, FIN | OP_TEXT, "a", 1);
    CHECK(feed(ws, &b) == 0 && sweep_twice(ws));
    b.len = 0;
    frame(&b, FIN | RSV1 | OP_TEXT, "\xff", 1);
    CHECK(feed(ws, &b) == 0 && r.messages == 2 && OUT_IS(ws, ""));
    finish(ws, &r, &b);

    /* A protocol error after a sleep still fails the connection. */
    ws = session(&r, 0);
    frame(&b, FIN | OP_TEXT, "a", 1);
    CHECK(feed(ws, &b) == 0 && sweep_twice(ws));
    b.len = 0;
    frame(&b, FIN | RSV2 | OP_TEXT, "a", 1);
    CHECK(feed(ws, &b) == 0 && OUT_IS(ws, CLOSE_1002) && r.messages == 1);
    finish(ws, &r, &b);
}

/* Text frames reach wslay relabelled binary (ws.c relabel): thousands of
 * messages of both kinds in one read, whole or a byte at a time, keep their
 * kinds and order; text is still UTF-8 checked, compressed text is not. */
static void test_text_relabel_keeps_kinds(void)
{
    rec_t r;
    bytes_t b = {0}, log = {0}, want = {0};
    bl_ws_t *ws = session(&r, 0);
    r.log = &log;
    for (int i = 0; i < 3000; i++) {
        char msg[16];
        int n = snprintf(msg, sizeof(msg), "m%d", i);
        bool text = i % 3 != 1;
        if (i % 7 == 0) { /* fragmented, with a ping inside */
            frame(&b, text ? OP_TEXT : OP_BIN, msg, 1);
            frame(&b, FIN | OP_PING, "", 0);
            frame(&b, FIN | OP_CONT, msg + 1, (size_t)n - 1);
        } else {
            frame(&b, FIN | (text ? OP_TEXT : OP_BIN), msg, (size_t)n);
        }
        put_byte(&want, text ? BL_WS_TEXT : BL_WS_BINARY);
        put(&want, msg, (size_t)n);
    }
    CHECK(feed(ws, &b) == 0 && r.messages == 3000);
    CHECK(log.len == want.len && memcmp(log.p, want.p, want.len) == 0);
    bl_ws_free(ws);
    free(r.data);

    ws = session(&r, 0);
    log.len = 0;
    r.log = &log;
    for (size_t i = 0; i < b.len; i++)
        bl_ws_feed(ws, b.p + i, 1);
    CHECK(r.messages == 3000 && log.len == want.len && memcmp(log.p, want.p, want.len) == 0);
    bl_ws_free(ws);
    free(r.data);

    /* invalid UTF-8 inside a long text message split over many reads: 1007,
     * with nothing after it delivered */
    ws = session(&r, 0);
    b.len = 0;
    uint8_t big[70000];
    memset(big, 'a', sizeof(big));
    big[40000] = 0xc0; /* never valid */
    frame(&b, FIN | OP_TEXT, big, sizeof(big));
    frame(&b, FIN | OP_TEXT, "after", 5);
    for (size_t off = 0; off < b.len; off += 1000)
        bl_ws_feed(ws, b.p + off, b.len - off < 1000 ? b.len - off : 1000);
    CHECK(r.messages == 0 && OUT_IS(ws, CLOSE_1007));
    bl_ws_free(ws);
    free(r.data);

    /* a text message that ends inside a character: 1007 */
    ws = session(&r, 0);
    b.len = 0;
    frame(&b, OP_TEXT, "ok \xe2\x82", 5);
    frame(&b, FIN | OP_CONT, "", 0);
    CHECK(feed(ws, &b) == 0 && r.messages == 0 && OUT_IS(ws, CLOSE_1007));
    bl_ws_free(ws);
    free(r.data);
    free(log.p);
    free(want.p);
    free(b.p);
}

int main(void)
{
    RUN(test_text_and_binary);
    RUN(test_lengths_16_and_64);
    RUN(test_fragments_with_ping);
    RUN(test_reply_from_callback);
    RUN(test_max_size_single_frame);
    RUN(test_max_size_fragments);
    RUN(test_max_size_huge_header);
    RUN(test_max_frame_size);
    RUN(test_hold_fault);
    RUN(test_invalid_utf8_one_frame);
    RUN(test_invalid_utf8_across_fragments);
    RUN(test_protocol_errors);
    RUN(test_protocol_error_split_feeds);
    RUN(test_rsv1_hook);
    RUN(test_client_close);
    RUN(test_server_close);
    RUN(test_close_reason_cut);
    RUN(test_ping_pong);
    RUN(test_random_splits);
    RUN(test_garbage);
    RUN(test_sleep_between_messages);
    RUN(test_text_relabel_keeps_kinds);
    return check_report();
}
