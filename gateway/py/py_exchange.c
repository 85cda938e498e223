/* The Exchange object: one scope's receive() and send() as the app sees them.
 * It owns what every ASGI protocol shares (the Receiver awaitables and their
 * queue, the send() waiters, the channels, the app's end) and asks its
 * protocol table (py_http.c, py_ws.c) for what differs. */
#include "py_bridge.h"
#include "py_strings.h"

#include <string.h>

/* ---- posting to the I/O thread ------------------------------------------ */

bl_event_t *bl_pyex_pending_pop(ExchangeObject *self)
{
    bl_exchange_t *ex = self->ex;
    bl_event_t *ev = ex->pending;
    ex->pending = ev->next;
    if (ex->pending == NULL)
        ex->pending_tail = NULL;
    return ev;
}

void bl_pyex_post_consumed(bl_exchange_t *ex, bl_event_t *ev, size_t taken)
{
    ev->type = BL_EV_CONSUMED;
    ev->flags = 0;
    ev->aux = taken;
    ev->ex = ex; /* a pending event held no reference: it does now */
    bl_exchange_ref(ex);
    bl_bridge_post_down(ev);
}

void bl_pyex_post_simple(bl_exchange_t *ex, int type, unsigned flags)
{
    bl_event_t *ev = bl_event_new(type, ex, 0);
    if (ev != NULL) {
        ev->flags = (uint8_t)flags;
        bl_bridge_post_down(ev);
    }
}

/* ---- receive(): waiting, safe to cancel ------------------------------------
 *
 * A receive() that has nothing to return gives the app a Receiver. Its future
 * carries no message, only a wake-up: the message is taken off ex->pending when
 * the awaiting task runs again, so a task cancelled at any point (wait_for's
 * timeout, Starlette's is_disconnected() polling) leaves every message queued
 * for the next receive(). Waiting receivers are woken one per message in the
 * order they started waiting; one woken but cancelled before it ran hands the
 * wake-up on. A message at hand is taken at once, without a loop round trip.
 * After the disconnect was delivered, receive() still returns it at once, but
 * lets the loop run once first: a `while True: await receive()` cannot starve
 * the other tasks. */

typedef struct {
    PyObject_HEAD ExchangeObject *ex; /* a reference */
    PyObject *fut;                    /* the wake-up being awaited, or NULL */
    PyObject *task;                   /* the task that called receive(), or NULL */
    bool queued;                      /* in ex->receivers */
    bool woken;                       /* fut was resolved: this one takes next */
    bool spin;                        /* yield to the loop once before taking */
    bool finished;                    /* returned or abandoned */
} ReceiverObject;

static bool receive_ready(const ExchangeObject *self)
{
    return self->proto->receive_ready(self);
}

/* A queued receiver whose future was cancelled without its task telling it. */
static bool receiver_is_dead(ReceiverObject *r)
{
    if (r->finished)
        return true;
    if (r->woken || r->fut == NULL)
        return false;
    PyObject *done = PyObject_CallMethodNoArgs(r->fut, bl_str.done);
    if (done == NULL) {
        PyErr_WriteUnraisable(r->fut);
        return false;
    }
    bool dead = done == Py_True;
    Py_DECREF(done);
    return dead;
}

/* Drops the dead receivers (and r, if not NULL) from the queue. */
static void receivers_prune(ExchangeObject *self, ReceiverObject *r)
{
    if (self->receivers == NULL)
        return;
    for (Py_ssize_t i = PyList_GET_SIZE(self->receivers) - 1; i >= 0; i--) {
        if (i >= PyList_GET_SIZE(self->receivers))
            continue; /* the list shrank under a done() */
        /* A new reference: done() may run Python code. */
        ReceiverObject *q = (ReceiverObject *)Py_NewRef(PyList_GET_ITEM(self->receivers, i));
        if ((q == r || receiver_is_dead(q)) && i < PyList_GET_SIZE(self->receivers) &&
            PyList_GET_ITEM(self->receivers, i) == (PyObject *)q) {
            q->queued = false;
            if (PySequence_DelItem(self->receivers, i) < 0)
                PyErr_WriteUnraisable((PyObject *)self);
        }
        Py_DECREF(q);
    }
}

