/* bl_response_head / bl_response_simple: framing and keep-alive decisions, bytes out. */
#include "bayleaf/proto/http_response.h"

#include <errno.h>
#include <time.h>

#include "check.h"

/* What bl_response_head produced, as a C string. */
typedef struct {
    char *text;
    size_t len;
    bl_framing_t framing;
    bool keep_alive;
} built_t;

static void build(const bl_response_t *r, built_t *b)
{
    char *out = NULL;
    memset(b, 0, sizeof(*b));
    CHECK_EQ_INT(bl_response_head(r, &out, &b->len, &b->framing, &b->keep_alive), 0);
    b->text = calloc(1, b->len + 1);
    if (out != NULL)
        memcpy(b->text, out, b->len);
    free(out);
}

/* A 200 for a GET/1.1 that allows keep-alive, with one app header. */
static bl_response_t base(void)
{
    static const char hdrs[] = "content-type: text/plain\r\n";
    bl_response_t r = {
        .status = 200,
        .headers = hdrs,
        .headers_len = sizeof(hdrs) - 1,
        .keep_alive = true,
        .server_name = "bayleaf",
    };
    return r;
}

static size_t count(const char *s, const char *sub)
{
    size_t n = 0;
    for (const char *p = strstr(s, sub); p != NULL; p = strstr(p + 1, sub))
        n++;
    return n;
}

/* Every head: a status line, CRLF-terminated lines, one blank line at the end. */
static void check_shape(const built_t *b, const char *status_line)
{
    CHECK(strncmp(b->text, status_line, strlen(status_line)) == 0);
    CHECK(b->len >= 4 && memcmp(b->text + b->len - 4, "\r\n\r\n", 4) == 0);
    CHECK_EQ_INT(strlen(b->text), b->len);
    CHECK_EQ_INT(count(b->text, "\r\n\r\n"), 1);
    CHECK_EQ_INT(count(b->text, "\n"), count(b->text, "\r\n"));
    CHECK_EQ_INT(count(b->text, "\r"), count(b->text, "\r\n"));
}

static void test_content_length_given(void)
{
    static const char hdrs[] = "content-type: text/plain\r\ncontent-length: 5\r\n";
    bl_response_t r = base();
    built_t b;
    r.headers = hdrs;
    r.headers_len = sizeof(hdrs) - 1;
    r.flags = BL_RESP_HAS_CLEN;
    r.content_length = 5;
    build(&r, &b);
    check_shape(&b, "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n");
    CHECK_EQ_INT(b.framing, BL_FRAME_LENGTH);
    CHECK(b.keep_alive);
    CHECK_EQ_INT(count(b.text, "content-length"), 1);
    CHECK_LACKS(b.text, "transfer-encoding");
    CHECK_LACKS(b.text, "connection:");
    CHECK_HAS(b.text, "\r\nserver: bayleaf\r\n");
    CHECK_HAS(b.text, "\r\ndate: ");
    free(b.text);

    /* Even when the whole body is at hand, the app's length stands. */
    r.body_known = true;
    r.body_len = 5;
    build(&r, &b);
    CHECK_EQ_INT(b.framing, BL_FRAME_LENGTH);
    CHECK_EQ_INT(count(b.text, "content-length"), 1);
    free(b.text);
}

static void test_body_known(void)
{
    bl_response_t r = base();
    built_t b;
    r.body_known = true;
    r.body_len = 11;
    build(&r, &b);
    check_shape(&b, "HTTP/1.1 200 OK\r\n");
    CHECK_EQ_INT(b.framing, BL_FRAME_LENGTH);
    CHECK(b.keep_alive);
    CHECK_HAS(b.text, "\r\ncontent-length: 11\r\n");
    CHECK_LACKS(b.text, "transfer-encoding");
    free(b.text);

    /* An empty body still says so. */
    r.body_len = 0;
    build(&r, &b);
    CHECK_EQ_INT(b.framing, BL_FRAME_LENGTH);
    CHECK_HAS(b.text, "\r\ncontent-length: 0\r\n");
    free(b.text);
}

