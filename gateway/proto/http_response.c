/* HTTP/1.1 response heads and framing decisions. */
#include "bayleaf/proto/http_response.h"
#include "bayleaf/proto/tokens.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *bl_status_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Entity";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "";
    }
}

/* Fixed names: strftime's %a and %b follow the locale, which an app may set. */
const char bl_day_names[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
const char bl_month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

void bl_http_date_format(time_t t, char *buf)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    int year = tm.tm_year + 1900;
    /* "Sun, 06 Nov 1994 08:49:37 GMT" */
    memcpy(buf, bl_day_names[tm.tm_wday], 3);
    memcpy(buf + 3, ", ", 2);
    put2(buf + 5, tm.tm_mday);
    buf[7] = ' ';
    memcpy(buf + 8, bl_month_names[tm.tm_mon], 3);
    buf[11] = ' ';
    put2(buf + 12, year / 100);
    put2(buf + 14, year % 100);
    buf[16] = ' ';
    put2(buf + 17, tm.tm_hour);
    buf[19] = ':';
    put2(buf + 20, tm.tm_min);
    buf[22] = ':';
    put2(buf + 23, tm.tm_sec);
    memcpy(buf + 25, " GMT", 5); /* with the NUL */
}

const char *bl_http_date(void)
{
    static char buf[BL_HTTP_DATE_LEN + 1];
    static time_t cached = -1;
    time_t now = time(NULL);
    if (now != cached) {
        bl_http_date_format(now, buf);
        cached = now;
    }
    return buf;
}

/* ---- the app's framing headers ------------------------------------------ */

int bl_content_length_parse(const char *v, size_t len, uint64_t *out)
{
    uint64_t n = 0;
    if (len == 0)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned char)v[i] - '0';
        if (d > 9 || n > (UINT64_MAX - d) / 10)
            return -EINVAL; /* 1*DIGIT only (RFC 9110 8.6), and no overflow */
        n = n * 10 + d;
    }
    *out = n;
    return 0;
}

static bool name_is(const char *n, size_t len, const char *lower)
{
    return len == strlen(lower) && strncasecmp(n, lower, len) == 0;
}

static int scan_refuse(bl_response_scan_t *s, const char *why)
{
    s->error = why;
    return -EINVAL;
}

int bl_response_scan_header(bl_response_scan_t *s, const char *name, size_t nlen, const char *value,
                            size_t vlen)
{
    size_t pos = 0, tlen;
    const char *t;
    if (name_is(name, nlen, "content-length")) {
        uint64_t n;
        if (bl_content_length_parse(value, vlen, &n) != 0)
            return scan_refuse(s, "invalid Content-Length");
        if (s->flags & BL_RESP_HAS_CLEN) {
            if (n != s->content_length)
                return scan_refuse(s, "two different Content-Length values");
            return 0; /* the same again: one line says it */
        }
        s->flags |= BL_RESP_HAS_CLEN;
        s->content_length = n;
    } else if (name_is(name, nlen, "transfer-encoding")) {
        if (!bl_token_next(value, vlen, &pos, &t, &tlen))
            return scan_refuse(s, "empty Transfer-Encoding");
        s->flags |= BL_RESP_CHUNKED;
    } else if (name_is(name, nlen, "connection")) {
        while (bl_token_next(value, vlen, &pos, &t, &tlen))
            if (tlen == 5 && strncasecmp(t, "close", 5) == 0)
                s->flags |= BL_RESP_CLOSE;
    } else if (name_is(name, nlen, "server")) {
        s->flags |= BL_RESP_HAS_SERVER;
    } else if (name_is(name, nlen, "date")) {
        s->flags |= BL_RESP_HAS_DATE;
    }
    return 1;
}

/* What no response may be, whatever the app's headers: the one place that
 * says so (bl_response_scan_end, and bl_response_head as a last guard). */
static const char *response_invalid(int status, unsigned flags)
{
    if (status < 200 || status > 999)
        return "a final response needs a status of 200..999 (1xx are not final)";
    if ((flags & BL_RESP_HAS_CLEN) && (flags & BL_RESP_CHUNKED))
        return "Content-Length together with Transfer-Encoding";
    return NULL;
}

int bl_response_scan_end(bl_response_scan_t *s, int status)
{
    const char *why = response_invalid(status != 0 ? status : 200, s->flags);
    return why != NULL ? scan_refuse(s, why) : 0;
}

size_t bl_chunk_prefix(char *buf, size_t len)
{
    return (size_t)snprintf(buf, 20, "%zx\r\n", len);
}

