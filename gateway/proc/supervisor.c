/* The --workers supervisor: one thread, no libuv, no Python. It owns the
 * listening sockets for its whole life, so replacing a worker never refuses a
 * connection. Signals arrive on a signalfd; each worker has a pipe it writes one
 * byte to once it accepts (lifespan startup is over). */
#define BL_LOG_NAME "bayleaf.supervisor"
#include "bayleaf/proc/supervisor.h"
#include "bayleaf/io/balance.h"
#include "bayleaf/common/log.h"
#include "bayleaf/common/metrics.h"
#include "bayleaf/io/sd_notify.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BACKOFF_MIN   0.1
#define BACKOFF_MAX   10.0
#define BACKOFF_RESET 30.0 /* a worker that ran this long starts the back-off over */
#define READY_TIMEOUT 60.0 /* a replacement not ready by then abandons the reload */
#define STOP_MARGIN   5.0  /* lifespan shutdown, beyond the drain deadlines */

typedef struct {
    pid_t pid; /* 0: a free entry */
    int slot;
    unsigned gen; /* SIGHUPs seen when it started: older ones get replaced */
    int ready_fd; /* read end of its ready pipe, -1 once closed */
    bool ready;
    bool retiring; /* sent SIGTERM on purpose: not restarted */
    double started, kill_at;
} worker_t;

typedef struct {
    double restart_at; /* 0: none pending */
    double backoff;
} slot_t;

typedef enum { BOOTING, RUNNING, STOPPING } phase_t;

typedef struct {
    const bl_config_t *cfg;
    bl_listen_set_t *set;
    bl_worker_fn fn;
    void *arg;
    pid_t self;
    sigset_t oldmask;
    int sigfd;
    int nslots, cap;
    slot_t *slots;
    worker_t *w;
    struct pollfd *pfd;    /* cap + 1: the signalfd and the ready pipes */
    worker_t **owner;      /* the worker of each pfd entry */
    bl_balance_t *balance; /* one entry per element of w */
    unsigned gen;
    phase_t phase;
    bool reloading;
    pid_t fresh; /* the replacement being waited on during a reload */
    double fresh_deadline;
    pid_t old; /* the worker it replaces, draining */
    int status;
} sup_t;

static double min_d(double a, double b)
{
    return a < b ? a : b;
}

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double stop_grace(const sup_t *s)
{
    return s->cfg->graceful_timeout + s->cfg->application_close_timeout + STOP_MARGIN;
}

static void describe_status(int st, char *buf, size_t cap)
{
    if (WIFSIGNALED(st)) {
        const char *name = sigabbrev_np(WTERMSIG(st));
        snprintf(buf, cap, "was killed by signal %d (SIG%s)", WTERMSIG(st), name ? name : "?");
    } else {
        snprintf(buf, cap, "exited with status %d", WEXITSTATUS(st));
    }
}

/* ---- the child side -------------------------------------------------- */

static void become_worker(sup_t *s, int index, int ready_fd)
{
    bl_listen_set_t *set = s->set;
    bl_worker_fn fn = s->fn;
    void *arg = s->arg;

    /* Orphaned workers drain and leave instead of serving on unsupervised. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != s->self)
        _exit(1);
    close(s->sigfd);
    for (int i = 0; i < s->cap; i++) {
        if (s->w[i].pid != 0 && s->w[i].ready_fd >= 0)
            close(s->w[i].ready_fd);
    }
    /* Until the I/O loop takes SIGHUP over: a terminal's hangup reaches the
     * whole group, and reloading is the supervisor's business. */
    signal(SIGHUP, SIG_IGN);
    sigprocmask(SIG_SETMASK, &s->oldmask, NULL);
    bl_sd_notify_disable(); /* the supervisor speaks to systemd */
    bl_balance_attach(s->balance, s->cap, index);
    bl_metrics_attach(index);
    for (int i = 0; i < set->n; i++)
        set->socks[i].owns_path = false; /* the supervisor unlinks them */
    free(s->w);
    free(s->slots);
    free(s->pfd);
    free(s->owner);
    exit(fn(set, ready_fd, arg)); /* exit, not _exit: atexit handlers and LeakSanitizer */
}

/* ---- the supervisor side --------------------------------------------- */

static worker_t *worker_by_pid(sup_t *s, pid_t pid)
{
    for (int i = 0; pid != 0 && i < s->cap; i++) {
        if (s->w[i].pid == pid)
            return &s->w[i];
    }
    return NULL;
}

