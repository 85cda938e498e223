/* WebSocket through the I/O thread alone (fake_app.h): the handshake, messages
 * both ways, and either side closing, one test per behaviour. */
#include "fake_app.h"
#include "ws_frames.h"

static const char upgrade[] = "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/* Reads a response head up to its blank line into buf (NUL-terminated). */
static void client_head(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    buf[0] = '\0';
    while (got + 1 < cap && (got < 4 || memcmp(buf + got - 4, "\r\n\r\n", 4) != 0)) {
        if (recv(fd, buf + got, 1, 0) != 1)
            break;
        buf[++got] = '\0';
    }
}

/* Reads one unmasked server frame (payload under 126 bytes): its first byte,
 * or -1. */
static int client_frame(int fd, char *payload, size_t *len)
{
    uint8_t h[2];
    if (client_recv(fd, (char *)h, 2) != 2 || !CHECK((h[1] & 0x80) == 0) || !CHECK(h[1] < 126))
        return -1;
    *len = h[1];
    if (client_recv(fd, payload, *len) != *len)
        return -1;
    return h[0];
}

static void client_frame_send(int fd, uint8_t b0, const void *payload, size_t len)
{
    bytes_t b = {0};
    frame_ex(&b, b0, true, LEN_MIN, payload, len);
    client_send(fd, (const char *)b.p, b.len);
    free(b.p);
}

/* Upgrades a new connection and accepts it: the REQUEST event, or NULL. */
static bl_event_t *ws_open(int *fdp)
{
    int fd = *fdp = client_connect();
    if (fd < 0)
        return NULL;
    client_send(fd, upgrade, sizeof(upgrade) - 1);
    bl_event_t *req = up_expect(BL_EV_REQUEST);
    if (req == NULL)
        return NULL;
    CHECK_EQ_INT(req->ex->kind, BL_KIND_WEBSOCKET);
    bl_event_t *ev = bl_event_new(BL_EV_WS_ACCEPT, req->ex, 0);
    if (!CHECK(ev != NULL))
        return req;
    bl_bridge_post_down(ev);
    char head[1024];
    client_head(fd, head, sizeof(head));
    /* RFC 6455's own example key and answer. */
    CHECK_EQ_STR(head,
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                 "\r\n");
    return req;
}

static void ws_send(bl_exchange_t *ex, const char *data, size_t len, unsigned flags)
{
    bl_event_t *ev = bl_event_new(BL_EV_WS_SEND, ex, len);
    if (!CHECK(ev != NULL))
        return;
    memcpy(ev->data, data, len);
    ev->len = len;
    ev->flags = (uint8_t)flags;
    atomic_fetch_add(&ex->unsent, len);
    bl_bridge_post_down(ev);
}

/* A text and a binary message arrive as WS_MESSAGE events and echo back as frames. */
static void test_echo(void)
{
    int fd;
    bl_event_t *req = ws_open(&fd);
    if (req == NULL)
        goto out;
    client_frame_send(fd, FIN | OP_TEXT, "hi", 2);
    client_frame_send(fd, FIN | OP_BIN, "\x00\xff", 2);
    char buf[128];
    size_t len;
    for (int i = 0; i < 2; i++) {
        bl_event_t *ev = up_expect(BL_EV_WS_MESSAGE);
        if (ev == NULL)
            break;
        CHECK_EQ_INT(ev->flags & BL_EVF_BINARY, i == 0 ? 0 : BL_EVF_BINARY);
        CHECK_MEM(ev->data, ev->len, i == 0 ? "hi" : "\x00\xff", 2);
        consume(ev);
        ws_send(req->ex, ev->data, ev->len, ev->flags & BL_EVF_BINARY);
        CHECK_EQ_INT(client_frame(fd, buf, &len), FIN | (i == 0 ? OP_TEXT : OP_BIN));
        CHECK_MEM(buf, len, i == 0 ? "hi" : "\x00\xff", 2);
        bl_event_free(ev);
    }
    /* The app closes: the client gets the code and reason, answers, and the
     * connection ends with a DISCONNECT. */
    bl_event_t *ev = bl_event_new(BL_EV_WS_CLOSE, req->ex, 3);
    if (CHECK(ev != NULL)) {
        memcpy(ev->data, "bye", 3);
        ev->len = 3;
        ev->status = 4000;
        bl_bridge_post_down(ev);
    }
    CHECK_EQ_INT(client_frame(fd, buf, &len), FIN | OP_CLOSE);
    CHECK_MEM(buf, len,
              "\x0f\xa0"
              "bye",
              5);
    client_frame_send(fd, FIN | OP_CLOSE, "\x0f\xa0", 2);
    post_simple(req->ex, BL_EV_FINISH, 0);
    CHECK(client_sees_eof(fd));
    if ((ev = up_expect(BL_EV_DISCONNECT)) != NULL) {
        CHECK(ev->ex == req->ex);
        bl_event_free(ev);
    }
out:
    if (req != NULL)
        bl_event_free(req);
    if (fd >= 0)
        close(fd);
}

