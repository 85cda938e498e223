/* HTTP/1.1 through the I/O thread alone (fake_app.h): one test per behaviour. */
#include "fake_app.h"

/* ---- tests ----------------------------------------------------------------- */

static const char *const hdrs_hello[] = {"content-length", "5", "date", "x", NULL};
static const char resp_hello[] = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ndate: x\r\n\r\nhello";

/* A GET becomes one REQUEST with its head; the app's response is written as sent. */
static void test_get(void)
{
    int fd = client_connect();
    if (fd < 0)
        return;
    client_send(fd, "GET /a/b?q=1 HTTP/1.1\r\nHost: t\r\nX-Y: z\r\n\r\n", 43);
    bl_event_t *ev = up_expect(BL_EV_REQUEST);
    if (ev != NULL) {
        bl_exchange_t *ex = ev->ex;
        CHECK_EQ_INT(ex->kind, BL_KIND_HTTP);
        CHECK_EQ_STR(ex->head->method, "GET");
        CHECK_MEM_STR(ex->head->buf + ex->head->path_off, ex->head->path_len, "/a/b");
        CHECK_MEM_STR(ex->head->buf + ex->head->query_off, ex->head->query_len, "q=1");
        size_t vlen = 0;
        const char *v = bl_head_find(ex->head, "x-y", &vlen);
        CHECK(v != NULL && vlen == 1 && v[0] == 'z');
        CHECK_EQ_STR(ex->client_host, "127.0.0.1");
        CHECK_EQ_INT(ex->server_port, port);
        CHECK_EQ_INT(ev->len, 0);
        post_response(ex, 200, hdrs_hello, "hello", 5, false);
        client_expect(fd, resp_hello);
        bl_event_free(ev);
    }
    close(fd);
    /* Closed between requests: nothing runs, so nothing is posted. */
}

