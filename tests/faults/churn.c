/* churn: a fast connection-churn client for tests/faults/test_churn.py.
 *
 *     cc -O2 -Wall -o churn churn.c
 *     churn --port P --mode http-keepalive|http-close|ws --total N --conns C
 *           [--path /hello] [--per-conn K] [--timeout SECS]
 *
 * One thread, epoll, C connections in flight until N are done:
 *   http-keepalive  N requests, K per connection (then a new connection)
 *   http-close      N connections, one "Connection: close" request each
 *   ws              N WebSockets: handshake, one masked text echo, close
 *                   handshake, then the server's FIN
 * Every response is checked (200 / 101, the echo, the close code). Clients
 * close with a reset (no TIME_WAIT pile-up on loopback), one in 16 with a FIN.
 * Prints "result mode=... done=... errors=... seconds=..."; exit 0 when all
 * N completed without an error, 1 otherwise, 2 on a usage error. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { HTTP_KEEPALIVE, HTTP_CLOSE, WS };
enum state { CONNECTING, SENDING, READING_HEAD, READING_BODY, WS_ECHO, WS_CLOSE, WAIT_EOF };

typedef struct {
    int fd;
    enum state st;
    char in[16384];
    size_t in_len;
    const char *out;
    size_t out_len, out_off;
    size_t body_need; /* READING_BODY: bytes of body still expected */
    int requests;     /* done on this connection */
    unsigned serial;
} conn_t;

static enum mode mode;
static int port, conns = 50, per_conn = 100;
static long total = 1000;
static double timeout_s = 120;
static const char *path = "/hello";
static long started, done, errors;
static unsigned serial;
static int ep;
static char req[512];
static size_t req_len;

static const char ws_req_fmt[] = "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                 "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
/* "hello", masked with the all-zero key; then a close with code 1000 */
static const char ws_msg[] = "\x81\x85\0\0\0\0hello";
static const char ws_close[] = "\x88\x82\0\0\0\0\x03\xe8";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(conn_t *c, const char *why);

static void set_out(conn_t *c, const char *data, size_t len)
{
    c->out = data;
    c->out_len = len;
    c->out_off = 0;
}

static bool flush_out(conn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN)
                return false;
            fail(c, "send");
            return false;
        }
        c->out_off += (size_t)n;
    }
    return true;
}

static void watch(conn_t *c, uint32_t events, int op)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(ep, op, c->fd, &ev);
}

static bool start_conn(conn_t *c)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return false;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->in_len = 0;
    c->requests = 0;
    c->serial = serial++;
    c->st = CONNECTING;
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return false;
    }
    watch(c, EPOLLOUT | EPOLLIN, EPOLL_CTL_ADD);
    return true;
}

