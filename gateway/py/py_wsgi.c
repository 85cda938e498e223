/* WSGI (PEP 3333) on a pool of Python threads. Each pool thread takes an HTTP
 * REQUEST straight from the bridge (bl_wsgi_take_request, no GIL held while
 * it waits), builds the environ, calls the app, iterates its response and
 * posts the chunks down as the ASGI path does; no asyncio anywhere. The
 * scope's later events (body, disconnect, writable) reach the same thread
 * through bl_wsgi_take. */
#include "py_bridge.h"
#include "bayleaf/common/log.h"
#include "bayleaf/proto/http_response.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the process's WSGI state (read and written under the GIL) ---------- */

#define WSGI_KEYS(X)                                                                               \
    X(request_method, "REQUEST_METHOD")                                                            \
    X(script_name, "SCRIPT_NAME")                                                                  \
    X(path_info, "PATH_INFO")                                                                      \
    X(query_string, "QUERY_STRING")                                                                \
    X(content_type, "CONTENT_TYPE")                                                                \
    X(content_length, "CONTENT_LENGTH")                                                            \
    X(server_name, "SERVER_NAME")                                                                  \
    X(server_port, "SERVER_PORT")                                                                  \
    X(server_protocol, "SERVER_PROTOCOL")                                                          \
    X(remote_addr, "REMOTE_ADDR")                                                                  \
    X(remote_port, "REMOTE_PORT")                                                                  \
    X(url_scheme, "wsgi.url_scheme")                                                               \
    X(input, "wsgi.input")                                                                         \
    X(http10, "HTTP/1.0")                                                                          \
    X(http11, "HTTP/1.1")                                                                          \
    X(http, "http")                                                                                \
    X(https, "https")                                                                              \
    X(localhost, "localhost")                                                                      \
    X(empty, "")                                                                                   \
    X(close, "close")                                                                              \
    X(fileno, "fileno")                                                                            \
    X(tell, "tell")                                                                                \
    X(filelike, "filelike")                                                                        \
    X(blksize, "blksize")

#define WSGI_KEY_FIELD(name, text) PyObject *name;
static struct {
    WSGI_KEYS(WSGI_KEY_FIELD)
} K;
#undef WSGI_KEY_FIELD

static struct {
    PyObject *app;          /* the WSGI callable */
    PyObject *base;         /* the environ's constant part, copied per request */
    PyObject *file_wrapper; /* the wsgi.file_wrapper type */
    PyObject *log_error;    /* log_error(message, exc): the traceback into the log */
    PyObject *root_path;    /* --root-path, UTF-8 bytes */
} W;

/* A response read from a real file goes down in blocks this big. */
#define WSGI_FILE_BLOCK (256u * 1024u)

/* ---- one request ---------------------------------------------------------- */

typedef struct {
    PyObject_HEAD bl_exchange_t *ex; /* a reference until the request ends */
    vectorcallfunc vectorcall;       /* the object is start_response */
    /* request body: events not yet read, each holding a reference to ex */
    bl_event_t *body, *body_tail;
    size_t body_off; /* bytes of `body` already read */
    bool body_done;  /* the last body event has come */
    bool continue_asked;
    bool disconnected;
    bool file_sent; /* FILE_SENT came: the I/O thread wrote the SEND_FILE */
    bool over;      /* the request is over: start_response and write raise */
    /* response */
    bl_event_t *start; /* start_response's head, held until the first body */
    bool started;      /* start_response was called */
    bool head_sent;    /* the RESPONSE event went down */
    bool complete;     /* the last body went down */
    bool has_clen;
    bool one_chunk; /* a list or tuple of one item: its only item is the body */
    uint64_t clen, sent;
} WsgiRequest;

typedef struct {
    PyObject_HEAD WsgiRequest *req; /* a reference */
} WsgiInput;

static PyTypeObject request_type, input_type;

/* Moves the scope's queued events into the request: body chunks to read,
 * the disconnect; a WRITABLE only wakes the waiter. wait: for one at least. */
static void pump(WsgiRequest *r, bool wait)
{
    bl_event_t *list;
    if (wait) {
        Py_BEGIN_ALLOW_THREADS list = bl_wsgi_take(r->ex, true);
        Py_END_ALLOW_THREADS
    } else {
        list = bl_wsgi_take(r->ex, false);
    }
    while (list != NULL) {
        bl_event_t *ev = list;
        list = ev->next;
        ev->next = NULL;
        if (ev->type == BL_EV_BODY) {
            if (!(ev->flags & BL_EVF_MORE))
                r->body_done = true;
            if (r->body_tail != NULL)
                r->body_tail->next = ev;
            else
                r->body = ev;
            r->body_tail = ev;
            continue;
        }
        if (ev->type == BL_EV_DISCONNECT)
            r->disconnected = true;
        else if (ev->type == BL_EV_FILE_SENT)
            r->file_sent = true;
        bl_event_free(ev);
    }
}