static void test_streaming(void)
{
    bl_response_t r = base();
    built_t b;

    /* HTTP/1.1: chunked, the connection stays. */
    build(&r, &b);
    check_shape(&b, "HTTP/1.1 200 OK\r\n");
    CHECK_EQ_INT(b.framing, BL_FRAME_CHUNKED);
    CHECK(b.keep_alive);
    CHECK_HAS(b.text, "\r\ntransfer-encoding: chunked\r\n");
    CHECK_LACKS(b.text, "content-length");
    CHECK_LACKS(b.text, "connection:");
    free(b.text);

    /* HTTP/1.0 has no chunked: the close ends the body. */
    r.http10 = true;
    build(&r, &b);
    check_shape(&b, "HTTP/1.1 200 OK\r\n");
    CHECK_EQ_INT(b.framing, BL_FRAME_CLOSE);
    CHECK(!b.keep_alive);
    CHECK_LACKS(b.text, "transfer-encoding");
    CHECK_LACKS(b.text, "content-length");
    CHECK_HAS(b.text, "\r\nconnection: close\r\n");
    free(b.text);

    /* The app framed the body itself: passed through, ended by the close. */
    static const char te[] = "transfer-encoding: chunked\r\n";
    r = base();
    r.headers = te;
    r.headers_len = sizeof(te) - 1;
    r.flags = BL_RESP_CHUNKED;
    r.body_known = true;
    r.body_len = 10;
    build(&r, &b);
    CHECK_EQ_INT(b.framing, BL_FRAME_CLOSE);
    CHECK(!b.keep_alive);
    CHECK_EQ_INT(count(b.text, "transfer-encoding"), 1);
    CHECK_LACKS(b.text, "content-length");
    CHECK_HAS(b.text, "\r\nconnection: close\r\n");
    free(b.text);
}

static void test_http10_keep_alive(void)
{
    bl_response_t r = base();
    built_t b;
    r.http10 = true;
    r.body_known = true;
    r.body_len = 3;
    build(&r, &b);
    CHECK_EQ_INT(b.framing, BL_FRAME_LENGTH);
    CHECK(b.keep_alive);
    CHECK_HAS(b.text, "\r\ncontent-length: 3\r\n");
    CHECK_HAS(b.text, "\r\nconnection: keep-alive\r\n");
    free(b.text);

    /* A 1.0 request without keep-alive. */
    r.keep_alive = false;
    build(&r, &b);
    CHECK_EQ_INT(b.framing, BL_FRAME_LENGTH);
    CHECK(!b.keep_alive);
    CHECK_HAS(b.text, "\r\nconnection: close\r\n");
    CHECK_LACKS(b.text, "keep-alive");
    free(b.text);
}

static void test_head_request(void)
{
    static const char hdrs[] = "content-length: 1234\r\n";
    bl_response_t r = base();
    built_t b;

    /* The app's Content-Length describes the GET body: kept, nothing follows. */
    r.head_request = true;
    r.headers = hdrs;
    r.headers_len = sizeof(hdrs) - 1;
    r.flags = BL_RESP_HAS_CLEN;
    r.content_length = 1234;
    build(&r, &b);
    check_shape(&b, "HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n");
    CHECK_EQ_INT(b.framing, BL_FRAME_NONE);
    CHECK(b.keep_alive);
    CHECK_EQ_INT(count(b.text, "content-length"), 1);
    CHECK_LACKS(b.text, "transfer-encoding");
    free(b.text);

    /* No length and no body: no framing headers at all. */
    r = base();
    r.head_request = true;
    r.body_known = true;
    r.body_len = 0;
    build(&r, &b);
    CHECK_EQ_INT(b.framing, BL_FRAME_NONE);
    CHECK(b.keep_alive);
    CHECK_LACKS(b.text, "content-length");
    CHECK_LACKS(b.text, "transfer-encoding");
    free(b.text);

    /* Streaming, 1.1 and 1.0: still no body, and the connection may stay. */
    r.body_known = false;
    build(&r, &b);
    CHECK_EQ_INT(b.framing, BL_FRAME_NONE);
    CHECK(b.keep_alive);
    CHECK_LACKS(b.text, "transfer-encoding");
    CHECK_LACKS(b.text, "connection:");
    free(b.text);
    r.http10 = true;
    build(&r, &b);
    CHECK_EQ_INT(b.framing, BL_FRAME_NONE);
    CHECK(b.keep_alive);
    CHECK_HAS(b.text, "\r\nconnection: keep-alive\r\n");
    free(b.text);
}

