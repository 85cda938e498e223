/* One client connection on the I/O thread: read, parse, hand requests to
 * Python, frame and write responses, keep-alive and pipelining in order. */
#include "bayleaf/bridge.h"
#include "bayleaf/http_response.h"
#include "bayleaf/log.h"
#include "bayleaf/proxy.h"
#include "bayleaf/server.h"
#include "conn.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#ifdef __linux__
#include <linux/sockios.h>
#endif

static void conn_process(bl_conn_t *c, const char *data, size_t len);
static void access_log_write(bl_conn_t *c);
static void conn_next(bl_conn_t *c);
#include "bayleaf/ws.h"

/* ---- timers ---------------------------------------------------------- */

/* One uv_timer_t per connection serves two clocks: the deadline of
 * timer_kind (one at a time), and --send-timeout's watch over a write
 * backlog. It is armed for whichever falls due first. */

static void on_timer(uv_timer_t *t);

static uint64_t loop_now(bl_conn_t *c)
{
    return uv_now(&c->server->loop);
}

static void timer_arm(bl_conn_t *c)
{
    if (c->closing)
        return;
    uint64_t due = UINT64_MAX;
    if (c->timer_kind != TIMER_NONE)
        due = c->timer_due;
    if (c->send_watched && c->send_due < due)
        due = c->send_due;
    if (due == UINT64_MAX) {
        uv_timer_stop(&c->timer);
        return;
    }
    uint64_t now = loop_now(c);
    uv_timer_start(&c->timer, on_timer, due > now ? due - now : 0, 0);
}

void bl_conn_timer_set(bl_conn_t *c, timer_kind_t kind, double seconds)
{
    c->timer_kind = kind;
    if (kind == TIMER_NONE || seconds <= 0)
        c->timer_kind = TIMER_NONE;
    else
        c->timer_due = loop_now(c) + (uint64_t)(seconds * 1000);
    timer_arm(c);
}

/* Bytes of what was handed to uv_write that reached the socket. */
static uint64_t send_written(bl_conn_t *c)
{
    return c->send_queued - c->h.stream.write_queue_size;
}

/* What the kernel still holds for the client: for TCP, bytes not yet
 * acknowledged; for a unix socket, what the peer has not read. It only
 * shrinks while nothing is written if the client takes data. */
static uint32_t send_outq(bl_conn_t *c)
{
#ifdef SIOCOUTQ
    uv_os_fd_t fd;
    int n = 0;
    if (uv_fileno(&c->h.handle, &fd) == 0 && ioctl(fd, SIOCOUTQ, &n) == 0 && n > 0)
        return (uint32_t)n;
#else
    (void)c;
#endif
    return 0;
}

static uint64_t send_timeout_ms(bl_conn_t *c)
{
    return (uint64_t)(c->server->cfg->send_timeout * 1000);
}

/* The next look at a watched backlog: a quarter of the timeout after this
 * one, so a stall is noticed within 1.25 timeouts of the last progress. */
static void send_plan(bl_conn_t *c, uint64_t now)
{
    uint64_t limit = send_timeout_ms(c);
    uint64_t step = limit / 4 > 0 ? limit / 4 : 1;
    c->send_due = now + step;
    if (c->send_since + limit < c->send_due)
        c->send_due = c->send_since + limit;
}

/* A write left a backlog behind: watch it (once; progress is read lazily). */
static void send_watch(bl_conn_t *c)
{
    if (c->send_watched || c->h.stream.write_queue_size == 0 || send_timeout_ms(c) == 0)
        return;
    uint64_t now = loop_now(c);
    c->send_watched = true;
    c->send_since = now;
    c->send_mark = send_written(c);
    c->send_outq = send_outq(c);
    send_plan(c, now);
    timer_arm(c);
}

static void conn_reset(bl_conn_t *c);

/* The watched backlog's turn: returns true when the connection was dropped. */
static bool send_check(bl_conn_t *c, uint64_t now)
{
    size_t backlog = c->h.stream.write_queue_size;
    if (backlog == 0) {
        c->send_watched = false; /* drained: a new backlog starts a new watch */
        return false;
    }
    /* Progress: bytes reached the socket, or the client took some from it
     * (a kernel buffer of megabytes, as on loopback, can take many seconds
     * to empty far enough for the next write). */
    uint64_t written = send_written(c);
    uint32_t outq = send_outq(c);
    bool moved = written != c->send_mark || outq < c->send_outq;
    c->send_mark = written;
    c->send_outq = outq;
    if (moved) {
        c->send_since = now;
    } else if (now - c->send_since >= send_timeout_ms(c)) {
        const char *who = c->log_host[0] ? c->log_host : c->client_host;
        BL_INFO("client %s read none of %zu pending bytes in %gs (--send-timeout): "
                "connection reset",
                who[0] ? who : (c->listener->is_unix ? "on a unix socket" : "-"), backlog,
                c->server->cfg->send_timeout);
        conn_reset(c);
        return true;
    }
    send_plan(c, now);
    return false;
}

