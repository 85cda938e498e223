/* Queues of plain C events between the I/O thread and the Python thread. */
#include "bayleaf/bridge/bridge.h"
#include "bayleaf/common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

bl_bridge_t bl_bridge = {.up_fd = -1,
                         .up_max_bytes = BL_UP_MAX_BYTES,
                         .pub_lock = PTHREAD_MUTEX_INITIALIZER,
                         .pub_room = PTHREAD_COND_INITIALIZER,
                         .topic_name_max = 256};

int bl_queue_init(bl_queue_t *q)
{
    q->head = q->tail = NULL;
    return -pthread_mutex_init(&q->lock, NULL);
}

void bl_queue_destroy(bl_queue_t *q)
{
    bl_event_t *ev = bl_queue_take(q);
    while (ev != NULL) {
        bl_event_t *next = ev->next;
        /* Never written: nobody waits any more, but the count must balance. */
        if (ev->ex != NULL)
            atomic_fetch_sub(&ev->ex->unsent, bl_event_unsent(ev));
        bl_event_free(ev);
        ev = next;
    }
    pthread_mutex_destroy(&q->lock);
}

bool bl_queue_push(bl_queue_t *q, bl_event_t *ev)
{
    bool was_empty;
    ev->next = NULL;
    pthread_mutex_lock(&q->lock);
    was_empty = q->head == NULL;
    if (was_empty)
        q->head = ev;
    else
        q->tail->next = ev;
    q->tail = ev;
    pthread_mutex_unlock(&q->lock);
    return was_empty;
}

bl_event_t *bl_queue_take(bl_queue_t *q)
{
    bl_event_t *list;
    pthread_mutex_lock(&q->lock);
    list = q->head;
    q->head = q->tail = NULL;
    pthread_mutex_unlock(&q->lock);
    return list;
}

bl_event_t *bl_event_new(int type, bl_exchange_t *ex, size_t size)
{
    bl_event_t *ev = malloc(sizeof(*ev) + size);
    if (ev == NULL)
        return NULL;
    memset(ev, 0, sizeof(*ev));
    ev->type = (uint8_t)type;
    ev->data = ev->payload;
    ev->len = size;
    ev->ex = ex;
    if (ex != NULL)
        bl_exchange_ref(ex);
    return ev;
}

void bl_event_free(bl_event_t *ev)
{
    if (ev->type == BL_EV_SEND_FILE) {
        bl_send_file_t sf;
        memcpy(&sf, ev->data, sizeof(sf));
        if (sf.fd >= 0 && close(sf.fd) != 0)
            BL_WARN("close of a response's file: %s", strerror(errno));
    }
    if (ev->ex != NULL)
        bl_exchange_unref(ev->ex);
    free(ev);
}

size_t bl_event_unsent(const bl_event_t *ev)
{
    switch (ev->type) {
    case BL_EV_RESPONSE:
        return ev->len2; /* the body after the head */
    case BL_EV_SEND_BODY:
    case BL_EV_WS_SEND:
        return ev->len;
    default:
        return 0;
    }
}

size_t bl_alloc_cost(size_t n)
{
    /* glibc: 16-byte granules after an 8-byte size field; 16 more stand for
     * the slack of bins and arenas. */
    return ((n + 8 + 15) & ~(size_t)15) + 16;
}

size_t bl_event_cost(const bl_event_t *ev)
{
    return bl_alloc_cost(sizeof(*ev) + ev->len + ev->len2);
}

size_t bl_event_readahead(const bl_event_t *ev)
{
    if (ev->type == BL_EV_BODY || ev->type == BL_EV_REQUEST) {
        /* Nothing more is read for an ended body: its last event, when
         * empty, is the app's business alone. */
        if (ev->len == 0 && !(ev->flags & BL_EVF_MORE))
            return 0;
    }
    return bl_event_cost(ev);
}

bl_exchange_t *bl_exchange_new(void)
{
    bl_exchange_t *ex = calloc(1, sizeof(*ex));
    if (ex == NULL)
        return NULL;
    ex->disconnect = bl_event_new(BL_EV_DISCONNECT, NULL, 0);
    if (ex->disconnect == NULL) {
        free(ex);
        return NULL;
    }
    atomic_init(&ex->refs, 1);
    atomic_init(&ex->unsent, 0);
    atomic_init(&ex->want_writable, false);
    ex->client_port = -1;
    ex->server_port = -1;
    return ex;
}

