/* ASGI HTTP on the Python thread: the scope, http.request and http.disconnect
 * for receive(), http.response.start and http.response.body for send(). The
 * response messages serve WebSocket's denial response too (py_ws.c). */
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

size_t bl_asgi_http_unquote(const char *s, size_t len, char *buf)
{
    size_t n = 0;
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
    return n;
}

/* Percent-decodes the path, then decodes UTF-8 (invalid bytes become U+FFFD). */
static PyObject *decode_path(const char *s, size_t len)
{
    char stack[512] = {0};
    char *buf = len <= sizeof(stack) ? stack : PyMem_Malloc(len);
    if (buf == NULL)
        return PyErr_NoMemory();
    size_t n = bl_asgi_http_unquote(s, len, buf);
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

PyObject *bl_asgi_http_scope_new(const bl_exchange_t *ex)
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
    bl_pyex_pending_pop(self); /* ev */
    if (!(ev->flags & BL_EVF_MORE))
        self->body_done = true;
    size_t readahead = bl_event_readahead(ev);
    if (readahead > 0 && !self->disconnected) {
        /* The event itself tells the I/O thread the memory it counted for it
         * is free: an allocation failing here would leave reading paused for
         * ever. */
        bl_pyex_post_consumed(ex, ev, readahead);
        return d;
    }
    bl_event_free(ev);
    return d;
}

static bool receive_ready(const ExchangeObject *self)
{
    return self->ex->pending != NULL || self->disconnected || self->complete || !self->running;
}

static PyObject *receive_take(ExchangeObject *self, PyObject *task)
{
    (void)task;
    if (self->ex->pending != NULL)
        return message_next_body(self);
    if (self->disconnected || self->complete || !self->running) {
        self->disconnect_delivered = true;
        return message_disconnect();
    }
    return NULL;
}

/* A client that sent Expect: 100-continue hears it once the app asks for the
 * body it does not have yet. */
