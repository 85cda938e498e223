/* bayleaf: parse the command line, open the listeners, then serve them: Python
 * on this thread, or --workers processes under a supervisor that never starts it. */
#include "bayleaf/bridge/bridge.h"
#include "bayleaf/bridge/io_control.h"
#include "bayleaf/proc/cmdline.h"
#include "bayleaf/io/listen.h"
#include "bayleaf/io/metrics_http.h"
#include "bayleaf/common/log.h"
#include "bayleaf/common/metrics.h"
#include "bayleaf/io/sd_notify.h"
#include "bayleaf/io/topics_redis.h"
#include "bayleaf/io/server.h"
#include "bayleaf/io/versions.h"
#include "bayleaf/proto/versions.h"
#include "bayleaf/proc/supervisor.h"
#include "bayleaf/py/embed.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

typedef struct {
    const bl_config_t *cfg;
    int argc;
    char **argv;
    const bl_socket_t *metrics; /* --metrics' listener, or NULL */
} serve_args_t;

/* The I/O thread as the Python side sees it (bridge/io_control.h). */
static int io_start(void *server)
{
    return bl_server_start(server);
}

static void io_post_stop(void *server)
{
    bl_server_post_stop(server);
}

static void io_join(void *server)
{
    bl_server_join(server);
}

static bool io_running(const void *server)
{
    return bl_server_running(server);
}

/* "127.0.0.1:8000, /run/app.sock": the listeners, for the start-up line. */
static void listener_names(const bl_listen_set_t *set, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < set->n && used < cap; i++) {
        int n = snprintf(out + used, cap - used, "%s%s", i ? ", " : "", set->socks[i].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* One serving process: the I/O thread on set's sockets, the app on this thread. */
static int serve(bl_listen_set_t *set, int ready_fd, void *arg)
{
    const serve_args_t *a = arg;
    char listeners[BL_LISTEN_MAX * 136];
    int rc;
    listener_names(set, listeners, sizeof(listeners));
    if ((rc = bl_bridge_init()) != 0) {
        fprintf(stderr, "bayleaf: error: cannot set up the thread bridge: %s\n", strerror(-rc));
        return 1;
    }
    bl_server_t *server = bl_server_new();
    if (server == NULL) {
        fprintf(stderr, "bayleaf: error: out of memory\n");
        bl_bridge_destroy();
        return 1;
    }
    if (bl_server_init(server, a->cfg, set, ready_fd) != 0) {
        bl_server_close(server);
        bl_bridge_destroy();
        return 1;
    }
    bl_io_control_t io = {
        .server = server,
        .start = io_start,
        .post_stop = io_post_stop,
        .join = io_join,
        .running = io_running,
        .stack_signal = bl_server_stack_signal(),
        .listeners = listeners,
    };
    /* Answers from now on: 503 while lifespan startup runs. */
    bl_metrics_http_t *metrics = NULL;
    if (a->metrics != NULL &&
        (metrics = bl_metrics_http_start(a->metrics->fd, a->metrics->is_unix)) == NULL) {
        bl_server_close(server);
        bl_bridge_destroy();
        return 1;
    }
    rc = bl_python_run(&io, a->cfg, a->argc, a->argv);
    if (bl_server_running(server)) {
        /* Python ended without stopping the I/O thread (it failed): stop it. */
        bl_server_post_stop(server);
        bl_server_join(server);
    }
    bl_metrics_http_stop(metrics);
    bl_server_close(server);
    bl_bridge_destroy();
    return rc;
}

/* Every connection is a descriptor: the soft limit (often 1024) goes up to the
 * hard one, for the workers too. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rlim_t was = rl.rlim_cur;
    if (rl.rlim_max == RLIM_INFINITY) {
        /* The kernel refuses more than fs.nr_open. */
        unsigned long long nr_open = 1048576;
        FILE *f = fopen("/proc/sys/fs/nr_open", "r");
        if (f != NULL) {
            if (fscanf(f, "%llu", &nr_open) != 1)
                nr_open = 1048576;
            fclose(f);
        }
        rl.rlim_max = (rlim_t)nr_open;
    }
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        BL_WARN("Cannot raise the file-descriptor limit from %llu: %s", (unsigned long long)was,
                strerror(errno));
    else
        BL_DEBUG("File-descriptor limit raised from %llu to %llu", (unsigned long long)was,
                 (unsigned long long)rl.rlim_cur);
}

/* ps and /proc/PID/cmdline show the command line: the password of a
 * --topics-redis URL there becomes x's (before the workers fork, and before
 * Python's sys.argv is made), and the server reads a copy. */
static void hide_redis_password(bl_config_t *cfg)
{
    static char url[2048];
    char *arg = (char *)cfg->topics_redis; /* a part of argv: writable */
    size_t off, len, n = arg != NULL ? strlen(arg) : 0;
    if (arg == NULL || n >= sizeof(url) || !bl_redis_url_password(arg, &off, &len))
        return;
    memcpy(url, arg, n + 1);
    cfg->topics_redis = url;
    memset(arg + off, 'x', len);
}

int main(int argc, char **argv)
{
    static bl_config_t cfg;
    static bl_listen_set_t set, metrics_set;
    int rc = bl_config_parse(&cfg, argc, argv, stdout, stderr);
    if (rc == BL_CONFIG_EXIT && cfg.show_version) {
        bl_python_versions_print(stdout);
        bl_io_versions_print(stdout);
        bl_proto_versions_print(stdout);
    }
    if (rc == BL_CONFIG_EXIT)
        return 0;
    if (rc < 0)
        return 2;
    hide_redis_password(&cfg);
    signal(SIGPIPE, SIG_IGN);
    bl_log_verbosity = cfg.verbosity;
    /* Every C line in --log-fmt's format, as Python's: one log, one format. */
    if (bl_log_set_format(cfg.log_fmt) != 0) {
        fprintf(stderr,
                "bayleaf: error: invalid --log-fmt %s (a Python logging format: "
                "%%(asctime)s %%(levelname)s %%(name)s %%(message)s ...)\n",
                cfg.log_fmt);
        return 2;
    }
    raise_fd_limit();
    bl_sd_notify_init();
    /* Every listener is open before Python (or any worker) starts. */
    if (bl_listen_open(&set, &cfg) != 0) {
        bl_listen_close(&set);
        return 1;
    }
    serve_args_t args = {.cfg = &cfg, .argc = argc, .argv = argv};
    if (cfg.metrics != NULL) {
        /* The counters are shared with the workers: mapped before they fork
         * (by the supervisor, which knows how many processes it keeps). */
        if (bl_listen_open_address(&metrics_set, cfg.metrics, cfg.unix_socket_mode) != 0 ||
            (cfg.workers == 0 && bl_metrics_init(1, 1, false) != 0)) {
            if (metrics_set.n > 0 && !bl_metrics_enabled())
                fprintf(stderr, "bayleaf: error: --metrics: cannot map the counters\n");
            bl_listen_close(&metrics_set);
            bl_listen_close(&set);
            return 1;
        }
        args.metrics = &metrics_set.socks[0];
    }
    if (cfg.workers > 0)
        rc = bl_supervisor_run(&cfg, &set, serve, &args);
    else
        rc = serve(&set, -1, &args);
    bl_listen_close(&metrics_set);
    bl_listen_close(&set);
    return rc;
}
