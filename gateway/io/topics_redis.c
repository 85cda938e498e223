/* One I/O thread's link to Redis for topics (include/bayleaf/io/topics_redis.h
 * says what goes over it). hiredis 0.14 on the libuv loop: every call is
 * asynchronous, contexts are freed only outside their own callbacks (a 0 ms
 * timer, `reset`), and the names of hosts are resolved on libuv's thread pool
 * (hiredis would call getaddrinfo on this thread). */
#include "bayleaf/io/topics_redis.h"
#include "bayleaf/common/log.h"
#include "bayleaf/proto/utf8.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_MS     5000 /* both connections up within this */
#define PING_MS        5000 /* health check; two unanswered: down */
#define CHANNEL_STACK  512
#define HASH_SEED      1469598103934665603ull

/* r->flags */
enum {
    F_UP = 1u << 0,         /* both connections answered their handshake */
    F_READY = 1u << 1,      /* resubscribed: publishes go out directly */
    F_RESET = 1u << 2,      /* a teardown is scheduled */
    F_TEARDOWN = 1u << 3,   /* freeing the contexts: their callbacks are ignored */
    F_CLOSING = 1u << 4,    /* bl_topics_redis_close was called */
    F_EVER_UP = 1u << 5,    /* connected once */
    F_OUTAGE = 1u << 6,     /* the down line went out */
    F_PING_OUT = 1u << 7,   /* a PING waits for its answer */
    F_RESOLVING = 1u << 8,  /* a uv_getaddrinfo is pending */
    F_SUB_OK = 1u << 9,     /* the subscribing connection answered its handshake */
    F_CMD_OK = 1u << 10,    /* the command connection answered its handshake */
    F_AUTH_FAIL = 1u << 11, /* this session failed as Redis refused the credentials */
    F_AUTH_SAID = 1u << 12, /* this outage's log line about them went out */
};

/* The privdata of a handshake command (AUTH, SELECT, then PING): what a
 * reply means. */
enum {
    HS_AUTH = 1u << 0, /* an error is a refused AUTH */
    HS_LAST = 1u << 1, /* its answer completes the connection's handshake */
};

/* rtopic_t.flags */
enum {
    T_SUBSCRIBED = 1u << 0, /* SUBSCRIBE sent on this session's connection */
    T_SYNC_GOT = 1u << 1,   /* the GET's answer is in */
    T_SYNC_MARK = 1u << 2,  /* the marker after it came back */
    T_SYNC_LIVE = 1u << 3,  /* a retained message arrived meanwhile: the GET is stale */
    T_HAS_HASH = 1u << 4,   /* last_hash is the last retained value delivered */
};

typedef struct rtopic_s {
    struct rtopic_s *next;
    uint64_t hash;
    uint64_t sync;      /* the GET under way (0: none) */
    uint64_t last_hash; /* of the last retained payload delivered */
    uint8_t *value;     /* the GET's value, until the marker */
    size_t vlen;
    unsigned flags;
    size_t tlen;
    char name[];
} rtopic_t;

/* A publish waiting for Redis: topic then payload in data. */
typedef struct pub_s {
    struct pub_s *next;
    bool retain;
    size_t tlen, plen;
    uint8_t data[];
} pub_t;

/* The privdata of a GET's EXEC: which topic and which round. */
typedef struct {
    uint64_t seq;
    size_t tlen;
    char name[];
} sync_ref_t;

struct bl_topics_redis_s {
    uv_loop_t *loop;
    bl_redis_addr_t addr;
    char where[300]; /* for log lines */
    char *prefix;
    size_t plen;
    char *marker; /* <prefix> \0 <pid>.<n>: this transport's own channel */
    size_t mlen;
    bl_topics_redis_deliver_fn deliver;
    void *deliver_ud;
    redisAsyncContext *sub, *cmd;
    unsigned flags;
    uint64_t gen; /* sessions started; a resolve of an older one is ignored */
    uv_timer_t reset, retry, connect, ping;
    int open_handles;
    unsigned backoff_ms;
    unsigned ping_missed;
    uint64_t down_at_ms;
    char reason[160];
    rtopic_t **buckets;
    size_t nbuckets, ntopics;
    pub_t *head, *tail; /* buffered publishes, oldest first */
    size_t buffered;    /* their bytes */
    size_t nbuffered;   /* their number */
    size_t inflight;    /* bytes of publishes sent and not yet answered */
    uint64_t seq;
    uint64_t published, dropped, unconfirmed, outages, flushed;
    uint64_t outage_dropped, outage_unconfirmed; /* for the up line */
    bl_log_limit_t drop_log, error_log;
};

static void session_start(bl_topics_redis_t *r);
static void session_fail(bl_topics_redis_t *r, const char *why);
static void free_if_done(bl_topics_redis_t *r);

/* ---- topics this worker wants ---- */

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static rtopic_t *topic_find(const bl_topics_redis_t *r, const char *name, size_t tlen)
{
    if (r->nbuckets == 0)
        return NULL;
    uint64_t h = hash_bytes(HASH_SEED, name, tlen);
    for (rtopic_t *t = r->buckets[h & (r->nbuckets - 1)]; t != NULL; t = t->next)
        if (t->hash == h && t->tlen == tlen && memcmp(t->name, name, tlen) == 0)
            return t;
    return NULL;
}

