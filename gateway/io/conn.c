/* One client connection on the I/O thread: accept, read, the deadlines and
 * the send-timeout watch, close and linger. It knows no protocol: HTTP
 * (conn_http.c) and WebSocket (conn_ws.c) plug in through c->proto, and
 * writing (conn_write.c) sits on top of this file. */
#include "bayleaf/bridge/bridge.h"
#include "bayleaf/common/buf.h"
#include "bayleaf/common/fault.h"
#include "bayleaf/proto/http_response.h"
#include "bayleaf/common/log.h"
#include "io.h"
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#ifdef __linux__
#include <linux/sockios.h>
#endif

/* ---- timers ---------------------------------------------------------- */

/* A connection's deadlines, each with its own due time (deadline_due) and
 * its own handler (on_timer): the protocol's (timer_kind: header, idle,
 * response, linger or WebSocket, one at a time), --send-timeout's watch over
 * a write backlog, --body-timeout's over a request body, and the look for a
 * client leaving while it is not read. One uv_timer_t is armed by
 * timer_arm, and only there, for whichever falls due first. */
typedef enum {
    DEADLINE_SEND,
    DEADLINE_BODY,
    DEADLINE_HUP,
    DEADLINE_KIND,
    DEADLINE_COUNT,
} deadline_t;

static void on_timer(uv_timer_t *t);

static uint64_t loop_now(bl_conn_t *c)
{
    return uv_now(&c->server->loop);
}

static uint64_t body_timeout_ms(bl_conn_t *c)
{
    return (uint64_t)(c->server->cfg->body_timeout * 1000);
}

/* Loop time deadline d falls due; UINT64_MAX when it is not armed. */
static uint64_t deadline_due(bl_conn_t *c, deadline_t d)
{
    switch (d) {
    case DEADLINE_SEND:
        return bl_conn_has(c, BL_CONN_F_SEND_WATCHED) ? c->send_due : UINT64_MAX;
    case DEADLINE_BODY: /* progress is noted lazily: the due time follows body_since */
        return bl_conn_has(c, BL_CONN_F_BODY_WATCHED) ? c->body_since + body_timeout_ms(c)
                                                      : UINT64_MAX;
    case DEADLINE_HUP:
        return bl_conn_has(c, BL_CONN_F_HUP_WATCHED) ? c->hup_due : UINT64_MAX;
    case DEADLINE_KIND:
        return c->timer_kind != TIMER_NONE ? c->timer_due : UINT64_MAX;
    case DEADLINE_COUNT:
        break;
    }
    return UINT64_MAX;
}

