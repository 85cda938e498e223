/* The option table: one row per command-line option ({names, parser, field}
 * and its --help text), one parser per kind of value, and --help printed from
 * the rows. Adding an option is adding a row. */
#include "bayleaf/proc/cmdline.h"
#include "bayleaf/io/topics_redis.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FIELD(name) offsetof(bl_config_t, name)
#define HELP_COLUMN 29 /* where --help's descriptions start */

static const char usage_head[] =
    "usage: bayleaf [options] module:application\n"
    "\n"
    "Bayleaf: an ASGI server for Django Channels (HTTP/1.1 and WebSocket).\n"
    "\n"
    "options:\n";

static const char *const lifespan_choices[] = {"auto", "on", "off", NULL};
static const char *const loop_choices[] = {"auto", "asyncio", "uvloop", NULL};
static const char *const interface_choices[] = {"auto", "asgi", "wsgi", NULL};

/* clang-format off */
static const bl_option_t options[] = {
    {.name = "help", .short_name = 'h', .parse = bl_option_help,
     .help = "show this help and exit"},
    {.name = "version", .parse = bl_option_version,
     .help = "print the version and exit"},
    {.name = "bind", .short_name = 'b', .takes_value = true, .parse = bl_option_string,
     .field = FIELD(host), .metavar = "HOST",
     .help = "address to bind to (default 127.0.0.1)"},
    {.name = "port", .short_name = 'p', .takes_value = true, .parse = bl_option_int,
     .field = FIELD(port), .min = 0, .max = 65535, .error = "invalid port", .metavar = "PORT",
     .help = "TCP port to listen on (default 8000)"},
    {.name = "unix-socket", .short_name = 'u', .takes_value = true, .parse = bl_option_string,
     .field = FIELD(unix_socket), .metavar = "PATH",
     .help = "listen on a unix socket"},
    {.name = "fd", .takes_value = true, .parse = bl_option_int, .field = FIELD(fd),
     .min = 0, .max = 1 << 20, .error = "invalid file descriptor", .metavar = "N",
     .help = "serve an inherited listening socket"},
    {.name = "root-path", .takes_value = true, .parse = bl_option_string,
     .field = FIELD(root_path), .metavar = "PATH",
     .help = "ASGI root_path (the URL prefix the app is mounted at)"},
    {.name = "http-timeout", .short_name = 't', .takes_value = true, .parse = bl_option_seconds,
     .field = FIELD(http_timeout), .error = "invalid --http-timeout", .metavar = "SECS",
     .help = "answer 503 when no response started in time (default: none)"},
    {.name = "verbosity", .short_name = 'v', .takes_value = true, .parse = bl_option_int,
     .field = FIELD(verbosity), .min = 0, .max = 3, .error = "invalid verbosity (0 to 3)",
     .metavar = "0..3", .help = "how much to log (default 1)"},
    {.name = "access-log", .takes_value = true, .parse = bl_option_string,
     .field = FIELD(access_log), .metavar = "FILE|-",
     .help = "where to write the access log (- for stdout,\n"
             "the default for verbosity >= 1)"},
    {.name = "server-name", .short_name = 's', .takes_value = true, .parse = bl_option_string,
     .field = FIELD(server_name), .metavar = "NAME",
     .help = "the Server response header (default bayleaf)"},
    {.name = "no-server-name", .parse = bl_option_clear, .field = FIELD(server_name),
     .help = "send no Server header"},
    {.name = "lifespan", .takes_value = true, .parse = bl_option_choice,
     .field = FIELD(lifespan), .choices = lifespan_choices,
     .error = "--lifespan takes auto, on or off", .metavar = "auto|on|off",
     .help = "ASGI lifespan protocol (default auto)"},
    {.name = "loop", .takes_value = true, .parse = bl_option_choice, .field = FIELD(loop),
     .choices = loop_choices, .error = "--loop takes auto, asyncio or uvloop",
     .metavar = "auto|asyncio|uvloop",
     .help = "event loop (default auto: uvloop when installed)"},
    {.name = "graceful-timeout", .takes_value = true, .parse = bl_option_seconds,
     .field = FIELD(graceful_timeout), .error = "invalid number of seconds", .metavar = "SECS",
     .help = "on SIGTERM, time to finish in-flight work (default 30)"},
    {.name = "keepalive-timeout", .takes_value = true, .parse = bl_option_seconds,
     .field = FIELD(keepalive_timeout), .error = "invalid number of seconds", .metavar = "SECS",
     .help = "close idle keep-alive connections (default 75)"},
    {.name = "header-timeout", .takes_value = true, .parse = bl_option_seconds,
     .field = FIELD(header_timeout), .error = "invalid number of seconds", .metavar = "SECS",
     .help = "deadline for a request head (default 30)"},
    {.name = "send-timeout", .takes_value = true, .parse = bl_option_seconds,
     .field = FIELD(send_timeout), .error = "invalid number of seconds", .metavar = "SECS",
     .help = "drop a client that reads none of our pending output\n"
             "for this long, 0 to turn off (default 60)"},
    {.name = "body-timeout", .takes_value = true, .parse = bl_option_seconds,
     .field = FIELD(body_timeout), .error = "invalid number of seconds", .metavar = "SECS",
     .help = "end a request whose body sends nothing for this long\n"
             "while it is read: 408, 0 to turn off (default 30)"},
    {.name = "websocket_timeout", .alias = "websocket-timeout", .takes_value = true,
     .parse = bl_option_seconds_or_never, .field = FIELD(websocket_timeout),
     .error = "invalid number of seconds (-1 for never)", .metavar = "SECS",
     .help = "maximum WebSocket age, -1 for never (default 86400)"},
    {.name = "websocket_connect_timeout", .alias = "websocket-connect-timeout",
     .takes_value = true, .parse = bl_option_seconds_or_never,
     .field = FIELD(websocket_connect_timeout),
     .error = "invalid number of seconds (-1 for never)", .metavar = "SECS",
     .help = "time for the app to accept a WebSocket (default 5)"},
    {.name = "ping-interval", .alias = "ping_interval", .takes_value = true,
     .parse = bl_option_seconds, .field = FIELD(ping_interval),
     .error = "invalid number of seconds", .metavar = "SECS",
     .help = "ping an idle WebSocket after this (default 20)"},
    {.name = "ping-timeout", .alias = "ping_timeout", .takes_value = true,
     .parse = bl_option_seconds, .field = FIELD(ping_timeout),
     .error = "invalid number of seconds", .metavar = "SECS",
     .help = "drop a WebSocket whose ping is unanswered (default 30)"},
    {.name = "application-close-timeout", .alias = "application_close_timeout",
     .takes_value = true, .parse = bl_option_seconds, .field = FIELD(application_close_timeout),
     .error = "invalid number of seconds", .metavar = "SECS",
     .help = "time for the app to return after a disconnect (default 10)"},
    {.name = "websocket-max-message-size", .alias = "websocket_max_message_size",
     .takes_value = true, .parse = bl_option_size, .field = FIELD(websocket_max_message_size),
     .min = 0, .max = 1L << 40, .error = "invalid --websocket-max-message-size",
     .metavar = "BYTES",
     .help = "largest WebSocket message, 0 for no limit (default 1048576)"},
    {.name = "websocket-max-frame-size", .alias = "websocket_max_frame_size",
     .takes_value = true, .parse = bl_option_size, .field = FIELD(websocket_max_frame_size),
     .min = 0, .max = 1L << 40, .error = "invalid --websocket-max-frame-size",
     .metavar = "BYTES",
     .help = "largest WebSocket data frame payload (1009 beyond),\n"
             "0 for no limit (default 0)"},
    {.name = "endpoint", .short_name = 'e', .takes_value = true, .parse = bl_option_endpoint,
     .field = FIELD(endpoints), .error = "too many endpoints", .metavar = "SPEC",
     .help = "also listen on SPEC (repeatable): tcp:port=P:interface=H,\n"
             "unix:PATH, fd:fileno=N, systemd:domain=INET:index=N"},
    {.name = "unix-socket-mode", .takes_value = true, .parse = bl_option_octal_mode,
     .field = FIELD(unix_socket_mode), .error = "invalid --unix-socket-mode (octal, e.g. 660)",
     .metavar = "MODE", .help = "permissions of unix sockets we create (octal, e.g. 660)"},
    {.name = "proxy-headers", .parse = bl_option_true, .field = FIELD(proxy_headers),
     .help = "use X-Forwarded-For/-Proto/-Port and Forwarded from\n"
             "trusted proxies for the client address and scheme"},
    {.name = "proxy-headers-host", .takes_value = true, .parse = bl_option_string,
     .field = FIELD(proxy_headers_host), .metavar = "HDR",
     .help = "header with the client host (with --proxy-headers)"},
    {.name = "proxy-headers-port", .takes_value = true, .parse = bl_option_string,
     .field = FIELD(proxy_headers_port), .metavar = "HDR",
     .help = "header with the client port (with --proxy-headers)"},
    {.name = "forwarded-allow-ips", .takes_value = true, .parse = bl_option_string,
     .field = FIELD(forwarded_allow_ips), .metavar = "LIST",
     .help = "proxies trusted for those headers, comma-separated\n"
             "(default 127.0.0.1,::1 and unix sockets; * for all)"},
    {.name = "log-fmt", .takes_value = true, .parse = bl_option_string, .field = FIELD(log_fmt),
     .metavar = "FORMAT", .help = "Python logging format for log lines"},
    {.name = "workers", .takes_value = true, .parse = bl_option_int, .field = FIELD(workers),
     .min = 1, .max = 1024, .error = "invalid --workers (1 to 1024)", .metavar = "N",
     .help = "run N worker processes under a supervisor (default 1)"},
    {.name = "venv", .takes_value = true, .parse = bl_option_string, .field = FIELD(venv),
     .metavar = "PATH", .help = "use this virtualenv (like VIRTUAL_ENV)"},
    {.name = "limit-concurrency", .takes_value = true, .parse = bl_option_uint,
     .field = FIELD(limit_concurrency), .min = 1, .max = 10000000,
     .error = "invalid --limit-concurrency", .metavar = "N",
     .help = "answer 503 beyond N open connections (default: none)"},
    {.name = "max-queued-bytes", .takes_value = true, .parse = bl_option_size,
     .field = FIELD(max_queued_bytes), .min = 1L << 20, .max = 1L << 40,
     .error = "invalid --max-queued-bytes (1048576 or more)", .metavar = "BYTES",
     .help = "work queued toward a busy Python beyond which no new\n"
             "connections or input are read (default 67108864)"},
    {.name = "ws-compression", .takes_value = true, .parse = bl_option_on_off,
     .field = FIELD(ws_compression), .error = "--ws-compression takes on or off",
     .metavar = "on|off", .help = "offer permessage-deflate (default on)"},
    {.name = "ws-compression-context-takeover", .parse = bl_option_true,
     .field = FIELD(ws_compression_context_takeover),
     .help = "keep compression context between messages (more memory)"},
    {.name = "ws-compression-window-bits", .takes_value = true, .parse = bl_option_int,
     .field = FIELD(ws_compression_window_bits), .min = 9, .max = 15,
     .error = "invalid --ws-compression-window-bits (9 to 15)", .metavar = "9..15",
     .help = "deflate window (default 15)"},
    {.name = "ws-compression-threshold", .takes_value = true, .parse = bl_option_size,
     .field = FIELD(ws_compression_threshold), .min = 0, .max = 1L << 30,
     .error = "invalid --ws-compression-threshold", .metavar = "BYTES",
     .help = "send smaller messages uncompressed (default 128)"},
    {.name = "loop-watchdog", .takes_value = true, .parse = bl_option_seconds,
     .field = FIELD(loop_watchdog), .error = "invalid number of seconds", .metavar = "SECS",
     .help = "log the app's stack when it blocks the event loop this\n"
             "long (default 5, 0 to turn off)"},
    {.name = "gc-threshold", .takes_value = true, .parse = bl_option_long,
     .field = FIELD(gc_threshold), .min = 0, .max = 1000000000,
     .error = "invalid --gc-threshold (0 to 1000000000)", .metavar = "N",
     .help = "after startup, run the cyclic GC's young pass every N\n"
             "new container objects (default 20000; 0: as Python has it)"},
    {.name = "metrics", .takes_value = true, .parse = bl_option_string, .field = FIELD(metrics),
     .metavar = "ADDRESS",
     .help = "serve /metrics (Prometheus) and /ready on HOST:PORT\n"
             "or unix:PATH, answered while the app blocks Python"},
    /* WSGI (gateway/README.md, "WSGI") */
    {.name = "wsgi", .takes_value = true, .parse = bl_option_string, .field = FIELD(wsgi),
     .metavar = "MODULE:APP",
     .help = "serve HTTP with this WSGI application; WebSocket\n"
             "stays with the positional ASGI one"},
    {.name = "wsgi-threads", .takes_value = true, .parse = bl_option_int,
     .field = FIELD(wsgi_threads), .min = 1, .max = 1024,
     .error = "invalid --wsgi-threads (1 to 1024)", .metavar = "N",
     .help = "threads that run WSGI views (default 1; more for\n"
             "views that wait on I/O)"},
    {.name = "interface", .takes_value = true, .parse = bl_option_choice,
     .field = FIELD(interface), .choices = interface_choices,
     .error = "--interface takes auto, asgi or wsgi", .metavar = "auto|asgi|wsgi",
     .help = "what the positional application is (default auto:\n"
             "WSGI when it takes (environ, start_response))"},
    {.name = "topics-name-max", .takes_value = true, .parse = bl_option_size,
     .field = FIELD(topics_name_max), .min = 1, .max = 65535,
     .error = "invalid --topics-name-max (1 to 65535)", .metavar = "BYTES",
     .help = "longest topic name (default 256)"},
    {.name = "topics-per-connection", .takes_value = true, .parse = bl_option_uint,
     .field = FIELD(topics_per_connection), .min = 1, .max = 10000000,
     .error = "invalid --topics-per-connection", .metavar = "N",
     .help = "topics one WebSocket may subscribe; beyond, it is\n"
             "closed with 1008 (default 1024)"},
    {.name = "topics-retained-bytes", .takes_value = true, .parse = bl_option_size,
     .field = FIELD(topics_retained_bytes), .min = 0, .max = 1L << 40,
     .error = "invalid --topics-retained-bytes", .metavar = "BYTES",
     .help = "retained topic values kept by a process\n(default 67108864)"},
    {.name = "topics-queue-bytes", .takes_value = true, .parse = bl_option_size,
     .field = FIELD(topics_queue_bytes), .min = 1024, .max = 1L << 40,
     .error = "invalid --topics-queue-bytes (1024 or more)", .metavar = "BYTES",
     .help = "topic bytes a slow subscriber may fall behind before\n"
             "it is closed with 1013 (default 1048576)"},
    {.name = "topics-redis", .takes_value = true, .parse = bl_option_redis_url,
     .field = FIELD(topics_redis),
     .error = "invalid --topics-redis (redis://[[user]:password@]host[:port][/db] or "
              "unix:///path)",
     .metavar = "URL",
     .help = "publish and subscribe topics through Redis, across\n"
             "workers and hosts (default $BAYLEAF_TOPICS_REDIS):\n"
             "redis://[[user]:password@]host[:port][/db] or\n"
             "unix:///path[?db=N] (a password: better in the\n"
             "environment variable, which ps does not show)"},
    {.name = "topics-prefix", .takes_value = true, .parse = bl_option_string,
     .field = FIELD(topics_prefix), .metavar = "TEXT",
     .help = "prefix of the Redis channels and keys of topics\n"
             "(default bayleaf:topic:)"},
};
/* clang-format on */

