/* libFuzzer target: bytes -> bl_http_parser_feed, as gateway/io/conn.c drives it
 * (resume after each message, stop at an upgrade or an error).
 *
 * Input: byte 0 picks the limits, byte 1 seeds the split points, the rest is
 * what a client sent. Every input is parsed twice, in one piece and in random
 * pieces: a parser must not depend on how TCP cut the stream, so both runs
 * must report the same heads, bodies and outcome. Heads are checked for sane
 * offsets and for what strict parsing promises (no CR, LF or NUL in values,
 * lower-case names, trimmed values, limits held). */
#include "bayleaf/proto/http_parser.h"
#include "fuzz_common.h"

#include <stdbool.h>
#include <string.h>

typedef struct {
    bl_http_limits_t limits;
    const char *chunk_start, *chunk_end; /* the bytes of the current feed */
    uint64_t hash;                       /* heads and body bytes, in order */
    unsigned heads, completes;
    uint64_t body_bytes;
    int outcome; /* BL_HTTP_OK (all parsed), _UPGRADE or _ERROR */
    int error_status;
    int finish; /* bl_http_parser_finish */
    size_t stop_at;
} run_t;

static bool span_ok(const bl_head_t *h, uint32_t off, uint32_t len)
{
    return (uint64_t)off + len <= h->len;
}

static void check_head(run_t *r, const bl_head_t *h)
{
    FUZZ_CHECK(h->method != NULL);
    FUZZ_CHECK(h->http_major == 1 && h->http_minor <= 1);
    FUZZ_CHECK(h->len <= h->cap);
    FUZZ_CHECK(h->len == 0 || h->buf != NULL);
    FUZZ_CHECK(h->len <= r->limits.max_head);
    FUZZ_CHECK(h->url_len <= h->len && h->url_len <= r->limits.max_url);
    FUZZ_CHECK(span_ok(h, h->path_off, h->path_len) && h->path_len > 0);
    FUZZ_CHECK(span_ok(h, h->query_off, h->query_len));
    FUZZ_CHECK(h->nheaders <= r->limits.max_headers && h->nheaders <= h->headers_cap);
    FUZZ_CHECK(!h->websocket || bl_head_find(h, "upgrade", &(size_t){0}) != NULL);
    for (uint32_t i = 0; i < h->nheaders; i++) {
        const bl_header_t *hd = &h->headers[i];
        FUZZ_CHECK(span_ok(h, hd->name_off, hd->name_len) && hd->name_len > 0);
        FUZZ_CHECK(span_ok(h, hd->value_off, hd->value_len));
        const char *name = h->buf + hd->name_off, *value = h->buf + hd->value_off;
        for (uint32_t k = 0; k < hd->name_len; k++) {
            unsigned char c = (unsigned char)name[k];
            /* RFC 9110 5.1: a token; stored lower-case */
            FUZZ_CHECK(c > 0x20 && c < 0x7f && !(c >= 'A' && c <= 'Z') && c != ':');
        }
        for (uint32_t k = 0; k < hd->value_len; k++) {
            char c = value[k];
            /* RFC 9110 5.5: CR, LF and NUL are never part of a value */
            FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0');
        }
        if (hd->value_len > 0) {
            FUZZ_CHECK(value[hd->value_len - 1] != ' ' && value[hd->value_len - 1] != '\t');
            FUZZ_CHECK(value[0] != ' ' && value[0] != '\t');
        }
        /* bl_head_find returns the first header of that name */
        char lname[256];
        if (hd->name_len < sizeof(lname)) {
            memcpy(lname, name, hd->name_len);
            lname[hd->name_len] = '\0';
            size_t flen = 0;
            const char *first = bl_head_find(h, lname, &flen);
            FUZZ_CHECK(first != NULL && first <= value);
        }
    }

    uint8_t flags[6] = {h->http_major,      h->http_minor, h->keep_alive,
                        h->expect_continue, h->upgrade,    h->websocket};
    r->hash = fuzz_hash(r->hash, h->method, strlen(h->method));
    r->hash = fuzz_hash(r->hash, flags, sizeof(flags));
    r->hash = fuzz_hash(r->hash, h->buf, h->url_len);
    r->hash = fuzz_hash(r->hash, h->buf + h->path_off, h->path_len);
    r->hash = fuzz_hash(r->hash, h->buf + h->query_off, h->query_len);
    for (uint32_t i = 0; i < h->nheaders; i++) {
        const bl_header_t *hd = &h->headers[i];
        r->hash = fuzz_hash(r->hash, h->buf + hd->name_off, hd->name_len);
        r->hash = fuzz_hash(r->hash, ":", 1);
        r->hash = fuzz_hash(r->hash, h->buf + hd->value_off, hd->value_len);
        r->hash = fuzz_hash(r->hash, "\n", 1);
    }
}

