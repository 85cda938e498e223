/* Socket-free HTTP/1.1 response framing: status line, headers, body framing. */
#ifndef BAYLEAF_HTTP_RESPONSE_H
#define BAYLEAF_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    BL_FRAME_NONE,    /* no body may follow (HEAD, 1xx, 204, 304) */
    BL_FRAME_LENGTH,  /* Content-Length */
    BL_FRAME_CHUNKED, /* Transfer-Encoding: chunked */
    BL_FRAME_CLOSE,   /* the body ends when the connection closes (HTTP/1.0) */
} bl_framing_t;

typedef struct {
    int status;
    const char *headers; /* the app's header lines, "name: value\r\n" each */
    size_t headers_len;
    unsigned flags;          /* BL_EVF_HAS_CLEN, _HAS_SERVER, _HAS_DATE, _CLOSE, _CHUNKED */
    uint64_t content_length; /* with BL_EVF_HAS_CLEN */
    bool body_known;         /* the whole body is known: body_len bytes */
    size_t body_len;
    bool head_request;
    bool http10;
    bool keep_alive;         /* the request allows keep-alive */
    const char *server_name; /* NULL: no Server header */
} bl_response_t;

/* Builds the head into a malloc'd buffer (*out, *out_len). Decides framing and
 * whether the connection stays open. 0 or a negative errno. */
int bl_response_head(const bl_response_t *r, char **out, size_t *out_len, bl_framing_t *framing,
                     bool *keep_alive);
/* A small complete response (errors: 400, 431, 500, 503...), with Connection: close
 * unless keep_alive. */
int bl_response_simple(int status, const char *server_name, bool keep_alive, char **out,
                       size_t *out_len);
const char *bl_status_reason(int status);
/* IMF-fixdate is always this long. */
#define BL_HTTP_DATE_LEN 29
/* "Tue, 24 Nov 2026 01:02:03 GMT" (BL_HTTP_DATE_LEN characters), cached per
 * second. I/O thread only. */
const char *bl_http_date(void);
/* "%zx\r\n" into buf (>= 20 bytes); returns the length. */
size_t bl_chunk_prefix(char *buf, size_t len);

#endif
