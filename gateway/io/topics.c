/* The topics registry (include/bayleaf/io/topics.h): topics by name, their
 * subscribers and retained value, each peer's queue of shared frames, the
 * slow-subscriber bound and conflation. I/O thread only; no libuv, no socket:
 * peers write through their owner's table. */
#include "bayleaf/io/topics.h"
#include "bayleaf/common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bl_topic_s {
    bl_topic_t *next; /* in its bucket */
    uint32_t hash;
    uint32_t nsubs, cap;
    uintptr_t *subs;            /* peer pointers; low bit: BL_TOPIC_SUB_CONFLATE */
    bl_topic_frame_t *retained; /* the plain frame of the last retained publish */
    size_t nlen;
    char name[];
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- frames ------------------------------------------------------------------ */

void bl_topic_frame_ref(bl_topic_frame_t *f)
{
    f->refs++;
}

void bl_topic_frame_unref(bl_topic_frame_t *f)
{
    if (--f->refs == 0)
        free(f);
}

/* An unmasked server frame with FIN, the opcode of flags, RSV1 when compressed. */
static bl_topic_frame_t *frame_new(const uint8_t *payload, size_t plen, unsigned flags,
                                   bool compressed)
{
    uint8_t hdr[10];
    size_t h = 2;
    hdr[0] = (uint8_t)(0x80 | (compressed ? 0x40 : 0) | ((flags & BL_TOPIC_F_TEXT) ? 0x1 : 0x2));
    if (plen < 126) {
        hdr[1] = (uint8_t)plen;
    } else if (plen <= 0xffff) {
        hdr[1] = 126;
        hdr[2] = (uint8_t)(plen >> 8);
        hdr[3] = (uint8_t)plen;
        h = 4;
    } else {
        hdr[1] = 127;
        for (int i = 0; i < 8; i++)
            hdr[2 + i] = (uint8_t)((uint64_t)plen >> (56 - 8 * i));
        h = 10;
    }
    if (plen > SIZE_MAX - sizeof(bl_topic_frame_t) - h)
        return NULL;
    bl_topic_frame_t *f = malloc(sizeof(*f) + h + plen);
    if (f == NULL)
        return NULL;
    f->refs = 1;
    f->hdr_len = (uint8_t)h;
    f->flags = (uint8_t)(flags & BL_TOPIC_F_TEXT);
    f->len = h + plen;
    memcpy(f->data, hdr, h);
    if (plen > 0)
        memcpy(f->data + h, payload, plen);
    return f;
}

/* The frame a peer with these deflate bits gets for plain frame f: f itself
 * (a new reference) or, for a deflate peer, f compressed without context
 * (cached in cache[bits] for the rest of this publish). NULL on OOM. */
static bl_topic_frame_t *frame_for(bl_topics_t *t, bl_topic_frame_t *f, uint8_t bits,
                                   bl_topic_frame_t **cache)
{
    if (bits == 0 || bits > 15) {
        bl_topic_frame_ref(f);
        return f;
    }
    if (cache[bits] == NULL) {
        const uint8_t *z = NULL;
        size_t zlen = 0;
        bl_ws_deflate_t *d = t->deflaters[bits];
        if (d == NULL) {
            bl_ws_deflate_params_t p = {.server_no_context_takeover = true,
                                        .client_no_context_takeover = true,
                                        .server_bits = bits,
                                        .client_bits = 15};
            if (bl_ws_deflate_new(&t->deflaters[bits], &p, t->limits.deflate_threshold) != 0)
                return NULL;
            d = t->deflaters[bits];
        }
        if (bl_ws_deflate_compress(d, f->data + f->hdr_len, f->len - f->hdr_len, &z, &zlen) != 0)
            return NULL;
        if (z == NULL) { /* short or incompressible: the plain frame */
            bl_topic_frame_ref(f);
            cache[bits] = f;
        } else if ((cache[bits] = frame_new(z, zlen, f->flags, true)) == NULL) {
            return NULL;
        }
    }
    bl_topic_frame_ref(cache[bits]);
    return cache[bits];
}

static void cache_release(bl_topic_frame_t **cache)
{
    for (int i = 0; i < 16; i++) {
        if (cache[i] != NULL)
            bl_topic_frame_unref(cache[i]);
        cache[i] = NULL;
    }
}

/* ---- the table --------------------------------------------------------------- */

