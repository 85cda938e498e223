/* Shared between the Python-thread C files (py_*.c). Python thread only. */
#ifndef BAYLEAF_PY_BRIDGE_H
#define BAYLEAF_PY_BRIDGE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "bayleaf/bridge/bridge.h"
#include "bayleaf/bridge/io_control.h"

/* Module state (one interpreter per process). */
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

/* An awaitable that completes at once with a value (no event-loop round trip).
 * Steals value; NULL (its builder failed) gives NULL with that error kept. */
PyObject *bl_ready_new(PyObject *value);

/* d[key] as a new reference (a borrowed one could be freed by any Python code
 * that runs before its last use: a key's __eq__, a value's __bool__ or
 * __index__, a headers iterable), or NULL: with an error set, or absent. */
PyObject *bl_py_dict_get(PyObject *d, PyObject *key);
extern PyTypeObject bl_ready_type;
/* throw(typ[, val[, tb]]) of an awaitable: raises what was thrown in. */
PyObject *bl_awaitable_rethrow(PyObject *args);

/* The Exchange object: owner of one scope's receive() and send(). */
typedef enum {
    BL_WS_CONNECTING, /* websocket.connect not yet received by the app */
    BL_WS_HANDSHAKE,  /* the app decides: accept, close (403) or an HTTP response */
    BL_WS_OPEN,
    BL_WS_CLOSED, /* the app closed or refused */
} bl_ws_state_t;

typedef struct {
    PyObject_HEAD bl_exchange_t *ex; /* a reference */
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
    bl_ws_state_t ws_state;
    int close_code;            /* from the client's close (1006 when none came) */
    bool disconnect_delivered; /* receive() returned http.disconnect/websocket.disconnect */
    bool receive_driven;       /* the app called receive() after websocket.connect */
    PyObject *disconnect_task; /* the task handed websocket.disconnect */
    PyObject *close_reason;    /* str */
} ExchangeObject;

extern PyTypeObject bl_exchange_type;
/* What receive() returns when it must wait (py_http.c). */
extern PyTypeObject bl_receiver_type;
/* receive/send for the app (marked as coroutine functions). */
extern PyTypeObject bl_channel_type;
PyObject *bl_channel_new(ExchangeObject *ex, bool send);

/* py_http.c, shared with py_ws.c */
bl_event_t *bl_py_start_event(ExchangeObject *self, PyObject *msg);
/* Holds msg's head in self->start until the first body; 0, or -1 with an error. */
int bl_py_start_response(ExchangeObject *self, PyObject *msg);
PyObject *bl_py_send_body(ExchangeObject *self, PyObject *msg);
void bl_py_post_simple(bl_exchange_t *ex, int type, unsigned flags);
/* Sends a delivered body/message event ev (taken off ex->pending) back as
 * CONSUMED for taken bytes: no allocation, so reading cannot stay paused. */
void bl_py_post_consumed(bl_exchange_t *ex, bl_event_t *ev, size_t taken);
/* Posts ev (len bytes of the app's data) and returns what send() returns: at
 * once, or a future while the client's unsent bytes are above the high-water mark. */
PyObject *bl_py_post_paced(ExchangeObject *self, bl_event_t *ev, size_t len);
/* Whether a task other than `task` (borrowed, may be NULL) waits in receive(). */
bool bl_py_receiving_elsewhere(ExchangeObject *self, PyObject *task);

/* py_ws.c */
int bl_ws_scope_add(PyObject *scope, const bl_exchange_t *ex);
PyObject *bl_ws_send(ExchangeObject *self, PyObject *msg);
/* Whether receive() has a message (or the disconnect) to return now. */
bool bl_ws_receive_ready(const ExchangeObject *self);
/* Takes the next message for the app, or NULL without an error when none is
 * ready. receiver: the task being handed it (borrowed, may be NULL). */
PyObject *bl_ws_next_message(ExchangeObject *self, PyObject *receiver);
/* asyncio.current_task(), a new reference, or NULL (logged; no error set). */
PyObject *bl_py_current_task(void);
/* Creates the object for a REQUEST event and starts the app. Takes ev. */
void bl_http_on_request(bl_event_t *ev);
/* BODY, DISCONNECT, WRITABLE for a running exchange. Takes ev. */
void bl_http_on_event(bl_event_t *ev);

/* py_embed.c: serving starts; what is allocated from now on is checked for
 * leaks in ASan builds (a no-op otherwise). */
void bl_py_startup_done(void);

/* A new ClientDisconnected instance, or NULL with an error set. */
PyObject *bl_py_disconnected_error(const char *why);

/* A new future on the loop, or NULL with an error set. */
PyObject *bl_future_new(void);
/* Resolves fut (if still pending) with a value or an exception instance; clears
 * the reference. Borrowed value. Returns whether it was pending (a waiter
 * cancelled meanwhile is done: it takes nothing). */
bool bl_future_resolve(PyObject **fut, PyObject *value, bool exception);

#endif