static int live_count(const sup_t *s)
{
    int n = 0;
    for (int i = 0; i < s->cap; i++)
        n += s->w[i].pid != 0;
    return n;
}

/* The worker serving slot (not retiring), other than except. */
static worker_t *slot_worker(sup_t *s, int slot, pid_t except)
{
    for (int i = 0; i < s->cap; i++) {
        worker_t *w = &s->w[i];
        if (w->pid != 0 && w->pid != except && w->slot == slot && !w->retiring)
            return w;
    }
    return NULL;
}

static pid_t spawn(sup_t *s, int slot)
{
    worker_t *w = NULL;
    int fds[2];
    for (int i = 0; w == NULL && i < s->cap; i++) {
        if (s->w[i].pid == 0)
            w = &s->w[i];
    }
    if (w == NULL || pipe2(fds, O_CLOEXEC) != 0) {
        BL_ERROR("Cannot start a worker: %s", w == NULL ? "too many processes" : strerror(errno));
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    bl_balance_clear(s->balance, (int)(w - s->w));
    bl_metrics_entry_start((int)(w - s->w), slot);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        become_worker(s, (int)(w - s->w), fds[1]);
    }
    close(fds[1]);
    if (pid < 0) {
        BL_ERROR("Cannot start a worker: fork: %s", strerror(errno));
        bl_metrics_entry_end((int)(w - s->w));
        close(fds[0]);
        return -1;
    }
    *w = (worker_t){
        .pid = pid, .slot = slot, .gen = s->gen, .ready_fd = fds[0], .started = now_sec()};
    BL_INFO("Started worker %d", (int)pid);
    return pid;
}

static void retire(worker_t *w, int sig, double grace)
{
    w->retiring = true;
    w->kill_at = sig == SIGKILL ? 0 : now_sec() + grace;
    kill(w->pid, sig);
}

static void schedule_restart(sup_t *s, int slot, double ran)
{
    slot_t *sl = &s->slots[slot];
    if (ran >= BACKOFF_RESET)
        sl->backoff = 0;
    sl->backoff = sl->backoff == 0 ? BACKOFF_MIN : min_d(sl->backoff * 2, BACKOFF_MAX);
    sl->restart_at = now_sec() + sl->backoff;
}

static void begin_stop(sup_t *s)
{
    s->phase = STOPPING;
    bl_sd_notify("STOPPING=1");
    for (int i = 0; i < s->nslots; i++)
        s->slots[i].restart_at = 0;
    for (int i = 0; i < s->cap; i++) {
        if (s->w[i].pid != 0)
            retire(&s->w[i], SIGTERM, stop_grace(s));
    }
}

/* A failed replacement: the running workers stay, as if they were new. */
static void abandon_reload(sup_t *s)
{
    for (int i = 0; i < s->cap; i++)
        s->w[i].gen = s->gen;
    s->fresh = 0;
    s->reloading = false;
    bl_sd_notify("READY=1");
}

static void on_signal(sup_t *s, int sig)
{
    if (sig == SIGHUP) {
        if (s->phase == STOPPING)
            return;
        BL_INFO("Received SIGHUP: replacing the workers one by one");
        s->gen++;
    } else if (sig == SIGTERM || sig == SIGINT) {
        if (s->phase != STOPPING) {
            BL_INFO("Received %s: stopping %d worker(s)", sig == SIGINT ? "SIGINT" : "SIGTERM",
                    live_count(s));
            begin_stop(s);
            return;
        }
        BL_INFO("Second signal: killing the workers");
        for (int i = 0; i < s->cap; i++) {
            if (s->w[i].pid != 0)
                retire(&s->w[i], SIGKILL, 0);
        }
    }
}

static void on_ready(sup_t *s, worker_t *w)
{
    w->ready = true;
    if (s->phase == BOOTING) {
        for (int i = 0; i < s->nslots; i++) {
            worker_t *sw = slot_worker(s, i, 0);
            if (sw == NULL || !sw->ready)
                return;
        }
        s->phase = RUNNING;
        BL_INFO("%d worker(s) ready", s->nslots);
        bl_sd_notify("READY=1");
    } else if (w->pid == s->fresh) {
        worker_t *old = slot_worker(s, w->slot, w->pid);
        s->fresh = 0;
        if (old != NULL && s->phase == RUNNING) {
            BL_INFO("Worker %d ready: stopping worker %d", (int)w->pid, (int)old->pid);
            s->old = old->pid;
            retire(old, SIGTERM, stop_grace(s));
        }
    } else if (s->phase == RUNNING) {
        BL_INFO("Worker %d ready", (int)w->pid);
    }
}

