/* C-side log lines in the format of Python's (--log-fmt, logs.py), written to
 * stderr or handed to a sink (log.h). */
#include "bayleaf/common/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int bl_log_verbosity = 1;

#define LOG_LINE_MAX  4096
#define FMT_MAX_PARTS 48

/* The fields a %-style logging format may name, as LogRecord has them. */
typedef enum {
    F_ASCTIME,
    F_CREATED,
    F_MSECS,
    F_RELATIVE,
    F_LEVELNAME,
    F_LEVELNO,
    F_NAME,
    F_MESSAGE,
    F_PATHNAME,
    F_FILENAME,
    F_MODULE,
    F_FUNCNAME,
    F_LINENO,
    F_PROCESS,
    F_PROCESSNAME,
    F_THREAD,
    F_THREADNAME,
    F_TASKNAME,
    F_UNKNOWN,
} field_t;

static const char *const field_names[] = {
    "asctime", "created", "msecs",       "relativeCreated", "levelname",  "levelno",
    "name",    "message", "pathname",    "filename",        "module",     "funcName",
    "lineno",  "process", "processName", "thread",          "threadName", "taskName",
};

typedef struct {
    const char *text; /* literal: text, len; a field: NULL */
    size_t len;
    field_t field;
    char spec[24]; /* flags, width and precision, as written */
    char conv;     /* s, d, f ... */
} part_t;

static struct {
    char *fmt; /* owned copy: parts point into it */
    part_t parts[FMT_MAX_PARTS];
    int n;
} format;

static _Atomic(bl_log_sink_fn) sink;
static double started; /* for relativeCreated: when the format was set */
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static double now_seconds(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

const char *bl_log_level_name(int level)
{
    switch (level) {
    case BL_LOG_ERROR:
        return "ERROR";
    case BL_LOG_WARNING:
        return "WARNING";
    case BL_LOG_INFO:
        return "INFO";
    default:
        return "DEBUG";
    }
}

int bl_log_level_number(int level)
{
    switch (level) {
    case BL_LOG_ERROR:
        return 40;
    case BL_LOG_WARNING:
        return 30;
    case BL_LOG_INFO:
        return 20;
    default:
        return 10;
    }
}

int bl_log_level_verbosity(int level)
{
    switch (level) {
    case BL_LOG_ERROR:
        return 0;
    case BL_LOG_WARNING:
    case BL_LOG_INFO:
        return 1;
    default:
        return 2;
    }
}

/* ---- the format, parsed once ---------------------------------------------- */

static field_t field_of(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(field_names) / sizeof(field_names[0]); i++) {
        if (strlen(field_names[i]) == len && memcmp(field_names[i], name, len) == 0)
            return (field_t)i;
    }
    return F_UNKNOWN;
}

/* Python's %-formatting: %(key)[#0- +]*[width][.precision][hlL]?conv, and %%. */
static int parse_format(char *fmt, part_t *parts, int *n)
{
    int count = 0, fields = 0;
    for (char *p = fmt; *p != '\0';) {
        if (count == FMT_MAX_PARTS)
            return -1;
        part_t *part = &parts[count++];
        memset(part, 0, sizeof(*part));
        if (*p != '%') {
            char *next = strchr(p, '%');
            part->text = p;
            part->len = next != NULL ? (size_t)(next - p) : strlen(p);
            p += part->len;
            continue;
        }
        if (p[1] == '%') {
            part->text = "%";
            part->len = 1;
            p += 2;
            continue;
        }
        if (p[1] != '(')
            return -1; /* Python needs a mapping key in every directive here */
        char *close = strchr(p + 2, ')');
        if (close == NULL)
            return -1;
        part->field = field_of(p + 2, (size_t)(close - p - 2));
        p = close + 1;
        size_t spec_len = strspn(p, "#0- +0123456789.");
        if (spec_len >= sizeof(part->spec))
            return -1;
        memcpy(part->spec, p, spec_len);
        p += spec_len;
        p += strspn(p, "hlL"); /* length modifiers: Python ignores them */
        if (*p == '\0' || strchr("diouxXeEfFgGcrsa", *p) == NULL)
            return -1;
        part->conv = *p++;
        fields++;
    }
    *n = count;
    return fields > 0 ? 0 : -1;
}

