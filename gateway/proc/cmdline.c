/* Command-line parsing. Both underscore and hyphen spellings of Daphne's
 * multi-word flags are accepted. */
#include "bayleaf/proc/cmdline.h"
#include "bayleaf/bridge/bridge.h"
#include "bayleaf/proto/proxy.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_FD = 256,
    OPT_ROOT_PATH,
    OPT_ACCESS_LOG,
    OPT_NO_SERVER_NAME,
    OPT_LIFESPAN,
    OPT_LOOP,
    OPT_VERSION,
    OPT_GRACEFUL_TIMEOUT,
    OPT_KEEPALIVE_TIMEOUT,
    OPT_HEADER_TIMEOUT,
    OPT_SEND_TIMEOUT,
    OPT_BODY_TIMEOUT,
    OPT_WS_TIMEOUT,
    OPT_WS_CONNECT_TIMEOUT,
    OPT_PING_INTERVAL,
    OPT_PING_TIMEOUT,
    OPT_APP_CLOSE_TIMEOUT,
    OPT_WS_MAX_MESSAGE,
    OPT_WS_MAX_FRAME,
    OPT_UNIX_MODE,
    OPT_PROXY_HEADERS,
    OPT_PROXY_HOST,
    OPT_PROXY_PORT,
    OPT_FORWARDED_ALLOW,
    OPT_LOG_FMT,
    OPT_WORKERS,
    OPT_VENV,
    OPT_LIMIT_CONCURRENCY,
    OPT_MAX_QUEUED_BYTES,
    OPT_WS_COMPRESSION,
    OPT_WS_CONTEXT_TAKEOVER,
    OPT_WS_WINDOW_BITS,
    OPT_WS_COMPRESSION_THRESHOLD,
    OPT_LOOP_WATCHDOG,
    OPT_GC_THRESHOLD,
};

static const struct option long_options[] = {
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"bind", required_argument, NULL, 'b'},
    {"port", required_argument, NULL, 'p'},
    {"unix-socket", required_argument, NULL, 'u'},
    {"fd", required_argument, NULL, OPT_FD},
    {"root-path", required_argument, NULL, OPT_ROOT_PATH},
    {"http-timeout", required_argument, NULL, 't'},
    {"verbosity", required_argument, NULL, 'v'},
    {"access-log", required_argument, NULL, OPT_ACCESS_LOG},
    {"server-name", required_argument, NULL, 's'},
    {"no-server-name", no_argument, NULL, OPT_NO_SERVER_NAME},
    {"lifespan", required_argument, NULL, OPT_LIFESPAN},
    {"loop", required_argument, NULL, OPT_LOOP},
    {"graceful-timeout", required_argument, NULL, OPT_GRACEFUL_TIMEOUT},
    {"keepalive-timeout", required_argument, NULL, OPT_KEEPALIVE_TIMEOUT},
    {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
    {"send-timeout", required_argument, NULL, OPT_SEND_TIMEOUT},
    {"body-timeout", required_argument, NULL, OPT_BODY_TIMEOUT},
    {"websocket_timeout", required_argument, NULL, OPT_WS_TIMEOUT},
    {"websocket-timeout", required_argument, NULL, OPT_WS_TIMEOUT},
    {"websocket_connect_timeout", required_argument, NULL, OPT_WS_CONNECT_TIMEOUT},
    {"websocket-connect-timeout", required_argument, NULL, OPT_WS_CONNECT_TIMEOUT},
    {"ping-interval", required_argument, NULL, OPT_PING_INTERVAL},
    {"ping_interval", required_argument, NULL, OPT_PING_INTERVAL},
    {"ping-timeout", required_argument, NULL, OPT_PING_TIMEOUT},
    {"ping_timeout", required_argument, NULL, OPT_PING_TIMEOUT},
    {"application-close-timeout", required_argument, NULL, OPT_APP_CLOSE_TIMEOUT},
    {"application_close_timeout", required_argument, NULL, OPT_APP_CLOSE_TIMEOUT},
    {"websocket-max-message-size", required_argument, NULL, OPT_WS_MAX_MESSAGE},
    {"websocket_max_message_size", required_argument, NULL, OPT_WS_MAX_MESSAGE},
    {"websocket-max-frame-size", required_argument, NULL, OPT_WS_MAX_FRAME},
    {"websocket_max_frame_size", required_argument, NULL, OPT_WS_MAX_FRAME},
    {"endpoint", required_argument, NULL, 'e'},
    {"unix-socket-mode", required_argument, NULL, OPT_UNIX_MODE},
    {"proxy-headers", no_argument, NULL, OPT_PROXY_HEADERS},
    {"proxy-headers-host", required_argument, NULL, OPT_PROXY_HOST},
    {"proxy-headers-port", required_argument, NULL, OPT_PROXY_PORT},
    {"forwarded-allow-ips", required_argument, NULL, OPT_FORWARDED_ALLOW},
    {"log-fmt", required_argument, NULL, OPT_LOG_FMT},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"venv", required_argument, NULL, OPT_VENV},
    {"limit-concurrency", required_argument, NULL, OPT_LIMIT_CONCURRENCY},
    {"max-queued-bytes", required_argument, NULL, OPT_MAX_QUEUED_BYTES},
    {"ws-compression", required_argument, NULL, OPT_WS_COMPRESSION},
    {"ws-compression-context-takeover", no_argument, NULL, OPT_WS_CONTEXT_TAKEOVER},
    {"ws-compression-window-bits", required_argument, NULL, OPT_WS_WINDOW_BITS},
    {"ws-compression-threshold", required_argument, NULL, OPT_WS_COMPRESSION_THRESHOLD},
    {"loop-watchdog", required_argument, NULL, OPT_LOOP_WATCHDOG},
    {"gc-threshold", required_argument, NULL, OPT_GC_THRESHOLD},
    {NULL, 0, NULL, 0},
};

