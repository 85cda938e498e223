/* Shared between the Python-thread C files (py_*.c). Python thread only. */
#ifndef BAYLEAF_PY_BRIDGE_H
#define BAYLEAF_PY_BRIDGE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "bayleaf/bridge.h"
#include "bayleaf/server.h"

/* Module state (one interpreter per process). */
typedef struct {
    PyObject *loop;         /* the asyncio loop */
    PyObject *spawn;        /* spawn(scope, exchange): starts the app for a scope */
    PyObject *on_drained;   /* called once the I/O thread drained after a signal */
    PyObject *state;        /* lifespan state dict, or NULL */
    PyObject *root_path;    /* str */
    PyObject *disconnected; /* the ClientDisconnected exception type */
    PyObject *ready_none;   /* a shared awaitable that returns None at once */
    PyObject *call_soon;    /* loop.call_soon */
    PyObject *flush_down;   /* _bayleaf._flush_down, scheduled once per batch */
    bl_server_t *server;
} bl_py_t;

extern bl_py_t bl_py;

/* An awaitable that completes at once with a value (no event-loop round trip). */
PyObject *bl_ready_new(PyObject *value); /* steals value */
extern PyTypeObject bl_ready_type;

/* The Exchange object given to the app as receive/send owner. */
extern PyTypeObject bl_exchange_type;
/* Creates the object for a REQUEST event and starts the app. Takes ev. */
void bl_http_on_request(bl_event_t *ev);
/* BODY, DISCONNECT, WRITABLE for a running exchange. Takes ev. */
void bl_http_on_event(bl_event_t *ev);

/* A new future on the loop, or NULL with an error set. */
PyObject *bl_future_new(void);
/* Resolves fut (if still pending) with a value or an exception instance; clears
 * the reference. Borrowed value. */
void bl_future_resolve(PyObject **fut, PyObject *value, bool exception);

#endif
