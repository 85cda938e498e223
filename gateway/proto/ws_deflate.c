/* permessage-deflate (see ws_deflate.h). Raw DEFLATE through zlib; each
 * message ends with a sync flush whose 00 00 ff ff is left off the wire
 * (RFC 7692 7.2.1) and put back before inflating (7.2.2). */
#include "bayleaf/proto/ws_deflate.h"
#include "bayleaf/proto/tokens.h"
#include "bayleaf/common/buf.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

/* Level 3 against zlib's default 6, on a 2 KiB JSON ticker: each message
 * alone, 4 % bigger for 30 % less CPU; with context takeover, 11 % bigger for
 * half the CPU. */
#define LEVEL 3
/* The thread's compressors are few: memLevel 8 (zlib's default). */
#define SHARED_MEM_LEVEL 8
/* Per-connection compressors: 4 gives up ~1 % of ratio for a hash table and
 * pending buffer of 8 KiB instead of 128 KiB. */
#define CONN_MEM_LEVEL 4
/* Thread buffers larger than this are not kept between messages. */
#define KEEP_BUF (256 * 1024)

static const uint8_t TAIL[4] = {0x00, 0x00, 0xff, 0xff};

/* ---- negotiation ------------------------------------------------------------ */

typedef struct {
    const char *p, *end;
} cursor_t;