/* ---- closing --------------------------------------------------------- */

static void post_disconnect(bl_exchange_t *ex)
{
    bl_event_t *ev = bl_event_new(BL_EV_DISCONNECT, ex, 0);
    if (ev != NULL)
        bl_bridge_post_up(ev);
}

/* Drops the connection's reference to its exchange; the app hears of it
 * unless the response already completed. */
static void conn_detach(bl_conn_t *c, bool tell_app)
{
    bl_exchange_t *ex = c->ex;
    if (ex == NULL)
        return;
    c->ex = NULL;
    ex->conn = NULL;
    if (tell_app)
        post_disconnect(ex);
    bl_exchange_unref(ex);
}

static void on_handle_closed(uv_handle_t *h)
{
    bl_conn_t *c = h->data;
    if (--c->handles_open > 0)
        return;
    bl_server_t *s = c->server;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    s->nconns--;
    bl_conn_ws_free(c);
    bl_http_parser_free(&c->parser);
    free(c->rbuf);
    free(c->body);
    free(c->log_path);
    free(c);
    bl_server_conn_gone(s);
}

/* A connection that is ending no longer counts for --limit-concurrency. */
static void conn_inactive(bl_conn_t *c)
{
    if (c->active) {
        c->active = false;
        c->server->nactive--;
    }
}

/* reset: end a TCP connection with a RST, dropping what the kernel still
 * holds for the client, rather than a FIN behind it. */
static void conn_close(bl_conn_t *c, bool reset)
{
    if (c->closing)
        return;
    c->closing = true;
    conn_inactive(c);
    if (c->ex != NULL && (c->ws_phase == WS_OPEN || c->ws_phase == WS_CLOSING))
        bl_conn_access_log(c, "WSDISCONNECT"); /* the TCP connection dropped */
    conn_detach(c, !c->resp_done);
    if (!reset || c->listener->is_unix || uv_tcp_close_reset(&c->h.tcp, on_handle_closed) != 0)
        uv_close(&c->h.handle, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

void bl_conn_close(bl_conn_t *c)
{
    conn_close(c, false);
}

static void conn_reset(bl_conn_t *c)
{
    conn_close(c, true);
}

/* Read and drop input until the client closes too, so that our last response
 * is not destroyed by a reset. */
static void on_linger_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    if (nread < 0)
        bl_conn_close(stream->data);
}

static void linger_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    static char sink[16384];
    (void)h;
    (void)size;
    *buf = uv_buf_init(sink, sizeof(sink));
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    bl_conn_t *c = req->data;
    if (status < 0 || c->closing) {
        bl_conn_close(c);
        return;
    }
    uv_read_stop(&c->h.stream);
    if (uv_read_start(&c->h.stream, linger_alloc, on_linger_read) != 0)
        bl_conn_close(c);
}

/* Ends the connection once every write is done: FIN, then linger. */
void bl_conn_finish(bl_conn_t *c)
{
    if (c->closing || c->lingering)
        return;
    if (c->writes_pending > 0) {
        c->close_after_write = true;
        uv_read_stop(&c->h.stream);
        c->reading = false;
        return;
    }
    c->lingering = true;
    conn_inactive(c);
    conn_detach(c, !c->resp_done);
    bl_conn_timer_set(c, TIMER_LINGER, 2.0);
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, &c->h.stream, on_shutdown) != 0)
        bl_conn_close(c);
}

/* ---- writing ---------------------------------------------------------- */

/* Bytes the app sent have left (or will never leave): wake a waiting send(). */
void bl_conn_unsent_release(bl_exchange_t *ex, size_t n)
{
    if (ex == NULL || n == 0)
        return;
    size_t before = atomic_fetch_sub(&ex->unsent, n);
    if (before - n <= BL_WRITE_LOW_WATER && atomic_exchange(&ex->want_writable, false)) {
        bl_event_t *ev = bl_event_new(BL_EV_WRITABLE, ex, 0);
        if (ev != NULL)
            bl_bridge_post_up(ev);
    }
}

static void on_write(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    bl_conn_t *c = w->conn;
    bl_conn_unsent_release(w->ex, w->accounted);
    if (w->ev != NULL)
        bl_event_free(w->ev);
    free(w->mem);
    free(w);
    c->writes_pending--;
    if (status < 0) {
        bl_conn_close(c);
        return;
    }
    if (c->writes_pending == 0 && c->close_after_write)
        bl_conn_finish(c);
    else if (c->next_waiting && c->h.stream.write_queue_size <= BL_WRITE_LOW_WATER)
        conn_next(c);
    else if (!c->reading && c->h.stream.write_queue_size <= BL_WRITE_LOW_WATER)
        bl_conn_update_reading(c); /* the client caught up: read it again */
}

