/* Topics across processes and hosts: one worker I/O thread's link to Redis.
 *
 * Two connections per I/O thread (hiredis on the thread's libuv loop, every
 * call asynchronous): a subscriber, which holds SUBSCRIBE <prefix><topic>
 * while the topic has local subscribers and hands what arrives to the local
 * fan-out, and a command connection for PUBLISH, the retained values (SET and
 * GET on the key <prefix><topic>) and a health-check PING.
 *
 * Channels, for a topic T (topic names have no NUL byte, so none collide):
 *   <prefix>T          plain messages: what any program may PUBLISH
 *   <prefix>T "\0"     retained messages: published with SET <prefix>T, in
 *                      one MULTI/EXEC, so every worker knows them as the
 *                      topic's last value
 *   <prefix> "\0" ...  this connection's own ordering marker (below)
 *
 * A topic's first local subscriber: SUBSCRIBE both channels; once Redis
 * confirms, MULTI / GET <prefix>T / PUBLISH <marker> / EXEC. The marker comes
 * back on the subscriber connection after every message Redis handled before
 * the GET, so the value is delivered (to the topic's subscribers, who all
 * came after the first) only when no retained message reached them first, and
 * never after a newer one. After a reconnect, the same, skipped when the value
 * is the one already delivered.
 *
 * While Redis is down or slow, publishes wait in order in a bounded buffer
 * (BL_TOPICS_REDIS_QUEUE_BYTES, counting those sent and not yet confirmed);
 * beyond it a publish is dropped, counted and logged (at most one line a
 * second). Reconnects back off from 100 ms to 5 s; an outage logs one line
 * when it starts and one when it ends. */
#ifndef BAYLEAF_IO_TOPICS_REDIS_H
#define BAYLEAF_IO_TOPICS_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define BL_TOPICS_REDIS_PREFIX      "bayleaf:topic:"
#define BL_TOPICS_REDIS_ENV         "BAYLEAF_TOPICS_REDIS"
#define BL_TOPICS_REDIS_QUEUE_BYTES (16u * 1024u * 1024u)

/* Where Redis is: redis://[[user]:password@]host[:port][/db],
 * redis+unix://[[user]:password@]/path[?db=N] or unix:///path[?db=N]. */
typedef struct {
    char host[256]; /* TCP, without the brackets of an IPv6 address */
    int port;
    char path[108]; /* unix socket; "" for TCP */
    int db;
    char user[128], password[256]; /* AUTH when password is not "" */
} bl_redis_addr_t;

/* 0, or -EINVAL with the reason in why. */
int bl_redis_addr_parse(const char *url, bl_redis_addr_t *addr, char *why, size_t whylen);
/* Where a URL's password may be (*off, *len: between the authority's ':' and
 * its last '@', all of the authority before that '@' without a ':', all before
 * the last '@' without a "://"); false when it has no '@'. */
bool bl_redis_url_password(const char *url, size_t *off, size_t *len);
/* The URL for a log or error line: a password in it becomes "***". */
void bl_redis_url_redact(const char *url, char *out, size_t outlen);

/* What arrives from Redis, for the local fan-out: text when the payload is
 * valid UTF-8; retained when it came from a retained publish (or GET). */
typedef void (*bl_topics_redis_deliver_fn)(void *ud, const char *topic, size_t tlen,
                                           const uint8_t *payload, size_t plen, bool text,
                                           bool retained);

typedef struct bl_topics_redis_s bl_topics_redis_t;

typedef struct {
    uint64_t published;   /* confirmed by Redis */
    uint64_t dropped;     /* over the buffer's bound */
    uint64_t unconfirmed; /* sent, then the connection went down before a reply */
    uint64_t outages;
    size_t queued_bytes; /* buffered and in flight now */
    size_t topics;       /* topics subscribed (wanted) */
    bool up;
} bl_topics_redis_stats_t;

/* Starts connecting (asynchronously) once loop runs. NULL when out of memory. */
bl_topics_redis_t *bl_topics_redis_new(uv_loop_t *loop, const bl_redis_addr_t *addr,
                                       const char *prefix, bl_topics_redis_deliver_fn deliver,
                                       void *deliver_ud);
/* Tries to write what is pending (without blocking), then drops both
 * connections and frees r once its handles closed. Loop thread. */
void bl_topics_redis_close(bl_topics_redis_t *r);

/* A topic got its first local subscriber / lost its last one. */
void bl_topics_redis_subscribe(bl_topics_redis_t *r, const char *topic, size_t tlen);
void bl_topics_redis_unsubscribe(bl_topics_redis_t *r, const char *topic, size_t tlen);
/* PUBLISH (and with retain, SET) in order; buffered while Redis is down.
 * 0, or -ENOBUFS when dropped for the buffer's bound, -ENOMEM. */
int bl_topics_redis_publish(bl_topics_redis_t *r, const char *topic, size_t tlen,
                            const uint8_t *payload, size_t plen, bool retain);

void bl_topics_redis_stats(const bl_topics_redis_t *r, bl_topics_redis_stats_t *out);

#endif