/* Wakes the first waiting receiver, or all of them. */
void bl_pyex_wake_receivers(ExchangeObject *self, bool all)
{
    if (self->receivers == NULL)
        return;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(self->receivers); i++) {
        /* A new reference: resolving a future may run Python code. */
        ReceiverObject *r = (ReceiverObject *)Py_NewRef(PyList_GET_ITEM(self->receivers, i));
        bool woke = false;
        if (!r->woken && !r->finished && r->fut != NULL) {
            /* A cancelled one keeps its future: receiver_is_dead() sees it. */
            PyObject *fut = Py_NewRef(r->fut);
            woke = bl_py_future_resolve(&fut, Py_None, false); /* clears fut */
            if (woke) {
                r->woken = true;
                Py_CLEAR(r->fut);
            }
        }
        Py_DECREF(r);
        if (woke && !all)
            return;
    }
}

bool bl_pyex_receiving_elsewhere(ExchangeObject *self, PyObject *task)
{
    if (self->receivers == NULL)
        return false;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(self->receivers); i++) {
        ReceiverObject *r = (ReceiverObject *)PyList_GET_ITEM(self->receivers, i); /* borrowed */
        if (r->task != task && !r->finished)
            return true;
    }
    return false;
}

/* The receiver will not take a message: out of the queue, and a wake-up it
 * got goes to the next one. */
static void receiver_abandon(ReceiverObject *r)
{
    ExchangeObject *self = r->ex;
    if (r->finished)
        return;
    r->finished = true;
    if (r->fut != NULL) {
        PyObject *res = PyObject_CallMethodNoArgs(r->fut, bl_str.cancel);
        if (res == NULL)
            PyErr_WriteUnraisable(r->fut);
        Py_XDECREF(res);
        Py_CLEAR(r->fut);
    }
    if (r->queued)
        receivers_prune(self, r);
    if (receive_ready(self))
        bl_pyex_wake_receivers(self, false);
}

/* One step of `await receiver`: the message, or a future to wait on. */
static PySendResult receiver_am_send(PyObject *op, PyObject *arg, PyObject **result)
{
    ReceiverObject *r = (ReceiverObject *)op;
    ExchangeObject *self = r->ex;
    PyObject *fut = NULL;
    (void)arg;
    *result = NULL;
    if (r->finished) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an already awaited receive()");
        return PYGEN_ERROR;
    }
    if (r->spin) {
        r->spin = false;
        *result = Py_NewRef(Py_None); /* a bare yield: the task runs again next iteration */
        return PYGEN_NEXT;
    }
    Py_CLEAR(r->fut); /* resolved (woken), or never made */
    r->woken = false;
    if (receive_ready(self)) {
        PyObject *msg = self->proto->receive_take(self, r->task);
        if (msg == NULL && !PyErr_Occurred())
            PyErr_SetString(PyExc_SystemError, "receive(): a ready message vanished");
        if (msg == NULL)
            goto fail;
        r->finished = true;
        if (r->queued)
            receivers_prune(self, r);
        if (receive_ready(self))
            bl_pyex_wake_receivers(self, false); /* the next one in line takes the rest */
        *result = msg;
        return PYGEN_RETURN;
    }
    fut = bl_py_future_new();
    if (fut == NULL || PyObject_SetAttr(fut, bl_str.future_blocking, Py_True) < 0)
        goto fail;
    if (!r->queued) {
        receivers_prune(self, NULL); /* cancelled ones must not pile up */
        if (self->receivers == NULL && (self->receivers = PyList_New(0)) == NULL)
            goto fail;
        if (PyList_Append(self->receivers, op) < 0)
            goto fail;
        r->queued = true;
    }
    r->fut = Py_NewRef(fut);
    *result = fut; /* the task waits for it (asyncio's future protocol) */
    return PYGEN_NEXT;
fail:
    Py_XDECREF(fut);
    /* Out of the queue, the error kept aside: the clean-up calls Python. */
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    receiver_abandon(r);
    PyErr_Restore(et, ev, tb);
    return PYGEN_ERROR;
}