/* Queues bufs; ev and mem are released when written. accounted: bytes the
 * Python side counted in ex->unsent. */
int bl_conn_write(bl_conn_t *c, uv_buf_t *bufs, unsigned nbufs, bl_event_t *ev, char *mem,
                  size_t accounted)
{
    if (c->closing || c->lingering) {
        if (ev != NULL)
            bl_event_free(ev);
        free(mem);
        return -1;
    }
    /* Most responses fit in the socket buffer: write them now. A completed
     * uv_write would also re-arm epoll (an epoll_ctl per response). */
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    int n = uv_try_write(&c->h.stream, bufs, nbufs);
    if (n == (int)total) {
        bl_conn_unsent_release(ev != NULL ? ev->ex : NULL, accounted);
        if (ev != NULL)
            bl_event_free(ev);
        free(mem);
        return 0;
    }
    if (n < 0 && n != UV_EAGAIN) {
        if (ev != NULL)
            bl_event_free(ev);
        free(mem);
        bl_conn_close(c);
        return -1;
    }
    if (n > 0) {
        /* Skip what was written; queue the rest. */
        size_t skip = (size_t)n;
        while (skip > 0 && skip >= bufs[0].len) {
            skip -= bufs[0].len;
            bufs++;
            nbufs--;
        }
        bufs[0].base += skip;
        bufs[0].len -= skip;
    }
    write_req_t *w = malloc(sizeof(*w));
    if (w == NULL) {
        if (ev != NULL)
            bl_event_free(ev);
        free(mem);
        bl_conn_close(c);
        return -1;
    }
    w->conn = c;
    w->ev = ev;
    w->mem = mem;
    w->accounted = accounted;
    w->ex = ev != NULL ? ev->ex : NULL;
    c->writes_pending++;
    int err = uv_write(&w->req, &c->h.stream, bufs, nbufs, on_write);
    if (err != 0) {
        w->req.handle = &c->h.stream;
        on_write(&w->req, err);
        return -1;
    }
    for (unsigned i = 0; i < nbufs; i++)
        c->send_queued += bufs[i].len;
    send_watch(c);
    return 0;
}

/* Sends a small error response and ends the connection. */
void bl_conn_fail(bl_conn_t *c, int status)
{
    char *buf;
    size_t len;
    if (c->resp_started ||
        bl_response_simple(status, c->server->cfg->server_name, false, &buf, &len) != 0) {
        bl_conn_close(c);
        return;
    }
    c->resp_started = true;
    c->status = status;
    c->sent_body = strlen(bl_status_reason(status)) + 1; /* the body bl_response_simple wrote */
    if (status == 426) {
        /* RFC 6455 4.4: say which WebSocket version we speak. */
        static const char v13[] = "sec-websocket-version: 13\r\n";
        char *eol = memchr(buf, '\n', len);
        size_t at = eol != NULL ? (size_t)(eol - buf) + 1 : 0;
        char *b2 = realloc(buf, len + sizeof(v13) - 1);
        if (at > 0 && b2 != NULL) {
            memmove(b2 + at + sizeof(v13) - 1, b2 + at, len - at);
            memcpy(b2 + at, v13, sizeof(v13) - 1);
            buf = b2;
            len += sizeof(v13) - 1;
        } else if (b2 != NULL) {
            buf = b2;
        }
    }
    uv_buf_t b = uv_buf_init(buf, (unsigned)len);
    bl_conn_write(c, &b, 1, NULL, buf, 0);
    c->resp_done = true;
    if (c->log_path != NULL)
        access_log_write(c);
    bl_conn_finish(c);
}

/* ---- access log ------------------------------------------------------- */

static void access_log_write(bl_conn_t *c)
{
    if (c->ws_phase == WS_NONE) /* WebSockets log their own lines */
        bl_conn_access_log(c, NULL);
}

/* Daphne's line format. what: NULL for an HTTP response, else a WebSocket
 * action ("WSCONNECTING", "WSCONNECT", "WSREJECT", "WSDISCONNECT"). */
