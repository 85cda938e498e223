/* The I/O thread's state, shared by the files of gateway/io/ only: the
 * server, its listeners, and the internals server.c and conn*.c call. */
#ifndef BAYLEAF_IO_IO_H
#define BAYLEAF_IO_IO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <uv.h>

#include "bayleaf/bridge/bridge.h"
#include "bayleaf/common/config.h"
#include "bayleaf/common/log.h"
#include "bayleaf/common/metrics.h"
#include "bayleaf/io/listen.h"
#include "bayleaf/io/server.h"
#include "bayleaf/io/topics.h"
#include "bayleaf/proto/http_parser.h"

#define BL_MAX_LISTENERS 16

typedef struct bl_conn_s bl_conn_t;
typedef struct bl_conn_proto_s bl_conn_proto_t;

typedef struct {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } h;
    bl_server_t *server;
    int fd; /* the listening socket, kept: the handle owns a dup of it */
    int backlog;
    bool closed; /* the handle's close callback ran (paused or stopped) */
    bool is_unix;
    char name[128]; /* for messages: "127.0.0.1:8000" or the socket path */
    char path[108]; /* unix socket path */
} bl_listener_t;

struct bl_server_s {
    uv_loop_t loop;
    uv_async_t wake;       /* the down-queue has events */
    uv_prepare_t flush_up; /* wakes Python once per loop iteration */
    uv_signal_t sigint, sigterm, sighup;
    uv_timer_t grace;
    uv_timer_t settle;  /* workers: lets just-accepted connections show a request */
    uv_timer_t unpause; /* workers: while not accepting to let the others catch up */
    uv_timer_t sweep;   /* idle WebSocket sessions give back memory */
    uint64_t paused_at; /* loop time of the pause; 0: accepting */
    bool up_held;       /* Python is behind (bl_bridge_up_hold): no accepting, no reading */
    int burst_trims;    /* sweeps left that give a burst's memory back (malloc_trim) */
    const bl_config_t *cfg;
    bl_http_limits_t limits;
    bl_listener_t listeners[BL_MAX_LISTENERS];
    int nlisteners;
    bl_conn_t *conns; /* every open connection (intrusive list) */
    /* What conn.c reports up, set by server.c (conn.c does not call it by
     * name): a connection's memory was freed; a read queued work for Python. */
    void (*on_conn_gone)(bl_server_t *s);
    void (*on_input_queued)(bl_server_t *s);
    const bl_conn_proto_t *conn_proto;    /* a new connection's protocol (HTTP) */
    const bl_conn_proto_t *upgrade_proto; /* an upgrade request's (WebSocket) */
    size_t nconns;
    size_t nactive; /* connections neither closing nor lingering */
    FILE *access_log;
    pthread_t thread;
    bl_event_t *stop_ev;    /* reserved: stopping the I/O thread cannot fail for memory */
    bl_event_t *drained_ev; /* reserved: nor can telling Python it drained */
    pthread_t py_thread;    /* the thread that runs Python, for its stack at the deadline */
    bl_listen_set_t *set;   /* socket files to unlink when stopping at once */
    uint64_t fd_limit;      /* RLIMIT_NOFILE: accepting pauses close to it */
    size_t fd_paused_conns; /* while paused at the limit: connections then; 0: not paused */
    bl_log_limit_t fd_log, oom_log;
    bool running;       /* the I/O thread was started */
    bool draining;      /* a stop signal came: no new work */
    bool drained;       /* DRAINED was posted */
    bool shared;        /* a worker: other processes accept on the same sockets */
    int ready_fd;       /* a worker: told once accepting starts (-1: none) */
    bl_topics_t topics; /* topics pub/sub (topics.h), flushed once per loop iteration */
    struct bl_topics_redis_s *topics_redis; /* with --topics-redis: its link (topics_redis.h) */
};

/* I/O thread internals shared by server.c and conn.c. */
/* Takes the pending connection: its descriptor, UV_ENOMEM when it is still
 * pending (the caller drops it), another negative error when it was dropped. */
int bl_conn_accept(bl_listener_t *l);
void bl_conn_dispatch(bl_server_t *s, bl_event_t *ev);
void bl_conn_close(bl_conn_t *c);
/* Shutdown: closes idle connections; active ones close after their response. */
void bl_conn_drain_all(bl_server_t *s, bool force);
/* Every connection decides again whether to read (after up_held changed). */
void bl_conn_update_reading_all(bl_server_t *s);
/* Lets idle WebSocket sessions free their framing state (ws.h); returns how
 * many went to sleep. */
size_t bl_conn_ws_sweep(bl_server_t *s);
/* topics_redis_hooks.c: with --topics-redis (or its variable), the link to Redis
 * set as the topics registry's hooks (0, or a negative error after one line);
 * closed before the loop's handles are. */
int bl_server_topics_redis_open(bl_server_t *s);
void bl_server_topics_redis_close(bl_server_t *s);

#endif
