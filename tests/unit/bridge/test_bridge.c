/* The bridge: queue order, empty->non-empty wake-ups, event and exchange lifetimes,
 * and a two-thread stress run. */
#include "bayleaf/bridge/bridge.h"

#include <semaphore.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"

static size_t list_len(const bl_event_t *ev)
{
    size_t n = 0;
    for (; ev != NULL; ev = ev->next)
        n++;
    return n;
}

static void free_list(bl_event_t *ev)
{
    while (ev != NULL) {
        bl_event_t *next = ev->next;
        bl_event_free(ev);
        ev = next;
    }
}

static void test_queue_order(void)
{
    bl_queue_t q;
    CHECK_EQ_INT(bl_queue_init(&q), 0);
    CHECK(bl_queue_take(&q) == NULL);

    /* Only the first push into an empty queue asks for a wake-up. */
    for (int i = 0; i < 5; i++) {
        bl_event_t *ev = bl_event_new(BL_EV_BODY, NULL, 0);
        if (!CHECK(ev != NULL))
            break;
        ev->aux = (uint64_t)i;
        ev->next = (bl_event_t *)&q; /* push must reset it */
        CHECK_EQ_INT(bl_queue_push(&q, ev), i == 0);
    }
    bl_event_t *list = bl_queue_take(&q);
    CHECK_EQ_INT(list_len(list), 5);
    uint64_t want = 0;
    for (bl_event_t *ev = list; ev != NULL; ev = ev->next)
        CHECK_EQ_INT(ev->aux, want++);
    free_list(list);

    /* Taken: empty again, and the next push wakes again. */
    CHECK(bl_queue_take(&q) == NULL);
    bl_event_t *ev = bl_event_new(BL_EV_FINISH, NULL, 0);
    CHECK(bl_queue_push(&q, ev));
    list = bl_queue_take(&q);
    CHECK(list == ev);
    CHECK(list != NULL && list->next == NULL);
    free_list(list);

    /* Destroying a queue frees what is still in it (LeakSanitizer checks). */
    bl_exchange_t *ex = bl_exchange_new();
    CHECK(bl_queue_push(&q, bl_event_new(BL_EV_BODY, ex, 100)));
    CHECK(!bl_queue_push(&q, bl_event_new(BL_EV_BODY, ex, 0)));
    CHECK_EQ_INT(atomic_load(&ex->refs), 3);
    bl_queue_destroy(&q);
    CHECK_EQ_INT(atomic_load(&ex->refs), 1);
    bl_exchange_unref(ex);
}

static void test_event_payload(void)
{
    bl_event_t *ev = bl_event_new(BL_EV_RESPONSE, NULL, 64);
    if (!CHECK(ev != NULL))
        return;
    CHECK_EQ_INT(ev->type, BL_EV_RESPONSE);
    CHECK_EQ_INT(ev->flags, 0);
    CHECK_EQ_INT(ev->status, 0);
    CHECK_EQ_INT(ev->aux, 0);
    CHECK_EQ_INT(ev->len, 64);
    CHECK_EQ_INT(ev->len2, 0);
    CHECK(ev->data == ev->payload);
    CHECK(ev->ex == NULL);
    CHECK(ev->next == NULL);
    /* The whole payload is writable (ASan checks the bounds). */
    for (size_t i = 0; i < 64; i++)
        ev->data[i] = (char)i;
    CHECK(ev->data[63] == 63);
    bl_event_free(ev);

    ev = bl_event_new(BL_EV_STOP, NULL, 0);
    if (CHECK(ev != NULL)) {
        CHECK_EQ_INT(ev->len, 0);
        CHECK(ev->data == ev->payload);
        bl_event_free(ev);
    }

    /* A large payload. */
    ev = bl_event_new(BL_EV_SEND_BODY, NULL, 1 << 20);
    if (CHECK(ev != NULL)) {
        memset(ev->data, 'x', 1 << 20);
        CHECK_EQ_INT(ev->len, 1 << 20);
        bl_event_free(ev);
    }
}

