/* The embedded interpreter's life: start, run bayleaf.runner.main, finalize. */
#ifndef BAYLEAF_PY_EMBED_H
#define BAYLEAF_PY_EMBED_H

#include "bayleaf/common/config.h"
#include "bayleaf/bridge/io_control.h"

#include <stdio.h>

/* bayleaf --version: one line naming the embedded Python (run-time and
 * built-with version, its interpreter, the libpython loaded). */
void bl_python_versions_print(FILE *out);

/* Returns the process exit status. */
int bl_python_run(const bl_io_control_t *io, const bl_config_t *cfg, int argc, char **argv);

#endif
