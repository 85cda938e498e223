/* Socket-free HTTP/1.1 response framing: status line, headers, body framing. */
#ifndef BAYLEAF_HTTP_RESPONSE_H
#define BAYLEAF_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* What an app's response headers set (bl_response_scan_header), carried on
 * the RESPONSE event as its flags. */
enum {
    BL_RESP_HAS_CLEN = 1u << 2,   /* Content-Length */
    BL_RESP_HAS_SERVER = 1u << 3, /* a Server header */
    BL_RESP_HAS_DATE = 1u << 4,   /* a Date header */
    BL_RESP_CLOSE = 1u << 5,      /* Connection: close */
    BL_RESP_CHUNKED = 1u << 6,    /* Transfer-Encoding, set by the app itself */
};

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
    unsigned flags;          /* BL_RESP_* */
    uint64_t content_length; /* with BL_RESP_HAS_CLEN */
    bool body_known;         /* the whole body is known: body_len bytes */
    size_t body_len;
    bool head_request;
    bool http10;
    bool keep_alive;         /* the request allows keep-alive */
    const char *server_name; /* NULL: no Server header */
} bl_response_t;

/* Builds the head into a malloc'd buffer (*out, *out_len). Decides framing and
 * whether the connection stays open. 0 or a negative errno (-EINVAL: a 1xx
 * status, or Content-Length with Transfer-Encoding). */
int bl_response_head(const bl_response_t *r, char **out, size_t *out_len, bl_framing_t *framing,
                     bool *keep_alive);
/* A small complete response (errors: 400, 431, 500, 503...), with Connection: close
 * unless keep_alive. */
int bl_response_simple(int status, const char *server_name, bool keep_alive, char **out,
                       size_t *out_len);
const char *bl_status_reason(int status);
/* The framing headers of an app's response, read one header at a time
 * (Python thread): the flags bl_response_t takes, or why the response is
 * refused. Connection and Transfer-Encoding are token lists (tokens.h). */
typedef struct {
    unsigned flags;          /* BL_RESP_* */
    uint64_t content_length; /* with BL_RESP_HAS_CLEN */
    const char *error;       /* after -EINVAL: why, static text */
} bl_response_scan_t;

/* Notes one header. 1: send its line; 0: drop it (the same Content-Length
 * again); -EINVAL: the response must not be sent (an invalid Content-Length,
 * two different ones, an empty Transfer-Encoding). */
int bl_response_scan_header(bl_response_scan_t *s, const char *name, size_t nlen, const char *value,
                            size_t vlen);
/* After the last header: -EINVAL for a status that is not a final response
 * (1xx) or Content-Length with Transfer-Encoding. status 0: the headers only. */
int bl_response_scan_end(bl_response_scan_t *s, int status);
/* Content-Length = 1*DIGIT, within 64 bits: 0 or -EINVAL. */
int bl_content_length_parse(const char *v, size_t len, uint64_t *out);

/* IMF-fixdate is always this long. */
#define BL_HTTP_DATE_LEN 29
/* "Tue, 24 Nov 2026 01:02:03 GMT" (BL_HTTP_DATE_LEN characters), cached per
 * second. I/O thread only. */
const char *bl_http_date(void);
/* t as IMF-fixdate into buf (BL_HTTP_DATE_LEN + 1 bytes, NUL-terminated),
 * locale-free. */
void bl_http_date_format(time_t t, char *buf);
/* "Sun".."Sat", "Jan".."Dec", whatever the locale. */
extern const char bl_day_names[7][4];
extern const char bl_month_names[12][4];
/* "%zx\r\n" into buf (>= 20 bytes); returns the length. */
size_t bl_chunk_prefix(char *buf, size_t len);

#endif
