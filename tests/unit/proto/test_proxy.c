/* bl_proxy: trust lists, and what trusted (and untrusted) proxy headers change. */
#include "bayleaf/proto/proxy.h"

#include <errno.h>
#include <strings.h>

#include "check.h"

/* ---- helpers ---------------------------------------------------------------- */

static bl_head_t *got_head;

static int on_head(bl_http_parser_t *p, bl_head_t *head)
{
    (void)p;
    got_head = head;
    return 0;
}

static int on_body(bl_http_parser_t *p, const char *at, size_t len)
{
    (void)p;
    (void)at;
    (void)len;
    return 0;
}

static int on_complete(bl_http_parser_t *p)
{
    (void)p;
    return 0;
}

static const bl_http_handler_t handler = {on_head, on_body, on_complete};

/* Parses request_line plus the given header lines ("Name: value\r\n"...). */
static bl_head_t *head_of_line(const char *request_line, const char *header_lines)
{
    char req[8192];
    bl_http_parser_t p;
    bl_http_limits_t limits = {.max_head = 65536, .max_url = 8192, .max_headers = 200};
    size_t used;
    snprintf(req, sizeof(req), "%s\r\n%s\r\n", request_line, header_lines);
    got_head = NULL;
    bl_http_parser_init(&p, &handler, &limits, NULL);
    int rc = bl_http_parser_feed(&p, req, strlen(req), &used);
    bl_http_parser_free(&p);
    if (!CHECK(rc != BL_HTTP_ERROR && got_head != NULL))
        fprintf(stderr, "    could not parse: %s\n", req);
    return got_head;
}

/* "GET /x?y=1 HTTP/1.1" plus the header lines, with a Host (HTTP/1.1 requires
 * one, RFC 9112 3.2) unless they have their own. */
static bl_head_t *head_of(const char *header_lines)
{
    char lines[8192];
    bool has_host = false;
    for (const char *l = header_lines; l != NULL && *l != '\0';) {
        has_host = has_host || strncasecmp(l, "host:", 5) == 0;
        l = strchr(l, '\n');
        l = l != NULL ? l + 1 : NULL;
    }
    snprintf(lines, sizeof(lines), "%s%s", has_host ? "" : "Host: internal:8000\r\n", header_lines);
    return head_of_line("GET /x?y=1 HTTP/1.1", lines);
}

typedef struct {
    bool proxy_headers;
    const char *allow; /* NULL: the default */
    const char *host_header;
    const char *port_header;
} rules_t;

static void init_rules(bl_proxy_t *p, rules_t r)
{
    bl_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.proxy_headers = r.proxy_headers;
    cfg.forwarded_allow_ips = r.allow ? r.allow : "127.0.0.1,::1";
    cfg.proxy_headers_host = r.host_header;
    cfg.proxy_headers_port = r.port_header;
    char err[256] = "";
    int rc = bl_proxy_init(p, &cfg, err, sizeof(err));
    if (!CHECK(rc == 0))
        fprintf(stderr, "    %s\n", err);
}

/* Resolves for a TCP peer (host, port) on a TCP listener at port 8000; a NULL
 * peer is a unix-socket peer on a unix listener. */
static bl_proxy_view_t resolve(rules_t r, const char *peer, int peer_port, const char *headers)
{
    bl_proxy_t p;
    bl_proxy_view_t v;
    memset(&v, 0, sizeof(v));
    init_rules(&p, r);
    if (peer != NULL) {
        snprintf(v.client_host, sizeof(v.client_host), "%s", peer);
        v.client_port = peer_port;
        v.server_port = 8000;
    } else {
        v.client_port = -1;
        v.server_port = -1;
        v.unix_peer = true;
    }
    bl_head_t *h = head_of(headers);
    if (h != NULL) {
        bl_proxy_resolve(&p, h, &v);
        if (v.has_root_path)
            snprintf(v.host + v.host_len, sizeof(v.host) - v.host_len, "|root=%.*s",
                     (int)v.root_path_len, h->buf + v.root_path_off);
        bl_head_free(h);
    }
    bl_proxy_free(&p);
    return v;
}

