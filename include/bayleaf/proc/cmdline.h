/* The command line: argv in, a configuration (or one error line) out. */
#ifndef BAYLEAF_PROC_CMDLINE_H
#define BAYLEAF_PROC_CMDLINE_H

#include <stdbool.h>
#include <stdio.h>

#include "bayleaf/common/config.h"

enum { BL_CONFIG_OK = 0, BL_CONFIG_EXIT = 1 };

/* Fills cfg from argv. Returns BL_CONFIG_OK, BL_CONFIG_EXIT after --help or
 * --version (printed to out), or a negative value after printing one error line
 * to err. */
int bl_config_parse(bl_config_t *cfg, int argc, char **argv, FILE *out, FILE *err);
/* Whether a TCP listener is wanted (Daphne's rule). */
bool bl_config_wants_tcp(const bl_config_t *cfg);

#endif