static PyObject *receive_begin(ExchangeObject *self)
{
    if (!receive_ready(self) && !self->body_done && self->ex->head->expect_continue &&
        !self->continue_asked) {
        self->continue_asked = true;
        bl_pyex_post_simple(self->ex, BL_EV_CONTINUE, 0);
    }
    return NULL; /* HTTP needs no task */
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

/* An http.response.start message: checked by start_check, then written out
 * by start_serialise. */
typedef struct {
    PyObject *status_o;      /* msg["status"], a reference */
    PyObject *headers_o;     /* msg["headers"], or (), a reference */
    PyObject *seq;           /* headers_o as a list or tuple, a reference */
    long status;             /* 100..999 */
    size_t size;             /* bytes of the header lines kept */
    bl_response_scan_t scan; /* the framing the headers ask for */
} start_msg_t;

static void start_msg_release(start_msg_t *m)
{
    Py_XDECREF(m->seq);
    Py_XDECREF(m->headers_o);
    Py_XDECREF(m->status_o);
}

static bool header_name_valid(const char *name, Py_ssize_t nlen)
{
    if (nlen == 0)
        return false;
    for (Py_ssize_t j = 0; j < nlen; j++)
        if (!bl_token_char((unsigned char)name[j]))
            return false;
    return true;
}

static bool header_value_valid(const char *value, Py_ssize_t vlen)
{
    for (Py_ssize_t j = 0; j < vlen; j++)
        if (value[j] == '\r' || value[j] == '\n' || value[j] == '\0')
            return false;
    return true;
}

bool bl_asgi_http_header_valid(const char *name, size_t nlen, const char *value, size_t vlen)
{
    return header_name_valid(name, (Py_ssize_t)nlen) && header_value_valid(value, (Py_ssize_t)vlen);
}

/* Checks msg's status and headers: types first, then each name and value, then
 * the framing (bl_response_scan_header refuses what would make the response
 * ambiguous). 0, or -1 with an error set; m holds its references either way. */
static int start_check(const ExchangeObject *self, start_msg_t *m, PyObject *msg)
{
    m->status_o = bl_py_dict_get(msg, bl_str.status);
    m->headers_o = PyErr_Occurred() ? NULL : bl_py_dict_get(msg, bl_str.headers);
    if (PyErr_Occurred())
        return -1;
    if (m->status_o == NULL || !PyLong_Check(m->status_o)) {
        PyErr_SetString(PyExc_TypeError, "http.response.start: 'status' must be an int");
        return -1;
    }
    m->status = PyLong_AsLong(m->status_o); /* an int (subclass): no __index__ runs */
    if (m->status == -1 && PyErr_Occurred())
        return -1;
    if (m->status < 100 || m->status > 999) {
        PyErr_Format(PyExc_ValueError, "http.response.start: invalid status %ld", m->status);
        return -1;
    }
    if (m->headers_o == NULL && (m->headers_o = PyTuple_New(0)) == NULL)
        return -1;
    /* Iterating a non-sequence runs the app's code: nothing borrowed is held. */
    m->seq = PySequence_Fast(m->headers_o, "http.response.start: 'headers' must be iterable");
    if (m->seq == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(m->seq);
    /* Borrowed from m->seq (ours): no Python code runs from here on. */
    PyObject **items = PySequence_Fast_ITEMS(m->seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = items[i]; /* borrowed */
        if (!(PyTuple_Check(pair) || PyList_Check(pair)) || PySequence_Fast_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError,
                            "http.response.start: each header must be a [name, value] pair");
            return -1;
        }
        if (check_bytes(PySequence_Fast_GET_ITEM(pair, 0), "name") < 0 ||
            check_bytes(PySequence_Fast_GET_ITEM(pair, 1), "value") < 0)
            return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name_o = PySequence_Fast_GET_ITEM(items[i], 0);  /* borrowed, bytes */
        PyObject *value_o = PySequence_Fast_GET_ITEM(items[i], 1); /* borrowed, bytes */
        const char *name = PyBytes_AS_STRING(name_o), *value = PyBytes_AS_STRING(value_o);
        Py_ssize_t nlen = PyBytes_GET_SIZE(name_o), vlen = PyBytes_GET_SIZE(value_o);
        if (!header_name_valid(name, nlen) || !header_value_valid(value, vlen)) {
            PyErr_SetString(PyExc_ValueError, "http.response.start: invalid header name or value");
            return -1;
        }
        int keep = bl_response_scan_header(&m->scan, name, (size_t)nlen, value, (size_t)vlen);
        if (keep < 0)
            goto bad_framing;
        if (keep > 0)
            m->size += (size_t)nlen + (size_t)vlen + 4;
    }
    /* websocket.accept reads its headers here with status 101 (py_ws.c); that
     * 101 is built apart, so only its headers are checked (status 0). */
    bool accept_probe = self->ex->kind == BL_KIND_WEBSOCKET && m->status == 101;
    if (bl_response_scan_end(&m->scan, accept_probe ? 0 : (int)m->status) < 0)
        goto bad_framing;
    return 0;
bad_framing:
    /* The client gets a 500 when the app lets this propagate; the app learns
     * why (uvicorn raises here too). Never an ambiguous response. */
    PyErr_Format(PyExc_ValueError, "http.response.start: %s: response refused", m->scan.error);
    return -1;
}

/* The checked headers as "name: value\r\n" lines in a new RESPONSE event,
 * less any line the framing scan drops (a repeated Content-Length); NULL with
 * an error set. Runs no Python code: m->seq's items stay alive. */
static bl_event_t *start_serialise(ExchangeObject *self, const start_msg_t *m)
{
    bl_response_scan_t scan = {0}; /* run again: it says which lines to keep */
    bl_event_t *ev = bl_event_new(BL_EV_RESPONSE, self->ex, m->size);
    if (ev == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    char *out = ev->data;
    PyObject **items = PySequence_Fast_ITEMS(m->seq); /* borrowed, checked */
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(m->seq); i++) {
        PyObject *name_o = PySequence_Fast_GET_ITEM(items[i], 0);  /* borrowed */
        PyObject *value_o = PySequence_Fast_GET_ITEM(items[i], 1); /* borrowed */
        const char *name = PyBytes_AS_STRING(name_o), *value = PyBytes_AS_STRING(value_o);
        size_t nlen = (size_t)PyBytes_GET_SIZE(name_o), vlen = (size_t)PyBytes_GET_SIZE(value_o);
        if (bl_response_scan_header(&scan, name, nlen, value, vlen) <= 0)
            continue; /* dropped (a refusal was raised by start_check) */
        memcpy(out, name, nlen);
        out += nlen;
        *out++ = ':';
        *out++ = ' ';
        memcpy(out, value, vlen);
        out += vlen;
        *out++ = '\r';
        *out++ = '\n';
    }
    ev->status = (uint16_t)m->status;
    ev->len = (size_t)(out - ev->data);
    ev->flags = m->scan.flags;
    ev->aux = m->scan.content_length;
    return ev;
}

bl_event_t *bl_asgi_http_start_event(ExchangeObject *self, PyObject *msg)
{
    start_msg_t m = {0};
    bl_event_t *ev = NULL;
    if (start_check(self, &m, msg) == 0)
        ev = start_serialise(self, &m);
    start_msg_release(&m);
    return ev;
}

int bl_asgi_http_start_response(ExchangeObject *self, PyObject *msg)
{
    bl_event_t *ev = bl_asgi_http_start_event(self, msg);
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

bl_event_t *bl_asgi_http_join_start(bl_event_t *start, const char *body, size_t len)
{
    bl_event_t *ev = bl_event_new(BL_EV_RESPONSE, start->ex, start->len + len);
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
    return ev;
}

/* Joins the held start message with the first body into one RESPONSE event. */
static bl_event_t *response_event(ExchangeObject *self, const char *body, size_t len)
{
    bl_event_t *ev = bl_asgi_http_join_start(self->start, body, len);
    if (ev != NULL)
        self->start = NULL;
    return ev;
}

PyObject *bl_asgi_http_send_body(ExchangeObject *self, PyObject *msg)
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
        bl_pyex_wake_receivers(self, true); /* a receive() now returns http.disconnect */
        bl_pyex_wake_senders(self);
        return Py_NewRef(bl_py.ready_none);
    }
    return bl_pyex_post_paced(self, ev, len);
fail:
    Py_XDECREF(more_o);
    Py_XDECREF(body_o);
    return NULL;
}

