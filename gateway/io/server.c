/* Listeners, signals and the I/O thread's life. */
#include "io.h"
#include "conn.h"
#include "bayleaf/io/balance.h"
#include "bayleaf/bridge/bridge.h"
#include "bayleaf/common/fault.h"
#include "bayleaf/common/log.h"
#include "bayleaf/io/sd_notify.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* How long a draining worker waits before closing connections without a request. */
#define BL_SERVER_SETTLE_MS 250

/* Work queued toward Python that makes a burst: its memory (request heads,
 * bodies) is freed between live allocations once served, where free()
 * keeps the pages; a few sweeps after it give them back. */
#define BL_SWEEP_BURST_BYTES (4u * 1024u * 1024u)
#define BL_SWEEP_BURST_TRIMS 3

static bl_server_t *io_server; /* for the wake function */

static void pause_accepting(bl_server_t *s);
static void listener_close(bl_listener_t *l);

/* Accepting failed for want of memory or descriptors: the pending connection
 * is dropped with the listener's handle and accepting pauses a moment, where
 * libuv would leave the listener stopped (memory) or retry at once (EMFILE
 * with its reserve descriptor gone). */
static void accept_failed(bl_server_t *s, bl_listener_t *l, int err)
{
    unsigned held;
    if (bl_log_limit_pass(&s->oom_log, uv_now(&s->loop), &held))
        BL_ERROR("Accept on %s failed: %s; pausing accepts (%u more since the last report)",
                 l->name, uv_strerror(err), held);
    if (s->paused_at == 0)
        pause_accepting(s);
    else
        listener_close(l);
}

/* Descriptors kept free for the app (files, database connections) and the
 * server itself once connections fill the rest. */
static uint64_t fd_headroom(uint64_t limit)
{
    uint64_t h = limit / 8;
    return h < 8 ? 8 : h > 1024 ? 1024 : h;
}

/* The connection just accepted took a descriptor close to RLIMIT_NOFILE: stop
 * accepting until a connection closes. New clients wait in the kernel's backlog
 * instead of being reset (libuv drops them at the limit, silently). */
static void pause_at_fd_limit(bl_server_t *s)
{
    unsigned held;
    if (bl_log_limit_pass(&s->fd_log, uv_now(&s->loop), &held))
        BL_WARN("Near the file-descriptor limit (%llu): %zu connection(s) open; new ones wait "
                "until one closes (%u more time(s) since the last report)",
                (unsigned long long)s->fd_limit, s->nconns, held);
    s->fd_paused_conns = s->nconns;
    if (s->paused_at == 0)
        pause_accepting(s);
}

static void on_connection(uv_stream_t *stream, int status)
{
    bl_listener_t *l = stream->data;
    bl_server_t *s = l->server;
    if (status == UV_EMFILE || status == UV_ENFILE || status == UV_ENOMEM || status == UV_ENOBUFS) {
        accept_failed(s, l, status);
        return;
    }
    if (status < 0) {
        BL_ERROR("Accept on %s failed: %s", l->name, uv_strerror(status));
        return;
    }
    int fd = bl_conn_accept(l);
    if (fd == UV_ENOMEM) {
        accept_failed(s, l, fd);
        return;
    }
    if (fd >= 0 && (uint64_t)fd + fd_headroom(s->fd_limit) >= s->fd_limit)
        pause_at_fd_limit(s);
    if (s->shared) {
        bl_balance_publish(s->nconns);
        if (s->paused_at == 0 && bl_balance_over(s->nconns))
            pause_accepting(s);
    }
}

static int listen_error(const char *what, const char *name, int err)
{
    fprintf(stderr, "bayleaf: error: cannot %s %s: %s\n", what, name, uv_strerror(err));
    return err;
}

static void on_listener_closed(uv_handle_t *h)
{
    bl_listener_t *l = h->data;
    l->closed = true;
}

