/* wsload: a small WebSocket load generator for tests/bench/ws_bench.py.
 *
 * Single thread, plain epoll, zlib for --deflate:
 *     gcc -O2 -Wall -o wsload wsload.c -lz
 *
 * Modes (all on 127.0.0.1 unless --host says otherwise):
 *
 *   echo    --conns N --size BYTES --path P: closed loop; every connection sends
 *           one text message, waits for the echo, checks it and repeats. After
 *           --warmup seconds a --duration window is measured: messages whose
 *           echo arrived in the window, their round-trip latency, the server's
 *           CPU time (--pid, /proc/PID/stat; --tree adds every descendant of
 *           PID: a master and its workers), that of each of its threads busy
 *           in the window (threads=name:seconds,..., busiest first) and our own.
 *
 *   fanout  --subs N --sub-path P --pub-path P --window W --size BYTES: N
 *           subscriber connections and one publisher. The publisher sends a
 *           message carrying a sequence number and the send time; the server
 *           broadcasts it to every subscriber. Up to W broadcasts are in flight;
 *           a broadcast is done when all N subscribers got it (or after
 *           --timeout, its missing deliveries counted as lost). Measured like
 *           echo, per delivery; latency = publisher send -> subscriber receipt.
 *           --rate R: start at most R broadcasts a second, on a clock (open loop,
 *           for latency at a given load; the window still caps those in flight).
 *
 *   hold    --conns N --path P: opens --prewarm connections, echoes once on
 *           each and closes them, prints "ready", waits for a line on stdin,
 *           opens N connections and keeps them idle, prints "held ...", waits
 *           for a line on stdin, then echoes once on every held connection
 *           (to prove it is alive), prints the result and closes them.
 *
 * Options for every mode: --json sends a ~--size byte JSON market ticker whose
 * numbers change with every message (instead of a letter pattern); --deflate
 * offers permessage-deflate ("client_max_window_bits", like Chromium) and, if
 * the server agrees, compresses every message (zlib level 1, no context kept,
 * window as the server allows) and inflates the server's, keeping its context
 * per connection unless it declared server_no_context_takeover. wire_in and
 * plain_in in the result count received data payload bytes before and after
 * inflating. --echo-first (hold): one echo on every held connection before
 * "held" is printed, so per-connection state created by a first message counts.
 *
 * Output: one "result key=value ..." line on stdout (plus "ready"/"held" in
 * hold mode); diagnostics on stderr. Exit status 0 if the run completed (even
 * with errors, which are counted in the result), 2 on a usage or setup error.
 *
 *     gcc -O2 -Wall -o wsload wsload.c -lz
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

/* ------------------------------------------------------------------ options */

static const char *opt_host = "127.0.0.1";
static int opt_port = 0;
static const char *opt_path = "/";
static const char *opt_sub_path = "/ws/sub/";
static const char *opt_pub_path = "/ws/pub/";
static int opt_conns = 50;
static int opt_subs = 1000;
static int opt_window = 4;
static double opt_rate = 0; /* fanout: broadcasts started per second at most; 0: no limit */
static uint64_t rate_next_ns; /* fanout with --rate: when the next broadcast may start */
static size_t opt_size = 32;
static double opt_warmup = 1.0;
static double opt_duration = 5.0;
static double opt_timeout = 5.0; /* a message/broadcast older than this is lost */
static double opt_connect_timeout = 60.0;
static int opt_concurrency = 64; /* handshakes in flight */
static int opt_prewarm = 50;
static int opt_binary = 0;
static int opt_deflate = 0;
static int opt_json = 0;
static int opt_echo_first = 0;
static long opt_pid = 0;
static int opt_tree = 0; /* --tree: --pid's CPU includes its descendants' */

/* ------------------------------------------------------------------ helpers */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int n_diag = 0;
static void diag(const char *fmt, ...)
{
    /* At most 20 diagnostics: 5,000 identical failures would drown the log. */
    if (n_diag++ >= 20)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("wsload: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("wsload: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL && n != 0)
        die("out of memory");
    return p;
}

/* Reads a /proc stat file into buf (NUL-terminated); 0 if it cannot. */
static int stat_read(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = 0;
    return 1;
}

/* utime+stime in seconds from a /proc stat file, or -1; comm (the thread or
 * process name, when wanted) is copied out with blanks, commas, colons and
 * equals signs replaced, so that it stays one token of our output. */