/* Head building without printf: it runs for every response. */
static size_t put(char *buf, size_t n, const char *s, size_t len)
{
    memcpy(buf + n, s, len);
    return n + len;
}

#define PUT_LIT(lit) (n = put(buf, n, lit, sizeof(lit) - 1))

static size_t put_uint(char *buf, size_t n, size_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return put(buf, n, tmp + i, sizeof(tmp) - i);
}

static bool status_has_body(int status)
{
    return !(status < 200 || status == 204 || status == 304);
}

int bl_response_head(const bl_response_t *r, char **out, size_t *out_len, bl_framing_t *framing,
                     bool *keep_alive)
{
    size_t server_len = r->server_name ? strlen(r->server_name) : 0;
    size_t cap = r->headers_len + server_len + 192;
    char *buf = malloc(cap);
    size_t n;
    bool ka = r->keep_alive && !(r->flags & BL_RESP_CLOSE);
    bl_framing_t fr;

    if (response_invalid(r->status, r->flags) != NULL) {
        free(buf);
        return -EINVAL; /* refused where the app's message was read, too */
    }
    if (buf == NULL)
        return -ENOMEM;
    const char *reason = bl_status_reason(r->status);
    n = 0;
    PUT_LIT("HTTP/1.1 ");
    n = put_uint(buf, n, (size_t)r->status);
    PUT_LIT(" ");
    n = put(buf, n, reason, strlen(reason));
    PUT_LIT("\r\n");
    n = put(buf, n, r->headers, r->headers_len);
    if (r->server_name != NULL && !(r->flags & BL_RESP_HAS_SERVER)) {
        PUT_LIT("server: ");
        n = put(buf, n, r->server_name, server_len);
        PUT_LIT("\r\n");
    }
    if (!(r->flags & BL_RESP_HAS_DATE)) {
        PUT_LIT("date: ");
        n = put(buf, n, bl_http_date(), BL_HTTP_DATE_LEN);
        PUT_LIT("\r\n");
    }

    if (!status_has_body(r->status)) {
        fr = BL_FRAME_NONE;
    } else if (r->flags & BL_RESP_HAS_CLEN) {
        fr = r->head_request ? BL_FRAME_NONE : BL_FRAME_LENGTH;
    } else if (r->body_known && !(r->flags & BL_RESP_CHUNKED)) {
        /* The whole body is at hand: frame it with a length we computed. */
        if (!r->head_request || r->body_len > 0) {
            PUT_LIT("content-length: ");
            n = put_uint(buf, n, r->body_len);
            PUT_LIT("\r\n");
        }
        fr = r->head_request ? BL_FRAME_NONE : BL_FRAME_LENGTH;
    } else if (r->http10) {
        fr = r->head_request ? BL_FRAME_NONE : BL_FRAME_CLOSE;
        ka = ka && r->head_request;
    } else if (r->flags & BL_RESP_CHUNKED) {
        /* The app framed the body itself: pass it through, end with the connection. */
        fr = r->head_request ? BL_FRAME_NONE : BL_FRAME_CLOSE;
        ka = ka && r->head_request;
    } else {
        if (!r->head_request)
            PUT_LIT("transfer-encoding: chunked\r\n");
        fr = r->head_request ? BL_FRAME_NONE : BL_FRAME_CHUNKED;
    }
    if (!ka && !(r->flags & BL_RESP_CLOSE))
        PUT_LIT("connection: close\r\n");
    else if (ka && r->http10)
        PUT_LIT("connection: keep-alive\r\n");
    PUT_LIT("\r\n");
    *out = buf;
    *out_len = n;
    *framing = fr;
    *keep_alive = ka;
    return 0;
}

int bl_response_simple(int status, const char *server_name, bool keep_alive, char **out,
                       size_t *out_len)
{
    const char *reason = bl_status_reason(status);
    size_t cap = 256 + strlen(reason) * 2 + (server_name ? strlen(server_name) : 0);
    char *buf = malloc(cap);
    int n;
    if (buf == NULL)
        return -ENOMEM;
    n = snprintf(buf, cap,
                 "HTTP/1.1 %d %s\r\n%s%s%sdate: %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
                 "content-length: %zu\r\n%s\r\n%s\n",
                 status, reason, server_name ? "server: " : "", server_name ? server_name : "",
                 server_name ? "\r\n" : "", bl_http_date(), strlen(reason) + 1,
                 keep_alive ? "" : "connection: close\r\n", reason);
    *out = buf;
    *out_len = (size_t)n;
    return 0;
}