static void timer_arm(bl_conn_t *c)
{
    if (bl_conn_is_closing(c))
        return;
    uint64_t due = UINT64_MAX;
    for (deadline_t d = 0; d < DEADLINE_COUNT; d++) {
        uint64_t at = deadline_due(c, d);
        if (at < due)
            due = at;
    }
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

/* The watched body's turn. Progress is noted lazily (on_body sets
 * body_since), and the timer re-armed from it here. Returns true when the
 * connection was ended. */
static bool body_check(bl_conn_t *c, uint64_t now)
{
    if (bl_conn_is_ending(c)) {
        bl_conn_clear(c, BL_CONN_F_BODY_WATCHED); /* ending anyway */
        return false;
    }
    /* The app is behind, we do not read (the client does not read us), or
     * the client waits for our 100 Continue: its silence is not a stall. */
    bool waiting =
        bl_conn_has(c, BL_CONN_F_BODY_BLOCKED) || !bl_conn_has(c, BL_CONN_F_READING) ||
        (bl_conn_has(c, BL_CONN_F_EXPECT_CONTINUE) && !bl_conn_has(c, BL_CONN_F_CONTINUE_SENT));
    if (waiting)
        c->body_since = now;
    if (waiting || now - c->body_since < body_timeout_ms(c))
        return false;
    bl_conn_clear(c, BL_CONN_F_BODY_WATCHED);
    c->proto->on_timer(c, TIMER_BODY);
    return true;
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

uint64_t bl_conn_acked(bl_conn_t *c)
{
    uint64_t written = send_written(c);
    uint32_t outq = send_outq(c);
    return written > outq ? written - outq : 0;
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
void bl_conn_send_watch(bl_conn_t *c)
{
    if (bl_conn_has(c, BL_CONN_F_SEND_WATCHED) ||
        c->h.stream.write_queue_size + bl_conn_file_left(c) == 0 || send_timeout_ms(c) == 0)
        return;
    uint64_t now = loop_now(c);
    bl_conn_set(c, BL_CONN_F_SEND_WATCHED);
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
    /* A file being sent counts (conn_file.c adds its bytes to send_queued). */
    uint64_t backlog = c->h.stream.write_queue_size + bl_conn_file_left(c);
    if (backlog == 0) {
        bl_conn_clear(c, BL_CONN_F_SEND_WATCHED); /* drained: a new backlog starts a new watch */
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
        BL_INFO("Client %s read none of %llu pending bytes in %gs (--send-timeout): "
                "connection reset",
                who[0] ? who : (c->listener->is_unix ? "on a unix socket" : "-"),
                (unsigned long long)backlog, c->server->cfg->send_timeout);
        bl_metrics_count(BL_MC_SEND_TIMEOUTS, 1);
        conn_reset(c);
        return true;
    }
    send_plan(c, now);
    return false;
}

static bool hup_check(bl_conn_t *c);

static void on_timer(uv_timer_t *t)
{
    bl_conn_t *c = t->data;
    uint64_t now = loop_now(c);
    if (now >= deadline_due(c, DEADLINE_SEND) && send_check(c, now))
        return;
    if (now >= deadline_due(c, DEADLINE_BODY) && body_check(c, now))
        return;
    if (bl_conn_has(c, BL_CONN_F_HUP_WATCHED) && bl_conn_is_ending(c)) {
        bl_conn_clear(c, BL_CONN_F_HUP_WATCHED); /* ending: reads (linger) or writes decide now */
    } else if (now >= deadline_due(c, DEADLINE_HUP)) {
        if (hup_check(c))
            return;
        c->hup_due = now + BL_HUP_CHECK_MS;
    }
    if (now >= deadline_due(c, DEADLINE_KIND)) {
        timer_kind_t kind = c->timer_kind;
        c->timer_kind = TIMER_NONE;
        if (kind == TIMER_LINGER)
            bl_conn_close(c);
        else
            c->proto->on_timer(c, kind);
    }
    timer_arm(c); /* the others may still need it */
}

/* ---- closing --------------------------------------------------------- */

/* Drops the connection's reference to its exchange; the app hears of it
 * unless the response already completed. */
void bl_conn_detach(bl_conn_t *c, bool tell_app)
{
    bl_exchange_t *ex = c->ex;
    if (ex == NULL)
        return;
    c->ex = NULL;
    ex->conn = NULL;
    if (tell_app)
        bl_exchange_post_disconnect(ex, 0, NULL, 0);
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
    /* Open as a WebSocket from its 101 on (conn_ws.c moves it), else HTTP. */
    bl_metrics_gauge_add(
        c->ws_phase == WS_OPEN || c->ws_phase == WS_CLOSING ? BL_MG_CONN_WS : BL_MG_CONN_HTTP, -1);
    c->proto->free(c);
    free(c->rbuf);
    free(c->body);
    free(c->log_path);
    free(c);
    s->on_conn_gone(s);
}

/* A connection that is ending no longer counts for --limit-concurrency. */
static void conn_inactive(bl_conn_t *c)
{
    if (bl_conn_has(c, BL_CONN_F_ACTIVE)) {
        bl_conn_clear(c, BL_CONN_F_ACTIVE);
        c->server->nactive--;
    }
}

/* reset: end a TCP connection with a RST, dropping what the kernel still
 * holds for the client, rather than a FIN behind it. */
static void conn_close(bl_conn_t *c, bool reset)
{
    if (bl_conn_is_closing(c))
        return;
    c->phase = CONN_CLOSING;
    conn_inactive(c);
    if (c->proto->on_close != NULL)
        c->proto->on_close(c);
    bl_conn_file_abort(c); /* before the handles close: its poll is on the socket */
    bl_conn_detach(c, !bl_conn_has(c, BL_CONN_F_RESP_DONE));
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
    if (status < 0 || bl_conn_is_closing(c)) {
        bl_conn_close(c);
        return;
    }
    uv_read_stop(&c->h.stream);
    if (uv_read_start(&c->h.stream, linger_alloc, on_linger_read) != 0)
        bl_conn_close(c);
}

void bl_conn_end_after_writes(bl_conn_t *c)
{
    if (bl_conn_is_shut(c))
        return;
    if (c->writes_pending > 0) {
        c->phase = CONN_ENDING;
        uv_read_stop(&c->h.stream);
        bl_conn_clear(c, BL_CONN_F_READING);
        return;
    }
    c->phase = CONN_LINGERING;
    conn_inactive(c);
    bl_conn_detach(c, !bl_conn_has(c, BL_CONN_F_RESP_DONE));
    bl_conn_timer_set(c, TIMER_LINGER, 2.0);
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, &c->h.stream, on_shutdown) != 0)
        bl_conn_close(c);
}

/* ---- output limits ---------------------------------------------------- */

bool bl_conn_output_over(const bl_conn_t *c, output_use_t use)
{
    size_t backlog = c->h.stream.write_queue_size;
    switch (use) {
    case OUTPUT_FOR_READING:
        /* A client that does not read what we write (answers to its pings,
         * say) is not read either until it catches up: stopped above
         * BL_OUTPUT_HIGH_WATER, resumed at BL_WRITE_LOW_WATER. */
        return backlog > BL_OUTPUT_HIGH_WATER ||
               (!bl_conn_has(c, BL_CONN_F_READING) && backlog > BL_WRITE_LOW_WATER);
    case OUTPUT_FOR_NEXT:
        return backlog > BL_WRITE_HIGH_WATER; /* a client that pipelines but does not read */
    case OUTPUT_FOR_RESUME:
        return backlog > BL_WRITE_LOW_WATER;
    }
    return false;
}

/* ---- reading ---------------------------------------------------------- */

bool bl_conn_readahead_full(const bl_conn_t *c)
{
    return c->ex != NULL && c->ex->body_inflight > BL_BODY_HIGH_WATER;
}

uint64_t bl_conn_readahead_room(bl_conn_t *c)
{
    uint64_t inflight = c->ex->body_inflight;
    return inflight < BL_BODY_HIGH_WATER ? BL_BODY_HIGH_WATER - inflight : 0;
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    /* One buffer for every connection: each read is parsed before the next. */
    static char shared[65536];
    bl_conn_t *c = h->data;
    (void)size;
    *buf = uv_buf_init(shared, (unsigned)c->proto->read_size(c, sizeof(shared)));
}

/* The client's input ended: UV_EOF (its FIN), or an error (its RST). */
static void input_end(bl_conn_t *c, ssize_t err)
{
    if (c->proto->on_input_end != NULL && c->proto->on_input_end(c, err)) {
        /* A half-close the protocol lets run (a response still going out). */
        uv_read_stop(&c->h.stream);
        bl_conn_clear(c, BL_CONN_F_READING);
        bl_conn_set(c, BL_CONN_F_INPUT_ENDED);
        bl_conn_clear(c, BL_CONN_F_HUP_WATCHED);
        return;
    }
    bl_conn_close(c);
}

/* Whether input the kernel holds unread may still complete the request
 * being read: a client may send its whole request and then half-close. */
static bool input_may_complete(bl_conn_t *c)
{
    int unread = 0;
    uv_os_fd_t fd;
    if (uv_fileno(&c->h.handle, &fd) != 0 || ioctl(fd, FIONREAD, &unread) != 0 || unread <= 0)
        return false; /* nothing left: nothing more can come */
    return c->proto->input_may_complete(c, unread);
}

/* A connection that is not read would not see its client leave: look at the
 * socket, without reading it, for a FIN or RST (POLLRDHUP is reported with
 * input still unread). Returns true when the connection ended. */
static bool hup_check(bl_conn_t *c)
{
    uv_os_fd_t fd;
    if (uv_fileno(&c->h.handle, &fd) != 0)
        return false;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) <= 0)
        return false;
    if (p.revents & (POLLERR | POLLHUP)) {
        input_end(c, UV_ECONNRESET);
        return true;
    }
    if (!(p.revents & POLLRDHUP) || input_may_complete(c))
        return false;
    input_end(c, UV_EOF);
    return true;
}