void bl_conn_access_log(bl_conn_t *c, const char *what)
{
    FILE *f = c->server->access_log;
    char date[32];
    struct tm tm;
    time_t now = time(NULL);
    if (f == NULL)
        return;
    localtime_r(&now, &tm);
    strftime(date, sizeof(date), "%d/%b/%Y:%H:%M:%S", &tm);
    /* Daphne writes "host:port" (after proxy headers), and "None" where there
     * is no client address (a unix socket): we write "-" there. */
    const char *host = c->log_host[0] ? c->log_host : "-";
    const char *path = c->log_path ? c->log_path : "";
    if (what != NULL) {
        fprintf(f, "%s - - [%s] \"%s %s\" - -\n", host, date, what, path);
        return;
    }
    char size[24] = "-";
    if (c->sent_body > 0)
        snprintf(size, sizeof(size), "%llu", (unsigned long long)c->sent_body);
    fprintf(f, "%s - - [%s] \"%s %s\" %d %s\n", host, date, c->method, path, c->status, size);
}

/* ---- the request cycle ------------------------------------------------ */

static void request_reset(bl_conn_t *c)
{
    c->request_posted = c->body_final_posted = c->message_complete = false;
    c->resp_started = c->resp_done = false;
    c->expect_continue = c->continue_sent = false;
    c->sent_body = 0;
    c->status = 0;
    c->body_len = 0;
    free(c->log_path);
    c->log_path = NULL;
}

/* After a response and its request both ended: the next request, or the end. */
static void conn_next(bl_conn_t *c)
{
    if (!c->resp_done || !c->message_complete || c->closing || c->lingering)
        return;
    if (c->h.stream.write_queue_size > BL_WRITE_HIGH_WATER) {
        /* A client that pipelines but does not read: no new work until it does. */
        c->next_waiting = true;
        return;
    }
    c->next_waiting = false;
    conn_detach(c, false);
    if (!c->keep_alive || c->server->draining) {
        bl_conn_finish(c);
        return;
    }
    request_reset(c);
    c->paused = false;
    bl_http_parser_resume(&c->parser);
    bl_conn_timer_set(c, TIMER_IDLE, c->server->cfg->keepalive_timeout);
    if (c->rlen > 0) {
        /* Pipelined input waits in rbuf: parse it now. */
        char *data = c->rbuf;
        size_t len = c->rlen;
        c->rbuf = NULL;
        c->rlen = 0;
        conn_process(c, data, len);
        free(data);
    }
    bl_conn_update_reading(c);
}

static void response_done(bl_conn_t *c)
{
    c->resp_done = true;
    access_log_write(c);
    /* The client was told to wait for 100-continue and never was: its body
     * may or may not follow, so the connection cannot be reused. */
    if (c->expect_continue && !c->continue_sent && !c->message_complete)
        c->keep_alive = false;
    if (!c->keep_alive && !c->message_complete) {
        bl_conn_finish(c);
        return;
    }
    if (!c->message_complete) {
        /* The app answered without reading the whole body: the rest is read
         * and dropped (up to a bound) so the connection can be reused. */
        conn_detach(c, false);
        c->discarded = 0;
        bl_conn_update_reading(c);
        return;
    }
    conn_next(c);
}

/* Posts the body gathered so far (the REQUEST event carries the first part). */
static void flush_body(bl_conn_t *c)
{
    bl_exchange_t *ex = c->ex;
    if (ex == NULL || c->body_final_posted ||
        (c->request_posted && c->body_len == 0 && !c->message_complete))
        return;
    bl_event_t *ev = bl_event_new(c->request_posted ? BL_EV_BODY : BL_EV_REQUEST, ex, c->body_len);
    if (ev == NULL) {
        bl_conn_fail(c, 500);
        return;
    }
    if (c->body_len > 0)
        memcpy(ev->data, c->body, c->body_len);
    ev->flags = c->message_complete ? 0 : BL_EVF_MORE;
    ex->body_inflight += c->body_len;
    c->body_len = 0;
    c->request_posted = true;
    c->body_final_posted = c->message_complete;
    bl_bridge_post_up(ev);
}

/* The proxy rules, built on first use (the I/O thread is the only user); the
 * list was checked when the options were read. */
static const bl_proxy_t *conn_proxy(const bl_config_t *cfg)
{
    static bl_proxy_t proxy;
    static const bl_config_t *built_for;
    if (built_for != cfg) {
        char err[256] = "out of memory";
        if (built_for != NULL)
            bl_proxy_free(&proxy);
        built_for = cfg;
        if (bl_proxy_init(&proxy, cfg, err, sizeof(err)) != 0) {
            BL_ERROR("%s: proxy headers are ignored", err);
            memset(&proxy, 0, sizeof(proxy));
        }
        if (!cfg->proxy_headers && (cfg->proxy_headers_host || cfg->proxy_headers_port))
            BL_WARN("--proxy-headers-host/--proxy-headers-port do nothing without --proxy-headers");
    }
    return &proxy;
}

/* The client, scheme, server port and root path the app and the access log
 * see: the socket's, or what a trusted proxy says. */
