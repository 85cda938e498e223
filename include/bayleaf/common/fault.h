/* Allocation-failure injection for the fault tests (tests/faults): a named
 * allocation site can be made to fail once, on its nth use, to show what
 * the server does when memory runs out there. Off unless the environment
 * asks for it:
 *
 *     BAYLEAF_FAULT_ALLOC="accept:3,writable:1"
 *
 * fails the 3rd connection allocation at accept and the 1st WRITABLE event
 * (sites: accept, writable, request).
 * Read once, by bl_fault_init, before the I/O thread starts. */
#ifndef BAYLEAF_FAULT_H
#define BAYLEAF_FAULT_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    BL_FAULT_ACCEPT,   /* io/conn.c: a connection accepted (bl_conn_t) */
    BL_FAULT_WRITABLE, /* io/conn_write.c: the event that wakes a waiting send() */
    BL_FAULT_REQUEST,  /* io/conn_http.c: a request's REQUEST, then BODY, events */
    BL_FAULT_COUNT,
} bl_fault_site_t;

/* Parses spec ("site:n[,site:n...]", n >= 1; NULL or "" turns injection
 * off). Returns 0, or -EINVAL with a reason in err. */
int bl_fault_init(const char *spec, char *err, size_t errlen);

/* Whether this allocation at site is to fail (counts the site's uses). */
bool bl_fault_fails(bl_fault_site_t site);

#endif