/* ---- wsgi.input --------------------------------------------------------- */

/* The first body event was read whole: the I/O thread may read more. */
static void body_pop(WsgiRequest *r)
{
    bl_event_t *ev = r->body;
    r->body = ev->next;
    if (r->body == NULL)
        r->body_tail = NULL;
    r->body_off = 0;
    size_t readahead = bl_event_readahead(ev);
    if (readahead == 0 || r->disconnected) {
        bl_event_free(ev);
        return;
    }
    ev->next = NULL;
    ev->type = BL_EV_CONSUMED; /* no allocation: reading cannot stay paused */
    ev->flags = 0;
    ev->aux = readahead;
    bl_bridge_post_down_now(ev);
}

/* Until some body bytes are at hand, or the body ended: 0; -1 with an error
 * when the client left. */
static int body_wait(WsgiRequest *r)
{
    for (;;) {
        while (r->body != NULL && r->body_off == r->body->len)
            body_pop(r);
        if (r->body != NULL || r->body_done)
            return 0;
        if (r->disconnected) {
            PyObject *exc = bl_py_disconnected_error("the client disconnected");
            if (exc != NULL) {
                PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
                Py_DECREF(exc);
            }
            return -1;
        }
        if (!r->continue_asked && r->ex->head->expect_continue) {
            /* The client waits for our 100 before it sends the body. */
            r->continue_asked = true;
            bl_event_t *ev = bl_event_new(BL_EV_CONTINUE, r->ex, 0);
            if (ev == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            bl_bridge_post_down_now(ev);
        }
        pump(r, true);
    }
}

/* Reads up to `want` bytes (SIZE_MAX: all), or up to a newline when `line`. */
static PyObject *input_take(WsgiRequest *r, size_t want, bool line)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    PyObject *out = NULL;
    while (len < want) {
        if (body_wait(r) < 0)
            goto done;
        if (r->body == NULL)
            break; /* the end of the body */
        const char *at = r->body->data + r->body_off;
        size_t n = r->body->len - r->body_off;
        if (n > want - len)
            n = want - len;
        if (line) {
            const char *nl = memchr(at, '\n', n);
            if (nl != NULL)
                n = (size_t)(nl - at) + 1;
        }
        if (len == 0 && (n == want || (line && at[n - 1] == '\n'))) {
            /* The common case, one read from one chunk: no copy in between. */
            r->body_off += n;
            return PyBytes_FromStringAndSize(at, (Py_ssize_t)n);
        }
        if (len + n > cap) {
            size_t ncap = cap ? cap * 2 : 16384;
            while (ncap < len + n)
                ncap *= 2;
            char *nb = PyMem_Realloc(buf, ncap);
            if (nb == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            buf = nb;
            cap = ncap;
        }
        memcpy(buf + len, at, n);
        len += n;
        r->body_off += n;
        if (line && buf[len - 1] == '\n')
            break;
    }
    out = PyBytes_FromStringAndSize(buf ? buf : "", (Py_ssize_t)len);
done:
    PyMem_Free(buf);
    return out;
}

/* read(size=-1), readline(size=-1): a size of None or below 0 is "all". */
static int size_arg(PyObject *const *args, Py_ssize_t nargs, size_t *want)
{
    *want = SIZE_MAX;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "expected at most one argument");
        return -1;
    }
    if (nargs == 0 || args[0] == Py_None)
        return 0;
    Py_ssize_t n = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
    if (n == -1 && PyErr_Occurred())
        return -1;
    if (n >= 0)
        *want = (size_t)n;
    return 0;
}

static WsgiRequest *input_request(WsgiInput *self)
{
    if (self->req->over) {
        PyErr_SetString(PyExc_ValueError, "wsgi.input read after the request ended");
        return NULL;
    }
    return self->req;
}

static PyObject *input_read(WsgiInput *self, PyObject *const *args, Py_ssize_t nargs)
{
    size_t want;
    WsgiRequest *r = input_request(self);
    if (r == NULL || size_arg(args, nargs, &want) < 0)
        return NULL;
    if (want == 0)
        return PyBytes_FromStringAndSize("", 0);
    return input_take(r, want, false);
}

static PyObject *input_readline(WsgiInput *self, PyObject *const *args, Py_ssize_t nargs)
{
    size_t want;
    WsgiRequest *r = input_request(self);
    if (r == NULL || size_arg(args, nargs, &want) < 0)
        return NULL;
    if (want == 0)
        return PyBytes_FromStringAndSize("", 0);
    return input_take(r, want, true);
}

