/* Socket-free HTTP/1.1 request parser: llhttp underneath, bytes in, a request
 * head, body chunks and message ends out. */
#ifndef BAYLEAF_HTTP_PARSER_H
#define BAYLEAF_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

#include "bayleaf/proto/head.h"

typedef struct bl_http_parser_s bl_http_parser_t;

typedef struct {
    /* The head is complete; the callee owns it. Non-zero: stop with an error. */
    int (*on_head)(bl_http_parser_t *p, bl_head_t *head);
    int (*on_body)(bl_http_parser_t *p, const char *at, size_t len);
    int (*on_complete)(bl_http_parser_t *p);
} bl_http_handler_t;

typedef struct {
    size_t max_head;      /* request line + headers, bytes (431 beyond) */
    size_t max_url;       /* request target, bytes (414 beyond) */
    uint32_t max_headers; /* header count (431 beyond) */
} bl_http_limits_t;

/* Chunk extensions (parsed, dropped): bytes per chunk, and how far a request's
 * may exceed its body bytes in all; 400 beyond. */
#define BL_HTTP_MAX_CHUNK_EXT   4096
#define BL_HTTP_CHUNK_EXT_SLACK 65536

struct bl_http_parser_s {
    llhttp_t llh;
    const bl_http_handler_t *handler;
    bl_http_limits_t limits;
    bl_head_t *head; /* being built */
    int last;        /* 1: last data was a header field, 2: a value */
    bool in_message; /* bytes of a request have been seen */
    bool head_done;  /* the current request's head was delivered */
    /* the input being parsed, to tell a split value from an obs-fold */
    const char *feed_start, *feed_end;
    bool span_at_end; /* the last value span ended where its input did */
    /* the head's last bytes, to refuse a bare LF blank line (http_parser.c) */
    char scan_prev, scan_prev2;
    bool scan_text;
    /* what the current request sent beside its head and body, bounded */
    size_t trailer_bytes;   /* trailer fields (max_head) */
    uint32_t trailer_count; /* (max_headers) */
    size_t ext_chunk_bytes; /* chunk extensions of this chunk (BL_HTTP_MAX_CHUNK_EXT) */
    uint64_t ext_bytes;     /* and of the whole request */
    uint64_t body_bytes;
    int error_status; /* HTTP status to answer with after BL_HTTP_ERROR */
    const char *error_reason;
    void *data; /* the owner's */
};

enum {
    BL_HTTP_OK = 0,      /* everything consumed */
    BL_HTTP_PAUSED = 1,  /* a message ended; resume to parse the rest */
    BL_HTTP_UPGRADE = 2, /* an upgrade request ended; the rest is not HTTP,
                          * and every later feed consumes nothing */
    BL_HTTP_ERROR = -1,  /* error_status / error_reason say why */
};

void bl_http_parser_init(bl_http_parser_t *p, const bl_http_handler_t *handler,
                         const bl_http_limits_t *limits, void *data);
void bl_http_parser_free(bl_http_parser_t *p);
/* Parses up to len bytes; *consumed says how many were used. */
int bl_http_parser_feed(bl_http_parser_t *p, const char *data, size_t len, size_t *consumed);
/* Goes on after BL_HTTP_PAUSED; an upgraded parser stays stopped. */
void bl_http_parser_resume(bl_http_parser_t *p);
/* The connection ended: returns BL_HTTP_ERROR when a message was cut short. */
int bl_http_parser_finish(bl_http_parser_t *p);
/* True when the parser is between messages (nothing of the next one seen yet). */
bool bl_http_parser_idle(const bl_http_parser_t *p);

#endif