static void apply_proxy(bl_conn_t *c, bl_head_t *head, bl_exchange_t *ex)
{
    bl_proxy_view_t v;
    memcpy(v.client_host, c->client_host, sizeof(v.client_host));
    v.client_port = c->client_port;
    v.server_port = c->server_port;
    v.unix_peer = c->listener->is_unix;
    bl_proxy_resolve(conn_proxy(c->server->cfg), head, &v);
    memcpy(ex->client_host, v.client_host, sizeof(ex->client_host));
    ex->client_port = v.client_port;
    memcpy(ex->server_host, c->server_host, sizeof(ex->server_host));
    ex->server_port = v.server_port;
    ex->secure = v.secure;
    ex->has_root_path = v.has_root_path;
    ex->root_path_off = v.root_path_off;
    ex->root_path_len = v.root_path_len;
    if (v.host_len > 0 && bl_proxy_set_host(head, v.host, v.host_len) != 0)
        BL_WARN("out of memory: the Host from Forwarded is not applied");
    c->log_host[0] = '\0';
    if (v.client_port >= 0)
        snprintf(c->log_host, sizeof(c->log_host), "%s:%d", v.client_host, v.client_port);
}

static int on_head(bl_http_parser_t *p, bl_head_t *head)
{
    bl_conn_t *c = p->data;
    unsigned limit = c->server->cfg->limit_concurrency;
    if (limit > 0 && c->server->nactive > limit) {
        /* Over --limit-concurrency: a quick 503 costs less than a queue.
         * Counted per request, so connections that never send one do not count. */
        bl_head_free(head);
        p->error_status = 503;
        return -1;
    }
    bl_exchange_t *ex = bl_exchange_new();
    if (ex == NULL) {
        bl_head_free(head);
        p->error_status = 500;
        return -1;
    }
    request_reset(c);
    ex->head = head;
    ex->conn = c;
    apply_proxy(c, head, ex);
    c->ex = ex;
    snprintf(c->method, sizeof(c->method), "%s", head->method);
    /* Daphne logs the raw request target for HTTP, the raw path for WebSocket. */
    if (head->websocket)
        c->log_path = strndup(head->buf + head->path_off, head->path_len);
    else
        c->log_path = strndup(head->buf, head->url_len);
    c->head_request = strcmp(head->method, "HEAD") == 0;
    c->http10 = head->http_major == 1 && head->http_minor == 0;
    /* Non-WebSocket upgrades are served as plain HTTP, then the connection ends. */
    c->keep_alive = head->keep_alive && !head->upgrade;
    c->expect_continue = head->expect_continue;
    if (head->websocket) {
        int status = bl_conn_ws_head(c, head, ex);
        if (status != 0) {
            p->error_status = status;
            return -1;
        }
        return 0;
    }
    bl_conn_timer_set(c, c->server->cfg->http_timeout > 0 ? TIMER_RESPONSE : TIMER_NONE,
                      c->server->cfg->http_timeout);
    return 0;
}

