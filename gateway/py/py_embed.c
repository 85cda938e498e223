/* Starting the embedded interpreter and handing over to bayleaf.runner. */
#include "bayleaf/py/embed.h"
#include "py_bridge.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool file_exists(const char *dir, const char *rel)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    return access(path, R_OK) == 0;
}

/* The pyapp directory: $BAYLEAF_PYAPP, the source tree for a build-tree
 * binary, else the installed copy. */
static const char *find_pyapp(void)
{
    const char *env = getenv("BAYLEAF_PYAPP");
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    bool installed = false;
    if (env != NULL && *env)
        return env;
    if (n > 0) {
        exe[n] = '\0';
        /* The install dir is PREFIX/share/bayleaf/pyapp: compare PREFIX. */
        const char *share = strstr(BL_PYAPP_INSTALL_DIR, "/share/bayleaf/pyapp");
        size_t plen = share ? (size_t)(share - BL_PYAPP_INSTALL_DIR) : 0;
        installed = share && strncmp(exe, BL_PYAPP_INSTALL_DIR, plen) == 0 &&
                    strncmp(exe + plen, "/bin/", 5) == 0;
    }
    if (!installed && file_exists(BL_PYAPP_SRC_DIR, "bayleaf/runner.py"))
        return BL_PYAPP_SRC_DIR;
    if (file_exists(BL_PYAPP_INSTALL_DIR, "bayleaf/runner.py"))
        return BL_PYAPP_INSTALL_DIR;
    return BL_PYAPP_SRC_DIR;
}

/* A virtualenv must come from the Python we embed: its pyvenv.cfg says which. */
static int check_venv(const char *venv, char *python, size_t cap)
{
    char path[PATH_MAX], line[512];
    snprintf(path, sizeof(path), "%s/pyvenv.cfg", venv);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "bayleaf: error: VIRTUAL_ENV=%s is not a virtualenv (no pyvenv.cfg)\n",
                venv);
        return -1;
    }
    char want[32];
    snprintf(want, sizeof(want), "%d.%d", PY_MAJOR_VERSION, PY_MINOR_VERSION);
    int ok = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *eq = strchr(line, '=');
        if (eq == NULL || (strncmp(line, "version", 7) != 0))
            continue;
        char *v = eq + 1;
        while (*v == ' ')
            v++;
        size_t wl = strlen(want);
        ok =
            (strncmp(v, want, wl) == 0 && (v[wl] == '.' || v[wl] == '\n' || v[wl] == '\0')) ? 0 : 1;
        if (ok != 0) {
            v[strcspn(v, "\r\n")] = '\0';
            fprintf(stderr,
                    "bayleaf: error: the virtualenv %s was made with Python %s; bayleaf embeds "
                    "Python %s\n",
                    venv, v, want);
        }
        break;
    }
    fclose(f);
    if (ok == -1) {
        fprintf(stderr, "bayleaf: error: %s has no version line\n", path);
        return -1;
    }
    if (ok != 0)
        return -1;
    snprintf(python, cap, "%s/bin/python", venv);
    return 0;
}

static int set_item(PyObject *d, const char *key, PyObject *v)
{
    if (v == NULL)
        return -1;
    int r = PyDict_SetItemString(d, key, v);
    Py_DECREF(v);
    return r;
}

static PyObject *options_dict(const bl_config_t *cfg)
{
    PyObject *d = PyDict_New();
    if (d == NULL)
        return NULL;
    if (set_item(d, "app", PyUnicode_FromString(cfg->app)) < 0 ||
        set_item(d, "lifespan", PyUnicode_FromString(cfg->lifespan)) < 0 ||
        set_item(d, "loop", PyUnicode_FromString(cfg->loop)) < 0 ||
        set_item(d, "verbosity", PyLong_FromLong(cfg->verbosity)) < 0 ||
        set_item(d, "workers", PyLong_FromLong(cfg->workers)) < 0 ||
        set_item(d, "root_path", PyUnicode_FromString(cfg->root_path)) < 0 ||
        set_item(d, "application_close_timeout",
                 PyFloat_FromDouble(cfg->application_close_timeout)) < 0 ||
        set_item(d, "loop_watchdog", PyFloat_FromDouble(cfg->loop_watchdog)) < 0 ||
        set_item(d, "gc_threshold", PyLong_FromLong(cfg->gc_threshold)) < 0 ||
        set_item(d, "stack_signal", PyLong_FromLong(bl_py.io->stack_signal)) < 0 ||
        set_item(d, "wsgi_threads", PyLong_FromLong(cfg->wsgi_threads)) < 0 ||
        set_item(d, "interface", PyUnicode_FromString(cfg->interface ? cfg->interface : "auto")) <
            0 ||
        (cfg->wsgi != NULL && set_item(d, "wsgi", PyUnicode_FromString(cfg->wsgi)) < 0) ||
        (cfg->log_fmt != NULL && set_item(d, "log_fmt", PyUnicode_FromString(cfg->log_fmt)) < 0)) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

int bl_python_run(const bl_io_control_t *io, const bl_config_t *cfg, int argc, char **argv)
{
    PyConfig config;
    PyStatus status;
    PyObject *runner = NULL, *options = NULL, *result = NULL;
    char python[PATH_MAX];
    const char *venv = cfg->venv != NULL ? cfg->venv : getenv("VIRTUAL_ENV");
    int rc = 1;

    snprintf(python, sizeof(python), "%s", BL_PYTHON_EXE);
    if (venv != NULL && *venv && check_venv(venv, python, sizeof(python)) != 0)
        return 1;
    if (PyImport_AppendInittab("_bayleaf", bl_pymod_init) != 0)
        return 1;
    bl_lsan_startup_begin();
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0; /* signals belong to the I/O thread */
    config.parse_argv = 0;
    status = PyConfig_SetBytesString(&config, &config.program_name, python);
    if (!PyStatus_Exception(status))
        status = PyConfig_SetBytesArgv(&config, argc, argv);
    if (!PyStatus_Exception(status))
        status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        fprintf(stderr, "bayleaf: error: cannot start Python: %s\n",
                status.err_msg ? status.err_msg : "unknown error");
        return 1;
    }
    bl_py.io = io;

    PyObject *sys_path = PySys_GetObject("path"); /* borrowed */
    PyObject *dir = PyUnicode_FromString(find_pyapp());
    if (sys_path == NULL || dir == NULL || PyList_Insert(sys_path, 0, dir) < 0 ||
        bl_lsan_wrap_import() < 0)
        goto error;
    if ((runner = PyImport_ImportModule("bayleaf.runner")) == NULL)
        goto error;
    if ((options = options_dict(cfg)) == NULL)
        goto error;
    if ((result = PyObject_CallMethod(runner, "main", "O", options)) == NULL)
        goto error;
    long exit_status = PyLong_AsLong(result);
    if (exit_status == -1 && PyErr_Occurred())
        goto error;
    if (exit_status < 0 || exit_status > 255) {
        PyErr_Format(PyExc_ValueError, "bayleaf.runner.main() returned %ld, not an exit status",
                     exit_status);
        goto error;
    }
    rc = (int)exit_status;
    goto done;
error:
    PyErr_Print();
    rc = 1;
done:
    Py_XDECREF(result);
    Py_XDECREF(options);
    Py_XDECREF(runner);
    Py_XDECREF(dir);
    bl_bridge.schedule_down_wake = NULL; /* it calls into Python */
    bl_lsan_leak_check();
    if (Py_FinalizeEx() < 0 && rc == 0)
        rc = 120;
    return rc;
}