static PyObject *input_readlines(WsgiInput *self, PyObject *const *args, Py_ssize_t nargs)
{
    size_t hint, total = 0;
    WsgiRequest *r = input_request(self);
    if (r == NULL || size_arg(args, nargs, &hint) < 0)
        return NULL;
    PyObject *lines = PyList_New(0);
    while (lines != NULL) {
        PyObject *line = input_take(r, SIZE_MAX, true);
        if (line == NULL) {
            Py_CLEAR(lines);
            break;
        }
        size_t n = (size_t)PyBytes_GET_SIZE(line);
        int err = n > 0 ? PyList_Append(lines, line) : 0;
        Py_DECREF(line);
        if (err < 0)
            Py_CLEAR(lines);
        total += n;
        if (n == 0 || total >= hint)
            break;
    }
    return lines;
}

static PyObject *input_iter(PyObject *self)
{
    return Py_NewRef(self);
}

static PyObject *input_next(WsgiInput *self)
{
    WsgiRequest *r = input_request(self);
    PyObject *line = r != NULL ? input_take(r, SIZE_MAX, true) : NULL;
    if (line != NULL && PyBytes_GET_SIZE(line) == 0)
        Py_CLEAR(line); /* the end: StopIteration */
    return line;
}

static void input_dealloc(WsgiInput *self)
{
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->req);
    PyObject_GC_Del(self);
}

static int input_traverse(WsgiInput *self, visitproc visit, void *arg)
{
    Py_VISIT(self->req);
    return 0;
}

static int input_clear(WsgiInput *self)
{
    Py_CLEAR(self->req);
    return 0;
}

