/* Daphne's -e endpoint strings (the subset of Twisted's syntax that makes sense
 * here) and systemd's LISTEN_* variables: text in, a description out, no sockets. */
#include "bayleaf/io/listen.h"

#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define MAX_FIELDS 16

typedef struct {
    char *key; /* NULL for a positional field */
    char *value;
} field_t;

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

/* Splits at unescaped ':' and each field at its first unescaped '=', dropping
 * the backslashes (Twisted's quoting: "interface=\:\:1"). */
static int split(const char *spec, char *buf, size_t cap, field_t *f, int *nf)
{
    size_t o = 0;
    int n = 0;
    f[0].key = NULL;
    f[0].value = buf;
    for (const char *p = spec; *p != '\0'; p++) {
        char c = *p;
        if (o + 2 > cap)
            return -1;
        if (c == '\\' && p[1] != '\0') {
            buf[o++] = *++p;
        } else if (c == ':') {
            buf[o++] = '\0';
            if (++n == MAX_FIELDS)
                return -1;
            f[n].key = NULL;
            f[n].value = buf + o;
        } else if (c == '=' && f[n].key == NULL && n > 0) {
            buf[o++] = '\0';
            f[n].key = f[n].value;
            f[n].value = buf + o;
        } else {
            buf[o++] = c;
        }
    }
    buf[o] = '\0';
    *nf = n + 1;
    return 0;
}

static int to_long(const char *s, int base, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, base);
    if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int to_domain(const char *s)
{
    if (strcasecmp(s, "INET") == 0)
        return AF_INET;
    if (strcasecmp(s, "INET6") == 0)
        return AF_INET6;
    if (strcasecmp(s, "UNIX") == 0)
        return AF_UNIX;
    return -1;
}