static void test_exchange_refs(void)
{
    bl_exchange_t *ex = bl_exchange_new();
    if (!CHECK(ex != NULL))
        return;
    CHECK_EQ_INT(atomic_load(&ex->refs), 1);
    CHECK_EQ_INT(ex->client_port, -1);
    CHECK_EQ_INT(ex->server_port, -1);
    CHECK_EQ_INT(atomic_load(&ex->unsent), 0);
    CHECK(!atomic_load(&ex->want_writable));
    CHECK(ex->pending == NULL && ex->head == NULL && ex->conn == NULL && ex->py == NULL);

    /* Each event holds a reference while it lives. */
    bl_event_t *a = bl_event_new(BL_EV_REQUEST, ex, 3);
    bl_event_t *b = bl_event_new(BL_EV_BODY, ex, 0);
    CHECK(a != NULL && a->ex == ex);
    CHECK_EQ_INT(atomic_load(&ex->refs), 3);
    bl_exchange_ref(ex);
    CHECK_EQ_INT(atomic_load(&ex->refs), 4);
    bl_exchange_unref(ex);
    bl_event_free(a);
    CHECK_EQ_INT(atomic_load(&ex->refs), 2);

    /* The creator lets go first: the event keeps the exchange alive. */
    bl_exchange_unref(ex);
    CHECK_EQ_INT(atomic_load(&ex->refs), 1);
    ex->client_port = 1234; /* still valid memory (ASan would tell) */
    bl_event_free(b);       /* the last reference: the exchange goes too */
}

/* The last reference frees the pending body events and the head with it. As in
 * py_http.c, pending events hold no reference (that would be a cycle). */
static void test_exchange_frees_pending(void)
{
    bl_exchange_t *ex = bl_exchange_new();
    if (!CHECK(ex != NULL))
        return;
    ex->head = calloc(1, sizeof(bl_head_t));
    ex->head->buf = malloc(32);
    ex->head->headers = calloc(2, sizeof(bl_header_t));
    for (int i = 0; i < 3; i++) {
        bl_event_t *ev = bl_event_new(BL_EV_BODY, NULL, 10);
        if (ev == NULL)
            continue;
        if (ex->pending_tail != NULL)
            ex->pending_tail->next = ev;
        else
            ex->pending = ev;
        ex->pending_tail = ev;
    }
    CHECK_EQ_INT(list_len(ex->pending), 3);

    /* A queued event still holds the exchange; the pending ones wait with it. */
    bl_event_t *queued = bl_event_new(BL_EV_DISCONNECT, ex, 0);
    bl_exchange_unref(ex);
    CHECK_EQ_INT(atomic_load(&ex->refs), 1);
    CHECK_EQ_INT(list_len(ex->pending), 3);
    bl_event_free(queued); /* frees ex, its pending list and its head (LSan checks) */
}

typedef struct {
    bl_queue_t q;
    sem_t wake;
    bl_exchange_t *ex;
    unsigned wakes; /* pushes that found the queue empty */
    int failed;
} stress_t;

#define STRESS_EVENTS 100000

static void *producer(void *arg)
{
    stress_t *s = arg;
    for (uint64_t i = 0; i < STRESS_EVENTS; i++) {
        bl_event_t *ev = bl_event_new(BL_EV_BODY, s->ex, sizeof(uint64_t));
        if (ev == NULL) {
            s->failed = 1;
            break;
        }
        ev->aux = i;
        memcpy(ev->data, &i, sizeof(i));
        if (bl_queue_push(&s->q, ev)) {
            s->wakes++;
            sem_post(&s->wake);
        }
    }
    return NULL;
}

/* One thread pushes, the main thread takes batches when woken, as the Python
 * loop does: every event arrives once, in order, and each wake-up finds work. */
