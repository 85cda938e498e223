/* The HTTP/1 protocol of a connection (bl_conn_http_proto): parse, hand
 * requests to Python, frame the responses it sends, keep-alive and
 * pipelining in order. An upgrade request goes to server->upgrade_proto. */
#include "bayleaf/bridge/bridge.h"
#include "bayleaf/common/buf.h"
#include "bayleaf/common/fault.h"
#include "bayleaf/io/bufs.h"
#include "bayleaf/proto/http_response.h"
#include "bayleaf/common/log.h"
#include "bayleaf/proto/proxy.h"
#include "io.h"
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- the request cycle ------------------------------------------------ */

static void request_reset(bl_conn_t *c)
{
    bl_conn_clear(c, BL_CONN_F_REQUEST_POSTED);
    bl_conn_clear(c, BL_CONN_F_BODY_FINAL_POSTED);
    bl_conn_clear(c, BL_CONN_F_MESSAGE_COMPLETE);
    bl_conn_clear(c, BL_CONN_F_RESP_STARTED);
    bl_conn_clear(c, BL_CONN_F_RESP_DONE);
    bl_conn_clear(c, BL_CONN_F_EXPECT_CONTINUE);
    bl_conn_clear(c, BL_CONN_F_CONTINUE_SENT);
    c->sent_body = 0;
    c->status = 0;
    c->body_len = 0;
    free(c->log_path);
    c->log_path = NULL;
}

/* After a response and its request both ended: the next request, or the end. */
static void request_next(bl_conn_t *c)
{
    if (!bl_conn_has(c, BL_CONN_F_RESP_DONE) || !bl_conn_has(c, BL_CONN_F_MESSAGE_COMPLETE) ||
        bl_conn_is_shut(c))
        return;
    if (bl_conn_output_over(c, OUTPUT_FOR_NEXT)) {
        /* No new work until the client reads. */
        bl_conn_set(c, BL_CONN_F_NEXT_WAITING);
        return;
    }
    bl_conn_clear(c, BL_CONN_F_NEXT_WAITING);
    bl_conn_detach(c, false);
    if (!bl_conn_has(c, BL_CONN_F_KEEP_ALIVE) || c->server->draining) {
        bl_conn_end_after_writes(c);
        return;
    }
    request_reset(c);
    bl_conn_clear(c, BL_CONN_F_PAUSED);
    bl_http_parser_resume(&c->parser);
    bl_conn_timer_set(c, TIMER_IDLE, c->server->cfg->keepalive_timeout);
    bl_conn_replay_kept(c, bl_conn_http_parse); /* pipelined input: parse it now */
    bl_conn_update_reading(c);
}

static void response_done(bl_conn_t *c)
{
    bl_conn_set(c, BL_CONN_F_RESP_DONE);
    bl_metrics_http_status(c->status);
    bl_conn_access_log_write(c);
    /* The client was told to wait for 100-continue and never was: its body
     * may or may not follow, so the connection cannot be reused. */
    if (bl_conn_has(c, BL_CONN_F_EXPECT_CONTINUE) && !bl_conn_has(c, BL_CONN_F_CONTINUE_SENT) &&
        !bl_conn_has(c, BL_CONN_F_MESSAGE_COMPLETE))
        bl_conn_clear(c, BL_CONN_F_KEEP_ALIVE);
    if (!bl_conn_has(c, BL_CONN_F_KEEP_ALIVE) && !bl_conn_has(c, BL_CONN_F_MESSAGE_COMPLETE)) {
        bl_conn_end_after_writes(c);
        return;
    }
    if (!bl_conn_has(c, BL_CONN_F_MESSAGE_COMPLETE)) {
        /* The app answered without reading the whole body: the rest is read
         * and dropped (up to a bound) so the connection can be reused. */
        bl_conn_detach(c, false);
        c->discarded = 0;
        bl_conn_update_reading(c);
        return;
    }
    request_next(c);
}