static int copy(char *dst, size_t cap, const char *src)
{
    if (strlen(src) >= cap)
        return -1;
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

/* Parameter names of each type, in positional order ("path" is our alias of
 * Twisted's "address"). */
static const char *const tcp_params[] = {"port", "interface", "backlog", NULL};
static const char *const unix_params[] = {"address", "mode", "backlog", "lockfile", NULL};
static const char *const fd_params[] = {"fileno", "domain", NULL};
static const char *const systemd_params[] = {"domain", "index", "name", NULL};

static int set_param(bl_endpoint_t *ep, const char *key, const char *v, const char *spec, char *err,
                     size_t errlen)
{
    long n = 0;
    int bad = 0;
    if (strcmp(key, "port") == 0) {
        bad = to_long(v, 10, 0, 65535, &n);
        ep->port = (int)n;
    } else if (strcmp(key, "interface") == 0) {
        bad = copy(ep->host, sizeof(ep->host), v);
    } else if (strcmp(key, "backlog") == 0) {
        bad = to_long(v, 10, 1, 65535, &n);
        ep->backlog = (int)n;
    } else if (strcmp(key, "address") == 0) {
        bad = *v == '\0' || copy(ep->path, sizeof(ep->path), v);
    } else if (strcmp(key, "mode") == 0) {
        bad = to_long(v, 8, 0, 0777, &n);
        ep->mode = (int)n;
    } else if (strcmp(key, "lockfile") == 0) {
        bad = to_long(v, 10, 0, 1, &n); /* accepted; liveness is checked by connecting */
    } else if (strcmp(key, "fileno") == 0) {
        bad = to_long(v, 10, 0, 1 << 20, &n);
        ep->fd = (int)n;
    } else if (strcmp(key, "domain") == 0) {
        bad = (ep->domain = to_domain(v)) < 0;
    } else if (strcmp(key, "index") == 0) {
        bad = to_long(v, 10, 0, BL_LISTEN_MAX - 1, &n);
        ep->index = (int)n;
    } else if (strcmp(key, "name") == 0) {
        bad = *v == '\0' || copy(ep->fdname, sizeof(ep->fdname), v);
    }
    if (bad)
        return fail(err, errlen, -EINVAL, "endpoint '%s': invalid %s '%s'", spec, key, v);
    return 0;
}

static int find_param(const char *const *params, const char *key)
{
    for (int i = 0; params[i] != NULL; i++) {
        if (strcmp(params[i], key) == 0)
            return i;
    }
    return -1;
}

int bl_endpoint_parse(bl_endpoint_t *ep, const char *spec, char *err, size_t errlen)
{
    char buf[1024];
    field_t f[MAX_FIELDS];
    int nf, rc;
    const char *const *params;
    unsigned seen = 0;  /* bit i: params[i] was given */
    bool named = false; /* a name= field came: positional ones may not follow */

    memset(ep, 0, sizeof(*ep));
    ep->mode = ep->fd = ep->index = -1;
    ep->backlog = BL_LISTEN_BACKLOG;
    if (split(spec, buf, sizeof(buf), f, &nf) != 0)
        return fail(err, errlen, -EINVAL, "endpoint '%.64s...': too long", spec);
    const char *type = f[0].value;
    if (strcmp(type, "ssl") == 0 || strcmp(type, "ssl6") == 0 || strcmp(type, "tls") == 0)
        return fail(err, errlen, -EPROTONOSUPPORT,
                    "endpoint '%s': bayleaf does not do TLS; terminate it in the proxy in "
                    "front (nginx) and listen on tcp: or unix: behind it",
                    spec);
    if (strcmp(type, "tcp") == 0 || strcmp(type, "tcp6") == 0) {
        ep->kind = BL_EP_TCP;
        ep->port = -1;
        strcpy(ep->host, type[3] == '6' ? "::" : "0.0.0.0"); /* Twisted: every interface */
        params = tcp_params;
    } else if (strcmp(type, "unix") == 0) {
        ep->kind = BL_EP_UNIX;
        params = unix_params;
    } else if (strcmp(type, "fd") == 0) {
        ep->kind = BL_EP_FD;
        params = fd_params;
    } else if (strcmp(type, "systemd") == 0) {
        ep->kind = BL_EP_SYSTEMD;
        params = systemd_params;
    } else {
        return fail(err, errlen, -EINVAL,
                    "endpoint '%s': unknown type '%s' (expected tcp:, unix:, fd: or systemd:)",
                    spec, type);
    }
    for (int i = 1; i < nf; i++) {
        const char *key = f[i].key;
        int idx;
        if (key == NULL) {
            if (named)
                return fail(err, errlen, -EINVAL, "endpoint '%s': '%s' needs a name=", spec,
                            f[i].value);
            idx = __builtin_popcount(seen); /* the next positional slot */
            if (params[idx] == NULL)
                return fail(err, errlen, -EINVAL, "endpoint '%s': too many fields", spec);
        } else {
            if (ep->kind == BL_EP_UNIX && strcmp(key, "path") == 0)
                key = "address";
            idx = find_param(params, key);
            if (idx < 0)
                return fail(err, errlen, -EINVAL, "endpoint '%s': unknown option '%s'", spec, key);
            named = true;
        }
        if (seen & (1u << idx))
            return fail(err, errlen, -EINVAL, "endpoint '%s': %s given twice", spec, params[idx]);
        seen |= 1u << idx;
        if ((rc = set_param(ep, params[idx], f[i].value, spec, err, errlen)) != 0)
            return rc;
    }
    if (!(seen & 1u) && ep->kind != BL_EP_SYSTEMD)
        return fail(err, errlen, -EINVAL, "endpoint '%s': %s is required", spec, params[0]);
    if (ep->kind == BL_EP_SYSTEMD && (ep->domain <= 0 || (ep->index < 0) == !ep->fdname[0]))
        return fail(err, errlen, -EINVAL,
                    "endpoint '%s': expected systemd:domain=INET|INET6|UNIX:index=N (or name=)",
                    spec);
    return 0;
}

int bl_sd_fds_parse(bl_sd_fds_t *out, const char *listen_pid, const char *listen_fds,
                    const char *fdnames, pid_t pid, char *err, size_t errlen)
{
    long n, owner;
    memset(out, 0, sizeof(*out));
    if (listen_fds == NULL || *listen_fds == '\0')
        return 0;
    /* Without LISTEN_PID, or for another pid, the variables were inherited by mistake. */
    if (listen_pid == NULL || to_long(listen_pid, 10, 1, 1L << 30, &owner) != 0 ||
        owner != (long)pid)
        return 0;
    if (to_long(listen_fds, 10, 0, 1 << 20, &n) != 0)
        return fail(err, errlen, -EINVAL, "invalid LISTEN_FDS '%s'", listen_fds);
    if (n > BL_LISTEN_MAX)
        return fail(err, errlen, -EINVAL, "systemd passed %ld sockets; at most %d are supported", n,
                    BL_LISTEN_MAX);
    out->n = (int)n;
    for (int i = 0; fdnames != NULL && i < out->n; i++) {
        size_t len = strcspn(fdnames, ":");
        if (len >= sizeof(out->names[i]))
            len = sizeof(out->names[i]) - 1;
        memcpy(out->names[i], fdnames, len);
        out->names[i][len] = '\0';
        fdnames = strchr(fdnames, ':');
        if (fdnames != NULL)
            fdnames++;
    }
    return 0;
}
