/* The bridge's WSGI side: HTTP REQUESTs go to the pool's queue, a scope's later
 * events to its serving thread, nothing of it to the asyncio up-queue; the
 * process-wide counts balance; stop, release and the loop-first hand-over. */
#include "bayleaf/bridge/bridge.h"

#include <pthread.h>
#include <time.h>

#include "check.h"

static bl_exchange_t *exchange(int kind)
{
    bl_exchange_t *ex = bl_exchange_new();
    if (ex != NULL)
        ex->kind = kind;
    return ex;
}

static void post(int type, bl_exchange_t *ex, uint64_t aux)
{
    bl_event_t *ev = bl_event_new(type, ex, 8);
    if (ev != NULL) {
        ev->aux = aux;
        bl_bridge_post_up(ev);
    }
}

static bool counts_zero(void)
{
    return atomic_load(&bl_bridge.up_bytes) == 0 && atomic_load(&bl_bridge.up_events) == 0;
}

static void free_list(bl_event_t *ev)
{
    while (ev != NULL) {
        bl_event_t *next = ev->next;
        bl_event_free(ev);
        ev = next;
    }
}

static void test_routing(void)
{
    CHECK_EQ_INT(bl_bridge_init(), 0);
    bl_bridge.wsgi.enabled = true;
    bl_exchange_t *http = exchange(BL_KIND_HTTP), *ws = exchange(BL_KIND_WEBSOCKET);
    if (!CHECK(http != NULL && ws != NULL))
        return;
    post(BL_EV_REQUEST, ws, 0);   /* WebSocket: the asyncio loop's */
    post(BL_EV_REQUEST, http, 0); /* HTTP: the pool's */
    post(BL_EV_BODY, http, 1);
    post(BL_EV_DISCONNECT, http, 2);
    CHECK(http->wsgi && !ws->wsgi);
    bl_event_t *up = bl_bridge_take_up();
    CHECK(up != NULL && up->ex == ws && up->next == NULL);
    free_list(up);
    CHECK(!counts_zero()); /* the pool's events still count */

    pthread_cond_t waker;
    pthread_cond_init(&waker, NULL);
    bl_event_t *req = bl_wsgi_take_request(&waker);
    CHECK(req != NULL && req->ex == http && req->type == BL_EV_REQUEST);
    CHECK(http->wsgi_waker == &waker);
    bl_event_t *later = bl_wsgi_take(http, false);
    CHECK(later != NULL && later->aux == 1 && later->next != NULL && later->next->aux == 2);
    CHECK(bl_wsgi_take(http, false) == NULL);
    CHECK(counts_zero());
    free_list(later);

    /* Released: what comes later is dropped, and still leaves the count. */
    bl_wsgi_release(http);
    post(BL_EV_WRITABLE, http, 3);
    CHECK(http->pending == NULL);
    CHECK(counts_zero());
    bl_event_free(req);
    pthread_cond_destroy(&waker);
    bl_exchange_unref(http);
    bl_exchange_unref(ws);
    bl_bridge_destroy();
    bl_bridge.wsgi.enabled = false;
}

static bl_exchange_t *waiting_on;

static void *take_waiting(void *arg)
{
    (void)arg;
    return bl_wsgi_take(waiting_on, true);
}

static void *take_request(void *arg)
{
    return bl_wsgi_take_request(arg);
}

static void test_waiters_woken(void)
{
    CHECK_EQ_INT(bl_bridge_init(), 0);
    bl_bridge.wsgi.enabled = true;
    pthread_cond_t waker;
    pthread_cond_init(&waker, NULL);
    pthread_t t;
    void *got = NULL;

    /* A pool thread waiting for a request gets the one posted. */
    bl_exchange_t *ex = exchange(BL_KIND_HTTP);
    pthread_create(&t, NULL, take_request, &waker);
    post(BL_EV_REQUEST, ex, 7);
    pthread_join(t, &got);
    bl_event_t *req = got;
    CHECK(req != NULL && req->aux == 7);

    /* The thread serving the scope waits for its next event. */
    waiting_on = ex;
    pthread_create(&t, NULL, take_waiting, NULL);
    post(BL_EV_BODY, ex, 8);
    pthread_join(t, &got);
    CHECK(got != NULL && ((bl_event_t *)got)->aux == 8);
    free_list(got);
    bl_wsgi_release(ex);
    bl_event_free(req);

    /* Stop: a thread waiting for a request returns NULL. */
    pthread_create(&t, NULL, take_request, &waker);
    bl_wsgi_stop();
    pthread_join(t, &got);
    CHECK(got == NULL);
    CHECK(counts_zero());
    pthread_cond_destroy(&waker);
    bl_exchange_unref(ex);
    bl_bridge_destroy();
    bl_bridge.wsgi.stopping = false;
    bl_bridge.wsgi.enabled = false;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void test_loop_first(void)
{
    CHECK_EQ_INT(bl_bridge_init(), 0);
    bl_bridge.wsgi.enabled = true;
    /* Nothing for the loop: no yield. */
    CHECK(!bl_wsgi_loop_waits());
    /* The loop woken for a WebSocket message: pool threads step aside... */
    bl_exchange_t *ws = exchange(BL_KIND_WEBSOCKET);
    post(BL_EV_WS_MESSAGE, ws, 0);
    bl_bridge_flush_up();
    CHECK(bl_wsgi_loop_waits());
    /* ...for 1 ms at most when the loop answers nothing... */
    double t0 = now_ms();
    bl_wsgi_yield();
    CHECK(now_ms() - t0 >= 0.9);
    CHECK(now_ms() - t0 < 1000);
    /* ...and no longer once it answered. */
    bl_bridge_flush_down();
    CHECK(!bl_wsgi_loop_waits());
    free_list(bl_bridge_take_up());
    bl_exchange_unref(ws);
    bl_bridge_destroy();
    bl_bridge.wsgi.enabled = false;
}

int main(void)
{
    test_routing();
    test_waiters_woken();
    test_loop_first();
    return check_report();
}
