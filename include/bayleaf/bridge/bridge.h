/* The bridge between the I/O thread and the Python thread.
 *
 * Two queues of plain C events. Producers append; the consumer takes the whole
 * list at once (one lock per batch). The consumer is woken only when a queue
 * goes from empty to non-empty. No Python object ever crosses this boundary.
 */
#ifndef BAYLEAF_BRIDGE_H
#define BAYLEAF_BRIDGE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bayleaf/proto/head.h"
#include "bayleaf/proto/http_response.h"

typedef enum {
    /* up: I/O thread -> Python thread */
    BL_EV_REQUEST = 1, /* new scope; ex->head is set; data = first body bytes */
    BL_EV_BODY,        /* request body bytes; BL_EVF_MORE when more follow */
    BL_EV_DISCONNECT,  /* the client is gone (or the exchange was timed out) */
    BL_EV_WRITABLE,    /* unsent bytes fell below the low-water mark */
    BL_EV_DRAINED,     /* shutdown: listeners closed and connections drained */
    /* down: Python thread -> I/O thread */
    BL_EV_RESPONSE,  /* status + header lines in data[0..len), body after it (len2) */
    BL_EV_SEND_BODY, /* response body bytes; BL_EVF_MORE when more follow */
    BL_EV_CONTINUE,  /* the app awaits the body: send "100 Continue" if expected */
    BL_EV_CONSUMED,  /* the app took `aux` body bytes: reading may resume */
    BL_EV_FINISH,    /* the app returned (BL_EVF_ERROR: it raised) */
    BL_EV_STOP,      /* Python is done: the I/O loop may exit */
    /* WebSocket. up: */
    BL_EV_WS_MESSAGE, /* a complete message; BL_EVF_BINARY or text (valid UTF-8) */
    /* down: */
    BL_EV_WS_ACCEPT, /* header lines in data[0..len), subprotocol after them (len2) */
    BL_EV_WS_SEND,   /* a message; BL_EVF_BINARY or text */
    BL_EV_WS_CLOSE,  /* status = close code, data = reason (UTF-8) */
    /* Topics (io/topics.h). down, from the app's send(): */
    BL_EV_TOPIC_SUB,   /* data: names, each a 2-byte big-endian length then its bytes;
                          BL_EVF_CONFLATE */
    BL_EV_TOPIC_UNSUB, /* data: names as for TOPIC_SUB */
    /* down, from any thread (bl_bridge_post_publish), ex NULL: */
    BL_EV_TOPIC_PUBLISH, /* data: topic (len), payload after it (len2); BL_EVF_BINARY,
                            BL_EVF_RETAIN */
    /* WSGI. down: */
    BL_EV_SEND_FILE, /* the last body, from a file: data is a bl_send_file_t */
    /* up: */
    BL_EV_FILE_SENT, /* that SEND_FILE went out whole (the same event, sent back) */
} bl_event_type_t;

/* What kind of scope an exchange is. */
enum { BL_KIND_HTTP = 0, BL_KIND_WEBSOCKET = 1 };

enum {
    BL_EVF_MORE = 1u << 0,  /* more body follows */
    BL_EVF_ERROR = 1u << 1, /* the app failed */
    /* RESPONSE: what the app's headers set (proto/http_response.h) */
    BL_EVF_HAS_CLEN = BL_RESP_HAS_CLEN, /* Content-Length (in aux) */
    BL_EVF_HAS_SERVER = BL_RESP_HAS_SERVER,
    BL_EVF_HAS_DATE = BL_RESP_HAS_DATE,
    BL_EVF_CLOSE = BL_RESP_CLOSE,
    BL_EVF_CHUNKED = BL_RESP_CHUNKED,
    BL_EVF_BINARY = 1u << 7,   /* WS_MESSAGE / WS_SEND / TOPIC_PUBLISH: binary, else text */
    BL_EVF_CONFLATE = 1u << 0, /* TOPIC_SUB: keep only the newest pending message per topic */
    BL_EVF_RETAIN = 1u << 1,   /* TOPIC_PUBLISH: the topic's last value */
};

