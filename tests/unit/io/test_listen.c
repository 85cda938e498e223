/* Endpoint strings and systemd's LISTEN_* variables (socket-free), then a few
 * bl_listen_open() cases on loopback and a private directory. */
#include "bayleaf/io/listen.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "check.h"

static char err[512];

static int parse(bl_endpoint_t *ep, const char *spec)
{
    err[0] = '\0';
    return bl_endpoint_parse(ep, spec, err, sizeof(err));
}

static void test_tcp(void)
{
    bl_endpoint_t ep;
    CHECK_EQ_INT(parse(&ep, "tcp:port=8000:interface=127.0.0.1"), 0);
    CHECK_EQ_INT(ep.kind, BL_EP_TCP);
    CHECK_EQ_INT(ep.port, 8000);
    CHECK_EQ_STR(ep.host, "127.0.0.1");
    CHECK_EQ_INT(ep.backlog, BL_LISTEN_BACKLOG);

    /* Positional port; Twisted's default interface is every one. */
    CHECK_EQ_INT(parse(&ep, "tcp:8000"), 0);
    CHECK_EQ_INT(ep.port, 8000);
    CHECK_EQ_STR(ep.host, "0.0.0.0");

    CHECK_EQ_INT(parse(&ep, "tcp:8001:127.0.0.2"), 0);
    CHECK_EQ_STR(ep.host, "127.0.0.2");

    CHECK_EQ_INT(parse(&ep, "tcp:interface=127.0.0.1:port=0:backlog=7"), 0);
    CHECK_EQ_INT(ep.port, 0);
    CHECK_EQ_INT(ep.backlog, 7);

    /* Backslash-escaped colons in an IPv6 address. */
    CHECK_EQ_INT(parse(&ep, "tcp:port=80:interface=\\:\\:1"), 0);
    CHECK_EQ_STR(ep.host, "::1");
    CHECK_EQ_INT(parse(&ep, "tcp6:port=80"), 0);
    CHECK_EQ_STR(ep.host, "::");

    CHECK_EQ_INT(parse(&ep, "tcp"), -EINVAL);
    CHECK_HAS(err, "port is required");
    CHECK_EQ_INT(parse(&ep, "tcp:interface=127.0.0.1"), -EINVAL);
    CHECK_EQ_INT(parse(&ep, "tcp:port=70000"), -EINVAL);
    CHECK_HAS(err, "invalid port");
    CHECK_EQ_INT(parse(&ep, "tcp:port=80x"), -EINVAL);
    CHECK_EQ_INT(parse(&ep, "tcp:port="), -EINVAL);
    CHECK_EQ_INT(parse(&ep, "tcp:port=80:colour=blue"), -EINVAL);
    CHECK_HAS(err, "unknown option 'colour'");
    CHECK_EQ_INT(parse(&ep, "tcp:port=80:port=81"), -EINVAL);
    CHECK_HAS(err, "twice");
    CHECK_EQ_INT(parse(&ep, "tcp:80:port=81"), -EINVAL);
    CHECK_EQ_INT(parse(&ep, "tcp:port=80:127.0.0.1"), -EINVAL); /* positional after keyword */
    CHECK_EQ_INT(parse(&ep, "tcp:1:h:2:extra"), -EINVAL);
    CHECK_HAS(err, "too many");
}

static void test_unix(void)
{
    bl_endpoint_t ep;
    CHECK_EQ_INT(parse(&ep, "unix:/run/daphne/d0.sock"), 0);
    CHECK_EQ_INT(ep.kind, BL_EP_UNIX);
    CHECK_EQ_STR(ep.path, "/run/daphne/d0.sock");
    CHECK_EQ_INT(ep.mode, -1);

    CHECK_EQ_INT(parse(&ep, "unix:path=/tmp/x.sock:mode=660"), 0);
    CHECK_EQ_STR(ep.path, "/tmp/x.sock");
    CHECK_EQ_INT(ep.mode, 0660);
    CHECK_EQ_INT(parse(&ep, "unix:address=/tmp/y.sock:mode=0600:lockfile=1:backlog=5"), 0);
    CHECK_EQ_STR(ep.path, "/tmp/y.sock");
    CHECK_EQ_INT(ep.mode, 0600);
    CHECK_EQ_INT(ep.backlog, 5);
    CHECK_EQ_INT(parse(&ep, "unix:/tmp/a\\:b.sock"), 0);
    CHECK_EQ_STR(ep.path, "/tmp/a:b.sock");

    CHECK_EQ_INT(parse(&ep, "unix:"), -EINVAL);
    CHECK_EQ_INT(parse(&ep, "unix:mode=660"), -EINVAL);
    CHECK_EQ_INT(parse(&ep, "unix:/tmp/z.sock:mode=999"), -EINVAL);
    CHECK_HAS(err, "invalid mode");
    char longp[300] = "unix:/";
    memset(longp + 6, 'a', 200);
    CHECK_EQ_INT(parse(&ep, longp), -EINVAL);
}

