/* The I/O thread, as the rest of the program sees it: an opaque server to
 * create, start, stop and close. Its state lives in gateway/io/io.h, which
 * only the I/O layer includes (no libuv outside gateway/io/). */
#ifndef BAYLEAF_IO_SERVER_H
#define BAYLEAF_IO_SERVER_H

#include <stdbool.h>

#include "bayleaf/common/config.h"
#include "bayleaf/io/listen.h"

typedef struct bl_server_s bl_server_t;

/* A zeroed server for bl_server_init, or NULL when out of memory. */
bl_server_t *bl_server_new(void);
/* Main thread, before Python starts: loop, signals, and the listeners of set,
 * whose descriptors the loop takes over (their fd becomes -1 in set). A worker
 * passes the pipe to its supervisor as ready_fd (else -1). Prints one error line
 * and returns a negative value on failure. */
int bl_server_init(bl_server_t *s, const bl_config_t *cfg, bl_listen_set_t *set, int ready_fd);
/* Starts the I/O thread. */
int bl_server_start(bl_server_t *s);
/* Waits for the I/O thread to exit (after a STOP event). */
void bl_server_join(bl_server_t *s);
/* Python thread: posts the STOP event reserved at init (once) and wakes the
 * I/O thread; then bl_server_join. */
void bl_server_post_stop(bl_server_t *s);
/* Closes what is left, frees the loop and s (main thread, I/O thread not
 * running; after a failed init too). */
void bl_server_close(bl_server_t *s);
/* The signal on which the Python side dumps its threads' stacks (faulthandler,
 * chained: see server.c); 0 when none could be set up. */
int bl_server_stack_signal(void);

/* Whether the I/O thread was started and has not been joined. */
bool bl_server_running(const bl_server_t *s);

#endif
