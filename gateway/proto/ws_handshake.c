/* WebSocket opening handshake (RFC 6455 4.2.1, 4.2.2). SHA-1 and base64 come
 * from OpenSSL's libcrypto. */
#include "bayleaf/proto/ws_handshake.h"
#include "bayleaf/proto/tokens.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

typedef struct {
    const char *p;
    size_t len;
} span_t;

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static span_t trim(const char *p, size_t len)
{
    while (len > 0 && is_ows(*p)) {
        p++;
        len--;
    }
    while (len > 0 && is_ows(p[len - 1]))
        len--;
    return (span_t){p, len};
}

/* Does any `name` header list the token (case-insensitive)? */
static bool has_token(const bl_head_t *head, const char *name, const char *token)
{
    size_t tlen = strlen(token), len;
    uint32_t i = 0;
    const char *v;
    while ((v = bl_head_find_next(head, name, &i, &len)) != NULL) {
        size_t pos = 0, elen;
        const char *e;
        while (bl_token_next(v, len, &pos, &e, &elen)) {
            if (elen == tlen && strncasecmp(e, token, tlen) == 0)
                return true;
        }
    }
    return false;
}

static size_t count_headers(const bl_head_t *head, const char *name)
{
    size_t n = 0, len;
    uint32_t i = 0;
    while (bl_head_find_next(head, name, &i, &len) != NULL)
        n++;
    return n;
}

static int refuse(bl_ws_handshake_t *out, int status, const char *reason)
{
    out->status = status;
    out->reason = reason;
    return status;
}

