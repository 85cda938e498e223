/* ASGI WebSocket on the Python thread: the scope's extras, websocket.connect,
 * websocket.receive and websocket.disconnect for receive(), websocket.accept,
 * websocket.send and websocket.close for send(), and the denial response
 * (websocket.http.response.*, written as HTTP's by py_http.c). Not proto/ws.c:
 * that is the socket's session, on the I/O thread. */
#include "py_bridge.h"
#include "py_strings.h"
#include "bayleaf/proto/tokens.h"
#include "bayleaf/proto/ws.h"

#include <string.h>

/* ---- scope ---------------------------------------------------------------- */

/* Appends each comma-separated, trimmed token of one header value to list. */
static int add_tokens(PyObject *list, const char *v, size_t len)
{
    size_t pos = 0, tlen;
    const char *t;
    while (bl_token_next(v, len, &pos, &t, &tlen)) {
        PyObject *o = PyUnicode_DecodeLatin1(t, (Py_ssize_t)tlen, NULL);
        if (o == NULL || PyList_Append(list, o) < 0) {
            Py_XDECREF(o);
            return -1;
        }
        Py_DECREF(o);
    }
    return 0;
}

/* Adds subprotocols and the denial-response extension to the shared scope. */
static int scope_add(PyObject *scope, const bl_exchange_t *ex)
{
    const bl_head_t *h = ex->head;
    PyObject *protocols = PyList_New(0), *extensions = NULL, *empty = NULL, *topics = NULL;
    int rc = -1;
    if (protocols == NULL)
        return -1;
    for (uint32_t i = 0; i < h->nheaders; i++) {
        const bl_header_t *hd = &h->headers[i];
        if (hd->name_len == 22 &&
            memcmp(h->buf + hd->name_off, "sec-websocket-protocol", 22) == 0 &&
            add_tokens(protocols, h->buf + hd->value_off, hd->value_len) < 0)
            goto done;
    }
    /* The denial-response extension (spec 2.3+). */
    if ((extensions = PyDict_New()) == NULL || (empty = PyDict_New()) == NULL ||
        PyDict_SetItem(extensions, bl_str.ws_http_response, empty) < 0)
        goto done;
    /* Topics (py_topics.c): bayleaf.subscribe / bayleaf.unsubscribe. */
    if ((topics = PyDict_New()) == NULL ||
        PyDict_SetItem(extensions, bl_str.topics_ext, topics) < 0)
        goto done;
    if (PyDict_SetItem(scope, bl_str.subprotocols, protocols) < 0 ||
        PyDict_SetItem(scope, bl_str.extensions, extensions) < 0)
        goto done;
    rc = 0;
done:
    Py_XDECREF(topics);
    Py_XDECREF(empty);
    Py_XDECREF(extensions);
    Py_DECREF(protocols);
    return rc;
}

/* ---- receive ------------------------------------------------------------- */

static PyObject *message_of_type(PyObject *type)
{
    PyObject *d = PyDict_New();
    if (d != NULL && PyDict_SetItem(d, bl_str.type, type) < 0)
        Py_CLEAR(d);
    return d;
}

static PyObject *message_disconnect(ExchangeObject *self)
{
    PyObject *d = message_of_type(bl_str.ws_disconnect);
    PyObject *code = PyLong_FromLong(self->close_code ? self->close_code : 1006);
    PyObject *reason =
        self->close_reason ? Py_NewRef(self->close_reason) : PyUnicode_FromString("");
    if (d == NULL || code == NULL || reason == NULL || PyDict_SetItem(d, bl_str.code, code) < 0 ||
        PyDict_SetItem(d, bl_str.reason, reason) < 0)
        Py_CLEAR(d);
    Py_XDECREF(code);
    Py_XDECREF(reason);
    return d;
}

/* Pops the next message event into a websocket.receive dict. */
static PyObject *message_receive(ExchangeObject *self)
{
    bl_exchange_t *ex = self->ex;
    bl_event_t *ev = ex->pending;
    bool binary = (ev->flags & BL_EVF_BINARY) != 0;
    PyObject *d = message_of_type(bl_str.ws_receive);
    PyObject *payload;
    if (d == NULL)
        return NULL;
    if (binary)
        payload = PyBytes_FromStringAndSize(ev->data, (Py_ssize_t)ev->len);
    else /* validated as UTF-8 on the I/O thread */
        payload = PyUnicode_DecodeUTF8(ev->data, (Py_ssize_t)ev->len, "surrogateescape");
    /* Only the key of the frame's kind: Channels tests `"text" in message`. */
    if (payload == NULL || PyDict_SetItem(d, binary ? bl_str.bytes : bl_str.text, payload) < 0) {
        Py_XDECREF(payload);
        Py_DECREF(d);
        return NULL;
    }
    Py_DECREF(payload);
    bl_pyex_pending_pop(self); /* ev */
    if (!self->disconnected) {
        /* Let the I/O thread read more once the app keeps up. */
        bl_pyex_post_consumed(ex, ev, bl_event_readahead(ev));
        return d;
    }
    bl_event_free(ev);
    return d;
}

