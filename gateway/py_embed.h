/* The embedded interpreter's life: start, run bayleaf.runner.main, finalize. */
#ifndef BAYLEAF_PY_EMBED_H
#define BAYLEAF_PY_EMBED_H

#include "bayleaf/config.h"
#include "bayleaf/server.h"

/* Returns the process exit status. */
int bl_python_run(bl_server_t *server, const bl_config_t *cfg, int argc, char **argv);

#endif