#define ON ((rules_t){.proxy_headers = true})
#define CHECK_CLIENT(v, host, port)                                                                \
    do {                                                                                           \
        CHECK_EQ_STR((v).client_host, host);                                                       \
        CHECK_EQ_INT((v).client_port, port);                                                       \
    } while (0)

/* ---- trust lists ------------------------------------------------------------- */

static bool trusts(const char *allow, const char *addr)
{
    bl_proxy_t p;
    init_rules(&p, (rules_t){.allow = allow});
    bool t = bl_proxy_trusts(&p, addr);
    bl_proxy_free(&p);
    return t;
}

static int init_error(const char *allow, char *err, size_t cap)
{
    bl_config_t cfg;
    bl_proxy_t p;
    memset(&cfg, 0, sizeof(cfg));
    cfg.forwarded_allow_ips = allow;
    int rc = bl_proxy_init(&p, &cfg, err, cap);
    if (rc == 0)
        bl_proxy_free(&p);
    return rc;
}

static void test_trust_lists(void)
{
    /* the default */
    CHECK(trusts(NULL, "127.0.0.1"));
    CHECK(trusts(NULL, "::1"));
    CHECK(trusts(NULL, "::ffff:127.0.0.1")); /* a dual-stack listener's view of it */
    CHECK(!trusts(NULL, "127.0.0.2"));
    CHECK(!trusts(NULL, "10.0.0.1"));
    CHECK(!trusts(NULL, "::2"));
    CHECK(!trusts(NULL, "not an address"));
    CHECK(!trusts(NULL, ""));
    /* CIDRs, spaces, both families */
    const char *nets = " 10.0.0.0/8, 192.168.1.0/24 ,2001:db8::/32,172.16.5.4";
    CHECK(trusts(nets, "10.255.1.2"));
    CHECK(trusts(nets, "10.0.0.0"));
    CHECK(!trusts(nets, "11.0.0.1"));
    CHECK(!trusts(nets, "9.255.255.255"));
    CHECK(trusts(nets, "192.168.1.77"));
    CHECK(!trusts(nets, "192.168.2.1"));
    CHECK(trusts(nets, "2001:db8:1::5"));
    CHECK(trusts(nets, "2001:DB8::"));
    CHECK(!trusts(nets, "2001:db9::1"));
    CHECK(trusts(nets, "172.16.5.4"));
    CHECK(!trusts(nets, "172.16.5.5"));
    CHECK(!trusts(nets, "127.0.0.1")); /* the list replaces the default */
    /* odd prefixes */
    CHECK(trusts("10.1.2.3/31", "10.1.2.2"));
    CHECK(!trusts("10.1.2.3/31", "10.1.2.4"));
    CHECK(trusts("0.0.0.0/0", "203.0.113.9"));
    CHECK(!trusts("0.0.0.0/0", "2001:db8::1")); /* IPv4 nets hold IPv4 only */
    CHECK(trusts("::/0", "2001:db8::1"));
    CHECK(trusts("fe80::/10", "febf::1"));
    CHECK(!trusts("fe80::/10", "fec0::1"));
    /* everything */
    CHECK(trusts("*", "203.0.113.9"));
    CHECK(trusts("127.0.0.1, *", "2001:db8::1"));
    /* nothing (unix peers are still trusted, see test_unix_peers) */
    CHECK(!trusts("", "127.0.0.1"));
    CHECK(!trusts(" , ", "127.0.0.1"));

    char err[256];
    const char *bad[] = {
        "10.0.0.0/33",         "abc",          "1.2.3.4/",     "::1/129", "1.2.3.4/x", "1.2.3",
        "127.0.0.1,localhost", "10.0.0.0/8/8", "1.2.3.4/0010", "**"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK_EQ_INT(init_error(bad[i], err, sizeof(err)), -EINVAL);
        CHECK_HAS(err, "--forwarded-allow-ips");
    }
    err[0] = '\0';
    CHECK_EQ_INT(init_error("127.0.0.1,localhost", err, sizeof(err)), -EINVAL);
    CHECK_HAS(err, "'localhost'");
    CHECK_EQ_INT(init_error(NULL, err, sizeof(err)), 0);
}

