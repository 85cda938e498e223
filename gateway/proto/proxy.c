/* Proxy headers from trusted peers (see include/bayleaf/proxy.h for the rules). */
#include "bayleaf/proto/proxy.h"
#include "bayleaf/proto/tokens.h"
#include "bayleaf/common/buf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Entries kept from one list header: a list is walked from the right, so only
 * its last entries can matter (each is a proxy hop). */
#define MAX_ITEMS 32
#define MAX_ELEMS 16

typedef struct {
    const char *s;
    size_t len;
} span_t;

/* ---- addresses ------------------------------------------------------------ */

/* Parses an IPv4 or IPv6 literal into the 16-byte form; text gets its canonical
 * spelling when not NULL. */
static bool parse_ip(const char *s, size_t len, uint8_t out[16], char *text, size_t cap)
{
    char buf[INET6_ADDRSTRLEN + 1];
    struct in_addr a4;
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a4, 4);
        if (text != NULL)
            inet_ntop(AF_INET, &a4, text, (socklen_t)cap);
        return true;
    }
    if (inet_pton(AF_INET6, buf, out) == 1) {
        if (text != NULL)
            inet_ntop(AF_INET6, out, text, (socklen_t)cap);
        return true;
    }
    return false;
}

static bool net_contains(const bl_proxy_net_t *n, const uint8_t a[16])
{
    unsigned bits = n->prefix, i = 0;
    for (; bits >= 8; bits -= 8, i++)
        if (a[i] != n->addr[i])
            return false;
    if (bits == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - bits));
    return (a[i] & mask) == (n->addr[i] & mask);
}

static bool trusts_bin(const bl_proxy_t *p, const uint8_t a[16])
{
    if (p->trust_all)
        return true;
    for (size_t i = 0; i < p->nnets; i++)
        if (net_contains(&p->nets[i], a))
            return true;
    return false;
}

bool bl_proxy_trusts(const bl_proxy_t *p, const char *addr)
{
    uint8_t a[16];
    return parse_ip(addr, strlen(addr), a, NULL, 0) && trusts_bin(p, a);
}

/* One --forwarded-allow-ips entry: an address or a CIDR. */
static int parse_net(const char *s, size_t len, bl_proxy_net_t *n)
{
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    if (!parse_ip(s, alen, n->addr, NULL, 0))
        return -EINVAL;
    bool v4 = memchr(s, ':', alen) == NULL;
    unsigned max = v4 ? 32 : 128, prefix = max;
    if (slash != NULL) {
        const char *d = slash + 1, *end = s + len;
        if (d == end || end - d > 3)
            return -EINVAL;
        prefix = 0;
        for (; d < end; d++) {
            if (*d < '0' || *d > '9')
                return -EINVAL;
            prefix = prefix * 10 + (unsigned)(*d - '0');
        }
        if (prefix > max)
            return -EINVAL;
    }
    n->prefix = (uint8_t)(v4 ? prefix + 96 : prefix);
    return 0;
}

static char *lower_dup(const char *s)
{
    char *d = strdup(s);
    for (char *c = d; c != NULL && *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c + 32);
    return d;
}

int bl_proxy_init(bl_proxy_t *p, const bl_config_t *cfg, char *err, size_t errlen)
{
    const char *list = cfg->forwarded_allow_ips ? cfg->forwarded_allow_ips : "";
    memset(p, 0, sizeof(*p));
    p->enabled = cfg->proxy_headers;
    size_t cap = 1;
    for (const char *c = list; *c; c++)
        cap += *c == ',';
    p->nets = calloc(cap, sizeof(*p->nets));
    p->host_header = cfg->proxy_headers_host && *cfg->proxy_headers_host
                         ? lower_dup(cfg->proxy_headers_host)
                         : NULL;
    p->port_header =
        lower_dup(cfg->proxy_headers_port && *cfg->proxy_headers_port ? cfg->proxy_headers_port
                                                                      : "x-forwarded-port");
    if (p->nets == NULL || p->port_header == NULL ||
        (cfg->proxy_headers_host && *cfg->proxy_headers_host && p->host_header == NULL)) {
        bl_proxy_free(p);
        return -ENOMEM;
    }
    size_t pos = 0, len = strlen(list), elen;
    const char *e;
    while (bl_token_next(list, len, &pos, &e, &elen)) {
        if (elen == 1 && *e == '*') {
            p->trust_all = true;
        } else if (parse_net(e, elen, &p->nets[p->nnets]) == 0) {
            p->nnets++;
        } else {
            if (err != NULL)
                snprintf(err, errlen,
                         "invalid --forwarded-allow-ips entry '%.*s' (an address, "
                         "a CIDR such as 10.0.0.0/8, or *)",
                         (int)elen, e);
            bl_proxy_free(p);
            return -EINVAL;
        }
    }
    return 0;
}