static void test_stress(void)
{
    stress_t s;
    pthread_t t;
    memset(&s, 0, sizeof(s));
    CHECK_EQ_INT(bl_queue_init(&s.q), 0);
    CHECK_EQ_INT(sem_init(&s.wake, 0, 0), 0);
    s.ex = bl_exchange_new();
    if (!CHECK(pthread_create(&t, NULL, producer, &s) == 0))
        return;

    uint64_t next = 0;
    unsigned batches = 0, empty_takes = 0, out_of_order = 0, bad_payload = 0;
    size_t largest = 0;
    while (next < STRESS_EVENTS) {
        while (sem_wait(&s.wake) != 0)
            ;
        bl_event_t *list = bl_queue_take(&s.q);
        if (list == NULL) {
            empty_takes++;
            continue;
        }
        batches++;
        size_t n = 0;
        for (bl_event_t *ev = list; ev != NULL; ev = ev->next, n++) {
            uint64_t v;
            memcpy(&v, ev->data, sizeof(v));
            out_of_order += ev->aux != next;
            bad_payload += v != ev->aux || ev->ex != s.ex;
            next = ev->aux + 1;
        }
        if (n > largest)
            largest = n;
        free_list(list);
    }
    pthread_join(t, NULL);

    CHECK_EQ_INT(s.failed, 0);
    CHECK_EQ_INT(next, STRESS_EVENTS);
    CHECK_EQ_INT(out_of_order, 0);
    CHECK_EQ_INT(bad_payload, 0);
    CHECK_EQ_INT(empty_takes, 0);
    CHECK_EQ_INT(batches, s.wakes); /* one wake-up per batch, none lost or spare */
    CHECK(bl_queue_take(&s.q) == NULL);
    CHECK_EQ_INT(atomic_load(&s.ex->refs), 1);
    printf("stress: %d events in %u batches (largest %zu)\n", STRESS_EVENTS, batches, largest);
    bl_exchange_unref(s.ex);
    bl_queue_destroy(&s.q);
    sem_destroy(&s.wake);
}

static unsigned down_wakes, down_schedules;

static void count_down_wake(void)
{
    down_wakes++;
}

static void count_down_schedule(void)
{
    down_schedules++;
}

/* How many times the eventfd was written since the last call (0 when never). */
static uint64_t up_fd_count(void)
{
    uint64_t n = 0;
    if (read(bl_bridge.up_fd, &n, sizeof(n)) != (ssize_t)sizeof(n))
        return 0;
    return n;
}

/* The global bridge: a push into an empty queue makes a wake due; the flush at
 * the end of the producer's loop iteration delivers one wake for the batch. */
static void test_bridge_posts(void)
{
    CHECK_EQ_INT(bl_bridge_init(), 0);
    if (!CHECK(bl_bridge.up_fd >= 0))
        return;

    /* Up: the eventfd is written by the flush, once per batch. */
    bl_bridge_flush_up();
    CHECK_EQ_INT(up_fd_count(), 0);
    bl_bridge_post_up(bl_event_new(BL_EV_REQUEST, NULL, 0));
    bl_bridge_post_up(bl_event_new(BL_EV_BODY, NULL, 0));
    bl_bridge_post_up(bl_event_new(BL_EV_BODY, NULL, 0));
    CHECK(bl_bridge.up_wake_due);
    CHECK_EQ_INT(up_fd_count(), 0); /* deferred */
    bl_bridge_flush_up();
    bl_bridge_flush_up();
    CHECK(!bl_bridge.up_wake_due);
    CHECK_EQ_INT(up_fd_count(), 1);
    bl_event_t *list = bl_queue_take(&bl_bridge.up);
    CHECK_EQ_INT(list_len(list), 3);
    free_list(list);
    /* Not yet taken: the consumer is awake already, no second wake. */
    bl_bridge_post_up(bl_event_new(BL_EV_DISCONNECT, NULL, 0));
    bl_bridge_flush_up();
    bl_bridge_post_up(bl_event_new(BL_EV_WRITABLE, NULL, 0));
    bl_bridge_flush_up();
    CHECK_EQ_INT(up_fd_count(), 1);

    /* Down without deferral: wake_down at once, on empty->non-empty only. */
    bl_bridge.wake_down = count_down_wake;
    bl_bridge_post_down(bl_event_new(BL_EV_RESPONSE, NULL, 10));
    bl_bridge_post_down(bl_event_new(BL_EV_FINISH, NULL, 0));
    CHECK_EQ_INT(down_wakes, 1);
    list = bl_queue_take(&bl_bridge.down);
    CHECK_EQ_INT(list_len(list), 2);
    free_list(list);

    /* Down with deferral: scheduled once per batch, woken by the flush. */
    bl_bridge.schedule_down_wake = count_down_schedule;
    bl_bridge_post_down(bl_event_new(BL_EV_SEND_BODY, NULL, 1));
    bl_bridge_post_down(bl_event_new(BL_EV_FINISH, NULL, 0));
    CHECK_EQ_INT(down_schedules, 1);
    CHECK_EQ_INT(down_wakes, 1);
    bl_bridge_flush_down();
    CHECK_EQ_INT(down_wakes, 2);
    CHECK(!bl_bridge.down_wake_due);
    free_list(bl_queue_take(&bl_bridge.down));
    bl_bridge_post_down(bl_event_new(BL_EV_CONSUMED, NULL, 0));
    CHECK_EQ_INT(down_schedules, 2);
    bl_bridge_flush_down();
    CHECK_EQ_INT(down_wakes, 3);
    free_list(bl_queue_take(&bl_bridge.down));

    /* A long batch (a group_send) wakes every BL_DOWN_WAKE_BATCH events, not
     * only at the end: the I/O thread writes while Python still produces.
     * The queue is never taken here, so only the count wakes. */
    for (int i = 0; i < 3 * BL_DOWN_WAKE_BATCH + 5; i++)
        bl_bridge_post_down(bl_event_new(BL_EV_SEND_BODY, NULL, 1));
    CHECK_EQ_INT(down_schedules, 3);
    CHECK_EQ_INT(down_wakes, 3 + 3);
    bl_bridge_flush_down(); /* the end of the iteration: the last 5 */
    CHECK_EQ_INT(down_wakes, 3 + 4);
    /* The flush restarts the count. */
    for (int i = 0; i < BL_DOWN_WAKE_BATCH - 1; i++)
        bl_bridge_post_down(bl_event_new(BL_EV_SEND_BODY, NULL, 1));
    CHECK_EQ_INT(down_wakes, 3 + 4);

    /* Left in the queues: freed by destroy (LeakSanitizer checks). */
    bl_bridge.wake_down = NULL;
    bl_bridge.schedule_down_wake = NULL;
    bl_bridge_destroy();
    CHECK_EQ_INT(bl_bridge.up_fd, -1);
}

