/* systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram
 * of "KEY=value" lines to $NOTIFY_SOCKET. */
#ifndef BAYLEAF_SD_NOTIFY_H
#define BAYLEAF_SD_NOTIFY_H

#include <stdbool.h>

/* Takes $NOTIFY_SOCKET and removes it from the environment, so the app and its
 * subprocesses cannot speak for us. Main thread, before any other starts. */
void bl_sd_notify_init(void);
/* Forgets the socket: a worker leaves notifications to its supervisor. */
void bl_sd_notify_disable(void);
bool bl_sd_notify_enabled(void);
/* Sends state, e.g. "READY=1". 0 when sent or not asked for, else -errno. */
int bl_sd_notify(const char *state);

#endif
