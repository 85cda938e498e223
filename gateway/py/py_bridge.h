/* Shared between the Python-thread C files (py_*.c). Python thread only.
 * One section per file, bottom to top: a file calls only the files of the
 * sections above its own (py_module.c -> py_ws.c -> py_http.c -> py_exchange.c
 * -> py_shared.c, py_ready.c, py_strings.c); the Exchange reaches HTTP and
 * WebSocket only through its protocol table. */
#ifndef BAYLEAF_PY_BRIDGE_H
#define BAYLEAF_PY_BRIDGE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "bayleaf/bridge/bridge.h"
#include "bayleaf/bridge/io_control.h"

/* ---- py_shared.c: the module state (one interpreter per process) -------- */
typedef struct {
    PyObject *loop;              /* the asyncio loop */
    PyObject *spawn;             /* spawn(scope, exchange): starts the app for a scope */
    PyObject *on_drained;        /* called once the I/O thread drained after a signal */
    PyObject *state;             /* lifespan state dict, or NULL */
    PyObject *root_path;         /* str */
    PyObject *disconnected;      /* the ClientDisconnected exception type */
    PyObject *ready_none;        /* a shared awaitable that returns None at once */
    PyObject *call_soon;         /* loop.call_soon */
    PyObject *call_later;        /* loop.call_later */
    PyObject *current_task;      /* asyncio.current_task */
    PyObject *coroutine_marker;  /* asyncio.coroutines._is_coroutine */
    PyObject *app_close_timeout; /* float seconds */
    PyObject *on_close_timeout;  /* runner's: cancels an app that outlived its client */
    PyObject *flush_down;        /* _bayleaf._flush_down, scheduled once per batch */
    const bl_io_control_t *io;   /* the I/O thread: start, stop, join */
} bl_py_t;

extern bl_py_t bl_py;

/* ---- py_ready.c: an awaitable with its result at hand ------------------ */

/* An awaitable that completes at once with a value (no event-loop round trip).
 * Steals value; NULL (its builder failed) gives NULL with that error kept. */
PyObject *bl_ready_new(PyObject *value);
extern PyTypeObject bl_ready_type;
/* throw(typ[, val[, tb]]) of an awaitable: raises what was thrown in. */
PyObject *bl_ready_rethrow(PyObject *args);

/* ---- py_shared.c: helpers every Python-thread file uses ------------------ */

/* d[key] as a new reference (a borrowed one could be freed by any Python code
 * that runs before its last use: a key's __eq__, a value's __bool__ or
 * __index__, a headers iterable), or NULL: with an error set, or absent. */
PyObject *bl_py_dict_get(PyObject *d, PyObject *key);
/* A new ClientDisconnected instance, or NULL with an error set. */
PyObject *bl_py_disconnected_error(const char *why);
/* asyncio.current_task(), a new reference, or NULL (logged; no error set). */
PyObject *bl_py_current_task(void);
/* A new future on the loop, or NULL with an error set. */
PyObject *bl_py_future_new(void);
/* Resolves fut (if still pending) with a value or an exception instance; clears
 * the reference. Borrowed value. Returns whether it was pending (a waiter
 * cancelled meanwhile is done: it takes nothing). */
bool bl_py_future_resolve(PyObject **fut, PyObject *value, bool exception);

/* ---- py_lsan.c: LeakSanitizer and the interpreter's life ----------------- */

/* From Py_InitializeFromConfig until serving starts, nothing is reported. */
void bl_lsan_startup_begin(void);
/* Serving starts: what is allocated from now on is checked for leaks in ASan
 * builds (a no-op otherwise, as is every bl_lsan_ function). */
void bl_lsan_startup_done(void);
/* Wraps builtins.__import__ so imports are not reported. 0, or -1 with an error. */
int bl_lsan_wrap_import(void);
/* Checks for leaks now (before Py_FinalizeEx); exits on one. */
void bl_lsan_leak_check(void);

/* ---- py_exchange.c: the Exchange object ----------------------------------- */

/* A WebSocket scope's handshake, as the app sees it (py_ws.c moves it on). Not
 * io's ws_phase_t: that one is the socket's, this one the app's. */
typedef enum {
    BL_ASGI_WS_CONNECT_UNREAD, /* receive() has not yet returned websocket.connect */
    BL_ASGI_WS_DECIDING,       /* the app has it and decides: accept, close (403) or
                                  a denial response (websocket.http.response.*) */
    BL_ASGI_WS_ACCEPTED,       /* websocket.accept sent: websocket.send allowed */
    BL_ASGI_WS_CLOSED,         /* websocket.close sent, or the denial response complete */
} bl_asgi_ws_state_t;

typedef struct ExchangeObject ExchangeObject;

/* What differs between ASGI protocols: the Exchange calls these and knows
 * neither HTTP nor WebSocket. */
typedef struct {
    /* Builds the scope for the REQUEST event, which it takes (its body, if
     * any, becomes the first pending message). New reference, or NULL with an
     * error set. */
    PyObject *(*open)(ExchangeObject *self, bl_event_t *request);
    /* receive() was called. Returns the calling task when the protocol needs
     * it (a new reference), or NULL without an error set. */
    PyObject *(*receive_begin)(ExchangeObject *self);
    /* Whether receive() has a message (or the disconnect) to return now. */
    bool (*receive_ready)(const ExchangeObject *self);
    /* Takes the next message for the app, or NULL without an error when none is
     * ready. task: the one being handed it (borrowed, may be NULL). */
    PyObject *(*receive_take)(ExchangeObject *self, PyObject *task);
    /* send(msg), msg a dict: what send() returns, or NULL with an error set. */
    PyObject *(*send)(ExchangeObject *self, PyObject *msg);
    /* The app returned: tells the I/O thread what it must hear (a held
     * response start, FINISH). failed: the app raised. */
    void (*app_returned)(ExchangeObject *self, bool failed);
} bl_pyex_proto_t;