static bool receive_ready(const ExchangeObject *self)
{
    return self->ws_state == BL_ASGI_WS_CONNECT_UNREAD || self->ex->pending != NULL ||
           self->disconnected || !self->running;
}

static PyObject *receive_take(ExchangeObject *self, PyObject *receiver)
{
    if (self->ws_state == BL_ASGI_WS_CONNECT_UNREAD) {
        self->ws_state = BL_ASGI_WS_DECIDING;
        return message_of_type(bl_str.ws_connect);
    }
    if (self->ex->pending != NULL)
        return message_receive(self);
    if (self->disconnected || !self->running) {
        /* After the app returned, a stray receive() hears the end (1006 if
         * the client did not close). */
        self->disconnect_delivered = true;
        Py_XSETREF(self->disconnect_task, Py_XNewRef(receiver));
        return message_disconnect(self);
    }
    return NULL;
}

/* ---- send ------------------------------------------------------------------ */

/* msg[key] as a new reference; NULL when absent or None (or with an error). */
static PyObject *get(PyObject *msg, PyObject *key)
{
    PyObject *v = bl_py_dict_get(msg, key);
    if (v == Py_None)
        Py_CLEAR(v);
    return v;
}

static PyObject *send_accept(ExchangeObject *self, PyObject *msg)
{
    /* Strong: copying the message and iterating its headers run the app's
     * code, which may drop the subprotocol while subp points into it. */
    PyObject *sub = get(msg, bl_str.subprotocol);
    PyObject *probe = NULL, *status = NULL, *r = NULL;
    bl_event_t *hdrs = NULL, *ev = NULL;
    const char *subp = "";
    Py_ssize_t sublen = 0;
    if (PyErr_Occurred())
        goto done;
    if (sub != NULL) {
        if (!PyUnicode_Check(sub)) {
            PyErr_SetString(PyExc_TypeError, "websocket.accept: 'subprotocol' must be a str");
            goto done;
        }
        if ((subp = PyUnicode_AsUTF8AndSize(sub, &sublen)) == NULL)
            goto done;
        for (Py_ssize_t i = 0; i < sublen; i++) {
            if (subp[i] == '\r' || subp[i] == '\n' || subp[i] == ',') {
                PyErr_SetString(PyExc_ValueError, "websocket.accept: invalid subprotocol");
                goto done;
            }
        }
    }
    /* The header lines come out as for http.response.start (status unused). */
    if ((probe = PyDict_Copy(msg)) == NULL || (status = PyLong_FromLong(101)) == NULL ||
        PyDict_SetItem(probe, bl_str.status, status) < 0)
        goto done;
    if ((hdrs = bl_asgi_http_start_event(self, probe)) == NULL)
        goto done;
    if (self->ws_state != BL_ASGI_WS_CONNECT_UNREAD && self->ws_state != BL_ASGI_WS_DECIDING) {
        /* The copy or the headers iterable ran the app's code, which decided. */
        PyErr_SetString(PyExc_RuntimeError, "websocket.accept after the handshake");
        goto done;
    }
    if ((ev = bl_event_new(BL_EV_WS_ACCEPT, self->ex, hdrs->len + (size_t)sublen)) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(ev->data, hdrs->data, hdrs->len);
    memcpy(ev->data + hdrs->len, subp, (size_t)sublen);
    ev->len = hdrs->len;
    ev->len2 = (size_t)sublen;
    self->ws_state = BL_ASGI_WS_ACCEPTED;
    bl_bridge_post_down(ev);
    r = Py_NewRef(bl_py.ready_none);
done:
    if (hdrs != NULL)
        bl_event_free(hdrs);
    Py_XDECREF(status);
    Py_XDECREF(probe);
    Py_XDECREF(sub);
    return r;
}

static PyObject *send_message(ExchangeObject *self, PyObject *msg)
{
    PyObject *bytes = get(msg, bl_str.bytes);
    PyObject *text = bytes == NULL && !PyErr_Occurred() ? get(msg, bl_str.text) : NULL;
    PyObject *r = NULL;
    const char *data;
    Py_ssize_t len;
    Py_buffer view = {0};
    if (PyErr_Occurred())
        goto done;
    if (bytes != NULL) {
        if (PyObject_GetBuffer(bytes, &view, PyBUF_SIMPLE) < 0)
            goto done;
        data = view.buf;
        len = view.len;
    } else if (text != NULL) {
        if (!PyUnicode_Check(text)) {
            PyErr_SetString(PyExc_TypeError, "websocket.send: 'text' must be a str");
            goto done;
        }
        if ((data = PyUnicode_AsUTF8AndSize(text, &len)) == NULL)
            goto done;
    } else {
        PyErr_SetString(PyExc_ValueError, "websocket.send needs 'bytes' or 'text'");
        goto done;
    }
    bl_event_t *ev = bl_event_new(BL_EV_WS_SEND, self->ex, (size_t)len);
    if (ev != NULL) {
        memcpy(ev->data, data, (size_t)len);
        ev->flags = bytes != NULL ? BL_EVF_BINARY : 0;
    }
    if (bytes != NULL)
        PyBuffer_Release(&view);
    if (ev == NULL)
        PyErr_NoMemory();
    else /* As for HTTP bodies: wait while the client is behind. */
        r = bl_pyex_post_paced(self, ev, (size_t)len);
done:
    Py_XDECREF(text);
    Py_XDECREF(bytes);
    return r;
}

static PyObject *send_close(ExchangeObject *self, PyObject *msg)
{
    /* Strong: a code that is not an int runs its __index__, which may drop
     * the reason while reason points into it. */
    PyObject *code_o = get(msg, bl_str.code);
    PyObject *reason_o = PyErr_Occurred() ? NULL : get(msg, bl_str.reason);
    PyObject *r = NULL;
    long code = 1000;
    const char *reason = "";
    Py_ssize_t rlen = 0;
    if (PyErr_Occurred())
        goto done;
    if (code_o != NULL && ((code = PyLong_AsLong(code_o)) == -1 && PyErr_Occurred()))
        goto done;
    if (self->ws_state == BL_ASGI_WS_CLOSED) { /* __index__ ran the app's code, which closed */
        PyErr_SetString(bl_py.disconnected, "the WebSocket is closed");
        goto done;
    }
    if (code < 0 || code > 65535 || !bl_ws_close_code_sendable((uint16_t)code)) {
        PyErr_Format(PyExc_ValueError,
                     "websocket.close: code %ld cannot be sent (use 1000-1003, "
                     "1007-1014 or 3000-4999)",
                     code);
        goto done;
    }
    if (reason_o != NULL) {
        if (!PyUnicode_Check(reason_o)) {
            PyErr_SetString(PyExc_TypeError, "websocket.close: 'reason' must be a str");
            goto done;
        }
        if ((reason = PyUnicode_AsUTF8AndSize(reason_o, &rlen)) == NULL)
            goto done;
        if (rlen > 123) {
            PyErr_SetString(PyExc_ValueError,
                            "websocket.close: the reason is over 123 bytes of UTF-8");
            goto done;
        }
    }
    bl_event_t *ev = bl_event_new(BL_EV_WS_CLOSE, self->ex, (size_t)rlen);
    if (ev == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(ev->data, reason, (size_t)rlen);
    ev->status = (uint16_t)code;
    self->ws_state = BL_ASGI_WS_CLOSED;
    bl_bridge_post_down(ev);
    r = Py_NewRef(bl_py.ready_none);
done:
    Py_XDECREF(reason_o);
    Py_XDECREF(code_o);
    return r;
}

static bool is(PyObject *type, PyObject *name)
{
    return PyUnicode_Compare(type, name) == 0;
}

static PyObject *send_dispatch(ExchangeObject *self, PyObject *msg)
{
    /* Borrowed: the comparisons below run no Python code, and it is not used
     * after a send_*() or current_task() call. */
    PyObject *type = PyDict_GetItemWithError(msg, bl_str.type);
    if (type == NULL || !PyUnicode_Check(type)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "an ASGI message needs a str 'type'");
        return NULL;
    }
    if (self->disconnected) {
        /* The client is gone (spec 2.4: send raises). But when another task
         * holds the disconnect, or is waiting for it, the send lost a race
         * with the close: Channels dispatches group messages in one task and
         * hands receive() results from another, and raising here would end
         * the consumer before its disconnect() (group_discard) runs. Those
         * sends are dropped; that task ends the app. */
        PyObject *task = bl_py_current_task();
        bool elsewhere = (self->disconnect_task != NULL && self->disconnect_task != task) ||
                         bl_pyex_receiving_elsewhere(self, task);
        Py_XDECREF(task);
        /* A receive-driven app that has not been handed the disconnect yet
         * will be by its next receive(); a push-only app hears it here. */
        if (elsewhere || (self->receive_driven && !self->disconnect_delivered))
            return Py_NewRef(bl_py.ready_none);
        PyErr_SetString(bl_py.disconnected, "the WebSocket is closed");
        return NULL;
    }
    bool deciding =
        self->ws_state == BL_ASGI_WS_CONNECT_UNREAD || self->ws_state == BL_ASGI_WS_DECIDING;
    if (is(type, bl_str.ws_send)) {
        if (self->ws_state != BL_ASGI_WS_ACCEPTED) {
            if (self->ws_state == BL_ASGI_WS_CLOSED) {
                PyErr_SetString(bl_py.disconnected, "the WebSocket is closed");
                return NULL;
            }
            return PyErr_Format(PyExc_RuntimeError, "websocket.send before websocket.accept");
        }
        return send_message(self, msg);
    }
    bool subscribe = is(type, bl_str.topics_subscribe);
    if (subscribe || is(type, bl_str.topics_unsubscribe)) {
        if (self->ws_state != BL_ASGI_WS_ACCEPTED) {
            if (self->ws_state == BL_ASGI_WS_CLOSED) {
                PyErr_SetString(bl_py.disconnected, "the WebSocket is closed");
                return NULL;
            }
            return PyErr_Format(PyExc_RuntimeError, "%U before websocket.accept", type);
        }
        return bl_asgi_topics_send(self, msg, subscribe);
    }
    if (is(type, bl_str.ws_accept)) {
        if (!deciding)
            return PyErr_Format(PyExc_RuntimeError, "websocket.accept after the handshake");
        return send_accept(self, msg);
    }
    if (is(type, bl_str.ws_close)) {
        if (self->ws_state == BL_ASGI_WS_CLOSED) {
            PyErr_SetString(bl_py.disconnected, "the WebSocket is closed");
            return NULL;
        }
        return send_close(self, msg);
    }
    if (is(type, bl_str.ws_http_response_start)) {
        if (!deciding || self->started)
            return PyErr_Format(PyExc_RuntimeError,
                                "websocket.http.response.start after the handshake");
        if (bl_asgi_http_start_response(self, msg) < 0)
            return NULL;
        return Py_NewRef(bl_py.ready_none);
    }
    if (is(type, bl_str.ws_http_response_body)) {
        if (!self->started || self->complete)
            return PyErr_Format(PyExc_RuntimeError,
                                "websocket.http.response.body without a response start");
        PyObject *r = bl_asgi_http_send_body(self, msg);
        if (self->complete)
            self->ws_state = BL_ASGI_WS_CLOSED;
        return r;
    }
    return PyErr_Format(PyExc_RuntimeError, "unexpected ASGI message type %R for a websocket scope",
                        type);
}

/* receive() was called: the task is who holds the disconnect, or waits for it. */
static PyObject *receive_begin(ExchangeObject *self)
{
    if (self->ws_state != BL_ASGI_WS_CONNECT_UNREAD)
        self->receive_driven = true;
    return bl_py_current_task();
}

/* A denial response started without a body goes out cut short; the end of a
 * WebSocket is always told (FINISH), unless the client left first. */
static void app_returned(ExchangeObject *self, bool failed)
{
    bl_asgi_http_flush_start(self);
    if (!self->disconnected)
        bl_pyex_post_simple(self->ex, BL_EV_FINISH, failed ? BL_EVF_ERROR : 0);
}

/* The messages come later: the REQUEST event carries none. The scope has
 * everything from the head, and the I/O thread let go of it when it posted
 * the request: a long-lived socket need not keep it. */
static PyObject *scope_open(ExchangeObject *self, bl_event_t *request)
{
    bl_exchange_t *ex = self->ex;
    bl_event_free(request);
    PyObject *scope = bl_asgi_http_scope_new(ex);
    if (scope != NULL && scope_add(scope, ex) < 0)
        Py_CLEAR(scope);
    if (scope == NULL)
        return NULL;
    bl_head_free(ex->head);
    ex->head = NULL;
    return scope;
}

static const bl_pyex_proto_t ws_proto = {
    .open = scope_open,
    .receive_begin = receive_begin,
    .receive_ready = receive_ready,
    .receive_take = receive_take,
    .send = send_dispatch,
    .app_returned = app_returned,
};

void bl_asgi_ws_on_request(bl_event_t *ev)
{
    bl_pyex_start(ev, &ws_proto);
}