/* ---- who may say what ------------------------------------------------------------ */

static void test_off_by_default(void)
{
    /* Without --proxy-headers nothing changes, even from a trusted peer. */
    bl_proxy_view_t v = resolve((rules_t){0}, "127.0.0.1", 5555,
                                "X-Forwarded-For: 203.0.113.7\r\n"
                                "X-Forwarded-Proto: https\r\n"
                                "X-Forwarded-Port: 443\r\n"
                                "Forwarded: for=198.51.100.1;proto=https\r\n");
    CHECK_CLIENT(v, "127.0.0.1", 5555);
    CHECK(!v.secure);
    CHECK_EQ_INT(v.server_port, 8000);
    CHECK(!v.has_root_path);
    CHECK_EQ_INT(v.host_len, 0);
}

static void test_untrusted_peer(void)
{
    bl_proxy_view_t v = resolve(ON, "10.0.0.5", 5555,
                                "X-Forwarded-For: 203.0.113.7\r\n"
                                "X-Forwarded-Proto: https\r\n"
                                "X-Forwarded-Port: 443\r\n"
                                "Daphne-Root-Path: /evil\r\n");
    CHECK_CLIENT(v, "10.0.0.5", 5555);
    CHECK(!v.trusted);
    CHECK(!v.secure);
    CHECK_EQ_INT(v.server_port, 8000);
    CHECK(!v.has_root_path);
    v = resolve(ON, "10.0.0.5", 5555, "Forwarded: for=198.51.100.1;proto=https;host=evil\r\n");
    CHECK_CLIENT(v, "10.0.0.5", 5555);
    CHECK(!v.secure);
    CHECK_EQ_INT(v.host_len, 0);
    /* ...unless the list says so */
    v = resolve((rules_t){.proxy_headers = true, .allow = "10.0.0.0/24"}, "10.0.0.5", 5555,
                "X-Forwarded-For: 203.0.113.7\r\n");
    CHECK_CLIENT(v, "203.0.113.7", 0);
    v = resolve((rules_t){.proxy_headers = true, .allow = "*"}, "198.51.100.200", 5555,
                "X-Forwarded-For: 203.0.113.7\r\n");
    CHECK_CLIENT(v, "203.0.113.7", 0);
}

static void test_unix_peers(void)
{
    /* A unix-socket peer is the documented nginx deployment: always trusted. */
    bl_proxy_view_t v = resolve((rules_t){.proxy_headers = true, .allow = ""}, NULL, 0,
                                "X-Forwarded-For: 203.0.113.7\r\n"
                                "X-Forwarded-Proto: https\r\n"
                                "X-Forwarded-Port: 443\r\n");
    CHECK(v.trusted);
    CHECK_CLIENT(v, "203.0.113.7", 443); /* Daphne: the port header is the client's port */
    CHECK(v.secure);
    CHECK_EQ_INT(v.server_port, -1); /* a unix listener keeps (path, None) */
    v = resolve(ON, NULL, 0, "Host: x\r\n");
    CHECK_EQ_INT(v.client_port, -1); /* no headers: still no client address */
    CHECK(!v.secure);
}

/* ---- X-Forwarded-* ------------------------------------------------------------------ */