typedef struct bl_exchange_s bl_exchange_t;

/* A SEND_FILE's payload: the I/O thread writes len bytes of fd from off with
 * sendfile(2). The event owns fd (a dup): bl_event_free closes it. */
typedef struct {
    int fd;
    uint64_t off;
    uint64_t len;
} bl_send_file_t;

typedef struct bl_event_s {
    struct bl_event_s *next;
    bl_exchange_t *ex; /* holds a reference while queued (may be NULL) */
    uint8_t type;
    uint8_t flags;
    uint16_t status;
    uint32_t up_cost; /* up: what it counts in the up-queue's bound (bl_bridge_post_up) */
    uint64_t aux;
    size_t len;  /* bytes at data */
    size_t len2; /* RESPONSE: body bytes at data + len */
    char *data;  /* points into payload[] */
    char payload[];
} bl_event_t;

typedef struct {
    pthread_mutex_t lock;
    bl_event_t *head;
    bl_event_t *tail;
} bl_queue_t;

/* One ASGI scope (an HTTP request/response, later a WebSocket session).
 * Shared by both threads; freed when the last reference goes. */
struct bl_exchange_s {
    atomic_int refs;
    /* I/O-thread-owned */
    void *conn;             /* the connection, NULL once detached */
    uint64_t body_inflight; /* bl_event_readahead() of body events posted, not yet consumed */
    /* Reserved at creation: telling the app that its client left cannot fail. */
    bl_event_t *disconnect;
    /* Python-thread-owned */
    void *py;            /* the Exchange object (a strong reference while the app runs) */
    bl_event_t *pending; /* body events not yet delivered to receive() */
    bl_event_t *pending_tail;
    /* set once by the I/O thread before the REQUEST event is queued */
    int kind;        /* BL_KIND_* */
    bl_head_t *head; /* a WebSocket's is freed (Python thread) once its scope is built */
    char client_host[64];
    int client_port; /* -1: no client address (unix socket) */
    char server_host[108];
    int server_port;                       /* -1: unix socket, server_host is its path */
    bool secure;                           /* https/wss, from a trusted proxy's headers (proxy.c) */
    bool has_root_path;                    /* Daphne-Root-Path from a trusted proxy: */
    uint32_t root_path_off, root_path_len; /* its raw value in head->buf */
    /* both threads: send-side flow control */
    atomic_size_t unsent;      /* response bytes queued but not yet written or dropped:
                                  0 again when the exchange is freed */
    atomic_bool want_writable; /* Python waits for BL_EV_WRITABLE */
    /* WSGI (bl_wsgi_*): set by bl_bridge_post_up on the I/O thread when the
     * REQUEST goes to the WSGI pool; then every up event of the scope does.
     * The rest is under bl_bridge.wsgi.lock: ex->pending holds the scope's
     * events (each with its reference) until its pool thread takes them. */
    bool wsgi;
    bool wsgi_done;             /* the pool thread is done: later events are dropped */
    pthread_cond_t *wsgi_waker; /* the serving thread's condition variable */
};

/* Flow-control marks (bytes). */
/* Per scope: a slow client costs at most this much user-space memory, which
 * matters with thousands of push connections. */
#define BL_WRITE_HIGH_WATER (64u * 1024u)
#define BL_WRITE_LOW_WATER  (16u * 1024u)
/* Per scope: read-ahead (body chunks, WebSocket messages) the app has not
 * taken yet, counted in bytes of server memory (bl_event_readahead). */
#define BL_BODY_HIGH_WATER (256u * 1024u)

/* Per process: work queued toward Python (the up-queue) beyond which the I/O
 * thread stops accepting and reading; it goes on below half of both. Bytes
 * are the default of --max-queued-bytes. */
#define BL_UP_MAX_BYTES  (64u * 1024u * 1024u)
#define BL_UP_MAX_EVENTS 100000u

int bl_queue_init(bl_queue_t *q);
void bl_queue_destroy(bl_queue_t *q);
/* Returns true when the queue was empty (the caller must wake the consumer). */
bool bl_queue_push(bl_queue_t *q, bl_event_t *ev);
bl_event_t *bl_queue_take(bl_queue_t *q);

