/* The Python thread's state and the helpers every py_*.c file uses. */
#include "py_bridge.h"
#include "py_strings.h"

bl_py_t bl_py;

PyObject *bl_py_dict_get(PyObject *d, PyObject *key)
{
    return Py_XNewRef(PyDict_GetItemWithError(d, key)); /* borrowed, made strong at once */
}

/* A new reference, or NULL (logged: the caller then knows no task). */
PyObject *bl_py_current_task(void)
{
    PyObject *t = PyObject_CallNoArgs(bl_py.current_task);
    if (t == NULL)
        PyErr_WriteUnraisable(bl_py.current_task);
    return t;
}

PyObject *bl_py_future_new(void)
{
    return PyObject_CallMethodNoArgs(bl_py.loop, bl_str.create_future);
}

bool bl_py_future_resolve(PyObject **fut, PyObject *value, bool exception)
{
    PyObject *f = *fut;
    bool resolved = false;
    if (f == NULL)
        return false;
    *fut = NULL;
    PyObject *done = PyObject_CallMethodNoArgs(f, bl_str.done);
    if (done == Py_False) {
        PyObject *r = PyObject_CallMethodOneArg(
            f, exception ? bl_str.set_exception : bl_str.set_result, value);
        if (r == NULL)
            PyErr_WriteUnraisable(f);
        resolved = r != NULL;
        Py_XDECREF(r);
    } else if (done == NULL) {
        PyErr_WriteUnraisable(f);
    }
    Py_XDECREF(done);
    Py_DECREF(f);
    return resolved;
}

PyObject *bl_py_disconnected_error(const char *why)
{
    PyObject *msg = PyUnicode_FromString(why);
    if (msg == NULL)
        return NULL;
    PyObject *exc = PyObject_CallOneArg(bl_py.disconnected, msg);
    Py_DECREF(msg);
    return exc;
}
