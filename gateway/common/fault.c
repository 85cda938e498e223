/* Allocation-failure injection (see fault.h). */
#include "bayleaf/common/fault.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const site_names[BL_FAULT_COUNT] = {"accept", "writable", "request"};

static bool fault_on;                         /* set before any thread reads it */
static unsigned long fail_at[BL_FAULT_COUNT]; /* the use that fails; 0: none */
static atomic_ulong site_uses[BL_FAULT_COUNT];

int bl_fault_init(const char *spec, char *err, size_t errlen)
{
    unsigned long at[BL_FAULT_COUNT] = {0};
    const char *p = spec != NULL ? spec : "";
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        const char *colon = memchr(p, ':', len);
        int site = BL_FAULT_COUNT;
        for (int i = 0; colon != NULL && i < BL_FAULT_COUNT; i++) {
            if (strlen(site_names[i]) == (size_t)(colon - p) &&
                memcmp(p, site_names[i], (size_t)(colon - p)) == 0)
                site = i;
        }
        char *end = NULL;
        unsigned long n = 0;
        if (site < BL_FAULT_COUNT && colon[1] >= '0' && colon[1] <= '9') {
            errno = 0;
            n = strtoul(colon + 1, &end, 10);
        }
        bool trailing = p[len] == ',' && p[len + 1] == '\0'; /* "accept:1," */
        if (site == BL_FAULT_COUNT || end != p + len || n == 0 || errno != 0 || trailing) {
            snprintf(err, errlen, "'%.*s' is not site:n (n >= 1; sites: accept, writable, request)",
                     (int)len, p);
            return -EINVAL;
        }
        at[site] = n;
        p += len + (p[len] == ',');
    }
    fault_on = false;
    for (int i = 0; i < BL_FAULT_COUNT; i++) {
        fail_at[i] = at[i];
        atomic_store(&site_uses[i], 0);
        fault_on |= at[i] != 0;
    }
    return 0;
}

bool bl_fault_fails(bl_fault_site_t site)
{
    if (!fault_on || fail_at[site] == 0)
        return false;
    return atomic_fetch_add(&site_uses[site], 1) + 1 == fail_at[site];
}
