/* Accept balancing's shared table: counts published by one process are seen by
 * another, and the "well above the least loaded" rule. */
#include "bayleaf/io/balance.h"
#include "check.h"

/* A forked worker publishes into entry i and exits. */
static void publish_from_child(bl_balance_t *b, int n, int i, size_t conns, bool accepting)
{
    pid_t pid = fork();
    if (pid == 0) {
        bl_balance_attach(b, n, i);
        bl_balance_publish(conns);
        bl_balance_set_accepting(accepting);
        _exit(0);
    }
    int st;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st));
}

int main(void)
{
    CHECK(!bl_balance_over(1000)); /* never attached: balancing is off */

    bl_balance_t *b = bl_balance_new(4);
    CHECK(b != NULL);
    bl_balance_attach(b, 4, 0);
    bl_balance_set_accepting(true);
    CHECK(!bl_balance_over(1000)); /* alone: always accepts */

    publish_from_child(b, 4, 1, 10, true);
    CHECK(!bl_balance_over(12)); /* within 2 + 10/8 */
    CHECK(bl_balance_over(14));

    /* the least loaded other counts; one not accepting (draining, booting) does not */
    publish_from_child(b, 4, 2, 0, false);
    CHECK(!bl_balance_over(12));
    publish_from_child(b, 4, 2, 0, true);
    CHECK(bl_balance_over(3));
    CHECK(!bl_balance_over(2));

    /* a cleared entry (its worker exited) is out of the comparison */
    bl_balance_clear(b, 2);
    CHECK(!bl_balance_over(12));
    bl_balance_clear(b, 1);
    CHECK(!bl_balance_over(1000));

    /* the relative margin at high counts: 800 others allow 800 + 2 + 100 */
    publish_from_child(b, 4, 3, 800, true);
    CHECK(!bl_balance_over(902));
    CHECK(bl_balance_over(903));

    bl_balance_free(b, 4);
    return check_report();
}