int bl_conn_input_keep(bl_conn_t *c, const char *data, size_t len)
{
    if (bl_buf_reserve(&c->rbuf, &c->rcap, c->rlen + len, 0) != 0) {
        bl_conn_close(c);
        return -ENOMEM;
    }
    memcpy(c->rbuf + c->rlen, data, len);
    c->rlen += len;
    return 0;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    bl_conn_t *c = stream->data;
    if (nread < 0) {
        input_end(c, nread);
        return;
    }
    if (nread > 0 && c->proto->on_read(c, buf->base, (size_t)nread) != 0)
        return;
    c->server->on_input_queued(c->server);
    if (!bl_conn_is_closing(c))
        bl_conn_update_reading(c);
}

void bl_conn_replay_kept(bl_conn_t *c, void (*fn)(bl_conn_t *c, const char *data, size_t len))
{
    if (c->rlen == 0)
        return;
    char *data = c->rbuf;
    size_t len = c->rlen;
    c->rbuf = NULL;
    c->rlen = c->rcap = 0;
    fn(c, data, len);
    free(data);
}

/* Reads only when the protocol can use more input and the app keeps up. */
void bl_conn_update_reading(bl_conn_t *c)
{
    bool kept_waits = false; /* kept input goes first */
    if (c->proto->replay_kept != NULL && !bl_conn_is_shut(c))
        kept_waits = c->proto->replay_kept(c);
    if (bl_conn_is_ending(c))
        return;
    bl_conn_put(c, BL_CONN_F_BODY_BLOCKED, bl_conn_readahead_full(c));
    /* While paused for a response, input is still read (into rbuf, bounded):
     * stopping and restarting per request would cost two epoll_ctl calls. */
    bool want = !bl_conn_has(c, BL_CONN_F_BODY_BLOCKED) &&
                !bl_conn_output_over(c, OUTPUT_FOR_READING) && c->rlen < 65536 &&
                !c->server->up_held && !kept_waits;
    if (want && !bl_conn_has(c, BL_CONN_F_READING)) {
        if (uv_read_start(&c->h.stream, on_alloc, on_read) == 0)
            bl_conn_set(c, BL_CONN_F_READING);
        c->body_since = loop_now(c); /* --body-timeout counts from here again */
    } else if (!want && bl_conn_has(c, BL_CONN_F_READING)) {
        uv_read_stop(&c->h.stream);
        bl_conn_clear(c, BL_CONN_F_READING);
    }
    /* Not reading, the client's leaving is looked for (hup_check). */
    bool watch = !bl_conn_has(c, BL_CONN_F_READING) && !bl_conn_has(c, BL_CONN_F_INPUT_ENDED);
    if (watch && !bl_conn_has(c, BL_CONN_F_HUP_WATCHED)) {
        bl_conn_set(c, BL_CONN_F_HUP_WATCHED);
        c->hup_due = loop_now(c) + BL_HUP_CHECK_MS;
        timer_arm(c);
    } else if (!watch) {
        bl_conn_clear(c, BL_CONN_F_HUP_WATCHED);
    }
}

