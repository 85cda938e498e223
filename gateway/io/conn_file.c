/* A response body from a file (a WSGI app's wsgi.file_wrapper, SEND_FILE):
 * written to the client socket with sendfile(2), no copy through the
 * bridge. It starts once libuv's write queue is empty (what was queued
 * before it goes first) and, on EAGAIN, waits for the socket to be writable
 * with a uv_poll_t on a dup of the socket (libuv watches each descriptor
 * once: the stream's own is taken). The SEND_FILE event owns the file's
 * descriptor; it goes back up as FILE_SENT once the bytes are out, or is
 * freed (closing it) when the connection closes first. */
#include "bayleaf/bridge/bridge.h"
#include "bayleaf/common/log.h"
#include "bayleaf/common/metrics.h"
#include "io.h"
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

/* Bytes one sendfile call asks for, and bytes one connection writes per loop
 * iteration before it lets the others have a turn. */
#define FILE_STEP (1u << 20)
#define FILE_TURN (4u << 20)

typedef struct {
    uv_poll_t h;
    int fd; /* the dup of the socket it watches; closed once the handle is */
} file_poll_t;

struct bl_conn_file_s {
    bl_event_t *ev; /* the SEND_FILE (owns the file's descriptor) */
    bl_send_file_t sf;
    bl_conn_file_done_cb done;
    file_poll_t *poll; /* made at the first EAGAIN */
    bool polling;
};

static void on_poll_closed(uv_handle_t *h)
{
    file_poll_t *p = (file_poll_t *)h;
    if (close(p->fd) != 0)
        BL_WARN("close of a socket's duplicate: %s", strerror(errno));
    free(p);
}

/* Forgets the transfer; the event (with the file) is the caller's. */
static bl_event_t *file_forget(bl_conn_t *c)
{
    bl_conn_file_t *f = c->file;
    bl_event_t *ev = f->ev;
    if (f->poll != NULL)
        uv_close((uv_handle_t *)&f->poll->h, on_poll_closed); /* stops it */
    free(f);
    c->file = NULL;
    return ev;
}

void bl_conn_file_abort(bl_conn_t *c)
{
    if (c->file != NULL)
        bl_event_free(file_forget(c)); /* closes the file */
}

uint64_t bl_conn_file_left(const bl_conn_t *c)
{
    return c->file != NULL ? c->file->sf.len : 0;
}

static void file_pump(bl_conn_t *c);

static void on_poll(uv_poll_t *h, int status, int events)
{
    bl_conn_t *c = h->data;
    (void)events;
    if (c->file == NULL)
        return;
    if (status < 0 || bl_conn_is_shut(c)) {
        bl_conn_file_abort(c);
        bl_conn_close(c);
        return;
    }
    file_pump(c);
}

/* Waits for the socket to take more. Returns -1 when that cannot be done. */
static int file_wait(bl_conn_t *c)
{
    bl_conn_file_t *f = c->file;
    if (f->poll == NULL) {
        uv_os_fd_t sock;
        if (uv_fileno(&c->h.handle, &sock) != 0)
            return -1;
        file_poll_t *p = malloc(sizeof(*p));
        if (p == NULL)
            return -1;
        p->fd = fcntl(sock, F_DUPFD_CLOEXEC, 0);
        if (p->fd < 0) {
            BL_WARN("dup of a client socket: %s", strerror(errno));
            free(p);
            return -1;
        }
        int err = uv_poll_init(&c->server->loop, &p->h, p->fd);
        if (err != 0) {
            BL_WARN("uv_poll_init: %s", uv_strerror(err));
            if (close(p->fd) != 0)
                BL_WARN("close of a socket's duplicate: %s", strerror(errno));
            free(p);
            return -1;
        }
        p->h.data = c;
        f->poll = p;
        f->polling = false;
    }
    if (!f->polling) {
        int err = uv_poll_start(&f->poll->h, UV_WRITABLE, on_poll);
        if (err != 0) {
            BL_WARN("uv_poll_start: %s", uv_strerror(err));
            return -1;
        }
        f->polling = true;
    }
    bl_conn_send_watch(c); /* --send-timeout counts while the client reads none */
    return 0;
}

/* Writes what the socket takes now. */
static void file_pump(bl_conn_t *c)
{
    bl_conn_file_t *f = c->file;
    uv_os_fd_t sock;
    size_t turn = 0;
    if (c->writes_pending > 0)
        return; /* queued bytes go first: bl_conn_file_written comes back */
    if (uv_fileno(&c->h.handle, &sock) != 0) {
        bl_conn_file_abort(c);
        bl_conn_close(c);
        return;
    }
    while (f->sf.len > 0) {
        if (turn >= FILE_TURN) {
            if (file_wait(c) != 0)
                goto failed;
            return; /* the socket is writable: the next iteration goes on */
        }
        size_t want = f->sf.len < FILE_STEP ? (size_t)f->sf.len : FILE_STEP;
        off_t off = (off_t)f->sf.off;
        ssize_t n = sendfile(sock, f->sf.fd, &off, want);
        if (n > 0) {
            f->sf.off += (uint64_t)n;
            f->sf.len -= (uint64_t)n;
            c->sent_body += (uint64_t)n;
            c->send_queued += (uint64_t)n; /* --send-timeout sees progress */
            bl_metrics_count(BL_MC_SENDFILE_BYTES, (uint64_t)n);
            turn += (size_t)n;
            continue;
        }
        if (n == 0) {
            BL_ERROR("A response's file ended %llu bytes early (it shrank): closing the "
                     "connection",
                     (unsigned long long)f->sf.len);
            goto failed;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (file_wait(c) != 0)
                goto failed;
            return;
        }
        if (errno != EPIPE && errno != ECONNRESET)
            BL_ERROR("sendfile of a response's file: %s: closing the connection", strerror(errno));
        goto failed;
    }
    /* Sent whole: the event goes back up without its file. */
    bl_conn_file_done_cb done = f->done;
    bl_conn_file_sent(file_forget(c));
    done(c);
    return;
failed:
    bl_conn_file_abort(c);
    bl_conn_close(c); /* the app hears its client left */
}

void bl_conn_file_sent(bl_event_t *ev)
{
    bl_send_file_t sf;
    memcpy(&sf, ev->data, sizeof(sf));
    if (close(sf.fd) != 0)
        BL_WARN("close of a response's file: %s", strerror(errno));
    sf.fd = -1;
    memcpy(ev->data, &sf, sizeof(sf));
    ev->type = BL_EV_FILE_SENT; /* no allocation: the pool thread always hears */
    ev->next = NULL;
    bl_bridge_post_up(ev);
}

void bl_conn_file_start(bl_conn_t *c, bl_event_t *ev, const bl_send_file_t *sf,
                        bl_conn_file_done_cb done)
{
    bl_conn_file_t *f = calloc(1, sizeof(*f));
    if (f == NULL || c->file != NULL) {
        free(f);
        bl_event_free(ev);
        bl_conn_close(c);
        return;
    }
    f->ev = ev;
    f->sf = *sf;
    f->done = done;
    c->file = f;
    file_pump(c);
}

void bl_conn_file_written(bl_conn_t *c)
{
    if (c->file != NULL && !c->file->polling && !bl_conn_is_shut(c))
        file_pump(c);
}
