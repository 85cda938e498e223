/* Listeners, signals and the I/O thread's life. */
#include "bayleaf/server.h"
#include "bayleaf/bridge.h"
#include "bayleaf/log.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static bl_server_t *io_server; /* for the wake function */

static void on_connection(uv_stream_t *stream, int status)
{
    bl_listener_t *l = stream->data;
    if (status < 0) {
        BL_ERROR("accept on %s failed: %s", l->name, uv_strerror(status));
        return;
    }
    bl_conn_accept(l);
}

static int listen_error(const char *what, const char *name, int err)
{
    fprintf(stderr, "bayleaf: error: cannot %s %s: %s\n", what, name, uv_strerror(err));
    return err;
}

static int open_tcp(bl_server_t *s, const char *host, int port)
{
    struct addrinfo hints = {0}, *res = NULL;
    char portstr[16];
    bl_listener_t *l = &s->listeners[s->nlisteners];
    int err;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", port);
    if (strchr(host, ':') != NULL)
        snprintf(l->name, sizeof(l->name), "[%s]:%d", host, port);
    else
        snprintf(l->name, sizeof(l->name), "%s:%d", host, port);
    if ((err = getaddrinfo(host, portstr, &hints, &res)) != 0) {
        fprintf(stderr, "bayleaf: error: cannot resolve %s: %s\n", host, gai_strerror(err));
        return -EINVAL;
    }
    uv_tcp_init(&s->loop, &l->h.tcp);
    l->h.handle.data = l;
    l->server = s;
    s->nlisteners++;
    err = uv_tcp_bind(&l->h.tcp, res->ai_addr, 0);
    freeaddrinfo(res);
    if (err == 0)
        err = uv_listen(&l->h.stream, 1024, on_connection);
    if (err != 0)
        return listen_error("listen on", l->name, err);
    /* Port 0 asks the kernel for one: report the real address. */
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (port == 0 && uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&ss, &len) == 0) {
        int real = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                  : ((struct sockaddr_in *)&ss)->sin_port);
        snprintf(l->name, sizeof(l->name), "%s:%d", host, real);
    }
    return 0;
}

/* A socket file nobody answers on is stale and may be replaced; a live one is not. */
static int unix_path_free(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return 0;
    if (!S_ISSOCK(st.st_mode)) {
        fprintf(stderr, "bayleaf: error: %s exists and is not a socket\n", path);
        return -EEXIST;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    strncpy(sun.sun_path, path, sizeof(sun.sun_path) - 1);
    int live = fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
    if (fd >= 0)
        close(fd);
    if (live) {
        fprintf(stderr, "bayleaf: error: cannot listen on %s: another server is using it\n", path);
        return -EADDRINUSE;
    }
    unlink(path);
    return 0;
}

static int open_unix(bl_server_t *s, const char *path)
{
    bl_listener_t *l = &s->listeners[s->nlisteners];
    int err;
    if (strlen(path) >= sizeof(l->path)) {
        fprintf(stderr, "bayleaf: error: unix socket path too long: %s\n", path);
        return -ENAMETOOLONG;
    }
    if ((err = unix_path_free(path)) != 0)
        return err;
    uv_pipe_init(&s->loop, &l->h.pipe, 0);
    l->h.handle.data = l;
    l->server = s;
    l->is_unix = true;
    snprintf(l->path, sizeof(l->path), "%s", path);
    snprintf(l->name, sizeof(l->name), "%s", path);
    s->nlisteners++;
    if ((err = uv_pipe_bind(&l->h.pipe, path)) != 0)
        return listen_error("bind", path, err);
    l->owns_path = true;
    if ((err = uv_listen(&l->h.stream, 1024, on_connection)) != 0)
        return listen_error("listen on", path, err);
    return 0;
}

static int open_fd(bl_server_t *s, int fd)
{
    bl_listener_t *l = &s->listeners[s->nlisteners];
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int err;
    snprintf(l->name, sizeof(l->name), "fd %d", fd);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        fprintf(stderr, "bayleaf: error: --fd %d is not a socket: %s\n", fd, strerror(errno));
        return -errno;
    }
    l->server = s;
    if (ss.ss_family == AF_UNIX) {
        uv_pipe_init(&s->loop, &l->h.pipe, 0);
        l->is_unix = true;
        memcpy(l->path, ((struct sockaddr_un *)&ss)->sun_path, sizeof(l->path) - 1);
        l->path[sizeof(l->path) - 1] = '\0';
        err = uv_pipe_open(&l->h.pipe, fd);
    } else {
        uv_tcp_init(&s->loop, &l->h.tcp);
        err = uv_tcp_open(&l->h.tcp, fd);
    }
    l->h.handle.data = l;
    s->nlisteners++;
    if (err == 0)
        err = uv_listen(&l->h.stream, 1024, on_connection);
    if (err != 0)
        return listen_error("listen on", l->name, err);
    return 0;
}