struct ExchangeObject {
    PyObject_HEAD bl_exchange_t *ex; /* a reference */
    const bl_pyex_proto_t *proto;    /* HTTP or WebSocket */
    PyObject *receivers;             /* list: the receive() awaitables waiting, in order */
    PyObject *send_waiters;          /* list: futures of send() calls waiting for the socket */
    bl_event_t *start;               /* http.response.start, held until the first body */
    bool started;                    /* the start message was given */
    bool complete;                   /* the last body was given */
    bool body_done;                  /* the last request body chunk was delivered */
    bool disconnected;
    bool continue_asked;
    bool running;          /* ex->py holds a reference to this object */
    PyObject *task;        /* the app's task (set by spawn), for the close timeout */
    PyObject *close_timer; /* the close-timeout TimerHandle, after a disconnect */
    /* WebSocket */
    bl_asgi_ws_state_t ws_state;
    int close_code;            /* from the client's close (1006 when none came) */
    bool disconnect_delivered; /* receive() returned http.disconnect/websocket.disconnect */
    bool receive_driven;       /* the app called receive() after websocket.connect */
    PyObject *disconnect_task; /* the task handed websocket.disconnect */
    PyObject *close_reason;    /* str */
};

/* PyType_Ready of the Exchange, Receiver and Channel types: 0, or -1 with an error. */
int bl_pyex_types_ready(void);
extern PyTypeObject bl_pyex_type;
/* Creates the Exchange for a REQUEST event and starts the app. Takes request. */
void bl_pyex_start(bl_event_t *request, const bl_pyex_proto_t *proto);
/* BODY, WS_MESSAGE, DISCONNECT, WRITABLE for a running exchange. Takes ev. */
void bl_pyex_on_event(bl_event_t *ev);
/* Wakes the first receive() waiting, or all of them (the exchange ended). */
void bl_pyex_wake_receivers(ExchangeObject *self, bool all);
/* Whether a task other than `task` (borrowed, may be NULL) waits in receive(). */
bool bl_pyex_receiving_elsewhere(ExchangeObject *self, PyObject *task);
void bl_pyex_post_simple(bl_exchange_t *ex, int type, unsigned flags);
/* Sends a delivered body/message event ev (taken off ex->pending) back as
 * CONSUMED for taken bytes: no allocation, so reading cannot stay paused. */
void bl_pyex_post_consumed(bl_exchange_t *ex, bl_event_t *ev, size_t taken);
/* Posts ev (len bytes of the app's data) and returns what send() returns: at
 * once, or a future while the client's unsent bytes are above the high-water mark. */
PyObject *bl_pyex_post_paced(ExchangeObject *self, bl_event_t *ev, size_t len);
/* Takes the first pending event off ex->pending (there must be one). */
bl_event_t *bl_pyex_pending_pop(ExchangeObject *self);

/* ---- py_http.c: ASGI HTTP ------------------------------------------------- */

/* Builds the part of the scope HTTP and WebSocket share. New reference, or
 * NULL with an error set. */
PyObject *bl_asgi_http_scope_new(const bl_exchange_t *ex);
/* Holds msg's head in self->start until the first body; 0, or -1 with an error. */
int bl_asgi_http_start_response(ExchangeObject *self, PyObject *msg);
/* The response head's header lines from msg (status, headers) in a new
 * RESPONSE event, or NULL with an error set. */
bl_event_t *bl_asgi_http_start_event(ExchangeObject *self, PyObject *msg);
PyObject *bl_asgi_http_send_body(ExchangeObject *self, PyObject *msg);
/* A held response start without a body goes out; the I/O thread cuts it short. */
void bl_asgi_http_flush_start(ExchangeObject *self);
/* Creates the Exchange for an HTTP REQUEST event and starts the app. Takes ev. */
void bl_asgi_http_on_request(bl_event_t *ev);

/* ---- py_topics.c: the bayleaf.topics extension, topic_publish ------------- */

/* send() of bayleaf.subscribe / bayleaf.unsubscribe (the scope was accepted):
 * what send() returns, or NULL with a TypeError/ValueError set. */
PyObject *bl_asgi_topics_send(ExchangeObject *self, PyObject *msg, bool subscribe);
/* _bayleaf.topic_publish(topic, payload, is_text, retain) and topics_active(). */
PyObject *bl_py_topic_publish(PyObject *self, PyObject *args);
PyObject *bl_py_topics_active(PyObject *self, PyObject *unused);

/* ---- py_ws.c: ASGI WebSocket ---------------------------------------------- */

/* Creates the Exchange for a WebSocket REQUEST event and starts the app. Takes ev. */
void bl_asgi_ws_on_request(bl_event_t *ev);

/* ---- py_module.c: the _bayleaf module (py_embed.c registers it) ----------- */

PyMODINIT_FUNC bl_pymod_init(void);

#endif
