/* The topics registry (io/topics.c) with a fake owner for its peers: frames
 * built once and shared, subscribe/unsubscribe/close, retained values and
 * their bound, the per-peer queue bound, conflation, order, the hooks and
 * the limits. The fake owner records what it was asked to write and can
 * hold a backlog (not writable) like a socket that is not read. */
#include "bayleaf/io/topics.h"

#include <errno.h>

#include "check.h"

typedef struct {
    bl_topic_peer_t peer;
    bool backlog;        /* not writable: frames wait in the peer's queue */
    long queue_on_write; /* bytes the next write reports as queued (then 0) */
    int overflowed;
    /* everything written, as payloads */
    char got[64][128];
    int ngot;
    bl_topic_frame_t *last_frame; /* the last frame written (for sharing checks) */
    uint8_t last_hdr0;
} fake_t;

static bl_topics_t *g_topics;

static long fake_write(bl_topic_peer_t *p, bl_topic_frame_t *const *frames, unsigned n)
{
    fake_t *f = p->owner;
    for (unsigned i = 0; i < n; i++) {
        size_t plen = frames[i]->len - frames[i]->hdr_len;
        if (f->ngot < 64) {
            size_t k = plen < 127 ? plen : 127;
            memcpy(f->got[f->ngot], frames[i]->data + frames[i]->hdr_len, k);
            f->got[f->ngot][k] = '\0';
            f->ngot++;
        }
        f->last_frame = frames[i];
        f->last_hdr0 = frames[i]->data[0];
    }
    long q = f->queue_on_write;
    f->queue_on_write = 0;
    return q;
}

static bool fake_writable(bl_topic_peer_t *p)
{
    return !((fake_t *)p->owner)->backlog;
}

static void fake_overflow(bl_topic_peer_t *p)
{
    fake_t *f = p->owner;
    f->overflowed++;
    bl_topics_peer_close(g_topics, p); /* as a connection closing does */
}

static const bl_topic_peer_ops_t ops = {fake_write, fake_writable, fake_overflow};

static bl_topics_limits_t limits(void)
{
    bl_topics_limits_t l = {.name_max = 16,
                            .per_conn_max = 3,
                            .retained_max = 200,
                            .queue_max = 100,
                            .deflate_threshold = 16};
    return l;
}

static void fake_init(fake_t *f, uint8_t bits)
{
    memset(f, 0, sizeof(*f));
    bl_topics_peer_init(&f->peer, &ops, f, bits);
}

static int sub(bl_topics_t *t, fake_t *f, const char *name, unsigned flags)
{
    return bl_topics_subscribe(t, &f->peer, name, strlen(name), flags);
}

static int pub(bl_topics_t *t, const char *name, const char *text, unsigned flags)
{
    return bl_topics_deliver(t, name, strlen(name), (const uint8_t *)text, strlen(text),
                             flags | BL_TOPIC_F_TEXT);
}

static void test_fan_out_shares_one_frame(void)
{
    bl_topics_t t;
    CHECK(bl_topics_init(&t, &(bl_topics_limits_t){16, 3, 200, 1000, 16}) == 0);
    g_topics = &t;
    fake_t a, b, c;
    fake_init(&a, 0);
    fake_init(&b, 0);
    fake_init(&c, 0);
    CHECK(sub(&t, &a, "px", 0) == 0);
    CHECK(sub(&t, &b, "px", 0) == 0);
    CHECK(sub(&t, &c, "other", 0) == 0);
    CHECK_EQ_INT(bl_topics_count(&t, "px", 2), 2);
    CHECK(pub(&t, "px", "hello", 0) == 0);
    CHECK_EQ_INT(a.ngot, 0); /* queued until the flush */
    bl_topics_flush(&t);
    CHECK_EQ_INT(a.ngot, 1);
    CHECK_EQ_INT(b.ngot, 1);
    CHECK_EQ_INT(c.ngot, 0);
    CHECK(strcmp(a.got[0], "hello") == 0);
    CHECK(a.last_frame == b.last_frame); /* one frame, no copy per subscriber */
    CHECK_EQ_INT(a.last_hdr0, 0x81);     /* FIN, text */
    CHECK(bl_topics_deliver(&t, "px", 2, (const uint8_t *)"\x01", 1, 0) == 0);
    bl_topics_flush(&t);
    CHECK_EQ_INT(a.last_hdr0, 0x82); /* binary */
    bl_topics_peer_close(&t, &a.peer);
    bl_topics_peer_close(&t, &b.peer);
    bl_topics_peer_close(&t, &c.peer);
    CHECK_EQ_INT(bl_topics_count(&t, "px", 2), 0);
    CHECK_EQ_INT(t.ntopics, 0); /* topics without subscribers or a value go */
    bl_topics_destroy(&t);
}

