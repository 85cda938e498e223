/* ASGI HTTP on the Python thread: the scope, receive() and send(). */
#include "py_bridge.h"
#include "py_strings.h"
#include "bayleaf/proto/http_response.h"
#include "bayleaf/proto/tokens.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- scope -------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* Percent-decodes the path, then decodes UTF-8 (invalid bytes become U+FFFD). */
static PyObject *decode_path(const char *s, size_t len)
{
    char stack[512] = {0};
    char *buf = len <= sizeof(stack) ? stack : PyMem_Malloc(len);
    size_t n = 0;
    if (buf == NULL)
        return PyErr_NoMemory();
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = hexval(s[i + 1])) >= 0 &&
            (lo = hexval(s[i + 2])) >= 0) {
            buf[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            buf[n++] = s[i];
        }
    }
    PyObject *r = PyUnicode_DecodeUTF8(buf, (Py_ssize_t)n, "replace");
    if (buf != stack)
        PyMem_Free(buf);
    return r;
}

static PyObject *address(const char *host, int port, bool unix_server)
{
    if (unix_server)
        return Py_BuildValue("(sO)", host, Py_None);
    if (port < 0)
        Py_RETURN_NONE;
    return Py_BuildValue("(si)", host, port);
}

/* Daphne-Root-Path is the server's (it sets root_path), never the app's. */
static bool is_root_path_header(const bl_head_t *h, const bl_header_t *hd)
{
    return hd->name_len == 16 && memcmp(h->buf + hd->name_off, "daphne-root-path", 16) == 0;
}

static PyObject *build_headers(const bl_head_t *h)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < h->nheaders; i++)
        n += !is_root_path_header(h, &h->headers[i]);
    PyObject *list = PyList_New(n);
    if (list == NULL)
        return NULL;
    for (uint32_t i = 0, j = 0; i < h->nheaders; i++) {
        const bl_header_t *hd = &h->headers[i];
        if (is_root_path_header(h, hd))
            continue;
        PyObject *pair = Py_BuildValue("(y#y#)", h->buf + hd->name_off, (Py_ssize_t)hd->name_len,
                                       h->buf + hd->value_off, (Py_ssize_t)hd->value_len);
        if (pair == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, j++, pair); /* steals pair */
    }
    return list;
}

/* --root-path, or a trusted proxy's Daphne-Root-Path (percent-decoded, as Daphne does). */
static PyObject *root_path(const bl_exchange_t *ex)
{
    if (!ex->has_root_path)
        return Py_NewRef(bl_py.root_path);
    return decode_path(ex->head->buf + ex->root_path_off, ex->root_path_len);
}

static PyObject *scheme(const bl_exchange_t *ex)
{
    if (ex->kind == BL_KIND_WEBSOCKET)
        return Py_NewRef(ex->secure ? bl_str.wss : bl_str.ws);
    return Py_NewRef(ex->secure ? bl_str.https : bl_str.http);
}

static int set_item(PyObject *d, PyObject *key, PyObject *value)
{
    if (value == NULL)
        return -1;
    int r = PyDict_SetItem(d, key, value);
    Py_DECREF(value);
    return r;
}

