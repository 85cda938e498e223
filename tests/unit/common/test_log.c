/* Log lines: each level prints its own name and goes out at its verbosity;
 * the rate limiter lets one line a second through, the held-back ones counted. */
#include "bayleaf/common/log.h"
#include "check.h"

#include <stdio.h>
#include <unistd.h>

/* What one bl_log call wrote to stderr (fd 2, where bl_log writes). */
static char *captured(int level, int verbosity, const char *msg)
{
    static char buf[4096];
    int fds[2];
    buf[0] = '\0';
    if (!CHECK(pipe(fds) == 0))
        return buf;
    int saved = dup(STDERR_FILENO);
    CHECK(saved >= 0 && dup2(fds[1], STDERR_FILENO) == STDERR_FILENO);
    bl_log_verbosity = verbosity;
    bl_log(level, "%s", msg);
    CHECK(dup2(saved, STDERR_FILENO) == STDERR_FILENO);
    close(saved);
    close(fds[1]);
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    return buf;
}

static void test_level_names(void)
{
    CHECK_EQ_STR(bl_log_level_name(BL_LOG_ERROR), "ERROR");
    CHECK_EQ_STR(bl_log_level_name(BL_LOG_WARNING), "WARNING");
    CHECK_EQ_STR(bl_log_level_name(BL_LOG_INFO), "INFO");
    CHECK_EQ_STR(bl_log_level_name(BL_LOG_DEBUG), "DEBUG");
    /* The thresholds --verbosity has always had: WARNING and INFO both at 1. */
    CHECK_EQ_INT(bl_log_level_verbosity(BL_LOG_ERROR), 0);
    CHECK_EQ_INT(bl_log_level_verbosity(BL_LOG_WARNING), 1);
    CHECK_EQ_INT(bl_log_level_verbosity(BL_LOG_INFO), 1);
    CHECK_EQ_INT(bl_log_level_verbosity(BL_LOG_DEBUG), 2);
}

static void test_lines(void)
{
    /* "date time,ms LEVEL    message": the level padded to 8, as logs.py has it. */
    CHECK_HAS(captured(BL_LOG_ERROR, 1, "e1"), " ERROR    e1\n");
    CHECK_HAS(captured(BL_LOG_WARNING, 1, "w1"), " WARNING  w1\n");
    CHECK_HAS(captured(BL_LOG_INFO, 1, "i1"), " INFO     i1\n");
    CHECK_HAS(captured(BL_LOG_DEBUG, 2, "d1"), " DEBUG    d1\n");
    /* Below its verbosity a level prints nothing. */
    CHECK_EQ_STR(captured(BL_LOG_DEBUG, 1, "d2"), "");
    CHECK_EQ_STR(captured(BL_LOG_WARNING, 0, "w2"), "");
    CHECK_EQ_STR(captured(BL_LOG_INFO, 0, "i2"), "");
    CHECK_HAS(captured(BL_LOG_ERROR, 0, "e2"), " ERROR    e2\n");
    bl_log_verbosity = 1;
}

/* --log-fmt: Python's %-style fields, flags and widths, read as Python reads them. */
static void test_format(void)
{
    char line[512];
    bl_log_record_t r = {.level = BL_LOG_WARNING,
                         .name = "bayleaf.server",
                         .file = "../gateway/io/server.c",
                         .line = 42,
                         .func = "on_signal",
                         .message = "Received SIGTERM",
                         .created = 1e9 + 0.25};
    CHECK_EQ_INT(bl_log_set_format("%(levelname)s:%(name)s:%(message)s"), 0);
    CHECK_EQ_STR(captured(BL_LOG_INFO, 1, "i3"), "INFO:bayleaf.server:i3\n");
    CHECK_EQ_INT(bl_log_set_format("[%(levelname)-8s] %(levelno)d %(filename)s:%(lineno)d "
                                   "%(module)s.%(funcName)s %(msecs)03d %(created).1f %%"),
                 0);
    bl_log_format(&r, line, sizeof(line));
    CHECK_EQ_STR(line, "[WARNING ] 30 server.c:42 server.on_signal 250 1000000000.2 %\n");
    CHECK_EQ_INT(bl_log_set_format("%(message)r|%(levelname)5.2s|%(process)d"), 0);
    bl_log_format(&r, line, sizeof(line));
    char want[64];
    snprintf(want, sizeof(want), "'Received SIGTERM'|   WA|%d\n", (int)getpid());
    CHECK_EQ_STR(line, want);
    /* The I/O thread's lines name it; the main thread is Python's MainThread. */
    CHECK_EQ_INT(bl_log_set_format("%(threadName)s"), 0);
    bl_log_format(&r, line, sizeof(line));
    CHECK_EQ_STR(line, "MainThread\n");
    /* What Python's Formatter refuses: no field, a bare directive, an unknown conversion. */
    CHECK_EQ_INT(bl_log_set_format("plain"), -1);
    CHECK_EQ_INT(bl_log_set_format("%(message"), -1);
    CHECK_EQ_INT(bl_log_set_format("%s %(message)s"), -1);
    CHECK_EQ_INT(bl_log_set_format("%(message)q"), -1);
    bl_log_format(&r, line, sizeof(line)); /* the last good one stays */
    CHECK_EQ_STR(line, "MainThread\n");
    CHECK_EQ_INT(bl_log_set_format(NULL), 0);
    CHECK_HAS(captured(BL_LOG_ERROR, 1, "e4"), " ERROR    e4\n");
}

static void test_limit(void)
{
    bl_log_limit_t l = {0};
    unsigned held = 99;
    CHECK(bl_log_limit_pass(&l, 5000, &held) && held == 0); /* the first goes out */
    CHECK(!bl_log_limit_pass(&l, 5001, &held));
    CHECK(!bl_log_limit_pass(&l, 5999, &held));
    CHECK(bl_log_limit_pass(&l, 6000, &held) && held == 2); /* a second later, with the count */
    CHECK(bl_log_limit_pass(&l, 9000, &held) && held == 0);
    bl_log_limit_t z = {0};
    CHECK(bl_log_limit_pass(&z, 0, &held) && held == 0); /* a clock at 0 still limits */
    CHECK(!bl_log_limit_pass(&z, 10, &held));
}

int main(void)
{
    test_level_names();
    test_lines();
    test_format();
    test_limit();
    return check_report();
}