void bl_proxy_free(bl_proxy_t *p)
{
    free(p->nets);
    free(p->host_header);
    free(p->port_header);
    memset(p, 0, sizeof(*p));
}

/* ---- nodes: "1.2.3.4", "1.2.3.4:80", "[::1]:80", "::1", "unknown", "_hidden" --- */

typedef enum { NODE_INVALID, NODE_UNKNOWN, NODE_IP } node_kind_t;

typedef struct {
    node_kind_t kind;
    uint8_t addr[16];
    char text[INET6_ADDRSTRLEN];
    int port; /* -1: none */
} node_t;

static int parse_port(const char *s, size_t len)
{
    int v = 0;
    if (len == 0 || len > 5)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= 65535 ? v : -1;
}

static bool is_obfuscated(const char *s, size_t len)
{
    if (len == 7 && strncasecmp(s, "unknown", 7) == 0)
        return true;
    if (len < 2 || s[0] != '_')
        return false;
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static void parse_node(const char *s, size_t len, node_t *n)
{
    const char *name = s, *port = NULL;
    size_t name_len = len, port_len = 0;
    n->kind = NODE_INVALID;
    n->port = -1;
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return;
        name = s + 1;
        name_len = (size_t)(close - name);
        size_t rest = len - (size_t)(close + 1 - s);
        if (rest > 0) {
            if (close[1] != ':')
                return;
            port = close + 2;
            port_len = rest - 1;
        }
        if (memchr(name, ':', name_len) == NULL) /* brackets are for IPv6 only */
            return;
    } else if (parse_ip(s, len, n->addr, n->text, sizeof(n->text))) {
        n->kind = NODE_IP; /* a bare address, IPv6 included */
        return;
    } else {
        const char *colon = memchr(s, ':', len);
        if (colon != NULL) {
            if (memchr(colon + 1, ':', len - (size_t)(colon + 1 - s)) != NULL)
                return; /* neither IPv6 nor name:port */
            name_len = (size_t)(colon - s);
            port = colon + 1;
            port_len = len - name_len - 1;
        }
    }
    if (port != NULL) {
        n->port = parse_port(port, port_len);
        if (n->port < 0 && !is_obfuscated(port, port_len))
            return;
    }
    if (parse_ip(name, name_len, n->addr, n->text, sizeof(n->text)))
        n->kind = NODE_IP;
    else if (is_obfuscated(name, name_len))
        n->kind = NODE_UNKNOWN;
}

/* ---- list headers ----------------------------------------------------------- */

static bool head_has(const bl_head_t *h, const char *name)
{
    size_t len;
    return bl_head_find(h, name, &len) != NULL;
}

/* Calls fn for each trimmed, non-empty comma-separated item of every `name`
 * header, in order. */
static void list_each(const bl_head_t *h, const char *name, void (*fn)(void *, span_t), void *arg)
{
    uint32_t i = 0;
    size_t len;
    const char *v;
    while ((v = bl_head_find_next(h, name, &i, &len)) != NULL) {
        size_t pos = 0, elen;
        const char *e;
        while (bl_token_next(v, len, &pos, &e, &elen))
            fn(arg, (span_t){e, elen});
    }
}

typedef struct {
    span_t items[MAX_ITEMS];
    size_t total; /* items seen (the last MAX_ITEMS are kept) */
} list_t;

