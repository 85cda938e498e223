/* The C-lines-to-Python relay (log_relay.h). */
#include "bayleaf/bridge/log_relay.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bl_log_line_t lines[BL_LOG_RELAY_CAP];
    double queued_at[BL_LOG_RELAY_CAP]; /* monotonic seconds */
    size_t head, n;
    int fd;
    bool running;
    pthread_t watch;
} relay = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER, .fd = -1};

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src != NULL ? src : "");
}

/* Writes the oldest queued line to stderr (lock held). */
static void write_oldest(void)
{
    const bl_log_line_t *l = &relay.lines[relay.head];
    bl_log_record_t r = {.level = l->level,
                         .name = l->name,
                         .file = l->file[0] ? l->file : NULL,
                         .line = l->line,
                         .func = l->func[0] ? l->func : NULL,
                         .message = l->message,
                         .created = l->created};
    bl_log_write(&r);
    relay.head = (relay.head + 1) % BL_LOG_RELAY_CAP;
    relay.n--;
}

/* Lines Python left waiting too long go out directly (lock held). */
static void write_stale(double now)
{
    while (relay.n > 0 && now - relay.queued_at[relay.head] >= BL_LOG_RELAY_MS / 1000.0)
        write_oldest();
}

static bool relay_sink(const bl_log_record_t *r)
{
    bool taken = false;
    pthread_mutex_lock(&relay.lock);
    double now = mono();
    write_stale(now);
    if (relay.running && relay.n < BL_LOG_RELAY_CAP) {
        size_t at = (relay.head + relay.n) % BL_LOG_RELAY_CAP;
        bl_log_line_t *l = &relay.lines[at];
        l->level = r->level;
        copy(l->name, sizeof(l->name), r->name);
        copy(l->message, sizeof(l->message), r->message);
        copy(l->file, sizeof(l->file), r->file);
        copy(l->func, sizeof(l->func), r->func);
        l->line = r->line;
        l->created = r->created;
        l->thread = (unsigned long)pthread_self();
        if (pthread_getname_np(pthread_self(), l->thread_name, sizeof(l->thread_name)) != 0)
            l->thread_name[0] = '\0';
        relay.queued_at[at] = now;
        if (relay.n++ == 0)
            pthread_cond_signal(&relay.changed);
        uint64_t one = 1;
        ssize_t w = write(relay.fd, &one, sizeof(one));
        (void)w;
        taken = true;
    } else {
        while (relay.n > 0) /* full: keep the order, then this line */
            write_oldest();
    }
    pthread_mutex_unlock(&relay.lock);
    return taken;
}

/* Wakes while lines wait, and writes those Python did not take in time. */
static void *watch_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "bayleaf-logs");
    pthread_mutex_lock(&relay.lock);
    while (relay.running) {
        if (relay.n == 0) {
            pthread_cond_wait(&relay.changed, &relay.lock);
            continue;
        }
        double due = relay.queued_at[relay.head] + BL_LOG_RELAY_MS / 1000.0;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        double wait = due - mono();
        if (wait > 0) {
            long ns = until.tv_nsec + (long)(wait * 1e9);
            until.tv_sec += ns / 1000000000L;
            until.tv_nsec = ns % 1000000000L;
            pthread_cond_timedwait(&relay.changed, &relay.lock, &until);
        }
        write_stale(mono());
    }
    pthread_mutex_unlock(&relay.lock);
    return NULL;
}

int bl_log_relay_start(void)
{
    pthread_mutex_lock(&relay.lock);
    if (relay.running) {
        pthread_mutex_unlock(&relay.lock);
        return relay.fd;
    }
    relay.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int err = relay.fd < 0 ? errno : 0;
    relay.running = err == 0;
    if (err == 0 && (err = pthread_create(&relay.watch, NULL, watch_main, NULL)) != 0) {
        relay.running = false;
        close(relay.fd);
        relay.fd = -1;
    }
    pthread_mutex_unlock(&relay.lock);
    if (err != 0)
        return -err;
    bl_log_set_sink(relay_sink);
    return relay.fd;
}

void bl_log_relay_stop(void)
{
    bl_log_set_sink(NULL);
    pthread_mutex_lock(&relay.lock);
    bool was = relay.running;
    relay.running = false;
    pthread_cond_signal(&relay.changed);
    while (relay.n > 0)
        write_oldest();
    pthread_mutex_unlock(&relay.lock);
    if (!was)
        return;
    pthread_join(relay.watch, NULL);
    close(relay.fd);
    relay.fd = -1;
}

size_t bl_log_relay_take(bl_log_line_t *out, size_t max)
{
    size_t k = 0;
    uint64_t count;
    pthread_mutex_lock(&relay.lock);
    if (relay.fd >= 0) {
        ssize_t r = read(relay.fd, &count, sizeof(count)); /* rearm: EAGAIN when none */
        (void)r;
    }
    while (k < max && relay.n > 0) {
        out[k++] = relay.lines[relay.head];
        relay.head = (relay.head + 1) % BL_LOG_RELAY_CAP;
        relay.n--;
    }
    pthread_mutex_unlock(&relay.lock);
    return k;
}
