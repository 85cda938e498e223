/* C-side log lines, formatted like Python's logging setup in pyapp/bayleaf/logs.py. */
#include "bayleaf/common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int bl_log_verbosity = 1;

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

void bl_log(int level, const char *fmt, ...)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    size_t n;
    va_list ap;

    if (bl_log_level_verbosity(level) > bl_log_verbosity)
        return;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ",%03d %-8s ", (int)(tv.tv_usec / 1000),
                          bl_log_level_name(level));
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    n += (size_t)m < sizeof(line) - n - 1 ? (size_t)m : sizeof(line) - n - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
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
