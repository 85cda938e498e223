/* The Python thread on its own: bl_python_run with a tiny ASGI app, and a fake
 * I/O thread (started through bl_io_control_t, as runner.py's start_io does)
 * that posts one REQUEST up, takes the response Python posts down, then
 * reports the end of the drain (DRAINED) and waits for STOP. No socket, no
 * libuv: the bridge is the only thing the two sides share. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>

#include "bayleaf/bridge/bridge.h"
#include "bayleaf/bridge/io_control.h"
#include "bayleaf/py/embed.h"
#include "check.h"

#define WAIT_S 20

static const char app_src[] =
    "async def app(scope, receive, send):\n"
    "    assert scope['type'] == 'http', scope['type']\n"
    "    msg = await receive()\n"
    "    assert msg == {'type': 'http.request', 'body': b'', 'more_body': False}, msg\n"
    "    body = ('%s %s %s %s %s' % (scope['method'], scope['path'],\n"
    "            scope['query_string'].decode(), dict(scope['headers'])[b'x-y'].decode(),\n"
    "            scope['client'][0])).encode()\n"
    "    await send({'type': 'http.response.start', 'status': 201,\n"
    "                'headers': [(b'content-type', b'text/plain'),\n"
    "                            (b'content-length', str(len(body)).encode())]})\n"
    "    await send({'type': 'http.response.body', 'body': body})\n";

/* What the fake I/O thread saw, checked on the main thread once it is joined. */
static struct {
    pthread_t thread;
    bool started, joined;
    sem_t wake;       /* wake_down and post_stop */
    atomic_bool stop; /* STOP posted */
    int nresponse, nother;
    int status;
    char head[512], body[512];
    bool complete;     /* the RESPONSE carried the whole body */
    bool ex_unsent_ok; /* nothing left unaccounted once written */
    bool timed_out;
} io;

static void fake_wake_down(void)
{
    sem_post(&io.wake);
}

static bool wait_wake(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_S;
    while (sem_timedwait(&io.wake, &ts) != 0)
        if (errno != EINTR) {
            io.timed_out = true;
            return false;
        }
    return true;
}

static void post_up(bl_event_t *ev)
{
    bl_bridge_post_up(ev);
    bl_bridge_flush_up(); /* the eventfd Python's loop watches */
}

/* GET /hi?x=1 with X-Y: z from 127.0.0.1:1234, as the HTTP parser would build it. */
static bl_exchange_t *request_exchange(void)
{
    static const char raw[] = "/hi?x=1"
                              "x-y"
                              "z";
    bl_exchange_t *ex = bl_exchange_new();
    bl_head_t *h = calloc(1, sizeof(*h));
    if (ex == NULL || h == NULL || (h->buf = malloc(sizeof(raw))) == NULL ||
        (h->headers = calloc(1, sizeof(*h->headers))) == NULL) {
        if (h != NULL)
            bl_head_free(h);
        if (ex != NULL)
            bl_exchange_unref(ex);
        return NULL;
    }
    memcpy(h->buf, raw, sizeof(raw));
    h->len = h->cap = sizeof(raw) - 1;
    h->method = "GET";
    h->http_major = h->http_minor = 1;
    h->keep_alive = true;
    h->url_len = 7;
    h->path_off = 0, h->path_len = 3;
    h->query_off = 4, h->query_len = 3;
    h->nheaders = h->headers_cap = 1;
    h->headers[0] = (bl_header_t){.name_off = 7, .name_len = 3, .value_off = 10, .value_len = 1};
    ex->head = h;
    ex->kind = BL_KIND_HTTP;
    strcpy(ex->client_host, "127.0.0.1");
    ex->client_port = 1234;
    strcpy(ex->server_host, "127.0.0.1");
    ex->server_port = 8000;
    return ex;
}

/* Takes the down-queue; writing an event means taking its bytes off ex->unsent. */
static void take_down(bool *responded)
{
    for (bl_event_t *ev = bl_queue_take(&bl_bridge.down); ev != NULL;) {
        bl_event_t *next = ev->next;
        if (ev->ex != NULL)
            atomic_fetch_sub(&ev->ex->unsent, bl_event_unsent(ev));
        if (ev->type == BL_EV_RESPONSE) {
            io.nresponse++;
            io.status = ev->status;
            snprintf(io.head, sizeof(io.head), "%.*s", (int)ev->len, ev->data);
            snprintf(io.body, sizeof(io.body), "%.*s", (int)ev->len2, ev->data + ev->len);
            io.complete = !(ev->flags & BL_EVF_MORE);
            io.ex_unsent_ok = atomic_load(&ev->ex->unsent) == 0;
            *responded = true;
        } else {
            io.nother++;
        }
        bl_event_free(ev);
        ev = next;
    }
}

