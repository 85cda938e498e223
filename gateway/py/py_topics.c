/* Topics on the Python thread: the bayleaf.subscribe / bayleaf.unsubscribe
 * messages of the bayleaf.topics extension (checked here, then one event
 * down; the I/O thread's io/topics.c does the rest), and
 * _bayleaf.topic_publish, which any Python thread may call: it copies the
 * message into one event for the I/O thread and returns. */
#include "py_bridge.h"
#include "py_strings.h"

#include <errno.h>
#include <string.h>

/* How long a publisher waits for room in the queue before it raises. */
#define PUBLISH_WAIT_MS 10000

/* A topic name's UTF-8 (pointing into name), or NULL with an error set. */
static const char *topic_name(PyObject *name, const char *what, Py_ssize_t *len)
{
    if (!PyUnicode_Check(name)) {
        PyErr_Format(PyExc_TypeError, "%s: a topic must be a str, not %.100s", what,
                     Py_TYPE(name)->tp_name);
        return NULL;
    }
    const char *s = PyUnicode_AsUTF8AndSize(name, len);
    if (s == NULL)
        return NULL;
    if (*len == 0 || (size_t)*len > bl_bridge.topic_name_max ||
        memchr(s, '\0', (size_t)*len) != NULL) {
        PyErr_Format(PyExc_ValueError,
                     "%s: a topic name must be 1 to %zu bytes of UTF-8 without NUL "
                     "(--topics-name-max)",
                     what, bl_bridge.topic_name_max);
        return NULL;
    }
    return s;
}

PyObject *bl_asgi_topics_send(ExchangeObject *self, PyObject *msg, bool subscribe)
{
    const char *what = subscribe ? "bayleaf.subscribe" : "bayleaf.unsubscribe";
    PyObject *topics = bl_py_dict_get(msg, bl_str.topics);
    PyObject *conflate = NULL, *seq = NULL, *r = NULL;
    bl_event_t *ev = NULL;
    bool merge = false;
    if (PyErr_Occurred())
        goto done;
    if (topics == NULL || !(PyList_Check(topics) || PyTuple_Check(topics))) {
        PyErr_Format(PyExc_TypeError, "%s: 'topics' must be a list of str", what);
        goto done;
    }
    if (subscribe) {
        conflate = bl_py_dict_get(msg, bl_str.conflate);
        if (PyErr_Occurred())
            goto done;
        if (conflate != NULL && !PyBool_Check(conflate)) {
            PyErr_Format(PyExc_TypeError, "%s: 'conflate' must be a bool", what);
            goto done;
        }
        merge = conflate == Py_True;
    } else if (PyDict_Contains(msg, bl_str.conflate) != 0) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "%s takes no 'conflate'", what);
        goto done;
    }
    /* A copy: nothing below runs Python code, but a list could be changed
     * by another thread between two passes. */
    if ((seq = PySequence_Tuple(topics)) == NULL)
        goto done;
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    if (n == 0) {
        PyErr_Format(PyExc_ValueError, "%s: 'topics' is empty", what);
        goto done;
    }
    size_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t len;
        if (topic_name(PyTuple_GET_ITEM(seq, i), what, &len) == NULL)
            goto done;
        total += 2 + (size_t)len;
    }
    if ((ev = bl_event_new(subscribe ? BL_EV_TOPIC_SUB : BL_EV_TOPIC_UNSUB, self->ex, total)) ==
        NULL) {
        PyErr_NoMemory();
        goto done;
    }
    size_t off = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t len;
        const char *s = topic_name(PyTuple_GET_ITEM(seq, i), what, &len); /* cached UTF-8 */
        ev->data[off] = (char)((size_t)len >> 8);
        ev->data[off + 1] = (char)((size_t)len & 0xff);
        memcpy(ev->data + off + 2, s, (size_t)len);
        off += 2 + (size_t)len;
    }
    ev->flags = merge ? BL_EVF_CONFLATE : 0;
    bl_bridge_post_down(ev);
    ev = NULL;
    r = Py_NewRef(bl_py.ready_none);
done:
    if (ev != NULL)
        bl_event_free(ev);
    Py_XDECREF(seq);
    Py_XDECREF(conflate);
    Py_XDECREF(topics);
    return r;
}

PyObject *bl_py_topics_active(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    pthread_mutex_lock(&bl_bridge.pub_lock);
    bool open = bl_bridge.pub_open;
    pthread_mutex_unlock(&bl_bridge.pub_lock);
    return PyBool_FromLong(open);
}

/* Posts ev, waiting (without the GIL) while the queue is full. 0, or -1
 * with an error set (ev freed). */
static int publish_post(bl_event_t *ev)
{
    for (unsigned waited = 0;; waited += 100) {
        int rc = bl_bridge_post_publish(ev);
        if (rc == 0)
            return 0;
        if (rc == -EPIPE || rc == -ENOBUFS || waited >= PUBLISH_WAIT_MS) {
            bl_event_free(ev);
            if (rc == -EPIPE)
                PyErr_SetString(PyExc_RuntimeError,
                                "topic_publish: the Bayleaf I/O thread is not running");
            else if (rc == -ENOBUFS)
                PyErr_SetString(PyExc_BlockingIOError,
                                "topic_publish: the publishes made before the server serves "
                                "(lifespan startup) exceed --max-queued-bytes");
            else
                PyErr_SetString(PyExc_BlockingIOError,
                                "topic_publish: the publish queue stayed full (the I/O thread "
                                "is behind: --max-queued-bytes)");
            return -1;
        }
        Py_BEGIN_ALLOW_THREADS bl_bridge_publish_wait(100);
        Py_END_ALLOW_THREADS
    }
}

PyObject *bl_py_topic_publish(PyObject *self, PyObject *args)
{
    PyObject *topic, *payload;
    int is_text, retain;
    Py_buffer view = {0};
    const char *data;
    Py_ssize_t plen, tlen;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOpp:topic_publish", &topic, &payload, &is_text, &retain))
        return NULL;
    const char *name = topic_name(topic, "topic_publish", &tlen);
    if (name == NULL)
        return NULL;
    if (is_text) {
        if (!PyUnicode_Check(payload))
            return PyErr_Format(PyExc_TypeError, "topic_publish: text must be a str");
        if ((data = PyUnicode_AsUTF8AndSize(payload, &plen)) == NULL)
            return NULL;
    } else {
        if (PyUnicode_Check(payload))
            return PyErr_Format(PyExc_TypeError, "topic_publish: bytes must be bytes-like");
        if (PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE) < 0)
            return NULL;
        data = view.buf;
        plen = view.len;
    }
    bl_event_t *ev = bl_event_new(BL_EV_TOPIC_PUBLISH, NULL, (size_t)tlen + (size_t)plen);
    if (ev != NULL) {
        memcpy(ev->data, name, (size_t)tlen);
        memcpy(ev->data + tlen, data, (size_t)plen);
        ev->len = (size_t)tlen;
        ev->len2 = (size_t)plen;
        ev->flags = (uint8_t)((is_text ? 0 : BL_EVF_BINARY) | (retain ? BL_EVF_RETAIN : 0));
    }
    if (!is_text)
        PyBuffer_Release(&view);
    if (ev == NULL)
        return PyErr_NoMemory();
    if (publish_post(ev) < 0)
        return NULL;
    Py_RETURN_NONE;
}
