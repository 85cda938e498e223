/* What the Python thread may ask of the I/O thread: start it, stop it, wait
 * for it. proc/main.c fills this in; the Python layer links no I/O code and
 * sees no libuv. */
#ifndef BAYLEAF_BRIDGE_IO_CONTROL_H
#define BAYLEAF_BRIDGE_IO_CONTROL_H

#include <stdbool.h>

typedef struct {
    void *server;
    /* Starts the I/O thread: 0 or a negative error code. */
    int (*start)(void *server);
    /* Posts the reserved STOP event (cannot fail) and wakes the I/O thread. */
    void (*post_stop)(void *server);
    /* Waits for the I/O thread to exit, after post_stop. */
    void (*join)(void *server);
    /* Whether the I/O thread was started and not yet joined. */
    bool (*running)(const void *server);
    /* The signal on which Python dumps its threads' stacks; 0: none. */
    int stack_signal;
    /* The listeners, "127.0.0.1:8000, /run/app.sock", for the start-up line. */
    const char *listeners;
} bl_io_control_t;

#endif