static int topics_grow(bl_topics_redis_t *r)
{
    size_t n = r->nbuckets ? r->nbuckets * 2 : 64;
    rtopic_t **b = calloc(n, sizeof(*b));
    if (b == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < r->nbuckets; i++) {
        for (rtopic_t *t = r->buckets[i], *next; t != NULL; t = next) {
            next = t->next;
            t->next = b[t->hash & (n - 1)];
            b[t->hash & (n - 1)] = t;
        }
    }
    free(r->buckets);
    r->buckets = b;
    r->nbuckets = n;
    return 0;
}

static rtopic_t *topic_add(bl_topics_redis_t *r, const char *name, size_t tlen)
{
    if (r->ntopics >= r->nbuckets && topics_grow(r) != 0)
        return NULL;
    rtopic_t *t = calloc(1, sizeof(*t) + tlen);
    if (t == NULL)
        return NULL;
    t->hash = hash_bytes(HASH_SEED, name, tlen);
    t->tlen = tlen;
    memcpy(t->name, name, tlen);
    rtopic_t **b = &r->buckets[t->hash & (r->nbuckets - 1)];
    t->next = *b;
    *b = t;
    r->ntopics++;
    return t;
}

static void sync_clear(rtopic_t *t)
{
    free(t->value);
    t->value = NULL;
    t->vlen = 0;
    t->sync = 0;
    t->flags &= ~(unsigned)(T_SYNC_GOT | T_SYNC_MARK | T_SYNC_LIVE);
}

static void topic_remove(bl_topics_redis_t *r, rtopic_t *t)
{
    for (rtopic_t **p = &r->buckets[t->hash & (r->nbuckets - 1)]; *p != NULL; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            break;
        }
    }
    r->ntopics--;
    sync_clear(t);
    free(t);
}

/* ---- channel names ---- */

/* <prefix><topic>, and with retained a NUL after it, in buf (or a malloc'd
 * buffer when it does not fit: the caller frees what is not buf). */
static char *channel_name(const bl_topics_redis_t *r, char *buf, const char *topic, size_t tlen,
                          bool retained, size_t *len)
{
    *len = r->plen + tlen + (retained ? 1 : 0);
    char *out = *len <= CHANNEL_STACK ? buf : malloc(*len);
    if (out == NULL)
        return NULL;
    memcpy(out, r->prefix, r->plen);
    memcpy(out + r->plen, topic, tlen);
    if (retained)
        out[r->plen + tlen] = '\0';
    return out;
}

static void channel_free(char *name, char *buf)
{
    if (name != buf)
        free(name);
}

/* ---- delivering what arrives ---- */

/* name is not t->name but a copy that outlives the call: the fan-out may
 * close a connection, whose last unsubscribe frees t. */
static void deliver(bl_topics_redis_t *r, rtopic_t *t, const char *name, const uint8_t *p, size_t n,
                    bool retained)
{
    size_t tlen = t->tlen;
    if (retained) {
        t->last_hash = hash_bytes(HASH_SEED, p, n);
        t->flags |= T_HAS_HASH;
    }
    r->deliver(r->deliver_ud, name, tlen, p, n, bl_utf8_valid(p, n), retained);
}

/* The GET's value goes out once its marker came back, unless a retained
 * message (as new or newer) went out first or it is the one delivered last. */
static void sync_try_finish(bl_topics_redis_t *r, rtopic_t *t, const char *name)
{
    if ((t->flags & (T_SYNC_GOT | T_SYNC_MARK)) != (T_SYNC_GOT | T_SYNC_MARK))
        return;
    uint8_t *v = t->value;
    size_t n = t->vlen;
    bool stale = (t->flags & T_SYNC_LIVE) != 0;
    t->value = NULL;
    sync_clear(t);
    if (v != NULL && !stale &&
        !((t->flags & T_HAS_HASH) && t->last_hash == hash_bytes(HASH_SEED, v, n)))
        deliver(r, t, name, v, n, true);
    free(v);
}

static void on_sync_exec(redisAsyncContext *ac, void *reply_, void *priv)
{
    bl_topics_redis_t *r = ac->data;
    redisReply *reply = reply_;
    sync_ref_t *ref = priv;
    if (reply == NULL || (r->flags & (F_TEARDOWN | F_CLOSING)))
        goto done;
    rtopic_t *t = topic_find(r, ref->name, ref->tlen);
    if (t == NULL || t->sync != ref->seq)
        goto done;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) {
        sync_clear(t); /* an aborted or refused transaction: no value */
        goto done;
    }
    redisReply *got = reply->element[0];
    if (got->type == REDIS_REPLY_STRING && !(t->flags & T_SYNC_LIVE)) {
        t->value = malloc(got->len ? got->len : 1);
        if (t->value != NULL) {
            memcpy(t->value, got->str, got->len);
            t->vlen = got->len;
        }
    }
    t->flags |= T_SYNC_GOT;
    sync_try_finish(r, t, ref->name);
done:
    free(ref);
}