static double stat_cpu(const char *path, char *comm, size_t cap)
{
    char buf[2048];
    if (!stat_read(path, buf, sizeof buf))
        return -1;
    char *open = strchr(buf, '('), *p = strrchr(buf, ')');
    if (open == NULL || p == NULL || p < open)
        return -1;
    if (comm != NULL && cap > 0) {
        size_t len = (size_t)(p - open - 1) < cap - 1 ? (size_t)(p - open - 1) : cap - 1;
        for (size_t i = 0; i < len; i++) {
            char ch = open[1 + i];
            comm[i] = (ch == ' ' || ch == ',' || ch == ':' || ch == '=') ? '_' : ch;
        }
        comm[len] = 0;
    }
    p += 2;
    /* p is at field 3 (state); utime, stime are fields 14, 15. */
    unsigned long long ut = 0, st = 0;
    for (int field = 3; field < 14 && p != NULL; field++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    if (p == NULL || sscanf(p, "%llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The parent pid in a /proc/PID/stat line, or -1. */
static long stat_ppid(const char *path)
{
    char buf[1024];
    if (!stat_read(path, buf, sizeof buf))
        return -1;
    const char *p = strrchr(buf, ')');
    long ppid;
    char state;
    return p != NULL && sscanf(p + 1, " %c %ld", &state, &ppid) == 2 ? ppid : -1;
}

/* utime+stime of pid and every live descendant (--tree: a master and its workers). */
static double tree_cpu(long pid)
{
    enum { MAX_PROCS = 65536 };
    static long pids[MAX_PROCS], parents[MAX_PROCS];
    char path[64];
    int n = 0;
    DIR *d = opendir("/proc");
    if (d == NULL)
        return -1;
    struct dirent *e;
    while (n < MAX_PROCS && (e = readdir(d)) != NULL) {
        long p = strtol(e->d_name, NULL, 10);
        if (p <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%ld/stat", p);
        pids[n] = p;
        parents[n] = stat_ppid(path);
        n++;
    }
    closedir(d);
    /* Breadth-first from pid: members are pids[0..m) after swapping them to the front. */
    int m = 0;
    for (int i = 0; i < n; i++)
        if (pids[i] == pid) {
            pids[i] = pids[0], parents[i] = parents[0];
            pids[0] = pid, m = 1;
        }
    for (int k = 0; k < m; k++)
        for (int i = m; i < n; i++)
            if (parents[i] == pids[k]) {
                long tp = pids[m], tq = parents[m];
                pids[m] = pids[i], parents[m] = parents[i];
                pids[i] = tp, parents[i] = tq;
                m++;
            }
    double total = m > 0 ? 0 : -1;
    for (int k = 0; k < m; k++) {
        snprintf(path, sizeof path, "/proc/%ld/stat", pids[k]);
        double c = stat_cpu(path, NULL, 0);
        if (c > 0)
            total += c;
    }
    return total;
}

/* Server utime+stime (all threads; with --tree its descendants too) in seconds, or -1. */
static double proc_cpu(long pid)
{
    if (pid <= 0)
        return -1;
    if (opt_tree)
        return tree_cpu(pid);
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    return stat_cpu(path, NULL, 0);
}

/* The server's threads and their CPU seconds, to tell which one is the busy one. */
#define MAX_THREADS 64
typedef struct {
    long tid;
    char comm[32];
    double cpu;
} thread_cpu_t;

static int threads_cpu(long pid, thread_cpu_t *out)
{
    char path[96];
    int n = 0;
    if (pid <= 0)
        return 0;
    snprintf(path, sizeof path, "/proc/%ld/task", pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    struct dirent *e;
    while (n < MAX_THREADS && (e = readdir(d)) != NULL) {
        long tid = strtol(e->d_name, NULL, 10);
        if (tid <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%ld/task/%ld/stat", pid, tid);
        out[n].tid = tid;
        if ((out[n].cpu = stat_cpu(path, out[n].comm, sizeof out[n].comm)) >= 0)
            n++;
    }
    closedir(d);
    return n;
}

static int by_cpu_desc(const void *a, const void *b)
{
    double x = ((const thread_cpu_t *)a)->cpu, y = ((const thread_cpu_t *)b)->cpu;
    return (x < y) - (x > y);
}

/* " threads=name:seconds,..." for the threads busy in the window, busiest first. */
static void print_threads(const thread_cpu_t *t0, int n0, thread_cpu_t *t1, int n1)
{
    int shown = 0;
    for (int i = 0; i < n1; i++) {
        double before = 0;
        for (int j = 0; j < n0; j++)
            if (t0[j].tid == t1[i].tid)
                before = t0[j].cpu;
        t1[i].cpu -= before;
    }
    qsort(t1, (size_t)n1, sizeof *t1, by_cpu_desc);
    for (int i = 0; i < n1 && t1[i].cpu >= 0.01; i++)
        printf("%s%s:%.3f", shown++ ? "," : " threads=", t1[i].comm, t1[i].cpu);
}

static double self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rng32(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* ------------------------------------------------------------------ latency samples */

typedef struct {
    float *v; /* microseconds */
    size_t n, cap;
} samples_t;

static void sample_add(samples_t *s, double us)
{
    if (s->n == s->cap) {
        if (s->cap >= (size_t)50 * 1000 * 1000)
            return; /* enough for any percentile */
        s->cap = s->cap ? s->cap * 2 : 65536;
        s->v = xrealloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = (float)us;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static double pct(samples_t *s, double p)
{
    if (s->n == 0)
        return -1;
    size_t i = (size_t)(p / 100.0 * (double)(s->n - 1) + 0.5);
    if (i >= s->n)
        i = s->n - 1;
    return s->v[i];
}

/* ------------------------------------------------------------------ connections */

enum { ST_IDLE, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSING, ST_DONE };
enum { R_ECHO, R_SUB, R_PUB };

typedef struct conn {
    int fd, state, role;
    const char *path;
    uint8_t *rb;
    size_t rlen, rcap;
    uint8_t *wb;
    size_t wlen, woff, wcap;
    int want_out;
    uint8_t *mb; /* fragmented message being assembled */
    size_t mlen, mcap;
    int mop, in_frag, mrsv;
    int pmd;          /* permessage-deflate agreed */
    int srv_nct;      /* the server keeps no context: its messages inflate alone */
    int cbits;        /* the window we may compress with */
    z_stream *inf;    /* the server's context, when it keeps one */
    uint64_t sent_ns; /* echo: when the outstanding message was sent */
    uint64_t seq;
    int waiting; /* echo: a message is outstanding */
    int failed;
} conn_t;

static int epfd;
static conn_t *conns;
static int nconns;
static int handshaking; /* connections in CONNECTING/HANDSHAKE */
static int n_subs_open; /* fan-out subscribers currently open */

static struct {
    uint64_t connect_fail, handshake_fail, io_errors, server_closed, bad_echo, lost, late;
    uint64_t pings;
    uint64_t clean_closes, close_timeouts;
    uint64_t wire_in, plain_in, deflated_conns;
} st;

static int measuring;      /* in the measured window */
static uint64_t win_count; /* messages (echo) or deliveries (fanout) in the window */
static samples_t lat;

static void ep_mod(conn_t *c)
{
    struct epoll_event ev = {.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_close(conn_t *c)
{
    if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE)
        handshaking--;
    if (c->state == ST_OPEN && c->role == R_SUB)
        n_subs_open--;
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    c->state = ST_DONE;
    c->waiting = 0;
    if (c->inf != NULL) {
        inflateEnd(c->inf);
        free(c->inf);
        c->inf = NULL;
    }
    free(c->rb);
    free(c->wb);
    free(c->mb);
    c->rb = c->wb = c->mb = NULL;
    c->rlen = c->rcap = c->wlen = c->woff = c->wcap = c->mlen = c->mcap = 0;
}

/* Closes c after an error, counted by the state it was in. */
static void conn_fail(conn_t *c, const char *why)
{
    switch (c->state) {
    case ST_DONE:
        return;
    case ST_CLOSING: /* the peer went away during our close: fine */
        st.clean_closes++;
        conn_close(c);
        return;
    case ST_CONNECTING:
        st.connect_fail++;
        break;
    case ST_HANDSHAKE:
        st.handshake_fail++;
        break;
    default:
        st.io_errors++;
        break;
    }
    diag("connection %d (%s): %s", (int)(c - conns), c->path, why);
    c->failed = 1;
    conn_close(c);
}

static void conn_flush(conn_t *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = write(c->fd, c->wb + c->woff, c->wlen - c->woff);
        if (n > 0) {
            c->woff += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out) {
                c->want_out = 1;
                ep_mod(c);
            }
            return;
        }
        conn_fail(c, n < 0 ? strerror(errno) : "write returned 0");
        return;
    }
    c->woff = c->wlen = 0;
    if (c->want_out) {
        c->want_out = 0;
        ep_mod(c);
    }
}

static uint8_t *wbuf_reserve(conn_t *c, size_t n)
{
    if (c->woff > 0 && c->woff == c->wlen)
        c->woff = c->wlen = 0;
    if (c->wlen + n > c->wcap) {
        size_t cap = c->wcap ? c->wcap : 256;
        while (cap < c->wlen + n)
            cap *= 2;
        c->wb = xrealloc(c->wb, cap);
        c->wcap = cap;
    }
    return c->wb + c->wlen;
}

static void mask_bytes(uint8_t *p, size_t n, uint32_t key)
{
    uint8_t k[4];
    memcpy(k, &key, 4);
    uint64_t k8;
    uint8_t kb[8] = {k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]};
    memcpy(&k8, kb, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        w ^= k8;
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++)
        p[i] ^= k[i & 3];
}

/* Appends one masked frame (b0: FIN, RSV, opcode); payload (may be NULL) is
 * copied, then prefix (the first plen bytes) overwritten, then masked. */
static void send_frame_b0(conn_t *c, int b0, const uint8_t *payload, size_t len, const char *prefix,
                          size_t plen)
{
    uint8_t *h = wbuf_reserve(c, len + 14);
    size_t hl = 2;
    h[0] = (uint8_t)b0;
    if (len < 126) {
        h[1] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        h[1] = 0x80 | 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        hl = 4;
    } else {
        h[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    uint32_t key = rng32() | 1;
    memcpy(h + hl, &key, 4);
    hl += 4;
    uint8_t *p = h + hl;
    if (payload && len)
        memcpy(p, payload, len);
    if (prefix && plen)
        memcpy(p, prefix, plen < len ? plen : len);
    mask_bytes(p, len, key);
    c->wlen += hl + len;
    conn_flush(c);
}

static void send_frame(conn_t *c, int op, const uint8_t *payload, size_t len, const char *prefix,
                       size_t plen)
{
    send_frame_b0(c, 0x80 | op, payload, len, prefix, plen);
}

/* ------------------------------------------------------------------ permessage-deflate */

typedef struct {
    uint8_t *p;
    size_t cap;
} scratch_t;

static scratch_t plain_buf, zout_buf, zin_buf;

static uint8_t *scratch(scratch_t *s, size_t n)
{
    if (n > s->cap) {
        s->cap = n + n / 2 + 1024;
        s->p = xrealloc(s->p, s->cap);
    }
    return s->p;
}

/* One compressor per window size, reset for every message: the server must
 * accept messages compressed without context, and this keeps the client cheap. */
static z_stream def_by_bits[16];
static int def_ready[16];
static z_stream shared_inf;
static int shared_inf_ready;

/* The agreed permessage-deflate parameters from the 101's head (NUL-terminated). */
static void parse_extensions(conn_t *c, const char *head)
{
    const char *h = strcasestr(head, "\r\nsec-websocket-extensions:");
    if (!opt_deflate || h == NULL)
        return;
    h += strlen("\r\nsec-websocket-extensions:");
    const char *end = strstr(h, "\r\n");
    char v[256];
    size_t n = end ? (size_t)(end - h) : strlen(h);
    if (n >= sizeof v)
        n = sizeof v - 1;
    memcpy(v, h, n);
    v[n] = 0;
    if (strstr(v, "permessage-deflate") == NULL)
        return;
    c->pmd = 1;
    st.deflated_conns++;
    c->srv_nct = strstr(v, "server_no_context_takeover") != NULL;
    const char *cb = strstr(v, "client_max_window_bits=");
    c->cbits = cb ? atoi(cb + strlen("client_max_window_bits=")) : 15;
    if (c->cbits < 9 || c->cbits > 15)
        c->cbits = c->cbits < 9 ? 9 : 15; /* zlib has no 8-bit raw window */
}

/* Sends a data message, compressed when agreed. */
static void send_msg(conn_t *c, int op, const uint8_t *payload, size_t len, const char *prefix,
                     size_t plen)
{
    if (!c->pmd) {
        send_frame(c, op, payload, len, prefix, plen);
        return;
    }
    uint8_t *m = scratch(&plain_buf, len);
    memcpy(m, payload, len);
    memcpy(m, prefix, plen < len ? plen : len);
    z_stream *z = &def_by_bits[c->cbits];
    if (!def_ready[c->cbits]) {
        if (deflateInit2(z, 1, Z_DEFLATED, -c->cbits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            die("deflateInit2 failed");
        def_ready[c->cbits] = 1;
    } else {
        deflateReset(z);
    }
    size_t cap = len + len / 8 + 128;
    uint8_t *out = scratch(&zout_buf, cap);
    z->next_in = m;
    z->avail_in = (uInt)len;
    z->next_out = out;
    z->avail_out = (uInt)cap;
    if (deflate(z, Z_SYNC_FLUSH) != Z_OK || z->avail_in != 0 || z->avail_out == 0)
        die("deflate failed");
    size_t n = cap - z->avail_out - 4; /* 00 00 ff ff stays off the wire */
    send_frame_b0(c, 0x80 | 0x40 | op, out, n, NULL, 0);
}

/* Inflates a compressed message into zin_buf; -1 on bad data. */
static int inflate_msg(conn_t *c, const uint8_t *in, size_t len, const uint8_t **out, size_t *olen)
{
    static const uint8_t tail[4] = {0, 0, 0xff, 0xff};
    z_stream *z;
    if (c->srv_nct) {
        z = &shared_inf;
        if (!shared_inf_ready) {
            if (inflateInit2(z, -15) != Z_OK)
                die("inflateInit2 failed");
            shared_inf_ready = 1;
        } else {
            inflateReset(z);
        }
    } else {
        if (c->inf == NULL) {
            c->inf = calloc(1, sizeof *c->inf);
            if (c->inf == NULL || inflateInit2(c->inf, -15) != Z_OK)
                die("inflateInit2 failed");
        }
        z = c->inf;
    }
    size_t n = 0, cap = len * 4 + 4096;
    uint8_t *o = scratch(&zin_buf, cap);
    for (int part = 0; part < 2; part++) {
        z->next_in = (Bytef *)(part ? tail : in);
        z->avail_in = (uInt)(part ? 4 : len);
        for (;;) {
            if (cap - n < 1024) {
                cap *= 2;
                o = scratch(&zin_buf, cap);
            }
            z->next_out = o + n;
            z->avail_out = (uInt)(cap - n);
            int r = inflate(z, Z_SYNC_FLUSH);
            n = cap - z->avail_out;
            if (r == Z_STREAM_END)
                break;
            if (r != Z_OK && r != Z_BUF_ERROR)
                return -1;
            if (z->avail_in == 0 && z->avail_out != 0)
                break;
        }
    }
    *out = o;
    *olen = n;
    return 0;
}

static int conn_start(conn_t *c, const char *path, int role)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->path = path;
    c->role = role;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        st.connect_fail++;
        diag("socket: %s", strerror(errno));
        c->state = ST_DONE;
        c->failed = 1;
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt_port)};
    inet_pton(AF_INET, opt_host, &sa.sin_addr);
    int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    if (r < 0 && errno != EINPROGRESS) {
        st.connect_fail++;
        diag("connect: %s", strerror(errno));
        close(fd);
        c->state = ST_DONE;
        c->failed = 1;
        return -1;
    }
    c->fd = fd;
    c->state = ST_CONNECTING;
    c->want_out = 1;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

static void send_handshake(conn_t *c)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char key[25];
    for (int i = 0; i < 21; i++)
        key[i] = b64[rng32() & 63];
    key[21] = 'A'; /* 16 bytes -> 22 chars, the last one carrying 2 bits, then "==" */
    key[22] = '=';
    key[23] = '=';
    key[24] = 0;
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nOrigin: http://%s:%d\r\n%s\r\n",
                     c->path, opt_host, opt_port, key, opt_host, opt_port,
                     opt_deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                                   "client_max_window_bits\r\n"
                                 : "");
    memcpy(wbuf_reserve(c, (size_t)n), req, (size_t)n);
    c->wlen += (size_t)n;
    c->state = ST_HANDSHAKE;
    conn_flush(c);
}

/* ------------------------------------------------------------------ mode logic */

static int mode_fanout;
static uint8_t *payload_tmpl; /* opt_size bytes of ASCII */
static size_t *json_digits;   /* --json: positions of the digits that change */
static size_t n_json_digits;

/* --json: a market ticker; the last digits of every number change per message. */
static void make_json(uint8_t *t, size_t size)
{
    static const char *syms[] = {
        "BTC-USD",  "ETH-USD", "SOL-USD", "ADA-USD",  "XRP-USD",  "DOT-USD",  "LTC-USD", "BCH-USD",
        "LINK-USD", "XLM-USD", "UNI-USD", "AVAX-USD", "ATOM-USD", "ALGO-USD", "FIL-USD", "TRX-USD"};
    char *b = malloc(size + 512);
    size_t n = (size_t)sprintf(b,
                               "%-40s{\"type\":\"ticker\",\"channel\":\"market.tickers\","
                               "\"data\":[",
                               "");
    for (unsigned i = 0; n + 200 < size; i++) {
        unsigned p = 1000 + (rng32() % 50000);
        n +=
            (size_t)sprintf(b + n,
                            "%s{\"symbol\":\"%s\",\"bid\":%u.%04u,\"ask\":%u.%04u,\"last\":%u.%04u,"
                            "\"volume_24h\":%u.%02u,\"change_pct\":-%u.%03u,\"ts\":17000000%05u}",
                            i ? "," : "", syms[i % 16], p, rng32() % 10000, p + 1, rng32() % 10000,
                            p, rng32() % 10000, rng32() % 10000000, rng32() % 100, rng32() % 10,
                            rng32() % 1000, rng32() % 100000);
    }
    n += (size_t)sprintf(b + n, "]}");
    while (n < size)
        b[n++] = ' ';
    memcpy(t, b, size);
    free(b);
    json_digits = malloc(size * sizeof *json_digits);
    for (size_t i = 40; i < size; i++) {
        /* the last 3 digits of each number */
        int digit = t[i] >= '0' && t[i] <= '9';
        int next_digit = i + 1 < size && t[i + 1] >= '0' && t[i + 1] <= '9';
        if (digit && !next_digit) {
            for (size_t k = 0; k < 3 && i >= 40 + k && t[i - k] >= '0' && t[i - k] <= '9'; k++)
                json_digits[n_json_digits++] = i - k;
        }
    }
}

static void vary_json(void)
{
    for (size_t i = 0; i < n_json_digits; i++)
        payload_tmpl[json_digits[i]] = (uint8_t)('0' + rng32() % 10);
}

/* fan-out state */
#define RING 4096
static struct {
    uint64_t seq;
    uint64_t sent_ns;
    uint32_t got;
    int done;
} ring[RING];
static uint64_t f_head, f_tail; /* broadcasts [tail, head) are in flight */
static conn_t *pub;
static int sending = 0; /* echo/fanout: new messages may be started */

static void echo_send(conn_t *c)
{
    char pre[17];
    snprintf(pre, sizeof pre, "%016" PRIx64, ++c->seq);
    c->sent_ns = now_ns();
    c->waiting = 1;
    if (opt_json)
        vary_json();
    send_msg(c, opt_binary ? 2 : 1, payload_tmpl, opt_size, pre, 16);
}

static void fanout_pump(void)
{
    uint64_t now = now_ns();
    /* Retire finished or timed-out broadcasts at the tail. */
    while (f_tail < f_head) {
        typeof(ring[0]) *r = &ring[f_tail % RING];
        if (!r->done && now - r->sent_ns > (uint64_t)(opt_timeout * 1e9)) {
            st.lost += (uint64_t)n_subs_open > r->got ? (uint64_t)n_subs_open - r->got : 0;
            r->done = 1;
        }
        if (!r->done)
            break;
        f_tail++;
    }
    if (!sending || pub == NULL || pub->state != ST_OPEN)
        return;
    while (f_head - f_tail < (uint64_t)opt_window && f_head - f_tail < RING) {
        if (opt_rate > 0) {
            /* Open loop: broadcasts start on a clock, not when the last ended
             * (the window still caps how many are in flight). */
            uint64_t t = now_ns();
            if (rate_next_ns == 0)
                rate_next_ns = t;
            if (t < rate_next_ns)
                break;
            rate_next_ns += (uint64_t)(1e9 / opt_rate);
            if (rate_next_ns < t)
                rate_next_ns = t; /* behind (window full): no burst to catch up */
        }
        uint64_t seq = f_head++;
        typeof(ring[0]) *r = &ring[seq % RING];
        r->seq = seq;
        r->got = 0;
        r->done = 0;
        r->sent_ns = now_ns();
        char pre[40];
        snprintf(pre, sizeof pre, "%016" PRIx64 " %016" PRIx64 " ", seq, r->sent_ns);
        if (opt_json)
            vary_json();
        send_msg(pub, 1, payload_tmpl, opt_size, pre, 34);
        if (pub->state != ST_OPEN)
            return;
    }
}

static void on_message(conn_t *c, int op, const uint8_t *data, size_t len, int compressed)
{
    uint64_t now = now_ns();
    (void)op;
    st.wire_in += len;
    if (compressed) {
        if (!c->pmd || inflate_msg(c, data, len, &data, &len) != 0) {
            st.bad_echo++;
            diag("connection %d: %s", (int)(c - conns),
                 c->pmd ? "bad compressed message" : "RSV1 without permessage-deflate");
            return;
        }
    }
    st.plain_in += len;
    if (c->role == R_ECHO) {
        if (!c->waiting) {
            st.bad_echo++;
            diag("connection %d: unexpected message (%zu bytes)", (int)(c - conns), len);
            return;
        }
        char pre[17];
        snprintf(pre, sizeof pre, "%016" PRIx64, c->seq);
        size_t cmp = opt_size < 16 ? opt_size : 16;
        if (len != opt_size || memcmp(data, pre, cmp) != 0) {
            st.bad_echo++;
            diag("connection %d: bad echo (%zu bytes, want %zu)", (int)(c - conns), len, opt_size);
        }
        c->waiting = 0;
        if (measuring) {
            win_count++;
            sample_add(&lat, (double)(now - c->sent_ns) / 1e3);
        }
        if (sending)
            echo_send(c);
    } else if (c->role == R_SUB) {
        uint64_t seq, ts;
        if (len < 34 || sscanf((const char *)data, "%16" SCNx64 " %16" SCNx64, &seq, &ts) != 2) {
            st.bad_echo++;
            diag("subscriber %d: unparsable message (%zu bytes)", (int)(c - conns), len);
            return;
        }
        typeof(ring[0]) *r = &ring[seq % RING];
        if (r->seq != seq || r->done || seq < f_tail) {
            st.late++;
            return;
        }
        if (measuring) {
            win_count++;
            sample_add(&lat, (double)(now - ts) / 1e3);
        }
        if (++r->got >= (uint32_t)n_subs_open) {
            r->done = 1;
            fanout_pump();
        }
    }
    /* R_PUB: the publisher's consumer sends nothing back; ignore. */
}

/* Parses complete frames from c->rb. Returns 0, or -1 if c was closed. */
static int parse_frames(conn_t *c)
{
    size_t off = 0;
    while (c->rlen - off >= 2) {
        uint8_t *h = c->rb + off;
        int fin = h[0] & 0x80, op = h[0] & 0x0f;
        uint64_t len = h[1] & 0x7f;
        size_t hl = 2;
        if (h[1] & 0x80) {
            conn_fail(c, "masked frame from server");
            return -1;
        }
        if (len == 126) {
            if (c->rlen - off < 4)
                break;
            len = ((uint64_t)h[2] << 8) | h[3];
            hl = 4;
        } else if (len == 127) {
            if (c->rlen - off < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | h[2 + i];
            hl = 10;
        }
        if (len > (1u << 30)) {
            conn_fail(c, "absurd frame length");
            return -1;
        }
        if (c->rlen - off < hl + len) {
            if (hl + len > c->rcap) { /* make room for the whole frame */
                memmove(c->rb, c->rb + off, c->rlen - off);
                c->rlen -= off;
                off = 0;
                c->rcap = hl + len + 4096;
                c->rb = xrealloc(c->rb, c->rcap);
            }
            break;
        }
        uint8_t *p = h + hl;
        off += hl + len;
        if (op == 0x8) { /* close */
            if (c->state == ST_CLOSING) {
                st.clean_closes++;
                conn_close(c);
                return -1;
            }
            unsigned code = len >= 2 ? ((unsigned)p[0] << 8 | p[1]) : 1005;
            st.server_closed++;
            diag("connection %d (%s): server closed it (code %u)", (int)(c - conns), c->path, code);
            send_frame(c, 0x8, p, len >= 2 ? 2 : 0, NULL, 0);
            c->failed = 1;
            conn_close(c);
            return -1;
        } else if (op == 0x9) { /* ping */
            st.pings++;
            send_frame(c, 0xA, p, (size_t)len, NULL, 0);
            if (c->state == ST_DONE)
                return -1;
        } else if (op == 0xA) { /* pong */
        } else if (op == 0x0 || op == 0x1 || op == 0x2) {
            if (op != 0 && fin && !c->in_frag) {
                if (c->state == ST_OPEN)
                    on_message(c, op, p, (size_t)len, h[0] & 0x40);
            } else {
                if (op != 0) {
                    c->in_frag = 1;
                    c->mop = op;
                    c->mrsv = h[0] & 0x40;
                    c->mlen = 0;
                }
                if (c->mlen + len > c->mcap) {
                    c->mcap = c->mlen + len + 4096;
                    c->mb = xrealloc(c->mb, c->mcap);
                }
                memcpy(c->mb + c->mlen, p, (size_t)len);
                c->mlen += len;
                if (fin) {
                    c->in_frag = 0;
                    if (c->state == ST_OPEN)
                        on_message(c, c->mop, c->mb, c->mlen, c->mrsv);
                }
            }
            if (c->state == ST_DONE)
                return -1;
        } else {
            conn_fail(c, "unknown opcode");
            return -1;
        }
    }
    if (off > 0) {
        memmove(c->rb, c->rb + off, c->rlen - off);
        c->rlen -= off;
    }
    return 0;
}

static void on_open(conn_t *c)
{
    c->state = ST_OPEN;
    handshaking--;
    if (c->role == R_SUB)
        n_subs_open++;
}

static void on_readable(conn_t *c)
{
    for (;;) {
        if (c->rcap - c->rlen < 1024) {
            c->rcap = c->rcap ? c->rcap * 2 : 4096;
            c->rb = xrealloc(c->rb, c->rcap);
        }
        ssize_t n = read(c->fd, c->rb + c->rlen, c->rcap - c->rlen);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            conn_fail(c, n == 0 ? "connection closed by server" : strerror(errno));
            return;
        }
        size_t filled = (size_t)n == c->rcap - c->rlen;
        c->rlen += (size_t)n;
        if (c->state == ST_HANDSHAKE) {
            uint8_t *end = memmem(c->rb, c->rlen, "\r\n\r\n", 4);
            if (end == NULL) {
                if (c->rlen > 16384) {
                    conn_fail(c, "handshake response too long");
                    return;
                }
                continue;
            }
            size_t hlen = (size_t)(end - c->rb) + 4;
            if (c->rlen < 12 || memcmp(c->rb, "HTTP/1.1 101", 12) != 0) {
                char line[80];
                size_t l = 0;
                while (l < sizeof line - 1 && l < c->rlen && c->rb[l] != '\r') {
                    line[l] = (char)c->rb[l];
                    l++;
                }
                line[l] = 0;
                conn_fail(c, line);
                return;
            }
            c->rb[hlen - 1] = 0; /* the head's last LF: parse it as a string */
            parse_extensions(c, (const char *)c->rb);
            memmove(c->rb, c->rb + hlen, c->rlen - hlen);
            c->rlen -= hlen;
            on_open(c);
        }
        int open_or_closing = c->state == ST_OPEN || c->state == ST_CLOSING;
        if (open_or_closing && parse_frames(c) < 0)
            return;
        if (!filled)
            return;
    }
}

static void on_event(conn_t *c, uint32_t events)
{
    if (c->state == ST_CONNECTING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err != 0) {
            conn_fail(c, strerror(err));
            return;
        }
        send_handshake(c);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        on_readable(c);
        if (c->state == ST_DONE)
            return;
    }
    if ((events & EPOLLOUT) && c->fd >= 0)
        conn_flush(c);
}

/* Runs the event loop until done() or the deadline (absolute ns; 0 = none).
 * Returns 1 if done() became true. */
static int stdin_line; /* a line arrived on stdin */
static int stdin_eof;
static void on_stdin(void)
{
    char b[256];
    ssize_t r = read(0, b, sizeof b);
    if (r <= 0) {
        stdin_eof = 1;
        epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
    } else if (memchr(b, '\n', (size_t)r)) {
        stdin_line = 1;
    }
}

static int run_until(int (*done)(void), uint64_t deadline)
{
    struct epoll_event evs[256];
    for (;;) {
        if (done && done())
            return 1;
        uint64_t now = now_ns();
        if (deadline && now >= deadline)
            return 0;
        int to = 100;
        if (mode_fanout && opt_rate > 0 && sending && rate_next_ns) {
            uint64_t t = now_ns();
            int until = rate_next_ns > t ? (int)((rate_next_ns - t) / 1000000) : 0;
            if (until < to)
                to = until;
        }
        if (deadline) {
            uint64_t left_ms = (deadline - now + 999999) / 1000000;
            if (left_ms < (uint64_t)to)
                to = (int)left_ms;
        }
        int n = epoll_wait(epfd, evs, 256, to);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                on_stdin();
                continue;
            }
            on_event(evs[i].data.ptr, evs[i].events);
        }
        if (mode_fanout)
            fanout_pump();
    }
}

/* Opens connections [first, first+count) with at most opt_concurrency handshakes
 * in flight. Returns the number now open. */
static int connect_range(int first, int count, const char *path, int role)
{
    int next = first, end = first + count;
    uint64_t deadline = now_ns() + (uint64_t)(opt_connect_timeout * 1e9);
    struct epoll_event evs[256];
    while (next < end || handshaking > 0) {
        while (next < end && handshaking < opt_concurrency) {
            if (conn_start(&conns[next], path, role) == 0)
                handshaking++;
            next++;
        }
        if (now_ns() >= deadline) {
            diag("connect phase timed out with %d handshakes pending", handshaking);
            for (int i = first; i < end; i++)
                if (conns[i].state == ST_CONNECTING || conns[i].state == ST_HANDSHAKE)
                    conn_fail(&conns[i], "handshake timed out");
            break;
        }
        int n = epoll_wait(epfd, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL)
                on_stdin();
            else
                on_event(evs[i].data.ptr, evs[i].events);
        }
    }
    int open = 0;
    for (int i = first; i < end; i++)
        open += conns[i].state == ST_OPEN;
    return open;
}

static int first_active, active_count;
static int none_waiting(void)
{
    for (int i = first_active; i < first_active + active_count; i++)
        if (conns[i].state == ST_OPEN && conns[i].waiting)
            return 0;
    return 1;
}

static int all_closed(void)
{
    for (int i = first_active; i < first_active + active_count; i++)
        if (conns[i].state != ST_DONE)
            return 0;
    return 1;
}

/* Sends a close frame on every open connection in the range, waits up to 3 s
 * for the servers' close frames, then drops the rest. */
static void close_conns(int first, int count)
{
    first_active = first;
    active_count = count;
    for (int i = first; i < first + count; i++) {
        conn_t *c = &conns[i];
        if (c->state == ST_OPEN) {
            if (c->role == R_SUB)
                n_subs_open--;
            c->state = ST_CLOSING;
            uint8_t code[2] = {0x03, 0xe8}; /* 1000 */
            send_frame(c, 0x8, code, 2, NULL, 0);
        } else if (c->state != ST_DONE && c->state != ST_CLOSING) {
            conn_close(c);
        }
    }
    run_until(all_closed, now_ns() + 3000000000ull);
    for (int i = first; i < first + count; i++)
        if (conns[i].state != ST_DONE) {
            st.close_timeouts++;
            conn_close(&conns[i]);
        }
}

static int stdin_ready(void)
{
    return stdin_line || stdin_eof;
}

static int count_open(int first, int count)
{
    int n = 0;
    for (int i = first; i < first + count; i++)
        n += conns[i].state == ST_OPEN;
    return n;
}

/* Open connections whose message is unanswered for longer than min_age_ns. */
static int count_stalled(int first, int count, uint64_t now, uint64_t min_age_ns)
{
    int n = 0;
    for (int i = first; i < first + count; i++)
        if (conns[i].state == ST_OPEN && conns[i].waiting && now - conns[i].sent_ns >= min_age_ns)
            n++;
    return n;
}

static void print_errors(void)
{
    printf(" connect_fail=%" PRIu64 " handshake_fail=%" PRIu64 " io_errors=%" PRIu64
           " server_closed=%" PRIu64 " bad=%" PRIu64 " lost=%" PRIu64 " late=%" PRIu64
           " pings=%" PRIu64 " clean_closes=%" PRIu64 " close_timeouts=%" PRIu64
           " deflated_conns=%" PRIu64 " wire_in=%" PRIu64 " plain_in=%" PRIu64,
           st.connect_fail, st.handshake_fail, st.io_errors, st.server_closed, st.bad_echo, st.lost,
           st.late, st.pings, st.clean_closes, st.close_timeouts, st.deflated_conns, st.wire_in,
           st.plain_in);
}

static void print_latency(void)
{
    qsort(lat.v, lat.n, sizeof *lat.v, cmp_float);
    printf(" samples=%zu p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f", lat.n, pct(&lat, 50),
           pct(&lat, 90), pct(&lat, 99), lat.n ? lat.v[lat.n - 1] : -1.0);
}

/* ------------------------------------------------------------------ modes */

static int run_measured(const char *mode, int first, int count)
{
    uint64_t t = now_ns();
    run_until(NULL, t + (uint64_t)(opt_warmup * 1e9));
    static thread_cpu_t th0[MAX_THREADS], th1[MAX_THREADS];
    int nth0 = threads_cpu(opt_pid, th0);
    double scpu0 = proc_cpu(opt_pid), ccpu0 = self_cpu();
    uint64_t t0 = now_ns();
    measuring = 1;
    win_count = 0;
    lat.n = 0;
    run_until(NULL, t0 + (uint64_t)(opt_duration * 1e9));
    measuring = 0;
    uint64_t t1 = now_ns();
    double scpu1 = proc_cpu(opt_pid), ccpu1 = self_cpu();
    int nth1 = threads_cpu(opt_pid, th1);
    int stalled = mode_fanout ? 0 : count_stalled(first, count, t1, (uint64_t)(opt_timeout * 1e9));
    int open_at_end = count_open(first, count);
    sending = 0;
    /* Let in-flight messages finish (bounded), so the close is clean. */
    first_active = first;
    active_count = count;
    if (mode_fanout) {
        uint64_t dl = now_ns() + (uint64_t)(opt_timeout * 1e9);
        while (f_tail < f_head && now_ns() < dl)
            run_until(NULL, now_ns() + 20000000ull);
    } else {
        run_until(none_waiting, now_ns() + (uint64_t)(opt_timeout * 1e9));
    }
    double secs = (double)(t1 - t0) / 1e9;
    printf("result mode=%s conns=%d open=%d count=%" PRIu64 " seconds=%.3f rate=%.1f", mode, count,
           open_at_end, win_count, secs, (double)win_count / secs);
    if (scpu0 >= 0 && scpu1 >= 0)
        printf(" server_cpu_s=%.3f", scpu1 - scpu0);
    print_threads(th0, nth0, th1, nth1);
    printf(" client_cpu_s=%.3f stalled=%d", ccpu1 - ccpu0, stalled);
    if (mode_fanout)
        printf(" broadcasts=%" PRIu64, f_head);
    print_latency();
    close_conns(first, count);
    print_errors();
    printf("\n");
    fflush(stdout);
    return 0;
}

static int mode_echo(void)
{
    conns = calloc((size_t)opt_conns, sizeof *conns);
    nconns = opt_conns;
    int open = connect_range(0, opt_conns, opt_path, R_ECHO);
    if (open == 0) {
        printf("result mode=echo conns=%d open=0 count=0", opt_conns);
        print_errors();
        printf("\n");
        return 0;
    }
    sending = 1;
    for (int i = 0; i < opt_conns; i++)
        if (conns[i].state == ST_OPEN)
            echo_send(&conns[i]);
    return run_measured("echo", 0, opt_conns);
}

static int mode_fan(void)
{
    mode_fanout = 1;
    if (opt_size < 34)
        opt_size = 34;
    nconns = opt_subs + 1;
    conns = calloc((size_t)nconns, sizeof *conns);
    int open = connect_range(0, opt_subs, opt_sub_path, R_SUB);
    int popen = connect_range(opt_subs, 1, opt_pub_path, R_PUB);
    pub = &conns[opt_subs];
    if (open == 0 || popen == 0) {
        printf("result mode=fanout conns=%d open=%d count=0", opt_subs, open);
        print_errors();
        printf("\n");
        return 0;
    }
    /* Let the last group_add settle (handshakes completed after accept). */
    run_until(NULL, now_ns() + 200000000ull);
    sending = 1;
    fanout_pump();
    return run_measured("fanout", 0, nconns);
}

static int mode_hold(void)
{
    int pre = opt_prewarm;
    nconns = pre + opt_conns;
    conns = calloc((size_t)nconns, sizeof *conns);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev);

    /* Warm-up: a few connections, one echo each, closed again. */
    if (pre > 0) {
        connect_range(0, pre, opt_path, R_ECHO);
        for (int i = 0; i < pre; i++)
            if (conns[i].state == ST_OPEN)
                echo_send(&conns[i]);
        first_active = 0;
        active_count = pre;
        run_until(none_waiting, now_ns() + (uint64_t)(opt_timeout * 1e9));
        close_conns(0, pre);
    }
    memset(&st, 0, sizeof st);
    n_diag = 0;
    printf("ready\n");
    fflush(stdout);
    stdin_line = 0;
    run_until(stdin_ready, 0);
    if (stdin_eof)
        return 0;

    uint64_t t0 = now_ns();
    int open = connect_range(pre, opt_conns, opt_path, R_ECHO);
    double csecs = (double)(now_ns() - t0) / 1e9;
    if (opt_echo_first) {
        for (int i = pre; i < nconns; i++)
            if (conns[i].state == ST_OPEN)
                echo_send(&conns[i]);
        first_active = pre;
        active_count = opt_conns;
        run_until(none_waiting, now_ns() + (uint64_t)(opt_timeout * 1e9) * 2);
    }
    printf("held open=%d conns=%d connect_s=%.3f\n", open, opt_conns, csecs);
    fflush(stdout);
    stdin_line = 0;
    run_until(stdin_ready, 0);

    /* Prove the held connections are alive: one echo on each. */
    int still_open = 0;
    lat.n = 0;
    measuring = 1;
    win_count = 0;
    for (int i = pre; i < nconns; i++)
        if (conns[i].state == ST_OPEN) {
            still_open++;
            echo_send(&conns[i]);
        }
    first_active = pre;
    active_count = opt_conns;
    uint64_t e0 = now_ns();
    run_until(none_waiting, now_ns() + (uint64_t)(opt_timeout * 1e9) * 2);
    double esecs = (double)(now_ns() - e0) / 1e9;
    measuring = 0;
    int stalled = count_stalled(pre, opt_conns, now_ns(), 0);
    printf("result mode=hold conns=%d open=%d connect_s=%.3f still_open=%d echoed=%" PRIu64
           " echo_s=%.3f stalled=%d",
           opt_conns, open, csecs, still_open, win_count, esecs, stalled);
    print_latency();
    close_conns(pre, opt_conns);
    print_errors();
    printf("\n");
    fflush(stdout);
    return 0;
}

/* ------------------------------------------------------------------ main */

static void usage(void)
{
    fprintf(stderr,
            "usage: wsload echo|fanout|hold --port P [--host H] [--path P] [--conns N]\n"
            "       [--size BYTES] [--warmup S] [--duration S] [--pid SERVER_PID] [--timeout S]\n"
            "       [--subs N] [--sub-path P] [--pub-path P] [--window W] [--concurrency N]\n"
            "       [--prewarm N] [--connect-timeout S] [--binary] [--deflate] [--json]\n"
            "       [--echo-first] [--rate BROADCASTS_PER_S] [--tree]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static struct option lo[] = {
        {"host", 1, 0, 'H'},
        {"port", 1, 0, 'p'},
        {"path", 1, 0, 'P'},
        {"conns", 1, 0, 'c'},
        {"size", 1, 0, 's'},
        {"warmup", 1, 0, 'w'},
        {"duration", 1, 0, 'd'},
        {"pid", 1, 0, 'i'},
        {"timeout", 1, 0, 't'},
        {"subs", 1, 0, 'S'},
        {"sub-path", 1, 0, 'u'},
        {"pub-path", 1, 0, 'b'},
        {"window", 1, 0, 'W'},
        {"concurrency", 1, 0, 'C'},
        {"prewarm", 1, 0, 'r'},
        {"connect-timeout", 1, 0, 'T'},
        {"binary", 0, 0, 'B'},
        {"deflate", 0, 0, 'Z'},
        {"json", 0, 0, 'J'},
        {"echo-first", 0, 0, 'E'},
        {"rate", 1, 0, 'R'},
        {"tree", 0, 0, 'X'},
        {0, 0, 0, 0},
    };
    if (argc < 2)
        usage();
    const char *mode = argv[1];
    optind = 2;
    int o;
    while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (o) {
        case 'H':
            opt_host = optarg;
            break;
        case 'p':
            opt_port = atoi(optarg);
            break;
        case 'P':
            opt_path = optarg;
            break;
        case 'c':
            opt_conns = atoi(optarg);
            break;
        case 's':
            opt_size = (size_t)strtoull(optarg, NULL, 10);
            break;
        case 'w':
            opt_warmup = atof(optarg);
            break;
        case 'd':
            opt_duration = atof(optarg);
            break;
        case 'i':
            opt_pid = atol(optarg);
            break;
        case 't':
            opt_timeout = atof(optarg);
            break;
        case 'S':
            opt_subs = atoi(optarg);
            break;
        case 'u':
            opt_sub_path = optarg;
            break;
        case 'b':
            opt_pub_path = optarg;
            break;
        case 'W':
            opt_window = atoi(optarg);
            break;
        case 'C':
            opt_concurrency = atoi(optarg);
            break;
        case 'r':
            opt_prewarm = atoi(optarg);
            break;
        case 'T':
            opt_connect_timeout = atof(optarg);
            break;
        case 'B':
            opt_binary = 1;
            break;
        case 'Z':
            opt_deflate = 1;
            break;
        case 'J':
            opt_json = 1;
            break;
        case 'E':
            opt_echo_first = 1;
            break;
        case 'X':
            opt_tree = 1;
            break;
        case 'R':
            opt_rate = atof(optarg);
            break;
        default:
            usage();
        }
    }
    if (opt_port <= 0 || opt_conns < 1 || opt_subs < 1 || opt_window < 1 || opt_concurrency < 1 ||
        opt_size < 1 || opt_size > (64u << 20) || opt_duration <= 0 || opt_prewarm < 0)
        usage();

    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    rng_state ^= (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32);
    uint8_t *tmpl = malloc(opt_size);
    for (size_t i = 0; i < opt_size; i++)
        tmpl[i] = (uint8_t)('a' + i % 26);
    if (opt_json)
        make_json(tmpl, opt_size);
    payload_tmpl = tmpl;
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1: %s", strerror(errno));

    if (strcmp(mode, "echo") == 0)
        return mode_echo();
    if (strcmp(mode, "fanout") == 0)
        return mode_fan();
    if (strcmp(mode, "hold") == 0)
        return mode_hold();
    usage();
    return 2;
}