static void *fake_io_main(void *arg)
{
    (void)arg;
    bl_exchange_t *ex = request_exchange();
    bl_event_t *ev = ex != NULL ? bl_event_new(BL_EV_REQUEST, ex, 0) : NULL;
    if (ev == NULL) {
        io.timed_out = true;
    } else {
        post_up(ev);
        bl_exchange_unref(ex); /* the event holds it now */
        bool responded = false;
        while (!responded && wait_wake())
            take_down(&responded);
    }
    /* Shutdown as the real I/O thread ends it: drained, then Python stops us. */
    if ((ev = bl_event_new(BL_EV_DRAINED, NULL, 0)) != NULL)
        post_up(ev);
    while (!atomic_load(&io.stop) && wait_wake()) {
        bool ignored;
        take_down(&ignored);
    }
    return NULL;
}

static int fake_start(void *server)
{
    (void)server;
    int err = pthread_create(&io.thread, NULL, fake_io_main, NULL);
    if (err != 0)
        return -err;
    io.started = true;
    return 0;
}

static void fake_post_stop(void *server)
{
    (void)server;
    atomic_store(&io.stop, true);
    sem_post(&io.wake);
}

static void fake_join(void *server)
{
    (void)server;
    pthread_join(io.thread, NULL);
    io.joined = true;
}

static bool fake_running(const void *server)
{
    (void)server;
    return io.started && !io.joined;
}

int main(void)
{
    char dir[] = "/tmp/bl-py-unit-XXXXXX", path[128];
    if (!CHECK(mkdtemp(dir) != NULL))
        return check_report();
    snprintf(path, sizeof(path), "%s/tinyapp.py", dir);
    FILE *f = fopen(path, "w");
    if (!CHECK(f != NULL))
        return check_report();
    fputs(app_src, f);
    CHECK(fclose(f) == 0);
    /* The loader puts the working directory first on sys.path, as Daphne does. */
    if (!CHECK(chdir(dir) == 0))
        return check_report();
    unsetenv("VIRTUAL_ENV");

    bl_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.app = "tinyapp:app";
    cfg.lifespan = "off";
    cfg.loop = "asyncio";
    cfg.root_path = "";
    cfg.verbosity = 0;
    cfg.application_close_timeout = 10;
    cfg.loop_watchdog = 5;
    cfg.max_queued_bytes = BL_UP_MAX_BYTES;

    CHECK(sem_init(&io.wake, 0, 0) == 0);
    if (!CHECK(bl_bridge_init() == 0))
        return check_report();
    bl_bridge.wake_down = fake_wake_down;
    bl_io_control_t ctl = {.start = fake_start,
                           .post_stop = fake_post_stop,
                           .join = fake_join,
                           .running = fake_running};
    char *argv[] = {"bayleaf", NULL};
    CHECK_EQ_INT(bl_python_run(&ctl, &cfg, 1, argv), 0);
    if (fake_running(NULL)) { /* Python failed before stopping us */
        fake_post_stop(NULL);
        fake_join(NULL);
    }

    CHECK(io.started && io.joined);
    CHECK(!io.timed_out);
    CHECK_EQ_INT(io.nresponse, 1);
    CHECK_EQ_INT(io.nother, 0); /* complete in one RESPONSE: no SEND_BODY, no FINISH */
    CHECK_EQ_INT(io.status, 201);
    CHECK_EQ_STR(io.head, "content-type: text/plain\r\ncontent-length: 23\r\n");
    CHECK_EQ_STR(io.body, "GET /hi x=1 z 127.0.0.1");
    CHECK(io.complete);
    CHECK(io.ex_unsent_ok);

    bl_bridge.wake_down = NULL;
    bl_bridge_destroy();
    sem_destroy(&io.wake);
    unlink(path);
    rmdir(dir);
    return check_report();
}