void bl_conn_update_reading_all(bl_server_t *s)
{
    for (bl_conn_t *c = s->conns; c != NULL; c = c->next)
        bl_conn_update_reading(c);
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

int bl_conn_accept(bl_listener_t *l)
{
    bl_server_t *s = l->server;
    uv_os_fd_t fd = -1;
    int err;
    bl_conn_t *c = bl_fault_fails(BL_FAULT_ACCEPT) ? NULL : calloc(1, sizeof(*c));
    if (c == NULL)
        return UV_ENOMEM; /* not accepted: on_connection's accept_failed drops it */
    c->server = s;
    c->listener = l;
    c->proto = s->conn_proto; /* its free runs even when accepting fails */
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
    bl_metrics_gauge_add(BL_MG_CONN_HTTP, 1);
    if ((err = uv_accept(&l->h.stream, &c->h.stream)) != 0) {
        bl_conn_close(c);
        return err;
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
    c->proto->on_open(c);
    bl_conn_set(c, BL_CONN_F_ACTIVE);
    s->nactive++;
    bl_conn_update_reading(c);
    uv_fileno(&c->h.handle, &fd);
    return fd;
}

void bl_conn_drain_all(bl_server_t *s, bool force)
{
    bl_conn_t *c = s->conns;
    while (c != NULL) {
        bl_conn_t *next = c->next;
        if (force)
            bl_conn_close(c);
        else if (c->proto->on_shutdown != NULL && c->proto->on_shutdown(c))
            ; /* the protocol ends it (a WebSocket's close handshake) */
        else if (c->ex == NULL && !bl_conn_is_shut(c) && c->writes_pending == 0)
            bl_conn_close(c); /* idle keep-alive: nothing in flight */
        c = next;
    }
}
