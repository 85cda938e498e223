/* The I/O thread on its own, for the connection tests: the real server on one
 * loopback listener; the test plays the Python thread through the bridge
 * (taking up events, posting the down events an app's messages become, as
 * gateway/py/ does) and a plain blocking socket plays the client. Every wait
 * is bounded by a poll or socket timeout, never a sleep. */
#ifndef BAYLEAF_TEST_FAKE_APP_H
#define BAYLEAF_TEST_FAKE_APP_H

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
static inline bl_event_t *up_next(void)
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
static inline bl_event_t *up_expect(int type)
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
static inline void post_response(bl_exchange_t *ex, int status, const char *const *hdrs,
                                 const char *body, size_t blen, bool more)
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

static inline void post_body(bl_exchange_t *ex, const char *body, size_t len, bool more)
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

static inline void post_simple(bl_exchange_t *ex, int type, uint64_t aux)
{
    bl_event_t *ev = bl_event_new(type, ex, 0);
    if (!CHECK(ev != NULL))
        return;
    ev->aux = aux;
    bl_bridge_post_down(ev);
}

/* The app took a body event: hand its read-ahead back, as receive() does. */
static inline void consume(bl_event_t *ev)
{
    size_t ra = bl_event_readahead(ev);
    if (ra > 0)
        post_simple(ev->ex, BL_EV_CONSUMED, ra);
}

/* ---- the client ------------------------------------------------------------ */

static inline int client_connect(void)
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

static inline void client_send(int fd, const char *s, size_t len)
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
static inline size_t client_recv(int fd, char *buf, size_t len)
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
static inline void client_expect(int fd, const char *want)
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
static inline bool client_sees_eof(int fd)
{
    char c;
    return recv(fd, &c, 1, 0) == 0;
}

static inline int server_up(void)
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

/* Stops the I/O thread (as Python does once it is done) and frees what is left. */
static inline void server_down(void)
{
    if (server != NULL && bl_server_running(server)) {
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
}
#endif
