/* What to say about an unknown option: the Bayleaf spelling of another
 * server's option (uvicorn's --host, --log-level, ...), else the closest name. */
#ifndef BAYLEAF_PROC_SUGGEST_H
#define BAYLEAF_PROC_SUGGEST_H

#include <stddef.h>

/* arg is the unknown "--name" or "--name=value" as given. Writes a hint
 * ("did you mean --bind?") to out and returns 1, or returns 0: none. */
int bl_option_suggest(const char *arg, char *out, size_t cap);

#endif
