/* HTTP/1.1 response heads and framing decisions. */
#include "bayleaf/http_response.h"
#include "bayleaf/bridge.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

const char *bl_http_date(void)
{
    static char buf[40];
    static time_t cached = -1;
    time_t now = time(NULL);
    if (now != cached) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached = now;
    }
    return buf;
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
    bool ka = r->keep_alive && !(r->flags & BL_EVF_CLOSE);
    bl_framing_t fr;

    if (buf == NULL)
        return -ENOMEM;
    /* The status is 100..999 (checked where the app's message is read). */
    const char *reason = bl_status_reason(r->status);
    n = 0;
    PUT_LIT("HTTP/1.1 ");
    n = put_uint(buf, n, (size_t)r->status);
    PUT_LIT(" ");
    n = put(buf, n, reason, strlen(reason));
    PUT_LIT("\r\n");
    n = put(buf, n, r->headers, r->headers_len);
    if (r->server_name != NULL && !(r->flags & BL_EVF_HAS_SERVER)) {
        PUT_LIT("server: ");
        n = put(buf, n, r->server_name, server_len);
        PUT_LIT("\r\n");
    }
    if (!(r->flags & BL_EVF_HAS_DATE)) {
        PUT_LIT("date: ");
        n = put(buf, n, bl_http_date(), BL_HTTP_DATE_LEN);
        PUT_LIT("\r\n");
    }

    if (!status_has_body(r->status)) {
        fr = BL_FRAME_NONE;
    } else if (r->flags & BL_EVF_HAS_CLEN) {
        fr = r->head_request ? BL_FRAME_NONE : BL_FRAME_LENGTH;
    } else if (r->body_known && !(r->flags & BL_EVF_CHUNKED)) {
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
    } else if (r->flags & BL_EVF_CHUNKED) {
        /* The app framed the body itself: pass it through, end with the connection. */
        fr = r->head_request ? BL_FRAME_NONE : BL_FRAME_CLOSE;
        ka = ka && r->head_request;
    } else {
        if (!r->head_request)
            PUT_LIT("transfer-encoding: chunked\r\n");
        fr = r->head_request ? BL_FRAME_NONE : BL_FRAME_CHUNKED;
    }
    if (!ka && !(r->flags & BL_EVF_CLOSE))
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
