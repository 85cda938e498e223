/* The configuration every layer reads (filled from the command line by
 * proc/cmdline.c; Daphne's option names where they exist). */
#ifndef BAYLEAF_COMMON_CONFIG_H
#define BAYLEAF_COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define BL_MAX_ENDPOINTS 16

typedef struct {
    const char *app;          /* module:attr */
    const char *host;         /* NULL: default 127.0.0.1 */
    int port;                 /* -1: not given */
    const char *unix_socket;  /* NULL: none */
    int fd;                   /* -1: none */
    const char *root_path;    /* "" by default */
    double http_timeout;      /* seconds, 0: none */
    int verbosity;            /* 0..3 */
    const char *access_log;   /* NULL: stdout when verbosity >= 1; "-": stdout */
    const char *server_name;  /* NULL with --no-server-name */
    const char *lifespan;     /* auto | on | off */
    const char *loop;         /* auto | asyncio | uvloop */
    double graceful_timeout;  /* seconds to finish in-flight work on SIGTERM */
    double keepalive_timeout; /* idle keep-alive connections close after this */
    double header_timeout;    /* a request head must arrive within this */
    double send_timeout;      /* pending output unwritten this long: drop the client; 0: off */
    double body_timeout;      /* no request body bytes this long while read: 408; 0: off */
    size_t max_head;          /* request line + headers */
    size_t max_url;
    unsigned max_headers;
    /* WebSocket (Daphne's defaults) */
    double websocket_timeout;         /* -1: never */
    double websocket_connect_timeout; /* -1: never */
    double ping_interval;
    double ping_timeout;
    double application_close_timeout;
    size_t websocket_max_message_size; /* 0: unlimited */
    size_t websocket_max_frame_size;   /* 0: unlimited */
    /* Listeners beyond -b/-p/-u/--fd: Daphne's -e endpoint strings */
    const char *endpoints[BL_MAX_ENDPOINTS];
    int nendpoints;
    int unix_socket_mode; /* -1: leave as created */
    /* Proxies */
    bool proxy_headers;              /* --proxy-headers (Daphne) */
    const char *proxy_headers_host;  /* header naming the client host */
    const char *proxy_headers_port;  /* header naming the client port */
    const char *forwarded_allow_ips; /* peers trusted for proxy headers */
    /* Logging */
    const char *log_fmt;
    /* Processes */
    int workers; /* 0: no supervisor, one process */
    const char *venv;
    unsigned limit_concurrency; /* 0: none; 503 beyond it */
    size_t max_queued_bytes;    /* the up-queue's bound (bridge.h) */
    double loop_watchdog;       /* warn when the event loop is blocked this long; 0: off */
    long gc_threshold;          /* the cyclic GC's young threshold after startup; 0: Python's */
    /* permessage-deflate (RFC 7692) */
    bool ws_compression;
    bool ws_compression_context_takeover;
    int ws_compression_window_bits;  /* 9..15 */
    size_t ws_compression_threshold; /* smaller messages go uncompressed */
    /* --version: main.c adds each layer's library versions (versions.h) */
    bool show_version;
    /* Operations */
    const char *metrics; /* --metrics: HOST:PORT or unix:PATH; NULL: off */
    /* WSGI */
    const char *wsgi;      /* --wsgi module:attr, or NULL */
    int wsgi_threads;      /* the pool's size */
    const char *interface; /* the positional app: auto | asgi | wsgi */
    /* Topics pub/sub (io/topics.h) */
    size_t topics_name_max;         /* bytes of a topic name */
    unsigned topics_per_connection; /* topics one connection may subscribe */
    size_t topics_retained_bytes;   /* retained values of the process */
    size_t topics_queue_bytes;      /* queued topic bytes of a connection: 1013 beyond */
    const char *topics_redis;  /* redis://... (or $BAYLEAF_TOPICS_REDIS): topics across processes */
    const char *topics_prefix; /* of the Redis channels and keys */
} bl_config_t;

#endif
