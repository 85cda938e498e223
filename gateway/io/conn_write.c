/* Writing to a connection: down events routed to the protocol, queued
 * writes and the send() wake-ups they owe the app, the small error
 * responses, and the access log. Sits on conn.c; reaches the protocol only
 * through c->proto. */
#include "bayleaf/bridge/bridge.h"
#include "bayleaf/common/buf.h"
#include "bayleaf/io/bufs.h"
#include "bayleaf/proto/http_response.h"
#include "io.h"
#include "conn.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
        else if (ex->conn != NULL)
            bl_conn_close(ex->conn); /* not a send() waiting for ever: a disconnect */
    }
}

/* The one way to discard a down event unwritten: its bytes leave the app's
 * count, so a send() waiting on them wakes. */
void bl_conn_event_drop(bl_event_t *ev)
{
    bl_conn_unsent_release(ev->ex, bl_event_unsent(ev));
    bl_event_free(ev);
}

/* Who owns the bytes of one write, and what is released once it is done. */
typedef struct {
    bl_event_t *ev;
    char *mem;
    size_t accounted;
    void (*release)(void *arg, bl_conn_t *c, int status);
    void *release_arg;
} write_owner_t;

/* The way out without queueing: the owner's bytes as if written (status 0)
 * or dropped. */
static void write_drop(bl_conn_t *c, const write_owner_t *o, int status)
{
    if (o->ev != NULL) {
        bl_conn_unsent_release(o->ev->ex, o->accounted);
        bl_event_free(o->ev);
    }
    free(o->mem);
    if (o->release != NULL)
        o->release(o->release_arg, c, status);
}

static void on_write(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    bl_conn_t *c = w->conn;
    bl_conn_unsent_release(w->ex, w->accounted);
    if (w->ev != NULL)
        bl_event_free(w->ev);
    free(w->mem);
    if (w->release != NULL)
        w->release(w->release_arg, c, status);
    free(w);
    c->writes_pending--;
    if (status < 0) {
        bl_conn_close(c);
        return;
    }
    if (c->writes_pending == 0 && c->proto->on_written != NULL && !bl_conn_is_ending(c))
        c->proto->on_written(c);
    if (c->writes_pending == 0 && bl_conn_is_ending(c))
        bl_conn_end_after_writes(c);
    else if (!bl_conn_output_over(c, OUTPUT_FOR_RESUME) &&
             !(c->proto->on_drain != NULL && c->proto->on_drain(c)) &&
             !bl_conn_has(c, BL_CONN_F_READING))
        bl_conn_update_reading(c); /* the client caught up: read it again */
}

size_t bl_bufs_split(const uv_buf_t *in, size_t nin, uv_buf_t *out, size_t cap, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < nin; i++) {
        size_t off = 0;
        do {
            size_t len = in[i].len - off < max ? in[i].len - off : max;
            if (n < cap)
                out[n] = bl_buf(in[i].base + off, len);
            n++;
            off += len;
        } while (off < in[i].len);
    }
    return n;
}

/* Queues bufs for c (what try_write cannot write now). Returns the bytes
 * queued in libuv, or -1 when the connection is closing. */
static long write_core(bl_conn_t *c, uv_buf_t *bufs, unsigned nbufs, const write_owner_t *o)
{
    if (bl_conn_is_shut(c)) {
        write_drop(c, o, UV_ECANCELED);
        return -1;
    }
    /* A buffer over BL_BUF_MAX (a body of gigabytes) goes as several. */
    uv_buf_t *split = NULL;
    size_t nsplit = bl_bufs_split(bufs, nbufs, NULL, 0, BL_BUF_MAX);
    if (nsplit != nbufs) {
        split = nsplit <= UINT_MAX ? malloc(nsplit * sizeof(*split)) : NULL;
        if (split == NULL) {
            write_drop(c, o, UV_ENOMEM);
            bl_conn_close(c);
            return -1;
        }
        bl_bufs_split(bufs, nbufs, split, nsplit, BL_BUF_MAX);
        bufs = split;
        nbufs = (unsigned)nsplit;
    }
    /* Most responses fit in the socket buffer: write them now. A completed
     * uv_write would also re-arm epoll (an epoll_ctl per response). */
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    int n = uv_try_write(&c->h.stream, bufs, nbufs);
    if (n >= 0 && (size_t)n == total) {
        write_drop(c, o, 0); /* all written */
        free(split);
        return 0;
    }
    if (n < 0 && n != UV_EAGAIN) {
        write_drop(c, o, n);
        free(split);
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
        write_drop(c, o, UV_ENOMEM);
        free(split);
        bl_conn_close(c);
        return -1;
    }
    w->conn = c;
    w->ev = o->ev;
    w->mem = o->mem;
    w->accounted = o->accounted;
    w->ex = o->ev != NULL ? o->ev->ex : NULL;
    w->release = o->release;
    w->release_arg = o->release_arg;
    c->writes_pending++;
    size_t queued = total - (n > 0 ? (size_t)n : 0);
    int err = uv_write(&w->req, &c->h.stream, bufs, nbufs, on_write); /* copies bufs */
    for (unsigned i = 0; err == 0 && i < nbufs; i++)
        c->send_queued += bufs[i].len;
    free(split);
    if (err != 0) {
        w->req.handle = &c->h.stream;
        on_write(&w->req, err);
        return -1;
    }
    bl_conn_send_watch(c);
    return queued <= LONG_MAX ? (long)queued : LONG_MAX;
}