static void set_default_format(void)
{
    if (format.n == 0)
        bl_log_set_format(NULL);
}

int bl_log_set_format(const char *fmt)
{
    part_t parts[FMT_MAX_PARTS];
    int n;
    if (fmt == NULL)
        fmt = "%(asctime)-15s %(levelname)-8s %(message)s"; /* logs.DEFAULT_FORMAT */
    char *copy = strdup(fmt);
    if (copy == NULL || parse_format(copy, parts, &n) != 0) {
        free(copy);
        return -1;
    }
    free(format.fmt);
    format.fmt = copy;
    started = now_seconds();
    memcpy(format.parts, parts, sizeof(parts[0]) * (size_t)n);
    format.n = n;
    return 0;
}

/* ---- one line ------------------------------------------------------------- */

typedef enum { V_STR, V_INT, V_FLOAT } vtype_t;

typedef struct {
    vtype_t type;
    const char *s;
    long long i;
    double f;
    char buf[64];
} value_t;

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

static void thread_name(char *out, size_t cap)
{
    if (gettid() == getpid() || pthread_getname_np(pthread_self(), out, cap) != 0)
        snprintf(out, cap, "MainThread"); /* Python's name for the main thread */
}

static void value_of(const bl_log_record_t *r, field_t f, value_t *v)
{
    double secs = r->created;
    time_t whole = (time_t)secs;
    int ms = (int)((secs - (double)whole) * 1000);
    v->type = V_STR;
    v->s = v->buf;
    switch (f) {
    case F_ASCTIME: {
        struct tm tm;
        localtime_r(&whole, &tm);
        size_t n = strftime(v->buf, sizeof(v->buf), "%Y-%m-%d %H:%M:%S", &tm);
        snprintf(v->buf + n, sizeof(v->buf) - n, ",%03d", ms);
        break;
    }
    case F_CREATED:
        v->type = V_FLOAT, v->f = secs;
        break;
    case F_MSECS:
        v->type = V_FLOAT, v->f = (double)ms;
        break;
    case F_RELATIVE:
        v->type = V_FLOAT, v->f = (secs - started) * 1000;
        break;
    case F_LEVELNAME:
        v->s = bl_log_level_name(r->level);
        break;
    case F_LEVELNO:
        v->type = V_INT, v->i = bl_log_level_number(r->level);
        break;
    case F_NAME:
        v->s = r->name;
        break;
    case F_MESSAGE:
        v->s = r->message;
        break;
    case F_PATHNAME:
        v->s = r->file != NULL ? r->file : "(unknown file)";
        break;
    case F_FILENAME:
        v->s = r->file != NULL ? base_name(r->file) : "(unknown file)";
        break;
    case F_MODULE: {
        const char *b = r->file != NULL ? base_name(r->file) : "Unknown module";
        const char *dot = strrchr(b, '.');
        snprintf(v->buf, sizeof(v->buf), "%.*s", (int)(dot != NULL ? dot - b : (long)strlen(b)), b);
        break;
    }
    case F_FUNCNAME:
        v->s = r->func != NULL ? r->func : "(unknown function)";
        break;
    case F_LINENO:
        v->type = V_INT, v->i = r->line;
        break;
    case F_PROCESS:
        v->type = V_INT, v->i = getpid();
        break;
    case F_PROCESSNAME:
        v->s = "MainProcess";
        break;
    case F_THREAD:
        v->type = V_INT, v->i = (long long)(unsigned long)pthread_self();
        break;
    case F_THREADNAME:
        thread_name(v->buf, sizeof(v->buf));
        break;
    case F_TASKNAME:
    default:
        v->s = "None";
        break;
    }
}