static void on_exit_status(sup_t *s, pid_t pid, int st)
{
    worker_t *w = worker_by_pid(s, pid);
    char how[96];
    if (w == NULL)
        return;
    describe_status(st, how, sizeof(how));
    if (w->ready_fd >= 0)
        close(w->ready_fd);
    worker_t gone = *w;
    bl_balance_clear(s->balance, (int)(w - s->w));
    bl_metrics_entry_end((int)(w - s->w));
    w->pid = 0;
    w->ready_fd = -1;
    if (pid == s->old)
        s->old = 0;
    if (s->phase == STOPPING || gone.retiring) {
        BL_INFO("Worker %d %s", (int)pid, how);
        return;
    }
    if (s->phase == BOOTING && !gone.ready) {
        BL_ERROR("Worker %d %s before it was ready: stopping", (int)pid, how);
        s->status = 1;
        begin_stop(s);
        return;
    }
    if (pid == s->fresh) {
        BL_ERROR("Worker %d %s before it was ready: reload abandoned, the running workers stay",
                 (int)pid, how);
        abandon_reload(s);
        return;
    }
    worker_t *other = slot_worker(s, gone.slot, 0);
    if (other != NULL) {
        /* Its replacement, starting during a reload, takes its place. */
        BL_ERROR("Worker %d %s; worker %d takes its place", (int)pid, how, (int)other->pid);
        return;
    }
    schedule_restart(s, gone.slot, now_sec() - gone.started);
    bl_metrics_restart(gone.slot);
    BL_ERROR("Worker %d %s; restarting it in %.1f s", (int)pid, how, s->slots[gone.slot].backoff);
}

/* Workers sent SIGTERM on purpose that outlived their grace get SIGKILL. */
static void kill_overdue(sup_t *s, double now)
{
    for (int i = 0; i < s->cap; i++) {
        worker_t *w = &s->w[i];
        if (w->pid != 0 && w->retiring && w->kill_at > 0 && now >= w->kill_at) {
            BL_WARN("Worker %d did not exit in time: killing it", (int)w->pid);
            retire(w, SIGKILL, 0);
        }
    }
}

/* Slots whose back-off is over get a worker again. */
static void restart_due(sup_t *s, double now)
{
    for (int i = 0; i < s->nslots; i++) {
        slot_t *sl = &s->slots[i];
        if (sl->restart_at > 0 && now >= sl->restart_at) {
            sl->restart_at = 0;
            if (slot_worker(s, i, 0) == NULL && spawn(s, i) < 0)
                schedule_restart(s, i, 0);
        }
    }
}

static void notify_reloading(void)
{
    char msg[96];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    bl_sd_notify(msg);
}

/* The reload sequence, one worker at a time: give up on a replacement that
 * is late, else start the next one for a worker of an older generation, else
 * (none left) the reload is complete. */
static void reload_advance(sup_t *s, double now)
{
    if (s->fresh != 0 && now >= s->fresh_deadline) {
        worker_t *w = worker_by_pid(s, s->fresh);
        BL_ERROR("Worker %d not ready after %.0f s: reload abandoned", (int)s->fresh,
                 READY_TIMEOUT);
        if (w != NULL)
            retire(w, SIGKILL, 0);
        abandon_reload(s);
    }
    if (s->fresh != 0 || s->old != 0)
        return;
    worker_t *stale = NULL;
    for (int i = 0; stale == NULL && i < s->cap; i++) {
        if (s->w[i].pid != 0 && !s->w[i].retiring && s->w[i].gen != s->gen)
            stale = &s->w[i];
    }
    if (stale == NULL) {
        if (s->reloading) {
            s->reloading = false;
            BL_INFO("Reload complete: %d worker(s) ready", s->nslots);
            bl_sd_notify("READY=1");
        }
        return;
    }
    if (!s->reloading) {
        notify_reloading();
        s->reloading = true;
    }
    s->fresh = spawn(s, stale->slot);
    s->fresh_deadline = now + READY_TIMEOUT;
    if (s->fresh < 0) {
        BL_ERROR("Reload abandoned");
        abandon_reload(s);
    }
}

/* Timers and the reload sequence; called after every wake-up. */
static void step(sup_t *s)
{
    double now = now_sec();
    kill_overdue(s, now);
    if (s->phase == STOPPING)
        return;
    restart_due(s, now);
    if (s->phase == RUNNING)
        reload_advance(s, now);
}

