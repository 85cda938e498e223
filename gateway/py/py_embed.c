/* Starting the embedded interpreter and handing over to bayleaf.runner. */
#include "bayleaf/py/embed.h"
#include "py_bridge.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* dir/rel into out; false when it does not fit. */
static bool path_join(char *out, size_t cap, const char *dir, const char *rel)
{
    int n = snprintf(out, cap, "%s/%s", dir, rel);
    return n >= 0 && (size_t)n < cap;
}

static bool file_exists(const char *dir, const char *rel)
{
    char path[PATH_MAX];
    return path_join(path, sizeof(path), dir, rel) && access(path, R_OK) == 0;
}

/* The directory this binary is in, from /proc/self/exe; "" when unknown. */
static void exe_dir(char *dir, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", dir, cap - 1);
    dir[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(dir, '/');
    if (slash != NULL)
        *slash = '\0';
}

/* The pyapp directory to put first on sys.path, or NULL: $BAYLEAF_PYAPP, else
 * the source tree's for a binary (or unit test) in its build tree. An installed binary
 * imports the installed package from sys.path (its virtualenv's site-packages). */
static const char *pyapp_first(const char *bindir)
{
    const char *env = getenv("BAYLEAF_PYAPP");
    if (env != NULL && *env)
        return env;
    size_t n = strlen(BL_BUILD_DIR);
    bool in_build =
        strncmp(bindir, BL_BUILD_DIR, n) == 0 && (bindir[n] == '\0' || bindir[n] == '/');
    if (in_build && file_exists(BL_PYAPP_SRC_DIR, "bayleaf/runner.py"))
        return BL_PYAPP_SRC_DIR;
    return NULL;
}

/* Which virtualenv to run in, and who named it (for messages): --venv, else
 * the one this binary is installed in (a systemd unit calling venv/bin/bayleaf
 * sets no VIRTUAL_ENV), else $VIRTUAL_ENV. NULL: none. */
static const char *pick_venv(const bl_config_t *cfg, const char *bindir, char *own, size_t cap,
                             const char **origin)
{
    const char *env = getenv("VIRTUAL_ENV");
    *origin = "--venv ";
    if (cfg->venv != NULL)
        return cfg->venv;
    const char *slash = strrchr(bindir, '/');
    if (slash != NULL && strcmp(slash, "/bin") == 0) {
        snprintf(own, cap, "%.*s", (int)(slash - bindir), bindir);
        if (file_exists(own, "pyvenv.cfg")) {
            *origin = "the virtualenv of this binary, ";
            return own;
        }
    }
    *origin = "VIRTUAL_ENV=";
    return env != NULL && *env ? env : NULL;
}

/* A virtualenv must come from the Python we embed: its pyvenv.cfg says which. */
static int check_venv(const char *venv, const char *origin, char *python, size_t cap)
{
    char path[PATH_MAX], line[512];
    FILE *f = path_join(path, sizeof(path), venv, "pyvenv.cfg") ? fopen(path, "r") : NULL;
    if (f == NULL) {
        if (access(venv, F_OK) != 0)
            fprintf(stderr, "bayleaf: error: %s%s: no such directory\n", origin, venv);
        else
            fprintf(stderr, "bayleaf: error: %s%s is not a virtualenv (no pyvenv.cfg in it)\n",
                    origin, venv);
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
                    "bayleaf: error: the virtualenv %s was made with Python %s; this bayleaf "
                    "embeds Python %s (install bayleaf into that virtualenv: pip install "
                    "--no-build-isolation /path/to/bayleaf)\n",
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
    if (!path_join(python, cap, venv, "bin/python")) {
        fprintf(stderr, "bayleaf: error: %s%s: path too long\n", origin, venv);
        return -1;
    }
    return 0;
}

/* sys.path: pyapp first (source tree, $BAYLEAF_PYAPP); the install directory
 * last, for a prefix install outside the interpreter's own site-packages. */
static int extend_sys_path(const char *first)
{
    PyObject *sys_path = PySys_GetObject("path"); /* borrowed */
    if (sys_path == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "sys.path is missing");
        return -1;
    }
    if (first != NULL) {
        PyObject *dir = PyUnicode_FromString(first);
        int rc = dir != NULL ? PyList_Insert(sys_path, 0, dir) : -1;
        Py_XDECREF(dir);
        return rc;
    }
    if (!file_exists(BL_PYAPP_INSTALL_DIR, "bayleaf/runner.py"))
        return 0;
    PyObject *dir = PyUnicode_FromString(BL_PYAPP_INSTALL_DIR);
    int rc = dir == NULL ? -1 : PySequence_Contains(sys_path, dir);
    if (rc == 0)
        rc = PyList_Append(sys_path, dir);
    Py_XDECREF(dir);
    return rc < 0 ? -1 : 0;
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
        set_item(d, "listeners",
                 PyUnicode_FromString(bl_py.io->listeners ? bl_py.io->listeners : "")) < 0 ||
        set_item(d, "metrics", PyBool_FromLong(cfg->metrics != NULL)) < 0 ||
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
    char python[PATH_MAX], bindir[PATH_MAX], own_venv[PATH_MAX];
    const char *origin;
    int rc = 1;

    exe_dir(bindir, sizeof(bindir));
    const char *venv = pick_venv(cfg, bindir, own_venv, sizeof(own_venv), &origin);
    snprintf(python, sizeof(python), "%s", BL_PYTHON_EXE);
    if (venv != NULL && check_venv(venv, origin, python, sizeof(python)) != 0)
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

    if (extend_sys_path(pyapp_first(bindir)) < 0 || bl_lsan_wrap_import() < 0)
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
    bl_bridge.schedule_down_wake = NULL; /* it calls into Python */
    bl_lsan_leak_check();
    if (Py_FinalizeEx() < 0 && rc == 0)
        rc = 120;
    return rc;
}