static void test_x_forwarded_for(void)
{
    bl_proxy_view_t v = resolve(ON, "127.0.0.1", 5555, "X-Forwarded-For: 203.0.113.7\r\n");
    CHECK(v.trusted);
    CHECK_CLIENT(v, "203.0.113.7", 0);
    CHECK(!v.secure);
    CHECK_EQ_INT(v.server_port, 8000);

    /* walked from the right, past trusted proxies */
    v = resolve(ON, "127.0.0.1", 5555, "X-Forwarded-For: 6.6.6.6, 203.0.113.7, 127.0.0.1\r\n");
    CHECK_CLIENT(v, "203.0.113.7", 0);
    rules_t nets = {.proxy_headers = true, .allow = "127.0.0.1,10.0.0.0/8"};
    v = resolve(nets, "127.0.0.1", 5555,
                "X-Forwarded-For: 6.6.6.6,198.51.100.2 ,10.1.1.1,  10.2.2.2\r\n");
    CHECK_CLIENT(v, "198.51.100.2", 0);
    /* every hop trusted: the left-most */
    v = resolve(ON, "127.0.0.1", 5555, "X-Forwarded-For: ::1, 127.0.0.1\r\n");
    CHECK_CLIENT(v, "::1", 0);
    /* "*" trusts every hop: the left-most (what Daphne always takes) */
    v = resolve((rules_t){.proxy_headers = true, .allow = "*"}, "127.0.0.1", 5555,
                "X-Forwarded-For: 1.1.1.1, 203.0.113.7\r\n");
    CHECK_CLIENT(v, "1.1.1.1", 0);
    /* several header lines are one list */
    v = resolve(ON, "127.0.0.1", 5555,
                "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 198.51.100.2\r\n");
    CHECK_CLIENT(v, "198.51.100.2", 0);
    /* empty items are skipped */
    v = resolve(ON, "127.0.0.1", 5555, "X-Forwarded-For: , 198.51.100.2,, \r\n");
    CHECK_CLIENT(v, "198.51.100.2", 0);
    v = resolve(ON, "127.0.0.1", 5555, "X-Forwarded-For: \r\n");
    CHECK_CLIENT(v, "127.0.0.1", 5555);
}

static void test_x_forwarded_for_forms(void)
{
    /* canonical IPv6 text */
    bl_proxy_view_t v = resolve(ON, "127.0.0.1", 5555, "X-Forwarded-For: 2001:DB8::0001\r\n");
    CHECK_CLIENT(v, "2001:db8::1", 0);
    /* ports inside the list */
    v = resolve(ON, "127.0.0.1", 5555, "X-Forwarded-For: [2001:db8::1]:8080\r\n");
    CHECK_CLIENT(v, "2001:db8::1", 8080);
    v = resolve(ON, "127.0.0.1", 5555, "X-Forwarded-For: 203.0.113.7:99\r\n");
    CHECK_CLIENT(v, "203.0.113.7", 99);
    v = resolve(ON, "127.0.0.1", 5555, "X-Forwarded-For: [2001:db8::1]\r\n");
    CHECK_CLIENT(v, "2001:db8::1", 0);
    /* what is not an address changes nothing (and stops the walk) */
    const char *junk[] = {"garbage",           "unknown",      "_hidden",        "example.com",
                          "1.2.3.4.5",         "[1.2.3.4]",    "[::1",           "203.0.113.7:http",
                          "203.0.113.7:99999", "fe80::1%eth0", "1.2.3.4 5.6.7.8"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        char hdr[128];
        snprintf(hdr, sizeof(hdr), "X-Forwarded-For: 198.51.100.1, %s\r\n", junk[i]);
        v = resolve(ON, "127.0.0.1", 5555, hdr);
        if (!CHECK(strcmp(v.client_host, "127.0.0.1") == 0 && v.client_port == 5555))
            fprintf(stderr, "    %s gave %s:%d\n", junk[i], v.client_host, v.client_port);
    }
    /* a long list: only the right-most hops matter */
    char hdr[4096] = "X-Forwarded-For: 1.1.1.1";
    for (int i = 0; i < 60; i++)
        strcat(hdr, ", 10.9.9.9");
    strcat(hdr, ", 198.51.100.4, 127.0.0.1\r\n");
    v = resolve(ON, "127.0.0.1", 5555, hdr);
    CHECK_CLIENT(v, "198.51.100.4", 0);
    char hdr2[4096] = "X-Forwarded-For: 1.1.1.1";
    for (int i = 0; i < 60; i++)
        strcat(hdr2, ", 127.0.0.1");
    strcat(hdr2, "\r\n");
    v = resolve(ON, "127.0.0.1", 5555, hdr2);
    CHECK_EQ_STR(v.client_host, "127.0.0.1"); /* beyond what is kept: a trusted hop */
}