void bl_asgi_http_flush_start(ExchangeObject *self)
{
    if (self->start == NULL)
        return;
    bl_event_t *ev = response_event(self, "", 0);
    if (ev != NULL) {
        ev->flags |= BL_EVF_MORE;
        bl_bridge_post_down(ev);
    }
}

static PyObject *send_dispatch(ExchangeObject *self, PyObject *msg)
{
    PyObject *type;
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
        if (bl_asgi_http_start_response(self, msg) < 0)
            return NULL;
        return Py_NewRef(bl_py.ready_none);
    }
    if (PyUnicode_Check(type) && PyUnicode_Compare(type, bl_str.http_response_body) == 0)
        return bl_asgi_http_send_body(self, msg);
    if (PyErr_Occurred())
        return NULL;
    return PyErr_Format(PyExc_RuntimeError, "unexpected ASGI message type %R for an http scope",
                        type);
}

/* Started but no body: the head goes out and the I/O thread cuts it short. An
 * incomplete response ends with FINISH. */
static void app_returned(ExchangeObject *self, bool failed)
{
    bl_asgi_http_flush_start(self);
    if (!self->complete && !self->disconnected)
        bl_pyex_post_simple(self->ex, BL_EV_FINISH, failed ? BL_EVF_ERROR : 0);
}

/* The REQUEST event is the first body chunk. */
static PyObject *scope_open(ExchangeObject *self, bl_event_t *request)
{
    self->ex->pending = self->ex->pending_tail = request;
    return bl_asgi_http_scope_new(self->ex);
}

static const bl_pyex_proto_t http_proto = {
    .open = scope_open,
    .receive_begin = receive_begin,
    .receive_ready = receive_ready,
    .receive_take = receive_take,
    .send = send_dispatch,
    .app_returned = app_returned,
};

void bl_asgi_http_on_request(bl_event_t *ev)
{
    bl_pyex_start(ev, &http_proto);
}