static int on_head(bl_http_parser_t *p, bl_head_t *head)
{
    run_t *r = p->data;
    FUZZ_CHECK(head != NULL);
    check_head(r, head);
    r->heads++;
    bl_head_free(head); /* the callee owns it */
    return 0;
}

static int on_body(bl_http_parser_t *p, const char *at, size_t len)
{
    run_t *r = p->data;
    FUZZ_CHECK(at >= r->chunk_start && len <= (size_t)(r->chunk_end - at));
    r->hash = fuzz_hash(r->hash, at, len);
    r->body_bytes += len;
    return 0;
}

static int on_complete(bl_http_parser_t *p)
{
    run_t *r = p->data;
    r->completes++;
    r->hash = fuzz_hash(r->hash, "$", 1);
    return 0;
}

static const bl_http_handler_t handler = {on_head, on_body, on_complete};

static void parse(run_t *r, const char *data, size_t len, bool whole, uint32_t seed)
{
    bl_http_parser_t p;
    fuzz_rng_t rng;
    size_t off = 0;

    fuzz_rng_init(&rng, seed);
    bl_http_parser_init(&p, &handler, &r->limits, r);
    r->outcome = BL_HTTP_OK;
    while (off < len && r->outcome == BL_HTTP_OK) {
        size_t n = whole ? len - off : fuzz_piece(&rng, len - off);
        size_t used_total = 0;
        int stalls = 0;
        while (used_total < n) {
            const char *at = data + off + used_total;
            size_t left = n - used_total, used = SIZE_MAX;
            r->chunk_start = at;
            r->chunk_end = at + left;
            int rc = bl_http_parser_feed(&p, at, left, &used);
            FUZZ_CHECK(used <= left);
            used_total += used;
            if (rc == BL_HTTP_ERROR || rc == BL_HTTP_UPGRADE) {
                FUZZ_CHECK(rc != BL_HTTP_ERROR || p.error_status >= 400);
                r->outcome = rc;
                r->error_status = rc == BL_HTTP_ERROR ? p.error_status : 0;
                r->stop_at = off + used_total;
                break;
            }
            if (rc == BL_HTTP_OK) {
                FUZZ_CHECK(used == left); /* OK means everything was taken */
            } else {
                FUZZ_CHECK(rc == BL_HTTP_PAUSED);
                FUZZ_CHECK(bl_http_parser_idle(&p)); /* paused between messages */
                bl_http_parser_resume(&p);
            }
            /* A pause right after another without progress would loop forever. */
            stalls = used == 0 ? stalls + 1 : 0;
            FUZZ_CHECK(stalls < 3);
        }
        off += n;
    }
    r->finish = bl_http_parser_finish(&p);
    bl_http_parser_free(&p);
}

static bool limit_status(int status)
{
    return status == 414 || status == 431;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t heads[] = {64, 512, 4096, 64 * 1024};
    static const size_t urls[] = {8, 100, 2048, 16 * 1024};
    static const uint32_t counts[] = {1, 4, 16, 128};
    if (size < 2)
        return 0;
    bl_http_limits_t limits = {heads[data[0] & 3], urls[(data[0] >> 2) & 3],
                               counts[(data[0] >> 4) & 3]};
    uint32_t seed = data[1];
    const char *req = (const char *)data + 2;
    size_t len = size - 2;

    run_t whole = {.limits = limits, .hash = FUZZ_HASH_INIT};
    run_t split = {.limits = limits, .hash = FUZZ_HASH_INIT};
    parse(&whole, req, len, true, seed);
    parse(&split, req, len, false, seed);

    /* The same stream gives the same result however it was cut, except that a
     * size limit may trip before a syntax error further on (or after it). */
    FUZZ_CHECK(whole.outcome == split.outcome);
    if (whole.outcome == BL_HTTP_ERROR && whole.error_status != split.error_status)
        FUZZ_CHECK(limit_status(whole.error_status) || limit_status(split.error_status));
    if (whole.outcome == BL_HTTP_UPGRADE)
        FUZZ_CHECK(whole.stop_at == split.stop_at);
    FUZZ_CHECK(whole.heads == split.heads);
    FUZZ_CHECK(whole.completes == split.completes);
    FUZZ_CHECK(whole.body_bytes == split.body_bytes);
    FUZZ_CHECK(whole.hash == split.hash);
    if (whole.outcome == BL_HTTP_OK)
        FUZZ_CHECK(whole.finish == split.finish);
    return 0;
}