/* Posts the request gathered so far: the REQUEST event with the first body
 * bytes, then BODY events with the rest. */
static void post_request_part(bl_conn_t *c)
{
    bl_exchange_t *ex = c->ex;
    if (ex == NULL || bl_conn_has(c, BL_CONN_F_BODY_FINAL_POSTED) ||
        (bl_conn_has(c, BL_CONN_F_REQUEST_POSTED) && c->body_len == 0 &&
         !bl_conn_has(c, BL_CONN_F_MESSAGE_COMPLETE)))
        return;
    int type = bl_conn_has(c, BL_CONN_F_REQUEST_POSTED) ? BL_EV_BODY : BL_EV_REQUEST;
    bl_event_t *ev = bl_fault_fails(BL_FAULT_REQUEST) ? NULL : bl_event_new(type, ex, c->body_len);
    if (ev == NULL) {
        bl_conn_fail(c, 500);
        return;
    }
    if (c->body_len > 0)
        memcpy(ev->data, c->body, c->body_len);
    ev->flags = bl_conn_has(c, BL_CONN_F_MESSAGE_COMPLETE) ? 0 : BL_EVF_MORE;
    ex->body_inflight += bl_event_readahead(ev);
    c->body_len = 0;
    bl_conn_set(c, BL_CONN_F_REQUEST_POSTED);
    bl_conn_put(c, BL_CONN_F_BODY_FINAL_POSTED, bl_conn_has(c, BL_CONN_F_MESSAGE_COMPLETE));
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
        BL_WARN("Out of memory: the Host from Forwarded is not applied");
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
    bl_conn_put(c, BL_CONN_F_HEAD_REQUEST, strcmp(head->method, "HEAD") == 0);
    bl_conn_put(c, BL_CONN_F_HTTP10, head->http_major == 1 && head->http_minor == 0);
    /* Non-WebSocket upgrades are served as plain HTTP, then the connection ends. */
    bl_conn_put(c, BL_CONN_F_KEEP_ALIVE, head->keep_alive && !head->upgrade);
    bl_conn_put(c, BL_CONN_F_EXPECT_CONTINUE, head->expect_continue);
    if (head->websocket) {
        int status = c->server->upgrade_proto->on_upgrade(c, head, ex);
        if (status != 0) {
            p->error_status = status;
            return -1;
        }
        return 0;
    }
    /* --body-timeout watches until the body ends (on_complete); set before the
     * timer is armed below, which then counts it in. */
    bl_conn_put(c, BL_CONN_F_BODY_WATCHED, c->server->cfg->body_timeout > 0);
    c->body_since = uv_now(&c->server->loop);
    bl_conn_timer_set(c, c->server->cfg->http_timeout > 0 ? TIMER_RESPONSE : TIMER_NONE,
                      c->server->cfg->http_timeout);
    return 0;
}

static int on_body(bl_http_parser_t *p, const char *at, size_t len)
{
    bl_conn_t *c = p->data;
    c->body_since = uv_now(&c->server->loop); /* --body-timeout: progress */
    if (c->ex == NULL) {
        /* The response is done: the app does not want the rest. Past a bound,
         * closing is cheaper than reading it all. */
        c->discarded += len;
        if (c->discarded > BL_DISCARD_LIMIT) {
            bl_conn_clear(c, BL_CONN_F_KEEP_ALIVE);
            p->error_status = 0;
            return -1;
        }
        return 0;
    }
    if (bl_buf_reserve(&c->body, &c->body_cap, c->body_len + len, 16384) != 0) {
        p->error_status = 500;
        return -1;
    }
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    return 0;
}

static int on_complete(bl_http_parser_t *p)
{
    bl_conn_t *c = p->data;
    bl_conn_set(c, BL_CONN_F_MESSAGE_COMPLETE);
    bl_conn_clear(c, BL_CONN_F_BODY_WATCHED); /* a timer armed for it finds nothing due */
    post_request_part(c);
    return 0;
}

