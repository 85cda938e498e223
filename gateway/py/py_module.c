/* The built-in module `_bayleaf`: drains the up-queue on the Python thread
 * (a REQUEST to its ASGI protocol, any other event to its Exchange) and
 * starts/stops the I/O thread through bl_py.io. */
#include "py_bridge.h"
#include "py_strings.h"

#include <unistd.h>

/* ---- module functions --------------------------------------------------- */

/* Runs after every callback of this loop iteration: wakes the I/O thread once. */
static PyObject *mod_flush_down(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    bl_bridge_flush_down();
    Py_RETURN_NONE;
}

static void schedule_down_wake(void)
{
    PyObject *r = PyObject_CallOneArg(bl_py.call_soon, bl_py.flush_down);
    if (r == NULL) {
        /* Never lose a wake: do it now. */
        PyErr_WriteUnraisable(bl_py.call_soon);
        bl_bridge_flush_down();
        return;
    }
    Py_DECREF(r);
}

static PyObject *mod_setup(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"loop",
                            "spawn",
                            "on_drained",
                            "state",
                            "root_path",
                            "app_close_timeout",
                            "on_close_timeout",
                            NULL};
    PyObject *loop, *spawn, *on_drained, *state, *root_path, *close_timeout, *on_close_timeout;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOUOO", names, &loop, &spawn, &on_drained, &state,
                                     &root_path, &close_timeout, &on_close_timeout))
        return NULL;
    Py_XSETREF(bl_py.app_close_timeout, Py_NewRef(close_timeout));
    Py_XSETREF(bl_py.on_close_timeout, Py_NewRef(on_close_timeout));
    Py_XSETREF(bl_py.call_later, PyObject_GetAttrString(loop, "call_later"));
    if (bl_py.call_later == NULL)
        return NULL;
    PyObject *asyncio = PyImport_ImportModule("asyncio");
    if (asyncio == NULL)
        return NULL;
    Py_XSETREF(bl_py.current_task, PyObject_GetAttrString(asyncio, "current_task"));
    PyObject *coroutines =
        bl_py.current_task != NULL ? PyObject_GetAttrString(asyncio, "coroutines") : NULL;
    PyObject *marker =
        coroutines != NULL ? PyObject_GetAttrString(coroutines, "_is_coroutine") : NULL;
    Py_XDECREF(coroutines);
    Py_DECREF(asyncio);
    if (bl_py.current_task == NULL)
        return NULL;
    if (marker == NULL) {
        /* An asyncio without the marker checks the code object instead:
         * harmless. Any other error is real. */
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return NULL;
        PyErr_Clear();
    }
    Py_XSETREF(bl_py.coroutine_marker, marker);
    Py_XSETREF(bl_py.loop, Py_NewRef(loop));
    Py_XSETREF(bl_py.spawn, Py_NewRef(spawn));
    Py_XSETREF(bl_py.on_drained, Py_NewRef(on_drained));
    Py_XSETREF(bl_py.state, state == Py_None ? NULL : Py_NewRef(state));
    Py_XSETREF(bl_py.root_path, Py_NewRef(root_path));
    Py_XSETREF(bl_py.call_soon, PyObject_GetAttrString(loop, "call_soon"));
    if (bl_py.call_soon == NULL)
        return NULL;
    bl_bridge.schedule_down_wake = schedule_down_wake;
    Py_RETURN_NONE;
}

static PyObject *mod_fileno(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyLong_FromLong(bl_bridge.up_fd);
}

static void on_drained(void)
{
    if (bl_py.on_drained == NULL)
        return;
    PyObject *r = PyObject_CallNoArgs(bl_py.on_drained);
    if (r == NULL)
        PyErr_WriteUnraisable(bl_py.on_drained);
    Py_XDECREF(r);
}

/* The loop's reader callback: takes every queued event in one batch. */
static PyObject *mod_drain(PyObject *self, PyObject *unused)
{
    uint64_t count;
    (void)self;
    (void)unused;
    ssize_t n = read(bl_bridge.up_fd, &count, sizeof(count));
    (void)n;
    bl_event_t *ev = bl_bridge_take_up();
    while (ev != NULL) {
        bl_event_t *next = ev->next;
        switch (ev->type) {
        case BL_EV_REQUEST:
            if (ev->ex->kind == BL_KIND_WEBSOCKET)
                bl_asgi_ws_on_request(ev);
            else
                bl_asgi_http_on_request(ev);
            break;
        case BL_EV_DRAINED:
            bl_event_free(ev);
            on_drained();
            break;
        default:
            bl_pyex_on_event(ev);
            break;
        }
        ev = next;
    }
    Py_RETURN_NONE;
}

static PyObject *mod_start_io(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    if (bl_py.io == NULL || bl_py.loop == NULL)
        return PyErr_Format(PyExc_RuntimeError, "_bayleaf.setup() must come first");
    int err = bl_py.io->start(bl_py.io->server);
    if (err != 0)
        return PyErr_Format(PyExc_OSError, "cannot start the I/O thread: %s", strerror(-err));
    bl_lsan_startup_done();
    Py_RETURN_NONE;
}

static PyObject *mod_stop_io(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    if (bl_py.io == NULL || !bl_py.io->running(bl_py.io->server))
        Py_RETURN_NONE;
    bl_py.io->post_stop(bl_py.io->server); /* reserved: cannot fail */
    Py_BEGIN_ALLOW_THREADS bl_py.io->join(bl_py.io->server);
    Py_END_ALLOW_THREADS Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"setup", (PyCFunction)(void (*)(void))mod_setup, METH_VARARGS | METH_KEYWORDS,
     "setup(loop, spawn, on_drained, state, root_path)"},
    {"fileno", mod_fileno, METH_NOARGS, "The eventfd the loop must watch."},
    {"_flush_down", mod_flush_down, METH_NOARGS, "Wake the I/O thread (internal)."},
    {"drain", mod_drain, METH_NOARGS, "Handle every queued event from the I/O thread."},
    {"start_io", mod_start_io, METH_NOARGS, "Start the I/O thread."},
    {"stop_io", mod_stop_io, METH_NOARGS, "Stop the I/O thread and wait for it."},
    {"topic_publish", bl_py_topic_publish, METH_VARARGS,
     "topic_publish(topic, payload, is_text, retain): publish to a topic from any thread."},
    {"topics_active", bl_py_topics_active, METH_NOARGS,
     "Whether the I/O thread takes topic publishes now."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "_bayleaf",
    "Bayleaf's C bridge.",
    -1,
    module_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC bl_pymod_init(void)
{
    PyObject *m;
    if (bl_strings_init() != 0)
        return NULL;
    if (PyType_Ready(&bl_ready_type) < 0 || bl_pyex_types_ready() < 0)
        return NULL;
    if ((m = PyModule_Create(&module_def)) == NULL)
        return NULL;
    bl_py.disconnected = PyErr_NewExceptionWithDoc(
        "_bayleaf.ClientDisconnected",
        "send() after the client went away or the response completed (ASGI spec 2.4).",
        PyExc_OSError, NULL);
    bl_py.ready_none = bl_ready_new(Py_NewRef(Py_None));
    bl_py.flush_down = PyObject_GetAttrString(m, "_flush_down");
    if (bl_py.disconnected == NULL || bl_py.ready_none == NULL || bl_py.flush_down == NULL ||
        PyModule_AddObjectRef(m, "ClientDisconnected", bl_py.disconnected) < 0 ||
        PyModule_AddObjectRef(m, "Exchange", (PyObject *)&bl_pyex_type) < 0 ||
        PyModule_AddStringConstant(m, "version", BL_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
