/* A parsed HTTP request head: what the parser hands over and the bridge
 * carries to Python (no llhttp here: the Python side includes this). */
#ifndef BAYLEAF_PROTO_HEAD_H
#define BAYLEAF_PROTO_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t name_off, name_len; /* name is lower-cased */
    uint32_t value_off, value_len;
} bl_header_t;

/* A parsed request head: every string lives in buf. */
typedef struct bl_head_s {
    const char *method; /* static, from llhttp */
    uint8_t http_major, http_minor;
    bool keep_alive;
    bool expect_continue;
    bool upgrade;     /* Upgrade + Connection: upgrade */
    bool websocket;   /* Upgrade: websocket */
    uint32_t url_len; /* the request target is buf[0, url_len) */
    uint32_t path_off, path_len;
    uint32_t query_off, query_len;
    uint32_t nheaders;
    size_t headers_cap;
    bl_header_t *headers;
    char *buf;
    size_t len, cap;
} bl_head_t;

void bl_head_free(bl_head_t *head);
/* Appends a header with empty name and value (offsets 0), the array grown
 * by bl_buf_reserve_n; NULL when memory runs out. */
bl_header_t *bl_head_header_add(bl_head_t *head);
/* Value of the first header called `name` (lower-case), or NULL. */
const char *bl_head_find(const bl_head_t *head, const char *name, size_t *len);
/* Value of the next header called `name` at or after index *i, or NULL; *i
 * moves past it, so a loop from *i = 0 visits each in order (headers[*i - 1]
 * is the one found). */
const char *bl_head_find_next(const bl_head_t *head, const char *name, uint32_t *i, size_t *len);

#endif