static void check_no_body_status(int status, const char *line)
{
    bl_response_t r = base();
    built_t b;
    r.status = status;
    r.body_known = true;
    r.body_len = 0;
    build(&r, &b);
    check_shape(&b, line);
    CHECK_EQ_INT(b.framing, BL_FRAME_NONE);
    CHECK(b.keep_alive);
    CHECK_LACKS(b.text, "content-length");
    CHECK_LACKS(b.text, "transfer-encoding");
    free(b.text);

    /* Streaming: still no chunked framing. */
    r.body_known = false;
    build(&r, &b);
    CHECK_EQ_INT(b.framing, BL_FRAME_NONE);
    CHECK_LACKS(b.text, "transfer-encoding");
    free(b.text);
}

static void test_no_body_statuses(void)
{
    check_no_body_status(204, "HTTP/1.1 204 No Content\r\n");
    check_no_body_status(304, "HTTP/1.1 304 Not Modified\r\n");
    /* 1xx are not final responses: a 100 on a kept-alive connection, or a 101
     * on a plain request, would leave the client waiting or switching. */
    int informational[] = {100, 101, 103, 199};
    for (size_t i = 0; i < sizeof(informational) / sizeof(informational[0]); i++) {
        bl_response_t r = base();
        char *out = NULL;
        size_t len;
        bl_framing_t fr;
        bool ka;
        r.status = informational[i];
        CHECK_EQ_INT(bl_response_head(&r, &out, &len, &fr, &ka), -EINVAL);
        CHECK(out == NULL);
    }

    /* A 304 may carry the Content-Length of the full representation. */
    static const char hdrs[] = "content-length: 99\r\n";
    bl_response_t r = base();
    built_t b;
    r.status = 304;
    r.headers = hdrs;
    r.headers_len = sizeof(hdrs) - 1;
    r.flags = BL_RESP_HAS_CLEN;
    r.content_length = 99;
    build(&r, &b);
    CHECK_EQ_INT(b.framing, BL_FRAME_NONE);
    CHECK_EQ_INT(count(b.text, "content-length: 99"), 1);
    free(b.text);
}

static void test_connection_close(void)
{
    static const char hdrs[] = "connection: close\r\n";
    bl_response_t r = base();
    built_t b;

    /* The app asked for it: honoured, and not said twice. */
    r.headers = hdrs;
    r.headers_len = sizeof(hdrs) - 1;
    r.flags = BL_RESP_CLOSE;
    r.body_known = true;
    r.body_len = 2;
    build(&r, &b);
    CHECK_EQ_INT(b.framing, BL_FRAME_LENGTH);
    CHECK(!b.keep_alive);
    CHECK_EQ_INT(count(b.text, "connection:"), 1);
    free(b.text);

    /* The request did not allow keep-alive. */
    r = base();
    r.keep_alive = false;
    r.body_known = true;
    r.body_len = 2;
    build(&r, &b);
    CHECK(!b.keep_alive);
    CHECK_EQ_INT(b.framing, BL_FRAME_LENGTH);
    CHECK_HAS(b.text, "\r\nconnection: close\r\n");
    free(b.text);

    /* Streaming to a client that closes: chunked still frames the body. */
    r.body_known = false;
    build(&r, &b);
    CHECK(!b.keep_alive);
    CHECK_EQ_INT(b.framing, BL_FRAME_CHUNKED);
    CHECK_HAS(b.text, "\r\nconnection: close\r\n");
    free(b.text);
}

static void test_server_and_date(void)
{
    static const char hdrs[] = "server: app/2\r\ndate: Thu, 01 Jan 1970 00:00:00 GMT\r\n";
    bl_response_t r = base();
    built_t b;

    r.server_name = NULL;
    build(&r, &b);
    CHECK_LACKS(b.text, "server:");
    CHECK_EQ_INT(count(b.text, "date: "), 1);
    free(b.text);

    r.server_name = "custom-name/1.0";
    build(&r, &b);
    CHECK_HAS(b.text, "\r\nserver: custom-name/1.0\r\n");
    free(b.text);

    /* The app's own Server and Date replace ours. */
    r.headers = hdrs;
    r.headers_len = sizeof(hdrs) - 1;
    r.flags = BL_RESP_HAS_SERVER | BL_RESP_HAS_DATE;
    build(&r, &b);
    CHECK_EQ_INT(count(b.text, "server:"), 1);
    CHECK_EQ_INT(count(b.text, "date:"), 1);
    CHECK_HAS(b.text, "\r\nserver: app/2\r\n");
    CHECK_HAS(b.text, "1970");
    free(b.text);

    /* Only one of them. */
    r.flags = BL_RESP_HAS_DATE;
    r.headers = "date: Thu, 01 Jan 1970 00:00:00 GMT\r\n";
    r.headers_len = strlen(r.headers);
    build(&r, &b);
    CHECK_EQ_INT(count(b.text, "date:"), 1);
    CHECK_HAS(b.text, "\r\nserver: custom-name/1.0\r\n");
    free(b.text);
}