/* gcc says __SANITIZE_*__, clang __has_feature. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED_MALLOC 1
#endif
#endif
#ifndef SANITIZED_MALLOC
#define SANITIZED_MALLOC 0
#endif

/* The disconnect an exchange reserves: used when the event cannot be
 * allocated (a reason too large to allocate stands in for out of memory), so
 * an app is always told; with a reason that fits, the reason goes. */
static void test_disconnect_reserved(void)
{
    CHECK_EQ_INT(bl_bridge_init(), 0);
    bl_exchange_t *ex = bl_exchange_new();
    if (!CHECK(ex != NULL && ex->disconnect != NULL))
        return;
    bl_exchange_post_disconnect(ex, 1001, "bye", 3);
    CHECK(ex->disconnect != NULL); /* allocated: the reserve stays */
    bl_event_t *ev = bl_queue_take(&bl_bridge.up);
    CHECK(ev != NULL && ev->next == NULL && ev->type == BL_EV_DISCONNECT && ev->ex == ex &&
          ev->status == 1001 && ev->len == 3 && memcmp(ev->data, "bye", 3) == 0);
    free_list(ev);

#if !SANITIZED_MALLOC /* sanitizers report the impossible size instead of failing it */
    bl_exchange_post_disconnect(ex, 1009, "x", SIZE_MAX / 2); /* malloc fails */
    CHECK(ex->disconnect == NULL);
    ev = bl_queue_take(&bl_bridge.up);
    CHECK(ev != NULL && ev->type == BL_EV_DISCONNECT && ev->ex == ex && ev->status == 1009 &&
          ev->len == 0);
    CHECK_EQ_INT(atomic_load(&ex->refs), 2); /* the queued event holds one */
    free_list(ev);
    CHECK_EQ_INT(atomic_load(&ex->refs), 1);
#endif

    bl_exchange_t *unused = bl_exchange_new(); /* its reserve is freed with it */
    CHECK(unused != NULL);
    if (unused != NULL)
        bl_exchange_unref(unused);
    bl_exchange_unref(ex);
    bl_bridge_destroy();
}

/* Read-ahead is counted as heap: an empty message costs a whole event, and
 * both sides of CONSUMED compute the same figure from the event. */
