/* bl_fault_*: a named site fails once, on the use its spec names; other
 * sites and other uses go through; a bad spec is refused with its reason. */
#include "bayleaf/common/fault.h"
#include "check.h"

#include <errno.h>

static void test_off(void)
{
    char err[128];
    CHECK(bl_fault_init(NULL, err, sizeof(err)) == 0);
    for (int i = 0; i < 10; i++)
        CHECK(!bl_fault_fails(BL_FAULT_ACCEPT) && !bl_fault_fails(BL_FAULT_WRITABLE));
}

static void test_nth_use_fails_once(void)
{
    char err[128];
    CHECK(bl_fault_init("accept:3,writable:1", err, sizeof(err)) == 0);
    CHECK(bl_fault_fails(BL_FAULT_WRITABLE));
    CHECK(!bl_fault_fails(BL_FAULT_WRITABLE));
    CHECK(!bl_fault_fails(BL_FAULT_ACCEPT));
    CHECK(!bl_fault_fails(BL_FAULT_ACCEPT));
    CHECK(bl_fault_fails(BL_FAULT_ACCEPT));
    for (int i = 0; i < 10; i++)
        CHECK(!bl_fault_fails(BL_FAULT_ACCEPT));
    /* a new spec starts the counts again */
    CHECK(bl_fault_init("accept:1", err, sizeof(err)) == 0);
    CHECK(bl_fault_fails(BL_FAULT_ACCEPT));
    CHECK(!bl_fault_fails(BL_FAULT_WRITABLE));
}

static void test_bad_specs(void)
{
    static const char *const bad[] = {"accept",    "accept:",   "accept:0",
                                      "accept:-1", "accept:3x", "nosuch:1",
                                      "accept:1,", ":1",        "accept:99999999999999999999999"};
    char err[128];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK(bl_fault_init(bad[i], err, sizeof(err)) == -EINVAL);
        CHECK(strstr(err, "site:n") != NULL);
    }
    /* a refused spec leaves injection as it was (off) */
    CHECK(bl_fault_init("", err, sizeof(err)) == 0);
    CHECK(bl_fault_init("accept:1,bogus", err, sizeof(err)) == -EINVAL);
    CHECK(!bl_fault_fails(BL_FAULT_ACCEPT));
}

int main(void)
{
    test_off();
    test_nth_use_fails_once();
    test_bad_specs();
    return check_report();
}
