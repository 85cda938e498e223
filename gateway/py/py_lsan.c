/* LeakSanitizer and the embedded interpreter's life (ASan builds only; every
 * function is a no-op otherwise). */
#include "py_bridge.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BL_LSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define BL_LSAN 1
#endif
#ifdef BL_LSAN
#include <sanitizer/lsan_interface.h>
#endif

/* ASan builds: LeakSanitizer is told what belongs to the interpreter's life
 * rather than suppressing libpython. What is allocated on this thread from
 * Py_InitializeFromConfig until serving starts (imports, the app, lifespan
 * startup), and by any import later (builtins.__import__ is wrapped), is not
 * reported: extension modules keep objects LSan cannot reach (the Cython
 * constants of uvloop, or of msgpack imported on first use) and libpython's
 * lack of frame pointers leaves no stack to tell them apart by. The check then
 * runs before Py_FinalizeEx, not at exit, while every live object is reachable
 * from the interpreter: an object whose reference gateway/ leaked while
 * serving is reported, and what finalization leaves behind is not. */
static bool lsan_startup;

#ifdef BL_LSAN
static PyObject *lsan_import_orig; /* the interpreter's __import__ */

static PyObject *lsan_import(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    __lsan_disable(); /* per thread, nests */
    PyObject *r = PyObject_Call(lsan_import_orig, args, kw);
    __lsan_enable();
    return r;
}

static PyMethodDef lsan_import_def = {"__import__", (PyCFunction)(void (*)(void))lsan_import,
                                      METH_VARARGS | METH_KEYWORDS, NULL};
#endif

/* 0, or -1 with a Python error set. */
int bl_lsan_wrap_import(void)
{
#ifdef BL_LSAN
    PyObject *builtins = PyImport_ImportModule("builtins");
    PyObject *wrapper = NULL;
    int rc = -1;
    if (builtins == NULL)
        return -1;
    if ((lsan_import_orig = PyObject_GetAttrString(builtins, "__import__")) != NULL &&
        (wrapper = PyCFunction_New(&lsan_import_def, NULL)) != NULL)
        rc = PyObject_SetAttrString(builtins, "__import__", wrapper);
    Py_XDECREF(wrapper);
    Py_DECREF(builtins);
    return rc;
#else
    return 0;
#endif
}

void bl_lsan_startup_begin(void)
{
#ifdef BL_LSAN
    __lsan_disable();
    lsan_startup = true;
#endif
}

void bl_lsan_startup_done(void)
{
#ifdef BL_LSAN
    if (lsan_startup)
        __lsan_enable();
#endif
    lsan_startup = false;
}

void bl_lsan_leak_check(void)
{
    bl_lsan_startup_done(); /* Python ended before serving */
#ifdef BL_LSAN
    __lsan_do_leak_check(); /* reports and exits on a leak; no check at exit */
#endif
}