static void test_fd_and_systemd(void)
{
    bl_endpoint_t ep;
    CHECK_EQ_INT(parse(&ep, "fd:fileno=0"), 0);
    CHECK_EQ_INT(ep.kind, BL_EP_FD);
    CHECK_EQ_INT(ep.fd, 0);
    CHECK_EQ_INT(parse(&ep, "fd:5"), 0);
    CHECK_EQ_INT(ep.fd, 5);
    CHECK_EQ_INT(parse(&ep, "fd:fileno=3:domain=UNIX"), 0);
    CHECK_EQ_INT(ep.domain, AF_UNIX);
    CHECK_EQ_INT(parse(&ep, "fd:fileno=-1"), -EINVAL);
    CHECK_EQ_INT(parse(&ep, "fd:"), -EINVAL);

    CHECK_EQ_INT(parse(&ep, "systemd:domain=INET:index=0"), 0);
    CHECK_EQ_INT(ep.kind, BL_EP_SYSTEMD);
    CHECK_EQ_INT(ep.domain, AF_INET);
    CHECK_EQ_INT(ep.index, 0);
    CHECK_EQ_INT(parse(&ep, "systemd:domain=INET6:index=2"), 0);
    CHECK_EQ_INT(ep.domain, AF_INET6);
    CHECK_EQ_INT(ep.index, 2);
    CHECK_EQ_INT(parse(&ep, "systemd:domain=UNIX:name=web"), 0);
    CHECK_EQ_INT(ep.domain, AF_UNIX);
    CHECK_EQ_INT(ep.index, -1);
    CHECK_EQ_STR(ep.fdname, "web");
    CHECK_EQ_INT(parse(&ep, "systemd:INET:1"), 0);
    CHECK_EQ_INT(ep.index, 1);
    CHECK_EQ_INT(parse(&ep, "systemd:domain=INET"), -EINVAL);
    CHECK_EQ_INT(parse(&ep, "systemd:index=0"), -EINVAL);
    CHECK_EQ_INT(parse(&ep, "systemd:domain=APPLETALK:index=0"), -EINVAL);
    CHECK_EQ_INT(parse(&ep, "systemd:domain=INET:index=0:name=web"), -EINVAL);
}

static void test_refused(void)
{
    bl_endpoint_t ep;
    CHECK_EQ_INT(parse(&ep, "ssl:443:privateKey=key.pem:certKey=crt.pem"), -EPROTONOSUPPORT);
    CHECK_HAS(err, "TLS");
    CHECK_HAS(err, "nginx");
    CHECK_LACKS(err, "\n");
    CHECK_EQ_INT(parse(&ep, "ssl6:port=443"), -EPROTONOSUPPORT);
    CHECK_EQ_INT(parse(&ep, "udp:53"), -EINVAL);
    CHECK_HAS(err, "unknown type 'udp'");
    CHECK_EQ_INT(parse(&ep, ""), -EINVAL);
}

static void test_sd_fds(void)
{
    bl_sd_fds_t sd;
    CHECK_EQ_INT(bl_sd_fds_parse(&sd, "42", "2", "web:admin", 42, err, sizeof(err)), 0);
    CHECK_EQ_INT(sd.n, 2);
    CHECK_EQ_STR(sd.names[0], "web");
    CHECK_EQ_STR(sd.names[1], "admin");
    /* For another process, or without LISTEN_PID: not ours. */
    CHECK_EQ_INT(bl_sd_fds_parse(&sd, "41", "2", NULL, 42, err, sizeof(err)), 0);
    CHECK_EQ_INT(sd.n, 0);
    CHECK_EQ_INT(bl_sd_fds_parse(&sd, NULL, "2", NULL, 42, err, sizeof(err)), 0);
    CHECK_EQ_INT(sd.n, 0);
    CHECK_EQ_INT(bl_sd_fds_parse(&sd, "42", NULL, NULL, 42, err, sizeof(err)), 0);
    CHECK_EQ_INT(sd.n, 0);
    /* Fewer names than descriptors: the rest are unnamed. */
    CHECK_EQ_INT(bl_sd_fds_parse(&sd, "7", "3", "a", 7, err, sizeof(err)), 0);
    CHECK_EQ_INT(sd.n, 3);
    CHECK_EQ_STR(sd.names[0], "a");
    CHECK_EQ_STR(sd.names[2], "");
    CHECK_EQ_INT(bl_sd_fds_parse(&sd, "7", "x", NULL, 7, err, sizeof(err)), -EINVAL);
    CHECK_EQ_INT(bl_sd_fds_parse(&sd, "7", "1000", NULL, 7, err, sizeof(err)), -EINVAL);
}

static void init_cfg(bl_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->port = cfg->fd = cfg->unix_socket_mode = -1;
}

static int listening_family(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int acc = 0;
    socklen_t alen = sizeof(acc);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &alen) != 0 || !acc)
        return -1;
    return ss.ss_family;
}