static PyObject *build_scope(const bl_exchange_t *ex)
{
    const bl_head_t *h = ex->head;
    PyObject *scope = PyDict_New();
    PyObject *asgi = NULL;
    if (scope == NULL)
        return NULL;
    asgi = PyDict_New();
    if (asgi == NULL || PyDict_SetItem(asgi, bl_str.version, bl_str.v3_0) < 0 ||
        PyDict_SetItem(asgi, bl_str.spec_version, bl_str.v2_5) < 0)
        goto fail;
    bool ws = ex->kind == BL_KIND_WEBSOCKET;
    if (PyDict_SetItem(scope, bl_str.type, ws ? bl_str.websocket : bl_str.http) < 0 ||
        set_item(scope, bl_str.asgi, Py_NewRef(asgi)) < 0 ||
        PyDict_SetItem(scope, bl_str.http_version, h->http_minor == 0 ? bl_str.v1_0 : bl_str.v1_1) <
            0 ||
        (!ws && set_item(scope, bl_str.method, PyUnicode_InternFromString(h->method)) < 0) ||
        set_item(scope, bl_str.scheme, scheme(ex)) < 0 ||
        set_item(scope, bl_str.path, decode_path(h->buf + h->path_off, h->path_len)) < 0 ||
        set_item(scope, bl_str.raw_path,
                 PyBytes_FromStringAndSize(h->buf + h->path_off, h->path_len)) < 0 ||
        set_item(scope, bl_str.query_string,
                 PyBytes_FromStringAndSize(h->buf + h->query_off, h->query_len)) < 0 ||
        set_item(scope, bl_str.root_path, root_path(ex)) < 0 ||
        set_item(scope, bl_str.headers, build_headers(h)) < 0 ||
        set_item(scope, bl_str.client, address(ex->client_host, ex->client_port, false)) < 0 ||
        set_item(scope, bl_str.server,
                 address(ex->server_host, ex->server_port, ex->server_port < 0)) < 0)
        goto fail;
    if (bl_py.state != NULL && set_item(scope, bl_str.state, PyDict_Copy(bl_py.state)) < 0)
        goto fail;
    if (ws && bl_ws_scope_add(scope, ex) < 0)
        goto fail;
    Py_DECREF(asgi);
    return scope;
fail:
    Py_XDECREF(asgi);
    Py_DECREF(scope);
    return NULL;
}

/* ---- receive ------------------------------------------------------------ */

static PyObject *message_disconnect(void)
{
    PyObject *d = PyDict_New();
    if (d != NULL && PyDict_SetItem(d, bl_str.type, bl_str.http_disconnect) < 0)
        Py_CLEAR(d);
    return d;
}

/* Pops the next body event into an http.request message (and lets the I/O
 * thread read more). */
static PyObject *message_next_body(ExchangeObject *self)
{
    bl_exchange_t *ex = self->ex;
    bl_event_t *ev = ex->pending;
    PyObject *d = PyDict_New();
    if (d == NULL)
        return NULL;
    if (PyDict_SetItem(d, bl_str.type, bl_str.http_request) < 0 ||
        set_item(d, bl_str.body, PyBytes_FromStringAndSize(ev->data, (Py_ssize_t)ev->len)) < 0 ||
        PyDict_SetItem(d, bl_str.more_body, (ev->flags & BL_EVF_MORE) ? Py_True : Py_False) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    ex->pending = ev->next;
    if (ex->pending == NULL)
        ex->pending_tail = NULL;
    if (!(ev->flags & BL_EVF_MORE))
        self->body_done = true;
    size_t readahead = bl_event_readahead(ev);
    if (readahead > 0 && !self->disconnected) {
        /* The event itself tells the I/O thread the memory it counted for it
         * is free: an allocation failing here would leave reading paused for
         * ever. */
        bl_py_post_consumed(ex, ev, readahead);
        return d;
    }
    bl_event_free(ev);
    return d;
}

void bl_py_post_consumed(bl_exchange_t *ex, bl_event_t *ev, size_t taken)
{
    ev->type = BL_EV_CONSUMED;
    ev->flags = 0;
    ev->aux = taken;
    ev->ex = ex; /* a pending event held no reference: it does now */
    bl_exchange_ref(ex);
    bl_bridge_post_down(ev);
}

void bl_py_post_simple(bl_exchange_t *ex, int type, unsigned flags)
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
 * wake-up on. A message at hand is taken at once, without a loop round trip. After the disconnect
 * was delivered, receive() still returns it at once, but lets the loop run once first: a `while
 * True: await receive()` cannot starve the other tasks. */

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
    if (self->ex->kind == BL_KIND_WEBSOCKET)
        return bl_ws_receive_ready(self);
    return self->ex->pending != NULL || self->disconnected || self->complete || !self->running;
}

