/* Opening every listener as a plain descriptor, before Python starts: bound here
 * (so "address in use" fails fast), adopted later by the I/O loop of this process
 * or of each worker. */
#include "bayleaf/io/listen.h"
#include "bayleaf/common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int sys_error(const char *what, const char *name, int err)
{
    fprintf(stderr, "bayleaf: error: cannot %s %s: %s\n", what, name, strerror(err));
    return -err;
}

static bl_socket_t *next_slot(bl_listen_set_t *set)
{
    if (set->n == BL_LISTEN_MAX) {
        fprintf(stderr, "bayleaf: error: too many listeners (at most %d)\n", BL_LISTEN_MAX);
        return NULL;
    }
    bl_socket_t *s = &set->socks[set->n];
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    s->backlog = BL_LISTEN_BACKLOG;
    return s;
}

static void format_addr(const struct sockaddr *sa, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
        snprintf(out, cap, "[%s]:%d", host, port);
        return;
    }
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    snprintf(out, cap, "%s:%d", host, ntohs(in->sin_port));
}

static int open_tcp(bl_listen_set_t *set, const char *host, int port, int backlog)
{
    struct addrinfo hints = {0}, *res = NULL;
    char portstr[16];
    bl_socket_t *s = next_slot(set);
    int err, one = 1;

    if (s == NULL)
        return -EMFILE;
    if (*host == '\0')
        host = "0.0.0.0";
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", port);
    snprintf(s->name, sizeof(s->name), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    if ((err = getaddrinfo(host, portstr, &hints, &res)) != 0) {
        fprintf(stderr, "bayleaf: error: cannot resolve %s: %s\n", host, gai_strerror(err));
        return -EINVAL;
    }
    s->fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        err = errno;
        freeaddrinfo(res);
        return sys_error("listen on", s->name, err);
    }
    set->n++;
    s->backlog = backlog;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    err = bind(s->fd, res->ai_addr, res->ai_addrlen) == 0 ? 0 : errno;
    freeaddrinfo(res);
    if (err == 0 && listen(s->fd, backlog) != 0)
        err = errno;
    if (err != 0)
        return sys_error("listen on", s->name, err);
    /* Port 0 asks the kernel for one: name the real one. */
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (port == 0 && getsockname(s->fd, (struct sockaddr *)&ss, &len) == 0)
        format_addr((struct sockaddr *)&ss, s->name, sizeof(s->name));
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

/* The socket file we bound is ours to unlink; its identity tells it from a successor's. */
static void remember_file(bl_socket_t *s)
{
    struct stat st;
    if (lstat(s->path, &st) == 0) {
        s->owns_path = true;
        s->dev = st.st_dev;
        s->ino = st.st_ino;
        s->ctime = st.st_ctim;
    }
}

static int open_unix(bl_listen_set_t *set, const char *path, int mode, int backlog)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    bl_socket_t *s;
    int err;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "bayleaf: error: unix socket path too long: %s\n", path);
        return -ENAMETOOLONG;
    }
    if ((s = next_slot(set)) == NULL)
        return -EMFILE;
    if ((err = unix_path_free(path)) != 0)
        return err;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    snprintf(s->path, sizeof(s->path), "%s", path);
    snprintf(s->name, sizeof(s->name), "%s", path);
    s->is_unix = true;
    if ((s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return sys_error("listen on", path, errno);
    set->n++;
    s->backlog = backlog;
    if (bind(s->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
        return sys_error("bind", path, errno);
    remember_file(s);
    /* Before listen(): nobody can connect until the mode is right. */
    if (mode >= 0 && chmod(path, (mode_t)mode) != 0)
        return sys_error("chmod", path, errno);
    remember_file(s); /* chmod changed its ctime */
    if (listen(s->fd, backlog) != 0)
        return sys_error("listen on", path, errno);
    return 0;
}

static bool domain_matches(int want, int family)
{
    if (want <= 0)
        return true;
    if (want == AF_UNIX || family == AF_UNIX)
        return want == family;
    return true; /* INET and INET6 alike: systemd's dual-stack sockets are AF_INET6 */
}

/* An inherited descriptor: must be a stream socket; listen() again if needed. */
static int adopt_fd(bl_listen_set_t *set, int fd, int domain, const char *label)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int type = 0, acc = 0;
    socklen_t ilen = sizeof(int);
    bl_socket_t *s;

    for (int i = 0; i < set->n; i++) {
        if (set->socks[i].fd == fd) {
            fprintf(stderr, "bayleaf: error: fd %d is given twice\n", fd);
            return -EINVAL;
        }
    }
    if ((s = next_slot(set)) == NULL)
        return -EMFILE;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ilen) != 0) {
        fprintf(stderr, "bayleaf: error: %s (fd %d) is not a socket: %s\n", label, fd,
                strerror(errno));
        return -ENOTSOCK;
    }
    if (type != SOCK_STREAM) {
        fprintf(stderr, "bayleaf: error: %s (fd %d) is not a stream socket\n", label, fd);
        return -ENOTSOCK;
    }
    if (!domain_matches(domain, ss.ss_family)) {
        fprintf(stderr, "bayleaf: error: %s (fd %d) is not of the domain asked for\n", label, fd);
        return -EINVAL;
    }
    ilen = sizeof(int);
    if ((getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &ilen) != 0 || !acc) &&
        listen(fd, BL_LISTEN_BACKLOG) != 0) {
        fprintf(stderr, "bayleaf: error: %s (fd %d) is not a listening socket: %s\n", label, fd,
                strerror(errno));
        return -EINVAL;
    }
    /* Keep 0-2 valid for stdio: serve a copy, put /dev/null in place. */
    if (fd <= STDERR_FILENO) {
        int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (copy < 0 || null < 0)
            return sys_error("move", label, errno);
        dup2(null, fd);
        close(null);
        fd = copy;
    } else {
        fcntl(fd, F_SETFD, FD_CLOEXEC); /* not for the app's subprocesses */
    }
    s->fd = fd;
    set->n++;
    if (ss.ss_family == AF_UNIX) {
        const char *p = ((struct sockaddr_un *)&ss)->sun_path;
        s->is_unix = true;
        if (len > offsetof(struct sockaddr_un, sun_path) && p[0] != '\0')
            snprintf(s->path, sizeof(s->path), "%.*s", (int)sizeof(s->path) - 1, p);
        snprintf(s->name, sizeof(s->name), "%s (%s)", label, s->path[0] ? s->path : "unix");
    } else {
        char addr[80];
        format_addr((struct sockaddr *)&ss, addr, sizeof(addr));
        snprintf(s->name, sizeof(s->name), "%s (%s)", label, addr);
    }
    return 0;
}

