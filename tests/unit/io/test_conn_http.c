/* The I/O thread on its own: the real server on a loopback listener, with this
 * test playing the Python thread through the bridge (taking up events, posting
 * the down events an app's messages become: gateway/py/py_http.c) and a plain
 * blocking socket playing the client. One test per behaviour; every wait is
 * bounded by a poll timeout, never a sleep. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "bayleaf/bridge/bridge.h"
#include "bayleaf/io/listen.h"
#include "bayleaf/io/server.h"
#include "check.h"

#define WAIT_MS 10000

static bl_config_t cfg;
static bl_listen_set_t set;
static bl_server_t *server;
static int port;

/* ---- the fake app: the Python side of the bridge ---------------------------- */

static bl_event_t *taken, *taken_tail; /* up events taken, not yet looked at */

/* The next up event (the caller frees it), or NULL after WAIT_MS. */
static bl_event_t *up_next(void)
{
    while (taken == NULL) {
        struct pollfd p = {.fd = bl_bridge.up_fd, .events = POLLIN};
        int n = poll(&p, 1, WAIT_MS);
        if (n <= 0)
            return NULL;
        uint64_t v;
        if (read(bl_bridge.up_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
            return NULL;
        for (bl_event_t *ev = bl_bridge_take_up(); ev != NULL;) {
            bl_event_t *next = ev->next;
            ev->next = NULL;
            if (taken_tail != NULL)
                taken_tail->next = ev;
            else
                taken = ev;
            taken_tail = ev;
            ev = next;
        }
    }
    bl_event_t *ev = taken;
    taken = ev->next;
    if (taken == NULL)
        taken_tail = NULL;
    ev->next = NULL;
    return ev;
}

/* The next up event, which must be of `type`; NULL (and a failed check) otherwise. */
static bl_event_t *up_expect(int type)
{
    bl_event_t *ev = up_next();
    if (!CHECK(ev != NULL))
        return NULL;
    if (!CHECK(ev->type == type)) {
        fprintf(stderr, "    got event %d, expected %d\n", ev->type, type);
        bl_event_free(ev);
        return NULL;
    }
    return ev;
}

/* What the Python side posts for http.response.start + one http.response.body:
 * the header lines as py_http.c serialises them, the body after them. */
static void post_response(bl_exchange_t *ex, int status, const char *const *hdrs, const char *body,
                          size_t blen, bool more)
{
    bl_response_scan_t scan = {0};
    size_t size = blen;
    for (int i = 0; hdrs[i] != NULL; i += 2)
        size += strlen(hdrs[i]) + strlen(hdrs[i + 1]) + 4;
    bl_event_t *ev = bl_event_new(BL_EV_RESPONSE, ex, size);
    if (!CHECK(ev != NULL))
        return;
    char *out = ev->data;
    for (int i = 0; hdrs[i] != NULL; i += 2) {
        size_t nl = strlen(hdrs[i]), vl = strlen(hdrs[i + 1]);
        CHECK_EQ_INT(bl_response_scan_header(&scan, hdrs[i], nl, hdrs[i + 1], vl), 1);
        out += sprintf(out, "%s: %s\r\n", hdrs[i], hdrs[i + 1]);
    }
    CHECK_EQ_INT(bl_response_scan_end(&scan, status), 0);
    ev->len = (size_t)(out - ev->data);
    memcpy(out, body, blen);
    ev->len2 = blen;
    ev->status = (uint16_t)status;
    ev->flags = (uint8_t)(scan.flags | (more ? BL_EVF_MORE : 0));
    ev->aux = scan.content_length;
    atomic_fetch_add(&ex->unsent, blen);
    bl_bridge_post_down(ev);
}

static void post_body(bl_exchange_t *ex, const char *body, size_t len, bool more)
{
    bl_event_t *ev = bl_event_new(BL_EV_SEND_BODY, ex, len);
    if (!CHECK(ev != NULL))
        return;
    memcpy(ev->data, body, len);
    ev->len = len;
    ev->flags = more ? BL_EVF_MORE : 0;
    atomic_fetch_add(&ex->unsent, len);
    bl_bridge_post_down(ev);
}

static void post_simple(bl_exchange_t *ex, int type, uint64_t aux)
{
    bl_event_t *ev = bl_event_new(type, ex, 0);
    if (!CHECK(ev != NULL))
        return;
    ev->aux = aux;
    bl_bridge_post_down(ev);
}

/* The app took a body event: hand its read-ahead back, as receive() does. */
static void consume(bl_event_t *ev)
{
    size_t ra = bl_event_readahead(ev);
    if (ra > 0)
        post_simple(ev->ex, BL_EV_CONSUMED, ra);
}

/* ---- the client ------------------------------------------------------------ */

static int client_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (!CHECK(fd >= 0))
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = WAIT_MS / 1000};
    CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0);
    CHECK(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0);
    if (!CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void client_send(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
        if (!CHECK(n > 0))
            return;
        s += n;
        len -= (size_t)n;
    }
}