/* Starts accepting on a fresh handle over a dup of the kept socket, so closing
 * the handle to pause leaves the socket itself open. */
static int listener_open(bl_listener_t *l)
{
    bl_server_t *s = l->server;
    int fd = fcntl(l->fd, F_DUPFD_CLOEXEC, 0), err; /* never inherited by the app's children */
    if (fd < 0)
        return -errno;
    if (l->is_unix) {
        uv_pipe_init(&s->loop, &l->h.pipe, 0);
        err = uv_pipe_open(&l->h.pipe, fd);
    } else {
        uv_tcp_init(&s->loop, &l->h.tcp);
        err = uv_tcp_open(&l->h.tcp, fd);
    }
    l->h.handle.data = l;
    l->closed = false;
    if (err != 0)
        close(fd); /* the handle never took it */
    else
        err = uv_listen(&l->h.stream, l->backlog, on_connection);
    if (err != 0)
        uv_close(&l->h.handle, on_listener_closed); /* closed before it is opened again */
    return err;
}

static void listener_close(bl_listener_t *l)
{
    if (!uv_is_closing(&l->h.handle))
        uv_close(&l->h.handle, on_listener_closed);
}

/* Takes over a descriptor opened by listen.c. */
static int adopt(bl_server_t *s, bl_socket_t *sock)
{
    bl_listener_t *l = &s->listeners[s->nlisteners];
    l->server = s;
    l->is_unix = sock->is_unix;
    snprintf(l->name, sizeof(l->name), "%s", sock->name);
    snprintf(l->path, sizeof(l->path), "%s", sock->path);
    l->fd = sock->fd;
    l->backlog = sock->backlog;
    sock->fd = -1;
    s->nlisteners++;
    int err = listener_open(l);
    if (err != 0)
        return listen_error("listen on", l->name, err);
    return 0;
}

/* ---- accept balancing between workers (balance.h) ---- */

#define BL_UNPAUSE_CHECK_MS 10
#define BL_PAUSE_MAX_MS     250 /* bounds a pause whatever the others report */

static void on_unpause_check(uv_timer_t *t)
{
    bl_server_t *s = t->data;
    bool expired = uv_now(&s->loop) - s->paused_at >= BL_PAUSE_MAX_MS;
    if (s->draining || s->up_held || (s->fd_paused_conns > 0 && s->nconns >= s->fd_paused_conns) ||
        (!expired && bl_balance_over(s->nconns)))
        return;
    for (int i = 0; i < s->nlisteners; i++) {
        if (!s->listeners[i].closed)
            return; /* its close callback has yet to run: next tick */
    }
    for (int i = 0; i < s->nlisteners; i++) {
        bl_listener_t *l = &s->listeners[i];
        int err = listener_open(l);
        if (err != 0) {
            /* Out of descriptors or memory: all of them again on a later tick. */
            unsigned held;
            if (bl_log_limit_pass(&s->oom_log, uv_now(&s->loop), &held))
                BL_ERROR("Cannot accept on %s again: %s; retrying (%u more since the last report)",
                         l->name, uv_strerror(err), held);
            for (int j = 0; j < s->nlisteners; j++)
                listener_close(&s->listeners[j]);
            return;
        }
    }
    s->paused_at = 0;
    s->fd_paused_conns = 0;
    uv_timer_stop(&s->unpause);
}

static void pause_accepting(bl_server_t *s)
{
    for (int i = 0; i < s->nlisteners; i++)
        listener_close(&s->listeners[i]);
    s->paused_at = uv_now(&s->loop);
    uv_timer_start(&s->unpause, on_unpause_check, BL_UNPAUSE_CHECK_MS, BL_UNPAUSE_CHECK_MS);
}

/* ---- the process-wide bound on work queued toward Python ---- */

/* After work was queued toward Python or taken by it: applies the up-queue's
 * process-wide bound (stops or resumes accepting and reading). */
