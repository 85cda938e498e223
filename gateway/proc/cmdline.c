/* Command-line parsing: a getopt loop that applies the rows of the option
 * table (options.c). Both underscore and hyphen spellings of Daphne's
 * multi-word flags are accepted. */
#include "bayleaf/proc/cmdline.h"
#include "bayleaf/proc/suggest.h"
#include "bayleaf/bridge/bridge.h"
#include "bayleaf/io/topics.h"
#include "bayleaf/io/topics_redis.h"
#include "bayleaf/proto/proxy.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

#define OPT_LONG_ONLY 256 /* getopt value of row i without a short name: 256 + i */

static int bad(FILE *err, const char *what, const char *value)
{
    fprintf(err, "bayleaf: error: %s: '%s' (see bayleaf --help)\n", what, value);
    return -EINVAL;
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
    cfg->wsgi_threads = 1;
    cfg->interface = "auto";
    cfg->topics_name_max = BL_TOPICS_NAME_MAX;
    cfg->topics_per_connection = BL_TOPICS_PER_CONN_MAX;
    cfg->topics_retained_bytes = BL_TOPICS_RETAINED_BYTES;
    cfg->topics_queue_bytes = BL_TOPICS_QUEUE_BYTES;
    cfg->topics_prefix = BL_TOPICS_REDIS_PREFIX;
}

/* getopt's value for row i: its short name, else OPT_LONG_ONLY + i. */
static int option_value(const bl_option_t *rows, size_t i)
{
    return rows[i].short_name ? rows[i].short_name : OPT_LONG_ONLY + (int)i;
}

static const bl_option_t *option_by_value(int c)
{
    size_t n;
    const bl_option_t *rows = bl_config_options(&n);
    for (size_t i = 0; i < n; i++)
        if (option_value(rows, i) == c)
            return &rows[i];
    return NULL;
}

/* getopt_long's tables, built from the rows: both spellings of each name. */
static void getopt_tables(struct option *longopts, char *shortopts)
{
    size_t nrows, n = 0, s = 0;
    const bl_option_t *rows = bl_config_options(&nrows);
    shortopts[s++] = ':'; /* a missing value returns ':', not '?' */
    for (size_t i = 0; i < nrows; i++) {
        const bl_option_t *o = &rows[i];
        int has_arg = o->takes_value ? required_argument : no_argument;
        longopts[n++] = (struct option){o->name, has_arg, NULL, option_value(rows, i)};
        if (o->alias != NULL)
            longopts[n++] = (struct option){o->alias, has_arg, NULL, option_value(rows, i)};
        if (o->short_name) {
            shortopts[s++] = o->short_name;
            if (o->takes_value)
                shortopts[s++] = ':';
        }
    }
    longopts[n] = (struct option){NULL, 0, NULL, 0};
    shortopts[s] = '\0';
}

/* getopt found no such option, or an option given a value it takes none of. */
static int bad_option(FILE *err, const char *arg)
{
    if (optopt != 0 && optopt < OPT_LONG_ONLY) {
        char flag[3] = {'-', (char)optopt, '\0'};
        return bad(err, "unknown option", flag);
    }
    char hint[320];
    if (bl_option_suggest(arg, hint, sizeof(hint))) {
        bool asks = hint[strlen(hint) - 1] == '?'; /* "did you mean --bind HOST?" */
        fprintf(err, "bayleaf: error: unknown option: '%.*s' (%s%s see bayleaf --help)\n",
                (int)strcspn(arg, "="), arg, hint, asks ? "" : ";");
        return -EINVAL;
    }
    return bad(err, "unknown option", arg);
}

static int missing_value(FILE *err, const char *arg)
{
    if (strncmp(arg, "--", 2) != 0 && optopt != 0 && optopt < OPT_LONG_ONLY) {
        char flag[3] = {'-', (char)optopt, '\0'};
        return bad(err, "option needs a value", flag);
    }
    return bad(err, "option needs a value", arg);
}

int bl_config_parse(bl_config_t *cfg, int argc, char **argv, FILE *out, FILE *err)
{
    struct option longopts[2 * BL_OPTIONS_MAX + 1];
    char shortopts[3 * BL_OPTIONS_MAX + 2];
    int c;

    set_defaults(cfg);
    getopt_tables(longopts, shortopts);
    opterr = 0;
    optind = 0; /* 0, not 1: also resets glibc's position inside "-abc" groups */
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (c == ':')
            return missing_value(err, argv[optind - 1]);
        const bl_option_t *o = c == '?' ? NULL : option_by_value(c);
        if (o == NULL)
            return bad_option(err, argv[optind - 1]);
        int rc = o->parse(o, o->takes_value ? optarg : NULL, cfg, out);
        if (rc < 0) {
            if (o->parse == bl_option_redis_url) { /* its password stays out of the line */
                char shown[512];
                bl_redis_url_redact(optarg, shown, sizeof(shown));
                return bad(err, o->error, shown);
            }
            return bad(err, o->error, optarg);
        }
        if (rc == BL_CONFIG_EXIT)
            return rc;
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