/* Allocates an event with `size` payload bytes; `ex` gains a reference. NULL on OOM. */
bl_event_t *bl_event_new(int type, bl_exchange_t *ex, size_t size);
/* Frees the event and drops its exchange reference. */
void bl_event_free(bl_event_t *ev);
/* The app's bytes a down event carries, which the Python side added to
 * ex->unsent when it posted it: whoever writes or drops the event must take
 * them off again (bl_conn_event_drop), or a send() waits for good. */
size_t bl_event_unsent(const bl_event_t *ev);
/* Heap bytes an allocation of n bytes takes: rounded as malloc does, plus
 * its header and bookkeeping. */
size_t bl_alloc_cost(size_t n);
/* The heap bytes an event takes (its allocation, payload included). */
size_t bl_event_cost(const bl_event_t *ev);
/* What a body or message event holds against its scope's read-ahead
 * (ex->body_inflight): the I/O thread adds it when posting, the Python
 * thread hands it back (CONSUMED) when the app takes the event. 0 for an
 * empty last body event, which needs no CONSUMED. */
size_t bl_event_readahead(const bl_event_t *ev);

bl_exchange_t *bl_exchange_new(void);
void bl_exchange_ref(bl_exchange_t *ex);
void bl_exchange_unref(bl_exchange_t *ex);
/* I/O thread: posts DISCONNECT (status: a WebSocket close code, or 0) with
 * reason when memory allows, else the event reserved with the exchange: an app
 * never waits for a disconnect that could not be sent. */
void bl_exchange_post_disconnect(bl_exchange_t *ex, uint16_t status, const void *reason,
                                 size_t len);

/* HTTP scopes of a WSGI app: REQUEST events wait here for a pool thread,
 * which then takes its scope's later events from ex->pending (bl_wsgi_take).
 * No asyncio loop is involved either way. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t work;     /* a request came, or stopping */
    bl_event_t *head, *tail; /* REQUEST events not yet taken */
    unsigned idle;           /* threads waiting on `work` */
    bool enabled;            /* set before the I/O thread starts */
    bool stopping;
    /* The asyncio loop was woken for work (set with its eventfd) and has not
     * yet posted its answer (bl_bridge_flush_down): pool threads step aside
     * at their next request or chunk (bl_wsgi_yield), so that a consumer does
     * not wait for CPython's switch interval behind a view. */
    atomic_bool loop_wants;
    pthread_cond_t loop_done; /* loop_wants went false */
} bl_wsgi_queue_t;

/* The two directions, set up by bl_bridge_init. */
typedef struct {
    bl_queue_t up;
    bl_queue_t down;
    int up_fd;               /* eventfd the Python loop watches */
    void (*wake_down)(void); /* wakes the I/O thread (uv_async_send) */
    /* Wakes are deferred to the end of the producer's loop iteration, so that
     * one wake carries a whole batch: */
    bool up_wake_due;                 /* I/O thread only */
    void (*schedule_down_wake)(void); /* Python thread: flush at the end of this iteration */
    bool down_wake_due;               /* Python thread only */
    unsigned down_unwoken;            /* Python thread: posted since the last wake */
    /* The up-queue's content, for its process-wide bound (bl_bridge_up_hold) */
    atomic_size_t up_bytes;  /* heap bytes of queued events (a request's head too) */
    atomic_size_t up_events; /* queued events */
    atomic_bool up_held;     /* the I/O thread stopped for the bound: wake it on take */
    size_t up_max_bytes;     /* --max-queued-bytes; set before the I/O thread starts */
    /* The down-queue's content, for --metrics: added by the Python thread,
     * taken off by the I/O thread (bl_bridge_took_down). */
    atomic_size_t down_bytes;
    atomic_size_t down_events;
    bl_wsgi_queue_t wsgi;
    /* Topic publishes queued down from any thread (bl_bridge_post_publish) */
    atomic_size_t pub_bytes;  /* heap bytes of queued TOPIC_PUBLISH events */
    pthread_mutex_t pub_lock; /* with pub_room: publishers wait for room */
    pthread_cond_t pub_room;
    bool pub_open;         /* under pub_lock: the I/O thread's loop exists and takes
                            * publishes (from bl_server_init: also during lifespan
                            * startup, queued until the thread runs) */
    bool pub_running;      /* under pub_lock: the I/O thread runs (takes them now) */
    size_t topic_name_max; /* --topics-name-max, for send()'s checks; set before start */
} bl_bridge_t;