/* The client closes with a code: the app gets it in DISCONNECT; the close is echoed. */
static void test_client_close(void)
{
    int fd;
    bl_event_t *req = ws_open(&fd);
    if (req == NULL)
        goto out;
    client_frame_send(fd, FIN | OP_CLOSE, "\x0f\xa1x", 3);
    bl_event_t *ev = up_expect(BL_EV_DISCONNECT);
    if (ev != NULL) {
        CHECK_EQ_INT(ev->status, 4001);
        CHECK_MEM(ev->data, ev->len, "x", 1);
        bl_event_free(ev);
    }
    char buf[128];
    size_t len;
    CHECK_EQ_INT(client_frame(fd, buf, &len), FIN | OP_CLOSE);
    CHECK(len >= 2 && (uint8_t)buf[0] == 0x0f && (uint8_t)buf[1] == 0xa1);
    post_simple(req->ex, BL_EV_FINISH, 0);
    CHECK(client_sees_eof(fd));
out:
    if (req != NULL)
        bl_event_free(req);
    if (fd >= 0)
        close(fd);
}

/* The client's TCP connection drops without a close frame: DISCONNECT with no
 * code (status 0), which the Python side reports to the app as 1006. */
static void test_client_drop(void)
{
    int fd;
    bl_event_t *req = ws_open(&fd);
    if (fd >= 0)
        close(fd);
    if (req == NULL)
        return;
    bl_event_t *ev = up_expect(BL_EV_DISCONNECT);
    if (ev != NULL) {
        CHECK(ev->ex == req->ex);
        CHECK_EQ_INT(ev->status, 0);
        bl_event_free(ev);
    }
    post_simple(req->ex, BL_EV_FINISH, 0);
    bl_event_free(req);
}

/* Read-ahead: messages the app has not taken stop reading at BL_BODY_HIGH_WATER
 * (the client's sends stall); CONSUMED resumes it and the rest arrives. */
static void test_readahead(void)
{
    int fd;
    bl_event_t *req = ws_open(&fd);
    if (req == NULL)
        goto out;
    enum { MSG = 60000, COUNT = 400 }; /* 24 MB: more than any socket buffers */
    static char payload[MSG];
    memset(payload, 'm', sizeof(payload));
    bytes_t frame = {0};
    frame_ex(&frame, FIN | OP_BIN, true, LEN_MIN, payload, MSG);
    size_t total = frame.len * COUNT, sent = 0;
    /* Non-blocking sends until no room is made for half a second. */
    for (;;) {
        size_t off = sent % frame.len;
        ssize_t n = send(fd, frame.p + off, frame.len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            if ((sent += (size_t)n) >= total)
                break;
            continue;
        }
        if (!CHECK(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
            break;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 500) == 0)
            break;
    }
    CHECK(sent < total);
    size_t held = 0;
    unsigned got = 0;
    bl_event_t *pending = NULL, **tail = &pending;
    for (;;) {
        struct pollfd p = {.fd = bl_bridge.up_fd, .events = POLLIN};
        if (taken == NULL && poll(&p, 1, 200) == 0)
            break;
        bl_event_t *ev = up_expect(BL_EV_WS_MESSAGE);
        if (ev == NULL)
            break;
        got++;
        held += bl_event_readahead(ev);
        *tail = ev;
        tail = &ev->next;
    }
    CHECK(got > 0);
    CHECK(held <= BL_BODY_HIGH_WATER + bl_alloc_cost(MSG) + 1024);
    for (bl_event_t *ev = pending; ev != NULL;) {
        bl_event_t *next = ev->next;
        consume(ev);
        bl_event_free(ev);
        ev = next;
    }
    /* Taking each message as it comes lets every one through. */
    while (got < COUNT) {
        if (sent < total) {
            size_t off = sent % frame.len;
            ssize_t n = send(fd, frame.p + off, frame.len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
        }
        bl_event_t *ev = up_expect(BL_EV_WS_MESSAGE);
        if (ev == NULL)
            break;
        CHECK_EQ_INT(ev->len, MSG);
        got++;
        consume(ev);
        bl_event_free(ev);
    }
    CHECK_EQ_INT(got, COUNT);
    free(frame.p);
    client_frame_send(fd, FIN | OP_CLOSE, "\x03\xe8", 2);
    bl_event_t *ev = up_expect(BL_EV_DISCONNECT);
    if (ev != NULL) {
        CHECK_EQ_INT(ev->status, 1000);
        bl_event_free(ev);
    }
    post_simple(req->ex, BL_EV_FINISH, 0);
out:
    if (req != NULL)
        bl_event_free(req);
    if (fd >= 0)
        close(fd);
}

/* The app closes before accepting: the handshake is refused with 403. */
static void test_refused(void)
{
    int fd = client_connect();
    if (fd < 0)
        return;
    client_send(fd, upgrade, sizeof(upgrade) - 1);
    bl_event_t *req = up_expect(BL_EV_REQUEST);
    if (req != NULL) {
        bl_event_t *ev = bl_event_new(BL_EV_WS_CLOSE, req->ex, 0);
        if (CHECK(ev != NULL)) {
            ev->status = 1000;
            bl_bridge_post_down(ev);
        }
        post_simple(req->ex, BL_EV_FINISH, 0);
        char head[1024];
        client_head(fd, head, sizeof(head));
        CHECK_HAS(head, "HTTP/1.1 403 ");
        bl_event_free(req);
    }
    close(fd);
}

int main(void)
{
    if (server_up() == 0) {
        test_echo();
        test_client_close();
        test_client_drop();
        test_readahead();
        test_refused();
    }
    server_down();
    return check_report();
}