static void test_unsubscribe_and_order(void)
{
    bl_topics_limits_t l = limits();
    l.queue_max = 10000;
    bl_topics_t t;
    CHECK(bl_topics_init(&t, &l) == 0);
    g_topics = &t;
    fake_t a;
    fake_init(&a, 0);
    CHECK(sub(&t, &a, "x", 0) == 0);
    char m[8];
    for (int i = 0; i < 20; i++) {
        snprintf(m, sizeof(m), "%d", i);
        pub(&t, "x", m, 0);
    }
    bl_topics_flush(&t);
    CHECK_EQ_INT(a.ngot, 20);
    for (int i = 0; i < 20; i++) {
        snprintf(m, sizeof(m), "%d", i);
        CHECK(strcmp(a.got[i], m) == 0);
    }
    CHECK(bl_topics_unsubscribe(&t, &a.peer, "x", 1) == 0);
    CHECK(bl_topics_unsubscribe(&t, &a.peer, "never", 5) == 0);
    pub(&t, "x", "late", 0);
    bl_topics_flush(&t);
    CHECK_EQ_INT(a.ngot, 20);
    bl_topics_peer_close(&t, &a.peer);
    bl_topics_destroy(&t);
}

static void test_swap_remove_keeps_indexes(void)
{
    /* Subscribers leave from the middle: the moved ones must still be found. */
    bl_topics_limits_t l = limits();
    bl_topics_t t;
    CHECK(bl_topics_init(&t, &l) == 0);
    g_topics = &t;
    fake_t p[6];
    for (int i = 0; i < 6; i++) {
        fake_init(&p[i], 0);
        CHECK(sub(&t, &p[i], "s", 0) == 0);
        CHECK(sub(&t, &p[i], "u", 0) == 0);
    }
    bl_topics_peer_close(&t, &p[1].peer);
    CHECK(bl_topics_unsubscribe(&t, &p[5].peer, "s", 1) == 0);
    bl_topics_peer_close(&t, &p[0].peer);
    CHECK_EQ_INT(bl_topics_count(&t, "s", 1), 3);
    CHECK_EQ_INT(bl_topics_count(&t, "u", 1), 4);
    pub(&t, "s", "m", 0);
    bl_topics_flush(&t);
    CHECK(p[2].ngot == 1 && p[3].ngot == 1 && p[4].ngot == 1 && p[5].ngot == 0);
    for (int i = 2; i < 6; i++)
        bl_topics_peer_close(&t, &p[i].peer);
    CHECK_EQ_INT(t.ntopics, 0);
    bl_topics_destroy(&t);
}

static void test_retained(void)
{
    bl_topics_limits_t l = limits();
    bl_topics_t t;
    CHECK(bl_topics_init(&t, &l) == 0);
    g_topics = &t;
    CHECK(pub(&t, "r", "first", BL_TOPIC_F_RETAIN) == 0);
    CHECK(pub(&t, "r", "second", BL_TOPIC_F_RETAIN) == 0);
    CHECK(pub(&t, "r", "not kept", 0) == 0);
    CHECK_EQ_INT(t.ntopics, 1); /* kept with no subscriber */
    fake_t a;
    fake_init(&a, 0);
    CHECK(sub(&t, &a, "r", 0) == 0);
    bl_topics_flush(&t);
    CHECK_EQ_INT(a.ngot, 1);
    CHECK(strcmp(a.got[0], "second") == 0);
    /* Subscribing again is not a new subscriber: no second copy. */
    CHECK(sub(&t, &a, "r", 0) == 0);
    bl_topics_flush(&t);
    CHECK_EQ_INT(a.ngot, 1);
    /* The process bound (200 bytes): a value that does not fit is not kept. */
    char big[196];
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK(pub(&t, "big", big, BL_TOPIC_F_RETAIN) == 0);
    CHECK_EQ_INT(t.ntopics, 1); /* "big" kept nothing, so it went */
    CHECK(t.retained_bytes <= l.retained_max);
    bl_topics_peer_close(&t, &a.peer);
    bl_topics_destroy(&t);
}

