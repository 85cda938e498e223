/* The --metrics responder (metrics_http.h): one thread, one libuv loop, a
 * listener and short-lived connections that each get one answer. */
#include "bayleaf/io/metrics_http.h"
#include "bayleaf/common/log.h"
#include "bayleaf/common/metrics.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define MH_MAX_CONNS   64    /* beyond: closed at once (scrapers are few) */
#define MH_MAX_HEAD    4096  /* a request head larger than this gets 431 */
#define MH_DEADLINE_MS 10000 /* a connection's whole life */

typedef union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_stream_t stream;
    uv_handle_t handle;
} mh_stream_t;

struct bl_metrics_http_s {
    uv_loop_t loop;
    uv_async_t stop;
    mh_stream_t listener;
    bool is_unix;
    int nconns;
    pthread_t thread;
};

typedef struct {
    mh_stream_t h;
    uv_timer_t deadline;
    uv_write_t wr;
    bl_metrics_http_t *m;
    int handles_open;
    bool answered;
    size_t len;
    char *resp;
    char head[MH_MAX_HEAD + 1];
} mh_conn_t;

static void mh_conn_closed(uv_handle_t *h)
{
    mh_conn_t *c = h->data;
    if (--c->handles_open > 0)
        return;
    c->m->nconns--;
    free(c->resp);
    free(c);
}

static void mh_conn_close(mh_conn_t *c)
{
    if (uv_is_closing(&c->h.handle))
        return;
    uv_close(&c->h.handle, mh_conn_closed);
    uv_close((uv_handle_t *)&c->deadline, mh_conn_closed);
}

static void mh_on_written(uv_write_t *req, int status)
{
    (void)status;
    mh_conn_close(req->data);
}

static const char *mh_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 431:
        return "Request Header Fields Too Large";
    default:
        return "Service Unavailable";
    }
}

/* The answer to a request head (or to a head too large: 431). */
static void mh_respond(mh_conn_t *c, int status, const char *type, const char *body,
                       size_t body_len, bool head_only)
{
    char *resp = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&resp, &len);
    if (f == NULL) {
        mh_conn_close(c);
        return;
    }
    fprintf(f,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            status, mh_reason(status), type, body_len);
    if (!head_only && body_len > 0)
        fwrite(body, 1, body_len, f);
    if (fclose(f) != 0 || resp == NULL) {
        free(resp);
        mh_conn_close(c);
        return;
    }
    c->resp = resp;
    c->answered = true;
    uv_read_stop(&c->h.stream);
    uv_buf_t b = uv_buf_init(resp, (unsigned)len);
    c->wr.data = c;
    if (uv_write(&c->wr, &c->h.stream, &b, 1, mh_on_written) != 0)
        mh_conn_close(c);
}

static void mh_answer(mh_conn_t *c)
{
    static const char text[] = "text/plain; charset=utf-8";
    char method[8], path[64];
    if (sscanf(c->head, "%7s %63s", method, path) != 2) {
        mh_respond(c, 404, text, "not found\n", 10, false);
        return;
    }
    bool head_only = strcmp(method, "HEAD") == 0;
    char *query = strchr(path, '?');
    if (query != NULL)
        *query = '\0';
    if (!head_only && strcmp(method, "GET") != 0) {
        mh_respond(c, 405, text, "GET or HEAD only\n", 17, false);
    } else if (strcmp(path, "/ready") == 0) {
        if (bl_metrics_ready())
            mh_respond(c, 200, text, "ready\n", 6, head_only);
        else
            mh_respond(c, 503, text, "not ready\n", 10, head_only);
    } else if (strcmp(path, "/metrics") == 0) {
        char *body = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&body, &len);
        if (f == NULL) {
            mh_respond(c, 503, text, "out of memory\n", 14, head_only);
            return;
        }
        bl_metrics_render(f);
        if (fclose(f) != 0 || body == NULL)
            mh_respond(c, 503, text, "out of memory\n", 14, head_only);
        else
            mh_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", body, len, head_only);
        free(body);
    } else {
        mh_respond(c, 404, text, "not found: /metrics or /ready\n", 30, head_only);
    }
}

static void mh_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    mh_conn_t *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->head + c->len, (unsigned)(MH_MAX_HEAD - c->len));
}

