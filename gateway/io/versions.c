/* bayleaf --version: libuv. */
#include "bayleaf/io/versions.h"

#include <uv.h>

void bl_io_versions_print(FILE *out)
{
    fprintf(out, "libuv %s (built with %d.%d.%d)\n", uv_version_string(), UV_VERSION_MAJOR,
            UV_VERSION_MINOR, UV_VERSION_PATCH);
}