static void test_slow_peer_overflows(void)
{
    bl_topics_limits_t l = limits(); /* queue_max 100 */
    bl_topics_t t;
    CHECK(bl_topics_init(&t, &l) == 0);
    g_topics = &t;
    fake_t slow, ok;
    fake_init(&slow, 0);
    fake_init(&ok, 0);
    slow.backlog = true;
    CHECK(sub(&t, &slow, "q", 0) == 0);
    CHECK(sub(&t, &ok, "q", 0) == 0);
    for (int i = 0; i < 5; i++)
        pub(&t, "q", "0123456789012345678901234567890123456789", 0); /* 42-byte frames */
    bl_topics_flush(&t);
    CHECK_EQ_INT(slow.overflowed, 1);
    CHECK_EQ_INT(slow.ngot, 0);
    CHECK_EQ_INT(ok.ngot, 5);
    CHECK_EQ_INT(bl_topics_count(&t, "q", 1), 1); /* the slow one left */
    CHECK_EQ_INT(t.overflows, 1);
    /* Bytes the owner queued count too. */
    fake_t half;
    fake_init(&half, 0);
    CHECK(sub(&t, &half, "q", 0) == 0);
    half.queue_on_write = 90;
    pub(&t, "q", "a", 0);
    bl_topics_flush(&t);
    CHECK_EQ_INT(half.peer.inflight, 90);
    half.backlog = true;
    pub(&t, "q", "0123456789", 0);
    bl_topics_flush(&t);
    CHECK_EQ_INT(half.overflowed, 1); /* 90 + 12 > 100 */
    bl_topics_peer_close(&t, &ok.peer);
    bl_topics_peer_close(&t, &half.peer);
    bl_topics_peer_close(&t, &slow.peer);
    bl_topics_destroy(&t);
}

static void test_conflation(void)
{
    bl_topics_limits_t l = limits();
    bl_topics_t t;
    CHECK(bl_topics_init(&t, &l) == 0);
    g_topics = &t;
    fake_t c;
    fake_init(&c, 0);
    c.backlog = true;
    CHECK(sub(&t, &c, "a", BL_TOPIC_SUB_CONFLATE) == 0);
    CHECK(sub(&t, &c, "b", BL_TOPIC_SUB_CONFLATE) == 0);
    char m[48];
    for (int i = 0; i < 1000; i++) {
        snprintf(m, sizeof(m), "a%d", i);
        pub(&t, "a", m, 0);
        if (i % 100 == 0) {
            snprintf(m, sizeof(m), "b%d", i);
            pub(&t, "b", m, 0);
        }
    }
    bl_topics_flush(&t);
    CHECK_EQ_INT(c.overflowed, 0); /* 1,010 messages, never more than two queued */
    CHECK_EQ_INT(c.peer.npend, 2);
    c.backlog = false;
    bl_topics_peer_written(&t, &c.peer, 0);
    bl_topics_flush(&t);
    CHECK_EQ_INT(c.ngot, 2);
    CHECK(strcmp(c.got[0], "a999") == 0); /* each topic's newest, in first-queued order */
    CHECK(strcmp(c.got[1], "b900") == 0);
    bl_topics_peer_close(&t, &c.peer);
    bl_topics_destroy(&t);
}

static int firsts, lasts, published;

static void on_first(void *ud, const char *topic, size_t tlen)
{
    (void)ud;
    (void)topic;
    (void)tlen;
    firsts++;
}

static void on_last(void *ud, const char *topic, size_t tlen)
{
    (void)ud;
    (void)topic;
    (void)tlen;
    lasts++;
}

static int on_publish(void *ud, const char *topic, size_t tlen, const uint8_t *p, size_t plen,
                      unsigned flags)
{
    (void)ud;
    (void)topic;
    (void)tlen;
    (void)p;
    (void)plen;
    (void)flags;
    published++;
    return 0;
}