/* The next message, or NULL without an error set when none is ready. */
static PyObject *receive_take(ExchangeObject *self, PyObject *task)
{
    if (self->ex->kind == BL_KIND_WEBSOCKET)
        return bl_ws_next_message(self, task);
    if (self->ex->pending != NULL)
        return message_next_body(self);
    if (self->disconnected || self->complete || !self->running) {
        self->disconnect_delivered = true;
        return message_disconnect();
    }
    return NULL;
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
static void wake_receivers(ExchangeObject *self, bool all)
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
            woke = bl_future_resolve(&fut, Py_None, false); /* clears fut */
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

bool bl_py_receiving_elsewhere(ExchangeObject *self, PyObject *task)
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
        wake_receivers(self, false);
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
        PyObject *msg = receive_take(self, r->task);
        if (msg == NULL && !PyErr_Occurred())
            PyErr_SetString(PyExc_SystemError, "receive(): a ready message vanished");
        if (msg == NULL)
            goto fail;
        r->finished = true;
        if (r->queued)
            receivers_prune(self, r);
        if (receive_ready(self))
            wake_receivers(self, false); /* the next one in line takes the rest */
        *result = msg;
        return PYGEN_RETURN;
    }
    fut = bl_future_new();
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
    return bl_awaitable_rethrow(args);
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
PyTypeObject bl_receiver_type = {
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
    bool ws = self->ex->kind == BL_KIND_WEBSOCKET;
    PyObject *task = NULL;
    (void)unused;
    if (ws && self->ws_state != BL_WS_CONNECTING)
        self->receive_driven = true;
    if (ws)
        task = bl_py_current_task(); /* who holds the disconnect, or waits for it */
    if (!ws && !receive_ready(self) && !self->body_done && self->ex->head->expect_continue &&
        !self->continue_asked) {
        self->continue_asked = true;
        bl_py_post_simple(self->ex, BL_EV_CONTINUE, 0);
    }
    ReceiverObject *r = PyObject_GC_New(ReceiverObject, &bl_receiver_type);
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

/* ---- send ----------------------------------------------------------------- */

static int check_bytes(PyObject *o, const char *what)
{
    if (!PyBytes_Check(o)) {
        PyErr_Format(PyExc_TypeError, "http.response.start: header %s must be bytes, not %.50s",
                     what, Py_TYPE(o)->tp_name);
        return -1;
    }
    return 0;
}

/* Serializes the app's headers into "name: value\r\n" lines in a new event. */
bl_event_t *bl_py_start_event(ExchangeObject *self, PyObject *msg)
{
    PyObject *status_o = bl_py_dict_get(msg, bl_str.status);
    PyObject *headers_o = PyErr_Occurred() ? NULL : bl_py_dict_get(msg, bl_str.headers);
    PyObject *seq = NULL;
    bl_event_t *ev = NULL;
    bl_response_scan_t scan = {0};
    long status;
    size_t size = 0;

    if (PyErr_Occurred())
        goto fail;
    if (status_o == NULL || !PyLong_Check(status_o)) {
        PyErr_SetString(PyExc_TypeError, "http.response.start: 'status' must be an int");
        goto fail;
    }
    status = PyLong_AsLong(status_o); /* an int (subclass): no __index__ runs */
    if (status == -1 && PyErr_Occurred())
        goto fail;
    if (status < 100 || status > 999) {
        PyErr_Format(PyExc_ValueError, "http.response.start: invalid status %ld", status);
        goto fail;
    }
    if (headers_o == NULL && (headers_o = PyTuple_New(0)) == NULL)
        goto fail;
    /* Iterating a non-sequence runs the app's code: nothing borrowed is held. */
    seq = PySequence_Fast(headers_o, "http.response.start: 'headers' must be iterable");
    if (seq == NULL)
        goto fail;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    /* Borrowed from seq (ours): no Python code runs from here to the end. */
    PyObject **items = PySequence_Fast_ITEMS(seq);
    /* First pass: validate and size. */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = items[i]; /* borrowed */
        if (!(PyTuple_Check(pair) || PyList_Check(pair)) || PySequence_Fast_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError,
                            "http.response.start: each header must be a [name, value] pair");
            goto fail;
        }
        PyObject *name = PySequence_Fast_GET_ITEM(pair, 0);  /* borrowed */
        PyObject *value = PySequence_Fast_GET_ITEM(pair, 1); /* borrowed */
        if (check_bytes(name, "name") < 0 || check_bytes(value, "value") < 0)
            goto fail;
        size += (size_t)PyBytes_GET_SIZE(name) + (size_t)PyBytes_GET_SIZE(value) + 4;
    }
    ev = bl_event_new(BL_EV_RESPONSE, self->ex, size);
    if (ev == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    ev->status = (uint16_t)status;
    char *out = ev->data;
    /* Second pass: serialize (pairs, names and values borrowed, checked above). */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = items[i];
        const char *name = PyBytes_AS_STRING(PySequence_Fast_GET_ITEM(pair, 0));
        Py_ssize_t nlen = PyBytes_GET_SIZE(PySequence_Fast_GET_ITEM(pair, 0));
        const char *value = PyBytes_AS_STRING(PySequence_Fast_GET_ITEM(pair, 1));
        Py_ssize_t vlen = PyBytes_GET_SIZE(PySequence_Fast_GET_ITEM(pair, 1));
        if (nlen == 0)
            goto bad_header;
        for (Py_ssize_t j = 0; j < nlen; j++)
            if (!bl_token_char((unsigned char)name[j]))
                goto bad_header;
        for (Py_ssize_t j = 0; j < vlen; j++)
            if (value[j] == '\r' || value[j] == '\n' || value[j] == '\0')
                goto bad_header;
        int keep = bl_response_scan_header(&scan, name, (size_t)nlen, value, (size_t)vlen);
        if (keep < 0)
            goto bad_framing;
        if (keep == 0)
            continue;
        memcpy(out, name, (size_t)nlen);
        out += nlen;
        *out++ = ':';
        *out++ = ' ';
        memcpy(out, value, (size_t)vlen);
        out += vlen;
        *out++ = '\r';
        *out++ = '\n';
    }
    /* websocket.accept reads its headers here with status 101 (py_ws.c); that
     * 101 is built apart, so only its headers are checked (status 0). */
    bool accept_probe = self->ex->kind == BL_KIND_WEBSOCKET && status == 101;
    if (bl_response_scan_end(&scan, accept_probe ? 0 : (int)status) < 0)
        goto bad_framing;
    ev->len = (size_t)(out - ev->data); /* less any repeated Content-Length */
    ev->flags = scan.flags;
    ev->aux = scan.content_length;
    Py_DECREF(seq);
    Py_DECREF(headers_o);
    Py_DECREF(status_o);
    return ev;