/* MULTI / GET <prefix>T / PUBLISH <marker> "<seq> T" / EXEC on the command
 * connection, once the subscription is confirmed. */
static void sync_start(bl_topics_redis_t *r, rtopic_t *t)
{
    char kbuf[CHANNEL_STACK];
    size_t klen;
    sync_ref_t *ref = malloc(sizeof(*ref) + t->tlen);
    char *key = channel_name(r, kbuf, t->name, t->tlen, false, &klen);
    size_t mlen = 24 + t->tlen;
    char *msg = malloc(mlen);
    if (ref == NULL || key == NULL || msg == NULL || r->cmd == NULL)
        goto fail;
    sync_clear(t);
    t->sync = ++r->seq;
    ref->seq = t->sync;
    ref->tlen = t->tlen;
    memcpy(ref->name, t->name, t->tlen);
    int n = snprintf(msg, 24, "%llu ", (unsigned long long)t->sync);
    memcpy(msg + n, t->name, t->tlen);
    const char *get[] = {"GET", key};
    size_t getl[] = {3, klen};
    const char *pub[] = {"PUBLISH", r->marker, msg};
    size_t publ[] = {7, r->mlen, (size_t)n + t->tlen};
    if (redisAsyncCommand(r->cmd, NULL, NULL, "MULTI") != REDIS_OK ||
        redisAsyncCommandArgv(r->cmd, NULL, NULL, 2, get, getl) != REDIS_OK ||
        redisAsyncCommandArgv(r->cmd, NULL, NULL, 3, pub, publ) != REDIS_OK ||
        redisAsyncCommand(r->cmd, on_sync_exec, ref, "EXEC") != REDIS_OK) {
        t->sync = 0;
        goto fail;
    }
    free(msg);
    channel_free(key, kbuf);
    return;
fail:
    free(ref);
    free(msg);
    if (key != NULL)
        channel_free(key, kbuf);
    session_fail(r, "cannot queue a command (out of memory or disconnecting)");
}

/* The marker "<seq> T" came back: every message Redis handled before the GET
 * has arrived. */
static void on_marker(bl_topics_redis_t *r, const char *p, size_t n)
{
    char *sp = memchr(p, ' ', n);
    if (sp == NULL)
        return;
    unsigned long long seq = strtoull(p, NULL, 10);
    rtopic_t *t = topic_find(r, sp + 1, n - (size_t)(sp + 1 - p));
    if (t == NULL || t->sync != seq)
        return;
    t->flags |= T_SYNC_MARK;
    sync_try_finish(r, t, sp + 1);
}

static void publish_buffered(bl_topics_redis_t *r);

static void on_message(bl_topics_redis_t *r, const redisReply *chan, const redisReply *msg)
{
    const char *c = chan->str;
    size_t clen = chan->len;
    if (clen <= r->plen || memcmp(c, r->prefix, r->plen) != 0)
        return;
    if (clen == r->mlen && memcmp(c, r->marker, clen) == 0) {
        on_marker(r, msg->str, msg->len);
        return;
    }
    bool retained = c[clen - 1] == '\0';
    size_t tlen = clen - r->plen - (retained ? 1 : 0);
    rtopic_t *t = topic_find(r, c + r->plen, tlen);
    if (t == NULL)
        return; /* unsubscribed: the UNSUBSCRIBE is on its way */
    if (retained && t->sync != 0) {
        t->flags |= T_SYNC_LIVE;
        free(t->value);
        t->value = NULL;
    }
    deliver(r, t, c + r->plen, (const uint8_t *)msg->str, msg->len, retained);
}

/* Every reply of the subscriber connection: confirmations and messages. */
static void on_sub_reply(redisAsyncContext *ac, void *reply_, void *priv)
{
    bl_topics_redis_t *r = ac->data;
    redisReply *reply = reply_;
    (void)priv;
    if (reply == NULL || (r->flags & (F_TEARDOWN | F_CLOSING)))
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str;
    const redisReply *chan = reply->element[1];
    if (strcmp(kind, "message") == 0 && reply->element[2]->type == REDIS_REPLY_STRING) {
        on_message(r, chan, reply->element[2]);
    } else if (strcmp(kind, "subscribe") == 0) {
        if (chan->len == r->mlen && memcmp(chan->str, r->marker, r->mlen) == 0) {
            /* subscribed last in a session: every topic is subscribed again */
            r->flags |= F_READY;
            publish_buffered(r);
            return;
        }
        if (chan->len <= r->plen || chan->str[chan->len - 1] == '\0')
            return; /* a retained channel's confirmation: the plain one starts the GET */
        rtopic_t *t = topic_find(r, chan->str + r->plen, chan->len - r->plen);
        if (t != NULL && (t->flags & T_SUBSCRIBED) && t->sync == 0)
            sync_start(r, t);
    }
}

