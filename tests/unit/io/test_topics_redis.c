/* The Redis transport of topics against a real redis-server (started here on a
 * unix socket in a temporary directory): subscribe, plain PUBLISH from another
 * client, text or binary, retained values fetched at the first subscription,
 * publishes in order, Redis killed and started again, the buffer's bound, and
 * a close that leaves no handle behind. */
#include "bayleaf/io/topics_redis.h"
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <uv.h>

#define PREFIX "t:"

typedef struct {
    char topic[64];
    char payload[64];
    size_t plen;
    bool text, retained;
} got_t;

static got_t got[4096];
static size_t ngot;

static void on_deliver(void *ud, const char *topic, size_t tlen, const uint8_t *p, size_t plen,
                       bool text, bool retained)
{
    (void)ud;
    if (ngot == sizeof(got) / sizeof(got[0]))
        return;
    got_t *g = &got[ngot++];
    snprintf(g->topic, sizeof(g->topic), "%.*s", (int)tlen, topic);
    g->plen = plen < sizeof(g->payload) ? plen : sizeof(g->payload);
    memcpy(g->payload, p, g->plen);
    g->text = text;
    g->retained = retained;
}

static char dir[64], sock[128];
static pid_t redis_pid = -1;

static void redis_start(void)
{
    redis_pid = fork();
    if (redis_pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", sock, "--save", "",
               "--appendonly", "no", "--dir", dir, (char *)NULL);
        _exit(127);
    }
    CHECK(redis_pid > 0);
}

static void redis_kill(void)
{
    int st;
    kill(redis_pid, SIGKILL);
    waitpid(redis_pid, &st, 0);
    redis_pid = -1;
    unlink(sock);
}

/* A plain client, as another program would be. */
static redisContext *client(void)
{
    for (int i = 0; i < 500; i++) {
        redisContext *c = redisConnectUnix(sock);
        if (c != NULL && c->err == 0) {
            redisReply *rep = redisCommand(c, "PING");
            bool ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;
            freeReplyObject(rep);
            if (ok)
                return c;
        }
        if (c != NULL)
            redisFree(c);
        usleep(10000);
    }
    return NULL;
}