static void list_add(void *arg, span_t s)
{
    list_t *l = arg;
    l->items[l->total % MAX_ITEMS] = s;
    l->total++;
}

static size_t list_kept(const list_t *l)
{
    return l->total < MAX_ITEMS ? l->total : MAX_ITEMS;
}

/* The i-th kept item, counting from the right (0: the last). */
static span_t list_from_right(const list_t *l, size_t i)
{
    return l->items[(l->total - 1 - i) % MAX_ITEMS];
}

static void list_get(const bl_head_t *h, const char *name, list_t *l)
{
    l->total = 0;
    list_each(h, name, list_add, l);
}

/* Walks an address list from the right past trusted proxies. Returns the index
 * (from the right) of the chosen item, or -1 for an empty list; *n is the node. */
static long walk_list(const bl_proxy_t *p, const list_t *l, node_t *n)
{
    size_t kept = list_kept(l);
    for (size_t i = 0; i < kept; i++) {
        span_t s = list_from_right(l, i);
        parse_node(s.s, s.len, n);
        if (n->kind != NODE_IP || !trusts_bin(p, n->addr) || i + 1 == kept)
            return (long)i; /* the client, or the left-most when all are proxies */
    }
    return -1;
}

/* ---- RFC 7239 Forwarded ---------------------------------------------------- */

typedef struct {
    bool bad; /* malformed: an opaque hop */
    bool has_for;
    char for_[64]; /* unquoted */
    size_t for_len;
    char proto[16];
    bool has_proto;
    char host[256];
    size_t host_len;
    bool has_host;
} fwd_elem_t;

typedef struct {
    fwd_elem_t elems[MAX_ELEMS];
    size_t total;
} fwd_t;

static void skip_ows(const char **p, const char *end)
{
    while (*p < end && (**p == ' ' || **p == '\t'))
        (*p)++;
}

/* A value (token or quoted-string) into out[cap]; false when malformed or too long. */
static bool fwd_value(const char **pp, const char *end, char *out, size_t cap, size_t *len)
{
    const char *p = *pp;
    size_t n = 0;
    if (p < end && *p == '"') {
        p++;
        for (;;) {
            if (p == end)
                return false;
            char c = *p++;
            if (c == '"')
                break;
            if (c == '\\') {
                if (p == end)
                    return false;
                c = *p++;
            }
            if ((unsigned char)c < 0x20 && c != '\t')
                return false;
            if (n + 1 >= cap)
                return false;
            out[n++] = c;
        }
    } else {
        /* A token; ':' '[' ']' are let through for the unquoted forms some
         * proxies send (host=example.com:8080, for=[::1]:80). */
        while (p < end &&
               (bl_token_char((unsigned char)*p) || *p == ':' || *p == '[' || *p == ']')) {
            if (n + 1 >= cap)
                return false;
            out[n++] = *p++;
        }
        if (n == 0)
            return false;
    }
    out[n] = '\0';
    *len = n;
    *pp = p;
    return true;
}

/* Parses one element (bl_token_next_quoted: no comma outside quotes). */
static void fwd_element(const char *p, const char *end, fwd_elem_t *e)
{
    memset(e, 0, sizeof(*e));
    for (;;) {
        skip_ows(&p, end);
        if (p == end || *p == ',')
            break;
        if (*p == ';') {
            p++;
            continue;
        }
        const char *name = p;
        while (p < end && bl_token_char((unsigned char)*p))
            p++;
        size_t name_len = (size_t)(p - name);
        if (name_len == 0 || p == end || *p != '=') {
            e->bad = true;
            break;
        }
        p++;
        char tmp[256];
        size_t len;
        if (!fwd_value(&p, end, tmp, sizeof(tmp), &len)) {
            e->bad = true;
            break;
        }
        if (name_len == 3 && strncasecmp(name, "for", 3) == 0) {
            if (e->has_for || len >= sizeof(e->for_))
                e->bad = true;
            e->has_for = true;
            memcpy(e->for_, tmp, len < sizeof(e->for_) ? len + 1 : 1);
            e->for_len = len < sizeof(e->for_) ? len : 0;
        } else if (name_len == 5 && strncasecmp(name, "proto", 5) == 0) {
            if (e->has_proto || len >= sizeof(e->proto))
                e->bad = true;
            e->has_proto = true;
            memcpy(e->proto, tmp, len < sizeof(e->proto) ? len + 1 : 1);
        } else if (name_len == 4 && strncasecmp(name, "host", 4) == 0) {
            if (e->has_host)
                e->bad = true;
            e->has_host = true;
            memcpy(e->host, tmp, len + 1);
            e->host_len = len;
        } /* by= and extensions are not ours */
        skip_ows(&p, end);
        if (p < end && *p != ';' && *p != ',') {
            e->bad = true;
            break;
        }
    }
}