/* Large app headers and a long server name fit the buffer (ASan watches). */
static void test_sizes(void)
{
    static const char line[] = "x-a: 1234\r\n";
    size_t hlen = 9000 * (sizeof(line) - 1), slen = 5000;
    char *hdrs = malloc(hlen), *name = malloc(slen + 1);
    for (size_t i = 0; i < hlen; i += sizeof(line) - 1)
        memcpy(hdrs + i, line, sizeof(line) - 1);
    memset(name, 's', slen);
    name[slen] = '\0';
    bl_response_t r = base();
    built_t b;
    r.status = 431; /* the longest reason phrase */
    r.headers = hdrs;
    r.headers_len = hlen;
    r.server_name = name;
    r.http10 = true;
    r.body_known = true;
    r.body_len = SIZE_MAX; /* the longest content-length we may add */
    build(&r, &b);
    static const char status[] = "HTTP/1.1 431 Request Header Fields Too Large\r\n";
    check_shape(&b, status);
    CHECK(b.len > hlen && memcmp(b.text + strlen(status), hdrs, hlen) == 0);
    CHECK(strstr(b.text, name) != NULL);
    CHECK_HAS(b.text, "\r\nconnection: keep-alive\r\n");
    free(b.text);
    free(hdrs);
    free(name);
}

/* The head and body of a bl_response_simple answer, and its Content-Length. */
static void check_simple(int status, const char *server, bool keep_alive, const char *reason)
{
    char *out = NULL;
    size_t len = 0;
    char line[64];
    CHECK_EQ_INT(bl_response_simple(status, server, keep_alive, &out, &len), 0);
    if (!CHECK(out != NULL))
        return;
    CHECK_EQ_INT(strlen(out), len);
    snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, reason);
    CHECK(strncmp(out, line, strlen(line)) == 0);

    const char *end = strstr(out, "\r\n\r\n");
    if (CHECK(end != NULL)) {
        const char *body = end + 4;
        size_t body_len = len - (size_t)(body - out);
        const char *cl = strstr(out, "\r\ncontent-length: ");
        if (CHECK(cl != NULL && cl < end))
            CHECK_EQ_INT(strtoul(cl + 18, NULL, 10), body_len);
        CHECK_EQ_INT(body_len, strlen(reason) + 1);
        CHECK(strncmp(body, reason, strlen(reason)) == 0 && body[body_len - 1] == '\n');
    }
    CHECK_HAS(out, "\r\ncontent-type: text/plain; charset=utf-8\r\n");
    CHECK_HAS(out, "\r\ndate: ");
    if (keep_alive)
        CHECK_LACKS(out, "connection:");
    else
        CHECK_HAS(out, "\r\nconnection: close\r\n");
    if (server != NULL) {
        char s[128];
        snprintf(s, sizeof(s), "\r\nserver: %s\r\n", server);
        CHECK_HAS(out, s);
    } else {
        CHECK_LACKS(out, "server:");
    }
    free(out);
}

static void test_simple(void)
{
    check_simple(400, "bayleaf", false, "Bad Request");
    check_simple(431, NULL, false, "Request Header Fields Too Large");
    check_simple(503, "bayleaf", true, "Service Unavailable");
    check_simple(500, NULL, true, "Internal Server Error");
    check_simple(599, "x", false, "");
    CHECK_EQ_STR(bl_status_reason(414), "URI Too Long");
    CHECK_EQ_STR(bl_status_reason(417), "Expectation Failed");
    CHECK_EQ_STR(bl_status_reason(-1), "");
}