static void queue_check(bl_server_t *s)
{
    bool hold = bl_bridge_up_hold(s->up_held);
    if (hold == s->up_held)
        return;
    s->up_held = hold;
    if (hold) {
        s->burst_trims = BL_SWEEP_BURST_TRIMS;
        /* The kernel's backlog and socket buffers hold the excess meanwhile;
         * listeners reopen on the unpause timer once this clears. */
        static uint64_t logged_at;
        uint64_t now = uv_now(&s->loop);
        if (logged_at == 0 || now - logged_at >= 10000) { /* once in a while under overload */
            logged_at = now;
            BL_WARN("Python is behind (%zu bytes in %zu events queued, --max-queued-bytes "
                    "%zu): not accepting or reading until it catches up",
                    atomic_load(&bl_bridge.up_bytes), atomic_load(&bl_bridge.up_events),
                    bl_bridge.up_max_bytes);
        }
        if (s->paused_at == 0 && !s->draining)
            pause_accepting(s);
    } else {
        BL_DEBUG("Python caught up: accepting and reading again");
    }
    bl_conn_update_reading_all(s);
}

/* Posted once every connection is gone after a stop signal. */
static void post_drained(bl_server_t *s)
{
    if (s->drained)
        return;
    s->drained = true;
    uv_timer_stop(&s->grace);
    bl_event_t *ev = s->drained_ev; /* Python runs until it hears this */
    s->drained_ev = NULL;
    bl_bridge_post_up(ev);
}

static void on_conn_gone(bl_server_t *s)
{
    if (s->shared)
        bl_balance_publish(s->nconns);
    if (s->draining && s->nconns == 0)
        post_drained(s);
}

static void on_grace_timeout(uv_timer_t *t)
{
    bl_server_t *s = t->data;
    BL_WARN("Graceful timeout: closing %zu connection(s)", s->nconns);
    bl_conn_drain_all(s, true);
}

static void drain_now(bl_server_t *s)
{
    bl_conn_drain_all(s, false);
    if (s->nconns == 0)
        post_drained(s);
}

static void on_settled(uv_timer_t *t)
{
    drain_now(t->data);
}

/* ---- stopping at once ---- */

/* Stopping must end even when Python does not (its loop blocked by the app, a
 * lifespan shutdown that hangs, finalisation waiting for a thread that never
 * returns): by the deadline the supervisor gives its workers. A worker waits a
 * little longer: there the supervisor's SIGKILL is the rule and this the
 * fallback. */
#define BL_STOP_MARGIN_S       5.0
#define BL_STOP_WORKER_EXTRA_S 2.0
#define BL_STACK_DUMP_WAIT_S   3

static int stack_signal; /* faulthandler dumps the Python stacks on it (runner.py) */
static sem_t stack_dumped;

/* Runs after faulthandler's dump, which chains to the handler it replaced. */
static void on_stack_dumped(int signum)
{
    (void)signum;
    sem_post(&stack_dumped); /* async-signal-safe */
}

int bl_server_stack_signal(void)
{
    return stack_signal;
}

/* Every Python thread's stack to stderr, written by faulthandler on the Python
 * thread itself: no GIL needed, so a thread stuck holding it still reports. */
static void dump_python_stack(bl_server_t *s)
{
    struct timespec until;
    if (stack_signal == 0 || pthread_kill(s->py_thread, stack_signal) != 0)
        return;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += BL_STACK_DUMP_WAIT_S;
    while (sem_timedwait(&stack_dumped, &until) != 0 && errno == EINTR)
        continue;
}

/* Ends the process, Python wherever it is: the socket files go (the access
 * log is line-buffered: nothing to flush), and the status says it did not stop
 * cleanly. */
static _Noreturn void stop_at_once(bl_server_t *s)
{
    if (s->set != NULL)
        bl_listen_close(s->set); /* unlinks our socket files */
    BL_ERROR("Exiting with status 1");
    _exit(1);
}