static void fwd_get(const bl_head_t *h, fwd_t *f)
{
    f->total = 0;
    uint32_t i = 0;
    size_t len;
    const char *v;
    while ((v = bl_head_find_next(h, "forwarded", &i, &len)) != NULL) {
        size_t pos = 0, elen;
        const char *s;
        while (bl_token_next_quoted(v, len, &pos, &s, &elen)) {
            fwd_elem_t *e = &f->elems[f->total % MAX_ELEMS];
            fwd_element(s, s + elen, e);
            if (e->bad || e->has_for || e->has_proto || e->has_host)
                f->total++; /* elements of only ';' are no hop */
        }
    }
}

/* The element describing the client's hop: the right-most whose for= is not a
 * trusted proxy (the left-most when all are). NULL when there is none. */
static const fwd_elem_t *fwd_walk(const bl_proxy_t *p, const fwd_t *f, node_t *n)
{
    size_t kept = f->total < MAX_ELEMS ? f->total : MAX_ELEMS;
    for (size_t i = 0; i < kept; i++) {
        const fwd_elem_t *e = &f->elems[(f->total - 1 - i) % MAX_ELEMS];
        n->kind = NODE_INVALID;
        if (!e->bad && e->has_for)
            parse_node(e->for_, e->for_len, n);
        if (e->bad || n->kind != NODE_IP || !trusts_bin(p, n->addr) || i + 1 == kept)
            return e;
    }
    return NULL;
}

/* ---- resolving ------------------------------------------------------------ */

/* "https"/"wss": 1, "http"/"ws": 0, anything else: -1. */
static int proto_secure(const char *s, size_t len)
{
    if ((len == 5 && strncasecmp(s, "https", 5) == 0) ||
        (len == 3 && strncasecmp(s, "wss", 3) == 0))
        return 1;
    if ((len == 4 && strncasecmp(s, "http", 4) == 0) || (len == 2 && strncasecmp(s, "ws", 2) == 0))
        return 0;
    return -1;
}

/* A Host value we are willing to pass on: a name or address, an optional port. */
static bool host_ok(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']'))
            return false;
    }
    return true;
}

static void set_client(bl_proxy_view_t *v, const node_t *n)
{
    snprintf(v->client_host, sizeof(v->client_host), "%s", n->text);
    v->client_port = n->port >= 0 ? n->port : 0;
}

/* The right-most item of a one-number header, or -1. */
static int port_header(const bl_head_t *h, const char *name)
{
    list_t l;
    list_get(h, name, &l);
    if (l.total == 0)
        return -1;
    span_t s = list_from_right(&l, 0);
    return parse_port(s.s, s.len);
}

static bool peer_trusted(const bl_proxy_t *p, const bl_proxy_view_t *v)
{
    return v->unix_peer || (v->client_port >= 0 && bl_proxy_trusts(p, v->client_host));
}

static void resolve_root_path(const bl_head_t *h, bl_proxy_view_t *v)
{
    uint32_t i = 0;
    size_t len;
    /* The last one wins, as in Daphne. */
    while (bl_head_find_next(h, "daphne-root-path", &i, &len) != NULL) {
        v->has_root_path = true;
        v->root_path_off = h->headers[i - 1].value_off;
        v->root_path_len = h->headers[i - 1].value_len;
    }
}