#define NOPTIONS (sizeof(options) / sizeof(options[0]))
_Static_assert(NOPTIONS <= BL_OPTIONS_MAX, "cmdline.c sizes getopt's tables by BL_OPTIONS_MAX");

const bl_option_t *bl_config_options(size_t *n)
{
    *n = NOPTIONS;
    return options;
}

static void *field_of(const bl_option_t *o, bl_config_t *cfg)
{
    return (char *)cfg + o->field;
}

/* ---- parsers, one per kind of value ---- */

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

/* Seconds as the timers take them: finite, at most 1e9, and not negative
 * except -1 (never) where allow_never. */
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

static void print_help(FILE *out)
{
    fputs(usage_head, out);
    for (size_t i = 0; i < NOPTIONS; i++) {
        const bl_option_t *o = &options[i];
        char head[80];
        if (o->short_name)
            snprintf(head, sizeof(head), "  -%c, --%s%s%s", o->short_name, o->name,
                     o->metavar ? " " : "", o->metavar ? o->metavar : "");
        else
            snprintf(head, sizeof(head), "  --%s%s%s", o->name, o->metavar ? " " : "",
                     o->metavar ? o->metavar : "");
        if (strlen(head) < HELP_COLUMN)
            fprintf(out, "%-*s", HELP_COLUMN, head);
        else
            fprintf(out, "%s\n%*s", head, HELP_COLUMN, "");
        for (const char *line = o->help; *line != '\0';) {
            const char *nl = strchr(line, '\n');
            size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
            fprintf(out, "%.*s\n", (int)len, line);
            if (nl == NULL)
                break;
            line = nl + 1;
            fprintf(out, "%*s", HELP_COLUMN, "");
        }
    }
}

