/* The option table behind bl_config_parse: each parser kind's accepted and
 * refused edges, called on a row of its own; every row in --help, both
 * spellings of each name accepted; unknown options and missing values. */
#include "bayleaf/proc/cmdline.h"

#include <stddef.h>

#include "check.h"

/* Runs a parser on a made-up row over a fresh configuration. */
static int apply(bl_option_parse_fn parse, const bl_option_t *row, const char *arg,
                 bl_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    return parse(row, arg, cfg, NULL);
}

static void test_integers(void)
{
    bl_config_t cfg;
    bl_option_t row = {.field = offsetof(bl_config_t, port), .min = 0, .max = 65535};

    CHECK(apply(bl_option_int, &row, "0", &cfg) == 0 && cfg.port == 0);
    CHECK(apply(bl_option_int, &row, "65535", &cfg) == 0 && cfg.port == 65535);
    cfg.port = 7;
    const char *refused[] = {"-1", "65536", "", " ", "1x", "0x10", "1.0", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        CHECK(apply(bl_option_int, &row, refused[i], &cfg) == -1);
        CHECK_EQ_INT(cfg.port, 0); /* a refused value writes nothing */
    }

    row = (bl_option_t){.field = offsetof(bl_config_t, limit_concurrency), .min = 1, .max = 9};
    CHECK(apply(bl_option_uint, &row, "9", &cfg) == 0 && cfg.limit_concurrency == 9);
    CHECK(apply(bl_option_uint, &row, "0", &cfg) == -1);
    CHECK(apply(bl_option_uint, &row, "10", &cfg) == -1);

    row = (bl_option_t){.field = offsetof(bl_config_t, gc_threshold), .min = 0, .max = 1000000000};
    CHECK(apply(bl_option_long, &row, "1000000000", &cfg) == 0 && cfg.gc_threshold == 1000000000);
    CHECK(apply(bl_option_long, &row, "1000000001", &cfg) == -1);

    row = (bl_option_t){
        .field = offsetof(bl_config_t, max_queued_bytes), .min = 1L << 20, .max = 1L << 40};
    CHECK(apply(bl_option_size, &row, "1099511627776", &cfg) == 0 &&
          cfg.max_queued_bytes == (size_t)1 << 40);
    CHECK(apply(bl_option_size, &row, "1048576", &cfg) == 0 && cfg.max_queued_bytes == 1048576);
    CHECK(apply(bl_option_size, &row, "1048575", &cfg) == -1);
    CHECK(apply(bl_option_size, &row, "1099511627777", &cfg) == -1);
}