static void test_x_forwarded_proto_port(void)
{
    struct {
        const char *value;
        bool secure;
    } protos[] = {{"https", true}, {"HTTPS", true}, {"wss", true}, {"http", false},
                  {"ws", false},   {"ftp", false},  {"", false},   {"https2", false}};
    for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
        char hdr[128];
        snprintf(hdr, sizeof(hdr), "X-Forwarded-Proto: %s\r\n", protos[i].value);
        bl_proxy_view_t v = resolve(ON, "127.0.0.1", 5555, hdr);
        if (!CHECK(v.secure == protos[i].secure))
            fprintf(stderr, "    X-Forwarded-Proto: %s\n", protos[i].value);
        CHECK_CLIENT(v, "127.0.0.1", 5555); /* the scheme alone leaves the client be */
    }
    /* lists: the client's hop when both lists pair up... */
    rules_t nets = {.proxy_headers = true, .allow = "127.0.0.1,10.0.0.0/8"};
    bl_proxy_view_t v = resolve(nets, "127.0.0.1", 5555,
                                "X-Forwarded-For: 198.51.100.1, 10.0.0.1\r\n"
                                "X-Forwarded-Proto: https, http\r\n");
    CHECK_CLIENT(v, "198.51.100.1", 0);
    CHECK(v.secure);
    /* ...else the nearest proxy's */
    v = resolve(nets, "127.0.0.1", 5555,
                "X-Forwarded-For: 198.51.100.1\r\n"
                "X-Forwarded-Proto: http, https\r\n");
    CHECK(v.secure);
    v = resolve(nets, "127.0.0.1", 5555,
                "X-Forwarded-For: 198.51.100.1\r\n"
                "X-Forwarded-Proto: https, http\r\n");
    CHECK(!v.secure);

    /* X-Forwarded-Port: the server port, and (Daphne) the client port */
    v = resolve(ON, "127.0.0.1", 5555,
                "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Port: 8443\r\n");
    CHECK_CLIENT(v, "203.0.113.7", 8443);
    CHECK_EQ_INT(v.server_port, 8443);
    /* without an address from a header the client keeps its own port */
    v = resolve(ON, "127.0.0.1", 5555, "X-Forwarded-Port: 8443\r\n");
    CHECK_CLIENT(v, "127.0.0.1", 5555);
    CHECK_EQ_INT(v.server_port, 8443);
    /* a port in the list wins over the header */
    v = resolve(ON, "127.0.0.1", 5555,
                "X-Forwarded-For: 203.0.113.7:1234\r\nX-Forwarded-Port: 8443\r\n");
    CHECK_CLIENT(v, "203.0.113.7", 1234);
    /* bad ports are ignored */
    const char *bad[] = {"x", "65536", "-1", "4 43", "1e3", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char hdr[128];
        snprintf(hdr, sizeof(hdr), "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Port: %s\r\n",
                 bad[i]);
        v = resolve(ON, "127.0.0.1", 5555, hdr);
        if (!CHECK(v.client_port == 0 && v.server_port == 8000))
            fprintf(stderr, "    X-Forwarded-Port: '%s'\n", bad[i]);
    }
}