static void skip_ows(cursor_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

static bool take_token(cursor_t *c, const char **tok, size_t *len)
{
    const char *s = c->p;
    while (c->p < c->end && bl_token_char((unsigned char)*c->p))
        c->p++;
    *tok = s;
    *len = (size_t)(c->p - s);
    return *len > 0;
}

/* A token or quoted-string value, unescaped into buf. A value too long for
 * buf is kept cut (it can't be valid anyway) with *len = cap. */
static bool take_value(cursor_t *c, char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    if (c->p < c->end && *c->p == '"') {
        c->p++;
        for (;;) {
            if (c->p >= c->end)
                return false; /* unterminated */
            char ch = *c->p++;
            if (ch == '"')
                break;
            if (ch == '\\') {
                if (c->p >= c->end)
                    return false;
                ch = *c->p++;
            }
            if (n < cap)
                buf[n++] = ch;
            else
                n = cap;
        }
        *len = n;
        return true;
    }
    const char *tok;
    size_t tlen;
    if (!take_token(c, &tok, &tlen))
        return false;
    n = tlen < cap ? tlen : cap;
    memcpy(buf, tok, n);
    *len = tlen < cap ? tlen : cap;
    return true;
}

static bool token_is(const char *tok, size_t len, const char *name)
{
    return len == strlen(name) && strncasecmp(tok, name, len) == 0;
}

/* RFC 7692 7.1.2: a decimal 8..15 without leading zeros; -1 otherwise. */
static int window_bits(const char *v, size_t len)
{
    if (len == 1 && (v[0] == '8' || v[0] == '9'))
        return v[0] - '0';
    if (len == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
        return 10 + (v[1] - '0');
    return -1;
}

enum { P_SNCT = 1, P_CNCT = 2, P_SBITS = 4, P_CBITS = 8 };

typedef struct {
    unsigned seen;
    int server_bits; /* -1: absent */
    int client_bits; /* -1: absent, 0: present without a value */
    bool bad;        /* an offer we must not accept */
} offer_t;

static void offer_param(offer_t *o, const char *name, size_t nlen, bool has_value, const char *v,
                        size_t vlen)
{
    unsigned bit;
    if (token_is(name, nlen, "server_no_context_takeover"))
        bit = P_SNCT;
    else if (token_is(name, nlen, "client_no_context_takeover"))
        bit = P_CNCT;
    else if (token_is(name, nlen, "server_max_window_bits"))
        bit = P_SBITS;
    else if (token_is(name, nlen, "client_max_window_bits"))
        bit = P_CBITS;
    else
        bit = 0;
    if (bit == 0 || (o->seen & bit)) {
        o->bad = true; /* unknown or repeated (7.1) */
        return;
    }
    o->seen |= bit;
    if (bit == P_SNCT || bit == P_CNCT) {
        o->bad |= has_value;
    } else if (bit == P_SBITS) {
        o->server_bits = has_value ? window_bits(v, vlen) : -1;
        o->bad |= o->server_bits < 0;
    } else {
        o->client_bits = has_value ? window_bits(v, vlen) : 0;
        o->bad |= o->client_bits < 0;
    }
}

/* One list element (bl_token_next_quoted: no comma outside quotes): 1 an
 * acceptable permessage-deflate offer (*o filled), 0 something else, -1
 * malformed. */
static int parse_element(cursor_t *c, offer_t *o)
{
    const char *name, *pname;
    size_t nlen, plen, vlen = 0;
    char v[8];

    if (!take_token(c, &name, &nlen))
        return -1;
    bool ours = token_is(name, nlen, "permessage-deflate");
    *o = (offer_t){0, -1, -1, false};
    for (;;) {
        skip_ows(c);
        if (c->p >= c->end || *c->p == ',')
            break;
        if (*c->p != ';')
            return -1;
        c->p++;
        skip_ows(c);
        if (!take_token(c, &pname, &plen))
            return -1;
        skip_ows(c);
        bool has_value = c->p < c->end && *c->p == '=';
        if (has_value) {
            c->p++;
            skip_ows(c);
            if (!take_value(c, v, sizeof(v), &vlen))
                return -1;
        }
        offer_param(o, pname, plen, has_value, v, vlen);
    }
    return ours && !o->bad ? 1 : 0;
}

/* The agreement for an acceptable offer; false if we can't honour it. */
static bool agree(const offer_t *o, const bl_ws_deflate_config_t *cfg, bl_ws_deflate_params_t *p)
{
    int own = cfg->window_bits < 9 ? 9 : cfg->window_bits > 15 ? 15 : cfg->window_bits;
    memset(p, 0, sizeof(*p));
    if (o->server_bits >= 0) {
        /* zlib has no raw 256-byte window: a client asking for 8 is declined. */
        if (o->server_bits < 9)
            return false;
        p->server_bits = (uint8_t)(o->server_bits < own ? o->server_bits : own);
        p->send_server_bits = true;
    } else {
        p->server_bits = (uint8_t)own;
        p->send_server_bits = own < 15; /* 7.1.2.1: may be sent unasked */
    }
    /* 7.1.1.1 and 7.1.1.2: the server may declare both, offered or not. */
    p->server_no_context_takeover = (o->seen & P_SNCT) || !cfg->context_takeover;
    p->client_no_context_takeover = (o->seen & P_CNCT) || !cfg->context_takeover;
    int client = o->client_bits > 0 ? o->client_bits : 15;
    if (o->client_bits >= 0 && !p->client_no_context_takeover) {
        /* We keep the client's window: ask for no more than ours (7.1.2.2). */
        p->client_bits = (uint8_t)(client < own ? client : own);
        p->send_client_bits = true;
    } else {
        /* Absent, the client may use 32 KiB (7.1.2.2); without takeover the
         * thread's inflater has that window anyway. */
        p->client_bits = (uint8_t)client;
    }
    return true;
}

int bl_ws_deflate_negotiate(const char *offers, size_t len, const bl_ws_deflate_config_t *cfg,
                            bl_ws_deflate_params_t *out)
{
    size_t pos = 0, elen;
    const char *e;
    offer_t o;
    if (offers == NULL)
        return 0;
    while (bl_token_next_quoted(offers, len, &pos, &e, &elen)) {
        cursor_t c = {e, e + elen};
        if (parse_element(&c, &o) == 1 && agree(&o, cfg, out))
            return 1;
    }
    return 0;
}

size_t bl_ws_deflate_response(const bl_ws_deflate_params_t *p, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "permessage-deflate%s%s",
                     p->server_no_context_takeover ? "; server_no_context_takeover" : "",
                     p->client_no_context_takeover ? "; client_no_context_takeover" : "");
    if (p->send_server_bits)
        n += snprintf(buf + n, cap - (size_t)n, "; server_max_window_bits=%u", p->server_bits);
    if (p->send_client_bits)
        n += snprintf(buf + n, cap - (size_t)n, "; client_max_window_bits=%u", p->client_bits);
    return (size_t)n;
}

/* ---- zlib memory, counted ---------------------------------------------------- */

/* Each block carries its size ahead of it so frees can be counted too. */
#define ZHDR 16

static voidpf zalloc_counted(voidpf opaque, uInt items, uInt size)
{
    size_t n = (size_t)items * size;
    uint8_t *p = malloc(n + ZHDR);
    if (p == NULL)
        return NULL;
    memcpy(p, &n, sizeof(n));
    *(size_t *)opaque += n;
    return p + ZHDR;
}

static void zfree_counted(voidpf opaque, voidpf ptr)
{
    size_t n;
    uint8_t *p = (uint8_t *)ptr - ZHDR;
    memcpy(&n, p, sizeof(n));
    *(size_t *)opaque -= n;
    free(p);
}

static int deflate_init(z_stream *z, size_t *counter, int bits, int mem_level)
{
    memset(z, 0, sizeof(*z));
    z->zalloc = zalloc_counted;
    z->zfree = zfree_counted;
    z->opaque = counter;
    return deflateInit2(z, LEVEL, Z_DEFLATED, -bits, mem_level, Z_DEFAULT_STRATEGY) == Z_OK
               ? 0
               : -ENOMEM;
}

static int inflate_init(z_stream *z, size_t *counter, int bits)
{
    memset(z, 0, sizeof(*z));
    z->zalloc = zalloc_counted;
    z->zfree = zfree_counted;
    z->opaque = counter;
    return inflateInit2(z, -bits) == Z_OK ? 0 : -ENOMEM;
}

/* ---- the thread's shared streams --------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} buf_t;

/* The last message compressed without context, for fan-out. */
typedef struct {
    buf_t in;
    size_t len;
    uint8_t bits;
    bool plain; /* it went uncompressed */
    bool valid;
} last_t;

/* Messages longer than this are not remembered (a copy per message). */
#define LAST_MAX (64 * 1024)

typedef struct {
    size_t zbytes;
    last_t last;
    z_stream def[7];   /* by window bits, 9..15 */
    uint8_t def_ready; /* bit per window */
    z_stream inf;      /* 15 bits: takes any client window */
    bool inf_ready;
    buf_t dout, iout;
} shared_t;

static __thread shared_t *tls_shared;
static pthread_key_t shared_key;
static pthread_once_t shared_once = PTHREAD_ONCE_INIT;

static void shared_destroy(void *arg)
{
    shared_t *s = arg;
    if (s == NULL)
        return;
    for (int i = 0; i < 7; i++) {
        if (s->def_ready & (1u << i))
            deflateEnd(&s->def[i]);
    }
    if (s->inf_ready)
        inflateEnd(&s->inf);
    free(s->dout.p);
    free(s->iout.p);
    free(s->last.in.p);
    free(s);
}

static void shared_key_make(void)
{
    pthread_key_create(&shared_key, shared_destroy);
}

static shared_t *shared(void)
{
    if (tls_shared != NULL)
        return tls_shared;
    pthread_once(&shared_once, shared_key_make);
    shared_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    pthread_setspecific(shared_key, s);
    tls_shared = s;
    return s;
}

void bl_ws_deflate_thread_release(void)
{
    if (tls_shared == NULL)
        return;
    pthread_setspecific(shared_key, NULL);
    shared_destroy(tls_shared);
    tls_shared = NULL;
}

size_t bl_ws_deflate_thread_bytes(void)
{
    shared_t *s = tls_shared;
    return s == NULL ? 0 : sizeof(*s) + s->zbytes + s->dout.cap + s->iout.cap + s->last.in.cap;
}

static int buf_reserve(buf_t *b, size_t more)
{
    if (more <= b->cap - b->len)
        return 0;
    if (more > SIZE_MAX - b->len)
        return -ENOMEM;
    return bl_buf_reserve(&b->p, &b->cap, b->len + more, 1024);
}

/* After a message: big buffers go back to the allocator. */
static void buf_trim(buf_t *b)
{
    if (b->cap > KEEP_BUF) {
        free(b->p);
        b->p = NULL;
        b->cap = 0;
    }
    b->len = 0;
}

/* ---- per connection ------------------------------------------------------------ */

struct bl_ws_deflate_s {
    bl_ws_deflate_params_t p;
    size_t threshold;
    size_t zbytes; /* zlib memory of the two below */
    z_stream *def; /* context takeover only, created on first use */
    z_stream *inf;
};

int bl_ws_deflate_new(bl_ws_deflate_t **out, const bl_ws_deflate_params_t *p, size_t threshold)
{
    bl_ws_deflate_t *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return -ENOMEM;
    d->p = *p;
    d->threshold = threshold;
    *out = d;
    return 0;
}

void bl_ws_deflate_free(bl_ws_deflate_t *d)
{
    if (d == NULL)
        return;
    if (d->def != NULL) {
        deflateEnd(d->def);
        free(d->def);
    }
    if (d->inf != NULL) {
        inflateEnd(d->inf);
        free(d->inf);
    }
    free(d);
}

size_t bl_ws_deflate_conn_bytes(const bl_ws_deflate_t *d)
{
    return d->zbytes + (d->def ? sizeof(z_stream) : 0) + (d->inf ? sizeof(z_stream) : 0);
}

/* The compressor for this connection's next message, reset if it keeps no
 * context. NULL: out of memory. */
static z_stream *compressor(bl_ws_deflate_t *d, shared_t *s)
{
    if (!d->p.server_no_context_takeover) {
        if (d->def == NULL) {
            z_stream *z = malloc(sizeof(*z));
            if (z == NULL || deflate_init(z, &d->zbytes, d->p.server_bits, CONN_MEM_LEVEL) != 0) {
                free(z);
                return NULL;
            }
            d->def = z;
        }
        return d->def;
    }
    int i = d->p.server_bits - 9;
    z_stream *z = &s->def[i];
    if (!(s->def_ready & (1u << i))) {
        if (deflate_init(z, &s->zbytes, d->p.server_bits, SHARED_MEM_LEVEL) != 0)
            return NULL;
        s->def_ready |= (uint8_t)(1u << i);
    } else {
        deflateReset(z);
    }
    return z;
}

/* Compresses in[0..len) into b, sync-flushed, the trailing 00 00 ff ff cut. */
static int deflate_into(z_stream *z, const uint8_t *in, size_t len, buf_t *b)
{
    size_t left = len;
    z->next_in = (Bytef *)in;
    b->len = 0;
    for (;;) {
        /* zlib counts in uInt: feed huge messages in slices. */
        size_t slice = left > (1u << 30) ? (1u << 30) : left;
        z->avail_in = (uInt)slice;
        left -= slice;
        int flush = left == 0 ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        do {
            size_t room = slice / 2 + 64;
            if (room > (1u << 30))
                room = 1u << 30;
            if (buf_reserve(b, room) != 0)
                return -ENOMEM;
            z->next_out = b->p + b->len;
            z->avail_out = (uInt)(b->cap - b->len > (1u << 30) ? (1u << 30) : b->cap - b->len);
            uInt before = z->avail_out;
            int r = deflate(z, flush);
            b->len += before - z->avail_out;
            if (r != Z_OK && r != Z_BUF_ERROR)
                return -ENOMEM; /* only a broken stream gets here */
        } while (z->avail_out == 0 || z->avail_in > 0);
        if (left == 0)
            break;
    }
    /* A sync flush always ends with the empty stored block's 00 00 ff ff. */
    if (b->len < 4 || memcmp(b->p + b->len - 4, TAIL, 4) != 0)
        return -ENOMEM;
    b->len -= 4;
    return 0;
}

/* Without context the same message always compresses the same: a fan-out's
 * copies reuse the first one's output (still in s->dout). */
static bool same_as_last(const shared_t *s, uint8_t bits, const uint8_t *in, size_t len)
{
    const last_t *l = &s->last;
    return l->valid && l->bits == bits && l->len == len && memcmp(l->in.p, in, len) == 0;
}

static void remember_last(shared_t *s, uint8_t bits, const uint8_t *in, size_t len, bool plain)
{
    last_t *l = &s->last;
    l->valid = false;
    if (len > LAST_MAX || buf_reserve(&l->in, len) != 0)
        return;
    memcpy(l->in.p, in, len);
    l->len = len;
    l->bits = bits;
    l->plain = plain;
    l->valid = true;
}

int bl_ws_deflate_compress(bl_ws_deflate_t *d, const uint8_t *in, size_t len, const uint8_t **out,
                           size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    /* An empty message can't shrink (compressed it is a lone 00 byte). */
    if (len < d->threshold || len == 0)
        return 0;
    shared_t *s = shared();
    if (s == NULL)
        return -ENOMEM;
    bool alone = d->p.server_no_context_takeover;
    if (alone && same_as_last(s, d->p.server_bits, in, len)) {
        if (!s->last.plain) {
            *out = s->dout.p;
            *out_len = s->dout.len;
        }
        return 0;
    }
    s->last.valid = false; /* s->dout is about to change */
    z_stream *z = compressor(d, s);
    if (z == NULL)
        return -ENOMEM;
    buf_trim(&s->dout);
    if (deflate_into(z, in, len, &s->dout) != 0)
        return -ENOMEM;
    if (alone) {
        /* With no context kept, an incompressible message may as well go plain. */
        bool plain = s->dout.len >= len;
        remember_last(s, d->p.server_bits, in, len, plain);
        if (plain)
            return 0;
    }
    *out = s->dout.p;
    *out_len = s->dout.len;
    return 0;
}

/* The inflater for this connection's next message, reset if it keeps no context. */
static z_stream *inflater(bl_ws_deflate_t *d, shared_t *s)
{
    if (!d->p.client_no_context_takeover) {
        if (d->inf == NULL) {
            z_stream *z = malloc(sizeof(*z));
            if (z == NULL ||
                inflate_init(z, &d->zbytes, d->p.client_bits < 9 ? 9 : d->p.client_bits) != 0) {
                free(z);
                return NULL;
            }
            d->inf = z;
        }
        return d->inf;
    }
    if (!s->inf_ready) {
        if (inflate_init(&s->inf, &s->zbytes, 15) != 0)
            return NULL;
        s->inf_ready = true;
    } else {
        inflateReset(&s->inf);
    }
    return &s->inf;
}

/* A final block ended the stream: start a new one that still sees the
 * window, for the context the next message may refer to. */
static int restart_keeping_window(z_stream *z)
{
    uint8_t win[1 << 15];
    uInt n = sizeof(win);
    if (inflateGetDictionary(z, win, &n) != Z_OK || inflateReset(z) != Z_OK)
        return -EBADMSG;
    if (n > 0 && inflateSetDictionary(z, win, n) != Z_OK)
        return -EBADMSG;
    return 0;
}

/* How much more room for inflated output: a guess from the input at first,
 * then doubling, never past limit + 1. */
static size_t grow_by(const buf_t *b, size_t in_len, uint64_t limit)
{
    size_t more = b->cap ? b->cap
                         : (in_len < 1024           ? 4096
                            : in_len < SIZE_MAX / 4 ? in_len * 4
                                                    : in_len);
    if (limit != 0 && more > limit + 1 - b->len)
        more = (size_t)(limit + 1 - b->len);
    return more;
}

/* Inflates in[0..len) into b, b->len never past limit + 1. 1 at the end of
 * the stream (a final block), 0 when the input is used up. */
static int inflate_some(z_stream *z, const uint8_t *in, size_t len, uint64_t limit, buf_t *b)
{
    z->next_in = (Bytef *)in;
    size_t left = len;
    for (;;) {
        size_t slice = left > (1u << 30) ? (1u << 30) : left;
        z->avail_in = (uInt)slice;
        left -= slice;
        for (;;) {
            if (b->len == b->cap && buf_reserve(b, grow_by(b, len, limit)) != 0)
                return -ENOMEM;
            size_t room = b->cap - b->len;
            if (limit != 0 && room > limit + 1 - b->len)
                room = (size_t)(limit + 1 - b->len);
            if (room > (1u << 30))
                room = 1u << 30;
            z->next_out = b->p + b->len;
            z->avail_out = (uInt)room;
            int r = inflate(z, Z_SYNC_FLUSH);
            b->len += room - z->avail_out;
            if (limit != 0 && b->len > limit)
                return -EMSGSIZE; /* stop here: no decompression bomb */
            if (r == Z_STREAM_END)
                return z->avail_in == 0 && left == 0 ? 1 : -EBADMSG;
            if (r == Z_MEM_ERROR)
                return -ENOMEM;
            if (r != Z_OK && r != Z_BUF_ERROR)
                return -EBADMSG;
            if (z->avail_out != 0 && z->avail_in == 0)
                break; /* this slice is used up and nothing is held back */
            if (r == Z_BUF_ERROR && z->avail_out != 0)
                return -EBADMSG; /* no progress with input and room: can't happen */
        }
        if (left == 0)
            return 0;
    }
}

int bl_ws_deflate_inflate(bl_ws_deflate_t *d, const uint8_t *in, size_t len, uint64_t limit,
                          const uint8_t **out, size_t *out_len)
{
    /* An empty payload is an empty message: leave a kept context alone (the
     * appended 00 00 ff ff alone would start a stored block). */
    if (len == 0) {
        *out = (const uint8_t *)"";
        *out_len = 0;
        return 0;
    }
    if (limit == 0)
        limit = BL_WS_DEFLATE_INFLATE_CAP; /* no message limit is no licence for a bomb */
    shared_t *s = shared();
    z_stream *z = s ? inflater(d, s) : NULL;
    if (z == NULL)
        return -ENOMEM;
    buf_t *b = &s->iout;
    buf_trim(b);
    int r = inflate_some(z, in, len, limit, b);
    if (r == 0)
        r = inflate_some(z, TAIL, sizeof(TAIL), limit, b);
    if (r == 1) /* it ended with a final block (RFC 7692 7.2.3.4) */
        r = d->p.client_no_context_takeover ? 0 : restart_keeping_window(z);
    if (r < 0) {
        if (!d->p.client_no_context_takeover)
            inflateReset(z); /* the connection is failing: no context matters now */
        buf_trim(b);
        return r;
    }
    *out = b->p != NULL ? b->p : (const uint8_t *)"";
    *out_len = b->len;
    return 0;
}