static void end_conn(conn_t *c)
{
    /* A reset leaves no TIME_WAIT; one connection in 16 ends with a FIN. */
    if (c->serial % 16 != 0) {
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
}

/* The connection is done: replace it while work remains to be started. */
static void next_conn(conn_t *c)
{
    end_conn(c);
    if (started < total && !start_conn(c)) {
        errors++;
        fprintf(stderr, "churn: connect: %s\n", strerror(errno));
    }
}

static void fail(conn_t *c, const char *why)
{
    int e = errno;
    errors++;
    if (errors <= 5)
        fprintf(stderr, "churn: connection %u: %s (%s)\n", c->serial, why, e ? strerror(e) : "-");
    if (c->fd >= 0) {
        done++; /* the unit of work ends, as an error */
        next_conn(c);
    }
}

static void begin_request(conn_t *c)
{
    started++;
    c->in_len = 0;
    set_out(c, req, req_len);
    c->st = SENDING;
    if (flush_out(c))
        c->st = READING_HEAD;
}

/* Content-Length of a response head (-1: none). */
static long content_length(const char *head, size_t len)
{
    static const char name[] = "\r\ncontent-length:";
    for (size_t i = 0; i + sizeof(name) - 1 < len; i++) {
        if (strncasecmp(head + i, name, sizeof(name) - 1) == 0)
            return strtol(head + i + sizeof(name) - 1, NULL, 10);
    }
    return -1;
}

static void consume(conn_t *c, size_t n)
{
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

/* Parses what arrived; returns false once the connection was replaced. */
static bool progress(conn_t *c, bool eof)
{
    for (;;) {
        if (c->st == READING_HEAD) {
            char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
            if (end == NULL)
                break;
            size_t head = (size_t)(end - c->in) + 4;
            if (mode == WS) {
                if (strncmp(c->in, "HTTP/1.1 101", 12) != 0) {
                    fail(c, "no 101");
                    return false;
                }
                consume(c, head);
                set_out(c, ws_msg, sizeof(ws_msg) - 1);
                flush_out(c);
                c->st = WS_ECHO;
                continue;
            }
            if (strncmp(c->in, "HTTP/1.1 200", 12) != 0) {
                fail(c, "status not 200");
                return false;
            }
            long cl = content_length(c->in, head);
            if (cl < 0) {
                fail(c, "no content-length");
                return false;
            }
            consume(c, head);
            c->body_need = (size_t)cl;
            c->st = READING_BODY;
            continue;
        }
        if (c->st == READING_BODY) {
            size_t n = c->in_len < c->body_need ? c->in_len : c->body_need;
            consume(c, n);
            c->body_need -= n;
            if (c->body_need > 0)
                break;
            c->requests++;
            if (mode == HTTP_CLOSE) {
                c->st = WAIT_EOF;
                continue;
            }
            done++;
            if (c->requests < per_conn && started < total) {
                begin_request(c);
                continue;
            }
            next_conn(c);
            return false;
        }
        if (c->st == WS_ECHO || c->st == WS_CLOSE) {
            if (c->in_len < 2)
                break;
            uint8_t b0 = (uint8_t)c->in[0], len = (uint8_t)c->in[1] & 0x7f;
            if (len > 125 || c->in_len < 2u + len)
                break;
            if (b0 == 0x89) { /* a ping: not expected this fast, skipped */
                consume(c, 2u + len);
                continue;
            }
            if (c->st == WS_ECHO) {
                if (b0 != 0x81 || len != 5 || memcmp(c->in + 2, "hello", 5) != 0) {
                    fail(c, "bad echo");
                    return false;
                }
                consume(c, 7);
                set_out(c, ws_close, sizeof(ws_close) - 1);
                flush_out(c);
                c->st = WS_CLOSE;
                continue;
            }
            if (b0 != 0x88 || len < 2 || (uint8_t)c->in[2] != 0x03 || (uint8_t)c->in[3] != 0xe8) {
                fail(c, "bad close");
                return false;
            }
            consume(c, 2u + len);
            c->st = WAIT_EOF;
            continue;
        }
        if (c->st == WAIT_EOF) {
            if (c->in_len > 0) {
                fail(c, "bytes after the end");
                return false;
            }
            if (!eof)
                break;
            done++;
            next_conn(c);
            return false;
        }
        break;
    }
    if (eof) {
        fail(c, "unexpected EOF");
        return false;
    }
    return true;
}

static void on_event(conn_t *c, uint32_t events)
{
    if (c->st == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            errno = err;
            fail(c, "connect");
            return;
        }
        watch(c, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
        if (started >= total) {
            end_conn(c); /* more connections than work left */
            return;
        }
        begin_request(c);
        return;
    }
    if (c->st == SENDING && (events & EPOLLOUT)) {
        if (flush_out(c))
            c->st = READING_HEAD;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        bool eof = false;
        for (;;) {
            size_t room = sizeof(c->in) - c->in_len;
            if (room == 0) {
                fail(c, "response too large");
                return;
            }
            ssize_t n = recv(c->fd, c->in + c->in_len, room, 0);
            if (n > 0) {
                c->in_len += (size_t)n;
                continue;
            }
            if (n == 0 || errno == ECONNRESET)
                eof = true;
            else if (errno != EAGAIN) {
                fail(c, "recv");
                return;
            }
            break;
        }
        progress(c, eof);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},    {"mode", required_argument, NULL, 'm'},
        {"total", required_argument, NULL, 'n'},   {"conns", required_argument, NULL, 'c'},
        {"path", required_argument, NULL, 'P'},    {"per-conn", required_argument, NULL, 'k'},
        {"timeout", required_argument, NULL, 't'}, {NULL, 0, NULL, 0},
    };
    const char *mode_name = "http-keepalive";
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'p':
            port = atoi(optarg);
            break;
        case 'm':
            mode_name = optarg;
            break;
        case 'n':
            total = atol(optarg);
            break;
        case 'c':
            conns = atoi(optarg);
            break;
        case 'P':
            path = optarg;
            break;
        case 'k':
            per_conn = atoi(optarg);
            break;
        case 't':
            timeout_s = atof(optarg);
            break;
        default:
            return 2;
        }
    }
    if (strcmp(mode_name, "http-keepalive") == 0)
        mode = HTTP_KEEPALIVE;
    else if (strcmp(mode_name, "http-close") == 0)
        mode = HTTP_CLOSE;
    else if (strcmp(mode_name, "ws") == 0)
        mode = WS;
    else
        return 2;
    if (port <= 0 || total <= 0 || conns <= 0 || per_conn <= 0)
        return 2;
    if (mode == WS)
        req_len = (size_t)snprintf(req, sizeof(req), ws_req_fmt, path);
    else
        req_len = (size_t)snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", path,
                                   mode == HTTP_CLOSE ? "Connection: close\r\n" : "");

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (conns > total)
        conns = (int)total;
    conn_t *cs = calloc((size_t)conns, sizeof(conn_t));
    for (int i = 0; i < conns; i++) {
        cs[i].fd = -1;
        if (!start_conn(&cs[i])) {
            perror("churn: connect");
            return 2;
        }
    }
    double t0 = now();
    struct epoll_event evs[256];
    while (done < total) {
        if (now() - t0 > timeout_s) {
            fprintf(stderr, "churn: timed out with %ld of %ld done\n", done, total);
            errors++;
            break;
        }
        int n = epoll_wait(ep, evs, 256, 1000);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c->fd >= 0)
                on_event(c, evs[i].events);
        }
    }
    double secs = now() - t0;
    for (int i = 0; i < conns; i++) {
        if (cs[i].fd >= 0)
            end_conn(&cs[i]);
    }
    printf("result mode=%s done=%ld errors=%ld seconds=%.2f rate=%.0f\n", mode_name, done, errors,
           secs, secs > 0 ? (double)done / secs : 0.0);
    free(cs);
    return errors == 0 && done >= total ? 0 : 1;
}