static void check_chunk_prefix(size_t n, const char *want)
{
    char buf[20];
    memset(buf, '#', sizeof(buf));
    size_t len = bl_chunk_prefix(buf, n);
    CHECK_EQ_INT(len, strlen(want));
    CHECK_MEM_STR(buf, len, want);
}

static void test_chunk_prefix(void)
{
    check_chunk_prefix(0, "0\r\n");
    check_chunk_prefix(1, "1\r\n");
    check_chunk_prefix(255, "ff\r\n");
    check_chunk_prefix(4096, "1000\r\n");
    check_chunk_prefix(SIZE_MAX, "ffffffffffffffff\r\n");
}

static void test_http_date(void)
{
    time_t before = time(NULL);
    const char *d = bl_http_date();
    time_t after = time(NULL);
    if (!CHECK(d != NULL))
        return;
    CHECK_EQ_INT(strlen(d), 29);
    CHECK(strlen(d) >= 4 && strcmp(d + strlen(d) - 4, " GMT") == 0);
    /* "Sun, 06 Nov 1994 08:49:37 GMT" */
    CHECK(d[3] == ',' && d[4] == ' ' && d[7] == ' ' && d[11] == ' ' && d[16] == ' ');
    CHECK(d[19] == ':' && d[22] == ':' && d[25] == ' ');
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(d, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (CHECK(end != NULL && *end == '\0')) {
        time_t t = timegm(&tm);
        CHECK(t >= before && t <= after);
    }
    /* Cached: the same buffer, the same text within a second. */
    const char *again = bl_http_date();
    CHECK(again == d);
}

/* Scans headers (name, value pairs, NULL-terminated) into s: the last result. */
static int scan(bl_response_scan_t *s, const char *const *hv, int status)
{
    int rc = 1;
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; hv[i] != NULL; i += 2) {
        rc = bl_response_scan_header(s, hv[i], strlen(hv[i]), hv[i + 1], strlen(hv[i + 1]));
        if (rc < 0)
            return rc;
    }
    int end = bl_response_scan_end(s, status);
    return end < 0 ? end : rc;
}

#define SCAN(status, ...) scan(&s, (const char *const[]){__VA_ARGS__, NULL}, status)

static void test_content_length_parse(void)
{
    uint64_t n = 7;
    CHECK_EQ_INT(bl_content_length_parse("0", 1, &n), 0);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(bl_content_length_parse("18446744073709551615", 20, &n), 0);
    CHECK(n == UINT64_MAX);
    static const char *const bad[] = {"",
                                      " 5",
                                      "5 ",
                                      "+5",
                                      "-5",
                                      " -5",
                                      "5,5",
                                      "5, 5",
                                      "0x5",
                                      "18446744073709551616",
                                      "99999999999999999999",
                                      "1e3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = 7;
        if (!CHECK(bl_content_length_parse(bad[i], strlen(bad[i]), &n) == -EINVAL))
            fprintf(stderr, "    accepted \"%s\"\n", bad[i]);
        CHECK_EQ_INT(n, 7);
    }
}