static PyObject *receiver_next(PyObject *op)
{
    PyObject *res;
    switch (receiver_am_send(op, Py_None, &res)) {
    case PYGEN_NEXT:
        return res;
    case PYGEN_RETURN:
        PyErr_SetObject(PyExc_StopIteration, res); /* the message as the value */
        Py_DECREF(res);
        return NULL;
    default:
        return NULL;
    }
}

static PyObject *receiver_send(PyObject *op, PyObject *arg)
{
    (void)arg;
    return receiver_next(op);
}

/* The task was cancelled (or anything else thrown in): take nothing. */
static PyObject *receiver_throw(PyObject *op, PyObject *args)
{
    receiver_abandon((ReceiverObject *)op);
    return bl_ready_rethrow(args);
}

static PyObject *receiver_close(PyObject *op, PyObject *unused)
{
    (void)unused;
    receiver_abandon((ReceiverObject *)op);
    Py_RETURN_NONE;
}

static PyObject *receiver_await(PyObject *op)
{
    return Py_NewRef(op);
}

static int receiver_traverse(ReceiverObject *r, visitproc visit, void *arg)
{
    Py_VISIT(r->ex);
    Py_VISIT(r->fut);
    Py_VISIT(r->task);
    return 0;
}

static int receiver_clear(ReceiverObject *r)
{
    Py_CLEAR(r->fut);
    Py_CLEAR(r->task);
    Py_CLEAR(r->ex);
    return 0;
}

static void receiver_dealloc(ReceiverObject *r)
{
    PyObject_GC_UnTrack(r);
    receiver_clear(r);
    PyObject_GC_Del(r);
}

static PyMethodDef receiver_methods[] = {
    {"send", receiver_send, METH_O, NULL},
    {"throw", receiver_throw, METH_VARARGS, NULL},
    {"close", receiver_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods receiver_async = {
    .am_await = receiver_await,
    .am_send = receiver_am_send,
};

/* It has send/throw/close/__await__, so asyncio takes it for a coroutine
 * (Channels passes receive() to create_task). */
static PyTypeObject receiver_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_bayleaf.Receiver",
    .tp_basicsize = sizeof(ReceiverObject),
    .tp_dealloc = (destructor)receiver_dealloc,
    .tp_as_async = &receiver_async,
    .tp_iter = receiver_await,
    .tp_iternext = receiver_next,
    .tp_traverse = (traverseproc)receiver_traverse,
    .tp_clear = (inquiry)receiver_clear,
    .tp_methods = receiver_methods,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
};

/* Even with a message at hand, the Receiver takes it only when awaited: a
 * receive() whose task is cancelled before it first runs (wait_for(.., 0),
 * create_task() then cancel()) takes nothing. */
static PyObject *exchange_receive(ExchangeObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *task = self->proto->receive_begin(self); /* a new reference, or NULL */
    ReceiverObject *r = PyObject_GC_New(ReceiverObject, &receiver_type);
    if (r == NULL) {
        Py_XDECREF(task);
        return NULL;
    }
    r->ex = (ExchangeObject *)Py_NewRef(self);
    r->fut = NULL;
    r->task = task; /* stolen */
    r->queued = r->woken = r->finished = false;
    r->spin = self->disconnect_delivered;
    PyObject_GC_Track(r);
    return (PyObject *)r;
}

/* A future for one more send() waiting for WRITABLE. The message is already
 * posted: a task cancelled while it waits loses nothing, and any number of
 * tasks may wait at once (all are woken together). */
static PyObject *send_wait(ExchangeObject *self)
{
    PyObject *fut = NULL;
    if (self->send_waiters == NULL && (self->send_waiters = PyList_New(0)) == NULL)
        return NULL;
    /* Cancelled waiters must not pile up while the client reads nothing. */
    for (Py_ssize_t i = PyList_GET_SIZE(self->send_waiters) - 1; i >= 0; i--) {
        if (i >= PyList_GET_SIZE(self->send_waiters))
            continue;
        PyObject *w = Py_NewRef(PyList_GET_ITEM(self->send_waiters, i));
        PyObject *done = PyObject_CallMethodNoArgs(w, bl_str.done);
        Py_DECREF(w);
        if (done == NULL)
            return NULL;
        bool cancelled = done == Py_True; /* only a cancel makes one done before WRITABLE */
        Py_DECREF(done);
        if (cancelled && PySequence_DelItem(self->send_waiters, i) < 0)
            return NULL;
    }
    if ((fut = bl_py_future_new()) == NULL || PyList_Append(self->send_waiters, fut) < 0) {
        Py_XDECREF(fut);
        return NULL;
    }
    return fut;
}

/* Resolves every waiting send() (value, or an exception instance). Borrowed value. */
static void send_waiters_wake(ExchangeObject *self, PyObject *value, bool exception)
{
    PyObject *list = self->send_waiters;
    if (list == NULL)
        return;
    self->send_waiters = NULL; /* a send() run meanwhile starts a new list */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *fut = Py_NewRef(PyList_GET_ITEM(list, i));
        bl_py_future_resolve(&fut, value, exception); /* clears fut */
    }
    Py_DECREF(list);
}