static int on_body(bl_http_parser_t *p, const char *at, size_t len)
{
    bl_conn_t *c = p->data;
    if (c->ex == NULL) {
        /* The response is done: the app does not want the rest. Past a bound,
         * closing is cheaper than reading it all. */
        c->discarded += len;
        if (c->discarded > BL_DISCARD_LIMIT) {
            c->keep_alive = false;
            p->error_status = 0;
            return -1;
        }
        return 0;
    }
    if (c->body_len + len > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 16384;
        while (cap < c->body_len + len)
            cap *= 2;
        char *b = realloc(c->body, cap);
        if (b == NULL) {
            p->error_status = 500;
            return -1;
        }
        c->body = b;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    return 0;
}

static int on_complete(bl_http_parser_t *p)
{
    bl_conn_t *c = p->data;
    c->message_complete = true;
    flush_body(c);
    return 0;
}

static const bl_http_handler_t handler = {on_head, on_body, on_complete};

/* Parses as much as allowed; keeps the rest in rbuf. */
static void conn_process(bl_conn_t *c, const char *data, size_t len)
{
    while (len > 0 && !c->paused && !c->closing && !c->lingering) {
        size_t used = 0;
        if (bl_http_parser_idle(&c->parser) && c->timer_kind == TIMER_IDLE)
            bl_conn_timer_set(c, TIMER_HEADER, c->server->cfg->header_timeout);
        int rc = bl_http_parser_feed(&c->parser, data, len, &used);
        data += used;
        len -= used;
        if (rc == BL_HTTP_ERROR) {
            if (c->resp_done && !c->message_complete) {
                /* Broken or too long a body nobody reads: end quietly. */
                bl_conn_finish(c);
            } else if (c->ex != NULL && c->request_posted) {
                /* A broken body: the app's request is cut short. */
                bl_conn_close(c);
            } else {
                conn_detach(c, false);
                bl_conn_fail(c, c->parser.error_status);
            }
            return;
        }
        if (rc == BL_HTTP_PAUSED || rc == BL_HTTP_UPGRADE)
            c->paused = true;
    }
    flush_body(c);
    if (len > 0 && !c->closing && !c->lingering) {
        char *keep = realloc(c->rbuf, c->rlen + len);
        if (keep == NULL) {
            bl_conn_close(c);
            return;
        }
        memcpy(keep + c->rlen, data, len);
        c->rbuf = keep;
        c->rlen += len;
    }
    if (c->paused)
        conn_next(c);
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    /* One buffer for every connection: each read is parsed before the next. */
    static char shared[65536];
    (void)h;
    (void)size;
    *buf = uv_buf_init(shared, sizeof(shared));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    bl_conn_t *c = stream->data;
    if (nread < 0) {
        if (c->ws_phase == WS_NONE && c->ex != NULL && c->resp_started && !c->resp_done &&
            c->message_complete && nread == UV_EOF) {
            /* Half-close after a full request: let the response finish. */
            uv_read_stop(stream);
            c->reading = false;
            c->keep_alive = false;
            return;
        }
        bl_conn_close(c);
        return;
    }
    if (nread > 0 && c->ws != NULL) {
        bl_conn_ws_read(c, buf->base, (size_t)nread);
    } else if (nread > 0) {
        if (c->paused) {
            /* Reading stops when paused, but a read may already be under way. */
            char *keep = realloc(c->rbuf, c->rlen + (size_t)nread);
            if (keep == NULL) {
                bl_conn_close(c);
                return;
            }
            memcpy(keep + c->rlen, buf->base, (size_t)nread);
            c->rbuf = keep;
            c->rlen += (size_t)nread;
        } else {
            conn_process(c, buf->base, (size_t)nread);
        }
    }
    if (!c->closing)
        bl_conn_update_reading(c);
}

/* Reads only when the parser can use more input and the app keeps up. */
void bl_conn_update_reading(bl_conn_t *c)
{
    if (c->closing || c->lingering || c->close_after_write)
        return;
    c->body_blocked = c->ex != NULL && c->ex->body_inflight > BL_BODY_HIGH_WATER;
    /* While paused for a response, input is still read (into rbuf, bounded):
     * stopping and restarting per request would cost two epoll_ctl calls.
     * A client that does not read what we write (answers to its pings, say)
     * is not read either until it catches up. */
    size_t backlog = c->h.stream.write_queue_size;
    bool out_blocked =
        backlog > BL_OUTPUT_HIGH_WATER || (!c->reading && backlog > BL_WRITE_LOW_WATER);
    bool want = !c->body_blocked && !out_blocked && c->rlen < 65536;
    if (want && !c->reading) {
        if (uv_read_start(&c->h.stream, on_alloc, on_read) == 0)
            c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop(&c->h.stream);
        c->reading = false;
    }
}

static void on_timer(uv_timer_t *t)
{
    bl_conn_t *c = t->data;
    uint64_t now = loop_now(c);
    if (c->send_watched && now >= c->send_due && send_check(c, now))
        return;
    if (c->timer_kind == TIMER_NONE || now < c->timer_due) {
        timer_arm(c); /* only the send watch was due */
        return;
    }
    timer_kind_t kind = c->timer_kind;
    c->timer_kind = TIMER_NONE;
    switch (kind) {
    case TIMER_RESPONSE:
        if (!c->resp_started) {
            BL_WARN("application did not start a response within %gs: 503",
                    c->server->cfg->http_timeout);
            conn_detach(c, true);
            bl_conn_fail(c, 503);
        }
        break;
    case TIMER_HEADER:
        if (bl_http_parser_idle(&c->parser) && c->rlen == 0)
            bl_conn_close(c);
        else
            bl_conn_fail(c, 408);
        break;
    case TIMER_IDLE:
    case TIMER_LINGER:
        bl_conn_close(c);
        break;
    case TIMER_WS:
        bl_conn_ws_timer(c);
        break;
    case TIMER_NONE:
        break;
    }
    timer_arm(c); /* the send watch may still need it */
}

/* ---- accept ----------------------------------------------------------- */

static void addr_to_text(const struct sockaddr_storage *ss, char *host, size_t cap, int *port)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &in->sin_addr, host, (socklen_t)cap);
        *port = ntohs(in->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, (socklen_t)cap);
        *port = ntohs(in6->sin6_port);
    } else {
        host[0] = '\0';
        *port = -1;
    }
}