static void topic_subscribe_send(bl_topics_redis_t *r, rtopic_t *t)
{
    char b1[CHANNEL_STACK], b2[CHANNEL_STACK];
    size_t l1, l2;
    char *plain = channel_name(r, b1, t->name, t->tlen, false, &l1);
    char *kept = channel_name(r, b2, t->name, t->tlen, true, &l2);
    const char *argv[] = {"SUBSCRIBE", plain, kept};
    size_t lens[] = {9, l1, l2};
    int rc = plain != NULL && kept != NULL
                 ? redisAsyncCommandArgv(r->sub, on_sub_reply, NULL, 3, argv, lens)
                 : REDIS_ERR;
    if (plain != NULL)
        channel_free(plain, b1);
    if (kept != NULL)
        channel_free(kept, b2);
    if (rc != REDIS_OK) {
        session_fail(r, "cannot queue SUBSCRIBE (out of memory or disconnecting)");
        return;
    }
    t->flags |= T_SUBSCRIBED;
}

static void topic_unsubscribe_send(bl_topics_redis_t *r, rtopic_t *t)
{
    char b1[CHANNEL_STACK], b2[CHANNEL_STACK];
    size_t l1, l2;
    char *plain = channel_name(r, b1, t->name, t->tlen, false, &l1);
    char *kept = channel_name(r, b2, t->name, t->tlen, true, &l2);
    const char *argv[] = {"UNSUBSCRIBE", plain, kept};
    size_t lens[] = {11, l1, l2};
    int rc = plain != NULL && kept != NULL
                 ? redisAsyncCommandArgv(r->sub, NULL, NULL, 3, argv, lens)
                 : REDIS_ERR;
    if (plain != NULL)
        channel_free(plain, b1);
    if (kept != NULL)
        channel_free(kept, b2);
    if (rc != REDIS_OK)
        session_fail(r, "cannot queue UNSUBSCRIBE (out of memory or disconnecting)");
}

void bl_topics_redis_subscribe(bl_topics_redis_t *r, const char *topic, size_t tlen)
{
    if (r->flags & F_CLOSING || topic_find(r, topic, tlen) != NULL)
        return;
    rtopic_t *t = topic_add(r, topic, tlen);
    if (t == NULL) {
        BL_ERROR("topics: out of memory: the topic '%.*s' is not subscribed in Redis", (int)tlen,
                 topic);
        return;
    }
    if ((r->flags & F_UP) && !(r->flags & F_RESET))
        topic_subscribe_send(r, t); /* else the session subscribes it when it is up */
}

void bl_topics_redis_unsubscribe(bl_topics_redis_t *r, const char *topic, size_t tlen)
{
    rtopic_t *t = topic_find(r, topic, tlen);
    if (t == NULL)
        return;
    if ((t->flags & T_SUBSCRIBED) && (r->flags & F_UP) && !(r->flags & (F_RESET | F_CLOSING)))
        topic_unsubscribe_send(r, t);
    topic_remove(r, t);
}

/* ---- publishing ---- */

static size_t pub_cost(size_t tlen, size_t plen)
{
    return sizeof(pub_t) + tlen + plen;
}

static void on_publish_reply(redisAsyncContext *ac, void *reply_, void *priv)
{
    bl_topics_redis_t *r = ac->data;
    redisReply *reply = reply_;
    r->inflight -= (size_t)(uintptr_t)priv;
    if (reply == NULL) {
        r->unconfirmed++;
        r->outage_unconfirmed++;
    } else if (reply->type == REDIS_REPLY_ERROR || reply->type == REDIS_REPLY_NIL) {
        unsigned held;
        r->dropped++;
        if (bl_log_limit_pass(&r->error_log, uv_now(r->loop), &held))
            BL_WARN("topics: Redis refused a publish: %s (%u more not logged)",
                    reply->type == REDIS_REPLY_NIL ? "transaction aborted" : reply->str, held);
    } else {
        r->published++;
    }
}

/* PUBLISH, or MULTI / SET / PUBLISH retained / EXEC: one answer counts. */
static int publish_send(bl_topics_redis_t *r, const char *topic, size_t tlen, const uint8_t *p,
                        size_t plen, bool retain)
{
    char cbuf[CHANNEL_STACK];
    size_t clen, cost = pub_cost(tlen, plen);
    char *chan = channel_name(r, cbuf, topic, tlen, retain, &clen);
    if (chan == NULL)
        return -ENOMEM;
    void *priv = (void *)(uintptr_t)cost;
    const char *pub[] = {"PUBLISH", chan, (const char *)p};
    size_t publ[] = {7, clen, plen};
    int rc;
    if (!retain) {
        rc = redisAsyncCommandArgv(r->cmd, on_publish_reply, priv, 3, pub, publ);
    } else {
        const char *set[] = {"SET", chan, (const char *)p};
        size_t setl[] = {3, clen - 1, plen}; /* the key: the channel without its NUL */
        rc = redisAsyncCommand(r->cmd, NULL, NULL, "MULTI");
        if (rc == REDIS_OK)
            rc = redisAsyncCommandArgv(r->cmd, NULL, NULL, 3, set, setl);
        if (rc == REDIS_OK)
            rc = redisAsyncCommandArgv(r->cmd, NULL, NULL, 3, pub, publ);
        if (rc == REDIS_OK)
            rc = redisAsyncCommand(r->cmd, on_publish_reply, priv, "EXEC");
    }
    channel_free(chan, cbuf);
    if (rc != REDIS_OK)
        return -EPIPE;
    r->inflight += cost;
    return 0;
}