int bl_option_help(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out)
{
    (void)o, (void)arg, (void)cfg;
    print_help(out);
    return BL_CONFIG_EXIT;
}

int bl_option_version(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out)
{
    (void)o, (void)arg;
    fprintf(out, "bayleaf %s\n", BL_VERSION);
    cfg->show_version = true;
    return BL_CONFIG_EXIT;
}

int bl_option_string(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out)
{
    (void)out;
    *(const char **)field_of(o, cfg) = arg;
    return 0;
}

/* --no-X: the string option X set to NULL. */
int bl_option_clear(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out)
{
    (void)arg, (void)out;
    *(const char **)field_of(o, cfg) = NULL;
    return 0;
}

/* A flag without a value: present means true. */
int bl_option_true(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out)
{
    (void)arg, (void)out;
    *(bool *)field_of(o, cfg) = true;
    return 0;
}

int bl_option_on_off(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out)
{
    (void)out;
    if (strcmp(arg, "on") != 0 && strcmp(arg, "off") != 0)
        return -1;
    *(bool *)field_of(o, cfg) = strcmp(arg, "on") == 0;
    return 0;
}

/* One word of o->choices, kept as given. */
int bl_option_choice(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out)
{
    (void)out;
    for (const char *const *c = o->choices; *c != NULL; c++) {
        if (strcmp(arg, *c) == 0) {
            *(const char **)field_of(o, cfg) = arg;
            return 0;
        }
    }
    return -1;
}