static void test_scan(void)
{
    bl_response_scan_t s;

    CHECK_EQ_INT(SCAN(200, "Content-Length", "42", "Server", "x", "DATE", "d"), 1);
    CHECK_EQ_INT(s.flags, BL_RESP_HAS_CLEN | BL_RESP_HAS_SERVER | BL_RESP_HAS_DATE);
    CHECK_EQ_INT(s.content_length, 42);

    /* Content-Length: the same twice is said once; two values, or none valid, refuse. */
    CHECK_EQ_INT(SCAN(200, "content-length", "5", "content-length", "5"), 0);
    CHECK_EQ_INT(s.content_length, 5);
    CHECK_EQ_INT(SCAN(200, "content-length", "5", "content-length", "6"), -EINVAL);
    CHECK(s.error != NULL);
    CHECK_EQ_INT(SCAN(200, "content-length", " -5"), -EINVAL);
    CHECK_EQ_INT(SCAN(200, "content-length", "+5"), -EINVAL);
    CHECK_EQ_INT(SCAN(200, "content-length", "99999999999999999999"), -EINVAL);

    /* With Transfer-Encoding, in either order. */
    CHECK_EQ_INT(SCAN(200, "content-length", "5", "transfer-encoding", "chunked"), -EINVAL);
    CHECK_EQ_INT(SCAN(200, "Transfer-Encoding", "chunked", "Content-Length", "5"), -EINVAL);
    CHECK_EQ_INT(SCAN(200, "transfer-encoding", "chunked"), 1);
    CHECK_EQ_INT(s.flags, BL_RESP_CHUNKED);
    CHECK_EQ_INT(SCAN(200, "transfer-encoding", ""), -EINVAL);
    CHECK_EQ_INT(SCAN(200, "transfer-encoding", " , "), -EINVAL);

    /* Connection is a token list: "close" anywhere, in any case; not a prefix. */
    static const char *const closes[] = {"close", "CLOSE", "keep-alive, close", " close ,x",
                                         "x,close"};
    for (size_t i = 0; i < sizeof(closes) / sizeof(closes[0]); i++) {
        CHECK_EQ_INT(SCAN(200, "connection", closes[i]), 1);
        CHECK_EQ_INT(s.flags, BL_RESP_CLOSE);
    }
    static const char *const not_close[] = {"closed", "close-ish", "keep-alive",
                                            "",       "clos",      "x-close"};
    for (size_t i = 0; i < sizeof(not_close) / sizeof(not_close[0]); i++) {
        CHECK_EQ_INT(SCAN(200, "connection", not_close[i]), 1);
        CHECK_EQ_INT(s.flags, 0);
    }

    /* The status: 1xx is not a final response; 0 checks the headers only. */
    CHECK_EQ_INT(SCAN(100, "x", "y"), -EINVAL);
    CHECK_EQ_INT(SCAN(101, "x", "y"), -EINVAL);
    CHECK_EQ_INT(SCAN(199, "x", "y"), -EINVAL);
    CHECK_EQ_INT(SCAN(0, "x", "y"), 1);
    CHECK_EQ_INT(SCAN(200, "x", "y"), 1);
    CHECK_EQ_INT(SCAN(999, "x", "y"), 1);

    /* bl_response_head refuses the same, as a last guard. */
    bl_response_t r = base();
    char *out = NULL;
    size_t len;
    bl_framing_t fr;
    bool ka;
    r.flags = BL_RESP_HAS_CLEN | BL_RESP_CHUNKED;
    CHECK_EQ_INT(bl_response_head(&r, &out, &len, &fr, &ka), -EINVAL);
    CHECK(out == NULL);
}

/* Known instants, in every locale: the names come from fixed tables. */
static void test_http_date_format(void)
{
    char buf[BL_HTTP_DATE_LEN + 1];
    memset(buf, 'x', sizeof(buf));
    bl_http_date_format(784111777, buf);
    CHECK_EQ_STR(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
    bl_http_date_format(0, buf);
    CHECK_EQ_STR(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
    bl_http_date_format(951782400, buf); /* a leap day */
    CHECK_EQ_STR(buf, "Tue, 29 Feb 2000 00:00:00 GMT");
    bl_http_date_format(253402300799, buf);
    CHECK_EQ_STR(buf, "Fri, 31 Dec 9999 23:59:59 GMT");
    /* Every day and month name, from a Monday in May on. */
    static const char *const want[] = {"Mon, 04 May 2026", "Tue, 09 Jun 2026", "Wed, 15 Jul 2026",
                                       "Thu, 20 Aug 2026", "Fri, 25 Sep 2026", "Sat, 31 Oct 2026",
                                       "Sun, 06 Dec 2026"};
    time_t t = 1777852800; /* Mon, 04 May 2026 00:00:00 */
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        bl_http_date_format(t + (time_t)i * 36 * 86400, buf);
        CHECK(strncmp(buf, want[i], strlen(want[i])) == 0);
        if (strncmp(buf, want[i], strlen(want[i])) != 0)
            fprintf(stderr, "    got %s, expected %s\n", buf, want[i]);
    }
    CHECK_EQ_STR(bl_month_names[0], "Jan");
    CHECK_EQ_STR(bl_month_names[11], "Dec");
}

int main(void)
{
    test_content_length_given();
    test_body_known();
    test_streaming();
    test_http10_keep_alive();
    test_head_request();
    test_no_body_statuses();
    test_connection_close();
    test_server_and_date();
    test_sizes();
    test_simple();
    test_chunk_prefix();
    test_http_date();
    test_content_length_parse();
    test_scan();
    test_http_date_format();
    return check_report();
}