static int publish_buffer(bl_topics_redis_t *r, const char *topic, size_t tlen, const uint8_t *p,
                          size_t plen, bool retain)
{
    pub_t *b = malloc(pub_cost(tlen, plen));
    if (b == NULL)
        return -ENOMEM;
    b->next = NULL;
    b->retain = retain;
    b->tlen = tlen;
    b->plen = plen;
    memcpy(b->data, topic, tlen);
    memcpy(b->data + tlen, p, plen);
    if (r->tail != NULL)
        r->tail->next = b;
    else
        r->head = b;
    r->tail = b;
    r->buffered += pub_cost(tlen, plen);
    r->nbuffered++;
    return 0;
}

/* The session is ready: what waited goes out, in order. */
static void publish_buffered(bl_topics_redis_t *r)
{
    while (r->head != NULL && (r->flags & F_READY)) {
        pub_t *b = r->head;
        if (publish_send(r, (const char *)b->data, b->tlen, b->data + b->tlen, b->plen,
                         b->retain) != 0) {
            session_fail(r, "cannot queue PUBLISH (out of memory or disconnecting)");
            return;
        }
        r->head = b->next;
        if (r->head == NULL)
            r->tail = NULL;
        r->buffered -= pub_cost(b->tlen, b->plen);
        r->nbuffered--;
        r->flushed++;
        free(b);
    }
}

int bl_topics_redis_publish(bl_topics_redis_t *r, const char *topic, size_t tlen,
                            const uint8_t *payload, size_t plen, bool retain)
{
    size_t cost = pub_cost(tlen, plen);
    if (r->flags & F_CLOSING)
        return -EPIPE;
    if (r->buffered + r->inflight + cost > BL_TOPICS_REDIS_QUEUE_BYTES) {
        unsigned held;
        r->dropped++;
        r->outage_dropped++;
        if (bl_log_limit_pass(&r->drop_log, uv_now(r->loop), &held))
            BL_WARN("topics: %zu bytes wait for Redis at %s (%s): a publish to '%.*s' is "
                    "dropped (%u more since the last line)",
                    r->buffered + r->inflight, r->where, (r->flags & F_READY) ? "slow" : "down",
                    (int)tlen, topic, held);
        return -ENOBUFS;
    }
    if ((r->flags & F_READY) && r->head == NULL && !(r->flags & F_RESET)) {
        if (publish_send(r, topic, tlen, payload, plen, retain) == 0)
            return 0;
        session_fail(r, "cannot queue PUBLISH (out of memory or disconnecting)");
    }
    return publish_buffer(r, topic, tlen, payload, plen, retain);
}

/* ---- the session: two connections ---- */

static void ctx_forget(bl_topics_redis_t *r, const redisAsyncContext *ac)
{
    if (r->sub == ac)
        r->sub = NULL;
    if (r->cmd == ac)
        r->cmd = NULL;
}

static void on_pong(redisAsyncContext *ac, void *reply, void *priv)
{
    bl_topics_redis_t *r = ac->data;
    (void)priv;
    if (reply != NULL) {
        r->flags &= ~(unsigned)F_PING_OUT;
        r->ping_missed = 0;
    }
}

static void on_ping_timer(uv_timer_t *timer)
{
    bl_topics_redis_t *r = timer->data;
    if (!(r->flags & F_UP) || (r->flags & F_RESET))
        return;
    if (r->flags & F_PING_OUT) {
        if (++r->ping_missed >= 2) {
            session_fail(r, "no answer to PING within 10 s");
            return;
        }
        return;
    }
    if (redisAsyncCommand(r->cmd, on_pong, NULL, "PING") != REDIS_OK) {
        session_fail(r, "cannot queue PING");
        return;
    }
    r->flags |= F_PING_OUT;
}

static void session_up(bl_topics_redis_t *r);

/* The answer to a handshake command: an error ends the session (its reason,
 * never the password, goes to the one outage line); the last one's answer
 * makes the connection usable, and both usable, the session is up. Only
 * then: a refused AUTH must not count as "up again" and reset the back-off. */
static void on_handshake(redisAsyncContext *ac, void *reply_, void *priv)
{
    bl_topics_redis_t *r = ac->data;
    redisReply *reply = reply_;
    unsigned what = (unsigned)(uintptr_t)priv;
    char why[200];
    if (reply == NULL || (r->flags & (F_TEARDOWN | F_CLOSING | F_RESET)))
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(why, sizeof(why), "%s%.*s", (what & HS_AUTH) ? "authentication refused: " : "",
                 (int)reply->len, reply->str);
        if ((what & HS_AUTH) || strncmp(reply->str, "NOAUTH", 6) == 0)
            r->flags |= F_AUTH_FAIL;
        session_fail(r, why);
        return;
    }
    if (!(what & HS_LAST))
        return;
    r->flags |= ac == r->sub ? F_SUB_OK : ac == r->cmd ? F_CMD_OK : 0;
    if ((r->flags & (F_SUB_OK | F_CMD_OK)) == (F_SUB_OK | F_CMD_OK) && !(r->flags & F_UP))
        session_up(r);
}