bad_framing:
    /* The client gets a 500 when the app lets this propagate; the app learns
     * why (uvicorn raises here too). Never an ambiguous response. */
    PyErr_Format(PyExc_ValueError, "http.response.start: %s: response refused", scan.error);
    goto fail;
bad_header:
    PyErr_SetString(PyExc_ValueError, "http.response.start: invalid header name or value");
fail:
    if (ev != NULL)
        bl_event_free(ev);
    Py_XDECREF(seq);
    Py_XDECREF(headers_o);
    Py_XDECREF(status_o);
    return NULL;
}

int bl_py_start_response(ExchangeObject *self, PyObject *msg)
{
    bl_event_t *ev = bl_py_start_event(self, msg);
    if (ev == NULL)
        return -1;
    if (self->started) {
        /* The headers iterable's code sent a start itself (re-entering). */
        bl_event_free(ev);
        PyErr_SetString(PyExc_RuntimeError, "http.response.start sent twice");
        return -1;
    }
    self->start = ev;
    self->started = true;
    return 0;
}

/* Joins the held start message with the first body into one RESPONSE event. */
static bl_event_t *response_event(ExchangeObject *self, const char *body, size_t len)
{
    bl_event_t *start = self->start;
    bl_event_t *ev = bl_event_new(BL_EV_RESPONSE, self->ex, start->len + len);
    if (ev == NULL)
        return NULL;
    memcpy(ev->data, start->data, start->len);
    if (len > 0)
        memcpy(ev->data + start->len, body, len);
    ev->len = start->len;
    ev->len2 = len;
    ev->status = start->status;
    ev->flags = start->flags;
    ev->aux = start->aux;
    bl_event_free(start);
    self->start = NULL;
    return ev;
}

