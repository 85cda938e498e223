/* bayleaf: parse the command line, bind, then run Python on this thread. */
#include "bayleaf/bridge.h"
#include "bayleaf/config.h"
#include "bayleaf/log.h"
#include "bayleaf/server.h"
#include "py_embed.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    static bl_config_t cfg;
    static bl_server_t server;
    int rc = bl_config_parse(&cfg, argc, argv, stdout, stderr);
    if (rc == BL_CONFIG_EXIT)
        return 0;
    if (rc < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    bl_log_verbosity = cfg.verbosity;
    if ((rc = bl_bridge_init()) != 0) {
        fprintf(stderr, "bayleaf: error: cannot set up the thread bridge: %s\n", strerror(-rc));
        return 1;
    }
    if (bl_server_init(&server, &cfg) != 0) {
        bl_server_close(&server);
        bl_bridge_destroy();
        return 1;
    }
    rc = bl_python_run(&server, &cfg, argc, argv);
    if (server.running) {
        /* Python ended without stopping the I/O thread (it failed): stop it. */
        bl_event_t *ev = bl_event_new(BL_EV_STOP, NULL, 0);
        bl_bridge.schedule_down_wake = NULL; /* Python is gone */
        if (ev != NULL)
            bl_bridge_post_down(ev);
        bl_server_join(&server);
    }
    bl_server_close(&server);
    bl_bridge_destroy();
    return rc;
}