static uint32_t hash_of(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

bool bl_topics_name_ok(const bl_topics_t *t, const char *topic, size_t tlen)
{
    return tlen > 0 && tlen <= t->limits.name_max && memchr(topic, '\0', tlen) == NULL;
}

static bl_topic_t *topic_find(const bl_topics_t *t, const char *name, size_t n, uint32_t h)
{
    for (bl_topic_t *tp = t->buckets[h & (t->nbuckets - 1)]; tp != NULL; tp = tp->next)
        if (tp->hash == h && tp->nlen == n && memcmp(tp->name, name, n) == 0)
            return tp;
    return NULL;
}

static void table_grow(bl_topics_t *t)
{
    size_t n = t->nbuckets * 2;
    bl_topic_t **b = calloc(n, sizeof(*b));
    if (b == NULL)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < t->nbuckets; i++) {
        bl_topic_t *tp = t->buckets[i];
        while (tp != NULL) {
            bl_topic_t *next = tp->next;
            tp->next = b[tp->hash & (n - 1)];
            b[tp->hash & (n - 1)] = tp;
            tp = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

static bl_topic_t *topic_get(bl_topics_t *t, const char *name, size_t n)
{
    uint32_t h = hash_of(name, n);
    bl_topic_t *tp = topic_find(t, name, n, h);
    if (tp != NULL)
        return tp;
    if ((tp = calloc(1, sizeof(*tp) + n)) == NULL)
        return NULL;
    tp->hash = h;
    tp->nlen = n;
    memcpy(tp->name, name, n);
    if (t->ntopics >= t->nbuckets)
        table_grow(t);
    bl_topic_t **slot = &t->buckets[h & (t->nbuckets - 1)];
    tp->next = *slot;
    *slot = tp;
    t->ntopics++;
    return tp;
}

/* A topic with neither subscribers nor a retained value goes. */
static void topic_maybe_free(bl_topics_t *t, bl_topic_t *tp)
{
    if (tp->nsubs > 0 || tp->retained != NULL)
        return;
    bl_topic_t **pp = &t->buckets[tp->hash & (t->nbuckets - 1)];
    while (*pp != tp)
        pp = &(*pp)->next;
    *pp = tp->next;
    t->ntopics--;
    free(tp->subs);
    free(tp);
}

static void retained_set(bl_topics_t *t, bl_topic_t *tp, bl_topic_frame_t *f)
{
    if (tp->retained != NULL) {
        t->retained_bytes -= tp->retained->len;
        bl_topic_frame_unref(tp->retained);
        tp->retained = NULL;
    }
    if (f == NULL)
        return;
    if (t->retained_bytes + f->len > t->limits.retained_max) {
        static bl_log_limit_t lim;
        unsigned held;
        if (bl_log_limit_pass(&lim, now_ms(), &held))
            BL_WARN("topics: the retained values reached --topics-retained-bytes (%zu): "
                    "topic %.*s keeps none (%u more since the last report)",
                    t->limits.retained_max, (int)(tp->nlen < 80 ? tp->nlen : 80), tp->name, held);
        return;
    }
    bl_topic_frame_ref(f);
    tp->retained = f;
    t->retained_bytes += f->len;
}

int bl_topics_init(bl_topics_t *t, const bl_topics_limits_t *limits)
{
    memset(t, 0, sizeof(*t));
    t->limits = *limits;
    t->nbuckets = 64;
    t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
    return t->buckets != NULL ? 0 : -ENOMEM;
}

void bl_topics_destroy(bl_topics_t *t)
{
    for (size_t i = 0; t->buckets != NULL && i < t->nbuckets; i++) {
        bl_topic_t *tp = t->buckets[i];
        while (tp != NULL) {
            bl_topic_t *next = tp->next;
            if (tp->retained != NULL)
                bl_topic_frame_unref(tp->retained);
            free(tp->subs);
            free(tp);
            tp = next;
        }
    }
    free(t->buckets);
    for (int i = 0; i < 16; i++)
        if (t->deflaters[i] != NULL)
            bl_ws_deflate_free(t->deflaters[i]);
    memset(t, 0, sizeof(*t));
}

size_t bl_topics_count(const bl_topics_t *t, const char *topic, size_t tlen)
{
    bl_topic_t *tp = topic_find(t, topic, tlen, hash_of(topic, tlen));
    return tp != NULL ? tp->nsubs : 0;
}

/* ---- peers' queues ----------------------------------------------------------- */

static void peer_mark(bl_topics_t *t, bl_topic_peer_t *p)
{
    if (p->dirty)
        return;
    p->dirty = true;
    p->dirty_next = t->dirty;
    t->dirty = p;
}

static void peer_check_bound(bl_topics_t *t, bl_topic_peer_t *p)
{
    /* One message goes whatever its size when nothing else is behind. */
    bool alone = p->npend <= 1 && p->inflight == 0;
    if (!p->overflowed && !alone && p->pend_bytes + p->inflight > t->limits.queue_max) {
        p->overflowed = true; /* acted on at the flush, outside any fan-out loop */
        t->overflows++;
        peer_mark(t, p);
    }
}

/* Queues f (a reference the queue takes) for p. With conflation, a frame of
 * the same topic still queued is replaced: only the newest waits. */
static int peer_enqueue(bl_topics_t *t, bl_topic_peer_t *p, bl_topic_t *tp, bl_topic_frame_t *f,
                        bool conflate)
{
    if (p->overflowed) { /* it is going: nothing more is queued */
        bl_topic_frame_unref(f);
        return 0;
    }
    if (conflate) {
        for (uint32_t i = 0; i < p->npend; i++) {
            if (p->pend[i].topic == tp) {
                p->pend_bytes += f->len - p->pend[i].frame->len;
                bl_topic_frame_unref(p->pend[i].frame);
                p->pend[i].frame = f;
                t->delivered++;
                peer_mark(t, p);
                return 0;
            }
        }
    }
    if (p->npend == p->pend_cap) {
        uint32_t cap = p->pend_cap ? p->pend_cap * 2 : 4;
        bl_topic_pending_t *n = realloc(p->pend, cap * sizeof(*n));
        if (n == NULL) {
            bl_topic_frame_unref(f);
            return -ENOMEM;
        }
        p->pend = n;
        p->pend_cap = cap;
    }
    p->pend[p->npend].topic = tp;
    p->pend[p->npend].frame = f;
    p->npend++;
    p->pend_bytes += f->len;
    t->delivered++;
    peer_mark(t, p);
    peer_check_bound(t, p);
    return 0;
}

static void peer_drop_queue(bl_topic_peer_t *p)
{
    for (uint32_t i = 0; i < p->npend; i++)
        bl_topic_frame_unref(p->pend[i].frame);
    p->npend = 0;
    p->pend_bytes = 0;
}

/* Writes p's queue in one batch, if its owner can take it. */
/* force: write even while the owner's socket is behind (bl_topics_peer_drain). */
static void peer_write_pending(bl_topic_peer_t *p, bool force)
{
    if (p->overflowed) {
        peer_drop_queue(p);
        p->ops->overflow(p); /* the owner closes: bl_topics_peer_close */
        return;
    }
    enum { BATCH = 64 };
    bl_topic_frame_t *frames[BATCH];
    while (p->npend > 0 && (force || p->ops->writable(p))) {
        /* Off the queue before the write: the owner may close (and close the
         * peer) inside it. */
        unsigned n = p->npend < BATCH ? p->npend : BATCH;
        for (unsigned i = 0; i < n; i++) {
            frames[i] = p->pend[i].frame;
            p->pend_bytes -= frames[i]->len;
        }
        memmove(p->pend, p->pend + n, (p->npend - n) * sizeof(*p->pend));
        p->npend -= n;
        long queued = p->ops->write(p, frames, n);
        for (unsigned i = 0; i < n; i++)
            bl_topic_frame_unref(frames[i]);
        if (queued < 0)
            return; /* the owner closed */
        p->inflight += (size_t)queued;
    }
    if (p->npend == 0 && p->pend_cap > 64) {
        free(p->pend); /* a burst's array goes back */
        p->pend = NULL;
        p->pend_cap = 0;
    }
}

static void peer_flush(bl_topic_peer_t *p)
{
    peer_write_pending(p, false);
}

void bl_topics_peer_drain(bl_topic_peer_t *p)
{
    peer_write_pending(p, true);
}

void bl_topics_flush(bl_topics_t *t)
{
    t->unflushed = 0;
    while (t->dirty != NULL) {
        /* Take the list whole: a flush may mark peers again. */
        bl_topic_peer_t *p = t->dirty;
        t->dirty = NULL;
        while (p != NULL) {
            bl_topic_peer_t *next = p->dirty_next;
            p->dirty = false;
            p->dirty_next = NULL;
            peer_flush(p);
            p = next;
        }
    }
}

void bl_topics_peer_written(bl_topics_t *t, bl_topic_peer_t *p, size_t n)
{
    p->inflight -= n < p->inflight ? n : p->inflight;
    if (p->npend > 0)
        peer_mark(t, p);
}

/* ---- subscriptions ----------------------------------------------------------- */

void bl_topics_peer_init(bl_topic_peer_t *p, const bl_topic_peer_ops_t *ops, void *owner,
                         uint8_t deflate_bits)
{
    memset(p, 0, sizeof(*p));
    p->ops = ops;
    p->owner = owner;
    p->deflate_bits = deflate_bits;
}

static bl_topic_sub_t *sub_find(bl_topic_peer_t *p, const bl_topic_t *tp)
{
    for (uint32_t i = 0; i < p->nsubs; i++)
        if (p->subs[i].topic == tp)
            return &p->subs[i];
    return NULL;
}

/* Removes p's subscription i (its slot in the topic too). */
static void sub_remove(bl_topics_t *t, bl_topic_peer_t *p, uint32_t i)
{
    bl_topic_t *tp = p->subs[i].topic;
    uint32_t at = p->subs[i].index;
    /* The topic's last subscriber moves into the hole: its own record of
     * where it sits changes. */
    uint32_t last = tp->nsubs - 1;
    if (at != last) {
        uintptr_t moved = tp->subs[last];
        tp->subs[at] = moved;
        bl_topic_sub_t *ms =
            sub_find((bl_topic_peer_t *)(moved & ~(uintptr_t)BL_TOPIC_SUB_CONFLATE), tp);
        if (ms != NULL)
            ms->index = at;
    }
    tp->nsubs--;
    p->subs[i] = p->subs[p->nsubs - 1];
    p->nsubs--;
    if (tp->nsubs == 0) {
        free(tp->subs);
        tp->subs = NULL;
        tp->cap = 0;
        if (t->on_last_unsubscribed != NULL) {
            t->on_last_unsubscribed(t->hook_ud, tp->name, tp->nlen);
            /* Unsubscribed, this process stops hearing the topic: its value here
             * would go stale while the transport (Redis) keeps the current one. */
            if (tp->retained != NULL) {
                t->retained_bytes -= tp->retained->len;
                bl_topic_frame_unref(tp->retained);
                tp->retained = NULL;
            }
        }
    }
    /* Its queued frames stay: they were published while it subscribed. */
    topic_maybe_free(t, tp);
}

static void pend_forget_topic(bl_topic_peer_t *p, const bl_topic_t *tp)
{
    /* A peer's queue names only topics it subscribes (alive): frames of one it
     * left stay queued but conflate no more. */
    for (uint32_t i = 0; i < p->npend; i++)
        if (p->pend[i].topic == tp)
            p->pend[i].topic = NULL;
}

int bl_topics_subscribe(bl_topics_t *t, bl_topic_peer_t *p, const char *topic, size_t tlen,
                        unsigned sub_flags)
{
    if (!bl_topics_name_ok(t, topic, tlen))
        return -EINVAL;
    bl_topic_t *tp = topic_get(t, topic, tlen);
    if (tp == NULL)
        return -ENOMEM;
    uintptr_t conflate = (sub_flags & BL_TOPIC_SUB_CONFLATE) ? BL_TOPIC_SUB_CONFLATE : 0;
    bl_topic_sub_t *s = sub_find(p, tp);
    if (s != NULL) { /* again: only the mode changes */
        s->flags = (uint32_t)conflate;
        tp->subs[s->index] = (uintptr_t)p | conflate;
        return 0;
    }
    int err = -E2BIG;
    if (p->nsubs >= t->limits.per_conn_max)
        goto fail;
    err = -ENOMEM;
    if (p->nsubs == p->subs_cap) {
        uint32_t cap = p->subs_cap < 2 ? 2 : p->subs_cap + p->subs_cap / 2;
        bl_topic_sub_t *n = realloc(p->subs, cap * sizeof(*n));
        if (n == NULL)
            goto fail;
        p->subs = n;
        p->subs_cap = cap;
    }
    if (tp->nsubs == tp->cap) {
        uint32_t cap = tp->cap < 4 ? 4 : tp->cap + tp->cap / 2;
        uintptr_t *n = realloc(tp->subs, cap * sizeof(*n));
        if (n == NULL)
            goto fail;
        tp->subs = n;
        tp->cap = cap;
    }
    tp->subs[tp->nsubs] = (uintptr_t)p | conflate;
    p->subs[p->nsubs].topic = tp;
    p->subs[p->nsubs].index = tp->nsubs;
    p->subs[p->nsubs].flags = (uint32_t)conflate;
    p->nsubs++;
    tp->nsubs++;
    if (tp->nsubs == 1 && t->on_first_subscriber != NULL)
        t->on_first_subscriber(t->hook_ud, tp->name, tp->nlen);
    if (tp->retained != NULL) {
        bl_topic_frame_t *cache[16] = {0};
        bl_topic_frame_t *f = frame_for(t, tp->retained, p->deflate_bits, cache);
        cache_release(cache);
        if (f == NULL || peer_enqueue(t, p, tp, f, conflate != 0) != 0)
            return -ENOMEM;
    }
    return 0;
fail:
    topic_maybe_free(t, tp);
    return err;
}

int bl_topics_unsubscribe(bl_topics_t *t, bl_topic_peer_t *p, const char *topic, size_t tlen)
{
    if (!bl_topics_name_ok(t, topic, tlen))
        return -EINVAL;
    bl_topic_t *tp = topic_find(t, topic, tlen, hash_of(topic, tlen));
    if (tp == NULL)
        return 0;
    for (uint32_t i = 0; i < p->nsubs; i++) {
        if (p->subs[i].topic == tp) {
            pend_forget_topic(p, tp);
            sub_remove(t, p, i);
            break;
        }
    }
    return 0;
}

void bl_topics_peer_close(bl_topics_t *t, bl_topic_peer_t *p)
{
    peer_drop_queue(p);
    while (p->nsubs > 0)
        sub_remove(t, p, p->nsubs - 1);
    free(p->subs);
    free(p->pend);
    p->subs = NULL;
    p->pend = NULL;
    p->subs_cap = p->pend_cap = 0;
    /* Off the flush list. */
    for (bl_topic_peer_t **pp = &t->dirty; *pp != NULL; pp = &(*pp)->dirty_next) {
        if (*pp == p) {
            *pp = p->dirty_next;
            break;
        }
    }
    p->dirty = false;
    p->overflowed = false;
}

/* ---- publishing ---------------------------------------------------------------- */

int bl_topics_deliver(bl_topics_t *t, const char *topic, size_t tlen, const uint8_t *payload,
                      size_t plen, unsigned flags)
{
    if (!bl_topics_name_ok(t, topic, tlen))
        return -EINVAL;
    bool retain = (flags & BL_TOPIC_F_RETAIN) != 0;
    bl_topic_t *tp =
        retain ? topic_get(t, topic, tlen) : topic_find(t, topic, tlen, hash_of(topic, tlen));
    if (tp == NULL)
        return retain ? -ENOMEM : 0; /* nobody listens */
    bl_topic_frame_t *f = frame_new(payload, plen, flags, false);
    if (f == NULL) {
        topic_maybe_free(t, tp);
        return -ENOMEM;
    }
    if (retain)
        retained_set(t, tp, f);
    int rc = 0;
    bl_topic_frame_t *cache[16] = {0};
    for (uint32_t i = 0; i < tp->nsubs; i++) {
        bl_topic_peer_t *p = (bl_topic_peer_t *)(tp->subs[i] & ~(uintptr_t)BL_TOPIC_SUB_CONFLATE);
        bool conflate = (tp->subs[i] & BL_TOPIC_SUB_CONFLATE) != 0;
        bl_topic_frame_t *pf = frame_for(t, f, p->deflate_bits, cache);
        if (pf == NULL || peer_enqueue(t, p, tp, pf, conflate) != 0) {
            /* Out of memory for this peer: never a silent gap, it goes. */
            p->overflowed = true;
            peer_mark(t, p);
            rc = -ENOMEM;
        }
    }
    size_t len = f->len;
    cache_release(cache);
    bl_topic_frame_unref(f);
    topic_maybe_free(t, tp);
    /* A burst (many publishes in one loop iteration) is written as it comes,
     * half a queue bound at a time: what waits for the flush is not a
     * subscriber falling behind, and never grows past that. */
    t->unflushed += len;
    if (t->unflushed >= t->limits.queue_max / 2)
        bl_topics_flush(t);
    return rc;
}

int bl_topics_publish(bl_topics_t *t, const char *topic, size_t tlen, const uint8_t *payload,
                      size_t plen, unsigned flags)
{
    if (t->publish != NULL)
        return t->publish(t->hook_ud, topic, tlen, payload, plen, flags);
    return bl_topics_deliver(t, topic, tlen, payload, plen, flags);
}