static PyMethodDef input_methods[] = {
    {"read", (PyCFunction)(void (*)(void))input_read, METH_FASTCALL, "read(size=-1)"},
    {"readline", (PyCFunction)(void (*)(void))input_readline, METH_FASTCALL, "readline(size=-1)"},
    {"readlines", (PyCFunction)(void (*)(void))input_readlines, METH_FASTCALL,
     "readlines(hint=-1)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject input_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_bayleaf.WsgiInput",
    .tp_basicsize = sizeof(WsgiInput),
    .tp_dealloc = (destructor)input_dealloc,
    .tp_traverse = (traverseproc)input_traverse,
    .tp_clear = (inquiry)input_clear,
    .tp_iter = input_iter,
    .tp_iternext = (iternextfunc)input_next,
    .tp_methods = input_methods,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
};

/* ---- the response ------------------------------------------------------- */

/* Posts len body bytes; final: the last. Waits (no GIL) while the client is
 * more than the high-water mark behind. 0, or -1 with an error set. */
static int post_body(WsgiRequest *r, const char *data, size_t len, bool final)
{
    bl_event_t *ev;
    if (!r->head_sent) {
        ev = bl_asgi_http_join_start(r->start, data, len);
        if (ev != NULL) {
            r->start = NULL;
            r->head_sent = true;
        }
    } else {
        ev = bl_event_new(BL_EV_SEND_BODY, r->ex, len);
        if (ev != NULL && len > 0)
            memcpy(ev->data, data, len);
    }
    if (ev == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (final) {
        r->complete = true;
    } else {
        ev->flags |= BL_EVF_MORE;
    }
    r->sent += len;
    size_t unsent = atomic_fetch_add(&r->ex->unsent, len) + len;
    bl_bridge_post_down_now(ev);
    if (final || unsent <= BL_WRITE_HIGH_WATER)
        return 0;
    for (;;) {
        /* Ask first, then look: a write done in between is not missed. */
        atomic_store(&r->ex->want_writable, true);
        if (atomic_load(&r->ex->unsent) <= BL_WRITE_HIGH_WATER || r->disconnected)
            return 0;
        pump(r, true);
    }
}

/* One body chunk of the app's: sent at once (PEP 3333: no block is held
 * back), as the last when it completes the Content-Length or the one-item
 * list. */
static int send_chunk(WsgiRequest *r, PyObject *chunk)
{
    if (!PyBytes_Check(chunk)) {
        PyErr_Format(PyExc_TypeError, "a WSGI response must yield bytes, not %.50s",
                     Py_TYPE(chunk)->tp_name);
        return -1;
    }
    if (!r->started) {
        PyErr_SetString(PyExc_RuntimeError, "a response body before start_response()");
        return -1;
    }
    size_t len = (size_t)PyBytes_GET_SIZE(chunk);
    if (len == 0)
        return 0;
    if (r->complete) {
        PyErr_Format(PyExc_RuntimeError,
                     "the response body is longer than its Content-Length (%llu)",
                     (unsigned long long)r->clen);
        return -1;
    }
    bool final = r->one_chunk || (r->has_clen && r->sent + len >= r->clen);
    return post_body(r, PyBytes_AS_STRING(chunk), len, final);
}

/* write(data), the callable start_response returns. */
static PyObject *request_write(WsgiRequest *r, PyObject *data)
{
    if (r->over)
        return PyErr_Format(PyExc_RuntimeError, "write() after the response ended");
    if (r->disconnected)
        return PyErr_Format(bl_py.disconnected, "the client disconnected");
    r->one_chunk = false;
    if (send_chunk(r, data) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* The status line's code: "200 OK" -> 200; -1 with an error set. */
static long status_code(PyObject *status)
{
    if (!PyUnicode_Check(status) || PyUnicode_KIND(status) != PyUnicode_1BYTE_KIND) {
        PyErr_SetString(PyExc_TypeError, "start_response: status must be a latin-1 str");
        return -1;
    }
    const char *s = (const char *)PyUnicode_1BYTE_DATA(status);
    Py_ssize_t n = PyUnicode_GET_LENGTH(status);
    if (n < 4 || s[0] < '1' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' ||
        s[3] != ' ') {
        PyErr_Format(PyExc_ValueError, "start_response: invalid status %R", status);
        return -1;
    }
    return (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
}

/* A str header name or value as latin-1 bytes (the str's own storage). */
static int latin1(PyObject *o, const char **s, size_t *n)
{
    if (!PyUnicode_Check(o) || PyUnicode_KIND(o) != PyUnicode_1BYTE_KIND) {
        PyErr_Format(PyExc_TypeError,
                     "start_response: header names and values must be latin-1 "
                     "str, not %R",
                     o);
        return -1;
    }
    *s = (const char *)PyUnicode_1BYTE_DATA(o);
    *n = (size_t)PyUnicode_GET_LENGTH(o);
    return 0;
}

/* The head in a RESPONSE event, as py_http.c builds it for ASGI. */
static bl_event_t *head_event(WsgiRequest *r, long status, PyObject *seq)
{
    bl_response_scan_t scan = {0};
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq); /* borrowed from seq (ours) */
    size_t size = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = items[i]; /* borrowed */
        const char *name, *value;
        size_t nlen, vlen;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError, "start_response: each header must be a "
                                             "(name, value) tuple");
            return NULL;
        }
        if (latin1(PyTuple_GET_ITEM(pair, 0), &name, &nlen) < 0 ||
            latin1(PyTuple_GET_ITEM(pair, 1), &value, &vlen) < 0)
            return NULL;
        if (!bl_asgi_http_header_valid(name, nlen, value, vlen)) {
            PyErr_Format(PyExc_ValueError, "start_response: invalid header %R", pair);
            return NULL;
        }
        int keep = bl_response_scan_header(&scan, name, nlen, value, vlen);
        if (keep < 0)
            goto refused;
        if (keep > 0)
            size += nlen + vlen + 4;
    }
    if (bl_response_scan_end(&scan, (int)status) < 0)
        goto refused;
    bl_event_t *ev = bl_event_new(BL_EV_RESPONSE, r->ex, size);
    if (ev == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    bl_response_scan_t again = {0}; /* run again: it says which lines to keep */
    char *out = ev->data;
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *name, *value;
        size_t nlen, vlen;
        latin1(PyTuple_GET_ITEM(items[i], 0), &name, &nlen); /* checked above */
        latin1(PyTuple_GET_ITEM(items[i], 1), &value, &vlen);
        if (bl_response_scan_header(&again, name, nlen, value, vlen) <= 0)
            continue;
        memcpy(out, name, nlen);
        out += nlen;
        *out++ = ':';
        *out++ = ' ';
        memcpy(out, value, vlen);
        out += vlen;
        *out++ = '\r';
        *out++ = '\n';
    }
    ev->status = (uint16_t)status;
    ev->len = (size_t)(out - ev->data);
    ev->flags = scan.flags;
    ev->aux = scan.content_length;
    return ev;
refused:
    PyErr_Format(PyExc_ValueError, "start_response: %s: response refused", scan.error);
    return NULL;
}

static PyMethodDef write_def = {"write", (PyCFunction)request_write, METH_O,
                                "write(data): send body bytes now (PEP 3333)."};

/* start_response(status, response_headers, exc_info=None) -> write */
static PyObject *start_response(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kw)
{
    WsgiRequest *r = (WsgiRequest *)op;
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if ((kw != NULL && PyTuple_GET_SIZE(kw) > 0) || n < 2 || n > 3)
        return PyErr_Format(PyExc_TypeError,
                            "start_response(status, response_headers, exc_info=None)");
    PyObject *exc_info = n == 3 ? args[2] : Py_None;
    if (r->over)
        return PyErr_Format(PyExc_RuntimeError, "start_response() after the response ended");
    if (exc_info != Py_None) {
        if (r->head_sent) {
            /* Too late to change the head: the app's error goes on (PEP 3333). */
            if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3)
                return PyErr_Format(PyExc_TypeError, "exc_info must be a 3-tuple");
            PyObject *t = PyTuple_GET_ITEM(exc_info, 0), *v = PyTuple_GET_ITEM(exc_info, 1),
                     *tb = PyTuple_GET_ITEM(exc_info, 2); /* borrowed */
            PyErr_Restore(Py_NewRef(t), Py_NewRef(v), tb == Py_None ? NULL : Py_NewRef(tb));
            return NULL;
        }
    } else if (r->started) {
        return PyErr_Format(PyExc_RuntimeError, "start_response() called twice without exc_info");
    }
    long status = status_code(args[0]);
    if (status < 0)
        return NULL;
    if (!PyList_Check(args[1]))
        return PyErr_Format(PyExc_TypeError, "response_headers must be a list, not %.50s",
                            Py_TYPE(args[1])->tp_name);
    PyObject *seq = PySequence_Fast(args[1], "response_headers must be a list");
    if (seq == NULL)
        return NULL;
    bl_event_t *ev = head_event(r, status, seq);
    Py_DECREF(seq);
    if (ev == NULL)
        return NULL;
    if (r->start != NULL)
        bl_event_free(r->start); /* replaced after an error (exc_info) */
    r->start = ev;
    r->started = true;
    r->has_clen = (ev->flags & BL_EVF_HAS_CLEN) != 0;
    r->clen = ev->aux;
    return PyCFunction_New(&write_def, op);
}

