/* sd_notify(3) in a few lines: the address is read once, each message is one
 * sendto() on a fresh datagram socket (any thread may call it). */
#include "bayleaf/io/sd_notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct sockaddr_un notify_addr;
static socklen_t notify_len; /* 0: not asked for */

void bl_sd_notify_init(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    size_t len = path != NULL ? strlen(path) : 0;
    notify_len = 0;
    /* A path or an abstract name ('@'); anything else (vsock:...) is not for us. */
    if (len >= 2 && len < sizeof(notify_addr.sun_path) && (path[0] == '/' || path[0] == '@')) {
        memset(&notify_addr, 0, sizeof(notify_addr));
        notify_addr.sun_family = AF_UNIX;
        memcpy(notify_addr.sun_path, path, len);
        if (path[0] == '@')
            notify_addr.sun_path[0] = '\0';
        notify_len =
            (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/' ? 1 : 0));
    }
    unsetenv("NOTIFY_SOCKET");
}

void bl_sd_notify_disable(void)
{
    notify_len = 0;
}

bool bl_sd_notify_enabled(void)
{
    return notify_len != 0;
}

int bl_sd_notify(const char *state)
{
    if (notify_len == 0)
        return 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    ssize_t n =
        sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&notify_addr, notify_len);
    int err = n < 0 ? -errno : 0;
    close(fd);
    return err;
}
