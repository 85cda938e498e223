/* libFuzzer target: request bytes -> bl_http_parser -> every head through
 * bl_ws_handshake_check, then the 101 (bl_ws_handshake_response) or the
 * refusal (bl_response_simple, the one error response) is built and parsed
 * back.
 *
 * Input: byte 0 picks the subprotocol the "app" accepts and whether it adds
 * headers; the rest is the request stream. Checked: only well-formed
 * handshakes pass (GET, HTTP/1.1, Host, one 16-byte key, version 13); the
 * accept value matches SHA-1 + our own base64 of the trimmed key; the list
 * of subprotocols is trimmed and comma-free; the responses are single,
 * complete heads with CRLF line ends and a Content-Length that matches. */
#include "bayleaf/proto/http_response.h"
#include "bayleaf/proto/http_parser.h"
#include "bayleaf/proto/ws_handshake.h"
#include "fuzz_common.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

static uint8_t app_cfg;

static void b64(const uint8_t *in, size_t len, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < len ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? tab[v & 63] : '=';
    }
    out[o] = '\0';
}

static void expected_accept(const bl_head_t *h, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    size_t len = 0;
    const char *key = bl_head_find(h, "sec-websocket-key", &len);
    FUZZ_CHECK(key != NULL);
    while (len > 0 && (key[0] == ' ' || key[0] == '\t'))
        key++, len--;
    while (len > 0 && (key[len - 1] == ' ' || key[len - 1] == '\t'))
        len--;
    FUZZ_CHECK(len == 24); /* 16 bytes in base64 */
    char buf[64];
    memcpy(buf, key, len);
    memcpy(buf + len, guid, sizeof(guid) - 1);
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    FUZZ_CHECK(EVP_Digest(buf, len + sizeof(guid) - 1, md, &md_len, EVP_sha1(), NULL));
    FUZZ_CHECK(md_len == 20);
    b64(md, 20, out);
}

/* One complete head: CRLF line ends only, ending at the first blank line. */
static size_t check_head_text(const char *p, size_t len)
{
    FUZZ_CHECK(memchr(p, '\0', len) == NULL);
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\r')
            FUZZ_CHECK(i + 1 < len && p[i + 1] == '\n');
        if (p[i] == '\n') {
            FUZZ_CHECK(i > 0 && p[i - 1] == '\r');
            if (i >= 3 && p[i - 2] == '\n')
                return i + 1; /* end of the head */
        }
    }
    FUZZ_CHECK(!"head not terminated");
    return 0;
}

static void check_accepted(const bl_head_t *h, bl_ws_handshake_t *hs)
{
    size_t len;
    FUZZ_CHECK(strcmp(h->method, "GET") == 0);
    FUZZ_CHECK(h->http_major == 1 && h->http_minor == 1);
    FUZZ_CHECK(bl_head_find(h, "host", &len) != NULL);
    const char *v = bl_head_find(h, "sec-websocket-version", &len);
    FUZZ_CHECK(v != NULL);
    char want[29];
    expected_accept(h, want);
    FUZZ_CHECK(strlen(hs->accept) == 28 && strcmp(hs->accept, want) == 0);
    for (size_t i = 0; i < hs->nprotocols; i++) {
        const char *p = hs->protocols[i];
        size_t n = strlen(p);
        FUZZ_CHECK(n > 0 && strchr(p, ',') == NULL);
        FUZZ_CHECK(p[0] != ' ' && p[0] != '\t' && p[n - 1] != ' ' && p[n - 1] != '\t');
    }
    FUZZ_CHECK(hs->extensions == NULL || hs->extensions[0] != '\0');

    /* The 101, with what an app might choose. */
    const char *sub =
        hs->nprotocols > 0 && (app_cfg & 1) ? hs->protocols[(app_cfg >> 1) % hs->nprotocols] : NULL;
    static const char extra[] = "x-app: 1\r\nset-cookie: a=b\r\n";
    size_t extra_len = (app_cfg & 0x10) ? sizeof(extra) - 1 : 0;
    const char *server = (app_cfg & 0x20) ? NULL : "bayleaf";
    char *out = NULL;
    size_t out_len = 0;
    int rc = bl_ws_handshake_response(hs->accept, sub, extra, extra_len, server, &out, &out_len);
    FUZZ_CHECK(rc == 0); /* values never hold CR or LF, so the subprotocol is fine */
    FUZZ_CHECK(out_len > 34 && memcmp(out, "HTTP/1.1 101 Switching Protocols\r\n", 34) == 0);
    FUZZ_CHECK(check_head_text(out, out_len) == out_len);
    char line[64];
    snprintf(line, sizeof(line), "\r\nSec-WebSocket-Accept: %s\r\n", hs->accept);
    FUZZ_CHECK(memmem(out, out_len, line, strlen(line)) != NULL);
    free(out);
}

static void check_refused(int status, const char *reason)
{
    FUZZ_CHECK(status == 400 || status == 426 || status == 500);
    FUZZ_CHECK(reason != NULL);
    char *out = NULL;
    size_t out_len = 0;
    FUZZ_CHECK(bl_response_simple(status, "bayleaf", false, &out, &out_len) == 0);
    char start[16];
    snprintf(start, sizeof(start), "HTTP/1.1 %d ", status);
    FUZZ_CHECK(out_len > strlen(start) && memcmp(out, start, strlen(start)) == 0);
    size_t head = check_head_text(out, out_len);
    const char *cl = memmem(out, head, "content-length: ", 16);
    FUZZ_CHECK(cl != NULL);
    FUZZ_CHECK(strtoul(cl + 16, NULL, 10) == out_len - head);
    free(out);
}

static int on_head(bl_http_parser_t *p, bl_head_t *head)
{
    bl_ws_handshake_t hs;
    (void)p;
    int status = bl_ws_handshake_check(head, &hs);
    FUZZ_CHECK(status == hs.status);
    if (status == 0)
        check_accepted(head, &hs);
    else
        check_refused(status, hs.reason);
    bl_ws_handshake_free(&hs);
    FUZZ_CHECK(hs.mem == NULL && hs.protocols == NULL && hs.extensions == NULL);
    bl_head_free(head);
    return 0;
}

static int on_body(bl_http_parser_t *p, const char *at, size_t len)
{
    (void)p, (void)at, (void)len;
    return 0;
}

static int on_complete(bl_http_parser_t *p)
{
    (void)p;
    return 0;
}

static const bl_http_handler_t handler = {on_head, on_body, on_complete};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const bl_http_limits_t limits = {64 * 1024, 16 * 1024, 128};
    bl_http_parser_t p;
    if (size < 1)
        return 0;
    app_cfg = data[0];
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    bl_http_parser_init(&p, &handler, &limits, NULL);
    /* Keep parsing after upgrades too: every head of the stream is checked. */
    for (int guard = 0; len > 0 && guard < 1000; guard++) {
        size_t used = 0;
        int rc = bl_http_parser_feed(&p, in, len, &used);
        FUZZ_CHECK(used <= len);
        in += used;
        len -= used;
        if (rc == BL_HTTP_ERROR)
            break;
        if (rc == BL_HTTP_PAUSED || rc == BL_HTTP_UPGRADE)
            bl_http_parser_resume(&p);
    }
    bl_http_parser_free(&p);
    return 0;
}