/* The integer kinds: decimal, within [o->min, o->max], stored at the field's width. */
int bl_option_int(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out)
{
    long n;
    (void)out;
    if (parse_long(arg, o->min, o->max, &n) != 0)
        return -1;
    *(int *)field_of(o, cfg) = (int)n;
    return 0;
}

int bl_option_uint(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out)
{
    long n;
    (void)out;
    if (parse_long(arg, o->min, o->max, &n) != 0)
        return -1;
    *(unsigned *)field_of(o, cfg) = (unsigned)n;
    return 0;
}

int bl_option_long(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out)
{
    long n;
    (void)out;
    if (parse_long(arg, o->min, o->max, &n) != 0)
        return -1;
    *(long *)field_of(o, cfg) = n;
    return 0;
}

int bl_option_size(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out)
{
    long n;
    (void)out;
    if (parse_long(arg, o->min, o->max, &n) != 0)
        return -1;
    *(size_t *)field_of(o, cfg) = (size_t)n;
    return 0;
}

int bl_option_seconds(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out)
{
    (void)out;
    return parse_seconds(arg, field_of(o, cfg), false);
}

int bl_option_seconds_or_never(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out)
{
    (void)out;
    return parse_seconds(arg, field_of(o, cfg), true);
}

/* File permissions in octal, 0 to 0777. */
int bl_option_octal_mode(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out)
{
    char *end;
    (void)out;
    long mode = strtol(arg, &end, 8);
    if (*arg == '\0' || *end != '\0' || mode < 0 || mode > 0777)
        return -1;
    *(int *)field_of(o, cfg) = (int)mode;
    return 0;
}

/* Appends to cfg->endpoints; refused beyond BL_MAX_ENDPOINTS. */
int bl_option_endpoint(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out)
{
    (void)o, (void)out;
    if (cfg->nendpoints == BL_MAX_ENDPOINTS)
        return -1;
    cfg->endpoints[cfg->nendpoints++] = arg;
    return 0;
}

/* A --topics-redis URL (topics_redis.h), refused here rather than at start. */
int bl_option_redis_url(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out)
{
    bl_redis_addr_t addr;
    char why[128];
    (void)out;
    if (bl_redis_addr_parse(arg, &addr, why, sizeof(why)) != 0)
        return -1;
    *(const char **)field_of(o, cfg) = arg;
    return 0;
}
