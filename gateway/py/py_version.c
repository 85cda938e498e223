/* bayleaf --version: which Python this binary embeds. Called before (and
 * without) Py_Initialize: Py_GetVersion() needs no interpreter. */
#include "bayleaf/py/embed.h"

#include <Python.h>
#include <dlfcn.h>
#include <string.h>

void bl_python_versions_print(FILE *out)
{
    const char *version = Py_GetVersion(); /* "3.12.1 (main, ...) [GCC ...]" */
    Dl_info lib;
    const char *libpython = "linked statically";
    if (dladdr((void *)Py_GetVersion, &lib) != 0 && lib.dli_fname != NULL)
        libpython = lib.dli_fname;
    fprintf(out, "Python %.*s (built with %s), %s, %s\n", (int)strcspn(version, " "), version,
            PY_VERSION, BL_PYTHON_EXE, libpython);
}