static void mh_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    mh_conn_t *c = stream->data;
    (void)buf;
    if (nread < 0) {
        mh_conn_close(c);
        return;
    }
    c->len += (size_t)nread;
    c->head[c->len] = '\0';
    if (strstr(c->head, "\r\n\r\n") != NULL || strstr(c->head, "\n\n") != NULL)
        mh_answer(c);
    else if (c->len == MH_MAX_HEAD)
        mh_respond(c, 431, "text/plain; charset=utf-8", "request head too large\n", 23, false);
}

static void mh_on_deadline(uv_timer_t *t)
{
    mh_conn_close(t->data);
}

static void mh_on_connection(uv_stream_t *server, int status)
{
    bl_metrics_http_t *m = server->data;
    if (status < 0)
        return;
    mh_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return; /* the client waits in the backlog until memory allows */
    c->m = m;
    if (m->is_unix)
        uv_pipe_init(&m->loop, &c->h.pipe, 0);
    else
        uv_tcp_init(&m->loop, &c->h.tcp);
    uv_timer_init(&m->loop, &c->deadline);
    c->h.handle.data = c;
    c->deadline.data = c;
    c->handles_open = 2;
    m->nconns++;
    if (uv_accept(server, &c->h.stream) != 0 || m->nconns > MH_MAX_CONNS) {
        mh_conn_close(c);
        return;
    }
    uv_timer_start(&c->deadline, mh_on_deadline, MH_DEADLINE_MS, 0);
    if (uv_read_start(&c->h.stream, mh_alloc, mh_on_read) != 0)
        mh_conn_close(c);
}

/* arg: the responder; any other handle data is a connection's. */
static void mh_close_any(uv_handle_t *h, void *arg)
{
    if (uv_is_closing(h))
        return;
    if (h->data != arg)
        mh_conn_close(h->data); /* both of its handles */
    else
        uv_close(h, NULL);
}

static void mh_on_stop(uv_async_t *a)
{
    bl_metrics_http_t *m = a->data;
    uv_walk(&m->loop, mh_close_any, m);
}

static void *mh_main(void *arg)
{
    bl_metrics_http_t *m = arg;
    pthread_setname_np(pthread_self(), "bayleaf-metrics");
    uv_run(&m->loop, UV_RUN_DEFAULT);
    return NULL;
}

bl_metrics_http_t *bl_metrics_http_start(int fd, bool is_unix)
{
    bl_metrics_http_t *m = calloc(1, sizeof(*m));
    int err, dup_fd = -1;
    if (m == NULL) {
        fprintf(stderr, "bayleaf: error: --metrics: out of memory\n");
        return NULL;
    }
    if ((err = uv_loop_init(&m->loop)) != 0) {
        fprintf(stderr, "bayleaf: error: --metrics: %s\n", uv_strerror(err));
        free(m);
        return NULL;
    }
    m->is_unix = is_unix;
    uv_async_init(&m->loop, &m->stop, mh_on_stop);
    m->stop.data = m;
    if (is_unix)
        uv_pipe_init(&m->loop, &m->listener.pipe, 0);
    else
        uv_tcp_init(&m->loop, &m->listener.tcp);
    m->listener.handle.data = m;
    dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    err = dup_fd < 0 ? UV_EMFILE
          : is_unix  ? uv_pipe_open(&m->listener.pipe, dup_fd)
                     : uv_tcp_open(&m->listener.tcp, dup_fd);
    if (err != 0 && dup_fd >= 0)
        close(dup_fd);
    if (err == 0)
        err = uv_listen(&m->listener.stream, 64, mh_on_connection);
    if (err == 0)
        err = -pthread_create(&m->thread, NULL, mh_main, m);
    if (err != 0) {
        fprintf(stderr, "bayleaf: error: --metrics: cannot serve: %s\n", uv_strerror(err));
        uv_walk(&m->loop, mh_close_any, m);
        uv_run(&m->loop, UV_RUN_DEFAULT);
        uv_loop_close(&m->loop);
        free(m);
        return NULL;
    }
    return m;
}

void bl_metrics_http_stop(bl_metrics_http_t *m)
{
    if (m == NULL)
        return;
    uv_async_send(&m->stop);
    pthread_join(m->thread, NULL);
    uv_loop_close(&m->loop);
    free(m);
}