static void test_hooks_and_limits(void)
{
    bl_topics_limits_t l = limits();
    bl_topics_t t;
    CHECK(bl_topics_init(&t, &l) == 0);
    g_topics = &t;
    t.on_first_subscriber = on_first;
    t.on_last_unsubscribed = on_last;
    fake_t a, b;
    fake_init(&a, 0);
    fake_init(&b, 0);
    CHECK(sub(&t, &a, "h", 0) == 0);
    CHECK(sub(&t, &b, "h", 0) == 0);
    CHECK_EQ_INT(firsts, 1);
    bl_topics_unsubscribe(&t, &a.peer, "h", 1);
    CHECK_EQ_INT(lasts, 0);
    bl_topics_peer_close(&t, &b.peer);
    CHECK_EQ_INT(lasts, 1);
    /* publish goes to the hook when set, else here */
    CHECK(bl_topics_publish(&t, "h", 1, (const uint8_t *)"x", 1, BL_TOPIC_F_TEXT) == 0);
    t.publish = on_publish;
    CHECK(bl_topics_publish(&t, "h", 1, (const uint8_t *)"x", 1, BL_TOPIC_F_TEXT) == 0);
    CHECK_EQ_INT(published, 1);
    /* names: 1..16 bytes, no NUL */
    CHECK(sub(&t, &a, "", 0) == -EINVAL);
    CHECK(sub(&t, &a, "12345678901234567", 0) == -EINVAL);
    CHECK(bl_topics_subscribe(&t, &a.peer, "a\0b", 3, 0) == -EINVAL);
    CHECK(sub(&t, &a, "1234567890123456", 0) == 0);
    /* topics per connection: 3 */
    CHECK(sub(&t, &a, "t2", 0) == 0);
    CHECK(sub(&t, &a, "t3", 0) == 0);
    CHECK(sub(&t, &a, "t4", 0) == -E2BIG);
    CHECK(sub(&t, &a, "t3", BL_TOPIC_SUB_CONFLATE) == 0); /* again: a mode change */
    CHECK_EQ_INT(bl_topics_count(&t, "t4", 2), 0);
    bl_topics_peer_close(&t, &a.peer);
    CHECK_EQ_INT(t.ntopics, 0);
    bl_topics_destroy(&t);
}

static void test_deflate_peers_share_a_compressed_frame(void)
{
    bl_topics_limits_t l = limits();
    l.queue_max = 1 << 20;
    bl_topics_t t;
    CHECK(bl_topics_init(&t, &l) == 0);
    g_topics = &t;
    fake_t z1, z2, z9, plain;
    fake_init(&z1, 15);
    fake_init(&z2, 15);
    fake_init(&z9, 9);
    fake_init(&plain, 0);
    CHECK(sub(&t, &z1, "d", 0) == 0);
    CHECK(sub(&t, &z2, "d", 0) == 0);
    CHECK(sub(&t, &z9, "d", 0) == 0);
    CHECK(sub(&t, &plain, "d", 0) == 0);
    char msg[400];
    for (size_t i = 0; i < sizeof(msg) - 1; i++)
        msg[i] = "price:97000,"[i % 12];
    msg[sizeof(msg) - 1] = '\0';
    pub(&t, "d", msg, 0);
    bl_topics_flush(&t);
    CHECK(z1.last_frame == z2.last_frame);
    CHECK(z1.last_frame != plain.last_frame);
    CHECK(z9.last_frame != z1.last_frame); /* another window: its own frame */
    CHECK_EQ_INT(z1.last_hdr0, 0xC1);      /* FIN, RSV1, text */
    CHECK_EQ_INT(plain.last_hdr0, 0x81);
    pub(&t, "d", "short", 0); /* under the threshold: plain for everyone */
    bl_topics_flush(&t);
    CHECK(z1.last_frame == plain.last_frame);
    bl_topics_peer_close(&t, &z1.peer);
    bl_topics_peer_close(&t, &z2.peer);
    bl_topics_peer_close(&t, &z9.peer);
    bl_topics_peer_close(&t, &plain.peer);
    bl_topics_destroy(&t);
}

int main(void)
{
    test_fan_out_shares_one_frame();
    test_unsubscribe_and_order();
    test_swap_remove_keeps_indexes();
    test_retained();
    test_slow_peer_overflows();
    test_conflation();
    test_hooks_and_limits();
    test_deflate_peers_share_a_compressed_frame();
    return check_report();
}