void bl_pyex_wake_senders(ExchangeObject *self)
{
    atomic_store(&self->ex->want_writable, false);
    send_waiters_wake(self, Py_None, false);
}

PyObject *bl_pyex_post_paced(ExchangeObject *self, bl_event_t *ev, size_t len)
{
    size_t unsent = atomic_fetch_add(&self->ex->unsent, len) + len;
    bl_bridge_post_down(ev);
    if (unsent > BL_WRITE_HIGH_WATER) {
        /* Wait for the I/O thread to write some; check again after asking so a
         * write that finished in between is not missed. */
        atomic_store(&self->ex->want_writable, true);
        if (atomic_load(&self->ex->unsent) > BL_WRITE_HIGH_WATER)
            return send_wait(self);
        if (self->send_waiters == NULL || PyList_GET_SIZE(self->send_waiters) == 0)
            atomic_store(&self->ex->want_writable, false);
    }
    return Py_NewRef(bl_py.ready_none);
}

static PyObject *exchange_send(ExchangeObject *self, PyObject *msg)
{
    if (!PyDict_Check(msg))
        return PyErr_Format(PyExc_TypeError, "send() takes a dict, not %.50s",
                            Py_TYPE(msg)->tp_name);
    return self->proto->send(self, msg);
}

/* ---- the app's end -------------------------------------------------------- */

static void release_running(ExchangeObject *self)
{
    if (!self->running)
        return;
    self->running = false;
    self->ex->py = NULL;
    Py_DECREF(self); /* the reference ex->py held */
}

/* finish(failed): the app returned (or raised, failed=True). */
static PyObject *exchange_finish(ExchangeObject *self, PyObject *failed_o)
{
    int failed = PyObject_IsTrue(failed_o);
    if (failed < 0)
        return NULL;
    Py_INCREF(self);
    self->proto->app_returned(self, failed != 0);
    send_waiters_wake(self, Py_None, false);
    if (self->close_timer != NULL) {
        /* The app returned in time: drop the timer and the task it holds.
         * An interned name: a new "cancel" string per call would stay in
         * CPython's method cache, one per exchange, up to 4096 of them. */
        PyObject *r = PyObject_CallMethodNoArgs(self->close_timer, bl_str.cancel);
        if (r == NULL)
            PyErr_WriteUnraisable(self->close_timer);
        Py_XDECREF(r);
        Py_CLEAR(self->close_timer);
    }
    Py_CLEAR(self->task);
    Py_CLEAR(self->disconnect_task);
    release_running(self);
    /* A stray receive() of the app's other tasks hears the end. */
    bl_pyex_wake_receivers(self, true);
    Py_DECREF(self);
    Py_RETURN_NONE;
}

/* ---- events from the I/O thread ------------------------------------------ */

static PyObject *channel_new(ExchangeObject *ex, bool send);

