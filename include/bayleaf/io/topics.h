/* Topics: native publish/subscribe on the I/O thread.
 *
 * A registry topic -> subscribers, owned by the I/O thread (no locks). A
 * publish is encoded once as a WebSocket frame (a refcounted bl_topic_frame_t,
 * and once more per deflate window size when permessage-deflate subscribers
 * want it compressed) and queued to every subscriber without a copy; each
 * subscriber's queue is written with one writev per loop iteration
 * (bl_topics_flush). Python does nothing per subscriber.
 *
 * Subscribers are peers (bl_topic_peer_t): a connection's topic state, with a
 * table of what the owner does (write frames, close for overflow). The
 * registry knows neither sockets nor libuv, so tests/unit/io drives it with a
 * fake owner.
 *
 * Memory per subscription: one 8-byte slot in the topic's array and one
 * 16-byte slot in the peer's (arrays grow by half): about 36 bytes. */
#ifndef BAYLEAF_IO_TOPICS_H
#define BAYLEAF_IO_TOPICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bayleaf/proto/ws_deflate.h"

enum {
    BL_TOPIC_F_TEXT = 1u << 0,   /* a text frame (valid UTF-8), else binary */
    BL_TOPIC_F_RETAIN = 1u << 1, /* keep as the topic's last value */
};

/* Defaults of the limits (flags --topics-*). */
#define BL_TOPICS_NAME_MAX       256u
#define BL_TOPICS_PER_CONN_MAX   1024u
#define BL_TOPICS_RETAINED_BYTES (64u * 1024u * 1024u)
#define BL_TOPICS_QUEUE_BYTES    (1024u * 1024u)

/* One encoded frame, shared by every subscriber it is queued or written to. */
typedef struct bl_topic_frame_s {
    uint32_t refs;
    uint8_t hdr_len; /* the frame header; the payload follows it */
    uint8_t flags;   /* BL_TOPIC_F_TEXT */
    size_t len;      /* header + payload */
    uint8_t data[];
} bl_topic_frame_t;

void bl_topic_frame_ref(bl_topic_frame_t *f);
void bl_topic_frame_unref(bl_topic_frame_t *f);

typedef struct bl_topic_peer_s bl_topic_peer_t;
typedef struct bl_topic_s bl_topic_t;

/* What the owner of a peer (a WebSocket connection) does for the registry. */
typedef struct {
    /* Writes frames[0..n) in order, as one batch. Returns the bytes it could
     * not write at once and queued (each frame it keeps gets a reference; the
     * owner calls bl_topics_peer_written as they leave), or a negative error
     * (the owner closed: it calls bl_topics_peer_close). */
    long (*write)(bl_topic_peer_t *p, bl_topic_frame_t *const *frames, unsigned n);
    /* Whether the owner has no write backlog: frames go out now, else they
     * wait in the peer's queue (where conflation can replace them). */
    bool (*writable)(bl_topic_peer_t *p);
    /* The peer's queued topic bytes passed the bound: the owner closes with
     * 1013 (and calls bl_topics_peer_close). */
    void (*overflow)(bl_topic_peer_t *p);
} bl_topic_peer_ops_t;

typedef struct {
    bl_topic_t *topic;
    bl_topic_frame_t *frame;
} bl_topic_pending_t;

typedef struct {
    bl_topic_t *topic;
    uint32_t index; /* of this peer in topic's subscriber array */
    uint32_t flags; /* BL_TOPIC_SUB_CONFLATE */
} bl_topic_sub_t;

enum { BL_TOPIC_SUB_CONFLATE = 1u << 0 };

struct bl_topic_peer_s {
    const bl_topic_peer_ops_t *ops;
    void *owner;
    uint8_t deflate_bits; /* 0: plain frames; 9..15: compressed without context */
    bool dirty;           /* on the registry's flush list */
    bool overflowed;
    bl_topic_peer_t *dirty_next;
    bl_topic_sub_t *subs;
    uint32_t nsubs, subs_cap;
    bl_topic_pending_t *pend;
    uint32_t npend, pend_cap;
    size_t pend_bytes; /* frames queued here */
    size_t inflight;   /* frames the owner queued and has not written yet */
};

