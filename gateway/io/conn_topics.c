/* A WebSocket connection as a topics subscriber (topics.h): the peer's
 * owner table (write shared frames with one writev, say whether a backlog
 * waits, close a slow subscriber with 1013), and the app's subscribe and
 * unsubscribe events. The peer exists from the first subscribe on. */
#include "bayleaf/io/bufs.h"
#include "bayleaf/io/topics.h"
#include "bayleaf/proto/ws.h"
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Frames a write queued in libuv hold until it completes. */
typedef struct {
    size_t bytes; /* queued in libuv: the peer's inflight */
    unsigned n;
    bl_topic_frame_t *frames[];
} held_t;

static void held_release(void *arg, bl_conn_t *c, int status)
{
    (void)status;
    held_t *h = arg;
    for (unsigned i = 0; i < h->n; i++)
        bl_topic_frame_unref(h->frames[i]);
    if (c->topic_peer != NULL)
        bl_topics_peer_written(&c->server->topics, c->topic_peer, h->bytes);
    free(h);
}

static long peer_write(bl_topic_peer_t *p, bl_topic_frame_t *const *frames, unsigned n)
{
    bl_conn_t *c = p->owner;
    uv_buf_t bufs[64];
    size_t total = 0;
    if (n > 64)
        n = 64; /* topics.c batches by 64 */
    for (unsigned i = 0; i < n; i++) {
        bufs[i] = bl_buf((const char *)frames[i]->data, frames[i]->len);
        total += frames[i]->len;
    }
    /* Most of the time the socket takes it all: no allocation, no copy. */
    int w = uv_try_write(&c->h.stream, bufs, n);
    if (w >= 0 && (size_t)w == total)
        return 0;
    if (w < 0 && w != UV_EAGAIN) {
        bl_conn_close(c);
        return -1;
    }
    size_t skip = w > 0 ? (size_t)w : 0;
    unsigned first = 0;
    while (skip > 0 && skip >= bufs[first].len) {
        skip -= bufs[first].len;
        first++;
    }
    bufs[first].base += skip;
    bufs[first].len -= skip;
    held_t *h = malloc(sizeof(*h) + (n - first) * sizeof(h->frames[0]));
    if (h == NULL) {
        bl_conn_close(c);
        return -1;
    }
    h->n = n - first;
    h->bytes = total - (w > 0 ? (size_t)w : 0);
    for (unsigned i = first; i < n; i++) {
        bl_topic_frame_ref(frames[i]);
        h->frames[i - first] = frames[i];
    }
    size_t bytes = h->bytes;
    long q = bl_conn_write_with(c, bufs + first, n - first, held_release, h);
    if (q < 0)
        return -1;
    /* Written by the second try after all: held_release already ran. */
    return q == 0 ? 0 : (long)bytes;
}

static bool peer_writable(bl_topic_peer_t *p)
{
    bl_conn_t *c = p->owner;
    return c->writes_pending == 0 && c->ws_phase == WS_OPEN && !bl_conn_is_ending(c);
}

static void peer_overflow(bl_topic_peer_t *p)
{
    bl_conn_t *c = p->owner;
    static bl_log_limit_t lim;
    unsigned held;
    if (bl_log_limit_pass(&lim, uv_now(&c->server->loop), &held))
        BL_WARN("topics: %s fell over %zu bytes behind (--topics-queue-bytes): closing it "
                "with 1013 (%u more since the last report)",
                c->log_host[0] ? c->log_host : "a subscriber", c->server->topics.limits.queue_max,
                held);
    bl_conn_ws_close(c, 1013, "subscriber too slow");
}

static const bl_topic_peer_ops_t peer_ops = {peer_write, peer_writable, peer_overflow};

static bl_topic_peer_t *peer_get(bl_conn_t *c)
{
    if (c->topic_peer != NULL)
        return c->topic_peer;
    bl_topic_peer_t *p = malloc(sizeof(*p));
    if (p == NULL)
        return NULL;
    /* A shared compressed frame is right for a connection whose deflate
     * keeps no server context; one with context takeover gets plain frames
     * (always allowed, and they leave its compressor's window alone). */
    uint8_t bits = 0;
    if (bl_conn_has(c, BL_CONN_F_WS_DEFLATE) && c->ws_deflate_params.server_no_context_takeover)
        bits = c->ws_deflate_params.server_bits;
    bl_topics_peer_init(p, &peer_ops, c, bits);
    c->topic_peer = p;
    return p;
}

void bl_conn_topics_close(bl_conn_t *c)
{
    /* The struct stays until the connection's memory goes (bl_conn_topics_free):
     * this may run inside the peer's own flush. */
    if (c->topic_peer != NULL)
        bl_topics_peer_close(&c->server->topics, c->topic_peer);
}

void bl_conn_topics_free(bl_conn_t *c)
{
    if (c->topic_peer == NULL)
        return;
    bl_topics_peer_close(&c->server->topics, c->topic_peer);
    free(c->topic_peer);
    c->topic_peer = NULL;
}

void bl_conn_topics_written(bl_conn_t *c)
{
    if (c->topic_peer != NULL && c->topic_peer->npend > 0)
        bl_topics_peer_written(&c->server->topics, c->topic_peer, 0);
}

void bl_conn_topics_event(bl_conn_t *c, bl_event_t *ev)
{
    bl_topics_t *t = &c->server->topics;
    bool sub = ev->type == BL_EV_TOPIC_SUB;
    unsigned flags = (ev->flags & BL_EVF_CONFLATE) ? BL_TOPIC_SUB_CONFLATE : 0;
    bl_topic_peer_t *p = c->ws_phase == WS_OPEN ? (sub ? peer_get(c) : c->topic_peer) : NULL;
    int err = 0;
    if (sub && p == NULL && c->ws_phase == WS_OPEN)
        err = -ENOMEM;
    const uint8_t *d = (const uint8_t *)ev->data;
    size_t off = 0;
    while (err == 0 && p != NULL && off + 2 <= ev->len) {
        size_t n = ((size_t)d[off] << 8) | d[off + 1];
        off += 2;
        if (n > ev->len - off)
            break; /* py_topics.c wrote it: cannot happen */
        const char *name = ev->data + off;
        off += n;
        err =
            sub ? bl_topics_subscribe(t, p, name, n, flags) : bl_topics_unsubscribe(t, p, name, n);
    }
    bl_event_free(ev);
    if (err == -E2BIG) {
        BL_WARN("topics: %s subscribed over --topics-per-connection (%u): closing it with 1008",
                c->log_host[0] ? c->log_host : "a client", t->limits.per_conn_max);
        bl_conn_ws_close(c, 1008, "too many topics");
    } else if (err != 0) {
        bl_conn_ws_close(c, 1011, "out of memory");
    }
}
