/* The log rate limiter: one line a second, the held-back occurrences counted. */
#include "bayleaf/common/log.h"
#include "check.h"

int main(void)
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
    return check_report();
}