static double stop_deadline_s(const bl_server_t *s)
{
    return s->cfg->graceful_timeout + s->cfg->application_close_timeout + BL_STOP_MARGIN_S +
           (s->shared ? BL_STOP_WORKER_EXTRA_S : 0);
}

/* A thread of its own: the deadline holds after the I/O loop has ended too,
 * while Python finalises. */
static void *stop_deadline_main(void *arg)
{
    bl_server_t *s = arg;
    double secs = stop_deadline_s(s);
    struct timespec at;
    clock_gettime(CLOCK_MONOTONIC, &at);
    at.tv_sec += (time_t)secs;
    at.tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
    if (at.tv_nsec >= 1000000000L) {
        at.tv_sec++;
        at.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR)
        continue;
    BL_ERROR("Shutdown did not finish %g s after the stop signal; the Python threads are at "
             "(most recent call first):",
             secs);
    dump_python_stack(s);
    stop_at_once(s);
}

static void start_stop_deadline(bl_server_t *s)
{
    pthread_t t;
    pthread_attr_t attr;
    int err = pthread_attr_init(&attr);
    if (err == 0) {
        err = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (err == 0)
            err = pthread_create(&t, &attr, stop_deadline_main, s);
        pthread_attr_destroy(&attr);
    }
    if (err != 0)
        BL_ERROR("Cannot watch the stop deadline: %s", strerror(err));
}

static void on_signal(uv_signal_t *sig, int signum)
{
    bl_server_t *s = sig->data;
    if (s->draining && s->shared) {
        /* The same stop reaches a worker twice (from the supervisor, and from the
         * terminal's Ctrl-C or systemd's cgroup-wide SIGTERM): cutting short is
         * the supervisor's call, with SIGKILL. */
        BL_DEBUG("Worker %d: already shutting down", (int)getpid());
        return;
    }
    if (s->draining) {
        /* A second signal: the operator will not wait, whatever Python is doing. */
        BL_ERROR("Second signal: stopping at once");
        stop_at_once(s);
    }
    if (s->shared)
        BL_INFO("Received %s, shutting down worker %d", signum == SIGINT ? "SIGINT" : "SIGTERM",
                (int)getpid());
    else
        BL_INFO("Received %s, shutting down", signum == SIGINT ? "SIGINT" : "SIGTERM");
    bl_sd_notify("STOPPING=1");
    s->draining = true;
    bl_metrics_gauge_set(BL_MG_STATE, BL_METRICS_DRAINING);
    bl_balance_set_accepting(false);
    uv_timer_stop(&s->unpause);
    for (int i = 0; i < s->nlisteners; i++) {
        listener_close(&s->listeners[i]);
        close(s->listeners[i].fd);
        s->listeners[i].fd = -1;
    }
    uv_timer_start(&s->grace, on_grace_timeout, (uint64_t)(s->cfg->graceful_timeout * 1000), 0);
    start_stop_deadline(s);
    /* A worker being replaced may have just accepted a connection whose request is
     * still on its way: the listener lives on in the others, so wait for it rather
     * than close it unserved. */
    if (s->shared && s->nconns > 0)
        uv_timer_start(&s->settle, on_settled, BL_SERVER_SETTLE_MS, 0);
    else
        drain_now(s);
}

/* A terminal's hangup reaches the whole process group: a worker leaves reloading
 * to its supervisor, and a lone process has nothing to reload into. */
static void on_sighup(uv_signal_t *sig, int signum)
{
    bl_server_t *s = sig->data;
    (void)signum;
    if (s->shared)
        BL_DEBUG("Worker %d: SIGHUP ignored (the supervisor replaces workers)", (int)getpid());
    else
        BL_INFO("Received SIGHUP: ignored (replacing the app on SIGHUP needs --workers)");
}