/* Posted once every connection is gone after a stop signal. */
static void post_drained(bl_server_t *s)
{
    if (s->drained)
        return;
    s->drained = true;
    uv_timer_stop(&s->grace);
    bl_event_t *ev = bl_event_new(BL_EV_DRAINED, NULL, 0);
    if (ev != NULL)
        bl_bridge_post_up(ev);
}

void bl_server_conn_gone(bl_server_t *s)
{
    if (s->draining && s->nconns == 0)
        post_drained(s);
}

static void on_grace_timeout(uv_timer_t *t)
{
    bl_server_t *s = t->data;
    BL_WARN("graceful timeout: closing %zu connection(s)", s->nconns);
    bl_conn_drain_all(s, true);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    bl_server_t *s = sig->data;
    if (s->draining) {
        /* A second signal: stop now. */
        BL_INFO("second signal: closing every connection");
        bl_conn_drain_all(s, true);
        return;
    }
    BL_INFO("received %s, shutting down", signum == SIGINT ? "SIGINT" : "SIGTERM");
    s->draining = true;
    for (int i = 0; i < s->nlisteners; i++) {
        if (!uv_is_closing(&s->listeners[i].h.handle))
            uv_close(&s->listeners[i].h.handle, NULL);
    }
    bl_conn_drain_all(s, false);
    if (s->nconns == 0)
        post_drained(s);
    else
        uv_timer_start(&s->grace, on_grace_timeout, (uint64_t)(s->cfg->graceful_timeout * 1000),
                       0);
}

static void close_all_handles(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_wake(uv_async_t *async)
{
    bl_server_t *s = async->data;
    bl_event_t *ev = bl_queue_take(&bl_bridge.down);
    while (ev != NULL) {
        bl_event_t *next = ev->next;
        if (ev->type == BL_EV_STOP) {
            bl_event_free(ev);
            bl_conn_drain_all(s, true);
            uv_walk(&s->loop, close_all_handles, NULL);
        } else {
            bl_conn_dispatch(s, ev); /* takes ownership */
        }
        ev = next;
    }
}

/* Before the loop blocks: one wake for everything posted this iteration. */
static void on_flush_up(uv_prepare_t *prepare)
{
    (void)prepare;
    bl_bridge_flush_up();
}

static void wake_io(void)
{
    uv_async_send(&io_server->wake);
}

int bl_server_init(bl_server_t *s, const bl_config_t *cfg)
{
    int err;
    memset(s, 0, sizeof(*s));
    s->cfg = cfg;
    s->limits.max_head = cfg->max_head;
    s->limits.max_url = cfg->max_url;
    s->limits.max_headers = cfg->max_headers;
    if ((err = uv_loop_init(&s->loop)) != 0)
        return listen_error("start", "the event loop", err);
    uv_async_init(&s->loop, &s->wake, on_wake);
    s->wake.data = s;
    io_server = s;
    bl_bridge.wake_down = wake_io;
    uv_prepare_init(&s->loop, &s->flush_up);
    uv_prepare_start(&s->flush_up, on_flush_up);
    uv_unref((uv_handle_t *)&s->flush_up);
    uv_signal_init(&s->loop, &s->sigint);
    uv_signal_init(&s->loop, &s->sigterm);
    s->sigint.data = s->sigterm.data = s;
    uv_timer_init(&s->loop, &s->grace);
    s->grace.data = s;

    if (cfg->unix_socket != NULL && (err = open_unix(s, cfg->unix_socket)) != 0)
        return err;
    if (cfg->fd >= 0 && (err = open_fd(s, cfg->fd)) != 0)
        return err;
    if (bl_config_wants_tcp(cfg) &&
        (err = open_tcp(s, cfg->host ? cfg->host : "127.0.0.1", cfg->port >= 0 ? cfg->port : 8000)) != 0)
        return err;

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

static void *io_main(void *arg)
{
    bl_server_t *s = arg;
    /* Signals are handled here; the Python thread keeps the default mask. */
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    for (int i = 0; i < s->nlisteners; i++)
        BL_INFO("Listening on %s", s->listeners[i].name);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

int bl_server_start(bl_server_t *s)
{
    int err = pthread_create(&s->thread, NULL, io_main, s);
    if (err != 0)
        return -err;
    s->running = true;
    return 0;
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
    uv_walk(&s->loop, close_all_handles, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    for (int i = 0; i < s->nlisteners; i++) {
        if (s->listeners[i].owns_path)
            unlink(s->listeners[i].path);
    }
    uv_loop_close(&s->loop);
    bl_bridge.wake_down = NULL;
    if (s->access_log != NULL && s->access_log != stdout)
        fclose(s->access_log);
    fflush(stdout);
}