static const bl_http_handler_t parser_callbacks = {on_head, on_body, on_complete};

/* Parses as much as allowed; keeps the rest in rbuf. */
void bl_conn_http_parse(bl_conn_t *c, const char *data, size_t len)
{
    while (len > 0 && !bl_conn_has(c, BL_CONN_F_PAUSED) && !bl_conn_is_shut(c)) {
        size_t used = 0;
        if (bl_http_parser_idle(&c->parser) && c->timer_kind == TIMER_IDLE)
            bl_conn_timer_set(c, TIMER_HEADER, c->server->cfg->header_timeout);
        int rc = bl_http_parser_feed(&c->parser, data, len, &used);
        data += used;
        len -= used;
        if (rc == BL_HTTP_ERROR) {
            if (bl_conn_has(c, BL_CONN_F_RESP_DONE) &&
                !bl_conn_has(c, BL_CONN_F_MESSAGE_COMPLETE)) {
                /* Broken or too long a body nobody reads: end quietly. */
                bl_conn_end_after_writes(c);
            } else if (c->ex != NULL && bl_conn_has(c, BL_CONN_F_REQUEST_POSTED)) {
                /* A broken body: the app's request is cut short. */
                bl_conn_close(c);
            } else {
                bl_conn_detach(c, false);
                bl_conn_fail(c, c->parser.error_status);
            }
            return;
        }
        if (rc == BL_HTTP_PAUSED || rc == BL_HTTP_UPGRADE)
            bl_conn_set(c, BL_CONN_F_PAUSED);
    }
    post_request_part(c);
    if (len > 0 && !bl_conn_is_shut(c) && bl_conn_input_keep(c, data, len) != 0)
        return;
    if (bl_conn_has(c, BL_CONN_F_PAUSED))
        request_next(c);
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
        BL_ERROR("Application sent more than its Content-Length (%llu): response cut, "
                 "connection closed",
                 (unsigned long long)c->clen);
        *len = (size_t)room;
        *more = false;
        bl_conn_clear(c, BL_CONN_F_KEEP_ALIVE);
        /* The app's next send() raises: its response is over. */
        bl_conn_detach(c, true);
        return true;
    }
    if (!*more && c->sent_body + *len < c->clen) {
        BL_ERROR("Application ended its body before its Content-Length (%llu): closing",
                 (unsigned long long)c->clen);
        bl_conn_clear(c, BL_CONN_F_KEEP_ALIVE);
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
        .head_request = bl_conn_has(c, BL_CONN_F_HEAD_REQUEST),
        .http10 = bl_conn_has(c, BL_CONN_F_HTTP10),
        .keep_alive = bl_conn_has(c, BL_CONN_F_KEEP_ALIVE),
        .server_name = c->server->cfg->server_name,
    };
    char *head;
    size_t head_len;
    bool more = (ev->flags & BL_EVF_MORE) != 0;
    if (bl_conn_has(c, BL_CONN_F_RESP_STARTED)) {
        bl_conn_event_drop(ev);
        return;
    }
    bool keep_alive = bl_conn_has(c, BL_CONN_F_KEEP_ALIVE);
    int err = bl_response_head(&r, &head, &head_len, &c->framing, &keep_alive);
    bl_conn_put(c, BL_CONN_F_KEEP_ALIVE, keep_alive);
    if (err != 0) {
        if (err == -EINVAL) /* py_http.c refuses these first; a last guard */
            BL_ERROR("Application response with status %d refused (1xx, or Content-Length "
                     "with Transfer-Encoding): 500",
                     ev->status);
        bl_conn_event_drop(ev);
        bl_conn_fail(c, 500);
        return;
    }
    bl_conn_set(c, BL_CONN_F_RESP_STARTED);
    c->status = ev->status;
    c->clen = (ev->flags & BL_EVF_HAS_CLEN) ? ev->aux : ev->len2;
    if (c->timer_kind == TIMER_RESPONSE)
        bl_conn_timer_set(c, TIMER_NONE, 0);

    uv_buf_t bufs[4];
    unsigned n = 0;
    size_t body_len = ev->len2;
    if (!body_within_length(c, &body_len, &more)) {
        bl_conn_event_drop(ev);
        free(head);
        return;
    }
    char *body = ev->data + ev->len;
    size_t accounted = ev->len2; /* all of it, cut or not */
    bufs[n++] = bl_buf(head, head_len);
    char prefix[24];
    if (c->framing != BL_FRAME_NONE && body_len > 0) {
        if (c->framing == BL_FRAME_CHUNKED) {
            size_t pl = bl_chunk_prefix(prefix, body_len);
            /* The prefix must outlive this call: append it to the head buffer. */
            size_t cap = head_len;
            if (bl_buf_reserve(&head, &cap, head_len + pl, 0) != 0) {
                free(head);
                bl_conn_event_drop(ev);
                bl_conn_close(c);
                return;
            }
            memcpy(head + head_len, prefix, pl);
            bufs[0] = bl_buf(head, head_len + pl);
        }
        bufs[n++] = bl_buf(body, body_len);
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
    if (!bl_conn_has(c, BL_CONN_F_RESP_STARTED) || bl_conn_has(c, BL_CONN_F_RESP_DONE)) {
        bl_conn_event_drop(ev);
        return;
    }
    size_t accounted = len;
    if (!body_within_length(c, &len, &more)) {
        bl_conn_event_drop(ev);
        return;
    }
    uv_buf_t bufs[3];
    unsigned n = 0;
    char *prefix = NULL;
    if (c->framing == BL_FRAME_NONE) {
        /* HEAD or a status without a body: the bytes are dropped. */
        bl_conn_event_drop(ev);
        if (!more)
            response_done(c);
        return;
    }
    if (c->framing == BL_FRAME_CHUNKED && len > 0) {
        prefix = malloc(24);
        if (prefix == NULL) {
            bl_conn_event_drop(ev);
            bl_conn_close(c);
            return;
        }
        bufs[n++] = bl_buf(prefix, bl_chunk_prefix(prefix, len));
    }
    if (len > 0)
        bufs[n++] = bl_buf(ev->data, len);
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
        bl_conn_event_drop(ev);
    }
    if (!more) {
        if (c->framing == BL_FRAME_CLOSE)
            bl_conn_clear(c, BL_CONN_F_KEEP_ALIVE);
        response_done(c);
    }
}

