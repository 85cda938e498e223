/* WebSocket opening handshake (gateway/proto/ws_handshake.c): request heads from
 * the real HTTP parser in, verdicts and response bytes out. */
#include "bayleaf/proto/http_response.h"
#include "bayleaf/proto/ws_handshake.h"
#include "check.h"

/* Each test runs in a child process: a crash is one failure. */
#define RUN(fn) check_isolated(#fn, fn, NULL)

#include <errno.h>

static bl_head_t *parsed;

static int on_head(bl_http_parser_t *p, bl_head_t *head)
{
    (void)p;
    parsed = head;
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

/* The head of a request made of the given header lines. */
static bl_head_t *head_of(const char *request_line, const char *headers)
{
    static const bl_http_handler_t handler = {on_head, on_body, on_complete};
    static const bl_http_limits_t limits = {65536, 8192, 100};
    bl_http_parser_t p;
    char req[4096];
    size_t consumed;
    int n = snprintf(req, sizeof(req), "%s\r\n%s\r\n", request_line, headers);
    parsed = NULL;
    bl_http_parser_init(&p, &handler, &limits, NULL);
    int r = bl_http_parser_feed(&p, req, (size_t)n, &consumed);
    bl_http_parser_free(&p);
    if (parsed == NULL)
        fprintf(stderr, "  parse failed (%d): %s\n", r, headers);
    return parsed;
}

#define GOOD_KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define BASE                                                                                       \
    "Host: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"                           \
    "Sec-WebSocket-Version: 13\r\n"

/* Checks a request; returns the status and fills hs (freed by the caller). */
static int check(const char *request_line, const char *headers, bl_ws_handshake_t *hs)
{
    bl_head_t *h = head_of(request_line, headers);
    if (h == NULL)
        return -1;
    int r = bl_ws_handshake_check(h, hs);
    bl_head_free(h);
    return r;
}

static int status_of(const char *headers)
{
    bl_ws_handshake_t hs;
    int r = check("GET /chat HTTP/1.1", headers, &hs);
    bl_ws_handshake_free(&hs);
    return r;
}

/* RFC 6455 1.3: key "dGhlIHNhbXBsZSBub25jZQ==" gives "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=". */
static void test_rfc_example_accept(void)
{
    bl_ws_handshake_t hs;
    CHECK(check("GET /chat HTTP/1.1", BASE GOOD_KEY, &hs) == 0);
    CHECK(hs.status == 0 && strcmp(hs.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
    CHECK(hs.nprotocols == 0 && hs.extensions == NULL);
    bl_ws_handshake_free(&hs);
    /* Surrounding whitespace is not part of the key. */
    CHECK(check("GET /chat HTTP/1.1", BASE "Sec-WebSocket-Key:   dGhlIHNhbXBsZSBub25jZQ==  \r\n",
                &hs) == 0);
    CHECK(strcmp(hs.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
    bl_ws_handshake_free(&hs);
    /* Another key; value from Python: base64(sha1(key + GUID)). */
    CHECK(check("GET / HTTP/1.1", BASE "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n", &hs) ==
          0);
    CHECK(strcmp(hs.accept, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=") == 0);
    bl_ws_handshake_free(&hs);
}

static void test_version(void)
{
    bl_ws_handshake_t hs;
    const char *no_version = "Host: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" GOOD_KEY;
    CHECK(check("GET / HTTP/1.1", no_version, &hs) == 426 && hs.status == 426 && hs.reason);
    bl_ws_handshake_free(&hs);
    CHECK(status_of("Host: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Version: 8\r\n" GOOD_KEY) == 426);
    CHECK(status_of("Host: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Version: 13, 8\r\n" GOOD_KEY) == 426);
    CHECK(status_of("Host: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Version: 14\r\n" GOOD_KEY) == 426);
    CHECK(status_of("Host: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n" GOOD_KEY) == 400);
    /* The refusal is the one error response (bl_response_simple); the I/O
     * thread adds "Sec-WebSocket-Version: 13" to a 426 (integration test
     * tests/integration/ws/test_ws_handshake.py test_bad_version_426). */
    char *out;
    size_t len;
    CHECK(bl_response_simple(426, "bayleaf", false, &out, &len) == 0);
    CHECK(strncmp(out, "HTTP/1.1 426 Upgrade Required\r\n", 31) == 0);
    CHECK(strstr(out, "\r\nserver: bayleaf\r\n") != NULL);
    CHECK(strstr(out, "\r\nconnection: close\r\n") != NULL);
    CHECK(len == strlen(out) && strstr(out, "\r\n\r\nUpgrade Required\n") != NULL);
    free(out);
    CHECK(bl_response_simple(400, NULL, false, &out, &len) == 0);
    CHECK(strncmp(out, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    CHECK(strstr(out, "Sec-WebSocket-Version") == NULL && strstr(out, "server:") == NULL);
    free(out);
}

static void test_bad_keys(void)
{
    static const char *keys[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ",    /* no padding */
        "dGhlIHNhbXBsZSBub25jZQ=",   /* short padding */
        "dGhlIHNhbXBsZSBub25jZQ===", /* 25 characters */
        "dGhlIHNhbXBsZSBub25j",      /* 15 bytes */
        "dGhlIHNhbXBsZSBub25jZUFB",  /* 18 bytes */
        "dGhlIHNhbXBsZSBub25jZQ=A",  /* data after padding */
        "dGhlIHNhbXBsZSBub2!jZQ==",  /* not base64 */
        "dGhlIHNhbXBs ZSBub25jZQ==", /* inner space */
        "dGhlIHNhbXBsZSBub25jZSE=",  /* 17 bytes */
    };
    char headers[512];
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        snprintf(headers, sizeof(headers), BASE "Sec-WebSocket-Key: %s\r\n", keys[i]);
        int r = status_of(headers);
        if (r != 400) {
            fprintf(stderr, "  key \"%s\": %d\n", keys[i], r);
            check_result(false, __FILE__, __LINE__, "case above");
        }
    }
    CHECK(status_of(BASE) == 400);                   /* missing */
    CHECK(status_of(BASE GOOD_KEY GOOD_KEY) == 400); /* repeated */
    /* Any 16 bytes will do. */
    CHECK(status_of(BASE "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n") == 0);
    CHECK(status_of(BASE "Sec-WebSocket-Key: /////////////////////w==\r\n") == 0);
}

static void test_connection_and_upgrade_tokens(void)
{
    static const struct {
        const char *upgrade, *connection;
        int status;
    } cases[] = {
        {"websocket", "Upgrade", 0},
        {"websocket", "upgrade", 0},
        {"WebSocket", "UPGRADE", 0},
        {"websocket", "keep-alive, Upgrade", 0}, /* Firefox */
        {"websocket", "Upgrade, keep-alive", 0},
        {"websocket", "keep-alive,upgrade", 0},
        {"websocket", " , keep-alive ,\tUpgrade\t, ", 0},
        {"h2c, websocket", "Upgrade", 0},
        {"websocket", "keep-alive", 400},
        {"websocket", "upgraded", 400},
        {"websocket", "keep-alive upgrade", 400},
        {"websockets", "Upgrade", 400},
        {"websocket/13", "Upgrade", 400},
        {"h2c", "Upgrade", 400},
    };
    char headers[512];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(
            headers, sizeof(headers),
            "Host: a\r\nUpgrade: %s\r\nConnection: %s\r\nSec-WebSocket-Version: 13\r\n" GOOD_KEY,
            cases[i].upgrade, cases[i].connection);
        int r = status_of(headers);
        if (r != cases[i].status) {
            fprintf(stderr, "  Upgrade: %s / Connection: %s -> %d\n", cases[i].upgrade,
                    cases[i].connection, r);
            check_result(false, __FILE__, __LINE__, "case above");
        }
    }
    /* Token lists spread over repeated headers. */
    CHECK(status_of("Host: a\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" GOOD_KEY) == 0);
    CHECK(status_of("Host: a\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" GOOD_KEY) ==
          400); /* no Upgrade */
    CHECK(status_of("Host: a\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" GOOD_KEY) ==
          400); /* no Connection */
}

static void test_method_version_host(void)
{
    bl_ws_handshake_t hs;
    CHECK(check("POST /chat HTTP/1.1", BASE GOOD_KEY "Content-Length: 0\r\n", &hs) == 400);
    bl_ws_handshake_free(&hs);
    CHECK(check("HEAD /chat HTTP/1.1", BASE GOOD_KEY, &hs) == 400);
    bl_ws_handshake_free(&hs);
    CHECK(check("GET /chat HTTP/1.0", BASE GOOD_KEY, &hs) == 400);
    bl_ws_handshake_free(&hs);
    /* No Host: the HTTP parser already refuses an HTTP/1.1 request without one
     * (RFC 9112 3.2), so the handshake never sees it... */
    static const char no_host[] = "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                  "Sec-WebSocket-Version: 13\r\n" GOOD_KEY;
    CHECK(head_of("GET /chat HTTP/1.1", no_host) == NULL);
    /* ...but its own check stands: a head whose Host is gone (renamed in place). */
    bl_head_t *h = head_of("GET /chat HTTP/1.1", BASE GOOD_KEY);
    if (CHECK(h != NULL)) {
        for (uint32_t i = 0; i < h->nheaders; i++)
            if (h->headers[i].name_len == 4 &&
                memcmp(h->buf + h->headers[i].name_off, "host", 4) == 0)
                h->buf[h->headers[i].name_off + 3] = 'x';
        CHECK(bl_ws_handshake_check(h, &hs) == 400 && strstr(hs.reason, "Host") != NULL);
        bl_ws_handshake_free(&hs);
        bl_head_free(h);
    }
}

static void test_subprotocols_and_extensions(void)
{
    bl_ws_handshake_t hs;
    CHECK(check("GET / HTTP/1.1",
                BASE GOOD_KEY
                "Sec-WebSocket-Protocol: chat, superchat\r\n"
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                "Sec-WebSocket-Protocol:  v2.bayleaf ,,graphql-ws \r\n"
                "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n",
                &hs) == 0);
    CHECK(hs.nprotocols == 4);
    if (hs.nprotocols == 4) {
        CHECK(strcmp(hs.protocols[0], "chat") == 0);
        CHECK(strcmp(hs.protocols[1], "superchat") == 0);
        CHECK(strcmp(hs.protocols[2], "v2.bayleaf") == 0);
        CHECK(strcmp(hs.protocols[3], "graphql-ws") == 0);
    }
    CHECK(hs.extensions != NULL &&
          strcmp(hs.extensions,
                 "permessage-deflate; client_max_window_bits, x-webkit-deflate-frame") == 0);
    bl_ws_handshake_free(&hs);
    CHECK(hs.protocols == NULL && hs.extensions == NULL);

    CHECK(check("GET / HTTP/1.1", BASE GOOD_KEY "Sec-WebSocket-Extensions: permessage-deflate\r\n",
                &hs) == 0);
    CHECK(hs.nprotocols == 0 && strcmp(hs.extensions, "permessage-deflate") == 0);
    bl_ws_handshake_free(&hs);
}

static void test_response(void)
{
    char *out;
    size_t len;
    CHECK(bl_ws_handshake_response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", NULL, NULL, 0, NULL, &out,
                                   &len) == 0);
    static const char plain[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                "Upgrade: websocket\r\n"
                                "Connection: Upgrade\r\n"
                                "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                                "\r\n";
    CHECK(len == sizeof(plain) - 1 && memcmp(out, plain, len) == 0);
    free(out);

    static const char extra[] = "set-cookie: a=b\r\nx-thing: 1\r\n";
    CHECK(bl_ws_handshake_response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "chat", extra, sizeof(extra) - 1,
                                   "bayleaf", &out, &len) == 0);
    static const char full[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                               "Sec-WebSocket-Protocol: chat\r\n"
                               "set-cookie: a=b\r\nx-thing: 1\r\n"
                               "Server: bayleaf\r\n"
                               "\r\n";
    CHECK(len == sizeof(full) - 1 && memcmp(out, full, len) == 0);
    free(out);

    out = NULL;
    CHECK(bl_ws_handshake_response("x", "chat\r\nx-evil: 1", NULL, 0, NULL, &out, &len) == -EINVAL);
    CHECK(out == NULL);
}

int main(void)
{
    RUN(test_rfc_example_accept);
    RUN(test_version);
    RUN(test_bad_keys);
    RUN(test_connection_and_upgrade_tokens);
    RUN(test_method_version_host);
    RUN(test_subprotocols_and_extensions);
    RUN(test_response);
    return check_report();
}