static void request_end(WsgiRequest *r)
{
    if (r->over)
        return;
    r->over = true;
    if (r->start != NULL) {
        bl_event_free(r->start);
        r->start = NULL;
    }
    while (r->body != NULL) {
        bl_event_t *next = r->body->next;
        bl_event_free(r->body);
        r->body = next;
    }
    r->body_tail = NULL;
    bl_wsgi_release(r->ex);
}

static void request_dealloc(WsgiRequest *r)
{
    request_end(r);
    bl_exchange_unref(r->ex);
    PyObject_Free(r);
}

static PyTypeObject request_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_bayleaf.StartResponse",
    .tp_basicsize = sizeof(WsgiRequest),
    .tp_dealloc = (destructor)request_dealloc,
    .tp_vectorcall_offset = offsetof(WsgiRequest, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
};

/* ---- environ -------------------------------------------------------------- */

static int set_new(PyObject *d, PyObject *key, PyObject *value)
{
    if (value == NULL)
        return -1;
    int err = PyDict_SetItem(d, key, value);
    Py_DECREF(value);
    return err;
}

static PyObject *latin1_str(const char *s, size_t n)
{
    return PyUnicode_DecodeLatin1(s, (Py_ssize_t)n, NULL);
}

/* HTTP_<NAME>, or CONTENT_TYPE/CONTENT_LENGTH; NULL without an error for a
 * header the app never sees (a name with '_', which would pass for one with
 * '-'; the server's Daphne-Root-Path). */
static PyObject *header_key(const char *name, size_t n)
{
    char buf[256];
    if (n == 12 && memcmp(name, "content-type", 12) == 0)
        return Py_NewRef(K.content_type);
    if (n == 14 && memcmp(name, "content-length", 14) == 0)
        return Py_NewRef(K.content_length);
    if ((n == 16 && memcmp(name, "daphne-root-path", 16) == 0) || n + 5 > sizeof(buf) ||
        memchr(name, '_', n) != NULL)
        return NULL;
    memcpy(buf, "HTTP_", 5);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        buf[5 + i] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
    }
    PyObject *key = PyUnicode_FromStringAndSize(buf, (Py_ssize_t)(n + 5));
    if (key != NULL)
        PyUnicode_InternInPlace(&key);
    return key;
}

static int add_headers(PyObject *env, const bl_head_t *h)
{
    for (uint32_t i = 0; i < h->nheaders; i++) {
        const bl_header_t *hd = &h->headers[i];
        PyObject *key = header_key(h->buf + hd->name_off, hd->name_len);
        if (key == NULL) {
            if (PyErr_Occurred())
                return -1;
            continue;
        }
        PyObject *value = latin1_str(h->buf + hd->value_off, hd->value_len);
        PyObject *old = value != NULL ? bl_py_dict_get(env, key) : NULL;
        if (old != NULL) {
            /* A repeated header: one value, as a proxy would fold it. */
            bool cookie = hd->name_len == 6 && memcmp(h->buf + hd->name_off, "cookie", 6) == 0;
            PyObject *joined = PyUnicode_FromFormat("%U%s%U", old, cookie ? "; " : ",", value);
            Py_DECREF(old);
            Py_SETREF(value, joined);
        }
        int err = value != NULL && !PyErr_Occurred() ? set_new(env, key, value) : -1;
        if (value == NULL || err < 0) {
            Py_XDECREF(value);
            Py_DECREF(key);
            return -1;
        }
        Py_DECREF(key);
    }
    return 0;
}

/* SCRIPT_NAME and PATH_INFO: the percent-decoded path less the root path
 * (--root-path, or a trusted proxy's Daphne-Root-Path), as latin-1 str. */
