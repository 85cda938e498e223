/* Accept balancing between worker processes that share listening sockets.
 *
 * Every idle worker is woken for a new connection and the first to run takes it,
 * with everything else queued: one worker can end up holding most long-lived
 * WebSockets while the others idle. Each worker publishes its connection count in
 * a table the supervisor maps before forking; a worker well above the least
 * loaded other one stops accepting for a moment (server.c). */
#ifndef BAYLEAF_BALANCE_H
#define BAYLEAF_BALANCE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct bl_balance_s bl_balance_t;

/* Supervisor, before forking: a table of n entries shared with every child.
 * NULL on failure (workers then accept without balancing). */
bl_balance_t *bl_balance_new(int n);
void bl_balance_free(bl_balance_t *b, int n);
/* Supervisor: entry i is about to belong to a new worker, or its worker exited. */
void bl_balance_clear(bl_balance_t *b, int i);

/* In a forked worker: entry i of b is this process's (b may be NULL). */
void bl_balance_attach(bl_balance_t *b, int n, int i);

/* Worker, I/O thread. Does nothing in a process that was never attached. */
void bl_balance_publish(size_t conns);
void bl_balance_set_accepting(bool accepting);
/* Whether conns is well above the least loaded other accepting worker. */
bool bl_balance_over(size_t conns);

#endif