PyObject *bl_py_send_body(ExchangeObject *self, PyObject *msg)
{
    /* Strong references: more_body's __bool__ may run the app's code, which
     * may drop the body from the message. */
    PyObject *body_o = bl_py_dict_get(msg, bl_str.body);
    PyObject *more_o = PyErr_Occurred() ? NULL : bl_py_dict_get(msg, bl_str.more_body);
    Py_buffer view = {0};
    bl_event_t *ev;
    int more = 0;

    if (PyErr_Occurred())
        goto fail;
    if (!self->started) {
        PyErr_SetString(PyExc_RuntimeError, "http.response.body sent before http.response.start");
        goto fail;
    }
    if (more_o != NULL && (more = PyObject_IsTrue(more_o)) < 0)
        goto fail;
    if (self->complete || self->disconnected) {
        /* __bool__ ran the app's code, which may have sent the last body. */
        PyErr_SetString(bl_py.disconnected, self->disconnected
                                                ? "the client disconnected"
                                                : "the response is already complete");
        goto fail;
    }
    if (body_o != NULL && PyObject_GetBuffer(body_o, &view, PyBUF_SIMPLE) < 0)
        goto fail;
    const char *data = view.buf ? view.buf : "";
    size_t len = (size_t)view.len;
    if (self->start != NULL) {
        ev = response_event(self, data, len);
    } else {
        ev = bl_event_new(BL_EV_SEND_BODY, self->ex, len);
        if (ev != NULL && len > 0)
            memcpy(ev->data, data, len);
    }
    if (body_o != NULL)
        PyBuffer_Release(&view);
    Py_XDECREF(more_o);
    Py_XDECREF(body_o);
    if (ev == NULL)
        return PyErr_NoMemory();
    if (more)
        ev->flags |= BL_EVF_MORE;
    else
        self->complete = true;
    if (!more) {
        atomic_fetch_add(&self->ex->unsent, len);
        bl_bridge_post_down(ev);
        wake_receivers(self, true); /* a receive() now returns http.disconnect */
        return Py_NewRef(bl_py.ready_none);
    }
    return bl_py_post_paced(self, ev, len);
fail:
    Py_XDECREF(more_o);
    Py_XDECREF(body_o);
    return NULL;
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
    if ((fut = bl_future_new()) == NULL || PyList_Append(self->send_waiters, fut) < 0) {
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
        bl_future_resolve(&fut, value, exception); /* clears fut */
    }
    Py_DECREF(list);
}