static int add_paths(PyObject *env, const bl_exchange_t *ex)
{
    const bl_head_t *h = ex->head;
    char stack[1024];
    size_t need = h->path_len + (ex->has_root_path ? ex->root_path_len : 0);
    char *buf = need <= sizeof(stack) ? stack : PyMem_Malloc(need);
    const char *root;
    size_t root_len;
    int err = -1;
    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    size_t path_len = bl_asgi_http_unquote(h->buf + h->path_off, h->path_len, buf);
    if (ex->has_root_path) {
        root = buf + path_len;
        root_len =
            bl_asgi_http_unquote(h->buf + ex->root_path_off, ex->root_path_len, buf + path_len);
    } else {
        root = PyBytes_AS_STRING(W.root_path);
        root_len = (size_t)PyBytes_GET_SIZE(W.root_path);
    }
    while (root_len > 0 && root[root_len - 1] == '/')
        root_len--;
    size_t cut = 0;
    if (root_len > 0 && path_len >= root_len && memcmp(buf, root, root_len) == 0 &&
        (path_len == root_len || buf[root_len] == '/'))
        cut = root_len;
    if (set_new(env, K.script_name, latin1_str(root, root_len)) == 0 &&
        set_new(env, K.path_info, latin1_str(buf + cut, path_len - cut)) == 0)
        err = 0;
    if (buf != stack)
        PyMem_Free(buf);
    return err;
}

static PyObject *environ_new(const bl_exchange_t *ex, PyObject *input)
{
    const bl_head_t *h = ex->head;
    PyObject *env = PyDict_Copy(W.base);
    if (env == NULL)
        return NULL;
    char port[16];
    if (ex->server_port >= 0)
        snprintf(port, sizeof(port), "%d", ex->server_port);
    else
        snprintf(port, sizeof(port), "%d", ex->secure ? 443 : 80);
    if (set_new(env, K.request_method, PyUnicode_InternFromString(h->method)) < 0 ||
        add_paths(env, ex) < 0 ||
        set_new(env, K.query_string, latin1_str(h->buf + h->query_off, h->query_len)) < 0 ||
        PyDict_SetItem(env, K.server_protocol, h->http_minor == 0 ? K.http10 : K.http11) < 0 ||
        set_new(env, K.server_name,
                ex->server_port >= 0 ? PyUnicode_FromString(ex->server_host)
                                     : Py_NewRef(K.localhost)) < 0 ||
        set_new(env, K.server_port, PyUnicode_FromString(port)) < 0 ||
        PyDict_SetItem(env, K.url_scheme, ex->secure ? K.https : K.http) < 0 ||
        PyDict_SetItem(env, K.input, input) < 0)
        goto fail;
    if (ex->client_port >= 0) {
        snprintf(port, sizeof(port), "%d", ex->client_port);
        if (set_new(env, K.remote_addr, PyUnicode_FromString(ex->client_host)) < 0 ||
            set_new(env, K.remote_port, PyUnicode_FromString(port)) < 0)
            goto fail;
    }
    if (add_headers(env, h) < 0)
        goto fail;
    return env;
fail:
    Py_DECREF(env);
    return NULL;
}

/* ---- serving one request ---------------------------------------------------- */

/* The app's error into the log with its traceback (the error is cleared). */
static void log_error(const char *what)
{
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb); /* 3.12's PyErr_GetRaisedException, before 3.12 */
    if (type == NULL)
        return;
    PyErr_NormalizeException(&type, &exc, &tb);
    if (exc != NULL && tb != NULL)
        PyException_SetTraceback(exc, tb);
    Py_DECREF(type);
    Py_XDECREF(tb);
    if (exc == NULL)
        return;
    if (PyErr_GivenExceptionMatches(exc, bl_py.disconnected)) {
        Py_DECREF(exc); /* the client left: its business, not an app bug */
        return;
    }
    PyObject *msg = PyUnicode_FromFormat("%s: %R", what, exc);
    PyObject *r = msg != NULL ? PyObject_CallFunctionObjArgs(W.log_error, msg, exc, NULL) : NULL;
    if (r == NULL)
        PyErr_WriteUnraisable(W.log_error);
    Py_XDECREF(r);
    Py_XDECREF(msg);
    Py_DECREF(exc);
}

/* The rest of the response from fd at pos, with sendfile(2) on the I/O
 * thread: a dup of fd goes down (SEND_FILE) with the length to send, the
 * Content-Length left or else the file's size from pos (chunked, or up to
 * the close for HTTP/1.0), and the thread waits without the GIL until it went
 * out (FILE_SENT) or the client left. 1: done; 0: no descriptor to spare
 * (read it here instead); -1 with an error set. */
