/* Logging from C (both threads): one write(2) per line to stderr, in the same
 * format as the Python side's logging. */
#ifndef BAYLEAF_LOG_H
#define BAYLEAF_LOG_H

#include <stdbool.h>
#include <stdint.h>

/* Each level prints its own name, as Python's logging does. */
enum { BL_LOG_ERROR, BL_LOG_WARNING, BL_LOG_INFO, BL_LOG_DEBUG };

/* Lines go out when their level's verbosity is at most this: ERROR at 0 and
 * above, WARNING and INFO at 1, DEBUG at 2 (--verbosity). */
extern int bl_log_verbosity;

void bl_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The name a line of this level carries ("WARNING"). */
const char *bl_log_level_name(int level);
/* The least --verbosity at which a line of this level goes out. */
int bl_log_level_verbosity(int level);

#define BL_ERROR(...) bl_log(BL_LOG_ERROR, __VA_ARGS__)
#define BL_WARN(...)  bl_log(BL_LOG_WARNING, __VA_ARGS__)
#define BL_INFO(...)  bl_log(BL_LOG_INFO, __VA_ARGS__)
#define BL_DEBUG(...) bl_log(BL_LOG_DEBUG, __VA_ARGS__)

/* At most one line a second for a condition that can repeat at any rate. */
typedef struct {
    uint64_t last_ms; /* when the last line went out; 0: never */
    unsigned held;    /* occurrences held back since */
} bl_log_limit_t;

/* True when a line may go out at now_ms (a monotonic clock); *held is then how
 * many occurrences were held back before this one. */
bool bl_log_limit_pass(bl_log_limit_t *l, uint64_t now_ms, unsigned *held);

#endif