typedef struct {
    size_t name_max;          /* bytes of a topic name */
    uint32_t per_conn_max;    /* topics one connection may subscribe */
    size_t retained_max;      /* retained bytes of the process */
    size_t queue_max;         /* queued topic bytes of one connection */
    size_t deflate_threshold; /* shorter payloads go uncompressed */
} bl_topics_limits_t;

typedef struct bl_topics_s {
    /* Hooks for a cross-process transport (Redis): NULL = this process only. */
    void *hook_ud;
    /* A topic got its first local subscriber / lost its last one. */
    void (*on_first_subscriber)(void *ud, const char *topic, size_t tlen);
    void (*on_last_unsubscribed)(void *ud, const char *topic, size_t tlen);
    /* When set, a publish from Python goes here instead of bl_topics_deliver
     * (the transport delivers it back to every worker, this one included). */
    int (*publish)(void *ud, const char *topic, size_t tlen, const uint8_t *payload, size_t plen,
                   unsigned flags);
    /* private */
    bl_topics_limits_t limits;
    bl_topic_t **buckets;
    size_t nbuckets, ntopics;
    size_t retained_bytes;
    bl_topic_peer_t *dirty;         /* peers with frames to flush */
    bl_ws_deflate_t *deflaters[16]; /* by window bits: no context takeover */
    size_t unflushed;               /* frame bytes delivered since the last flush */
    uint64_t delivered;             /* frames queued to peers, for tests and the bench */
    uint64_t overflows;
} bl_topics_t;

/* 0 or -ENOMEM. */
int bl_topics_init(bl_topics_t *t, const bl_topics_limits_t *limits);
/* Frees every topic; peers must have been closed. */
void bl_topics_destroy(bl_topics_t *t);

/* A publish from this process: to the hook, or delivered here. 0 or negative. */
int bl_topics_publish(bl_topics_t *t, const char *topic, size_t tlen, const uint8_t *payload,
                      size_t plen, unsigned flags);
/* The local fan-out: builds the frame once and queues it to every local
 * subscriber (flushed by bl_topics_flush, or here once a burst reaches half
 * the queue bound); with BL_TOPIC_F_RETAIN keeps it as the topic's last
 * value. Connections may close inside: call it with no iteration over
 * connections in progress. 0, -EINVAL (bad name), -ENOMEM. */
int bl_topics_deliver(bl_topics_t *t, const char *topic, size_t tlen, const uint8_t *payload,
                      size_t plen, unsigned flags);
/* Writes every queued frame of every peer that can take them (once per loop
 * iteration, before the loop blocks). */
void bl_topics_flush(bl_topics_t *t);

/* A peer's life. init sets no subscription; close unsubscribes everything and
 * drops its queue (the owner is closing). */
void bl_topics_peer_init(bl_topic_peer_t *p, const bl_topic_peer_ops_t *ops, void *owner,
                         uint8_t deflate_bits);
void bl_topics_peer_close(bl_topics_t *t, bl_topic_peer_t *p);
/* 0, -EINVAL (bad name), -E2BIG (over the per-connection limit), -ENOMEM.
 * A new subscription to a topic with a retained value queues it at once. */
int bl_topics_subscribe(bl_topics_t *t, bl_topic_peer_t *p, const char *topic, size_t tlen,
                        unsigned sub_flags);
/* 0 (also when not subscribed). */
int bl_topics_unsubscribe(bl_topics_t *t, bl_topic_peer_t *p, const char *topic, size_t tlen);
/* The owner wrote n bytes of the frames it queued: the queue may move again. */
void bl_topics_peer_written(bl_topics_t *t, bl_topic_peer_t *p, size_t n);

/* Subscribers of a topic (0 when unknown), for tests. */
size_t bl_topics_count(const bl_topics_t *t, const char *topic, size_t tlen);
/* Whether a topic name is acceptable: 1..name_max bytes, no NUL. */
bool bl_topics_name_ok(const bl_topics_t *t, const char *topic, size_t tlen);

#endif