void bl_proxy_resolve(const bl_proxy_t *p, const bl_head_t *h, bl_proxy_view_t *v)
{
    v->trusted = false;
    v->secure = false;
    v->has_root_path = false;
    v->root_path_off = v->root_path_len = 0;
    v->host_len = 0;
    if (!p->enabled && !head_has(h, "daphne-root-path"))
        return;
    v->trusted = peer_trusted(p, v);
    if (!v->trusted)
        return; /* anything the client says about itself is ignored */
    resolve_root_path(h, v);
    if (!p->enabled)
        return;

    list_t addrs = {.total = 0}, protos;
    node_t node = {.kind = NODE_INVALID, .port = -1};
    long chosen = -1;
    bool from_header = false; /* the client address came from a header */
    bool x_family = head_has(h, "x-forwarded-for") || head_has(h, "x-forwarded-proto");
    const fwd_elem_t *elem = NULL;
    if (!x_family) {
        fwd_t fwd;
        node_t fnode = {.kind = NODE_INVALID, .port = -1};
        fwd_get(h, &fwd);
        elem = fwd_walk(p, &fwd, &fnode);
        if (elem != NULL && p->host_header == NULL && fnode.kind == NODE_IP) {
            set_client(v, &fnode);
            node = fnode;
            from_header = true;
        }
        if (elem != NULL && !elem->bad && elem->has_proto) {
            int s = proto_secure(elem->proto, strlen(elem->proto));
            if (s >= 0)
                v->secure = s == 1;
        }
        if (elem != NULL && !elem->bad && elem->has_host && elem->host_len < sizeof(v->host) &&
            host_ok(elem->host, elem->host_len)) {
            memcpy(v->host, elem->host, elem->host_len);
            v->host_len = elem->host_len;
        }
    }
    if (p->host_header != NULL || x_family) {
        list_get(h, p->host_header ? p->host_header : "x-forwarded-for", &addrs);
        chosen = walk_list(p, &addrs, &node);
        if (chosen >= 0 && node.kind == NODE_IP) {
            set_client(v, &node);
            from_header = true;
        }
    }
    if (from_header && node.port < 0) {
        /* Daphne: the port header goes with an address from a header. */
        int port = port_header(h, p->port_header);
        if (port >= 0)
            v->client_port = port;
    }
    if (x_family) {
        list_get(h, "x-forwarded-proto", &protos);
        if (protos.total > 0) {
            /* Each proxy that appends to both lists adds one entry to each:
             * take the client's hop when they pair up, else the nearest. */
            size_t i = 0;
            if (p->host_header == NULL && chosen >= 0 && protos.total == addrs.total)
                i = (size_t)chosen;
            span_t s = list_from_right(&protos, i);
            int sec = proto_secure(s.s, s.len);
            if (sec >= 0)
                v->secure = sec == 1;
        }
    }
    if (v->server_port >= 0) {
        int port = port_header(h, "x-forwarded-port");
        if (port >= 0)
            v->server_port = port;
    }
}

/* ---- Host ------------------------------------------------------------------ */

int bl_proxy_set_host(bl_head_t *h, const char *value, size_t len)
{
    uint32_t i = 0;
    size_t old_len;
    bl_header_t *hd = bl_head_find_next(h, "host", &i, &old_len) ? &h->headers[i - 1] : NULL;
    size_t need = h->len + len + (hd == NULL ? 4 : 0);
    if (need > UINT32_MAX)
        return -ENOMEM;
    if (bl_buf_reserve(&h->buf, &h->cap, need, 0) != 0)
        return -ENOMEM;
    if (hd == NULL) {
        if ((hd = bl_head_header_add(h)) == NULL)
            return -ENOMEM;
        hd->name_off = (uint32_t)h->len;
        hd->name_len = 4;
        memcpy(h->buf + h->len, "host", 4);
        h->len += 4;
    }
    hd->value_off = (uint32_t)h->len;
    hd->value_len = (uint32_t)len;
    memcpy(h->buf + h->len, value, len);
    h->len += len;
    return 0;
}