void bl_conn_accept(bl_listener_t *l)
{
    bl_server_t *s = l->server;
    bl_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->server = s;
    c->listener = l;
    c->client_port = c->server_port = -1;
    if (l->is_unix)
        uv_pipe_init(&s->loop, &c->h.pipe, 0);
    else
        uv_tcp_init(&s->loop, &c->h.tcp);
    uv_timer_init(&s->loop, &c->timer);
    c->h.handle.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (uv_accept(&l->h.stream, &c->h.stream) != 0) {
        c->closing = true;
        uv_close(&c->h.handle, on_handle_closed);
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
        return;
    }
    if (l->is_unix) {
        snprintf(c->server_host, sizeof(c->server_host), "%s", l->path);
    } else {
        struct sockaddr_storage ss;
        int len = sizeof(ss);
        uv_tcp_nodelay(&c->h.tcp, 1);
        if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0)
            addr_to_text(&ss, c->client_host, sizeof(c->client_host), &c->client_port);
        len = sizeof(ss);
        if (uv_tcp_getsockname(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0)
            addr_to_text(&ss, c->server_host, sizeof(c->server_host), &c->server_port);
    }
    bl_http_parser_init(&c->parser, &handler, &s->limits, c);
    c->active = true;
    s->nactive++;
    bl_conn_timer_set(c, TIMER_HEADER, s->cfg->header_timeout);
    bl_conn_update_reading(c);
}

void bl_conn_drain_all(bl_server_t *s, bool force)
{
    bl_conn_t *c = s->conns;
    while (c != NULL) {
        bl_conn_t *next = c->next;
        if (force)
            bl_conn_close(c);
        else if (c->ws_phase == WS_OPEN)
            bl_conn_ws_going_away(c);
        else if (c->ex == NULL && !c->closing && !c->lingering && c->writes_pending == 0)
            bl_conn_close(c); /* idle keep-alive: nothing in flight */
        c = next;
    }
}

/* ---- events from Python ----------------------------------------------- */

/* Holds a body to its Content-Length: bytes beyond it would be read as the
 * next response. Returns false when the connection was closed instead. */
static bool body_within_length(bl_conn_t *c, size_t *len, bool *more)
{
    if (c->framing != BL_FRAME_LENGTH)
        return true;
    uint64_t room = c->clen - c->sent_body;
    if (*len > room) {
        BL_ERROR("application sent more than its Content-Length (%llu): response cut, "
                 "connection closed",
                 (unsigned long long)c->clen);
        *len = (size_t)room;
        *more = false;
        c->keep_alive = false;
        /* The app's next send() raises: its response is over. */
        conn_detach(c, true);
        return true;
    }
    if (!*more && c->sent_body + *len < c->clen) {
        BL_ERROR("application ended its body before its Content-Length (%llu): closing",
                 (unsigned long long)c->clen);
        c->keep_alive = false;
    }
    return true;
}

void bl_conn_send_response(bl_conn_t *c, bl_event_t *ev)
{
    bl_response_t r = {
        .status = ev->status,
        .headers = ev->data,
        .headers_len = ev->len,
        .flags = ev->flags,
        .content_length = ev->aux,
        .body_known = !(ev->flags & BL_EVF_MORE),
        .body_len = ev->len2,
        .head_request = c->head_request,
        .http10 = c->http10,
        .keep_alive = c->keep_alive,
        .server_name = c->server->cfg->server_name,
    };
    char *head;
    size_t head_len;
    bool more = (ev->flags & BL_EVF_MORE) != 0;
    if (c->resp_started) {
        bl_event_free(ev);
        return;
    }
    if (bl_response_head(&r, &head, &head_len, &c->framing, &c->keep_alive) != 0) {
        bl_event_free(ev);
        bl_conn_fail(c, 500);
        return;
    }
    c->resp_started = true;
    c->status = ev->status;
    c->clen = (ev->flags & BL_EVF_HAS_CLEN) ? ev->aux : ev->len2;
    if (c->timer_kind == TIMER_RESPONSE)
        bl_conn_timer_set(c, TIMER_NONE, 0);

    uv_buf_t bufs[4];
    unsigned n = 0;
    size_t body_len = ev->len2;
    if (!body_within_length(c, &body_len, &more)) {
        bl_event_free(ev);
        free(head);
        return;
    }
    char *body = ev->data + ev->len;
    size_t accounted = body_len;
    bufs[n++] = uv_buf_init(head, (unsigned)head_len);
    char prefix[24];
    if (c->framing != BL_FRAME_NONE && body_len > 0) {
        if (c->framing == BL_FRAME_CHUNKED) {
            size_t pl = bl_chunk_prefix(prefix, body_len);
            /* The prefix must outlive this call: append it to the head buffer. */
            char *h2 = realloc(head, head_len + pl);
            if (h2 == NULL) {
                free(head);
                bl_event_free(ev);
                bl_conn_close(c);
                return;
            }
            head = h2;
            memcpy(head + head_len, prefix, pl);
            bufs[0] = uv_buf_init(head, (unsigned)(head_len + pl));
        }
        bufs[n++] = uv_buf_init(body, (unsigned)body_len);
        if (c->framing == BL_FRAME_CHUNKED)
            bufs[n++] = uv_buf_init(more ? "\r\n" : "\r\n0\r\n\r\n", more ? 2 : 7);
        c->sent_body += body_len;
    } else if (c->framing == BL_FRAME_CHUNKED && !more) {
        bufs[n++] = uv_buf_init("0\r\n\r\n", 5);
    }
    bl_conn_write(c, bufs, n, ev, head, accounted);
    if (!more)
        response_done(c);
}

