/* Close frames cut anywhere by TCP (gateway/proto/ws.c): wslay 1.1.1 checks a close
 * reason's UTF-8 per read chunk, so ws.c must hand it each close frame in one
 * read. A valid reason split inside a character is the same close; a bad one
 * still fails, with the guard's 1002 as when it arrives whole. */
#include "bayleaf/proto/ws.h"
#include "check.h"
#include "ws_frames.h"

#define RUN(fn) check_isolated(#fn, fn, NULL)

typedef struct {
    int messages, closes;
    uint16_t code;
    uint8_t reason[125];
    size_t reason_len;
} rec_t;

static void on_message(bl_ws_t *ws, int opcode, const uint8_t *data, size_t len)
{
    rec_t *r = bl_ws_data(ws);
    (void)opcode;
    (void)data;
    (void)len;
    r->messages++;
}

static void on_close(bl_ws_t *ws, uint16_t code, const uint8_t *reason, size_t len)
{
    rec_t *r = bl_ws_data(ws);
    r->closes++;
    r->code = code;
    memcpy(r->reason, reason, len);
    r->reason_len = len;
}

static const bl_ws_callbacks_t callbacks = {on_message, on_close, NULL};

/* Feeds b in pieces ending at cuts[] (ascending, then the rest); returns the
 * close code the server sent (0 if none) and fills r. */
static uint16_t run(const bytes_t *b, const size_t *cuts, size_t ncuts, rec_t *r)
{
    bl_ws_t *ws;
    memset(r, 0, sizeof(*r));
    if (bl_ws_new(&ws, &callbacks, NULL, r) != 0)
        abort();
    size_t off = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : b->len;
        CHECK(bl_ws_feed(ws, b->p + off, end - off) == 0);
        off = end;
    }
    uint16_t sent = bl_ws_close_sent(ws) ? bl_ws_close_code_sent(ws) : 0;
    if (sent != 0)
        CHECK(!bl_ws_want_read(ws));
    bl_ws_free(ws);
    return sent;
}

static uint16_t run_bytewise(const bytes_t *b, rec_t *r)
{
    size_t *cuts = malloc(b->len * sizeof(*cuts));
    for (size_t i = 0; i < b->len; i++)
        cuts[i] = i + 1;
    uint16_t sent = run(b, cuts, b->len - 1, r);
    free(cuts);
    return sent;
}

#define REASON "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" /* "été € 😀" */

static void test_utf8_reason_byte_by_byte(void)
{
    bytes_t b = {0};
    rec_t r;
    close_frame(&b, 4001, REASON, sizeof(REASON) - 1);
    CHECK_EQ_INT(run_bytewise(&b, &r), 4001);
    CHECK(r.closes == 1 && r.code == 4001);
    CHECK_MEM(r.reason, r.reason_len, REASON, sizeof(REASON) - 1);
    free(b.p);
}

static void test_utf8_reason_every_two_way_split(void)
{
    bytes_t b = {0};
    rec_t r;
    close_frame(&b, 1000, REASON, sizeof(REASON) - 1);
    for (size_t cut = 1; cut < b.len; cut++) {
        if (!check_result(run(&b, &cut, 1, &r) == 1000 && r.closes == 1 && r.code == 1000 &&
                              r.reason_len == sizeof(REASON) - 1,
                          __FILE__, __LINE__, "close split in two"))
            fprintf(stderr, "    cut at %zu\n", cut);
    }
    free(b.p);
}

/* As when it arrives whole (test_ws.c: test_protocol_errors): 1002, not accepted. */
static void test_bad_utf8_reason_byte_by_byte(void)
{
    static const struct {
        const char *s;
        size_t len;
    } bad[] = {
        {"ok\xc0\xaf", 4},          /* overlong */
        {"\xed\xa0\x80", 3},        /* surrogate */
        {"\xe2\x82", 2},            /* truncated at the end */
        {"\xe2\x82(", 3},           /* broken character */
        {"\xf4\x90\x80\x80", 4},    /* > U+10FFFF */
        {"abc\xe2\x82\xac\xff", 7}, /* bad after a good one */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bytes_t b = {0};
        rec_t r;
        close_frame(&b, 1000, bad[i].s, bad[i].len);
        uint16_t whole = run(&b, NULL, 0, &r);
        uint16_t bytewise = run_bytewise(&b, &r);
        if (!check_result(whole == 1002 && bytewise == 1002 && r.closes == 0, __FILE__, __LINE__,
                          "bad close reason fails the same fed byte by byte"))
            fprintf(stderr, "    case %zu: whole %u, byte by byte %u\n", i, whole, bytewise);
        free(b.p);
    }
}

/* Frames before the close in the same read are delivered; the close is whole
 * once its second read comes, cut inside a character of its reason. */
static void test_frames_then_split_close(void)
{
    bytes_t b = {0};
    rec_t r;
    frame(&b, FIN | OP_TEXT, "hello", 5);
    frame(&b, OP_TEXT, "par", 3);
    frame(&b, FIN | OP_PING, "p", 1);
    frame(&b, FIN | 0, "t", 1); /* continuation: "part" */
    frame(&b, FIN | OP_BIN, "\xff", 1);
    size_t close_at = b.len;
    close_frame(&b, 3000, REASON, sizeof(REASON) - 1);
    for (size_t cut = close_at; cut < b.len; cut++) {
        uint16_t sent = run(&b, &cut, 1, &r);
        if (!check_result(sent == 3000 && r.messages == 3 && r.closes == 1 && r.code == 3000 &&
                              r.reason_len == sizeof(REASON) - 1,
                          __FILE__, __LINE__, "frames, then a close in two reads"))
            fprintf(stderr, "    cut %zu bytes into the close: sent %u, %d messages\n",
                    cut - close_at, sent, r.messages);
    }
    /* Frames after the close, in its second read, are never delivered. */
    size_t cut = close_at + 9;
    frame(&b, FIN | OP_TEXT, "late", 4);
    CHECK(run(&b, &cut, 1, &r) == 3000 && r.messages == 3 && r.closes == 1);
    free(b.p);
}

/* One read holding a close frame past wslay's 4 KiB input buffer: it still
 * gets the frame in one piece. */
static void test_close_across_wslay_reads(void)
{
    static uint8_t big[4200];
    memset(big, 'b', sizeof(big));
    for (size_t len = 3900; len < 4100; len++) {
        bytes_t b = {0};
        rec_t r;
        frame(&b, FIN | OP_BIN, big, len);
        close_frame(&b, 1001, REASON, sizeof(REASON) - 1);
        uint16_t sent = run(&b, NULL, 0, &r);
        if (!check_result(sent == 1001 && r.messages == 1 && r.closes == 1 &&
                              r.reason_len == sizeof(REASON) - 1,
                          __FILE__, __LINE__, "close past 4 KiB"))
            fprintf(stderr, "    data frame of %zu bytes: sent %u\n", len, sent);
        /* The same, the close's start held back to the next read. */
        size_t cut = b.len - 5;
        sent = run(&b, &cut, 1, &r);
        if (!check_result(sent == 1001 && r.messages == 1 && r.closes == 1, __FILE__, __LINE__,
                          "close past 4 KiB, split"))
            fprintf(stderr, "    data frame of %zu bytes: sent %u\n", len, sent);
        free(b.p);
    }
}

int main(void)
{
    RUN(test_utf8_reason_byte_by_byte);
    RUN(test_utf8_reason_every_two_way_split);
    RUN(test_bad_utf8_reason_byte_by_byte);
    RUN(test_frames_then_split_close);
    RUN(test_close_across_wslay_reads);
    return check_report();
}
