/* --metrics: the shared counters and their Prometheus text rendering (metrics.h). */
#include "bayleaf/common/metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

typedef struct {
    atomic_uint_fast64_t retired[BL_MC_COUNT]; /* counters of its exited processes */
    atomic_uint_fast64_t restarts;
} slot_t;

static bl_metrics_entry_t private_entry; /* counts go here when nobody reads them */
bl_metrics_entry_t *bl_metrics_self = &private_entry;

static struct {
    void *map;
    size_t size;
    slot_t *slots;
    bl_metrics_entry_t *entries;
    int nslots, nentries;
    bool labelled;
} region;

int bl_metrics_init(int nslots, int nentries, bool labelled)
{
    size_t slots_size = ((sizeof(slot_t) * (size_t)nslots + 63) / 64) * 64;
    size_t size = slots_size + sizeof(bl_metrics_entry_t) * (size_t)nentries;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    region.map = p;
    region.size = size;
    region.slots = p;
    region.entries = (bl_metrics_entry_t *)((char *)p + slots_size);
    region.nslots = nslots;
    region.nentries = nentries;
    region.labelled = labelled;
    if (!labelled) { /* one process: entry 0 is its own; workers attach theirs */
        bl_metrics_entry_start(0, 0);
        bl_metrics_self = &region.entries[0];
    }
    return 0;
}

bool bl_metrics_enabled(void)
{
    return region.map != NULL;
}

void bl_metrics_entry_start(int i, int slot)
{
    if (region.map == NULL || i < 0 || i >= region.nentries)
        return;
    bl_metrics_entry_t *e = &region.entries[i];
    for (int k = 0; k < BL_MC_COUNT; k++)
        atomic_store_explicit(&e->c[k], 0, memory_order_relaxed);
    for (int k = 0; k < BL_MG_COUNT; k++)
        atomic_store_explicit(&e->g[k], 0, memory_order_relaxed);
    atomic_store_explicit(&e->slot, slot, memory_order_relaxed);
    atomic_store_explicit(&e->live, true, memory_order_release);
}

void bl_metrics_entry_end(int i)
{
    if (region.map == NULL || i < 0 || i >= region.nentries)
        return;
    bl_metrics_entry_t *e = &region.entries[i];
    if (!atomic_load_explicit(&e->live, memory_order_acquire))
        return;
    int slot = atomic_load_explicit(&e->slot, memory_order_relaxed);
    if (slot >= 0 && slot < region.nslots) {
        slot_t *s = &region.slots[slot];
        for (int k = 0; k < BL_MC_COUNT; k++)
            atomic_fetch_add_explicit(&s->retired[k],
                                      atomic_load_explicit(&e->c[k], memory_order_relaxed),
                                      memory_order_relaxed);
    }
    /* A scrape between the two may count this process twice, for an instant. */
    atomic_store_explicit(&e->live, false, memory_order_release);
}

void bl_metrics_restart(int slot)
{
    if (region.map != NULL && slot >= 0 && slot < region.nslots)
        atomic_fetch_add_explicit(&region.slots[slot].restarts, 1, memory_order_relaxed);
}

void bl_metrics_attach(int i)
{
    if (region.map != NULL && i >= 0 && i < region.nentries)
        bl_metrics_self = &region.entries[i];
}

void bl_metrics_http_status(int status)
{
    if (status >= 100 && status < 600)
        bl_metrics_count(BL_MC_HTTP_1XX + status / 100 - 1, 1);
}