/* Appends one field as Python's % operator would render it. */
static size_t put_field(const part_t *p, const value_t *v, char *out, size_t cap)
{
    char spec[40];
    char text[64];
    const char *s = v->s;
    int n;
    if (strchr("diouxXc", p->conv) != NULL && v->type != V_STR) {
        long long i = v->type == V_INT ? v->i : (long long)v->f;
        snprintf(spec, sizeof(spec), "%%%sll%c", p->spec, p->conv == 'c' ? 'd' : p->conv);
        n = snprintf(out, cap, spec, i);
    } else if (strchr("eEfFgG", p->conv) != NULL && v->type != V_STR) {
        double f = v->type == V_FLOAT ? v->f : (double)v->i;
        snprintf(spec, sizeof(spec), "%%%s%c", p->spec, p->conv);
        n = snprintf(out, cap, spec, f);
    } else {
        char quoted[LOG_LINE_MAX];
        if (v->type == V_INT) {
            snprintf(text, sizeof(text), "%lld", v->i);
            s = text;
        } else if (v->type == V_FLOAT) {
            snprintf(text, sizeof(text), "%.17g", v->f);
            s = text;
        }
        if (p->conv == 'r' || p->conv == 'a') { /* the repr of a str, near enough */
            snprintf(quoted, sizeof(quoted), "'%s'", s);
            s = quoted;
        }
        snprintf(spec, sizeof(spec), "%%%ss", p->spec);
        n = snprintf(out, cap, spec, s);
    }
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

size_t bl_log_format(const bl_log_record_t *r, char *out, size_t cap)
{
    size_t len = 0;
    if (cap < 2)
        return 0;
    /* The default when main has set none (unit tests): once, race-free. */
    pthread_once(&default_once, set_default_format);
    for (int i = 0; i < format.n && len < cap - 2; i++) {
        const part_t *p = &format.parts[i];
        if (p->text != NULL) {
            size_t k = p->len < cap - 2 - len ? p->len : cap - 2 - len;
            memcpy(out + len, p->text, k);
            len += k;
            continue;
        }
        value_t v;
        value_of(r, p->field, &v);
        len += put_field(p, &v, out + len, cap - 1 - len);
    }
    out[len++] = '\n';
    out[len] = '\0';
    return len;
}

void bl_log_write(const bl_log_record_t *r)
{
    char line[LOG_LINE_MAX];
    size_t n = bl_log_format(r, line, sizeof(line));
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

void bl_log_set_sink(bl_log_sink_fn fn)
{
    atomic_store(&sink, fn);
}

static void log_va(int level, const char *name, const char *file, int line, const char *func,
                   const char *fmt, va_list ap)
{
    char message[LOG_LINE_MAX - 256];
    if (bl_log_level_verbosity(level) > bl_log_verbosity)
        return;
    if (vsnprintf(message, sizeof(message), fmt, ap) < 0)
        return;
    bl_log_record_t r = {
        .level = level,
        .name = name,
        .file = file,
        .line = line,
        .func = func,
        .message = message,
        .created = now_seconds(),
    };
    bl_log_sink_fn to = atomic_load(&sink);
    if (to == NULL || !to(&r))
        bl_log_write(&r);
}

void bl_log_at(int level, const char *name, const char *file, int line, const char *func,
               const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_va(level, name, file, line, func, fmt, ap);
    va_end(ap);
}

void bl_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_va(level, BL_LOG_NAME, NULL, 0, NULL, fmt, ap);
    va_end(ap);
}

bool bl_log_limit_pass(bl_log_limit_t *l, uint64_t now_ms, unsigned *held)
{
    if (l->last_ms != 0 && now_ms - l->last_ms < 1000) {
        l->held++;
        return false;
    }
    *held = l->held;
    l->held = 0;
    l->last_ms = now_ms != 0 ? now_ms : 1;
    return true;
}