/* A file body's end: the chunked end (after the file's chunk, or alone), or
 * the close that ends an unframed one; then the response's end. */
static void file_body_end(bl_conn_t *c, bool after_chunk)
{
    if (c->framing == BL_FRAME_CHUNKED) {
        uv_buf_t b = after_chunk ? uv_buf_init("\r\n0\r\n\r\n", 7) : uv_buf_init("0\r\n\r\n", 5);
        bl_conn_write(c, &b, 1, NULL, NULL, 0);
    } else if (c->framing == BL_FRAME_CLOSE) {
        bl_conn_clear(c, BL_CONN_F_KEEP_ALIVE);
    }
    if (!bl_conn_is_shut(c))
        response_done(c);
}

/* The file of a SEND_FILE went out whole. */
static void file_done(bl_conn_t *c)
{
    file_body_end(c, true);
}

/* A WSGI app's last body from a file: its length was set by the pool thread
 * (the Content-Length left, or the file's size), framed here as a SEND_BODY
 * of that length would be. */
static void send_file(bl_conn_t *c, bl_event_t *ev)
{
    bl_send_file_t sf;
    memcpy(&sf, ev->data, sizeof(sf));
    bool more = false;
    size_t len = sf.len <= SIZE_MAX ? (size_t)sf.len : SIZE_MAX;
    if (!bl_conn_has(c, BL_CONN_F_RESP_STARTED) || bl_conn_has(c, BL_CONN_F_RESP_DONE) ||
        c->file != NULL) {
        bl_event_free(ev); /* the app is told by the close */
        bl_conn_close(c);
        return;
    }
    body_within_length(c, &len, &more);
    sf.len = len;
    if (c->framing == BL_FRAME_NONE || len == 0) {
        /* HEAD, a status without a body, or an empty file: no sendfile. */
        bl_conn_file_sent(ev);
        file_body_end(c, false);
        return;
    }
    if (c->framing == BL_FRAME_CHUNKED) {
        char *prefix = malloc(24);
        if (prefix == NULL) {
            bl_event_free(ev);
            bl_conn_close(c);
            return;
        }
        uv_buf_t b = bl_buf(prefix, bl_chunk_prefix(prefix, len));
        if (bl_conn_write(c, &b, 1, NULL, prefix, 0) != 0) {
            bl_event_free(ev);
            return; /* closing */
        }
    }
    bl_conn_file_start(c, ev, &sf, file_done);
}