/* Runs in a child (check_isolated): it writes to stderr and changes the environment. */
static void test_open(void)
{
    char dir[] = "/tmp/bl-unit-XXXXXX", path[64], spec[160];
    bl_config_t cfg;
    bl_listen_set_t set;
    struct stat st;
    if (!CHECK(mkdtemp(dir) != NULL))
        return;
    snprintf(path, sizeof(path), "%s/a.sock", dir);
    snprintf(spec, sizeof(spec), "unix:path=%s/b.sock:mode=600", dir);
    unsetenv("LISTEN_FDS");

    /* -u, -e unix with its own mode, -e tcp on loopback: no default TCP listener. */
    init_cfg(&cfg);
    cfg.unix_socket = path;
    cfg.unix_socket_mode = 0660;
    cfg.endpoints[cfg.nendpoints++] = spec;
    cfg.endpoints[cfg.nendpoints++] = "tcp:port=0:interface=127.0.0.1";
    CHECK_EQ_INT(bl_listen_open(&set, &cfg), 0);
    CHECK_EQ_INT(set.n, 3);
    for (int i = 0; i < set.n; i++) {
        CHECK(listening_family(set.socks[i].fd) == (set.socks[i].is_unix ? AF_UNIX : AF_INET));
        CHECK(fcntl(set.socks[i].fd, F_GETFD) & FD_CLOEXEC);
    }
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0660);
    char b[128];
    snprintf(b, sizeof(b), "%s/b.sock", dir);
    CHECK(stat(b, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(strncmp(set.socks[2].name, "127.0.0.1:", 10) == 0 && strcmp(set.socks[2].name + 10, "0"));

    /* A live socket is never replaced. */
    bl_listen_set_t again;
    bl_config_t cfg2;
    init_cfg(&cfg2);
    cfg2.unix_socket = path;
    CHECK(bl_listen_open(&again, &cfg2) == -EADDRINUSE);
    bl_listen_close(&again);
    CHECK(stat(path, &st) == 0);

    /* A listener's fd passed as --fd: a copy moves off 0-2, and a duplicate is refused. */
    int fd = set.socks[2].fd;
    init_cfg(&cfg2);
    cfg2.fd = fd;
    char dup_spec[32];
    snprintf(dup_spec, sizeof(dup_spec), "fd:fileno=%d", fd);
    cfg2.endpoints[cfg2.nendpoints++] = dup_spec;
    CHECK_EQ_INT(bl_listen_open(&again, &cfg2), -EINVAL);
    again.n = 0; /* the descriptors are set's */

    bl_listen_close(&set);
    CHECK(stat(path, &st) != 0); /* ours: unlinked */
    CHECK(stat(b, &st) != 0);

    /* A stale socket file is replaced. */
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    CHECK(bind(s, (struct sockaddr *)&sun, sizeof(sun)) == 0);
    close(s);
    init_cfg(&cfg2);
    cfg2.unix_socket = path;
    CHECK_EQ_INT(bl_listen_open(&again, &cfg2), 0);
    bl_listen_close(&again);

    /* Not a socket: refused, left alone. */
    int f = open(path, O_CREAT | O_WRONLY, 0600);
    close(f);
    CHECK(bl_listen_open(&again, &cfg2) < 0);
    bl_listen_close(&again);
    CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode));
    unlink(path);

    /* systemd: every passed socket when nothing else is asked for. */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(bind(l, (struct sockaddr *)&in, sizeof(in)) == 0 && listen(l, 8) == 0);
    int want = BL_SD_FDS_START;
    if (l != want) {
        dup2(l, want);
        close(l);
    }
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "1", 1);
    setenv("LISTEN_FDNAMES", "web", 1);
    init_cfg(&cfg2);
    CHECK_EQ_INT(bl_listen_open(&again, &cfg2), 0);
    CHECK_EQ_INT(again.n, 1);
    CHECK_EQ_INT(again.socks[0].fd, want);
    CHECK_HAS(again.socks[0].name, "systemd socket web");
    CHECK(getenv("LISTEN_FDS") == NULL && getenv("LISTEN_PID") == NULL);
    again.n = 0;

    /* ... and by index, next to another listener. */
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "1", 1);
    init_cfg(&cfg2);
    cfg2.endpoints[cfg2.nendpoints++] = "systemd:domain=INET:index=0";
    cfg2.unix_socket = path;
    CHECK_EQ_INT(bl_listen_open(&again, &cfg2), 0);
    CHECK_EQ_INT(again.n, 2);
    bl_listen_close(&again); /* closes fd 3 too */

    /* systemd: asked for but nothing passed; wrong domain. */
    init_cfg(&cfg2);
    cfg2.endpoints[cfg2.nendpoints++] = "systemd:domain=INET:index=0";
    CHECK_EQ_INT(bl_listen_open(&again, &cfg2), -ENOENT);
    bl_listen_close(&again);

    /* TLS: refused before anything is opened. */
    init_cfg(&cfg2);
    cfg2.unix_socket = path;
    cfg2.endpoints[cfg2.nendpoints++] = "ssl:443";
    CHECK_EQ_INT(bl_listen_open(&again, &cfg2), -EINVAL);
    CHECK_EQ_INT(again.n, 0);
    CHECK(stat(path, &st) != 0);
    rmdir(dir);
}

int main(void)
{
    test_tcp();
    test_unix();
    test_fd_and_systemd();
    test_refused();
    test_sd_fds();
    check_isolated("bl_listen_open", test_open, NULL);
    return check_report();
}
