/* The versions of the codec libraries, for bayleaf --version. */
#ifndef BAYLEAF_PROTO_VERSIONS_H
#define BAYLEAF_PROTO_VERSIONS_H

#include <stdio.h>

/* One line each: wslay, llhttp, zlib, OpenSSL (run-time version where the
 * library tells it, and the headers built with). */
void bl_proto_versions_print(FILE *out);

#endif