static long long numsub(redisContext *c, const char *chan)
{
    redisReply *rep = redisCommand(c, "PUBSUB NUMSUB %s", chan);
    long long n = rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2
                      ? rep->element[1]->integer
                      : -1;
    freeReplyObject(rep);
    return n;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until cond() holds or 10 s passed. */
static bool run_until(uv_loop_t *loop, bool (*cond)(void *), void *arg)
{
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    uint64_t until = uv_now(loop) + 10000;
    bool ok;
    while (!(ok = cond(arg)) && uv_now(loop) < until)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static bool got_at_least(void *n)
{
    return ngot >= *(size_t *)n;
}

static bl_topics_redis_t *tr;

static bool is_up(void *arg)
{
    bl_topics_redis_stats_t st;
    (void)arg;
    bl_topics_redis_stats(tr, &st);
    return st.up;
}

static bool outages_at_least(void *n)
{
    bl_topics_redis_stats_t st;
    bl_topics_redis_stats(tr, &st);
    return !st.up && st.outages >= *(uint64_t *)n;
}

static redisContext *peer;

static bool subscribed(void *chan)
{
    return numsub(peer, chan) == 1;
}

static bool published_at_least(void *n)
{
    bl_topics_redis_stats_t st;
    bl_topics_redis_stats(tr, &st);
    return st.published >= *(uint64_t *)n;
}

static void wait_got(uv_loop_t *loop, size_t n)
{
    CHECK(run_until(loop, got_at_least, &n));
}

static void test_addr_parse(void)
{
    bl_redis_addr_t a;
    char why[128];
    CHECK(bl_redis_addr_parse("redis://127.0.0.1:6380/2", &a, why, sizeof(why)) == 0);
    CHECK(strcmp(a.host, "127.0.0.1") == 0 && a.port == 6380 && a.db == 2 && a.path[0] == 0);
    CHECK(bl_redis_addr_parse("redis://cache.example", &a, why, sizeof(why)) == 0);
    CHECK(strcmp(a.host, "cache.example") == 0 && a.port == 6379 && a.db == 0);
    CHECK(bl_redis_addr_parse("redis://[::1]:7000/", &a, why, sizeof(why)) == 0);
    CHECK(strcmp(a.host, "::1") == 0 && a.port == 7000);
    CHECK(bl_redis_addr_parse("redis://:s3cret@h:1", &a, why, sizeof(why)) == 0);
    CHECK(strcmp(a.password, "s3cret") == 0 && a.user[0] == 0 && strcmp(a.host, "h") == 0);
    CHECK(bl_redis_addr_parse("redis+unix:///run/redis.sock?db=3", &a, why, sizeof(why)) == 0);
    CHECK(strcmp(a.path, "/run/redis.sock") == 0 && a.db == 3);
    CHECK(bl_redis_addr_parse("unix:///tmp/r.sock", &a, why, sizeof(why)) == 0);
    CHECK(strcmp(a.path, "/tmp/r.sock") == 0 && a.db == 0);
    CHECK(bl_redis_addr_parse("http://h", &a, why, sizeof(why)) == -EINVAL);
    CHECK(bl_redis_addr_parse("redis://h:0", &a, why, sizeof(why)) == -EINVAL);
    CHECK(bl_redis_addr_parse("redis://h:99999", &a, why, sizeof(why)) == -EINVAL);
    CHECK(bl_redis_addr_parse("redis://h/x", &a, why, sizeof(why)) == -EINVAL);
    CHECK(bl_redis_addr_parse("redis://", &a, why, sizeof(why)) == -EINVAL);
    CHECK(bl_redis_addr_parse("unix://relative", &a, why, sizeof(why)) == -EINVAL);
    CHECK(bl_redis_addr_parse("unix:///p?x=1", &a, why, sizeof(why)) == -EINVAL);
}

static void test_url_redact(void)
{
    char out[128];
    bl_redis_url_redact("redis://bob:s3cret@h:1/2", out, sizeof(out));
    CHECK(strcmp(out, "redis://bob:***@h:1/2") == 0);
    bl_redis_url_redact("redis://:s3cret@h", out, sizeof(out));
    CHECK(strcmp(out, "redis://:***@h") == 0);
    bl_redis_url_redact("redis+unix://:s3cret@/run/r.sock", out, sizeof(out));
    CHECK(strcmp(out, "redis+unix://:***@/run/r.sock") == 0);
    bl_redis_url_redact("redis://h:1/2", out, sizeof(out));
    CHECK(strcmp(out, "redis://h:1/2") == 0);
    bl_redis_url_redact("redis://:pa/ss@h", out, sizeof(out)); /* refused, and hidden */
    CHECK(strcmp(out, "redis://:***@h") == 0);
    bl_redis_url_redact("redis://h/a@b", out, sizeof(out));
    CHECK(strcmp(out, "redis://***@b") == 0);
    bl_redis_url_redact("redis:/:s3cret@h", out, sizeof(out)); /* a typo: still hidden */
    CHECK(strcmp(out, "***@h") == 0);
    size_t off, len;
    CHECK(bl_redis_url_password("redis://bob:s3cret@h:1/2", &off, &len) && off == 12 && len == 6);
    CHECK(!bl_redis_url_password("redis://h:1/2", &off, &len));
}

static void cmd(redisContext *c, const char *fmt, const char *a, const char *b)
{
    redisReply *rep = redisCommand(c, fmt, a, b);
    CHECK(rep != NULL && rep->type != REDIS_REPLY_ERROR);
    freeReplyObject(rep);
}

int main(void)
{
    test_addr_parse();
    test_url_redact();

    snprintf(dir, sizeof(dir), "/tmp/bl-topics-redis-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(sock, sizeof(sock), "%s/redis.sock", dir);
    redis_start();
    peer = client();
    CHECK(peer != NULL);
    if (peer == NULL)
        return check_report();

    uv_loop_t loop;
    uv_loop_init(&loop);
    bl_redis_addr_t addr;
    char why[128], url[160];
    snprintf(url, sizeof(url), "unix://%s", sock);
    CHECK(bl_redis_addr_parse(url, &addr, why, sizeof(why)) == 0);

    /* a retained value stored before this transport exists */
    cmd(peer, "SET %s %s", PREFIX "early", "before-start");

    tr = bl_topics_redis_new(&loop, &addr, PREFIX, on_deliver, NULL);
    CHECK(tr != NULL);
    CHECK(run_until(&loop, is_up, NULL));

    /* first subscriber: SUBSCRIBE; a plain PUBLISH from another client arrives */
    bl_topics_redis_subscribe(tr, "a", 1);
    CHECK(run_until(&loop, subscribed, PREFIX "a"));
    size_t base = ngot;
    cmd(peer, "PUBLISH %s %s", PREFIX "a", "hello");
    wait_got(&loop, base + 1);
    CHECK(strcmp(got[base].topic, "a") == 0 && got[base].plen == 5 &&
          memcmp(got[base].payload, "hello", 5) == 0);
    CHECK(got[base].text && !got[base].retained);
    base = ngot;
    redisReply *rep = redisCommand(peer, "PUBLISH %s %b", PREFIX "a", "\xff\xfe", (size_t)2);
    freeReplyObject(rep);
    wait_got(&loop, base + 1);
    CHECK(got[base].plen == 2 && memcmp(got[base].payload, "\xff\xfe", 2) == 0);
    CHECK(!got[base].text && !got[base].retained);

    /* the retained value stored before start: delivered once, as retained */
    base = ngot;
    bl_topics_redis_subscribe(tr, "early", 5);
    wait_got(&loop, base + 1);
    CHECK(strcmp(got[base].topic, "early") == 0 && got[base].retained &&
          memcmp(got[base].payload, "before-start", 12) == 0);

    /* publishes of this transport come back in order; retained ones as retained */
    bl_topics_redis_subscribe(tr, "o", 1);
    CHECK(run_until(&loop, subscribed, PREFIX "o"));
    base = ngot;
    for (int i = 0; i < 200; i++) {
        char p[16];
        int n = snprintf(p, sizeof(p), "%d", i);
        CHECK(bl_topics_redis_publish(tr, "o", 1, (const uint8_t *)p, (size_t)n, i == 199) == 0);
    }
    wait_got(&loop, base + 200);
    bool in_order = true;
    for (int i = 0; i < 200; i++) {
        char p[16];
        snprintf(p, sizeof(p), "%d", i);
        in_order &= strcmp(got[base + i].topic, "o") == 0 && got[base + i].plen == strlen(p) &&
                    memcmp(got[base + i].payload, p, strlen(p)) == 0;
    }
    CHECK(in_order);
    CHECK(!got[base + 198].retained && got[base + 199].retained);
    redisReply *v = redisCommand(peer, "GET %s", PREFIX "o");
    CHECK(v != NULL && v->type == REDIS_REPLY_STRING && strcmp(v->str, "199") == 0);
    freeReplyObject(v);

    /* a retained publish, then a new topic's first subscriber gets it once */
    uint64_t want = 201;
    CHECK(bl_topics_redis_publish(tr, "later", 5, (const uint8_t *)"L1", 2, true) == 0);
    CHECK(run_until(&loop, published_at_least, &want));
    base = ngot;
    bl_topics_redis_subscribe(tr, "later", 5);
    wait_got(&loop, base + 1);
    CHECK(strcmp(got[base].topic, "later") == 0 && got[base].retained);
    CHECK(run_until(&loop, subscribed, PREFIX "later"));

    /* the last local subscriber gone: UNSUBSCRIBE */
    bl_topics_redis_unsubscribe(tr, "later", 5);
    CHECK(numsub(peer, PREFIX "later") >= 0);
    for (int i = 0; i < 100 && numsub(peer, PREFIX "later") != 0; i++)
        uv_run(&loop, UV_RUN_NOWAIT), usleep(5000);
    CHECK(numsub(peer, PREFIX "later") == 0);
    CHECK(got[ngot - 1].retained); /* and the value was not delivered twice */
    CHECK(ngot == base + 1);

    /* Connections cut, Redis keeps its data: back, the retained value is fetched
     * again and not delivered twice; one that changed meanwhile is. */
    uint64_t outages = 1;
    base = ngot;
    cmd(peer, "CLIENT KILL TYPE %s", "pubsub", NULL);
    CHECK(run_until(&loop, outages_at_least, &outages));
    CHECK(run_until(&loop, is_up, NULL));
    CHECK(run_until(&loop, subscribed, PREFIX "early"));
    cmd(peer, "PUBLISH %s %s", PREFIX "a", "mark-1");
    wait_got(&loop, base + 1);
    CHECK(ngot == base + 1 && strcmp(got[base].topic, "a") == 0); /* no second "before-start" */
    cmd(peer, "SET %s %s", PREFIX "early", "changed");
    outages = 2;
    cmd(peer, "CLIENT KILL TYPE %s", "pubsub", NULL);
    CHECK(run_until(&loop, outages_at_least, &outages));
    wait_got(&loop, base + 2);
    CHECK(strcmp(got[base + 1].topic, "early") == 0 && got[base + 1].retained &&
          memcmp(got[base + 1].payload, "changed", 7) == 0);

    /* Redis killed: publishes wait; Redis back: resubscribed, they arrive in order */
    redisFree(peer);
    redis_kill();
    bl_topics_redis_stats_t st;
    outages = 3;
    CHECK(run_until(&loop, outages_at_least, &outages));
    bl_topics_redis_stats(tr, &st);
    CHECK(!st.up && st.outages == 3);
    base = ngot;
    CHECK(bl_topics_redis_publish(tr, "o", 1, (const uint8_t *)"w1", 2, false) == 0);
    CHECK(bl_topics_redis_publish(tr, "o", 1, (const uint8_t *)"w2", 2, true) == 0);
    redis_start();
    peer = client();
    CHECK(peer != NULL);
    CHECK(run_until(&loop, is_up, NULL));
    CHECK(run_until(&loop, subscribed, PREFIX "o"));
    CHECK(run_until(&loop, subscribed, PREFIX "a"));
    wait_got(&loop, base + 2);
    CHECK(memcmp(got[base].payload, "w1", 2) == 0 && memcmp(got[base + 1].payload, "w2", 2) == 0);
    cmd(peer, "PUBLISH %s %s", PREFIX "a", "after");
    wait_got(&loop, base + 3);
    CHECK(strcmp(got[base + 2].topic, "a") == 0 && memcmp(got[base + 2].payload, "after", 5) == 0);
    bl_topics_redis_stats(tr, &st);
    CHECK(st.outages == 3 && st.dropped == 0);

    /* down again: the buffer holds at most BL_TOPICS_REDIS_QUEUE_BYTES */
    redisFree(peer);
    redis_kill();
    outages = 4;
    CHECK(run_until(&loop, outages_at_least, &outages));
    size_t big = 1u << 20;
    uint8_t *blob = calloc(1, big);
    int refused = 0, accepted = 0;
    for (int i = 0; i < 20; i++) {
        int rc = bl_topics_redis_publish(tr, "o", 1, blob, big, false);
        if (rc == -ENOBUFS)
            refused++;
        else if (rc == 0)
            accepted++;
    }
    free(blob);
    bl_topics_redis_stats(tr, &st);
    CHECK(accepted == 15 && refused == 5);
    CHECK(st.dropped == 5 && st.queued_bytes <= BL_TOPICS_REDIS_QUEUE_BYTES);
    CHECK(st.outages == 4);

    /* close with Redis down: every handle goes, the loop closes cleanly */
    bl_topics_redis_close(tr);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);

    rmdir(dir);
    return check_report();
}
