/* The Redis transport plugged into the topics registry: the registry's hooks
 * call the transport, and what arrives from Redis is the local fan-out. */
#include "bayleaf/io/topics_redis.h"
#include "bayleaf/common/log.h"
#include "bayleaf/io/topics.h"
#include "io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static void on_first(void *ud, const char *topic, size_t tlen)
{
    bl_topics_redis_subscribe(ud, topic, tlen);
}

static void on_last(void *ud, const char *topic, size_t tlen)
{
    bl_topics_redis_unsubscribe(ud, topic, tlen);
}

static int on_publish(void *ud, const char *topic, size_t tlen, const uint8_t *payload, size_t plen,
                      unsigned flags)
{
    return bl_topics_redis_publish(ud, topic, tlen, payload, plen,
                                   (flags & BL_TOPIC_F_RETAIN) != 0);
}

static void on_arrived(void *ud, const char *topic, size_t tlen, const uint8_t *payload,
                       size_t plen, bool text, bool retained)
{
    unsigned flags = (text ? BL_TOPIC_F_TEXT : 0) | (retained ? BL_TOPIC_F_RETAIN : 0);
    if (bl_topics_deliver(ud, topic, tlen, payload, plen, flags) == -ENOMEM)
        BL_ERROR("topics: out of memory delivering a message from Redis to '%.*s'",
                 (int)(tlen < 80 ? tlen : 80), topic);
}

int bl_server_topics_redis_open(bl_server_t *s)
{
    const char *url = s->cfg->topics_redis;
    if (url == NULL || url[0] == '\0')
        url = getenv(BL_TOPICS_REDIS_ENV);
    if (url == NULL || url[0] == '\0')
        return 0;
    bl_redis_addr_t addr;
    char why[128];
    if (bl_redis_addr_parse(url, &addr, why, sizeof(why)) != 0) {
        char shown[512];
        bl_redis_url_redact(url, shown, sizeof(shown));
        fprintf(stderr, "bayleaf: error: %s '%s': %s\n",
                s->cfg->topics_redis ? "--topics-redis" : "$" BL_TOPICS_REDIS_ENV, shown, why);
        return -EINVAL;
    }
    const char *prefix = s->cfg->topics_prefix ? s->cfg->topics_prefix : BL_TOPICS_REDIS_PREFIX;
    s->topics_redis = bl_topics_redis_new(&s->loop, &addr, prefix, on_arrived, &s->topics);
    if (s->topics_redis == NULL) {
        fprintf(stderr, "bayleaf: error: out of memory\n");
        return -ENOMEM;
    }
    s->topics.hook_ud = s->topics_redis;
    s->topics.on_first_subscriber = on_first;
    s->topics.on_last_unsubscribed = on_last;
    s->topics.publish = on_publish;
    return 0;
}

void bl_server_topics_redis_close(bl_server_t *s)
{
    if (s->topics_redis == NULL)
        return;
    s->topics.on_first_subscriber = NULL;
    s->topics.on_last_unsubscribed = NULL;
    s->topics.publish = NULL;
    s->topics.hook_ud = NULL;
    bl_topics_redis_close(s->topics_redis);
    s->topics_redis = NULL;
}