void bl_pyex_start(bl_event_t *ev, const bl_pyex_proto_t *proto)
{
    bl_exchange_t *ex = ev->ex;
    ExchangeObject *self = NULL;
    PyObject *scope = NULL, *r = NULL, *receive = NULL, *send = NULL;

    self = PyObject_GC_New(ExchangeObject, &bl_pyex_type);
    if (self == NULL)
        goto error;
    memset((char *)self + sizeof(PyObject), 0, sizeof(*self) - sizeof(PyObject));
    bl_exchange_ref(ex);
    self->ex = ex;
    self->proto = proto;
    PyObject_GC_Track(self);
    /* Events kept inside the exchange must not hold a reference to it (a cycle). */
    ev->next = NULL;
    ev->ex = NULL;
    bl_exchange_unref(ex);         /* the event's reference; self holds one */
    scope = proto->open(self, ev); /* takes ev */
    ev = NULL;
    if (scope == NULL)
        goto error;
    self->running = true;
    ex->py = Py_NewRef(self); /* dropped by finish() */
    receive = channel_new(self, false);
    send = channel_new(self, true);
    if (receive == NULL || send == NULL)
        goto error;
    r = PyObject_CallFunctionObjArgs(bl_py.spawn, scope, (PyObject *)self, receive, send, NULL);
    Py_CLEAR(receive);
    Py_CLEAR(send);
    if (r == NULL)
        goto error;
    if (self->running)
        Py_XSETREF(self->task, r); /* steals r: the app's task */
    else
        Py_DECREF(r); /* the app already finished */
    Py_DECREF(scope);
    Py_DECREF(self);
    return;
error:
    PyErr_WriteUnraisable(bl_py.spawn);
    Py_XDECREF(receive);
    Py_XDECREF(send);
    if (ev != NULL)
        bl_event_free(ev);
    if (self != NULL) {
        bl_pyex_post_simple(self->ex, BL_EV_FINISH, BL_EVF_ERROR);
        release_running(self);
        Py_DECREF(self);
    }
    Py_XDECREF(scope);
}

void bl_pyex_on_event(bl_event_t *ev)
{
    bl_exchange_t *ex = ev->ex;
    ExchangeObject *self = ex != NULL ? ex->py : NULL;
    if (self == NULL) {
        bl_event_free(ev);
        return;
    }
    Py_INCREF(self);
    switch (ev->type) {
    case BL_EV_BODY:
    case BL_EV_WS_MESSAGE:
        ev->next = NULL;
        ev->ex = NULL;
        bl_exchange_unref(ex); /* self holds a reference */
        if (ex->pending_tail != NULL)
            ex->pending_tail->next = ev;
        else
            ex->pending = ev;
        ex->pending_tail = ev;
        ev = NULL;
        bl_pyex_wake_receivers(self, false);
        break;
    case BL_EV_DISCONNECT:
        if (!self->disconnected && self->task != NULL) {
            /* The app has --application-close-timeout to return. */
            PyObject *h = PyObject_CallFunctionObjArgs(bl_py.call_later, bl_py.app_close_timeout,
                                                       bl_py.on_close_timeout, self->task, NULL);
            if (h == NULL)
                PyErr_WriteUnraisable((PyObject *)self);
            Py_XSETREF(self->close_timer, h); /* cancelled when the app returns */
        }
        self->disconnected = true;
        self->close_code = ev->status ? ev->status : 1006;
        Py_XSETREF(self->close_reason,
                   PyUnicode_DecodeUTF8(ev->data, (Py_ssize_t)ev->len, "replace"));
        if (self->close_reason == NULL) /* out of memory: the app sees reason "" */
            PyErr_WriteUnraisable((PyObject *)self);
        bl_pyex_wake_receivers(self, true);
        if (self->send_waiters != NULL) {
            PyObject *exc = bl_py_disconnected_error("the client disconnected");
            if (exc != NULL) {
                send_waiters_wake(self, exc, true);
                Py_DECREF(exc);
            } else {
                PyErr_WriteUnraisable((PyObject *)self);
            }
        }
        break;
    case BL_EV_WRITABLE:
        send_waiters_wake(self, Py_None, false);
        break;
    }
    if (ev != NULL)
        bl_event_free(ev);
    Py_DECREF(self);
}

/* ---- receive and send as the app sees them ---------------------------------- */

/* The `receive` and `send` callables handed to the app. Plain bound methods
 * would do, but asyncio (and asgiref's async_to_sync, which warns otherwise)
 * must see them as coroutine functions: they carry asyncio's marker. */