/* Reads exactly len bytes (or until EOF/timeout) into buf; returns how many. */
static size_t client_recv(int fd, char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(fd, buf + got, len - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

/* The client must receive exactly `want`. */
static void client_expect(int fd, const char *want)
{
    size_t len = strlen(want);
    char *buf = malloc(len + 1);
    if (!CHECK(buf != NULL))
        return;
    size_t got = client_recv(fd, buf, len);
    CHECK_MEM(buf, got, want, len);
    free(buf);
}

/* The server closes: recv sees EOF within WAIT_MS. */
static bool client_sees_eof(int fd)
{
    char c;
    return recv(fd, &c, 1, 0) == 0;
}

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

static int server_up(void)
{
    memset(&cfg, 0, sizeof(cfg));
    cfg.port = cfg.fd = cfg.unix_socket_mode = -1;
    cfg.verbosity = 0;
    cfg.graceful_timeout = 5;
    cfg.keepalive_timeout = 75;
    cfg.header_timeout = 30;
    cfg.send_timeout = 60;
    cfg.body_timeout = 30;
    cfg.max_head = 64 * 1024;
    cfg.max_url = 16 * 1024;
    cfg.max_headers = 128;
    cfg.websocket_timeout = 86400;
    cfg.websocket_connect_timeout = 5;
    cfg.ping_interval = 20;
    cfg.ping_timeout = 30;
    cfg.application_close_timeout = 10;
    cfg.websocket_max_message_size = 1024 * 1024;
    cfg.max_queued_bytes = BL_UP_MAX_BYTES;
    cfg.ws_compression_window_bits = 15;
    cfg.endpoints[cfg.nendpoints++] = "tcp:port=0:interface=127.0.0.1";
    if (!CHECK(bl_bridge_init() == 0) || !CHECK(bl_listen_open(&set, &cfg) == 0) ||
        !CHECK(set.n == 1))
        return -1;
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    if (!CHECK(getsockname(set.socks[0].fd, (struct sockaddr *)&sa, &len) == 0))
        return -1;
    port = ntohs(sa.sin_port);
    if (!CHECK((server = bl_server_new()) != NULL) ||
        !CHECK(bl_server_init(server, &cfg, &set, -1) == 0) || !CHECK(bl_server_start(server) == 0))
        return -1;
    return 0;
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
        bl_server_post_stop(server);
        bl_server_join(server);
        CHECK(!bl_server_running(server));
    }
    /* Whatever is still queued up (a DISCONNECT for a closed keep-alive, say). */
    while (taken != NULL) {
        bl_event_t *ev = taken;
        taken = ev->next;
        bl_event_free(ev);
    }
    for (bl_event_t *ev = bl_bridge_take_up(); ev != NULL;) {
        bl_event_t *next = ev->next;
        bl_event_free(ev);
        ev = next;
    }
    if (server != NULL)
        bl_server_close(server);
    bl_listen_close(&set);
    bl_bridge_destroy();
    return check_report();
}