static void test_event_costs(void)
{
    bl_event_t *empty = bl_event_new(BL_EV_WS_MESSAGE, NULL, 0);
    bl_event_t *one = bl_event_new(BL_EV_WS_MESSAGE, NULL, 1);
    bl_event_t *big = bl_event_new(BL_EV_BODY, NULL, 100000);
    bl_event_t *last = bl_event_new(BL_EV_BODY, NULL, 0);
    bl_event_t *first = bl_event_new(BL_EV_REQUEST, NULL, 0);
    CHECK(bl_event_readahead(empty) >= sizeof(bl_event_t) + 16);
    CHECK(bl_event_readahead(empty) % 16 == 0);
    CHECK(bl_event_readahead(one) >= bl_event_readahead(empty));
    CHECK(bl_event_readahead(big) >= 100000 + sizeof(bl_event_t));
    CHECK(bl_event_readahead(big) < 100000 + sizeof(bl_event_t) + 64);
    /* An empty last body event needs no CONSUMED; an empty first one that
     * announces more does (the body is still being read). */
    CHECK_EQ_INT(bl_event_readahead(last), 0);
    last->flags = BL_EVF_MORE;
    CHECK(bl_event_readahead(last) > 0);
    CHECK_EQ_INT(bl_event_readahead(first), 0);
    first->flags = BL_EVF_MORE;
    CHECK(bl_event_readahead(first) > 0);
    CHECK_EQ_INT(bl_alloc_cost(0) % 16, 0);
    CHECK(bl_alloc_cost(24) >= 32);
    bl_event_free(empty);
    bl_event_free(one);
    bl_event_free(big);
    bl_event_free(last);
    bl_event_free(first);
}

/* The up-queue's process-wide bound: counted from post to take (a request
 * counts its exchange and head), held above the bound, released below half;
 * a take wakes a holding I/O thread. */
static void test_up_bound(void)
{
    CHECK_EQ_INT(bl_bridge_init(), 0);
    bl_bridge.wake_down = count_down_wake;
    bl_bridge.schedule_down_wake = NULL;
    bl_bridge.up_max_bytes = 64 * 1024;
    int wakes = down_wakes;

    bl_exchange_t *ex = bl_exchange_new();
    ex->head = calloc(1, sizeof(*ex->head));
    ex->head->buf = malloc(60000);
    ex->head->cap = 60000;
    bl_event_t *req = bl_event_new(BL_EV_REQUEST, ex, 0);
    size_t req_event = bl_event_cost(req);
    bl_bridge_post_up(req);
    CHECK(atomic_load(&bl_bridge.up_bytes) >= req_event + 60000 + sizeof(bl_exchange_t));
    CHECK_EQ_INT(atomic_load(&bl_bridge.up_events), 1);
    CHECK(!bl_bridge_up_hold(false));
    bl_bridge_post_up(bl_event_new(BL_EV_BODY, ex, 8192));
    CHECK(bl_bridge_up_hold(false)); /* over 64 KiB */
    CHECK(atomic_load(&bl_bridge.up_held));
    CHECK(bl_bridge_up_hold(true));
    CHECK_EQ_INT(down_wakes, wakes);

    bl_event_t *list = bl_bridge_take_up();
    CHECK_EQ_INT(list_len(list), 2);
    CHECK_EQ_INT(atomic_load(&bl_bridge.up_bytes), 0);
    CHECK_EQ_INT(atomic_load(&bl_bridge.up_events), 0);
    CHECK_EQ_INT(down_wakes, wakes + 1); /* the holder is woken */
    CHECK(!atomic_load(&bl_bridge.up_held));
    CHECK(!bl_bridge_up_hold(true)); /* under half: go on */
    free_list(list);
    CHECK(bl_bridge_take_up() == NULL);
    CHECK_EQ_INT(down_wakes, wakes + 1);

    /* Between half and the bound: a holder stays held, others go on. */
    bl_bridge_post_up(bl_event_new(BL_EV_BODY, NULL, 40000));
    CHECK(!bl_bridge_up_hold(false));
    CHECK(bl_bridge_up_hold(true));
    free_list(bl_bridge_take_up());

    /* Events count too, whatever their size. */
    for (unsigned i = 0; i <= BL_UP_MAX_EVENTS; i++)
        bl_bridge_post_up(bl_event_new(BL_EV_DISCONNECT, NULL, 0));
    bl_bridge.up_max_bytes = (size_t)1 << 40;
    CHECK(bl_bridge_up_hold(false));
    free_list(bl_bridge_take_up());
    CHECK(!bl_bridge_up_hold(false));

    bl_exchange_unref(ex);
    bl_bridge.up_max_bytes = BL_UP_MAX_BYTES;
    bl_bridge.wake_down = NULL;
    bl_bridge_destroy();
}

int main(void)
{
    test_queue_order();
    test_event_payload();
    test_exchange_refs();
    test_exchange_frees_pending();
    test_stress();
    test_bridge_posts();
    test_disconnect_reserved();
    test_event_costs();
    test_up_bound();
    return check_report();
}