static void test_seconds(void)
{
    bl_config_t cfg;
    bl_option_t row = {.field = offsetof(bl_config_t, ping_interval)};

    CHECK(apply(bl_option_seconds, &row, "0", &cfg) == 0 && cfg.ping_interval == 0);
    CHECK(apply(bl_option_seconds, &row, "2.5", &cfg) == 0 && cfg.ping_interval == 2.5);
    CHECK(apply(bl_option_seconds, &row, "1e9", &cfg) == 0 && cfg.ping_interval == 1e9);
    const char *refused[] = {"-1", "-0.5", "1.1e9", "nan", "inf", "1e300", "", "1s", "x"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        CHECK(apply(bl_option_seconds, &row, refused[i], &cfg) == -1);

    /* -1 means never where the row allows it, and only -1. */
    CHECK(apply(bl_option_seconds_or_never, &row, "-1", &cfg) == 0 && cfg.ping_interval == -1);
    CHECK(apply(bl_option_seconds_or_never, &row, "3", &cfg) == 0 && cfg.ping_interval == 3);
    CHECK(apply(bl_option_seconds_or_never, &row, "-2", &cfg) == -1);
    CHECK(apply(bl_option_seconds_or_never, &row, "-0.5", &cfg) == -1);
}

static void test_words(void)
{
    bl_config_t cfg;
    bl_option_t row = {.field = offsetof(bl_config_t, ws_compression)};

    CHECK(apply(bl_option_on_off, &row, "on", &cfg) == 0 && cfg.ws_compression);
    CHECK(apply(bl_option_on_off, &row, "off", &cfg) == 0 && !cfg.ws_compression);
    CHECK(apply(bl_option_on_off, &row, "ON", &cfg) == -1);
    CHECK(apply(bl_option_on_off, &row, "yes", &cfg) == -1);
    CHECK(apply(bl_option_on_off, &row, "", &cfg) == -1);

    CHECK(apply(bl_option_true, &row, NULL, &cfg) == 0 && cfg.ws_compression);

    static const char *const choices[] = {"auto", "on", NULL};
    row = (bl_option_t){.field = offsetof(bl_config_t, lifespan), .choices = choices};
    CHECK(apply(bl_option_choice, &row, "on", &cfg) == 0 && strcmp(cfg.lifespan, "on") == 0);
    CHECK(apply(bl_option_choice, &row, "auto", &cfg) == 0);
    CHECK(apply(bl_option_choice, &row, "off", &cfg) == -1 && cfg.lifespan == NULL);
    CHECK(apply(bl_option_choice, &row, "au", &cfg) == -1);

    row = (bl_option_t){.field = offsetof(bl_config_t, server_name)};
    CHECK(apply(bl_option_string, &row, "", &cfg) == 0 && strcmp(cfg.server_name, "") == 0);
    cfg.server_name = "x";
    CHECK(bl_option_clear(&row, NULL, &cfg, NULL) == 0 && cfg.server_name == NULL);
}

static void test_octal_and_endpoints(void)
{
    bl_config_t cfg;
    bl_option_t row = {.field = offsetof(bl_config_t, unix_socket_mode)};

    CHECK(apply(bl_option_octal_mode, &row, "0", &cfg) == 0 && cfg.unix_socket_mode == 0);
    CHECK(apply(bl_option_octal_mode, &row, "660", &cfg) == 0 && cfg.unix_socket_mode == 0660);
    CHECK(apply(bl_option_octal_mode, &row, "0777", &cfg) == 0 && cfg.unix_socket_mode == 0777);
    const char *refused[] = {"1000", "8", "", "-1", "66a", "0x1"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        CHECK(apply(bl_option_octal_mode, &row, refused[i], &cfg) == -1);

    row = (bl_option_t){.field = offsetof(bl_config_t, endpoints)};
    memset(&cfg, 0, sizeof(cfg));
    for (int i = 0; i < BL_MAX_ENDPOINTS; i++)
        CHECK(bl_option_endpoint(&row, "unix:/s", &cfg, NULL) == 0);
    CHECK_EQ_INT(cfg.nendpoints, BL_MAX_ENDPOINTS);
    CHECK(bl_option_endpoint(&row, "unix:/t", &cfg, NULL) == -1);
    CHECK_EQ_INT(cfg.nendpoints, BL_MAX_ENDPOINTS);
}

/* Parses "bayleaf ARGS..." and keeps what was printed. */
static int parse_args(bl_config_t *cfg, char **argv, char **out, char **err)
{
    int argc = 0;
    size_t out_len, err_len;
    while (argv[argc] != NULL)
        argc++;
    FILE *o = open_memstream(out, &out_len);
    FILE *e = open_memstream(err, &err_len);
    int rc = bl_config_parse(cfg, argc, argv, o, e);
    fclose(o);
    fclose(e);
    return rc;
}

static void test_every_row(void)
{
    size_t n;
    const bl_option_t *rows = bl_config_options(&n);
    bl_config_t cfg;
    char *out, *err;

    CHECK(n > 40);
    CHECK(parse_args(&cfg, (char *[]){"bayleaf", "--help", NULL}, &out, &err) == BL_CONFIG_EXIT);
    for (size_t i = 0; i < n; i++) {
        const bl_option_t *r = &rows[i];
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s%s", r->name, r->takes_value ? " " : "");
        CHECK_HAS(out, flag); /* every option is in --help, with its value's name */
        if (r->short_name) {
            char both[72];
            snprintf(both, sizeof(both), "-%c, --%s", r->short_name, r->name);
            CHECK_HAS(out, both);
        }
        CHECK(r->parse != NULL && r->help != NULL && r->help[0] != '\0');
        /* A row that takes a value names it, and names what a refusal says
         * unless every value is accepted. */
        CHECK(!r->takes_value || r->metavar != NULL);
        CHECK(!r->takes_value || r->parse == bl_option_string || r->error != NULL);
        for (size_t j = 0; j < i; j++) {
            CHECK(strcmp(rows[j].name, r->name) != 0);
            CHECK(r->short_name == 0 || rows[j].short_name != r->short_name);
        }
    }
    free(out);
    free(err);

    /* The other spelling is the same option. */
    for (size_t i = 0; i < n; i++) {
        if (rows[i].alias == NULL)
            continue;
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s=1", rows[i].alias);
        CHECK(parse_args(&cfg, (char *[]){"bayleaf", flag, "a:b", NULL}, &out, &err) ==
              BL_CONFIG_OK);
        const char *field = (const char *)&cfg + rows[i].field;
        if (rows[i].parse == bl_option_size)
            CHECK_EQ_INT(*(const size_t *)field, 1);
        else
            CHECK_EQ_DBL(*(const double *)field, 1);
        free(out);
        free(err);
    }
}

static void test_usage_errors(void)
{
    bl_config_t cfg;
    char *out, *err;

    CHECK(parse_args(&cfg, (char *[]){"bayleaf", "--no-such", "a:b", NULL}, &out, &err) < 0);
    CHECK_EQ_STR(err, "bayleaf: error: unknown option: '--no-such' (see bayleaf --help)\n");
    free(out), free(err);
    CHECK(parse_args(&cfg, (char *[]){"bayleaf", "-q", "a:b", NULL}, &out, &err) < 0);
    CHECK_EQ_STR(err, "bayleaf: error: unknown option: '-q' (see bayleaf --help)\n");
    free(out), free(err);
    /* A value given to an option that takes none. */
    CHECK(parse_args(&cfg, (char *[]){"bayleaf", "--proxy-headers=1", "a:b", NULL}, &out, &err) <
          0);
    CHECK_EQ_STR(err, "bayleaf: error: unknown option: '--proxy-headers=1' (see bayleaf --help)\n");
    free(out), free(err);

    CHECK(parse_args(&cfg, (char *[]){"bayleaf", "a:b", "--fd", NULL}, &out, &err) < 0);
    CHECK_EQ_STR(err, "bayleaf: error: option needs a value: '--fd' (see bayleaf --help)\n");
    free(out), free(err);
    CHECK(parse_args(&cfg, (char *[]){"bayleaf", "a:b", "-e", NULL}, &out, &err) < 0);
    CHECK_EQ_STR(err, "bayleaf: error: option needs a value: '-e' (see bayleaf --help)\n");
    free(out), free(err);

    /* A refused value: the row's error text and the value. */
    CHECK(parse_args(&cfg, (char *[]){"bayleaf", "--workers", "0", "a:b", NULL}, &out, &err) < 0);
    CHECK_EQ_STR(err, "bayleaf: error: invalid --workers (1 to 1024): '0' (see bayleaf --help)\n");
    free(out), free(err);
}

int main(void)
{
    test_integers();
    test_seconds();
    test_words();
    test_octal_and_endpoints();
    test_every_row();
    test_usage_errors();
    return check_report();
}