/* systemd's sockets, once per process: the variables are consumed (unset). */
static int take_systemd_fds(bl_sd_fds_t *sd)
{
    char err[256];
    int rc = bl_sd_fds_parse(sd, getenv("LISTEN_PID"), getenv("LISTEN_FDS"),
                             getenv("LISTEN_FDNAMES"), getpid(), err, sizeof(err));
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (rc != 0) {
        fprintf(stderr, "bayleaf: error: %s\n", err);
        return rc;
    }
    for (int i = 0; i < sd->n; i++)
        fcntl(BL_SD_FDS_START + i, F_SETFD, FD_CLOEXEC);
    return 0;
}

static int adopt_systemd(bl_listen_set_t *set, const bl_sd_fds_t *sd, const bl_endpoint_t *ep,
                         const char *spec)
{
    char label[300];
    int index = ep->index;
    if (sd->n == 0) {
        fprintf(stderr, "bayleaf: error: -e %s: systemd passed no sockets (LISTEN_FDS unset)\n",
                spec);
        return -ENOENT;
    }
    for (int i = 0; index < 0 && i < sd->n; i++) {
        if (strcmp(sd->names[i], ep->fdname) == 0)
            index = i;
    }
    if (index < 0 || index >= sd->n) {
        fprintf(stderr, "bayleaf: error: -e %s: systemd passed %d socket(s), none matches\n", spec,
                sd->n);
        return -ENOENT;
    }
    snprintf(label, sizeof(label), "systemd socket %d", index);
    return adopt_fd(set, BL_SD_FDS_START + index, ep->domain, label);
}

/* Passed sockets nobody asked for: systemd keeps its own copy. */
static void close_unused(const bl_listen_set_t *set, const bl_sd_fds_t *sd)
{
    for (int i = 0; i < sd->n; i++) {
        bool used = false;
        for (int j = 0; j < set->n; j++)
            used |= set->socks[j].fd == BL_SD_FDS_START + i;
        if (!used)
            close(BL_SD_FDS_START + i);
    }
}

/* Without listener options, systemd's sockets are the listeners. */
static int adopt_all_systemd(bl_listen_set_t *set, const bl_sd_fds_t *sd)
{
    char label[300];
    int rc;
    for (int i = 0; i < sd->n; i++) {
        if (sd->names[i][0] && strcmp(sd->names[i], "unknown") != 0)
            snprintf(label, sizeof(label), "systemd socket %s", sd->names[i]);
        else
            snprintf(label, sizeof(label), "systemd socket %d", i);
        if ((rc = adopt_fd(set, BL_SD_FDS_START + i, 0, label)) != 0)
            return rc;
    }
    return 0;
}

/* --fd, -e fd:, -e systemd: (before any socket is made, which could take their numbers). */
static int adopt_inherited(bl_listen_set_t *set, const bl_config_t *cfg, const bl_endpoint_t *eps,
                           const bl_sd_fds_t *sd)
{
    char label[64];
    int rc = 0, picked = 0;
    for (int i = 0; i < cfg->nendpoints; i++)
        picked += eps[i].kind == BL_EP_SYSTEMD;
    if (sd->n > 0 && picked == 0)
        BL_WARN("Sockets passed by systemd (%d) not served: the listener options given replace "
                "them (-e systemd:domain=INET:index=N picks one)",
                sd->n);
    if (cfg->fd >= 0) {
        snprintf(label, sizeof(label), "fd %d", cfg->fd);
        if ((rc = adopt_fd(set, cfg->fd, 0, label)) != 0)
            return rc;
    }
    for (int i = 0; i < cfg->nendpoints && rc == 0; i++) {
        if (eps[i].kind == BL_EP_FD) {
            snprintf(label, sizeof(label), "fd %d", eps[i].fd);
            rc = adopt_fd(set, eps[i].fd, eps[i].domain, label);
        } else if (eps[i].kind == BL_EP_SYSTEMD) {
            rc = adopt_systemd(set, sd, &eps[i], cfg->endpoints[i]);
        }
    }
    return rc;
}