static const char usage[] =
    "usage: bayleaf [options] module:application\n"
    "\n"
    "Bayleaf: an ASGI server for Django Channels (HTTP/1.1 and WebSocket).\n"
    "\n"
    "options:\n"
    "  -h, --help                 show this help and exit\n"
    "  --version                  print the version and exit\n"
    "  -b, --bind HOST            address to bind to (default 127.0.0.1)\n"
    "  -p, --port PORT            TCP port to listen on (default 8000)\n"
    "  -u, --unix-socket PATH     listen on a unix socket\n"
    "  --fd N                     serve an inherited listening socket\n"
    "  --root-path PATH           ASGI root_path (the URL prefix the app is mounted at)\n"
    "  -t, --http-timeout SECS    answer 503 when no response started in time (default: none)\n"
    "  -v, --verbosity 0..3       how much to log (default 1)\n"
    "  --access-log FILE|-        where to write the access log (- for stdout,\n"
    "                             the default for verbosity >= 1)\n"
    "  -s, --server-name NAME     the Server response header (default bayleaf)\n"
    "  --no-server-name           send no Server header\n"
    "  --lifespan auto|on|off     ASGI lifespan protocol (default auto)\n"
    "  --loop auto|asyncio|uvloop event loop (default auto: uvloop when installed)\n"
    "  --graceful-timeout SECS    on SIGTERM, time to finish in-flight work (default 30)\n"
    "  --keepalive-timeout SECS   close idle keep-alive connections (default 75)\n"
    "  --header-timeout SECS      deadline for a request head (default 30)\n"
    "  --send-timeout SECS        drop a client that reads none of our pending output\n"
    "                             for this long, 0 to turn off (default 60)\n"
    "  --body-timeout SECS        end a request whose body sends nothing for this long\n"
    "                             while it is read: 408, 0 to turn off (default 30)\n"
    "  --websocket_timeout SECS   maximum WebSocket age, -1 for never (default 86400)\n"
    "  --websocket_connect_timeout SECS\n"
    "                             time for the app to accept a WebSocket (default 5)\n"
    "  --ping-interval SECS       ping an idle WebSocket after this (default 20)\n"
    "  --ping-timeout SECS        drop a WebSocket whose ping is unanswered (default 30)\n"
    "  --application-close-timeout SECS\n"
    "                             time for the app to return after a disconnect (default 10)\n"
    "  --websocket-max-message-size BYTES\n"
    "                             largest WebSocket message, 0 for no limit (default 1048576)\n"
    "  --websocket-max-frame-size BYTES\n"
    "                             largest WebSocket data frame payload (1009 beyond),\n"
    "                             0 for no limit (default 0)\n"
    "  -e, --endpoint SPEC        also listen on SPEC (repeatable): tcp:port=P:interface=H,\n"
    "                             unix:PATH, fd:fileno=N, systemd:domain=INET:index=N\n"
    "  --unix-socket-mode MODE    permissions of unix sockets we create (octal, e.g. 660)\n"
    "  --proxy-headers            use X-Forwarded-For/-Proto/-Port and Forwarded from\n"
    "                             trusted proxies for the client address and scheme\n"
    "  --proxy-headers-host HDR   header with the client host (with --proxy-headers)\n"
    "  --proxy-headers-port HDR   header with the client port (with --proxy-headers)\n"
    "  --forwarded-allow-ips LIST proxies trusted for those headers, comma-separated\n"
    "                             (default 127.0.0.1,::1 and unix sockets; * for all)\n"
    "  --log-fmt FORMAT           Python logging format for log lines\n"
    "  --workers N                run N worker processes under a supervisor (default 1)\n"
    "  --venv PATH                use this virtualenv (like VIRTUAL_ENV)\n"
    "  --limit-concurrency N      answer 503 beyond N open connections (default: none)\n"
    "  --max-queued-bytes BYTES   work queued toward a busy Python beyond which no new\n"
    "                             connections or input are read (default 67108864)\n"
    "  --ws-compression on|off    offer permessage-deflate (default on)\n"
    "  --ws-compression-context-takeover\n"
    "                             keep compression context between messages (more memory)\n"
    "  --ws-compression-window-bits 9..15\n"
    "                             deflate window (default 15)\n"
    "  --ws-compression-threshold BYTES\n"
    "                             send smaller messages uncompressed (default 128)\n"
    "  --loop-watchdog SECS       log the app's stack when it blocks the event loop this\n"
    "                             long (default 5, 0 to turn off)\n"
    "  --gc-threshold N           after startup, run the cyclic GC's young pass every N\n"
    "                             new container objects (default 20000; 0: as Python has it)\n";

