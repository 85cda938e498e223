/* The command line: argv in, a configuration (or one error line) out. */
#ifndef BAYLEAF_PROC_CMDLINE_H
#define BAYLEAF_PROC_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "bayleaf/common/config.h"

enum { BL_CONFIG_OK = 0, BL_CONFIG_EXIT = 1 };

#define BL_OPTIONS_MAX 64 /* rows in the option table, at most */

typedef struct bl_option bl_option_t;

/* Applies arg (NULL for an option without a value) to cfg. Returns 0,
 * BL_CONFIG_EXIT (--help, --version: printed to out) or -1: the value is
 * refused, and the caller prints the row's error. */
typedef int (*bl_option_parse_fn)(const bl_option_t *opt, const char *arg, bl_config_t *cfg,
                                  FILE *out);

/* One command-line option: adding an option is adding one row. */
struct bl_option {
    const char *name;           /* long name, spelled as --help shows it */
    const char *alias;          /* the other spelling (hyphen or underscore), or NULL */
    char short_name;            /* 0: none */
    bool takes_value;           /* "--name VALUE" */
    bl_option_parse_fn parse;   /* one per kind of value */
    size_t field;               /* offsetof(bl_config_t, ...) the parser writes */
    long min, max;              /* integer kinds: the accepted range */
    const char *const *choices; /* bl_option_choice: the accepted words, NULL-terminated */
    const char *error;          /* the error line's text when the value is refused */
    const char *metavar;        /* the value's name in --help, or NULL */
    const char *help;           /* --help text; each '\n' starts an indented line */
};

/* Fills cfg from argv. Returns BL_CONFIG_OK, BL_CONFIG_EXIT after --help or
 * --version (printed to out), or a negative value after printing one error line
 * to err. */
int bl_config_parse(bl_config_t *cfg, int argc, char **argv, FILE *out, FILE *err);
/* Whether a TCP listener is wanted (Daphne's rule). */
bool bl_config_wants_tcp(const bl_config_t *cfg);
/* The option table (options.c), *n rows. */
const bl_option_t *bl_config_options(size_t *n);

/* The parsers the table uses, one per kind of value. */
int bl_option_help(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out);
int bl_option_version(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out);
int bl_option_string(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out);
int bl_option_clear(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out);
int bl_option_true(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out);
int bl_option_on_off(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out);
int bl_option_choice(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out);
int bl_option_int(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out);
int bl_option_uint(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out);
int bl_option_long(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out);
int bl_option_size(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out);
int bl_option_seconds(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out);
int bl_option_seconds_or_never(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out);
int bl_option_octal_mode(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out);
int bl_option_redis_url(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out);
int bl_option_endpoint(const bl_option_t *o, const char *arg, bl_config_t *cfg, FILE *out);

#endif
