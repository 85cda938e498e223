/* Ready: an awaitable with its result at hand. `await` on it returns at once,
 * without a round trip through the event loop (send() when nothing waits). */
#include "py_bridge.h"

typedef struct {
    PyObject_HEAD PyObject *value;
} ReadyObject;

PyObject *bl_ready_new(PyObject *value)
{
    if (value == NULL)
        return NULL; /* building the value failed: its error propagates */
    ReadyObject *r = PyObject_New(ReadyObject, &bl_ready_type);
    if (r == NULL) {
        Py_XDECREF(value);
        return NULL;
    }
    r->value = value; /* stolen */
    return (PyObject *)r;
}

static void ready_dealloc(ReadyObject *r)
{
    Py_XDECREF(r->value);
    PyObject_Free(r);
}

static PyObject *ready_await(PyObject *self)
{
    return Py_NewRef(self);
}

/* `await` on 3.10+ uses am_send: return the value without raising StopIteration. */
static PySendResult ready_send(PyObject *self, PyObject *arg, PyObject **result)
{
    (void)arg;
    PyObject *v = ((ReadyObject *)self)->value;
    *result = Py_NewRef(v ? v : Py_None);
    return PYGEN_RETURN;
}

static PyObject *ready_next(PyObject *self)
{
    PyObject *v = ((ReadyObject *)self)->value;
    PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, v ? v : Py_None);
    if (stop != NULL) {
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    }
    return NULL;
}

static PyObject *ready_send_method(PyObject *self, PyObject *arg)
{
    (void)arg;
    return ready_next(self);
}

PyObject *bl_ready_rethrow(PyObject *args)
{
    PyObject *typ, *val = NULL, *tb = NULL; /* borrowed from args */
    if (!PyArg_ParseTuple(args, "O|OO", &typ, &val, &tb))
        return NULL;
    if (PyExceptionInstance_Check(typ)) {
        PyErr_SetObject((PyObject *)Py_TYPE(typ), typ);
    } else {
        PyErr_SetObject(typ, val);
    }
    return NULL;
}

static PyObject *ready_throw(PyObject *self, PyObject *args)
{
    (void)self;
    return bl_ready_rethrow(args);
}

static PyObject *ready_close(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    Py_RETURN_NONE;
}

static PyMethodDef ready_methods[] = {
    {"send", ready_send_method, METH_O, NULL},
    {"throw", ready_throw, METH_VARARGS, NULL},
    {"close", ready_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods ready_async = {
    .am_await = ready_await,
    .am_send = ready_send,
};

PyTypeObject bl_ready_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_bayleaf.Ready",
    .tp_basicsize = sizeof(ReadyObject),
    .tp_dealloc = (destructor)ready_dealloc,
    .tp_as_async = &ready_async,
    .tp_iter = ready_await,
    .tp_iternext = ready_next,
    .tp_methods = ready_methods,
    .tp_flags = Py_TPFLAGS_DEFAULT,
};
