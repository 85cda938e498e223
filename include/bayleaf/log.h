/* Logging from C (both threads): one write(2) per line to stderr, in the same
 * format as the Python side's logging. */
#ifndef BAYLEAF_LOG_H
#define BAYLEAF_LOG_H

enum { BL_LOG_ERROR = 0, BL_LOG_WARNING = 1, BL_LOG_INFO = 1, BL_LOG_DEBUG = 2 };

extern int bl_log_verbosity;

void bl_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define BL_ERROR(...) bl_log(BL_LOG_ERROR, __VA_ARGS__)
#define BL_WARN(...)  bl_log(BL_LOG_WARNING, __VA_ARGS__)
#define BL_INFO(...)  bl_log(BL_LOG_INFO, __VA_ARGS__)
#define BL_DEBUG(...) bl_log(BL_LOG_DEBUG, __VA_ARGS__)

#endif
