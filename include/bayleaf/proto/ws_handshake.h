/* RFC 6455 section 4.2 opening handshake, server side: checks an upgrade
 * request head and builds the 101 response (or the refusal). */
#ifndef BAYLEAF_WS_HANDSHAKE_H
#define BAYLEAF_WS_HANDSHAKE_H

#include <stddef.h>

#include "bayleaf/proto/http_parser.h"

typedef struct {
    int status;             /* 0, or 400 / 426 / 500: refuse with it */
    const char *reason;     /* why (static), when status != 0 */
    char accept[29];        /* Sec-WebSocket-Accept value, NUL-terminated */
    size_t nprotocols;      /* Sec-WebSocket-Protocol elements, in order */
    const char **protocols; /* trimmed, NUL-terminated */
    char *extensions;       /* Sec-WebSocket-Extensions values joined by ", "; NULL: none */
    void *mem;              /* storage of the above */
} bl_ws_handshake_t;

/* Validates an upgrade request (method GET, HTTP/1.1+, Host, Upgrade: websocket,
 * Connection: upgrade, one Sec-WebSocket-Key of 16 bytes, Sec-WebSocket-Version:
 * 13) and fills out. Returns 0 or out->status; on 426 the refusal must carry
 * "Sec-WebSocket-Version: 13" (io/conn_write.c adds it to the
 * bl_response_simple refusal). Call
 * bl_ws_handshake_free afterwards in both cases. */
int bl_ws_handshake_check(const bl_head_t *head, bl_ws_handshake_t *out);
void bl_ws_handshake_free(bl_ws_handshake_t *hs);

/* The "101 Switching Protocols" head, malloc'd into *out. subprotocol and
 * server_name may be NULL; extra_headers are the app's lines, "name: value\r\n"
 * each. 0, -EINVAL (a CR or LF in subprotocol) or -ENOMEM. */
int bl_ws_handshake_response(const char *accept, const char *subprotocol, const char *extra_headers,
                             size_t extra_len, const char *server_name, char **out,
                             size_t *out_len);

#endif