static int bad(FILE *err, const char *what, const char *value)
{
    fprintf(err, "bayleaf: error: %s: '%s' (see bayleaf --help)\n", what, value);
    return -EINVAL;
}

static int parse_seconds(const char *s, double *out, bool allow_never)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v > 1e9)
        return -1;
    if (v < 0 && !(allow_never && v == -1))
        return -1;
    *out = v;
    return 0;
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static void set_defaults(bl_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->port = -1;
    cfg->fd = -1;
    cfg->root_path = "";
    cfg->verbosity = 1;
    cfg->server_name = "bayleaf";
    cfg->lifespan = "auto";
    cfg->loop = "auto";
    cfg->graceful_timeout = 30;
    cfg->keepalive_timeout = 75;
    cfg->header_timeout = 30;
    cfg->send_timeout = 60;
    cfg->body_timeout = 30;
    cfg->max_head = 64 * 1024;
    cfg->max_url = 16 * 1024;
    cfg->max_headers = 128;
    cfg->websocket_timeout = 86400;
    cfg->websocket_connect_timeout = 5;
    cfg->ping_interval = 20;
    cfg->ping_timeout = 30;
    cfg->application_close_timeout = 10;
    cfg->websocket_max_message_size = 1024 * 1024;
    cfg->max_queued_bytes = BL_UP_MAX_BYTES;
    cfg->unix_socket_mode = -1;
    cfg->forwarded_allow_ips = "127.0.0.1,::1";
    cfg->ws_compression = true;
    cfg->ws_compression_window_bits = 15;
    cfg->ws_compression_threshold = 128;
    cfg->loop_watchdog = 5;
    cfg->gc_threshold = 20000;
}

static bool one_of(const char *v, const char *a, const char *b, const char *c)
{
    return strcmp(v, a) == 0 || strcmp(v, b) == 0 || strcmp(v, c) == 0;
}