static void close_all_handles(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* A TOPIC_PUBLISH from any thread: fan it out, then free it. */
static void publish_event(bl_server_t *s, bl_event_t *ev)
{
    bl_bridge_publish_taken(ev);
    unsigned flags = ((ev->flags & BL_EVF_BINARY) ? 0 : BL_TOPIC_F_TEXT) |
                     ((ev->flags & BL_EVF_RETAIN) ? BL_TOPIC_F_RETAIN : 0);
    int err = bl_topics_publish(&s->topics, ev->data, ev->len, (const uint8_t *)ev->data + ev->len,
                                ev->len2, flags);
    if (err == -ENOMEM)
        BL_ERROR("topics: out of memory publishing to %.*s", (int)(ev->len < 80 ? ev->len : 80),
                 ev->data);
    bl_event_free(ev);
}

static void on_wake(uv_async_t *async)
{
    bl_server_t *s = async->data;
    bl_event_t *ev = bl_queue_take(&bl_bridge.down);
    while (ev != NULL) {
        bl_event_t *next = ev->next;
        if (ev->type == BL_EV_TOPIC_PUBLISH) {
            publish_event(s, ev); /* counted apart: pub_bytes */
            ev = next;
            continue;
        }
        bl_bridge_took_down(ev);
        if (ev->type == BL_EV_STOP) {
            bl_bridge_publish_close();
            bl_event_free(ev);
            bl_conn_drain_all(s, true);
            bl_server_topics_redis_close(s); /* hiredis closes its own handles */
            uv_walk(&s->loop, close_all_handles, NULL);
        } else {
            bl_conn_dispatch(s, ev); /* takes ownership */
        }
        ev = next;
    }
    if (s->up_held)
        queue_check(s); /* Python took the up-queue: it woke us */
}

/* Before the loop blocks: one wake for everything posted this iteration. */
static void on_flush_up(uv_prepare_t *prepare)
{
    bl_bridge_flush_up();
    /* --metrics reads the queues from any worker: published once an iteration
     * (the sweep timer makes one every second when idle). */
    bl_metrics_gauge_set(BL_MG_UP_BYTES, (int64_t)atomic_load(&bl_bridge.up_bytes));
    bl_metrics_gauge_set(BL_MG_UP_EVENTS, (int64_t)atomic_load(&bl_bridge.up_events));
    bl_metrics_gauge_set(BL_MG_DOWN_BYTES, (int64_t)atomic_load(&bl_bridge.down_bytes));
    bl_metrics_gauge_set(BL_MG_DOWN_EVENTS, (int64_t)atomic_load(&bl_bridge.down_events));
    /* Topic frames queued this iteration go out, one batch per subscriber. */
    bl_server_t *s = prepare->data;
    bl_topics_flush(&s->topics);
}

static void wake_io(void)
{
    uv_async_send(&io_server->wake);
}

int bl_server_init(bl_server_t *s, const bl_config_t *cfg, bl_listen_set_t *set, int ready_fd)
{
    int err;
    memset(s, 0, sizeof(*s));
    s->cfg = cfg;
    s->shared = cfg->workers > 0;
    s->ready_fd = ready_fd;
    s->limits.max_head = cfg->max_head;
    s->limits.max_url = cfg->max_url;
    s->limits.max_headers = cfg->max_headers;
    bl_bridge.up_max_bytes = cfg->max_queued_bytes;
    if ((err = uv_loop_init(&s->loop)) != 0)
        return listen_error("start", "the event loop", err);
    const char *faults = getenv("BAYLEAF_FAULT_ALLOC"); /* tests/faults only */
    char why[128];
    if (bl_fault_init(faults, why, sizeof(why)) != 0) {
        fprintf(stderr, "bayleaf: error: BAYLEAF_FAULT_ALLOC: %s\n", why);
        return -EINVAL;
    }
    if (faults != NULL && faults[0] != '\0')
        BL_WARN("BAYLEAF_FAULT_ALLOC=%s: allocations will fail on purpose (a test)", faults);
    uv_async_init(&s->loop, &s->wake, on_wake);
    s->wake.data = s;
    io_server = s;
    bl_bridge.wake_down = wake_io;
    bl_topics_limits_t tl = {
        .name_max = cfg->topics_name_max,
        .per_conn_max = cfg->topics_per_connection,
        .retained_max = cfg->topics_retained_bytes,
        .queue_max = cfg->topics_queue_bytes,
        .deflate_threshold = cfg->ws_compression_threshold,
    };
    if ((err = bl_topics_init(&s->topics, &tl)) != 0)
        return listen_error("start", "the topics registry", err);
    if ((err = bl_server_topics_redis_open(s)) != 0)
        return err;
    bl_bridge.topic_name_max = cfg->topics_name_max;
    /* Publishes from here on, before the I/O thread runs: the app's lifespan
     * startup may set retained values. They wait in the down queue (the
     * wake's uv_async_send is kept for the loop's first turn) and go out, in
     * order, before the first connection is accepted. */
    bl_bridge_publish_open(false);
    uv_prepare_init(&s->loop, &s->flush_up);
    s->flush_up.data = s;
    uv_prepare_start(&s->flush_up, on_flush_up);
    uv_unref((uv_handle_t *)&s->flush_up);
    uv_signal_init(&s->loop, &s->sigint);
    uv_signal_init(&s->loop, &s->sigterm);
    uv_signal_init(&s->loop, &s->sighup);
    s->sigint.data = s->sigterm.data = s->sighup.data = s;
    /* From now on, not only once the I/O thread runs: a hangup during startup. */
    uv_signal_start(&s->sighup, on_sighup, SIGHUP);
    uv_timer_init(&s->loop, &s->grace);
    s->grace.data = s;
    s->on_conn_gone = on_conn_gone;
    s->on_input_queued = queue_check;
    s->conn_proto = &bl_conn_http_proto;
    s->upgrade_proto = &bl_conn_ws_proto;
    if ((s->stop_ev = bl_event_new(BL_EV_STOP, NULL, 0)) == NULL ||
        (s->drained_ev = bl_event_new(BL_EV_DRAINED, NULL, 0)) == NULL)
        return listen_error("start", "the event loop", UV_ENOMEM);
    s->py_thread = pthread_self();
    s->set = set;
    struct rlimit rl;
    s->fd_limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                      ? (uint64_t)rl.rlim_cur
                      : UINT64_MAX;
    if (stack_signal == 0 && sem_init(&stack_dumped, 0, 0) == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_stack_dumped;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGRTMIN + 2, &sa, NULL) == 0)
            stack_signal = SIGRTMIN + 2;
    }
    uv_timer_init(&s->loop, &s->settle);
    s->settle.data = s;
    uv_timer_init(&s->loop, &s->unpause);
    s->unpause.data = s;
    uv_timer_init(&s->loop, &s->sweep);
    s->sweep.data = s;
    uv_unref((uv_handle_t *)&s->sweep);

    for (int i = 0; i < set->n && s->nlisteners < BL_MAX_LISTENERS; i++) {
        if (set->socks[i].fd >= 0 && (err = adopt(s, &set->socks[i])) != 0)
            return err;
    }

    if (cfg->access_log != NULL && strcmp(cfg->access_log, "-") != 0) {
        s->access_log = fopen(cfg->access_log, "a");
        if (s->access_log == NULL) {
            fprintf(stderr, "bayleaf: error: cannot open access log %s: %s\n", cfg->access_log,
                    strerror(errno));
            return -errno;
        }
        setvbuf(s->access_log, NULL, _IOLBF, 0);
    } else if (cfg->access_log != NULL || cfg->verbosity >= 1) {
        s->access_log = stdout;
        setvbuf(stdout, NULL, _IOLBF, 0);
    }
    return 0;
}