void bl_exchange_ref(bl_exchange_t *ex)
{
    atomic_fetch_add_explicit(&ex->refs, 1, memory_order_relaxed);
}

void bl_exchange_unref(bl_exchange_t *ex)
{
    if (atomic_fetch_sub_explicit(&ex->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* Last reference: no thread can see it any more. */
    size_t unsent = atomic_load(&ex->unsent);
    if (unsent != 0) {
        /* A write or drop path forgot bl_conn_event_drop: a send() may have
         * waited on these bytes forever. Tests look for this line. */
        BL_ERROR("accounting error: an exchange freed with %zu unsent bytes", unsent);
    }
    bl_event_t *ev = ex->pending;
    while (ev != NULL) {
        bl_event_t *next = ev->next;
        bl_event_free(ev);
        ev = next;
    }
    if (ex->disconnect != NULL)
        bl_event_free(ex->disconnect); /* it holds no reference */
    bl_head_free(ex->head);
    free(ex);
}

void bl_exchange_post_disconnect(bl_exchange_t *ex, uint16_t status, const void *reason, size_t len)
{
    bl_event_t *ev = len > 0 ? bl_event_new(BL_EV_DISCONNECT, ex, len) : NULL;
    if (ev != NULL) {
        memcpy(ev->data, reason, len);
    } else if (ex->disconnect != NULL) {
        ev = ex->disconnect; /* without the reason, if that is what did not fit */
        ex->disconnect = NULL;
        ev->ex = ex;
        bl_exchange_ref(ex);
    } else if ((ev = bl_event_new(BL_EV_DISCONNECT, ex, 0)) == NULL) {
        return; /* a second one: the first told the app */
    }
    ev->status = status;
    bl_bridge_post_up(ev);
}

int bl_bridge_init(void)
{
    int err;
    if ((err = bl_queue_init(&bl_bridge.up)) != 0)
        return err;
    if ((err = bl_queue_init(&bl_bridge.down)) != 0)
        return err;
    if ((err = -pthread_mutex_init(&bl_bridge.wsgi.lock, NULL)) != 0)
        return err;
    if ((err = -pthread_cond_init(&bl_bridge.wsgi.work, NULL)) != 0)
        return err;
    pthread_condattr_t attr;
    if ((err = -pthread_condattr_init(&attr)) != 0)
        return err;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    err = -pthread_cond_init(&bl_bridge.wsgi.loop_done, &attr);
    pthread_condattr_destroy(&attr);
    if (err != 0)
        return err;
    bl_bridge.up_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (bl_bridge.up_fd < 0)
        return -errno;
    return 0;
}

void bl_bridge_destroy(void)
{
    bl_queue_destroy(&bl_bridge.up);
    bl_queue_destroy(&bl_bridge.down);
    bl_event_t *ev = bl_bridge.wsgi.head;
    while (ev != NULL) { /* never taken: no thread serves them any more */
        bl_event_t *next = ev->next;
        bl_event_free(ev);
        ev = next;
    }
    bl_bridge.wsgi.head = bl_bridge.wsgi.tail = NULL;
    pthread_cond_destroy(&bl_bridge.wsgi.work);
    pthread_cond_destroy(&bl_bridge.wsgi.loop_done);
    atomic_store(&bl_bridge.wsgi.loop_wants, false);
    pthread_mutex_destroy(&bl_bridge.wsgi.lock);
    atomic_store(&bl_bridge.up_bytes, 0);
    atomic_store(&bl_bridge.down_bytes, 0);
    atomic_store(&bl_bridge.down_events, 0);
    atomic_store(&bl_bridge.up_events, 0);
    atomic_store(&bl_bridge.up_held, false);
    atomic_store(&bl_bridge.pub_bytes, 0);
    if (bl_bridge.up_fd >= 0)
        close(bl_bridge.up_fd);
    bl_bridge.up_fd = -1;
}

/* What a queued up event pins until Python takes it: the event, and for a
 * new scope its exchange and request head. */
static uint32_t up_cost(const bl_event_t *ev)
{
    size_t n = bl_event_cost(ev);
    if (ev->type == BL_EV_REQUEST) {
        /* Only a REQUEST's head is still the I/O thread's: Python frees a
         * WebSocket's once its scope is built. */
        const bl_head_t *h = ev->ex != NULL ? ev->ex->head : NULL;
        n += bl_alloc_cost(sizeof(bl_exchange_t));
        if (h != NULL)
            n += bl_alloc_cost(sizeof(*h)) + bl_alloc_cost(h->cap) +
                 bl_alloc_cost(h->headers_cap * sizeof(bl_header_t));
    }
    return n < UINT32_MAX ? (uint32_t)n : UINT32_MAX;
}

static void wsgi_post(bl_event_t *ev);

void bl_bridge_post_up(bl_event_t *ev)
{
    ev->up_cost = up_cost(ev);
    atomic_fetch_add(&bl_bridge.up_bytes, ev->up_cost);
    atomic_fetch_add(&bl_bridge.up_events, 1);
    bl_exchange_t *ex = ev->ex;
    if (ex != NULL && (ex->wsgi || (ev->type == BL_EV_REQUEST && ex->kind == BL_KIND_HTTP &&
                                    bl_bridge.wsgi.enabled))) {
        ex->wsgi = true;
        wsgi_post(ev);
        return;
    }
    if (bl_queue_push(&bl_bridge.up, ev))
        bl_bridge.up_wake_due = true;
}

void bl_bridge_flush_up(void)
{
    if (!bl_bridge.up_wake_due)
        return;
    bl_bridge.up_wake_due = false;
    if (bl_bridge.wsgi.enabled)
        atomic_store(&bl_bridge.wsgi.loop_wants, true);
    uint64_t one = 1;
    /* EAGAIN only when the counter is saturated: the reader is awake anyway. */
    ssize_t n = write(bl_bridge.up_fd, &one, sizeof(one));
    (void)n;
}

/* A list of up events leaves the bound (a take by any thread). */
static void up_taken(const bl_event_t *list)
{
    size_t bytes = 0, n = 0;
    for (const bl_event_t *ev = list; ev != NULL; ev = ev->next) {
        bytes += ev->up_cost;
        n++;
    }
    if (n == 0)
        return;
    atomic_fetch_sub(&bl_bridge.up_bytes, bytes);
    atomic_fetch_sub(&bl_bridge.up_events, n);
    /* After the counts (both sequentially consistent): an I/O thread that set
     * up_held and then still saw them over is woken here. */
    if (atomic_exchange(&bl_bridge.up_held, false) && bl_bridge.wake_down != NULL)
        bl_bridge.wake_down();
}

bl_event_t *bl_bridge_take_up(void)
{
    bl_event_t *list = bl_queue_take(&bl_bridge.up);
    up_taken(list);
    return list;
}

static bool up_over(bool held)
{
    size_t max_bytes = held ? bl_bridge.up_max_bytes / 2 : bl_bridge.up_max_bytes;
    size_t max_events = held ? BL_UP_MAX_EVENTS / 2 : BL_UP_MAX_EVENTS;
    return atomic_load(&bl_bridge.up_bytes) > max_bytes ||
           atomic_load(&bl_bridge.up_events) > max_events;
}

bool bl_bridge_up_hold(bool held)
{
    if (!up_over(held))
        return false;
    /* Ask for a wake, then look again: a take in between has been missed. */
    atomic_store(&bl_bridge.up_held, true);
    return up_over(held);
}

void bl_bridge_post_down(bl_event_t *ev)
{
    atomic_fetch_add_explicit(&bl_bridge.down_bytes, bl_event_cost(ev), memory_order_relaxed);
    atomic_fetch_add_explicit(&bl_bridge.down_events, 1, memory_order_relaxed);
    bool was_empty = bl_queue_push(&bl_bridge.down, ev);
    if (bl_bridge.schedule_down_wake == NULL) {
        if (was_empty && bl_bridge.wake_down != NULL)
            bl_bridge.wake_down();
        return;
    }
    if (++bl_bridge.down_unwoken >= BL_DOWN_WAKE_BATCH) {
        /* Events posted before the I/O thread takes the queue ride along;
         * later ones find it empty and schedule the usual wake. */
        bl_bridge.down_unwoken = 0;
        if (bl_bridge.wake_down != NULL)
            bl_bridge.wake_down();
    } else if (was_empty && !bl_bridge.down_wake_due) {
        bl_bridge.down_wake_due = true;
        bl_bridge.schedule_down_wake();
    }
}

void bl_bridge_took_down(const bl_event_t *ev)
{
    atomic_fetch_sub_explicit(&bl_bridge.down_bytes, bl_event_cost(ev), memory_order_relaxed);
    atomic_fetch_sub_explicit(&bl_bridge.down_events, 1, memory_order_relaxed);
}

static void loop_answered(void)
{
    bl_wsgi_queue_t *q = &bl_bridge.wsgi;
    if (!atomic_load_explicit(&q->loop_wants, memory_order_relaxed))
        return;
    pthread_mutex_lock(&q->lock);
    atomic_store(&q->loop_wants, false);
    pthread_cond_broadcast(&q->loop_done);
    pthread_mutex_unlock(&q->lock);
}

void bl_bridge_flush_down(void)
{
    loop_answered();
    bl_bridge.down_wake_due = false;
    bl_bridge.down_unwoken = 0;
    if (bl_bridge.wake_down != NULL)
        bl_bridge.wake_down();
}

void bl_bridge_post_down_now(bl_event_t *ev)
{
    atomic_fetch_add_explicit(&bl_bridge.down_bytes, bl_event_cost(ev), memory_order_relaxed);
    atomic_fetch_add_explicit(&bl_bridge.down_events, 1, memory_order_relaxed);
    bl_queue_push(&bl_bridge.down, ev);
    /* Always: the queue may hold the asyncio thread's events whose wake is
     * deferred to the end of its loop iteration. uv_async_send is cheap
     * while a wake is pending. */
    if (bl_bridge.wake_down != NULL)
        bl_bridge.wake_down();
}

/* ---- WSGI: the pool's queue and each scope's events ---------------------- */

static void wsgi_post(bl_event_t *ev)
{
    bl_wsgi_queue_t *q = &bl_bridge.wsgi;
    bl_exchange_t *ex = ev->ex;
    bl_event_t *drop = NULL;
    ev->next = NULL;
    pthread_mutex_lock(&q->lock);
    if (ev->type == BL_EV_REQUEST) {
        if (q->tail != NULL)
            q->tail->next = ev;
        else
            q->head = ev;
        q->tail = ev;
        if (q->idle > 0)
            pthread_cond_signal(&q->work);
    } else if (ex->wsgi_done) {
        drop = ev;
    } else {
        if (ex->pending_tail != NULL)
            ex->pending_tail->next = ev;
        else
            ex->pending = ev;
        ex->pending_tail = ev;
        if (ex->wsgi_waker != NULL)
            pthread_cond_signal(ex->wsgi_waker);
    }
    pthread_mutex_unlock(&q->lock);
    if (drop != NULL) {
        up_taken(drop);
        bl_event_free(drop);
    }
}

bl_event_t *bl_wsgi_take_request(pthread_cond_t *waker)
{
    bl_wsgi_queue_t *q = &bl_bridge.wsgi;
    bl_event_t *ev = NULL;
    pthread_mutex_lock(&q->lock);
    while (q->head == NULL && !q->stopping) {
        q->idle++;
        pthread_cond_wait(&q->work, &q->lock);
        q->idle--;
    }
    if (q->head != NULL) {
        ev = q->head;
        q->head = ev->next;
        if (q->head == NULL)
            q->tail = NULL;
        ev->next = NULL;
        ev->ex->wsgi_waker = waker;
    }
    pthread_mutex_unlock(&q->lock);
    if (ev != NULL)
        up_taken(ev);
    return ev;
}

bl_event_t *bl_wsgi_take(bl_exchange_t *ex, bool wait)
{
    bl_wsgi_queue_t *q = &bl_bridge.wsgi;
    pthread_mutex_lock(&q->lock);
    while (wait && ex->pending == NULL)
        pthread_cond_wait(ex->wsgi_waker, &q->lock);
    bl_event_t *list = ex->pending;
    ex->pending = ex->pending_tail = NULL;
    pthread_mutex_unlock(&q->lock);
    up_taken(list);
    return list;
}

void bl_wsgi_release(bl_exchange_t *ex)
{
    bl_wsgi_queue_t *q = &bl_bridge.wsgi;
    pthread_mutex_lock(&q->lock);
    ex->wsgi_done = true;
    ex->wsgi_waker = NULL;
    bl_event_t *list = ex->pending;
    ex->pending = ex->pending_tail = NULL;
    pthread_mutex_unlock(&q->lock);
    up_taken(list);
    while (list != NULL) {
        bl_event_t *next = list->next;
        bl_event_free(list);
        list = next;
    }
}

bool bl_wsgi_loop_waits(void)
{
    return atomic_load_explicit(&bl_bridge.wsgi.loop_wants, memory_order_relaxed);
}

void bl_wsgi_yield(void)
{
    bl_wsgi_queue_t *q = &bl_bridge.wsgi;
    if (!bl_wsgi_loop_waits())
        return;
    struct timespec due;
    clock_gettime(CLOCK_MONOTONIC, &due);
    due.tv_nsec += 1000000; /* 1 ms: a loop that answers nothing must not stall the views */
    if (due.tv_nsec >= 1000000000) {
        due.tv_sec++;
        due.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&q->lock);
    while (atomic_load(&q->loop_wants) && !q->stopping)
        if (pthread_cond_timedwait(&q->loop_done, &q->lock, &due) != 0)
            break;
    pthread_mutex_unlock(&q->lock);
}

void bl_wsgi_stop(void)
{
    bl_wsgi_queue_t *q = &bl_bridge.wsgi;
    pthread_mutex_lock(&q->lock);
    q->stopping = true;
    pthread_cond_broadcast(&q->work);
    pthread_mutex_unlock(&q->lock);
}

/* ---- topic publishes, from any thread ------------------------------------ */

int bl_bridge_post_publish(bl_event_t *ev)
{
    size_t cost = bl_event_cost(ev);
    /* One event always goes (a message larger than the bound is not refused
     * for ever); beyond that, publishers wait for the I/O thread. */
    size_t before = atomic_fetch_add(&bl_bridge.pub_bytes, cost);
    if (before > 0 && before + cost > bl_bridge.up_max_bytes) {
        atomic_fetch_sub(&bl_bridge.pub_bytes, cost);
        pthread_mutex_lock(&bl_bridge.pub_lock);
        bool running = bl_bridge.pub_running;
        pthread_mutex_unlock(&bl_bridge.pub_lock);
        return running ? -EAGAIN : -ENOBUFS;
    }
    /* The queue's lock makes it safe from any thread; the wake is
     * uv_async_send's, also thread-safe (the Python thread's deferred wake is
     * not: its state is that thread's). pub_lock keeps the loop from going
     * away in between. */
    pthread_mutex_lock(&bl_bridge.pub_lock);
    if (!bl_bridge.pub_open) {
        pthread_mutex_unlock(&bl_bridge.pub_lock);
        atomic_fetch_sub(&bl_bridge.pub_bytes, cost);
        return -EPIPE;
    }
    bl_queue_push(&bl_bridge.down, ev);
    if (bl_bridge.wake_down != NULL)
        bl_bridge.wake_down();
    pthread_mutex_unlock(&bl_bridge.pub_lock);
    return 0;
}

void bl_bridge_publish_open(bool running)
{
    pthread_mutex_lock(&bl_bridge.pub_lock);
    bl_bridge.pub_open = true;
    bl_bridge.pub_running = running;
    pthread_mutex_unlock(&bl_bridge.pub_lock);
}

void bl_bridge_publish_close(void)
{
    pthread_mutex_lock(&bl_bridge.pub_lock);
    bl_bridge.pub_open = false;
    bl_bridge.pub_running = false;
    pthread_cond_broadcast(&bl_bridge.pub_room);
    pthread_mutex_unlock(&bl_bridge.pub_lock);
}

void bl_bridge_publish_wait(unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&bl_bridge.pub_lock);
    if (atomic_load(&bl_bridge.pub_bytes) > bl_bridge.up_max_bytes / 2)
        pthread_cond_timedwait(&bl_bridge.pub_room, &bl_bridge.pub_lock, &ts);
    pthread_mutex_unlock(&bl_bridge.pub_lock);
}

void bl_bridge_publish_taken(const bl_event_t *ev)
{
    size_t cost = bl_event_cost(ev);
    size_t before = atomic_fetch_sub(&bl_bridge.pub_bytes, cost);
    size_t half = bl_bridge.up_max_bytes / 2;
    if (before > half && before - cost <= half) {
        pthread_mutex_lock(&bl_bridge.pub_lock);
        pthread_cond_broadcast(&bl_bridge.pub_room);
        pthread_mutex_unlock(&bl_bridge.pub_lock);
    }
}