/* Queues bufs; ev and mem are released when written. accounted: bytes the
 * Python side counted in ex->unsent. */
int bl_conn_write(bl_conn_t *c, uv_buf_t *bufs, unsigned nbufs, bl_event_t *ev, char *mem,
                  size_t accounted)
{
    write_owner_t o = {.ev = ev, .mem = mem, .accounted = accounted};
    return write_core(c, bufs, nbufs, &o) < 0 ? -1 : 0;
}

long bl_conn_write_with(bl_conn_t *c, uv_buf_t *bufs, unsigned nbufs,
                        void (*release)(void *arg, bl_conn_t *c, int status), void *arg)
{
    write_owner_t o = {.release = release, .release_arg = arg};
    return write_core(c, bufs, nbufs, &o);
}

/* Sends a small error response and ends the connection. */
void bl_conn_fail(bl_conn_t *c, int status)
{
    char *buf;
    size_t len;
    if (bl_conn_has(c, BL_CONN_F_RESP_STARTED) ||
        bl_response_simple(status, c->server->cfg->server_name, false, &buf, &len) != 0) {
        bl_conn_close(c);
        return;
    }
    bl_conn_set(c, BL_CONN_F_RESP_STARTED);
    c->status = status;
    c->sent_body = strlen(bl_status_reason(status)) + 1; /* the body bl_response_simple wrote */
    if (status == 426) {
        /* RFC 6455 4.4: say which WebSocket version we speak. */
        static const char v13[] = "sec-websocket-version: 13\r\n";
        char *eol = memchr(buf, '\n', len);
        size_t at = eol != NULL ? (size_t)(eol - buf) + 1 : 0;
        size_t cap = len;
        if (at > 0 && bl_buf_reserve(&buf, &cap, len + sizeof(v13) - 1, 0) == 0) {
            memmove(buf + at + sizeof(v13) - 1, buf + at, len - at);
            memcpy(buf + at, v13, sizeof(v13) - 1);
            len += sizeof(v13) - 1;
        }
    }
    uv_buf_t b = bl_buf(buf, len);
    bl_conn_write(c, &b, 1, NULL, buf, 0);
    bl_conn_set(c, BL_CONN_F_RESP_DONE);
    if (c->log_path != NULL)
        bl_conn_access_log_write(c);
    bl_conn_end_after_writes(c);
}

/* ---- down events ------------------------------------------------------ */

void bl_conn_dispatch(bl_server_t *s, bl_event_t *ev)
{
    (void)s;
    bl_conn_t *c = ev->ex != NULL ? ev->ex->conn : NULL;
    if (c == NULL || bl_conn_is_shut(c)) {
        bl_conn_event_drop(ev); /* the connection is gone or going: nothing more is written */
        return;
    }
    if (ev->type != BL_EV_CONSUMED) {
        c->proto->on_event(c, ev);
        return;
    }
    /* The app took read-ahead: the same for every protocol. */
    ev->ex->body_inflight -= ev->aux < ev->ex->body_inflight ? ev->aux : ev->ex->body_inflight;
    bl_conn_update_reading(c);
    bl_conn_event_drop(ev);
}

/* ---- access log ------------------------------------------------------- */

void bl_conn_access_log_write(bl_conn_t *c)
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
    /* Not strftime: %b follows the locale, which an app may set. */
    snprintf(date, sizeof(date), "%02d/%s/%04d:%02d:%02d:%02d", tm.tm_mday,
             bl_month_names[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
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