static void test_custom_headers(void)
{
    /* --proxy-headers-host X-Real-IP: the host comes from there (any spelling) */
    rules_t real = {.proxy_headers = true, .host_header = "X-Real-IP"};
    bl_proxy_view_t v = resolve(real, "127.0.0.1", 5555,
                                "X-Real-IP: 198.51.100.9\r\n"
                                "X-Forwarded-For: 203.0.113.7\r\n"
                                "X-Forwarded-Proto: https\r\n");
    CHECK_CLIENT(v, "198.51.100.9", 0);
    CHECK(v.secure);
    /* and from nowhere else */
    v = resolve(real, "127.0.0.1", 5555, "X-Forwarded-For: 203.0.113.7\r\n");
    CHECK_CLIENT(v, "127.0.0.1", 5555);
    v = resolve(real, "127.0.0.1", 5555, "Forwarded: for=203.0.113.7;proto=https\r\n");
    CHECK_CLIENT(v, "127.0.0.1", 5555);
    CHECK(v.secure); /* proto= still counts */
    /* --proxy-headers-port X-Real-Port */
    rules_t both = {
        .proxy_headers = true, .host_header = "x-real-ip", .port_header = "X-Real-Port"};
    v = resolve(both, "127.0.0.1", 5555,
                "X-Real-IP: 198.51.100.9\r\nX-Real-Port: 41000\r\nX-Forwarded-Port: 443\r\n");
    CHECK_CLIENT(v, "198.51.100.9", 41000);
    CHECK_EQ_INT(v.server_port, 443);
    /* the port header alone does not move the client */
    v = resolve(both, "127.0.0.1", 5555, "X-Real-Port: 41000\r\n");
    CHECK_CLIENT(v, "127.0.0.1", 5555);
    /* junk in the host header is ignored */
    v = resolve(real, "127.0.0.1", 5555, "X-Real-IP: somewhere\r\n");
    CHECK_CLIENT(v, "127.0.0.1", 5555);
}

/* ---- RFC 7239 Forwarded ------------------------------------------------------------- */

static void test_forwarded(void)
{
    bl_proxy_view_t v =
        resolve(ON, "127.0.0.1", 5555, "Forwarded: for=192.0.2.60;proto=https;by=203.0.113.43\r\n");
    CHECK_CLIENT(v, "192.0.2.60", 0);
    CHECK(v.secure);
    CHECK_EQ_INT(v.host_len, 0);
    /* quoted IPv6 with a port; names are case-insensitive */
    v = resolve(ON, "127.0.0.1", 5555, "Forwarded: For=\"[2001:db8:cafe::17]:4711\"\r\n");
    CHECK_CLIENT(v, "2001:db8:cafe::17", 4711);
    v = resolve(ON, "127.0.0.1", 5555, "Forwarded: for=\"192.0.2.43:47011\";PROTO=wss\r\n");
    CHECK_CLIENT(v, "192.0.2.43", 47011);
    CHECK(v.secure);
    /* lenient: unquoted forms some proxies send */
    v = resolve(ON, "127.0.0.1", 5555, "Forwarded: for=[2001:db8::2]:80\r\n");
    CHECK_CLIENT(v, "2001:db8::2", 80);
    /* the X-Forwarded-Port header when the node has no port */
    v = resolve(ON, "127.0.0.1", 5555, "Forwarded: for=192.0.2.60\r\nX-Forwarded-Port: 8443\r\n");
    CHECK_CLIENT(v, "192.0.2.60", 8443);
    /* obfuscated and unknown identifiers: the client stays, proto= still counts */
    const char *hidden[] = {"for=\"_gazonk\";proto=https",       "for=unknown;proto=https",
                            "for=\"unknown:4711\";proto=https",  "for=_x.y-z;proto=https",
                            "for=\"_hidden:_port\";proto=https", "proto=https"};
    for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++) {
        char hdr[128];
        snprintf(hdr, sizeof(hdr), "Forwarded: %s\r\n", hidden[i]);
        v = resolve(ON, "127.0.0.1", 5555, hdr);
        if (!CHECK(strcmp(v.client_host, "127.0.0.1") == 0 && v.client_port == 5555 && v.secure))
            fprintf(stderr, "    %s gave %s:%d\n", hidden[i], v.client_host, v.client_port);
    }
    /* elements walked from the right; proto= from the client's element */
    v = resolve(ON, "127.0.0.1", 5555,
                "Forwarded: for=6.6.6.6;proto=http, for=192.0.2.43;proto=https, "
                "for=127.0.0.1;proto=http\r\n");
    CHECK_CLIENT(v, "192.0.2.43", 0);
    CHECK(v.secure);
    /* several lines are one list */
    v = resolve(ON, "127.0.0.1", 5555,
                "Forwarded: for=6.6.6.6\r\nForwarded: for=192.0.2.44;proto=https\r\n");
    CHECK_CLIENT(v, "192.0.2.44", 0);
    CHECK(v.secure);
    /* a comma inside a quoted string does not split */
    v = resolve(ON, "127.0.0.1", 5555, "Forwarded: for=198.51.100.1, for=\"x,y\";proto=https\r\n");
    CHECK_CLIENT(v, "127.0.0.1", 5555); /* the right-most hop is opaque */
    CHECK(v.secure);
    /* escapes in quoted strings */
    v = resolve(ON, "127.0.0.1", 5555, "Forwarded: for=\"192.0.2.\\61\"\r\n");
    CHECK_CLIENT(v, "192.0.2.61", 0);
    /* empty pairs and elements are allowed */
    v = resolve(ON, "127.0.0.1", 5555, "Forwarded: ,for=192.0.2.62;;proto=https ; ,\r\n");
    CHECK_CLIENT(v, "192.0.2.62", 0);
    CHECK(v.secure);
}

