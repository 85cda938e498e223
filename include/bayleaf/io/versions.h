/* The I/O library's version, for bayleaf --version. */
#ifndef BAYLEAF_IO_VERSIONS_H
#define BAYLEAF_IO_VERSIONS_H

#include <stdio.h>

/* One line: libuv, run-time and built-with. */
void bl_io_versions_print(FILE *out);

#endif