static void earliest(double *next, double t)
{
    if (*next < 0 || t < *next)
        *next = t;
}

/* Until the next deadline, for poll(): -1 when there is none. */
static int next_timeout_ms(const sup_t *s)
{
    double next = -1, now = now_sec();
    for (int i = 0; i < s->cap; i++) {
        if (s->w[i].pid != 0 && s->w[i].retiring && s->w[i].kill_at > 0)
            earliest(&next, s->w[i].kill_at);
    }
    for (int i = 0; i < s->nslots; i++) {
        if (s->slots[i].restart_at > 0)
            earliest(&next, s->slots[i].restart_at);
    }
    if (s->fresh != 0)
        earliest(&next, s->fresh_deadline);
    if (next < 0)
        return -1;
    return next <= now ? 0 : (int)((next - now) * 1000) + 1;
}

static void wait_events(sup_t *s)
{
    struct pollfd *pfd = s->pfd;
    worker_t **owner = s->owner;
    int n = 1;
    pfd[0] = (struct pollfd){.fd = s->sigfd, .events = POLLIN};
    for (int i = 0; i < s->cap; i++) {
        if (s->w[i].pid != 0 && s->w[i].ready_fd >= 0) {
            owner[n] = &s->w[i];
            pfd[n++] = (struct pollfd){.fd = s->w[i].ready_fd, .events = POLLIN};
        }
    }
    if (poll(pfd, (nfds_t)n, next_timeout_ms(s)) < 0)
        return; /* EINTR: look again */
    struct signalfd_siginfo si;
    if (pfd[0].revents & POLLIN) {
        while (read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
            on_signal(s, (int)si.ssi_signo);
    }
    for (int i = 1; i < n; i++) {
        worker_t *w = owner[i];
        char byte;
        if (pfd[i].revents == 0 || w->ready_fd < 0)
            continue;
        ssize_t got = read(w->ready_fd, &byte, 1);
        close(w->ready_fd);
        w->ready_fd = -1;
        if (got == 1 && w->pid != 0)
            on_ready(s, w);
    }
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
        on_exit_status(s, pid, st);
}

int bl_supervisor_run(const bl_config_t *cfg, bl_listen_set_t *set, bl_worker_fn worker, void *arg)
{
    sup_t s = {.cfg = cfg, .set = set, .fn = worker, .arg = arg, .self = getpid()};
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, &s.oldmask);
    s.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    s.nslots = cfg->workers;
    s.cap = 2 * s.nslots + 4;
    s.slots = calloc((size_t)s.nslots, sizeof(*s.slots));
    s.w = calloc((size_t)s.cap, sizeof(*s.w));
    s.pfd = calloc((size_t)s.cap + 1, sizeof(*s.pfd));
    s.owner = calloc((size_t)s.cap + 1, sizeof(*s.owner));
    s.balance = bl_balance_new(s.cap);
    if (s.balance == NULL)
        BL_WARN("Cannot share connection counts between workers: accepting unbalanced");
    if (cfg->metrics != NULL && bl_metrics_init(s.nslots, s.cap, true) != 0) {
        fprintf(stderr, "bayleaf: error: --metrics: cannot map the counters: %s\n",
                strerror(errno));
        s.status = 1;
        goto done;
    }
    if (s.sigfd < 0 || s.slots == NULL || s.w == NULL || s.pfd == NULL || s.owner == NULL) {
        fprintf(stderr, "bayleaf: error: cannot start the supervisor: %s\n", strerror(errno));
        s.status = 1;
        goto done;
    }
    BL_INFO("Supervisor %d: starting %d worker(s)", (int)s.self, s.nslots);
    for (int i = 0; i < s.nslots && s.phase == BOOTING; i++) {
        if (spawn(&s, i) < 0) {
            s.status = 1;
            begin_stop(&s);
        }
    }
    while (s.phase != STOPPING || live_count(&s) > 0) {
        wait_events(&s);
        step(&s);
    }
    BL_INFO("Supervisor %d: all workers stopped", (int)s.self);
done:
    if (s.sigfd >= 0)
        close(s.sigfd);
    sigprocmask(SIG_SETMASK, &s.oldmask, NULL);
    bl_balance_free(s.balance, s.cap);
    free(s.owner);
    free(s.pfd);
    free(s.w);
    free(s.slots);
    return s.status;
}