static int send_file_io(WsgiRequest *r, int fd, off_t pos, const struct stat *st)
{
    uint64_t left;
    if (r->has_clen)
        left = r->clen - r->sent;
    else
        left = st->st_size > pos ? (uint64_t)(st->st_size - pos) : 0;
    if (left == 0)
        return 1; /* nothing to send: finish() ends the response */
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0)
        return 0;
    bl_event_t *ev = NULL;
    if (!r->head_sent && post_body(r, "", 0, false) < 0)
        goto fail;
    ev = bl_event_new(BL_EV_SEND_FILE, r->ex, sizeof(bl_send_file_t));
    if (ev == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    bl_send_file_t sf = {.fd = dup_fd, .off = (uint64_t)pos, .len = left};
    memcpy(ev->data, &sf, sizeof(sf)); /* the event owns dup_fd from here */
    r->complete = true;
    r->sent += left;
    bl_bridge_post_down_now(ev);
    while (!r->file_sent && !r->disconnected)
        pump(r, true);
    return 1;
fail:
    if (close(dup_fd) != 0) /* the error set stays the one to report */
        BL_WARN("close of a response file's duplicate: %s", strerror(errno));
    return -1;
}

/* The response from a real file (a wsgi.file_wrapper of one): sendfile(2)
 * from the I/O thread (send_file_io), or, without a descriptor to spare,
 * read in large blocks without the GIL. 1: sent; 0: not a real file
 * (iterate it instead); -1 with an error set. */
static int send_file(WsgiRequest *r, PyObject *wrapper)
{
    PyObject *filelike = PyObject_GetAttr(wrapper, K.filelike);
    PyObject *fd_o = filelike != NULL ? PyObject_CallMethodNoArgs(filelike, K.fileno) : NULL;
    PyObject *pos_o = fd_o != NULL ? PyObject_CallMethodNoArgs(filelike, K.tell) : NULL;
    Py_XDECREF(filelike);
    long fd = fd_o != NULL ? PyLong_AsLong(fd_o) : -1;
    long long pos = pos_o != NULL ? PyLong_AsLongLong(pos_o) : -1;
    Py_XDECREF(fd_o);
    Py_XDECREF(pos_o);
    struct stat st;
    if (fd < 0 || pos < 0 || fstat((int)fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        PyErr_Clear(); /* no descriptor or position: a file-like to iterate */
        return 0;
    }
    if (!r->started) {
        PyErr_SetString(PyExc_RuntimeError, "a response body before start_response()");
        return -1;
    }
    if (!r->disconnected && !r->complete) {
        int sent = send_file_io(r, (int)fd, (off_t)pos, &st);
        if (sent != 0)
            return sent;
    }
    char *buf = PyMem_Malloc(WSGI_FILE_BLOCK);
    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    off_t off = (off_t)pos;
    int rc = 1;
    while (!r->disconnected && !r->complete) {
        size_t want = WSGI_FILE_BLOCK;
        if (r->has_clen && r->clen - r->sent < want)
            want = (size_t)(r->clen - r->sent);
        ssize_t n = 0;
        if (want > 0) {
            Py_BEGIN_ALLOW_THREADS n = pread((int)fd, buf, want, off);
            Py_END_ALLOW_THREADS
        }
        if (n < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            rc = -1;
            break;
        }
        if (n == 0)
            break; /* the end of the file: the caller ends the response */
        off += n;
        bool final = r->has_clen && r->sent + (size_t)n >= r->clen;
        if (post_body(r, buf, (size_t)n, final) < 0) {
            rc = -1;
            break;
        }
        pump(r, false);
    }
    PyMem_Free(buf);
    return rc;
}

/* Iterates the app's response; 0, or -1 with an error set. */
static int send_response(WsgiRequest *r, PyObject *result)
{
    if (Py_TYPE(result) == (PyTypeObject *)W.file_wrapper) {
        int sent = send_file(r, result);
        if (sent != 0)
            return sent < 0 ? -1 : 0;
    }
    r->one_chunk = (PyList_CheckExact(result) && PyList_GET_SIZE(result) == 1) ||
                   (PyTuple_CheckExact(result) && PyTuple_GET_SIZE(result) == 1);
    PyObject *it = PyObject_GetIter(result);
    if (it == NULL)
        return -1;
    PyObject *chunk;
    int err = 0;
    while (!r->disconnected && (chunk = PyIter_Next(it)) != NULL) {
        err = send_chunk(r, chunk);
        Py_DECREF(chunk);
        if (err < 0)
            break;
        pump(r, false); /* has the client left? */
        if (bl_wsgi_loop_waits()) {
            Py_BEGIN_ALLOW_THREADS bl_wsgi_yield();
            Py_END_ALLOW_THREADS
        }
    }
    Py_DECREF(it);
    return err < 0 || PyErr_Occurred() ? -1 : 0;
}

/* Calls result.close() if it has one: exactly once, whatever happened. */
static void close_result(PyObject *result)
{
    PyObject *close = PyObject_GetAttr(result, K.close);
    if (close == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError))
            PyErr_Clear();
        else
            log_error("Exception closing the WSGI response");
        return;
    }
    PyObject *r = PyObject_CallNoArgs(close);
    Py_DECREF(close);
    if (r == NULL)
        log_error("Exception in the WSGI response's close()");
    Py_XDECREF(r);
}