/* Both connections in (their handshake answered): subscribe every wanted
 * topic again, the marker last. */
static void session_up(bl_topics_redis_t *r)
{
    double down_s = r->down_at_ms ? (double)(uv_now(r->loop) - r->down_at_ms) / 1000.0 : 0;
    r->flags |= F_UP;
    uv_timer_stop(&r->connect);
    r->backoff_ms = BACKOFF_MIN_MS;
    r->ping_missed = 0;
    r->flags &= ~(unsigned)F_PING_OUT;
    uv_timer_start(&r->ping, on_ping_timer, PING_MS, PING_MS);
    for (size_t i = 0; i < r->nbuckets; i++)
        for (rtopic_t *t = r->buckets[i]; t != NULL; t = t->next)
            topic_subscribe_send(r, t);
    const char *argv[] = {"SUBSCRIBE", r->marker};
    size_t lens[] = {9, r->mlen};
    if (redisAsyncCommandArgv(r->sub, on_sub_reply, NULL, 2, argv, lens) != REDIS_OK) {
        session_fail(r, "cannot queue SUBSCRIBE");
        return;
    }
    if (r->flags & F_OUTAGE) {
        BL_INFO("topics: Redis at %s is up again after %.1f s: %zu topics subscribed again, "
                "%zu publishes buffered, %llu dropped, %llu unconfirmed",
                r->where, down_s, r->ntopics, r->nbuffered, (unsigned long long)r->outage_dropped,
                (unsigned long long)r->outage_unconfirmed);
    } else if (!(r->flags & F_EVER_UP)) {
        BL_INFO("topics: using Redis at %s (prefix '%s')", r->where, r->prefix);
    }
    r->flags |= F_EVER_UP;
    r->flags &= ~(unsigned)(F_OUTAGE | F_AUTH_SAID);
    r->down_at_ms = 0;
    r->outage_dropped = r->outage_unconfirmed = 0;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    bl_topics_redis_t *r = ac->data;
    if (r->flags & (F_TEARDOWN | F_CLOSING))
        return;
    if (status != REDIS_OK) {
        char why[200];
        snprintf(why, sizeof(why), "%s", ac->errstr ? ac->errstr : "cannot connect");
        ctx_forget(r, ac); /* hiredis frees it on return */
        session_fail(r, why);
        return;
    }
    /* Up once both answered their handshake (on_handshake). */
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    bl_topics_redis_t *r = ac->data;
    char why[200];
    snprintf(why, sizeof(why), "%s",
             status == REDIS_OK ? "connection closed" : (ac->errstr ? ac->errstr : "error"));
    ctx_forget(r, ac); /* hiredis frees it on return */
    if (!(r->flags & (F_TEARDOWN | F_CLOSING)))
        session_fail(r, why);
}

static redisAsyncContext *ctx_open(bl_topics_redis_t *r, const char *ip, bool is_cmd)
{
    redisAsyncContext *ac =
        r->addr.path[0] ? redisAsyncConnectUnix(r->addr.path) : redisAsyncConnect(ip, r->addr.port);
    if (ac == NULL) {
        session_fail(r, "out of memory");
        return NULL;
    }
    if (ac->err) {
        char why[200];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        session_fail(r, why);
        return NULL;
    }
    if (redisLibuvAttach(ac, r->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        session_fail(r, "cannot watch the socket");
        return NULL;
    }
    ac->data = r;
    /* hiredis 0.14 learns that connect(2) finished from the first write
     * event, and asks for one only once a command is queued. */
    ac->ev.addWrite(ac->ev.data);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (!r->addr.path[0])
        redisEnableKeepAlive(&ac->c); /* a cut network shows within a minute */
    /* The handshake: AUTH and SELECT where asked for, then a PING, whose
     * answer says that Redis takes this connection's commands (a Redis that
     * wants a password answers NOAUTH). */
    int rc = REDIS_OK;
    void *auth = (void *)(uintptr_t)HS_AUTH, *last = (void *)(uintptr_t)HS_LAST;
    if (r->addr.password[0] && r->addr.user[0])
        rc =
            redisAsyncCommand(ac, on_handshake, auth, "AUTH %s %s", r->addr.user, r->addr.password);
    else if (r->addr.password[0])
        rc = redisAsyncCommand(ac, on_handshake, auth, "AUTH %s", r->addr.password);
    if (rc == REDIS_OK && is_cmd && r->addr.db != 0)
        rc = redisAsyncCommand(ac, on_handshake, NULL, "SELECT %d", r->addr.db);
    if (rc == REDIS_OK)
        rc = redisAsyncCommand(ac, on_handshake, last, "PING");
    if (rc != REDIS_OK) {
        redisAsyncFree(ac);
        session_fail(r, "cannot queue AUTH, SELECT or PING");
        return NULL;
    }
    return ac;
}

static void session_connect(bl_topics_redis_t *r, const char *ip)
{
    if ((r->sub = ctx_open(r, ip, false)) == NULL)
        return;
    r->cmd = ctx_open(r, ip, true);
}

typedef struct {
    uv_getaddrinfo_t req;
    bl_topics_redis_t *r;
    uint64_t gen;
} resolve_t;

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    resolve_t *q = req->data;
    bl_topics_redis_t *r = q->r;
    uint64_t gen = q->gen;
    char ip[INET6_ADDRSTRLEN] = "";
    if (status == 0 && res != NULL) {
        /* successive attempts take the addresses in turn (::1 refused, 127.0.0.1 next) */
        size_t n = 0, pick;
        for (struct addrinfo *a = res; a != NULL; a = a->ai_next)
            n++;
        pick = (size_t)((gen - 1) % n);
        struct addrinfo *a = res;
        while (pick-- > 0)
            a = a->ai_next;
        uv_ip_name(a->ai_addr, ip, sizeof(ip));
    }
    uv_freeaddrinfo(res);
    free(q);
    r->flags &= ~(unsigned)F_RESOLVING;
    if (r->flags & F_CLOSING) {
        free_if_done(r);
        return;
    }
    if (gen != r->gen || (r->flags & F_RESET))
        return;
    if (ip[0] == '\0') {
        char why[200];
        snprintf(why, sizeof(why), "cannot resolve %.100s: %s", r->addr.host,
                 status ? uv_strerror(status) : "no address");
        session_fail(r, why);
        return;
    }
    session_connect(r, ip);
}

