/* Behind a reverse proxy: which peers are trusted, and what the proxy says about
 * the client (X-Forwarded-For/-Proto/-Port, RFC 7239 Forwarded, the headers named
 * by --proxy-headers-host/-port) and the mount point (Daphne-Root-Path).
 * Socket-free: a configuration, the socket's view and a parsed head in, the
 * effective client, scheme, server port and root path out.
 *
 * Rules (gateway/README.md, "Proxies"):
 * - Trusted peers: unix-socket peers always; TCP peers whose address is in
 *   --forwarded-allow-ips (addresses and CIDRs, "*" for all; 127.0.0.1,::1 by
 *   default). Headers from other peers are ignored entirely.
 * - Forwarding headers count only with --proxy-headers (off by default, as in
 *   Daphne). Daphne-Root-Path counts from any trusted peer.
 * - Client address: the header named by --proxy-headers-host if given, else
 *   X-Forwarded-For, else Forwarded for= (only when the request has neither
 *   X-Forwarded-For nor X-Forwarded-Proto). Lists are walked from the right:
 *   the first address that is not itself a trusted proxy is the client.
 */
#ifndef BAYLEAF_PROXY_H
#define BAYLEAF_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bayleaf/common/config.h"
#include "bayleaf/proto/http_parser.h"

typedef struct {
    uint8_t addr[16]; /* IPv4 as ::ffff:a.b.c.d */
    uint8_t prefix;   /* leading bits that must match, of the 128 */
} bl_proxy_net_t;

typedef struct {
    bool enabled;      /* --proxy-headers */
    bool trust_all;    /* "*" in --forwarded-allow-ips */
    char *host_header; /* lower-case: the client host, or NULL for X-Forwarded-For */
    char *port_header; /* lower-case: the client port (x-forwarded-port by default) */
    bl_proxy_net_t *nets;
    size_t nnets;
} bl_proxy_t;

/* Builds the rules from cfg. 0, -EINVAL for a bad --forwarded-allow-ips entry
 * (described in err), or -ENOMEM. */
int bl_proxy_init(bl_proxy_t *p, const bl_config_t *cfg, char *err, size_t errlen);
void bl_proxy_free(bl_proxy_t *p);
/* Whether the address (text form) is a trusted proxy. */
bool bl_proxy_trusts(const bl_proxy_t *p, const char *addr);

/* What the app is told about a request. The caller fills the socket's view;
 * bl_proxy_resolve changes what trusted headers override. */
typedef struct {
    /* in and out */
    char client_host[64]; /* text address; with client_port < 0, none */
    int client_port;      /* -1: no client address (unix socket) */
    int server_port;      /* -1: a unix-socket listener (left alone) */
    /* in */
    bool unix_peer; /* the peer came through a unix socket: trusted */
    /* out */
    bool trusted;           /* the peer is a trusted proxy */
    bool secure;            /* https / wss (from X-Forwarded-Proto or proto=) */
    bool has_root_path;     /* Daphne-Root-Path from a trusted peer */
    uint32_t root_path_off; /* its raw (percent-encoded) value in head->buf */
    uint32_t root_path_len;
    char host[256]; /* Forwarded host= (unquoted), host_len 0: none */
    size_t host_len;
} bl_proxy_view_t;

void bl_proxy_resolve(const bl_proxy_t *p, const bl_head_t *head, bl_proxy_view_t *v);

/* Replaces the value of the head's Host header (adds one when missing).
 * 0 or -ENOMEM. Offsets into head->buf stay valid; pointers do not. */
int bl_proxy_set_host(bl_head_t *head, const char *value, size_t len);

#endif