/* A loop iteration that posts this many events down wakes the I/O thread
 * without waiting for its end: a group_send to 1,000 members is written while
 * Python is still producing it, instead of all at once afterwards. */
#define BL_DOWN_WAKE_BATCH 32

extern bl_bridge_t bl_bridge;

int bl_bridge_init(void);
void bl_bridge_destroy(void);
/* Queue an event; the consumer is woken by the matching flush (or at once when
 * no deferral is set up). */
void bl_bridge_post_up(bl_event_t *ev);
void bl_bridge_post_down(bl_event_t *ev);
void bl_bridge_flush_up(void); /* I/O thread: end of a loop iteration */
/* Python thread: takes every queued up event (a list), off the bound; wakes
 * the I/O thread if it holds for it. */
bl_event_t *bl_bridge_take_up(void);
/* I/O thread: whether to hold (stop accepting and reading) for the up-queue's
 * bound: over the bound, or, while held (`held`), not yet under half of it.
 * True means the next take wakes the I/O thread (wake_down). */
bool bl_bridge_up_hold(bool held);
void bl_bridge_flush_down(void); /* Python thread: end of a loop iteration */
/* I/O thread: one event of the down-queue was taken (before it is handled). */
void bl_bridge_took_down(const bl_event_t *ev);
/* Any thread but the asyncio one (a WSGI pool thread): queue and wake now. */
void bl_bridge_post_down_now(bl_event_t *ev);

/* WSGI pool threads (they hold no GIL while they wait). The next REQUEST,
 * its scope now served by the thread that waits on `waker`; NULL once
 * stopping. */
bl_event_t *bl_wsgi_take_request(pthread_cond_t *waker);
/* The scope's queued events (a list, oldest first), waiting for one when
 * `wait`; NULL when none (not waiting). */
bl_event_t *bl_wsgi_take(bl_exchange_t *ex, bool wait);
/* The thread is done with the scope: what is queued, or comes later, is dropped. */
void bl_wsgi_release(bl_exchange_t *ex);
/* Whether the asyncio loop has work it was woken for (a cheap look). */
bool bl_wsgi_loop_waits(void);
/* A pool thread, without the GIL: while the loop waits, let it run (1 ms at most). */
void bl_wsgi_yield(void);
/* Wakes every waiting pool thread: bl_wsgi_take_request returns NULL. */
void bl_wsgi_stop(void);

/* Any thread: queues a TOPIC_PUBLISH event and wakes the I/O thread. Returns
 * -EPIPE when no I/O thread takes them, -EAGAIN (the event not taken) while the publishes queued
 * exceed up_max_bytes: the caller waits (bl_bridge_publish_wait) and tries again; -ENOBUFS
 * instead when the I/O thread does not run yet (waiting would not help). */
int bl_bridge_post_publish(bl_event_t *ev);
/* The I/O thread's loop takes publishes: from bl_server_init (running false:
 * they wait in the queue, as publishes of the app's lifespan startup do, and
 * go out in order once the thread runs), then from its start (running true).
 * After the close a post gets -EPIPE: no wake of a loop that is gone. */
void bl_bridge_publish_open(bool running);
void bl_bridge_publish_close(void);
/* Waits up to ms for the I/O thread to take publishes (without the GIL). */
void bl_bridge_publish_wait(unsigned ms);
/* I/O thread: a TOPIC_PUBLISH event left the queue (before it is freed). */
void bl_bridge_publish_taken(const bl_event_t *ev);

#endif