static bool is_b64(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* 4.1: the key is 16 bytes, base64-encoded: 22 characters and "==". */
static bool key_valid(span_t key)
{
    unsigned char raw[18];
    if (key.len != 24 || key.p[22] != '=' || key.p[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++) {
        if (!is_b64(key.p[i]))
            return false;
    }
    /* EVP_DecodeBlock counts the padding as zero bytes: 18 = 16 + 2. */
    return EVP_DecodeBlock(raw, (const unsigned char *)key.p, 24) == 18;
}

/* accept = base64(SHA-1(key + GUID)) */
static bool compute_accept(span_t key, char accept[29])
{
    unsigned char buf[24 + sizeof(WS_GUID)], md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    memcpy(buf, key.p, key.len);
    memcpy(buf + key.len, WS_GUID, sizeof(WS_GUID) - 1);
    if (!EVP_Digest(buf, key.len + sizeof(WS_GUID) - 1, md, &md_len, EVP_sha1(), NULL) ||
        md_len != 20)
        return false;
    return EVP_EncodeBlock((unsigned char *)accept, md, 20) == 28;
}

/* Subprotocol list and extension values, in one allocation. */
static int collect(const bl_head_t *head, bl_ws_handshake_t *out)
{
    size_t nprot = 0, prot_bytes = 0, ext_bytes = 0, len, elen;
    uint32_t i = 0;
    const char *v, *e;

    while ((v = bl_head_find_next(head, "sec-websocket-protocol", &i, &len)) != NULL) {
        size_t pos = 0;
        while (bl_token_next(v, len, &pos, &e, &elen)) {
            nprot++;
            prot_bytes += elen + 1;
        }
    }
    i = 0;
    while (bl_head_find_next(head, "sec-websocket-extensions", &i, &len) != NULL)
        ext_bytes += len + 2;
    if (nprot == 0 && ext_bytes == 0)
        return 0;

    char *mem = malloc(nprot * sizeof(char *) + prot_bytes + ext_bytes + 1);
    if (mem == NULL)
        return -ENOMEM;
    const char **list = (const char **)mem;
    char *s = mem + nprot * sizeof(char *);
    size_t k = 0;
    i = 0;
    while ((v = bl_head_find_next(head, "sec-websocket-protocol", &i, &len)) != NULL) {
        size_t pos = 0;
        while (bl_token_next(v, len, &pos, &e, &elen)) {
            list[k++] = s;
            memcpy(s, e, elen);
            s[elen] = '\0';
            s += elen + 1;
        }
    }
    out->mem = mem;
    out->protocols = list;
    out->nprotocols = nprot;
    if (ext_bytes > 0) {
        char *ext = s;
        i = 0;
        while ((v = bl_head_find_next(head, "sec-websocket-extensions", &i, &len)) != NULL) {
            span_t t = trim(v, len);
            if (t.len == 0)
                continue;
            if (s != ext) {
                memcpy(s, ", ", 2);
                s += 2;
            }
            memcpy(s, t.p, t.len);
            s += t.len;
        }
        *s = '\0';
        out->extensions = s != ext ? ext : NULL;
    }
    return 0;
}

int bl_ws_handshake_check(const bl_head_t *head, bl_ws_handshake_t *out)
{
    size_t len;
    const char *v;

    memset(out, 0, sizeof(*out));
    if (head->method == NULL || strcmp(head->method, "GET") != 0)
        return refuse(out, 400, "WebSocket handshake must use GET");
    if (head->http_major < 1 || (head->http_major == 1 && head->http_minor < 1))
        return refuse(out, 400, "WebSocket handshake needs HTTP/1.1");
    if (!has_token(head, "upgrade", "websocket"))
        return refuse(out, 400, "Upgrade header must list websocket");
    if (!has_token(head, "connection", "upgrade"))
        return refuse(out, 400, "Connection header must list upgrade");
    if (bl_head_find(head, "host", &len) == NULL)
        return refuse(out, 400, "Missing Host header");

    v = bl_head_find(head, "sec-websocket-version", &len);
    if (v == NULL)
        return refuse(out, 426, "Missing Sec-WebSocket-Version header");
    if (count_headers(head, "sec-websocket-version") > 1)
        return refuse(out, 400, "Repeated Sec-WebSocket-Version header");
    span_t version = trim(v, len);
    if (version.len != 2 || memcmp(version.p, "13", 2) != 0)
        return refuse(out, 426, "Unsupported WebSocket version");

    v = bl_head_find(head, "sec-websocket-key", &len);
    if (v == NULL)
        return refuse(out, 400, "Missing Sec-WebSocket-Key header");
    if (count_headers(head, "sec-websocket-key") > 1)
        return refuse(out, 400, "Repeated Sec-WebSocket-Key header");
    span_t key = trim(v, len);
    if (!key_valid(key))
        return refuse(out, 400, "Sec-WebSocket-Key must be 16 bytes, base64-encoded");
    if (!compute_accept(key, out->accept))
        return refuse(out, 500, "SHA-1 unavailable");
    if (collect(head, out) != 0)
        return refuse(out, 500, "Out of memory");
    return 0;
}

void bl_ws_handshake_free(bl_ws_handshake_t *hs)
{
    free(hs->mem);
    hs->mem = NULL;
    hs->protocols = NULL;
    hs->nprotocols = 0;
    hs->extensions = NULL;
}

int bl_ws_handshake_response(const char *accept, const char *subprotocol, const char *extra_headers,
                             size_t extra_len, const char *server_name, char **out, size_t *out_len)
{
    size_t prot_len = subprotocol ? strlen(subprotocol) : 0;
    size_t server_len = server_name ? strlen(server_name) : 0;
    /* The subprotocol may come from the app: never let it end the header. */
    if (subprotocol != NULL && strcspn(subprotocol, "\r\n") != prot_len)
        return -EINVAL;
    size_t cap = 160 + strlen(accept) + prot_len + extra_len + server_len;
    char *buf = malloc(cap);
    if (buf == NULL)
        return -ENOMEM;
    size_t n = (size_t)snprintf(buf, cap,
                                "HTTP/1.1 101 Switching Protocols\r\n"
                                "Upgrade: websocket\r\n"
                                "Connection: Upgrade\r\n"
                                "Sec-WebSocket-Accept: %s\r\n",
                                accept);
    if (subprotocol != NULL)
        n += (size_t)snprintf(buf + n, cap - n, "Sec-WebSocket-Protocol: %s\r\n", subprotocol);
    if (extra_len > 0)
        memcpy(buf + n, extra_headers, extra_len);
    n += extra_len;
    if (server_name != NULL)
        n += (size_t)snprintf(buf + n, cap - n, "Server: %s\r\n", server_name);
    memcpy(buf + n, "\r\n", 2);
    *out = buf;
    *out_len = n + 2;
    return 0;
}