int bl_config_parse(bl_config_t *cfg, int argc, char **argv, FILE *out, FILE *err)
{
    int c;
    long n;
    double secs;

    set_defaults(cfg);
    opterr = 0;
    optind = 0; /* 0, not 1: also resets glibc's position inside "-abc" groups */
    while ((c = getopt_long(argc, argv, ":hb:p:u:t:v:s:e:", long_options, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(usage, out);
            return BL_CONFIG_EXIT;
        case OPT_VERSION:
            fprintf(out, "bayleaf %s\n", BL_VERSION);
            return BL_CONFIG_EXIT;
        case 'b':
            cfg->host = optarg;
            break;
        case 'p':
            if (parse_long(optarg, 0, 65535, &n) != 0)
                return bad(err, "invalid port", optarg);
            cfg->port = (int)n;
            break;
        case 'u':
            cfg->unix_socket = optarg;
            break;
        case OPT_FD:
            if (parse_long(optarg, 0, 1 << 20, &n) != 0)
                return bad(err, "invalid file descriptor", optarg);
            cfg->fd = (int)n;
            break;
        case OPT_ROOT_PATH:
            cfg->root_path = optarg;
            break;
        case 't':
            if (parse_seconds(optarg, &cfg->http_timeout, false) != 0)
                return bad(err, "invalid --http-timeout", optarg);
            break;
        case 'v':
            if (parse_long(optarg, 0, 3, &n) != 0)
                return bad(err, "invalid verbosity (0 to 3)", optarg);
            cfg->verbosity = (int)n;
            break;
        case OPT_ACCESS_LOG:
            cfg->access_log = optarg;
            break;
        case 's':
            cfg->server_name = optarg;
            break;
        case OPT_NO_SERVER_NAME:
            cfg->server_name = NULL;
            break;
        case OPT_LIFESPAN:
            if (!one_of(optarg, "auto", "on", "off"))
                return bad(err, "--lifespan takes auto, on or off", optarg);
            cfg->lifespan = optarg;
            break;
        case OPT_LOOP:
            if (!one_of(optarg, "auto", "asyncio", "uvloop"))
                return bad(err, "--loop takes auto, asyncio or uvloop", optarg);
            cfg->loop = optarg;
            break;
        case OPT_LOOP_WATCHDOG:
            if (parse_seconds(optarg, &cfg->loop_watchdog, false) != 0)
                return bad(err, "invalid number of seconds", optarg);
            break;
        case OPT_GC_THRESHOLD:
            if (parse_long(optarg, 0, 1000000000, &n) != 0)
                return bad(err, "invalid --gc-threshold (0 to 1000000000)", optarg);
            cfg->gc_threshold = n;
            break;
        case OPT_GRACEFUL_TIMEOUT:
        case OPT_KEEPALIVE_TIMEOUT:
        case OPT_HEADER_TIMEOUT:
        case OPT_SEND_TIMEOUT:
        case OPT_BODY_TIMEOUT:
        case OPT_PING_INTERVAL:
        case OPT_PING_TIMEOUT:
        case OPT_APP_CLOSE_TIMEOUT:
            if (parse_seconds(optarg, &secs, false) != 0)
                return bad(err, "invalid number of seconds", optarg);
            if (c == OPT_GRACEFUL_TIMEOUT)
                cfg->graceful_timeout = secs;
            else if (c == OPT_KEEPALIVE_TIMEOUT)
                cfg->keepalive_timeout = secs;
            else if (c == OPT_HEADER_TIMEOUT)
                cfg->header_timeout = secs;
            else if (c == OPT_SEND_TIMEOUT)
                cfg->send_timeout = secs;
            else if (c == OPT_BODY_TIMEOUT)
                cfg->body_timeout = secs;
            else if (c == OPT_PING_INTERVAL)
                cfg->ping_interval = secs;
            else if (c == OPT_PING_TIMEOUT)
                cfg->ping_timeout = secs;
            else
                cfg->application_close_timeout = secs;
            break;
        case OPT_WS_TIMEOUT:
        case OPT_WS_CONNECT_TIMEOUT:
            if (parse_seconds(optarg, &secs, true) != 0)
                return bad(err, "invalid number of seconds (-1 for never)", optarg);
            if (c == OPT_WS_TIMEOUT)
                cfg->websocket_timeout = secs;
            else
                cfg->websocket_connect_timeout = secs;
            break;
        case OPT_WS_MAX_MESSAGE:
            if (parse_long(optarg, 0, (long)1 << 40, &n) != 0)
                return bad(err, "invalid --websocket-max-message-size", optarg);
            cfg->websocket_max_message_size = (size_t)n;
            break;
        case 'e':
            if (cfg->nendpoints == BL_MAX_ENDPOINTS)
                return bad(err, "too many endpoints", optarg);
            cfg->endpoints[cfg->nendpoints++] = optarg;
            break;
        case OPT_WS_MAX_FRAME:
            if (parse_long(optarg, 0, (long)1 << 40, &n) != 0)
                return bad(err, "invalid --websocket-max-frame-size", optarg);
            cfg->websocket_max_frame_size = (size_t)n;
            break;
        case OPT_UNIX_MODE: {
            char *end;
            long mode = strtol(optarg, &end, 8);
            if (*optarg == '\0' || *end != '\0' || mode < 0 || mode > 0777)
                return bad(err, "invalid --unix-socket-mode (octal, e.g. 660)", optarg);
            cfg->unix_socket_mode = (int)mode;
            break;
        }
        case OPT_PROXY_HEADERS:
            cfg->proxy_headers = true;
            break;
        case OPT_PROXY_HOST:
            cfg->proxy_headers_host = optarg;
            break;
        case OPT_PROXY_PORT:
            cfg->proxy_headers_port = optarg;
            break;
        case OPT_FORWARDED_ALLOW:
            cfg->forwarded_allow_ips = optarg;
            break;
        case OPT_LOG_FMT:
            cfg->log_fmt = optarg;
            break;
        case OPT_WORKERS:
            if (parse_long(optarg, 1, 1024, &n) != 0)
                return bad(err, "invalid --workers (1 to 1024)", optarg);
            cfg->workers = (int)n;
            break;
        case OPT_VENV:
            cfg->venv = optarg;
            break;
        case OPT_LIMIT_CONCURRENCY:
            if (parse_long(optarg, 1, 10000000, &n) != 0)
                return bad(err, "invalid --limit-concurrency", optarg);
            cfg->limit_concurrency = (unsigned)n;
            break;
        case OPT_MAX_QUEUED_BYTES:
            if (parse_long(optarg, 1 << 20, (long)1 << 40, &n) != 0)
                return bad(err, "invalid --max-queued-bytes (1048576 or more)", optarg);
            cfg->max_queued_bytes = (size_t)n;
            break;
        case OPT_WS_COMPRESSION:
            if (strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0)
                return bad(err, "--ws-compression takes on or off", optarg);
            cfg->ws_compression = strcmp(optarg, "on") == 0;
            break;
        case OPT_WS_CONTEXT_TAKEOVER:
            cfg->ws_compression_context_takeover = true;
            break;
        case OPT_WS_WINDOW_BITS:
            if (parse_long(optarg, 9, 15, &n) != 0)
                return bad(err, "invalid --ws-compression-window-bits (9 to 15)", optarg);
            cfg->ws_compression_window_bits = (int)n;
            break;
        case OPT_WS_COMPRESSION_THRESHOLD:
            if (parse_long(optarg, 0, (long)1 << 30, &n) != 0)
                return bad(err, "invalid --ws-compression-threshold", optarg);
            cfg->ws_compression_threshold = (size_t)n;
            break;
        case ':':
            if (strncmp(argv[optind - 1], "--", 2) == 0)
                return bad(err, "option needs a value", argv[optind - 1]);
            if (optopt != 0 && optopt < 256) {
                char flag[3] = {'-', (char)optopt, '\0'};
                return bad(err, "option needs a value", flag);
            }
            return bad(err, "option needs a value", argv[optind - 1]);
        default:
            if (optopt != 0) {
                char flag[3] = {'-', (char)optopt, '\0'};
                return bad(err, "unknown option", flag);
            }
            return bad(err, "unknown option", argv[optind - 1]);
        }
    }
    if (optind >= argc) {
        fprintf(err, "bayleaf: error: the application is required, as module:attribute "
                     "(see bayleaf --help)\n");
        return -EINVAL;
    }
    if (optind + 1 < argc)
        return bad(err, "unexpected argument", argv[optind + 1]);
    cfg->app = argv[optind];
    /* A bad trusted-proxy list is refused now, not found at the first request. */
    bl_proxy_t proxy;
    char why[256] = "out of memory";
    if (bl_proxy_init(&proxy, cfg, why, sizeof(why)) != 0) {
        fprintf(err, "bayleaf: error: %s\n", why);
        return -EINVAL;
    }
    bl_proxy_free(&proxy);
    return BL_CONFIG_OK;
}

bool bl_config_wants_tcp(const bl_config_t *cfg)
{
    return cfg->host != NULL || cfg->port >= 0 || (cfg->unix_socket == NULL && cfg->fd < 0);
}