static void on_connect_timeout(uv_timer_t *timer)
{
    session_fail(timer->data, "no connection within 5 s");
}

static void session_start(bl_topics_redis_t *r)
{
    r->gen++;
    uv_timer_start(&r->connect, on_connect_timeout, CONNECT_MS, 0);
    struct in6_addr a6;
    if (r->addr.path[0] || inet_pton(AF_INET, r->addr.host, &a6) == 1 ||
        inet_pton(AF_INET6, r->addr.host, &a6) == 1) {
        session_connect(r, r->addr.host);
        return;
    }
    if (r->flags & F_RESOLVING)
        return; /* the last one is still under way: the connect timer retries */
    resolve_t *q = malloc(sizeof(*q));
    if (q == NULL) {
        session_fail(r, "out of memory");
        return;
    }
    q->r = r;
    q->gen = r->gen;
    q->req.data = q;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int err = uv_getaddrinfo(r->loop, &q->req, on_resolved, r->addr.host, NULL, &hints);
    if (err != 0) {
        free(q);
        char why[200];
        snprintf(why, sizeof(why), "cannot resolve %.100s: %s", r->addr.host, uv_strerror(err));
        session_fail(r, why);
        return;
    }
    r->flags |= F_RESOLVING;
}

static void on_retry(uv_timer_t *timer)
{
    session_start(timer->data);
}

/* Frees both contexts (outside their callbacks); every topic is to be
 * subscribed again by the next session. */
static void session_teardown(bl_topics_redis_t *r)
{
    r->flags |= F_TEARDOWN;
    redisAsyncContext *sub = r->sub, *cmd = r->cmd;
    r->sub = r->cmd = NULL;
    if (sub != NULL)
        redisAsyncFree(sub);
    if (cmd != NULL)
        redisAsyncFree(cmd);
    r->flags &= ~(unsigned)(F_TEARDOWN | F_UP | F_READY | F_PING_OUT | F_SUB_OK | F_CMD_OK);
    uv_timer_stop(&r->connect);
    uv_timer_stop(&r->ping);
    for (size_t i = 0; i < r->nbuckets; i++) {
        for (rtopic_t *t = r->buckets[i]; t != NULL; t = t->next) {
            sync_clear(t);
            t->flags &= ~(unsigned)T_SUBSCRIBED;
        }
    }
}

