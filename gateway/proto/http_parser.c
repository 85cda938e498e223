/* HTTP/1.1 request parsing on top of llhttp, built with LLHTTP_STRICT_MODE and
 * no lenient flags. What llhttp still lets through and RFC 9112 lets us refuse
 * (obs-fold, versions other than 1.0/1.1) is refused here. */
#include "bayleaf/proto/http_parser.h"
#include "bayleaf/proto/tokens.h"
#include "bayleaf/common/buf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#define PARSER(llh) ((bl_http_parser_t *)(llh)->data)

void bl_head_free(bl_head_t *head)
{
    if (head == NULL)
        return;
    free(head->headers);
    free(head->buf);
    free(head);
}

bl_header_t *bl_head_header_add(bl_head_t *head)
{
    if (bl_buf_reserve_n(&head->headers, &head->headers_cap, (size_t)head->nheaders + 1, 16,
                         sizeof(bl_header_t)) != 0)
        return NULL;
    bl_header_t *hd = &head->headers[head->nheaders++];
    memset(hd, 0, sizeof(*hd));
    return hd;
}

const char *bl_head_find_next(const bl_head_t *head, const char *name, uint32_t *i, size_t *len)
{
    size_t n = strlen(name);
    for (; *i < head->nheaders; (*i)++) {
        const bl_header_t *h = &head->headers[*i];
        if (h->name_len == n && memcmp(head->buf + h->name_off, name, n) == 0) {
            *len = h->value_len;
            (*i)++;
            return head->buf + h->value_off;
        }
    }
    return NULL;
}

const char *bl_head_find(const bl_head_t *head, const char *name, size_t *len)
{
    uint32_t i = 0;
    return bl_head_find_next(head, name, &i, len);
}

static int fail(bl_http_parser_t *p, int status, const char *reason)
{
    p->error_status = status;
    p->error_reason = reason;
    return -1;
}

