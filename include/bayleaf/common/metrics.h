/* --metrics: counters and gauges in memory every worker shares, rendered in
 * Prometheus' text format by whichever worker answers a scrape.
 *
 * The region is mapped (MAP_SHARED) before the supervisor forks: one entry per
 * worker process (the supervisor's table of processes), one slot per worker
 * number (the label). Each entry has one writer thread per field (the I/O
 * thread, or the Python thread for the loop's heartbeat): plain relaxed loads
 * and stores, no locks, no read-modify-write on the hot path. A worker that
 * exits has its counters folded into its slot's, so they never go back. */
#ifndef BAYLEAF_COMMON_METRICS_H
#define BAYLEAF_COMMON_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define BL_METRICS_CLOSE_FIRST 1000 /* close codes 1000..1015 are counted each; others as "other"  \
                                     */
#define BL_METRICS_CLOSE_N 16

enum {
    BL_MC_HTTP_1XX, /* responses by status class: BL_MC_HTTP_1XX + status / 100 - 1 */
    BL_MC_HTTP_2XX,
    BL_MC_HTTP_3XX,
    BL_MC_HTTP_4XX,
    BL_MC_HTTP_5XX,
    BL_MC_WS_MSG_IN,
    BL_MC_WS_MSG_OUT,
    BL_MC_WS_BYTES_IN,
    BL_MC_WS_BYTES_OUT,
    BL_MC_SEND_TIMEOUTS,
    BL_MC_SENDFILE_BYTES, /* WSGI file responses: body bytes written with sendfile(2) */
    BL_MC_WS_CLOSE,       /* BL_METRICS_CLOSE_N entries, then "other" */
    BL_MC_WS_CLOSE_OTHER = BL_MC_WS_CLOSE + BL_METRICS_CLOSE_N,
    BL_MC_COUNT
};

enum {
    BL_MG_CONN_HTTP,
    BL_MG_CONN_WS,
    BL_MG_UP_BYTES, /* work queued across the bridge, published by the I/O thread */
    BL_MG_UP_EVENTS,
    BL_MG_DOWN_BYTES,
    BL_MG_DOWN_EVENTS,
    BL_MG_LOOP_BEAT_NS,     /* Python thread: CLOCK_MONOTONIC of the loop's last heartbeat */
    BL_MG_LOOP_INTERVAL_NS, /* the heartbeat's period */
    BL_MG_STATE,            /* BL_METRICS_STARTING, _ACCEPTING, _DRAINING */
    BL_MG_COUNT
};

enum { BL_METRICS_STARTING, BL_METRICS_ACCEPTING, BL_METRICS_DRAINING };

typedef struct {
    _Alignas(64) atomic_bool live; /* a process owns it */
    atomic_int slot;
    atomic_uint_fast64_t c[BL_MC_COUNT];
    atomic_int_fast64_t g[BL_MG_COUNT];
} bl_metrics_entry_t;

/* This process's entry; a private one when --metrics is off or before attach. */
extern bl_metrics_entry_t *bl_metrics_self;

/* Single writer per field: a load and a store, not an atomic add. */
static inline void bl_metrics_count(int i, uint64_t n)
{
    atomic_uint_fast64_t *p = &bl_metrics_self->c[i];
    atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void bl_metrics_gauge_add(int i, int64_t n)
{
    atomic_int_fast64_t *p = &bl_metrics_self->g[i];
    atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void bl_metrics_gauge_set(int i, int64_t v)
{
    atomic_store_explicit(&bl_metrics_self->g[i], v, memory_order_relaxed);
}

/* A response of this status went out. */
void bl_metrics_http_status(int status);
/* A WebSocket ended with this close code (1006: no close frame). */
void bl_metrics_ws_closed(unsigned code);
/* Python thread: the loop ran its heartbeat now, every interval_s. */
void bl_metrics_loop_beat(double interval_s);

/* Before forking: the shared region, nslots worker numbers and nentries
 * processes, labelled worker="N" (the supervisor); or 1, 1, unlabelled: one
 * process, which then counts in entry 0. Returns 0 or -errno. */
int bl_metrics_init(int nslots, int nentries, bool labelled);
bool bl_metrics_enabled(void);
/* Supervisor: entry i now belongs to a new process serving slot. */
void bl_metrics_entry_start(int i, int slot);
/* Supervisor: entry i's process exited: its counters join its slot's. */
void bl_metrics_entry_end(int i);
/* Supervisor: slot's worker is being restarted after it exited. */
void bl_metrics_restart(int slot);
/* In a forked worker: entry i is this process's. */
void bl_metrics_attach(int i);

/* The Prometheus text exposition of every live entry, by slot. */
void bl_metrics_render(FILE *out);
/* The readiness answer: some process has finished lifespan startup and accepts. */
bool bl_metrics_ready(void);

#endif