void bl_conn_send_body(bl_conn_t *c, bl_event_t *ev)
{
    bool more = (ev->flags & BL_EVF_MORE) != 0;
    size_t len = ev->len;
    if (!c->resp_started || c->resp_done) {
        bl_conn_unsent_release(ev->ex, len);
        bl_event_free(ev);
        return;
    }
    size_t accounted = len;
    if (!body_within_length(c, &len, &more)) {
        bl_conn_unsent_release(ev->ex, accounted);
        bl_event_free(ev);
        return;
    }
    uv_buf_t bufs[3];
    unsigned n = 0;
    char *prefix = NULL;
    if (c->framing == BL_FRAME_NONE) {
        /* HEAD or a status without a body: the bytes are dropped. */
        bl_conn_unsent_release(ev->ex, len);
        bl_event_free(ev);
        if (!more)
            response_done(c);
        return;
    }
    if (c->framing == BL_FRAME_CHUNKED && len > 0) {
        prefix = malloc(24);
        if (prefix == NULL) {
            bl_event_free(ev);
            bl_conn_close(c);
            return;
        }
        bufs[n++] = uv_buf_init(prefix, (unsigned)bl_chunk_prefix(prefix, len));
    }
    if (len > 0)
        bufs[n++] = uv_buf_init(ev->data, (unsigned)len);
    if (c->framing == BL_FRAME_CHUNKED) {
        if (len > 0)
            bufs[n++] = uv_buf_init(more ? "\r\n" : "\r\n0\r\n\r\n", more ? 2 : 7);
        else if (!more)
            bufs[n++] = uv_buf_init("0\r\n\r\n", 5);
    }
    c->sent_body += len;
    if (n > 0) {
        bl_conn_write(c, bufs, n, ev, prefix, accounted);
    } else {
        bl_conn_unsent_release(ev->ex, accounted);
        bl_event_free(ev);
    }
    if (!more) {
        if (c->framing == BL_FRAME_CLOSE)
            c->keep_alive = false;
        response_done(c);
    }
}

static void app_finished(bl_conn_t *c, bool failed)
{
    if (!c->resp_started) {
        if (!failed)
            BL_ERROR("application returned without sending a response: 500");
        bl_conn_fail(c, 500);
    } else if (!c->resp_done) {
        /* Half a response: the client must see it was cut short. */
        BL_ERROR("application %s before completing its response: closing the connection",
                 failed ? "raised" : "returned");
        bl_conn_close(c);
    }
}

void bl_conn_dispatch(bl_server_t *s, bl_event_t *ev)
{
    (void)s;
    bl_conn_t *c = ev->ex != NULL ? ev->ex->conn : NULL;
    if (c == NULL || c->closing || c->lingering) {
        bl_event_free(ev);
        return;
    }
    if (ev->ex->kind == BL_KIND_WEBSOCKET && ev->type != BL_EV_CONSUMED) {
        bl_conn_ws_dispatch(c, ev);
        return;
    }
    switch (ev->type) {
    case BL_EV_RESPONSE:
        bl_conn_send_response(c, ev);
        return; /* ev is owned by the write */
    case BL_EV_SEND_BODY:
        bl_conn_send_body(c, ev);
        return;
    case BL_EV_CONTINUE:
        if (c->expect_continue && !c->continue_sent && !c->resp_started && !c->message_complete) {
            static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            uv_buf_t b = uv_buf_init(cont, sizeof(cont) - 1);
            c->continue_sent = true;
            bl_conn_write(c, &b, 1, NULL, NULL, 0);
        }
        break;
    case BL_EV_CONSUMED:
        ev->ex->body_inflight -= ev->aux < ev->ex->body_inflight ? ev->aux : ev->ex->body_inflight;
        bl_conn_update_reading(c);
        break;
    case BL_EV_FINISH:
        app_finished(c, (ev->flags & BL_EVF_ERROR) != 0);
        break;
    default:
        break;
    }
    bl_event_free(ev);
}
