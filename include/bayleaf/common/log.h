/* Logging from C (every thread): one write(2) per line to stderr, in the
 * format Python's lines have: --log-fmt's (a logging.Formatter %-style format,
 * read here as Python reads it), else logs.py's default. With Django's LOGGING
 * configuring the bayleaf loggers, a sink hands lines to Python instead
 * (bl_log_set_sink). */
#ifndef BAYLEAF_LOG_H
#define BAYLEAF_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Each level prints its own name, as Python's logging does. */
enum { BL_LOG_ERROR, BL_LOG_WARNING, BL_LOG_INFO, BL_LOG_DEBUG };

/* Lines go out when their level's verbosity is at most this: ERROR at 0 and
 * above, WARNING and INFO at 1, DEBUG at 2 (--verbosity). */
extern int bl_log_verbosity;

/* The logger a file's lines name: "bayleaf.server" unless the file defines
 * BL_LOG_NAME before its first include. */
#ifndef BL_LOG_NAME
#define BL_LOG_NAME "bayleaf.server"
#endif

/* One log line's fields, as a logging.LogRecord has them. */
typedef struct {
    int level;           /* BL_LOG_* */
    const char *name;    /* logger */
    const char *file;    /* __FILE__ */
    int line;            /* __LINE__ */
    const char *func;    /* __func__ */
    const char *message; /* formatted */
    double created;      /* seconds since the epoch */
} bl_log_record_t;

void bl_log_at(int level, const char *name, const char *file, int line, const char *func,
               const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* bl_log_at for the default logger, without a source position. */
void bl_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The name a line of this level carries ("WARNING"). */
const char *bl_log_level_name(int level);
/* Python's number for the level (logging.WARNING is 30). */
int bl_log_level_number(int level);
/* The least --verbosity at which a line of this level goes out. */
int bl_log_level_verbosity(int level);

/* --log-fmt (NULL: the default, "%(asctime)-15s %(levelname)-8s %(message)s").
 * Returns 0, or -1 when fmt names no field or is malformed (the default then
 * stays). Call before other threads log. */
int bl_log_set_format(const char *fmt);
/* Formats r as --log-fmt says, with a newline; returns the length (cut to cap-1). */
size_t bl_log_format(const bl_log_record_t *r, char *out, size_t cap);
/* Lines that pass --verbosity go to sink first; it returns true when it took
 * the line (then it is not written here). NULL: every line to stderr. */
typedef bool (*bl_log_sink_fn)(const bl_log_record_t *r);
void bl_log_set_sink(bl_log_sink_fn sink);
/* Writes r to stderr in --log-fmt's format (what a sink does when it cannot
 * hand a line over). */
void bl_log_write(const bl_log_record_t *r);

#define BL_ERROR(...)                                                                              \
    bl_log_at(BL_LOG_ERROR, BL_LOG_NAME, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define BL_WARN(...)                                                                               \
    bl_log_at(BL_LOG_WARNING, BL_LOG_NAME, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define BL_INFO(...) bl_log_at(BL_LOG_INFO, BL_LOG_NAME, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define BL_DEBUG(...)                                                                              \
    bl_log_at(BL_LOG_DEBUG, BL_LOG_NAME, __FILE__, __LINE__, __func__, __VA_ARGS__)

/* At most one line a second for a condition that can repeat at any rate. */
typedef struct {
    uint64_t last_ms; /* when the last line went out; 0: never */
    unsigned held;    /* occurrences held back since */
} bl_log_limit_t;

/* True when a line may go out at now_ms (a monotonic clock); *held is then how
 * many occurrences were held back before this one. */
bool bl_log_limit_pass(bl_log_limit_t *l, uint64_t now_ms, unsigned *held);

#endif