/* The app is done with the request: what the I/O thread must still hear. */
static void finish(WsgiRequest *r, bool failed)
{
    if (r->disconnected || r->complete) {
        return;
    }
    if (!failed && r->started) {
        if (post_body(r, "", 0, true) == 0)
            return;
        log_error("Exception ending the WSGI response");
    } else if (!failed) {
        BL_ERROR("WSGI application returned without calling start_response(): 500");
    }
    bl_event_t *ev = bl_event_new(BL_EV_FINISH, r->ex, 0);
    if (ev != NULL) {
        ev->flags = BL_EVF_ERROR;
        bl_bridge_post_down_now(ev);
    }
}

static void serve_request(bl_event_t *request)
{
    bl_exchange_t *ex = request->ex;
    WsgiRequest *r = PyObject_New(WsgiRequest, &request_type);
    if (r == NULL) {
        PyErr_Clear();
        bl_wsgi_release(ex);
        request->type = BL_EV_FINISH; /* no allocation: the client hears a 500 */
        request->flags = BL_EVF_ERROR;
        request->len = 0;
        bl_bridge_post_down_now(request);
        return;
    }
    memset((char *)r + sizeof(PyObject), 0, sizeof(*r) - sizeof(PyObject));
    r->vectorcall = start_response;
    r->ex = ex;
    bl_exchange_ref(ex);
    /* The REQUEST event is the first body chunk. */
    request->type = BL_EV_BODY;
    r->body = r->body_tail = request;
    r->body_done = !(request->flags & BL_EVF_MORE);
    pump(r, false);
    PyObject *input = NULL, *env = NULL, *result = NULL;
    bool failed = false;
    if (r->disconnected)
        goto done; /* gone before a thread was free: no view runs for nobody */
    WsgiInput *in = PyObject_GC_New(WsgiInput, &input_type);
    if (in != NULL) {
        in->req = (WsgiRequest *)Py_NewRef(r);
        PyObject_GC_Track(in);
    }
    input = (PyObject *)in;
    env = input != NULL ? environ_new(ex, input) : NULL;
    result = env != NULL ? PyObject_CallFunctionObjArgs(W.app, env, (PyObject *)r, NULL) : NULL;
    if (result == NULL) {
        log_error("Exception inside WSGI application");
        failed = true;
        goto done;
    }
    if (send_response(r, result) < 0) {
        log_error("Exception inside WSGI application");
        failed = true;
    }
    close_result(result);
    finish(r, failed);
    goto end;
done:
    if (!r->disconnected)
        finish(r, failed);
end:
    Py_XDECREF(result);
    Py_XDECREF(env);
    Py_XDECREF(input);
    request_end(r);
    Py_DECREF(r);
}

/* ---- the module's functions ------------------------------------------------ */

PyObject *bl_wsgi_setup(PyObject *self, PyObject *args)
{
    PyObject *app, *base, *wrapper, *log, *root;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO!OOU", &app, &PyDict_Type, &base, &wrapper, &log, &root))
        return NULL;
    PyObject *root_b = PyUnicode_AsUTF8String(root);
    if (root_b == NULL)
        return NULL;
    Py_XSETREF(W.root_path, root_b);
    Py_XSETREF(W.app, Py_NewRef(app));
    Py_XSETREF(W.base, Py_NewRef(base));
    Py_XSETREF(W.file_wrapper, Py_NewRef(wrapper));
    Py_XSETREF(W.log_error, Py_NewRef(log));
    bl_bridge.wsgi.enabled = true; /* before start_io: no lock needed */
    Py_RETURN_NONE;
}

PyObject *bl_wsgi_serve(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    pthread_cond_t waker;
    if (W.app == NULL)
        return PyErr_Format(PyExc_RuntimeError, "_bayleaf.wsgi_setup() must come first");
    int err = pthread_cond_init(&waker, NULL);
    if (err != 0)
        return PyErr_Format(PyExc_OSError, "pthread_cond_init: %s", strerror(err));
    for (;;) {
        bl_event_t *ev;
        Py_BEGIN_ALLOW_THREADS bl_wsgi_yield(); /* the consumers' loop first */
        ev = bl_wsgi_take_request(&waker);
        Py_END_ALLOW_THREADS if (ev == NULL) break;
        serve_request(ev);
    }
    pthread_cond_destroy(&waker);
    Py_RETURN_NONE;
}

PyObject *bl_wsgi_stop_py(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    bl_wsgi_stop();
    Py_RETURN_NONE;
}

int bl_wsgi_types_ready(void)
{
#define WSGI_KEY_INIT(name, text)                                                                  \
    if ((K.name = PyUnicode_InternFromString(text)) == NULL)                                       \
        return -1;
    WSGI_KEYS(WSGI_KEY_INIT)
#undef WSGI_KEY_INIT
    if (PyType_Ready(&request_type) < 0 || PyType_Ready(&input_type) < 0)
        return -1;
    return 0;
}