PyObject *bl_py_post_paced(ExchangeObject *self, bl_event_t *ev, size_t len)
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
    PyObject *type;
    if (!PyDict_Check(msg))
        return PyErr_Format(PyExc_TypeError, "send() takes a dict, not %.50s",
                            Py_TYPE(msg)->tp_name);
    if (self->ex->kind == BL_KIND_WEBSOCKET)
        return bl_ws_send(self, msg);
    if (self->disconnected || self->complete) {
        PyErr_SetString(bl_py.disconnected, self->disconnected
                                                ? "the client disconnected"
                                                : "the response is already complete");
        return NULL;
    }
    /* Borrowed: the comparisons run no Python code; not used after a send. */
    type = PyDict_GetItemWithError(msg, bl_str.type);
    if (type == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_KeyError, "type");
        return NULL;
    }
    if (PyUnicode_Check(type) && PyUnicode_Compare(type, bl_str.http_response_start) == 0) {
        if (self->started)
            return PyErr_Format(PyExc_RuntimeError, "http.response.start sent twice");
        if (bl_py_start_response(self, msg) < 0)
            return NULL;
        return Py_NewRef(bl_py.ready_none);
    }
    if (PyUnicode_Check(type) && PyUnicode_Compare(type, bl_str.http_response_body) == 0)
        return bl_py_send_body(self, msg);
    if (PyErr_Occurred())
        return NULL;
    return PyErr_Format(PyExc_RuntimeError, "unexpected ASGI message type %R for an http scope",
                        type);
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
    if (self->start != NULL) {
        /* Started but no body: the head goes out and the I/O thread cuts it short. */
        bl_event_t *ev = response_event(self, "", 0);
        if (ev != NULL) {
            ev->flags |= BL_EVF_MORE;
            bl_bridge_post_down(ev);
        }
    }
    if ((!self->complete || self->ex->kind == BL_KIND_WEBSOCKET) && !self->disconnected)
        bl_py_post_simple(self->ex, BL_EV_FINISH, failed ? BL_EVF_ERROR : 0);
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
    wake_receivers(self, true);
    Py_DECREF(self);
    Py_RETURN_NONE;
}

/* ---- events from the I/O thread ------------------------------------------ */

void bl_http_on_request(bl_event_t *ev)
{
    bl_exchange_t *ex = ev->ex;
    ExchangeObject *self = NULL;
    PyObject *scope = NULL, *r = NULL, *receive = NULL, *send = NULL;

    self = PyObject_GC_New(ExchangeObject, &bl_exchange_type);
    if (self == NULL)
        goto error;
    memset((char *)self + sizeof(PyObject), 0, sizeof(*self) - sizeof(PyObject));
    bl_exchange_ref(ex);
    self->ex = ex;
    PyObject_GC_Track(self);
    /* The REQUEST event is the first body chunk. Events kept inside the
     * exchange must not hold a reference to it (a cycle). */
    ev->next = NULL;
    ev->ex = NULL;
    bl_exchange_unref(ex); /* the event's reference; self holds one */
    if (ex->kind == BL_KIND_HTTP)
        ex->pending = ex->pending_tail = ev;
    else
        bl_event_free(ev); /* a WebSocket's messages come later */
    ev = NULL;
    if ((scope = build_scope(ex)) == NULL)
        goto error;
    if (ex->kind == BL_KIND_WEBSOCKET) {
        /* The scope has everything from the head, and the I/O thread let go of
         * it when it posted the request: a long-lived socket need not keep it. */
        bl_head_free(ex->head);
        ex->head = NULL;
    }
    self->running = true;
    ex->py = Py_NewRef(self); /* dropped by finish() */
    receive = bl_channel_new(self, false);
    send = bl_channel_new(self, true);
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
        bl_py_post_simple(self->ex, BL_EV_FINISH, BL_EVF_ERROR);
        release_running(self);
        Py_DECREF(self);
    }
    Py_XDECREF(scope);
}

void bl_http_on_event(bl_event_t *ev)
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
        wake_receivers(self, false);
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
        wake_receivers(self, true);
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

PyTypeObject bl_channel_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_bayleaf.Channel",
    .tp_basicsize = sizeof(ChannelObject),
    .tp_dealloc = (destructor)channel_dealloc,
    .tp_vectorcall_offset = offsetof(ChannelObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_traverse = (traverseproc)channel_traverse,
    .tp_getset = channel_getset,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
};

PyObject *bl_channel_new(ExchangeObject *ex, bool send)
{
    ChannelObject *ch = PyObject_GC_New(ChannelObject, &bl_channel_type);
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

PyTypeObject bl_exchange_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_bayleaf.Exchange",
    .tp_basicsize = sizeof(ExchangeObject),
    .tp_dealloc = (destructor)exchange_dealloc,
    .tp_traverse = (traverseproc)exchange_traverse,
    .tp_clear = (inquiry)exchange_clear,
    .tp_methods = exchange_methods,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
};