/* Keep-alive: a second request on the same connection is a second REQUEST. */
static void test_keepalive(void)
{
    int fd = client_connect();
    if (fd < 0)
        return;
    for (int i = 0; i < 2; i++) {
        client_send(fd, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", 27);
        bl_event_t *ev = up_expect(BL_EV_REQUEST);
        if (ev == NULL)
            break;
        CHECK(ev->ex->head->keep_alive);
        post_response(ev->ex, 200, hdrs_hello, "hello", 5, false);
        client_expect(fd, resp_hello);
        bl_event_free(ev);
    }
    close(fd);
}

/* Connection: close from the client: the response is written, then the connection closes. */
static void test_connection_close(void)
{
    int fd = client_connect();
    if (fd < 0)
        return;
    client_send(fd, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 46);
    bl_event_t *ev = up_expect(BL_EV_REQUEST);
    if (ev != NULL) {
        CHECK(!ev->ex->head->keep_alive);
        post_response(ev->ex, 200, hdrs_hello, "hello", 5, false);
        client_expect(fd, "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ndate: x\r\n"
                          "connection: close\r\n\r\nhello");
        CHECK(client_sees_eof(fd));
        bl_event_free(ev);
    }
    close(fd);
}

/* A streamed response: RESPONSE with MORE, then SEND_BODY parts, chunked on the wire. */
static void test_streamed(void)
{
    int fd = client_connect();
    if (fd < 0)
        return;
    client_send(fd, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", 27);
    bl_event_t *ev = up_expect(BL_EV_REQUEST);
    if (ev != NULL) {
        static const char *const hdrs[] = {"date", "x", NULL};
        post_response(ev->ex, 200, hdrs, "ab", 2, true);
        post_body(ev->ex, "cde", 3, true);
        post_body(ev->ex, "", 0, false);
        client_expect(fd, "HTTP/1.1 200 OK\r\ndate: x\r\ntransfer-encoding: chunked\r\n\r\n"
                          "2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n");
        bl_event_free(ev);
    }
    close(fd);
}

/* A POST body arrives as the REQUEST's first bytes and BODY events, byte-exact. */
static void test_post_body(void)
{
    int fd = client_connect();
    if (fd < 0)
        return;
    enum { N = 100000 };
    char *body = malloc(N), *seen = malloc(N);
    if (!CHECK(body != NULL && seen != NULL)) {
        free(body);
        free(seen);
        close(fd);
        return;
    }
    for (size_t i = 0; i < N; i++)
        body[i] = (char)('a' + i % 26);
    char head[128];
    int hl = snprintf(head, sizeof(head),
                      "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n", N);
    client_send(fd, head, (size_t)hl);
    client_send(fd, body, N);
    size_t got = 0;
    bool last = false;
    bl_event_t *req = up_expect(BL_EV_REQUEST);
    if (req != NULL) {
        CHECK_EQ_STR(req->ex->head->method, "POST");
        memcpy(seen, req->data, req->len);
        got = req->len;
        last = !(req->flags & BL_EVF_MORE);
        consume(req);
        unsigned nbody = 0;
        while (!last && got <= N) {
            bl_event_t *ev = up_expect(BL_EV_BODY);
            if (ev == NULL)
                break;
            nbody++;
            if (CHECK(got + ev->len <= N))
                memcpy(seen + got, ev->data, ev->len);
            got += ev->len;
            last = !(ev->flags & BL_EVF_MORE);
            consume(ev);
            bl_event_free(ev);
        }
        CHECK(last);
        CHECK_MEM(seen, got, body, (size_t)N);
        post_response(req->ex, 200, hdrs_hello, "hello", 5, false);
        client_expect(fd, resp_hello);
        bl_event_free(req);
    }
    free(body);
    free(seen);
    close(fd);
}

/* The client leaving while the app runs posts DISCONNECT for its exchange. */
static void test_disconnect(void)
{
    int fd = client_connect();
    if (fd < 0)
        return;
    client_send(fd, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", 27);
    bl_event_t *req = up_expect(BL_EV_REQUEST);
    close(fd);
    if (req == NULL)
        return;
    bl_event_t *ev = up_expect(BL_EV_DISCONNECT);
    if (ev != NULL) {
        CHECK(ev->ex == req->ex);
        bl_event_free(ev);
    }
    /* The app ends anyway; its response goes nowhere. */
    post_response(req->ex, 200, hdrs_hello, "hello", 5, false);
    bl_event_free(req);
}

/* An app that returns without a response: the I/O thread answers 500 itself. */
static void test_finish_without_response(void)
{
    int fd = client_connect();
    if (fd < 0)
        return;
    client_send(fd, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", 27);
    bl_event_t *req = up_expect(BL_EV_REQUEST);
    if (req != NULL) {
        post_simple(req->ex, BL_EV_FINISH, 0);
        char buf[13];
        size_t got = client_recv(fd, buf, 12);
        buf[got] = '\0';
        CHECK_EQ_STR(buf, "HTTP/1.1 500");
        bl_event_free(req);
    }
    close(fd);
}

/* Read-ahead: with the app taking nothing, reading stops once BL_BODY_HIGH_WATER
 * is held (the client's sends stall); CONSUMED resumes it. */
static void test_readahead(void)
{
    int fd = client_connect();
    if (fd < 0)
        return;
    enum { N = 8 * 1024 * 1024 };
    char head[128];
    int hl = snprintf(head, sizeof(head),
                      "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n", N);
    client_send(fd, head, (size_t)hl);
    bl_event_t *req = up_expect(BL_EV_REQUEST);
    if (req == NULL) {
        close(fd);
        return;
    }
    static char chunk[65536];
    memset(chunk, 'x', sizeof(chunk));
    size_t sent = 0;
    /* Non-blocking sends until the kernel's buffers are full: the server stopped reading. */
    for (;;) {
        ssize_t n = send(fd, chunk, sizeof(chunk), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
            if (sent >= N)
                break;
            continue;
        }
        if (!CHECK(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
            break;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 500) == 0)
            break; /* no room for half a second: stalled */
    }
    CHECK(sent < N);
    /* What reached the app is bounded by the high-water mark. */
    size_t got = req->len, held = bl_event_readahead(req);
    bl_event_t *pending = NULL, **tail = &pending;
    for (;;) {
        struct pollfd p = {.fd = bl_bridge.up_fd, .events = POLLIN};
        if (taken == NULL && poll(&p, 1, 200) == 0)
            break;
        bl_event_t *ev = up_expect(BL_EV_BODY);
        if (ev == NULL)
            break;
        got += ev->len;
        held += bl_event_readahead(ev);
        *tail = ev;
        tail = &ev->next;
    }
    CHECK(held <= BL_BODY_HIGH_WATER + sizeof(chunk));
    CHECK(got < sent);
    /* Taking everything resumes reading: the rest of the body arrives. */
    consume(req);
    for (bl_event_t *ev = pending; ev != NULL;) {
        bl_event_t *next = ev->next;
        consume(ev);
        bl_event_free(ev);
        ev = next;
    }
    bool last = false;
    while (!last) {
        /* Keep the client's bytes flowing while the app keeps consuming. */
        if (sent < N) {
            ssize_t n = send(fd, chunk, N - sent < sizeof(chunk) ? N - sent : sizeof(chunk),
                             MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
        }
        bl_event_t *ev = up_next();
        if (!CHECK(ev != NULL))
            break;
        CHECK_EQ_INT(ev->type, BL_EV_BODY);
        got += ev->len;
        last = !(ev->flags & BL_EVF_MORE);
        consume(ev);
        bl_event_free(ev);
    }
    CHECK_EQ_INT(got, N);
    post_response(req->ex, 200, hdrs_hello, "hello", 5, false);
    client_expect(fd, resp_hello);
    bl_event_free(req);
    close(fd);
}

int main(void)
{
    if (server_up() == 0) {
        test_get();
        test_keepalive();
        test_connection_close();
        test_streamed();
        test_post_body();
        test_disconnect();
        test_finish_without_response();
        test_readahead();
    }
    server_down();
    return check_report();
}