/* Appends to the head buffer, enforcing the head size limit. */
static int head_append(bl_http_parser_t *p, const char *at, size_t len, bool lower)
{
    bl_head_t *h = p->head;
    if (len == 0)
        return 0; /* llhttp reports empty spans ("CONNECT \r\n"); buf may still be NULL */
    if (h->len + len > p->limits.max_head)
        return fail(p, 431, "Request Header Fields Too Large");
    if (bl_buf_reserve(&h->buf, &h->cap, h->len + len, 512) != 0)
        return fail(p, 500, "Out of memory");
    if (lower) {
        for (size_t i = 0; i < len; i++) {
            char c = at[i];
            h->buf[h->len + i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
    } else {
        memcpy(h->buf + h->len, at, len);
    }
    h->len += len;
    return 0;
}

static int on_message_begin(llhttp_t *llh)
{
    bl_http_parser_t *p = PARSER(llh);
    p->in_message = true;
    p->head_done = false;
    p->last = 0;
    p->trailer_bytes = 0;
    p->trailer_count = 0;
    p->ext_bytes = p->ext_chunk_bytes = 0;
    p->body_bytes = 0;
    p->head = calloc(1, sizeof(bl_head_t));
    return p->head ? 0 : fail(p, 500, "Out of memory");
}

static int on_url(llhttp_t *llh, const char *at, size_t len)
{
    bl_http_parser_t *p = PARSER(llh);
    if (p->head->len + len > p->limits.max_url)
        return fail(p, 414, "URI Too Long");
    if (head_append(p, at, len, false) != 0)
        return -1;
    p->head->url_len = (uint32_t)p->head->len;
    return 0;
}

/* Trailers are parsed and dropped, but within the head's limits: their bytes
 * and field count are held to max_head and max_headers (431 beyond). */
static int trailer_count(bl_http_parser_t *p, size_t len, int kind)
{
    if (kind == 1 && p->last != 1 && ++p->trailer_count > p->limits.max_headers)
        return fail(p, 431, "Request Header Fields Too Large");
    p->last = kind;
    p->trailer_bytes += len;
    if (p->trailer_bytes > p->limits.max_head)
        return fail(p, 431, "Request Header Fields Too Large");
    return 0;
}

static int on_header_field(llhttp_t *llh, const char *at, size_t len)
{
    bl_http_parser_t *p = PARSER(llh);
    bl_head_t *h = p->head;
    if (p->head_done)
        return trailer_count(p, len, 1); /* ASGI has no place for trailers */
    if (p->last != 1) {
        /* A new header starts. */
        if (h->nheaders == p->limits.max_headers)
            return fail(p, 431, "Request Header Fields Too Large");
        bl_header_t *hd = bl_head_header_add(h);
        if (hd == NULL)
            return fail(p, 500, "Out of memory");
        hd->name_off = (uint32_t)h->len;
        p->last = 1;
    }
    if (head_append(p, at, len, true) != 0)
        return -1;
    h->headers[h->nheaders - 1].name_len += (uint32_t)len;
    return 0;
}

static int on_header_value(llhttp_t *llh, const char *at, size_t len)
{
    bl_http_parser_t *p = PARSER(llh);
    bl_head_t *h = p->head;
    if (p->head_done)
        return trailer_count(p, len, 2);
    bl_header_t *hd = &h->headers[h->nheaders - 1];
    if (p->last != 2) {
        if (hd->name_len == 0) /* ": value": a field name is a token (RFC 9110 5.1) */
            return fail(p, 400, "Bad Request");
        hd->value_off = (uint32_t)h->len;
        p->last = 2;
    }
    /* obs-fold (RFC 9112 5.2) is refused. llhttp drops the fold and reports
     * the value in two spans; a value legitimately comes in two spans only
     * when the input was cut between them, at the end of one feed. */
    else if (!(p->span_at_end && at == p->feed_start))
        return fail(p, 400, "Bad Request");
    p->span_at_end = at + len == p->feed_end;
    if (head_append(p, at, len, false) != 0)
        return -1;
    hd->value_len += (uint32_t)len;
    return 0;
}

/* Trailing whitespace is not part of a field value (RFC 9110 5.5). */
static int on_header_value_complete(llhttp_t *llh)
{
    bl_http_parser_t *p = PARSER(llh);
    bl_head_t *h = p->head;
    if (p->head_done || h == NULL || h->nheaders == 0)
        return 0;
    bl_header_t *hd = &h->headers[h->nheaders - 1];
    while (hd->value_len > 0) {
        char c = h->buf[hd->value_off + hd->value_len - 1];
        if (c != ' ' && c != '\t')
            break;
        hd->value_len--;
    }
    return 0;
}

static bool value_has_token(const char *v, size_t len, const char *token)
{
    size_t n = strlen(token), pos = 0, tlen;
    const char *t;
    while (bl_token_next(v, len, &pos, &t, &tlen))
        if (tlen == n && strncasecmp(t, token, n) == 0)
            return true;
    return false;
}

/* RFC 9112 3.2: an HTTP/1.1 request has exactly one Host (HTTP/1.0 may omit
 * it; an empty value is allowed, for targets without an authority); with an
 * absolute-form target, Host must name the same authority (we refuse a
 * mismatch rather than let the app see a Host the proxy did not route on). */
static int check_host(bl_http_parser_t *p, const bl_head_t *h)
{
    const char *host = NULL, *v;
    size_t host_len = 0, len;
    uint32_t i = 0;
    int count = 0;
    while ((v = bl_head_find_next(h, "host", &i, &len)) != NULL) {
        host = v;
        host_len = len;
        count++;
    }
    if (count > 1 || (count == 0 && h->http_minor >= 1))
        return fail(p, 400, "Bad Request");
    const char *u = h->buf;
    const char *scheme_end =
        h->url_len > 0 && u[0] != '/' && u[0] != '*' ? memchr(u, ':', h->url_len) : NULL;
    if (scheme_end != NULL && host != NULL) {
        const char *a = scheme_end + 3, *end = u + h->url_len;
        const char *e = a;
        if (a > end)
            return fail(p, 400, "Bad Request");
        while (e < end && *e != '/' && *e != '?' && *e != '#')
            e++;
        if ((size_t)(e - a) != host_len || strncasecmp(a, host, host_len) != 0)
            return fail(p, 400, "Bad Request");
    }
    return 0;
}

/* A Transfer-Encoding that names no coding ("", " , ") is not one llhttp
 * frames by: it would read the body by Content-Length, or not at all, where
 * a proxy in front may have read it otherwise. RFC 9112 6.3: 400. */
static int check_transfer_encoding(bl_http_parser_t *p, const bl_head_t *h)
{
    uint32_t i = 0;
    size_t len;
    const char *v;
    while ((v = bl_head_find_next(h, "transfer-encoding", &i, &len)) != NULL) {
        size_t pos = 0, tlen;
        const char *t;
        if (!bl_token_next(v, len, &pos, &t, &tlen))
            return fail(p, 400, "Bad Request");
    }
    return 0;
}

/* Splits the request target into path and query (origin or absolute form). */
static void split_target(bl_head_t *h)
{
    const char *u = h->buf;
    uint32_t n = h->url_len, i = 0;
    if (n > 0 && u[0] != '/' && u[0] != '*') {
        /* absolute-form: skip "scheme://authority" */
        const char *s = memchr(u, ':', n);
        if (s != NULL && (uint32_t)(s - u) + 2 < n && s[1] == '/' && s[2] == '/') {
            i = (uint32_t)(s - u) + 3;
            while (i < n && u[i] != '/' && u[i] != '?')
                i++;
        }
    }
    h->path_off = i;
    while (i < n && u[i] != '?' && u[i] != '#')
        i++;
    h->path_len = i - h->path_off;
    if (i < n && u[i] == '?') {
        h->query_off = ++i;
        while (i < n && u[i] != '#')
            i++;
        h->query_len = i - h->query_off;
    } else {
        h->query_off = i;
        h->query_len = 0;
    }
}

static int on_headers_complete(llhttp_t *llh)
{
    bl_http_parser_t *p = PARSER(llh);
    bl_head_t *h = p->head;
    size_t vlen;
    const char *v;

    h->method = llhttp_method_name((llhttp_method_t)llh->method);
    h->http_major = llh->http_major;
    h->http_minor = llh->http_minor;
    if (h->http_major >= 2)
        return fail(p, 505, "HTTP Version Not Supported");
    if (h->http_major != 1 || h->http_minor > 1) /* HTTP/0.9 lines and the like */
        return fail(p, 400, "Bad Request");
    if (llh->method == HTTP_CONNECT)
        return fail(p, 405, "Method Not Allowed"); /* not a proxy */
    h->keep_alive = llhttp_should_keep_alive(llh) != 0;
    h->upgrade = llh->upgrade != 0;
    v = bl_head_find(h, "upgrade", &vlen);
    h->websocket = v != NULL && value_has_token(v, vlen, "websocket");
    v = bl_head_find(h, "expect", &vlen);
    if (v != NULL) {
        if (vlen == 12 && strncasecmp(v, "100-continue", 12) == 0)
            h->expect_continue = h->http_major == 1 && h->http_minor >= 1;
        else
            return fail(p, 417, "Expectation Failed");
    }
    if (check_host(p, h) != 0)
        return -1;
    if (check_transfer_encoding(p, h) != 0)
        return -1;
    /* RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 is faulty framing: close after. */
    if (h->http_minor == 0 && bl_head_find(h, "transfer-encoding", &vlen) != NULL)
        h->keep_alive = false;
    split_target(h);
    if (h->path_len == 0) {
        /* "GET http://host HTTP/1.1": the path is "/". */
        uint32_t at = (uint32_t)h->len;
        if (head_append(p, "/", 1, false) != 0)
            return -1;
        h->path_off = at;
        h->path_len = 1;
    }

    /* A WebSocket upgrade has no body: the bytes after the head are frames.
     * Read the flag now: on_head takes the head. */
    bool websocket = h->upgrade && h->websocket;
    p->head = NULL;
    p->head_done = true;
    p->last = 0; /* trailers count their own fields */
    if (p->handler->on_head(p, h) != 0)
        return fail(p, p->error_status ? p->error_status : 500, "Internal Server Error");
    return websocket ? 2 : 0;
}

static int on_body(llhttp_t *llh, const char *at, size_t len)
{
    bl_http_parser_t *p = PARSER(llh);
    p->body_bytes += len;
    return p->handler->on_body(p, at, len) == 0 ? 0 : -1;
}

/* Chunk extensions are parsed and dropped: each chunk's are held to
 * BL_HTTP_MAX_CHUNK_EXT bytes, and a request's, in all, to its body bytes
 * plus BL_HTTP_CHUNK_EXT_SLACK, so they cannot cost more than the body. */
static int on_chunk_extension(llhttp_t *llh, const char *at, size_t len)
{
    bl_http_parser_t *p = PARSER(llh);
    (void)at;
    p->ext_chunk_bytes += len;
    p->ext_bytes += len;
    if (p->ext_chunk_bytes > BL_HTTP_MAX_CHUNK_EXT ||
        p->ext_bytes > p->body_bytes + BL_HTTP_CHUNK_EXT_SLACK)
        return fail(p, 400, "Bad Request");
    return 0;
}

static int on_chunk_header(llhttp_t *llh)
{
    PARSER(llh)->ext_chunk_bytes = 0; /* the next chunk's extensions count afresh */
    return 0;
}

static int on_message_complete(llhttp_t *llh)
{
    bl_http_parser_t *p = PARSER(llh);
    p->in_message = false;
    p->scan_text = false;
    p->scan_prev = p->scan_prev2 = 0;
    if (p->handler->on_complete(p) != 0)
        return -1;
    /* After an upgrade request llhttp pauses with HPE_PAUSED_UPGRADE itself.
     * Pausing here too would report a plain pause, and the upgrade only at
     * the next feed: a feed that scans the bytes after the head as HTTP first,
     * so the outcome would depend on where the read ended. */
    return llh->upgrade ? 0 : HPE_PAUSED;
}

/* One table for every parser: llhttp only keeps a pointer to it. */
static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_extension_name = on_chunk_extension,
    .on_chunk_extension_value = on_chunk_extension,
    .on_chunk_header = on_chunk_header,
    .on_message_complete = on_message_complete,
};

void bl_http_parser_init(bl_http_parser_t *p, const bl_http_handler_t *handler,
                         const bl_http_limits_t *limits, void *data)
{
    memset(p, 0, sizeof(*p));
    llhttp_init(&p->llh, HTTP_REQUEST, &settings);
    p->llh.data = p;
    p->handler = handler;
    p->limits = *limits;
    p->data = data;
}

void bl_http_parser_free(bl_http_parser_t *p)
{
    bl_head_free(p->head);
    p->head = NULL;
}

/* llhttp (strict or not) takes a bare LF after the request line and as the
 * blank line that ends a head; RFC 9112 lets us refuse it, and a proxy that
 * reads the head differently is how requests get smuggled. Looks at head
 * bytes only; returns -(offset + 1) at a bare LF. */
static ssize_t find_bare_lf(bl_http_parser_t *p, const char *data, size_t len)
{
    if (p->in_message && p->head_done)
        return len; /* body bytes */
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (c == '\n' && p->scan_text) {
            if (p->scan_prev != '\r')
                return -(ssize_t)i - 1;
            if (p->scan_prev2 == '\n') {
                p->scan_text = false; /* the head ended properly */
                p->scan_prev = p->scan_prev2 = 0;
                return len;
            }
        }
        if (c != '\r' && c != '\n')
            p->scan_text = true;
        p->scan_prev2 = p->scan_prev;
        p->scan_prev = c;
    }
    return len;
}

