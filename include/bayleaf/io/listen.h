/* Listening sockets as plain file descriptors: Daphne's endpoint strings, systemd's
 * passed sockets, and the set every listener is opened into before Python starts
 * (the I/O loop, or each worker, adopts the descriptors later). */
#ifndef BAYLEAF_LISTEN_H
#define BAYLEAF_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "bayleaf/common/config.h"

#define BL_LISTEN_MAX     16
#define BL_LISTEN_BACKLOG 1024
#define BL_SD_FDS_START   3 /* SD_LISTEN_FDS_START */

typedef enum { BL_EP_TCP, BL_EP_UNIX, BL_EP_FD, BL_EP_SYSTEMD } bl_endpoint_kind_t;

/* One -e string, e.g. "tcp:port=8000:interface=127.0.0.1". */
typedef struct {
    bl_endpoint_kind_t kind;
    char host[256]; /* tcp: interface ("" = all, as in Twisted) */
    int port;
    char path[108];   /* unix */
    int mode;         /* unix: chmod after bind, -1 = --unix-socket-mode */
    int fd;           /* fd: the descriptor */
    int index;        /* systemd: position in LISTEN_FDS, -1 when picked by name */
    char fdname[256]; /* systemd: a LISTEN_FDNAMES entry */
    int domain;       /* systemd/fd: AF_INET, AF_INET6, AF_UNIX; 0 = any */
    int backlog;
} bl_endpoint_t;

/* Parses spec. On error writes one message (no "bayleaf: error:" prefix, no
 * newline) to err and returns -EINVAL; TLS endpoints give -EPROTONOSUPPORT. */
int bl_endpoint_parse(bl_endpoint_t *ep, const char *spec, char *err, size_t errlen);

/* Sockets passed by systemd (sd_listen_fds(3) protocol). */
typedef struct {
    int n;                          /* 0: none passed to this process */
    char names[BL_LISTEN_MAX][256]; /* LISTEN_FDNAMES, "" when unnamed */
} bl_sd_fds_t;

/* Reads LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES (any may be NULL) for process pid.
 * Returns 0 (n = 0 when they are absent or meant for another process) or
 * -EINVAL with a message in err. Pure: touches no descriptor. */
int bl_sd_fds_parse(bl_sd_fds_t *out, const char *listen_pid, const char *listen_fds,
                    const char *fdnames, pid_t pid, char *err, size_t errlen);

typedef struct {
    int fd; /* -1 once adopted by an I/O loop or closed */
    int backlog;
    bool is_unix;
    bool owns_path; /* we bound the file: unlink it when done */
    dev_t dev;      /* its identity: never unlink a successor's file */
    ino_t ino;
    struct timespec ctime;
    char name[128]; /* for messages: "127.0.0.1:8000", a path, "fd 3" */
    char path[108]; /* unix socket path */
} bl_socket_t;

typedef struct {
    bl_socket_t socks[BL_LISTEN_MAX];
    int n;
} bl_listen_set_t;

/* Opens every listener cfg asks for: -u, --fd, -e, -b/-p (Daphne's rules), or,
 * without any of those, every socket systemd passed. Prints one error line and
 * returns a negative errno on failure (what was opened stays in set). */
int bl_listen_open(bl_listen_set_t *set, const bl_config_t *cfg);
/* Opens one listener from "HOST:PORT", "[V6]:PORT" or "unix:PATH" (--metrics)
 * into set; mode as --unix-socket-mode. Prints one error line on failure. */
int bl_listen_open_address(bl_listen_set_t *set, const char *address, int mode);
/* Closes what is still open and unlinks the socket files we created. */
void bl_listen_close(bl_listen_set_t *set);

#endif
