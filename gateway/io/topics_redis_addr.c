/* The --topics-redis URL: redis://[[user]:password@]host[:port][/db],
 * redis+unix:// or unix:// with an absolute path and ?db=N. */
#include "bayleaf/io/topics_redis.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int addr_bad(char *why, size_t whylen, const char *what)
{
    snprintf(why, whylen, "%s", what);
    return -EINVAL;
}

static int parse_int(const char *s, size_t n, long min, long max, int *out)
{
    char buf[16];
    char *end;
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    long v = strtol(buf, &end, 10);
    if (*end != '\0' || buf[0] == '-' || buf[0] == '+' || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

/* [user]:password@ of a URL's authority; *s moves past it. */
static int parse_userinfo(const char **s, bl_redis_addr_t *a, char *why, size_t whylen)
{
    const char *at = strchr(*s, '@');
    const char *slash = strchr(*s, '/');
    if (at == NULL || (slash != NULL && slash < at))
        return 0;
    const char *colon = memchr(*s, ':', (size_t)(at - *s));
    if (colon == NULL)
        return addr_bad(why, whylen, "the user part takes the form [user]:password@");
    size_t ulen = (size_t)(colon - *s), plen = (size_t)(at - colon - 1);
    if (ulen >= sizeof(a->user) || plen >= sizeof(a->password) || plen == 0)
        return addr_bad(why, whylen, "user or password too long or empty");
    memcpy(a->user, *s, ulen);
    memcpy(a->password, colon + 1, plen);
    *s = at + 1;
    return 0;
}

int bl_redis_addr_parse(const char *url, bl_redis_addr_t *a, char *why, size_t whylen)
{
    memset(a, 0, sizeof(*a));
    a->port = 6379;
    const char *s;
    if (strncmp(url, "redis+unix://", 13) == 0 || strncmp(url, "unix://", 7) == 0) {
        s = url + (url[0] == 'r' ? 13 : 7);
        if (parse_userinfo(&s, a, why, whylen) != 0)
            return -EINVAL;
        const char *q = strchr(s, '?');
        size_t n = q != NULL ? (size_t)(q - s) : strlen(s);
        if (n == 0 || s[0] != '/')
            return addr_bad(why, whylen, "a unix socket URL needs an absolute path");
        if (n >= sizeof(a->path))
            return addr_bad(why, whylen, "the socket path is too long");
        memcpy(a->path, s, n);
        if (q != NULL) {
            if (strncmp(q, "?db=", 4) != 0 || parse_int(q + 4, strlen(q + 4), 0, 65535, &a->db))
                return addr_bad(why, whylen, "a unix socket URL takes only ?db=N");
        }
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return addr_bad(why, whylen, "expected redis://host[:port][/db] or unix:///path");
    s = url + 8;
    if (parse_userinfo(&s, a, why, whylen) != 0)
        return -EINVAL;
    const char *host = s, *host_end;
    if (*s == '[') {
        host = s + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL)
            return addr_bad(why, whylen, "unclosed [ in the host");
        s = host_end + 1;
    } else {
        s += strcspn(s, ":/");
        host_end = s;
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0)
        return addr_bad(why, whylen, "no host");
    if (hlen >= sizeof(a->host))
        return addr_bad(why, whylen, "the host is too long");
    memcpy(a->host, host, hlen);
    if (*s == ':') {
        size_t n = strcspn(s + 1, "/");
        if (parse_int(s + 1, n, 1, 65535, &a->port) != 0)
            return addr_bad(why, whylen, "invalid port");
        s += 1 + n;
    }
    if (*s == '/' && s[1] != '\0') {
        if (parse_int(s + 1, strlen(s + 1), 0, 65535, &a->db) != 0)
            return addr_bad(why, whylen, "invalid database number");
    } else if (*s != '\0' && strcmp(s, "/") != 0) {
        return addr_bad(why, whylen, "unexpected text after the host");
    }
    return 0;
}

bool bl_redis_url_password(const char *url, size_t *off, size_t *len)
{
    const char *s = strstr(url, "://");
    /* the last @: a mistyped password may hold a / or an @ */
    const char *at = strrchr(s != NULL ? s + 3 : url, '@');
    if (at == NULL)
        return false;
    /* Not a URL we know: all before the @ may be a password. Else from the
     * authority's ':', or all of it without one (a user, or a password
     * mistyped). */
    const char *colon = s != NULL ? memchr(s + 3, ':', (size_t)(at - (s + 3))) : NULL;
    const char *p = s == NULL ? url : colon != NULL ? colon + 1 : s + 3;
    *off = (size_t)(p - url);
    *len = (size_t)(at - p);
    return true;
}

void bl_redis_url_redact(const char *url, char *out, size_t outlen)
{
    size_t off, len;
    if (!bl_redis_url_password(url, &off, &len)) {
        snprintf(out, outlen, "%s", url);
        return;
    }
    /* the user stays (it helps to tell which one was refused); not the password */
    snprintf(out, outlen, "%.*s***%s", (int)off, url, url + off + len);
}