typedef struct {
    PyObject_HEAD ExchangeObject *ex;
    bool send;
    vectorcallfunc vectorcall;
} ChannelObject;

static PyObject *channel_call(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kw)
{
    ChannelObject *ch = (ChannelObject *)op;
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if (kw != NULL && PyTuple_GET_SIZE(kw) > 0)
        return PyErr_Format(PyExc_TypeError, "%s() takes no keyword arguments",
                            ch->send ? "send" : "receive");
    if (ch->send) {
        if (n != 1)
            return PyErr_Format(PyExc_TypeError, "send() takes exactly one argument (%zd given)",
                                n);
        return exchange_send(ch->ex, args[0]);
    }
    if (n != 0)
        return PyErr_Format(PyExc_TypeError, "receive() takes no arguments (%zd given)", n);
    return exchange_receive(ch->ex, NULL);
}

static PyObject *channel_is_coroutine(PyObject *op, void *closure)
{
    (void)op;
    (void)closure;
    return Py_NewRef(bl_py.coroutine_marker ? bl_py.coroutine_marker : Py_None);
}

static int channel_traverse(ChannelObject *ch, visitproc visit, void *arg)
{
    Py_VISIT(ch->ex);
    return 0;
}

static void channel_dealloc(ChannelObject *ch)
{
    PyObject_GC_UnTrack(ch);
    Py_CLEAR(ch->ex);
    PyObject_GC_Del(ch);
}

static PyGetSetDef channel_getset[] = {
    {"_is_coroutine", channel_is_coroutine, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject channel_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_bayleaf.Channel",
    .tp_basicsize = sizeof(ChannelObject),
    .tp_dealloc = (destructor)channel_dealloc,
    .tp_vectorcall_offset = offsetof(ChannelObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_traverse = (traverseproc)channel_traverse,
    .tp_getset = channel_getset,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
};

static PyObject *channel_new(ExchangeObject *ex, bool send)
{
    ChannelObject *ch = PyObject_GC_New(ChannelObject, &channel_type);
    if (ch == NULL)
        return NULL;
    ch->ex = (ExchangeObject *)Py_NewRef(ex);
    ch->send = send;
    ch->vectorcall = channel_call;
    PyObject_GC_Track(ch);
    return (PyObject *)ch;
}

/* ---- the type ------------------------------------------------------------- */

static int exchange_traverse(ExchangeObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->task);
    Py_VISIT(self->disconnect_task);
    Py_VISIT(self->close_timer);
    Py_VISIT(self->receivers);
    Py_VISIT(self->send_waiters);
    return 0;
}

static int exchange_clear(ExchangeObject *self)
{
    Py_CLEAR(self->close_reason);
    Py_CLEAR(self->task);
    Py_CLEAR(self->disconnect_task);
    Py_CLEAR(self->close_timer);
    Py_CLEAR(self->receivers);
    Py_CLEAR(self->send_waiters);
    return 0;
}

static void exchange_dealloc(ExchangeObject *self)
{
    PyObject_GC_UnTrack(self);
    exchange_clear(self);
    if (self->start != NULL)
        bl_event_free(self->start);
    if (self->ex != NULL)
        bl_exchange_unref(self->ex);
    PyObject_GC_Del(self);
}

static PyMethodDef exchange_methods[] = {
    {"receive", (PyCFunction)exchange_receive, METH_NOARGS, "ASGI receive()."},
    {"send", (PyCFunction)exchange_send, METH_O, "ASGI send(message)."},
    {"finish", (PyCFunction)exchange_finish, METH_O, "The app returned (True: it raised)."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject bl_pyex_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_bayleaf.Exchange",
    .tp_basicsize = sizeof(ExchangeObject),
    .tp_dealloc = (destructor)exchange_dealloc,
    .tp_traverse = (traverseproc)exchange_traverse,
    .tp_clear = (inquiry)exchange_clear,
    .tp_methods = exchange_methods,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
};

int bl_pyex_types_ready(void)
{
    if (PyType_Ready(&bl_pyex_type) < 0 || PyType_Ready(&channel_type) < 0 ||
        PyType_Ready(&receiver_type) < 0)
        return -1;
    return 0;
}