void bl_metrics_ws_closed(unsigned code)
{
    unsigned k = code - BL_METRICS_CLOSE_FIRST;
    bl_metrics_count(k < BL_METRICS_CLOSE_N ? BL_MC_WS_CLOSE + (int)k : BL_MC_WS_CLOSE_OTHER, 1);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bl_metrics_loop_beat(double interval_s)
{
    bl_metrics_gauge_set(BL_MG_LOOP_INTERVAL_NS, (int64_t)(interval_s * 1e9));
    bl_metrics_gauge_set(BL_MG_LOOP_BEAT_NS, now_ns());
}

bool bl_metrics_ready(void)
{
    for (int i = 0; i < region.nentries; i++) {
        bl_metrics_entry_t *e = &region.entries[i];
        if (atomic_load_explicit(&e->live, memory_order_acquire) &&
            atomic_load_explicit(&e->g[BL_MG_STATE], memory_order_relaxed) == BL_METRICS_ACCEPTING)
            return true;
    }
    return false;
}

/* ---- rendering ------------------------------------------------------- */

typedef struct {
    bool live; /* some process serves this slot */
    uint64_t c[BL_MC_COUNT];
    int64_t g[BL_MG_COUNT];
    double lag_s;
    bool has_lag;
    bool accepting;
} snap_t;

/* Live processes of each slot summed, on top of the slot's retired counters. */
static void snapshot(snap_t *snaps)
{
    int64_t now = now_ns();
    for (int s = 0; s < region.nslots; s++) {
        for (int k = 0; k < BL_MC_COUNT; k++)
            snaps[s].c[k] = atomic_load_explicit(&region.slots[s].retired[k], memory_order_relaxed);
    }
    for (int i = 0; i < region.nentries; i++) {
        bl_metrics_entry_t *e = &region.entries[i];
        if (!atomic_load_explicit(&e->live, memory_order_acquire))
            continue;
        int s = atomic_load_explicit(&e->slot, memory_order_relaxed);
        if (s < 0 || s >= region.nslots)
            continue;
        snap_t *p = &snaps[s];
        p->live = true;
        for (int k = 0; k < BL_MC_COUNT; k++)
            p->c[k] += atomic_load_explicit(&e->c[k], memory_order_relaxed);
        for (int k = BL_MG_CONN_HTTP; k <= BL_MG_DOWN_EVENTS; k++) /* the summed gauges */
            p->g[k] += atomic_load_explicit(&e->g[k], memory_order_relaxed);
        int64_t state = atomic_load_explicit(&e->g[BL_MG_STATE], memory_order_relaxed);
        p->accepting |= state == BL_METRICS_ACCEPTING;
        /* The loop is late by what passed since its heartbeat, beyond the
         * heartbeat's period: it grows while the app blocks the loop. */
        int64_t beat = atomic_load_explicit(&e->g[BL_MG_LOOP_BEAT_NS], memory_order_relaxed);
        int64_t every = atomic_load_explicit(&e->g[BL_MG_LOOP_INTERVAL_NS], memory_order_relaxed);
        if (beat != 0) {
            double lag = (double)(now - beat - every) / 1e9;
            if (lag < 0)
                lag = 0;
            if (!p->has_lag || lag > p->lag_s)
                p->lag_s = lag;
            p->has_lag = true;
        }
    }
}

static void family(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{worker="s",extra} value */
static void sample(FILE *out, const char *name, int s, const char *extra, const char *value)
{
    bool labels = region.labelled || extra != NULL;
    fputs(name, out);
    if (labels) {
        fputc('{', out);
        if (region.labelled)
            fprintf(out, "worker=\"%d\"%s", s, extra != NULL ? "," : "");
        if (extra != NULL)
            fputs(extra, out);
        fputc('}', out);
    }
    fprintf(out, " %s\n", value);
}

static void sample_u(FILE *out, const char *name, int s, const char *extra, uint64_t v)
{
    char num[32];
    snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
    sample(out, name, s, extra, num);
}

static void sample_i(FILE *out, const char *name, int s, const char *extra, int64_t v)
{
    char num[32];
    snprintf(num, sizeof(num), "%lld", (long long)(v < 0 ? 0 : v));
    sample(out, name, s, extra, num);
}

static void render_families(FILE *out, const snap_t *snaps)
{
    static const char *const dirs[] = {"direction=\"in\"", "direction=\"out\""};
    char label[48];
    int n = region.nslots;

    family(out, "bayleaf_connections", "gauge", "Open client connections by kind.");
    for (int s = 0; s < n; s++) {
        sample_i(out, "bayleaf_connections", s, "kind=\"http\"", snaps[s].g[BL_MG_CONN_HTTP]);
        sample_i(out, "bayleaf_connections", s, "kind=\"websocket\"", snaps[s].g[BL_MG_CONN_WS]);
    }
    family(out, "bayleaf_http_responses_total", "counter", "HTTP responses by status class.");
    for (int s = 0; s < n; s++) {
        for (int k = 0; k < 5; k++) {
            snprintf(label, sizeof(label), "status=\"%dxx\"", k + 1);
            sample_u(out, "bayleaf_http_responses_total", s, label, snaps[s].c[BL_MC_HTTP_1XX + k]);
        }
    }
    family(out, "bayleaf_websocket_messages_total", "counter",
           "WebSocket messages received (in) and sent (out).");
    for (int s = 0; s < n; s++) {
        sample_u(out, "bayleaf_websocket_messages_total", s, dirs[0], snaps[s].c[BL_MC_WS_MSG_IN]);
        sample_u(out, "bayleaf_websocket_messages_total", s, dirs[1], snaps[s].c[BL_MC_WS_MSG_OUT]);
    }
    family(out, "bayleaf_websocket_bytes_total", "counter",
           "WebSocket message payload bytes received (in) and sent (out).");
    for (int s = 0; s < n; s++) {
        sample_u(out, "bayleaf_websocket_bytes_total", s, dirs[0], snaps[s].c[BL_MC_WS_BYTES_IN]);
        sample_u(out, "bayleaf_websocket_bytes_total", s, dirs[1], snaps[s].c[BL_MC_WS_BYTES_OUT]);
    }
    family(out, "bayleaf_websocket_closes_total", "counter",
           "Ended WebSockets by close code (1006: no close frame).");
    for (int s = 0; s < n; s++) {
        for (int k = 0; k <= BL_METRICS_CLOSE_N; k++) {
            uint64_t v = snaps[s].c[BL_MC_WS_CLOSE + k];
            if (v == 0)
                continue;
            if (k < BL_METRICS_CLOSE_N)
                snprintf(label, sizeof(label), "code=\"%d\"", BL_METRICS_CLOSE_FIRST + k);
            else
                snprintf(label, sizeof(label), "code=\"other\"");
            sample_u(out, "bayleaf_websocket_closes_total", s, label, v);
        }
    }
    family(out, "bayleaf_bridge_queued_bytes", "gauge",
           "Bytes queued between the threads: up (to Python) and down (to the I/O thread).");
    for (int s = 0; s < n; s++) {
        sample_i(out, "bayleaf_bridge_queued_bytes", s, "direction=\"up\"",
                 snaps[s].g[BL_MG_UP_BYTES]);
        sample_i(out, "bayleaf_bridge_queued_bytes", s, "direction=\"down\"",
                 snaps[s].g[BL_MG_DOWN_BYTES]);
    }
    family(out, "bayleaf_bridge_queued_events", "gauge", "Events queued between the threads.");
    for (int s = 0; s < n; s++) {
        sample_i(out, "bayleaf_bridge_queued_events", s, "direction=\"up\"",
                 snaps[s].g[BL_MG_UP_EVENTS]);
        sample_i(out, "bayleaf_bridge_queued_events", s, "direction=\"down\"",
                 snaps[s].g[BL_MG_DOWN_EVENTS]);
    }
    family(out, "bayleaf_python_loop_lag_seconds", "gauge",
           "How late the Python event loop is: it grows while the app blocks it.");
    for (int s = 0; s < n; s++) {
        if (snaps[s].has_lag) {
            char num[32];
            snprintf(num, sizeof(num), "%.6f", snaps[s].lag_s);
            sample(out, "bayleaf_python_loop_lag_seconds", s, NULL, num);
        }
    }
    family(out, "bayleaf_send_timeouts_total", "counter",
           "Clients dropped for reading none of their pending output (--send-timeout).");
    for (int s = 0; s < n; s++)
        sample_u(out, "bayleaf_send_timeouts_total", s, NULL, snaps[s].c[BL_MC_SEND_TIMEOUTS]);
    family(out, "bayleaf_sendfile_bytes_total", "counter",
           "Response body bytes written from files with sendfile(2) (wsgi.file_wrapper).");
    for (int s = 0; s < n; s++)
        sample_u(out, "bayleaf_sendfile_bytes_total", s, NULL, snaps[s].c[BL_MC_SENDFILE_BYTES]);
    family(out, "bayleaf_accepting", "gauge",
           "1 when lifespan startup is over and connections are accepted, else 0.");
    for (int s = 0; s < n; s++)
        sample_u(out, "bayleaf_accepting", s, NULL, snaps[s].accepting ? 1 : 0);
    if (region.labelled) {
        family(out, "bayleaf_worker_restarts_total", "counter",
               "Workers restarted by the supervisor after they exited.");
        for (int s = 0; s < n; s++)
            sample_u(out, "bayleaf_worker_restarts_total", s, NULL,
                     atomic_load_explicit(&region.slots[s].restarts, memory_order_relaxed));
    }
}

void bl_metrics_render(FILE *out)
{
    if (region.map == NULL)
        return;
    snap_t *snaps = calloc((size_t)region.nslots, sizeof(*snaps));
    if (snaps == NULL)
        return;
    snapshot(snaps);
    render_families(out, snaps);
    free(snaps);
}