static void test_forwarded_malformed(void)
{
    /* A malformed element is an opaque hop: what is right of it still counts,
     * what is left of it is never reached. */
    const char *bad[] = {
        "for=192.0.2.60 junk",
        "for=192.0.2.60;for=192.0.2.61",
        "for",
        "for=",
        "=192.0.2.60",
        "for=\"192.0.2.60",
        "for=\"192.0.2.60\"x",
        "for=192.0.2.60;proto=a;proto=b",
        "for=192.0.2.60;proto=x y",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char hdr[256];
        snprintf(hdr, sizeof(hdr), "Forwarded: for=198.51.100.7, %s\r\n", bad[i]);
        bl_proxy_view_t v = resolve(ON, "127.0.0.1", 5555, hdr);
        if (!CHECK(strcmp(v.client_host, "127.0.0.1") == 0 && v.client_port == 5555 && !v.secure))
            fprintf(stderr, "    %s gave %s:%d\n", bad[i], v.client_host, v.client_port);
        snprintf(hdr, sizeof(hdr), "Forwarded: %s, for=198.51.100.8;proto=https\r\n", bad[i]);
        v = resolve(ON, "127.0.0.1", 5555, hdr);
        bool unterminated = strcmp(bad[i], "for=\"192.0.2.60") == 0; /* swallows the rest */
        if (!unterminated &&
            !CHECK(strcmp(v.client_host, "198.51.100.8") == 0 && v.client_port == 0 && v.secure))
            fprintf(stderr, "    [%s, good] gave %s:%d\n", bad[i], v.client_host, v.client_port);
        if (unterminated)
            CHECK_CLIENT(v, "127.0.0.1", 5555);
    }
    /* a value too long for an address */
    char hdr[1024] = "Forwarded: for=\"";
    for (int i = 0; i < 100; i++)
        strcat(hdr, "1");
    strcat(hdr, "\"\r\n");
    bl_proxy_view_t v = resolve(ON, "127.0.0.1", 5555, hdr);
    CHECK_CLIENT(v, "127.0.0.1", 5555);
}

static void test_forwarded_host(void)
{
    bl_proxy_view_t v =
        resolve(ON, "127.0.0.1", 5555, "Forwarded: for=192.0.2.60;host=\"example.com:8443\"\r\n");
    CHECK_MEM_STR(v.host, v.host_len, "example.com:8443");
    v = resolve(ON, "127.0.0.1", 5555, "Forwarded: host=example.com;proto=https\r\n");
    CHECK_MEM_STR(v.host, v.host_len, "example.com");
    v = resolve(ON, "127.0.0.1", 5555, "Forwarded: host=\"[2001:db8::1]:80\"\r\n");
    CHECK_MEM_STR(v.host, v.host_len, "[2001:db8::1]:80");
    /* not a host: ignored */
    v = resolve(ON, "127.0.0.1", 5555, "Forwarded: host=\"a b\"\r\n");
    CHECK_EQ_INT(v.host_len, 0);
    v = resolve(ON, "127.0.0.1", 5555, "Forwarded: host=\"evil/path\"\r\n");
    CHECK_EQ_INT(v.host_len, 0);
    /* from the client's element only */
    v = resolve(ON, "127.0.0.1", 5555,
                "Forwarded: for=192.0.2.1;host=a.example, for=127.0.0.1;host=b.example\r\n");
    CHECK_MEM_STR(v.host, v.host_len, "a.example");
}

