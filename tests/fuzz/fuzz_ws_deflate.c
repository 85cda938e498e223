/* libFuzzer target: permessage-deflate (gateway/proto/ws_deflate.c, RFC 7692).
 *
 * Input: byte 0 picks our configuration and the inflate limit; then a
 * Sec-WebSocket-Extensions value up to the first '\n'; then messages, each a
 * length byte and that many bytes. Checked: negotiation only agrees to
 * in-range parameters and the response names them; inflating arbitrary bytes
 * never exceeds the limit (decompression bombs stop at it); whatever we
 * compress inflates back to the same bytes, message after message (context
 * takeover included). */
#include "bayleaf/proto/ws_deflate.h"
#include "fuzz_common.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

static void check_params(const bl_ws_deflate_params_t *p, const bl_ws_deflate_config_t *cfg)
{
    char buf[BL_WS_DEFLATE_RESPONSE_MAX];
    FUZZ_CHECK(p->server_bits >= 9 && p->server_bits <= 15 && p->server_bits <= cfg->window_bits);
    FUZZ_CHECK(p->client_bits >= 8 && p->client_bits <= 15);
    if (!cfg->context_takeover)
        FUZZ_CHECK(p->server_no_context_takeover && p->client_no_context_takeover);
    size_t n = bl_ws_deflate_response(p, buf, sizeof(buf));
    FUZZ_CHECK(n < sizeof(buf) && strlen(buf) == n);
    FUZZ_CHECK(strncmp(buf, "permessage-deflate", 18) == 0);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(buf[i] >= 0x20 && buf[i] < 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t limits[] = {0, 1, 1024, 65536};
    if (size < 1)
        return 0;
    bl_ws_deflate_config_t cfg = {.context_takeover = (data[0] & 1) != 0,
                                  .window_bits = (uint8_t)(9 + (data[0] >> 1) % 7)};
    uint64_t limit = limits[(data[0] >> 4) & 3];
    const uint8_t *p = data + 1, *end = data + size;
    const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
    size_t offers_len = nl ? (size_t)(nl - p) : (size_t)(end - p);

    bl_ws_deflate_params_t params;
    memset(&params, 0, sizeof(params));
    if (bl_ws_deflate_negotiate((const char *)p, offers_len, &cfg, &params) == 1) {
        check_params(&params, &cfg);
    } else {
        params = (bl_ws_deflate_params_t){true, true, cfg.window_bits, 15, false, false};
    }
    p += offers_len + (nl != NULL);

    /* As the server: inflate what a client sent. */
    bl_ws_deflate_t *srv = NULL, *cli = NULL;
    FUZZ_CHECK(bl_ws_deflate_new(&srv, &params, 0) == 0);
    /* A client whose inflater takes any window: it reads what srv compresses. */
    bl_ws_deflate_params_t cp = params;
    cp.client_bits = 15;
    cp.client_no_context_takeover = params.server_no_context_takeover;
    FUZZ_CHECK(bl_ws_deflate_new(&cli, &cp, 0) == 0);

    bool failed = false; /* the connection would be closed: no more inflating */
    while (p < end) {
        size_t n = *p++;
        if (n > (size_t)(end - p))
            n = (size_t)(end - p);
        const uint8_t *out = NULL;
        size_t out_len = 0;
        int r = 0;
        if (!failed) {
            r = bl_ws_deflate_inflate(srv, p, n, limit, &out, &out_len);
            FUZZ_CHECK(r == 0 || r == -EMSGSIZE || r == -EBADMSG);
            failed = r != 0;
        }
        if (r == 0 && out != NULL) {
            FUZZ_CHECK(limit == 0 || out_len <= limit);
        }

        /* Round trip: srv compresses, cli inflates, same bytes. */
        const uint8_t *z = NULL;
        size_t zlen = 0;
        FUZZ_CHECK(bl_ws_deflate_compress(srv, p, n, &z, &zlen) == 0);
        if (z != NULL) {
            uint8_t *copy = malloc(zlen ? zlen : 1);
            FUZZ_CHECK(copy != NULL);
            memcpy(copy, z, zlen);
            r = bl_ws_deflate_inflate(cli, copy, zlen, 0, &out, &out_len);
            FUZZ_CHECK(r == 0);
            FUZZ_CHECK(out_len == n && (n == 0 || memcmp(out, p, n) == 0));
            free(copy);
        }
        p += n;
    }
    bl_ws_deflate_free(srv);
    bl_ws_deflate_free(cli);
    return 0;
}