/* The app's coroutine returned (or raised): its response must be whole. */
static void app_returned(bl_conn_t *c, bool failed)
{
    if (!bl_conn_has(c, BL_CONN_F_RESP_STARTED)) {
        if (!failed)
            BL_ERROR("Application returned without sending a response: 500");
        bl_conn_detach(c, false); /* it returned: nobody to tell */
        bl_conn_fail(c, 500);
    } else if (!bl_conn_has(c, BL_CONN_F_RESP_DONE)) {
        /* Half a response: the client must see it was cut short. */
        BL_ERROR("Application %s before completing its response: closing the connection",
                 failed ? "raised" : "returned");
        bl_conn_close(c);
    }
}

static void on_event(bl_conn_t *c, bl_event_t *ev)
{
    switch (ev->type) {
    case BL_EV_RESPONSE:
        bl_conn_send_response(c, ev);
        return; /* ev is owned by the write */
    case BL_EV_SEND_BODY:
        bl_conn_send_body(c, ev);
        return;
    case BL_EV_SEND_FILE:
        send_file(c, ev);
        return;
    case BL_EV_CONTINUE:
        if (bl_conn_has(c, BL_CONN_F_EXPECT_CONTINUE) && !bl_conn_has(c, BL_CONN_F_CONTINUE_SENT) &&
            !bl_conn_has(c, BL_CONN_F_RESP_STARTED) &&
            !bl_conn_has(c, BL_CONN_F_MESSAGE_COMPLETE)) {
            static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            uv_buf_t b = uv_buf_init(cont, sizeof(cont) - 1);
            bl_conn_set(c, BL_CONN_F_CONTINUE_SENT);
            bl_conn_write(c, &b, 1, NULL, NULL, 0);
        }
        break;
    case BL_EV_FINISH:
        app_returned(c, (ev->flags & BL_EVF_ERROR) != 0);
        break;
    default:
        break;
    }
    bl_conn_event_drop(ev);
}

/* ---- the protocol table ------------------------------------------------ */

static void on_open(bl_conn_t *c)
{
    bl_http_parser_init(&c->parser, &parser_callbacks, &c->server->limits, c);
    bl_conn_timer_set(c, TIMER_HEADER, c->server->cfg->header_timeout);
}

int bl_conn_http_read(bl_conn_t *c, const char *data, size_t len)
{
    /* Reading stops when paused, but a read may already be under way. */
    if (bl_conn_has(c, BL_CONN_F_PAUSED))
        return bl_conn_input_keep(c, data, len) != 0 ? -1 : 0;
    bl_conn_http_parse(c, data, len);
    return 0;
}