static void test_precedence(void)
{
    /* X-Forwarded-For/-Proto present: Forwarded is not looked at (a client
     * could add either; the common proxy setups write the X- ones). */
    bl_proxy_view_t v = resolve(ON, "127.0.0.1", 5555,
                                "Forwarded: for=6.6.6.6;proto=https;host=evil\r\n"
                                "X-Forwarded-For: 198.51.100.2\r\n");
    CHECK_CLIENT(v, "198.51.100.2", 0);
    CHECK(!v.secure);
    CHECK_EQ_INT(v.host_len, 0);
    v = resolve(ON, "127.0.0.1", 5555,
                "Forwarded: for=6.6.6.6;proto=https\r\nX-Forwarded-Proto: http\r\n");
    CHECK_CLIENT(v, "127.0.0.1", 5555);
    CHECK(!v.secure);
}

static void test_root_path(void)
{
    /* From a trusted peer, with or without --proxy-headers (Daphne honours it
     * from anyone; we only from trusted proxies). The last one wins. */
    bl_proxy_view_t v =
        resolve((rules_t){0}, "127.0.0.1", 5555, "Daphne-Root-Path: /pre%20fix\r\n");
    CHECK(v.has_root_path);
    CHECK_EQ_STR(v.host, "|root=/pre%20fix");
    v = resolve(ON, NULL, 0, "Daphne-Root-Path: /a\r\ndaphne-root-path: /b\r\n");
    CHECK(v.has_root_path);
    CHECK_EQ_STR(v.host, "|root=/b");
    v = resolve((rules_t){0}, "10.0.0.1", 5555, "Daphne-Root-Path: /evil\r\n");
    CHECK(!v.has_root_path);
    v = resolve((rules_t){0}, "127.0.0.1", 5555, "Host: x\r\n");
    CHECK(!v.has_root_path);
    v = resolve((rules_t){0}, "127.0.0.1", 5555, "Daphne-Root-Path:\r\n");
    CHECK(v.has_root_path);
    CHECK_EQ_INT(v.root_path_len, 0);
}

static void test_set_host(void)
{
    bl_head_t *h = head_of("Host: internal:8000\r\nX-A: b\r\n");
    size_t len;
    if (h == NULL)
        return;
    CHECK_EQ_INT(bl_proxy_set_host(h, "example.com", 11), 0);
    const char *v = bl_head_find(h, "host", &len);
    CHECK_MEM_STR(v, len, "example.com");
    CHECK_EQ_INT(h->nheaders, 2);
    v = bl_head_find(h, "x-a", &len);
    CHECK_MEM_STR(v, len, "b");
    CHECK_MEM_STR(h->buf + h->path_off, h->path_len, "/x");
    bl_head_free(h);

    /* No Host at all (only HTTP/1.0 may omit it). */
    h = head_of_line("GET /x?y=1 HTTP/1.0", "X-A: b\r\n");
    if (h == NULL)
        return;
    CHECK(bl_head_find(h, "host", &len) == NULL);
    for (int i = 0; i < 3; i++) /* repeated, and past the buffer's capacity */
        CHECK_EQ_INT(bl_proxy_set_host(h, "example.org:8443", 16), 0);
    v = bl_head_find(h, "host", &len);
    CHECK_MEM_STR(v, len, "example.org:8443");
    CHECK_EQ_INT(h->nheaders, 2);
    bl_head_free(h);
}

int main(void)
{
    test_trust_lists();
    test_off_by_default();
    test_untrusted_peer();
    test_unix_peers();
    test_x_forwarded_for();
    test_x_forwarded_for_forms();
    test_x_forwarded_proto_port();
    test_custom_headers();
    test_forwarded();
    test_forwarded_malformed();
    test_forwarded_host();
    test_precedence();
    test_root_path();
    test_set_host();
    return check_report();
}
