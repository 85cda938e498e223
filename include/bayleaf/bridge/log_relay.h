/* Hands C log lines to Python's logging, when Django's LOGGING configures the
 * bayleaf loggers (so every line follows the app's configuration): a bounded
 * queue the Python loop drains (woken by an eventfd). A line Python has not
 * taken within BL_LOG_RELAY_MS (the loop is blocked), or one that finds the
 * queue full, goes to stderr directly in --log-fmt's format, with the lines
 * queued before it, in order: a blocked Python never holds a line back for
 * long, and never without bound. */
#ifndef BAYLEAF_BRIDGE_LOG_RELAY_H
#define BAYLEAF_BRIDGE_LOG_RELAY_H

#include <stddef.h>

#include "bayleaf/common/log.h"

#define BL_LOG_RELAY_MS  250 /* how long a line waits for Python */
#define BL_LOG_RELAY_CAP 256 /* lines queued, at most */

/* One queued line, copied. */
typedef struct {
    int level;
    char name[48];
    char message[1024];
    char file[128];
    int line;
    char func[64];
    double created;
    char thread_name[16];
    unsigned long thread;
} bl_log_line_t;

/* Python thread: starts relaying (the sink and its watch thread). Returns the
 * eventfd to watch, or a negative errno. */
int bl_log_relay_start(void);
/* Python thread: stops relaying; what is still queued goes to stderr. */
void bl_log_relay_stop(void);
/* Python thread: takes up to max queued lines into out; returns how many. */
size_t bl_log_relay_take(bl_log_line_t *out, size_t max);

#endif
