/* bayleaf --version: the codec libraries this layer links. */
#include "bayleaf/proto/versions.h"

#include <llhttp.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <string.h>
#include <wslay/wslay.h>
#include <zlib.h>

void bl_proto_versions_print(FILE *out)
{
    /* wslay and llhttp have no run-time version call (llhttp is compiled in). */
    fprintf(out, "wslay %s (headers)\n", WSLAY_VERSION);
    fprintf(out, "llhttp %d.%d.%d (compiled in)\n", LLHTTP_VERSION_MAJOR, LLHTTP_VERSION_MINOR,
            LLHTTP_VERSION_PATCH);
    fprintf(out, "zlib %s (built with %s)\n", zlibVersion(), ZLIB_VERSION);
    /* "OpenSSL 3.0.x 1 Sep 2023": the name is already in the text. */
    const char *ssl = OpenSSL_version(OPENSSL_VERSION);
    if (strncmp(ssl, "OpenSSL ", 8) == 0)
        ssl += 8;
    fprintf(out, "OpenSSL %s (built with %s)\n", ssl, OPENSSL_VERSION_TEXT);
}
