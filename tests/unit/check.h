/* A tiny assertion helper for the unit tests: failed checks print file:line and
 * are counted; check_report() prints "N passed, M failed" and gives the exit code. */
#ifndef BAYLEAF_TEST_CHECK_H
#define BAYLEAF_TEST_CHECK_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned check_passed, check_failed, check_known;

static inline bool check_result(bool ok, const char *file, int line, const char *what)
{
    if (ok) {
        check_passed++;
    } else {
        check_failed++;
        fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what);
    }
    return ok;
}

#define CHECK(cond) check_result((cond), __FILE__, __LINE__, #cond)

/* A check that fails today because of a reported bug in the code under test:
 * counted apart so the suite stays usable, and flagged once it passes so it can
 * become a plain CHECK. */
static inline bool check_known_bug(bool ok, const char *file, int line, const char *what,
                                   const char *bug)
{
    if (ok) {
        check_passed++;
        fprintf(stderr, "%s:%d: known bug no longer reproduces (make it a CHECK): %s\n", file, line,
                bug);
    } else {
        check_known++;
        fprintf(stderr, "%s:%d: KNOWN BUG: %s [%s]\n", file, line, bug, what);
    }
    return ok;
}

#define CHECK_BUG(cond, bug) check_known_bug((cond), __FILE__, __LINE__, #cond, bug)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (!check_result(a_ == b_, __FILE__, __LINE__, #a " == " #b))                             \
            fprintf(stderr, "    got %lld, expected %lld\n", a_, b_);                              \
    } while (0)

#define CHECK_EQ_DBL(a, b)                                                                         \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!check_result(a_ == b_, __FILE__, __LINE__, #a " == " #b))                             \
            fprintf(stderr, "    got %g, expected %g\n", a_, b_);                                  \
    } while (0)

/* Either side may be NULL. */
#define CHECK_EQ_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        bool ok_ = (a_ == NULL || b_ == NULL) ? a_ == b_ : strcmp(a_, b_) == 0;                    \
        if (!check_result(ok_, __FILE__, __LINE__, #a " == " #b))                                  \
            fprintf(stderr, "    got \"%s\", expected \"%s\"\n", a_ ? a_ : "(null)",               \
                    b_ ? b_ : "(null)");                                                           \
    } while (0)

/* `len` bytes at `p` equal the C string `s`. */
#define CHECK_MEM_STR(p, len, s)                                                                   \
    do {                                                                                           \
        const char *p_ = (const char *)(p), *s_ = (s);                                             \
        size_t len_ = (size_t)(len);                                                               \
        bool ok_ = p_ != NULL && len_ == strlen(s_) && memcmp(p_, s_, len_) == 0;                  \
        if (!check_result(ok_, __FILE__, __LINE__, #p "[0.." #len ") == " #s))                     \
            fprintf(stderr, "    got \"%.*s\" (%zu bytes), expected \"%s\"\n", p_ ? (int)len_ : 6, \
                    p_ ? p_ : "(null)", len_, s_);                                                 \
    } while (0)

#define CHECK_MEM(a, alen, b, blen)                                                                \
    do {                                                                                           \
        size_t al_ = (size_t)(alen), bl_ = (size_t)(blen);                                         \
        bool ok_ = al_ == bl_ && memcmp((a), (b), al_) == 0;                                       \
        if (!check_result(ok_, __FILE__, __LINE__, #a " == " #b))                                  \
            fprintf(stderr, "    lengths %zu and %zu, or bytes differ\n", al_, bl_);               \
    } while (0)

/* `s` contains `sub`. */
#define CHECK_HAS(s, sub)                                                                          \
    do {                                                                                           \
        const char *s_ = (s), *sub_ = (sub);                                                       \
        if (!check_result(s_ != NULL && strstr(s_, sub_) != NULL, __FILE__, __LINE__,              \
                          #s " contains " #sub))                                                   \
            fprintf(stderr, "    \"%s\" lacks \"%s\"\n", s_ ? s_ : "(null)", sub_);                \
    } while (0)

#define CHECK_LACKS(s, sub)                                                                        \
    do {                                                                                           \
        const char *s_ = (s), *sub_ = (sub);                                                       \
        if (!check_result(s_ != NULL && strstr(s_, sub_) == NULL, __FILE__, __LINE__,              \
                          #s " lacks " #sub))                                                      \
            fprintf(stderr, "    \"%s\" has \"%s\"\n", s_ ? s_ : "(null)", sub_);                  \
    } while (0)

/* Runs fn in a child process, so a crash in the code under test is one failure
 * instead of the end of the suite. The child's counts are folded into ours. With
 * a non-NULL bug, a crash or a failed check is that known bug, not a failure. */
static inline void check_isolated(const char *name, void (*fn)(void), const char *bug)
{
    int fds[2];
    unsigned counts[3] = {0, 0, 0};
    if (pipe(fds) != 0) {
        check_result(false, __FILE__, __LINE__, "pipe()");
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        check_passed = check_failed = check_known = 0;
        fn();
        counts[0] = check_passed;
        counts[1] = check_failed;
        counts[2] = check_known;
        if (write(fds[1], counts, sizeof(counts)) != (ssize_t)sizeof(counts))
            _exit(2);
        fflush(NULL);
        exit(0); /* exit, not _exit: LeakSanitizer runs at exit */
    }
    close(fds[1]);
    int status = 0;
    ssize_t n = read(fds[0], counts, sizeof(counts));
    close(fds[0]);
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        check_result(false, __FILE__, __LINE__, "fork()/waitpid()");
        return;
    }
    /* With a known bug, the child's failed checks are that bug too. */
    bool child_failed = n == (ssize_t)sizeof(counts) && counts[1] > 0;
    if (n == (ssize_t)sizeof(counts)) {
        check_passed += counts[0];
        check_known += counts[2];
        if (bug == NULL)
            check_failed += counts[1];
    }
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (bug != NULL) {
        check_known_bug(ok && !child_failed, __FILE__, __LINE__, name, bug);
    } else if (!ok) {
        check_failed++;
        if (WIFSIGNALED(status))
            fprintf(stderr, "%s: FAILED: crashed with signal %d\n", name, WTERMSIG(status));
        else
            fprintf(stderr, "%s: FAILED: exited with status %d\n", name, WEXITSTATUS(status));
    }
}

/* Prints the totals (known bugs on their own line, before the final one). */
static inline int check_report(void)
{
    fflush(stderr);
    if (check_known > 0)
        printf("%u known bugs (not counted as failures)\n", check_known);
    printf("%u passed, %u failed\n", check_passed, check_failed);
    return check_failed == 0 ? 0 : 1;
}

#endif