/* Bytes to read now: no more than fit under the read-ahead bound
 * (BL_BODY_HIGH_WATER) as one body event, so that the bound holds in heap
 * bytes after any read. */
static size_t read_size(bl_conn_t *c, size_t max)
{
    if (c->ex == NULL)
        return max; /* nothing is queued for an app from this read */
    uint64_t room = bl_conn_readahead_room(c);
    size_t event = bl_alloc_cost(sizeof(bl_event_t));
    uint64_t n = room > event ? room - event : 0;
    if (n < 1024)
        n = 1024; /* progress: the app takes at least one message of it */
    return n < max ? (size_t)n : max;
}

static bool on_input_end(bl_conn_t *c, ssize_t err)
{
    if (c->ex != NULL && bl_conn_has(c, BL_CONN_F_RESP_STARTED) &&
        !bl_conn_has(c, BL_CONN_F_RESP_DONE) && bl_conn_has(c, BL_CONN_F_MESSAGE_COMPLETE) &&
        err == UV_EOF) {
        /* half-close after a full request: let the response finish */
        bl_conn_clear(c, BL_CONN_F_KEEP_ALIVE);
        return true;
    }
    return false;
}

bool bl_conn_http_input_may_complete(bl_conn_t *c, int unread)
{
    const llhttp_t *llh = &c->parser.llh;
    if (c->ex != NULL && !bl_conn_has(c, BL_CONN_F_MESSAGE_COMPLETE) &&
        (llh->flags & F_CONTENT_LENGTH) && !(llh->flags & F_CHUNKED) &&
        llh->content_length > (uint64_t)unread)
        return false; /* too few bytes left to end the body */
    return true;
}

void bl_conn_http_timer(bl_conn_t *c, timer_kind_t kind)
{
    switch (kind) {
    case TIMER_RESPONSE:
        if (!bl_conn_has(c, BL_CONN_F_RESP_STARTED)) {
            BL_WARN("Application did not start a response within %gs: 503",
                    c->server->cfg->http_timeout);
            bl_conn_detach(c, true);
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
        bl_conn_close(c);
        break;
    case TIMER_BODY: {
        const char *who = c->log_host[0] ? c->log_host : c->client_host;
        BL_INFO("Client %s sent no request body bytes in %gs (--body-timeout): %s",
                who[0] ? who : (c->listener->is_unix ? "on a unix socket" : "-"),
                c->server->cfg->body_timeout,
                bl_conn_has(c, BL_CONN_F_RESP_STARTED) ? "connection closed" : "408");
        if (!bl_conn_has(c, BL_CONN_F_RESP_STARTED)) {
            bl_conn_detach(c, true); /* the app hears http.disconnect */
            bl_conn_fail(c, 408);
        } else if (!bl_conn_has(c, BL_CONN_F_RESP_DONE)) {
            bl_conn_close(c); /* the response is cut; the app hears of it */
        } else {
            /* an unread body being dropped: end after our writes */
            bl_conn_clear(c, BL_CONN_F_KEEP_ALIVE);
            bl_conn_end_after_writes(c);
        }
        break;
    }
    default:
        break;
    }
}

/* A client that pipelines but did not read caught up: its next request. */
bool bl_conn_http_drain(bl_conn_t *c)
{
    if (!bl_conn_has(c, BL_CONN_F_NEXT_WAITING))
        return false;
    request_next(c);
    return true;
}

void bl_conn_http_free(bl_conn_t *c)
{
    bl_http_parser_free(&c->parser);
}

const bl_conn_proto_t bl_conn_http_proto = {
    .on_open = on_open,
    .on_read = bl_conn_http_read,
    .read_size = read_size,
    .on_input_end = on_input_end,
    .input_may_complete = bl_conn_http_input_may_complete,
    .on_event = on_event,
    .on_timer = bl_conn_http_timer,
    .on_drain = bl_conn_http_drain,
    .free = bl_conn_http_free,
    .on_written = bl_conn_file_written,
};