int bl_http_parser_feed(bl_http_parser_t *p, const char *data, size_t len, size_t *consumed)
{
    if (llhttp_get_errno(&p->llh) == HPE_PAUSED_UPGRADE) {
        /* Never resumed: what follows an upgrade request is not HTTP. */
        *consumed = 0;
        return BL_HTTP_UPGRADE;
    }
    ssize_t bare = find_bare_lf(p, data, len);
    if (bare < 0) {
        *consumed = (size_t)(-bare - 1);
        p->error_status = 400;
        p->error_reason = "Bad Request";
        return BL_HTTP_ERROR;
    }
    p->feed_start = data;
    p->feed_end = data + len;
    llhttp_errno_t err = llhttp_execute(&p->llh, data, len);
    switch (err) {
    case HPE_OK:
        *consumed = len;
        return BL_HTTP_OK;
    case HPE_PAUSED:
    case HPE_PAUSED_UPGRADE:
        *consumed = (size_t)(llhttp_get_error_pos(&p->llh) - data);
        return err == HPE_PAUSED_UPGRADE ? BL_HTTP_UPGRADE : BL_HTTP_PAUSED;
    default:
        *consumed = (size_t)(llhttp_get_error_pos(&p->llh) - data);
        if (p->error_status == 0) {
            p->error_status = 400;
            p->error_reason = "Bad Request";
        }
        return BL_HTTP_ERROR;
    }
}

void bl_http_parser_resume(bl_http_parser_t *p)
{
    if (llhttp_get_errno(&p->llh) == HPE_PAUSED)
        llhttp_resume(&p->llh);
}

int bl_http_parser_finish(bl_http_parser_t *p)
{
    return p->in_message ? BL_HTTP_ERROR : BL_HTTP_OK;
}

bool bl_http_parser_idle(const bl_http_parser_t *p)
{
    return !p->in_message;
}