/* -u, -e unix:, -e tcp:, -b/-p. */
static int open_created(bl_listen_set_t *set, const bl_config_t *cfg, const bl_endpoint_t *eps,
                        bool explicit)
{
    int rc = 0;
    if (cfg->unix_socket != NULL)
        rc = open_unix(set, cfg->unix_socket, cfg->unix_socket_mode, BL_LISTEN_BACKLOG);
    for (int i = 0; i < cfg->nendpoints && rc == 0; i++) {
        const bl_endpoint_t *ep = &eps[i];
        if (ep->kind == BL_EP_UNIX)
            rc = open_unix(set, ep->path, ep->mode >= 0 ? ep->mode : cfg->unix_socket_mode,
                           ep->backlog);
        else if (ep->kind == BL_EP_TCP)
            rc = open_tcp(set, ep->host, ep->port, ep->backlog);
    }
    /* Daphne: -b or -p gives TCP; so does nothing at all; -u/--fd/-e alone do not. */
    if (rc == 0 && (cfg->host != NULL || cfg->port >= 0 || !explicit))
        rc = open_tcp(set, cfg->host ? cfg->host : "127.0.0.1", cfg->port >= 0 ? cfg->port : 8000,
                      BL_LISTEN_BACKLOG);
    return rc;
}

int bl_listen_open(bl_listen_set_t *set, const bl_config_t *cfg)
{
    bl_endpoint_t eps[BL_MAX_ENDPOINTS];
    bl_sd_fds_t sd;
    char err[512];
    int rc;

    memset(set, 0, sizeof(*set));
    for (int i = 0; i < cfg->nendpoints; i++) {
        if (bl_endpoint_parse(&eps[i], cfg->endpoints[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "bayleaf: error: %s\n", err);
            return -EINVAL;
        }
    }
    if ((rc = take_systemd_fds(&sd)) != 0)
        return rc;
    bool explicit = cfg->host != NULL || cfg->port >= 0 || cfg->unix_socket != NULL ||
                    cfg->fd >= 0 || cfg->nendpoints > 0;
    if (!explicit && sd.n > 0)
        return adopt_all_systemd(set, &sd);
    if ((rc = adopt_inherited(set, cfg, eps, &sd)) != 0)
        return rc;
    close_unused(set, &sd);
    return open_created(set, cfg, eps, explicit);
}

void bl_listen_close(bl_listen_set_t *set)
{
    for (int i = 0; i < set->n; i++) {
        bl_socket_t *s = &set->socks[i];
        if (s->fd >= 0)
            close(s->fd);
        s->fd = -1;
        /* Still the file we bound, not one a successor bound since (inode
         * numbers are reused: the change time tells them apart). */
        struct stat st;
        if (s->owns_path && lstat(s->path, &st) == 0 && st.st_dev == s->dev &&
            st.st_ino == s->ino && st.st_ctim.tv_sec == s->ctime.tv_sec &&
            st.st_ctim.tv_nsec == s->ctime.tv_nsec)
            unlink(s->path);
        s->owns_path = false;
    }
    set->n = 0;
}

/* --metrics: "HOST:PORT", "[V6]:PORT" or "unix:PATH", into set. */
int bl_listen_open_address(bl_listen_set_t *set, const char *address, int mode)
{
    char host[256];
    const char *start = address, *end, *stop = NULL;
    if (strncmp(address, "unix:", 5) == 0)
        return open_unix(set, address + 5, mode, BL_LISTEN_BACKLOG);
    if (address[0] == '[') { /* an IPv6 address */
        start = address + 1;
        end = strchr(start, ']');
        if (end != NULL && end[1] != ':')
            end = NULL;
    } else {
        end = strrchr(address, ':');
        if (end != NULL && memchr(address, ':', (size_t)(end - address)) != NULL)
            end = NULL; /* IPv6 without brackets: ambiguous */
    }
    const char *port_at = end == NULL ? NULL : end + (*end == ']' ? 2 : 1);
    long port = port_at != NULL && *port_at != '\0' ? strtol(port_at, (char **)&stop, 10) : -1;
    size_t hlen = end != NULL ? (size_t)(end - start) : 0;
    if (stop == NULL || *stop != '\0' || port < 0 || port > 65535 || hlen >= sizeof(host)) {
        fprintf(stderr,
                "bayleaf: error: invalid address %s (expected HOST:PORT, [V6]:PORT or "
                "unix:PATH)\n",
                address);
        return -EINVAL;
    }
    memcpy(host, start, hlen);
    host[hlen] = '\0';
    return open_tcp(set, host, (int)port, BL_LISTEN_BACKLOG);
}
