/* Shadows CPython's header for the layers that must not use it (gateway/meson.build). */
#error "Python belongs to the Python thread: only gateway/py/ may include <Python.h> (see gateway/README.md, Layers)"
