/* --workers N: a parent that never starts Python keeps N worker processes serving
 * the listeners it opened, restarts the ones that die, drains them on SIGTERM and
 * replaces them one by one on SIGHUP. */
#ifndef BAYLEAF_SUPERVISOR_H
#define BAYLEAF_SUPERVISOR_H

#include "bayleaf/common/config.h"
#include "bayleaf/io/listen.h"

/* A worker's life: serve set's sockets, write one byte to ready_fd once accepting
 * starts, return the exit status. */
typedef int (*bl_worker_fn)(bl_listen_set_t *set, int ready_fd, void *arg);

/* Runs the supervisor until it is stopped; returns its exit status. In each
 * forked worker, calls worker() and exits with its result (never returns). */
int bl_supervisor_run(const bl_config_t *cfg, bl_listen_set_t *set, bl_worker_fn worker, void *arg);

#endif