static void on_reset(uv_timer_t *timer)
{
    bl_topics_redis_t *r = timer->data;
    bool was_up = (r->flags & F_UP) != 0;
    session_teardown(r);
    r->flags &= ~(unsigned)F_RESET;
    if (!(r->flags & F_OUTAGE)) {
        r->flags |= F_OUTAGE;
        r->down_at_ms = uv_now(r->loop);
        r->outages++;
        if (was_up || (r->flags & F_EVER_UP))
            BL_WARN("topics: Redis at %s is down (%s); reconnecting with back-off, publishes "
                    "wait in a buffer of %u bytes",
                    r->where, r->reason, BL_TOPICS_REDIS_QUEUE_BYTES);
        else
            BL_WARN("topics: cannot reach Redis at %s (%s); retrying with back-off, publishes "
                    "wait in a buffer of %u bytes",
                    r->where, r->reason, BL_TOPICS_REDIS_QUEUE_BYTES);
        if (r->flags & F_AUTH_FAIL)
            r->flags |= F_AUTH_SAID;
    } else if ((r->flags & (F_AUTH_FAIL | F_AUTH_SAID)) == F_AUTH_FAIL) {
        /* Down for another reason first (a restart, a cut), and now the
         * credentials are refused: that is worth one line of its own. */
        r->flags |= F_AUTH_SAID;
        BL_WARN("topics: Redis at %s refuses the credentials (%s); retrying with back-off",
                r->where, r->reason);
    } else {
        BL_DEBUG("topics: Redis at %s: %s", r->where, r->reason);
    }
    r->flags &= ~(unsigned)F_AUTH_FAIL;
    /* +- a quarter, so that the workers do not come back all at once */
    unsigned jitter =
        (unsigned)(((uint64_t)getpid() * 2654435761u + r->gen) % (r->backoff_ms / 2 + 1));
    uv_timer_start(&r->retry, on_retry, r->backoff_ms - r->backoff_ms / 4 + jitter, 0);
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

/* Any failure: the teardown runs from a timer, never inside hiredis. */
static void session_fail(bl_topics_redis_t *r, const char *why)
{
    if (r->flags & (F_RESET | F_CLOSING | F_TEARDOWN))
        return;
    r->flags |= F_RESET;
    r->flags &= ~(unsigned)F_READY; /* publishes wait from now on */
    size_t n = strnlen(why, sizeof(r->reason) - 1);
    memcpy(r->reason, why, n);
    r->reason[n] = '\0';
    uv_timer_start(&r->reset, on_reset, 0, 0);
}

/* ---- life ---- */

bl_topics_redis_t *bl_topics_redis_new(uv_loop_t *loop, const bl_redis_addr_t *addr,
                                       const char *prefix, bl_topics_redis_deliver_fn deliver_fn,
                                       void *deliver_ud)
{
    static atomic_uint instances;
    bl_topics_redis_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->loop = loop;
    r->addr = *addr;
    r->plen = strlen(prefix);
    r->prefix = strdup(prefix);
    char tail[48];
    int n = snprintf(tail, sizeof(tail), "%d.%u", (int)getpid(), atomic_fetch_add(&instances, 1));
    r->mlen = r->plen + 1 + (size_t)n;
    r->marker = malloc(r->mlen);
    if (r->prefix == NULL || r->marker == NULL) {
        free(r->prefix);
        free(r->marker);
        free(r);
        return NULL;
    }
    memcpy(r->marker, prefix, r->plen);
    r->marker[r->plen] = '\0';
    memcpy(r->marker + r->plen + 1, tail, (size_t)n);
    if (addr->path[0])
        snprintf(r->where, sizeof(r->where), "unix:%s", addr->path);
    else if (strchr(addr->host, ':') != NULL)
        snprintf(r->where, sizeof(r->where), "[%s]:%d", addr->host, addr->port);
    else
        snprintf(r->where, sizeof(r->where), "%s:%d", addr->host, addr->port);
    r->deliver = deliver_fn;
    r->deliver_ud = deliver_ud;
    r->backoff_ms = BACKOFF_MIN_MS;
    uv_timer_t *timers[] = {&r->reset, &r->retry, &r->connect, &r->ping};
    for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = r;
        r->open_handles++;
    }
    /* Once the loop runs (its I/O thread may start seconds later, after the
     * app's startup): the connect deadline counts from there. */
    uv_timer_start(&r->retry, on_retry, 0, 0);
    return r;
}

static void free_if_done(bl_topics_redis_t *r)
{
    if (r->open_handles > 0 || (r->flags & F_RESOLVING))
        return;
    for (size_t i = 0; i < r->nbuckets; i++) {
        for (rtopic_t *t = r->buckets[i], *next; t != NULL; t = next) {
            next = t->next;
            sync_clear(t);
            free(t);
        }
    }
    free(r->buckets);
    free(r->prefix);
    free(r->marker);
    free(r);
}

static void on_timer_closed(uv_handle_t *h)
{
    bl_topics_redis_t *r = h->data;
    r->open_handles--;
    free_if_done(r);
}

/* What hiredis holds unwritten goes out now if the socket takes it. */
static void ctx_flush(redisAsyncContext *ac)
{
    int done = 0;
    for (int i = 0; ac != NULL && (ac->c.flags & REDIS_CONNECTED) && !done && i < 64; i++)
        if (redisBufferWrite(&ac->c, &done) != REDIS_OK)
            break;
}

void bl_topics_redis_close(bl_topics_redis_t *r)
{
    ctx_flush(r->cmd);
    size_t n = 0;
    for (pub_t *b = r->head, *next; b != NULL; b = next) {
        next = b->next;
        free(b);
        n++;
    }
    r->head = r->tail = NULL;
    r->buffered = 0;
    r->nbuffered = 0;
    if (n > 0)
        BL_WARN("topics: stopping with Redis at %s down: %zu publishes not sent", r->where, n);
    session_teardown(r);
    r->flags |= F_CLOSING;
    if (r->flags & F_RESOLVING)
        r->gen++; /* its callback frees r (a started lookup cannot be cancelled) */
    uv_close((uv_handle_t *)&r->reset, on_timer_closed);
    uv_close((uv_handle_t *)&r->retry, on_timer_closed);
    uv_close((uv_handle_t *)&r->connect, on_timer_closed);
    uv_close((uv_handle_t *)&r->ping, on_timer_closed);
}

void bl_topics_redis_stats(const bl_topics_redis_t *r, bl_topics_redis_stats_t *out)
{
    out->published = r->published;
    out->dropped = r->dropped;
    out->unconfirmed = r->unconfirmed;
    out->outages = r->outages;
    out->queued_bytes = r->buffered + r->inflight;
    out->topics = r->ntopics;
    out->up = (r->flags & F_READY) != 0;
}
