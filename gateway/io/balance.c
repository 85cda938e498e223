/* The shared connection-count table behind accept balancing (balance.h). */
#include "bayleaf/io/balance.h"

#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>

/* One cache line per worker: each entry has a single writer. */
struct bl_balance_s {
    _Alignas(64) atomic_uint conns;
    atomic_bool accepting;
};

static bl_balance_t *table; /* this worker's view; NULL: not balancing */
static int table_len, self = -1;

bl_balance_t *bl_balance_new(int n)
{
    void *p = mmap(NULL, sizeof(bl_balance_t) * (size_t)n, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p; /* zero-filled: nobody accepting */
}

void bl_balance_free(bl_balance_t *b, int n)
{
    if (b != NULL)
        munmap(b, sizeof(bl_balance_t) * (size_t)n);
}

void bl_balance_clear(bl_balance_t *b, int i)
{
    if (b == NULL)
        return;
    atomic_store_explicit(&b[i].accepting, false, memory_order_relaxed);
    atomic_store_explicit(&b[i].conns, 0, memory_order_relaxed);
}

void bl_balance_attach(bl_balance_t *b, int n, int i)
{
    table = b;
    table_len = n;
    self = i;
}

void bl_balance_publish(size_t conns)
{
    if (table != NULL)
        atomic_store_explicit(&table[self].conns, (unsigned)conns, memory_order_relaxed);
}

void bl_balance_set_accepting(bool accepting)
{
    if (table != NULL)
        atomic_store_explicit(&table[self].accepting, accepting, memory_order_relaxed);
}

bool bl_balance_over(size_t conns)
{
    unsigned least = UINT32_MAX;
    for (int i = 0; table != NULL && i < table_len; i++) {
        if (i == self || !atomic_load_explicit(&table[i].accepting, memory_order_relaxed))
            continue;
        unsigned c = atomic_load_explicit(&table[i].conns, memory_order_relaxed);
        if (c < least)
            least = c;
    }
    if (least == UINT32_MAX)
        return false; /* alone: always accept */
    /* A small absolute margin keeps the rule quiet at low counts; the relative
     * one keeps pauses rare once every worker is busy. */
    return conns > (size_t)least + 2 + least / 8;
}