/* A WebSocket unused for one to two sweeps sleeps (ws.h). */
#define BL_SWEEP_MS 1000

/* Sessions sleeping at once that make it worth giving their memory back: the
 * freed contexts sit between live allocations, where free() keeps the pages. */
#define BL_SWEEP_TRIM_AT 64

static void on_sweep(uv_timer_t *t)
{
    bl_server_t *s = t->data;
    bool trim = bl_conn_ws_sweep(s) >= BL_SWEEP_TRIM_AT;
    if (s->up_held || atomic_load(&bl_bridge.up_bytes) >= BL_SWEEP_BURST_BYTES) {
        s->burst_trims = BL_SWEEP_BURST_TRIMS; /* a burst: trim once it is served */
    } else if (s->burst_trims > 0) {
        s->burst_trims--;
        trim = true;
    }
    if (trim)
        malloc_trim(0);
}

static void *io_main(void *arg)
{
    bl_server_t *s = arg;
    /* Named for top -H, perf and the benchmarks: the busy thread is told apart. */
    pthread_setname_np(pthread_self(), "bayleaf-io");
    /* Signals are handled here; the Python thread keeps the default mask. */
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    for (int i = 0; i < s->nlisteners; i++) {
        if (s->shared)
            BL_INFO("Listening on %s (worker %d)", s->listeners[i].name, (int)getpid());
        else
            BL_INFO("Listening on %s", s->listeners[i].name);
    }
    uv_timer_start(&s->sweep, on_sweep, BL_SWEEP_MS, BL_SWEEP_MS);
    /* Lifespan startup is over and the loop accepts from here on. */
    bl_balance_publish(s->nconns);
    bl_balance_set_accepting(true);
    bl_metrics_gauge_set(BL_MG_STATE, BL_METRICS_ACCEPTING);
    if (s->ready_fd >= 0) {
        ssize_t n = write(s->ready_fd, "R", 1);
        (void)n;
        close(s->ready_fd);
        s->ready_fd = -1;
    } else {
        bl_sd_notify("READY=1");
    }
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

int bl_server_start(bl_server_t *s)
{
    bl_bridge_publish_open(true);
    int err = pthread_create(&s->thread, NULL, io_main, s);
    if (err != 0) {
        bl_bridge_publish_close();
        return -err;
    }
    s->running = true;
    return 0;
}

void bl_server_post_stop(bl_server_t *s)
{
    bl_event_t *ev = s->stop_ev;
    s->stop_ev = NULL;
    if (ev == NULL)
        return;                          /* posted already */
    bl_bridge.schedule_down_wake = NULL; /* the loop is about to stop: wake now */
    bl_bridge_post_down(ev);
    bl_bridge_flush_down();
}

bl_server_t *bl_server_new(void)
{
    return calloc(1, sizeof(bl_server_t));
}

bool bl_server_running(const bl_server_t *s)
{
    return s->running;
}

void bl_server_join(bl_server_t *s)
{
    if (!s->running)
        return;
    pthread_join(s->thread, NULL);
    s->running = false;
}

void bl_server_close(bl_server_t *s)
{
    bl_server_topics_redis_close(s);
    uv_walk(&s->loop, close_all_handles, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    for (int i = 0; i < s->nlisteners; i++) {
        if (s->listeners[i].fd >= 0)
            close(s->listeners[i].fd);
        s->listeners[i].fd = -1;
    }
    if (s->ready_fd >= 0)
        close(s->ready_fd);
    s->ready_fd = -1;
    bl_bridge_publish_close();
    bl_bridge.wake_down = NULL;
    bl_topics_destroy(&s->topics);
    if (s->stop_ev != NULL)
        bl_event_free(s->stop_ev);
    s->stop_ev = NULL;
    if (s->drained_ev != NULL)
        bl_event_free(s->drained_ev);
    s->drained_ev = NULL;
    if (s->access_log != NULL && s->access_log != stdout)
        fclose(s->access_log);
    fflush(stdout);
    free(s);
}
