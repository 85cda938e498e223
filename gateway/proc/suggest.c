/* Unknown options: habits from uvicorn (and gunicorn) get the Bayleaf spelling,
 * a typo gets the closest option of the table. */
#include "bayleaf/proc/suggest.h"
#include "bayleaf/proc/cmdline.h"

#include <stdio.h>
#include <string.h>

#define BL_SUGGEST_NAME_MAX 48 /* longer names are never close to ours */

typedef struct {
    const char *name; /* without the dashes */
    const char *hint;
} bl_habit_t;

static const bl_habit_t habits[] = {
    {"host", "Bayleaf spells it -b/--bind HOST"},
    {"reload", "Bayleaf has no --reload: manage.py runserver, with \"bayleaf\" in "
               "INSTALLED_APPS, serves with Bayleaf and reloads on code changes"},
    {"log-level", "Bayleaf spells it -v/--verbosity 0..3 (0 warnings and errors, 1 info, "
                  "2 debug for Bayleaf, 3 debug for all)"},
    {"uds", "Bayleaf spells it -u/--unix-socket PATH"},
    {"ws-max-size", "Bayleaf spells it --websocket-max-message-size BYTES"},
    {"ws-ping-interval", "Bayleaf spells it --ping-interval SECONDS"},
    {"ws-ping-timeout", "Bayleaf spells it --ping-timeout SECONDS"},
    {"timeout-keep-alive", "Bayleaf spells it --keepalive-timeout SECONDS"},
    {"timeout-graceful-shutdown", "Bayleaf spells it --graceful-timeout SECONDS"},
    {"no-server-header", "Bayleaf spells it --no-server-name"},
    {"no-access-log", "Bayleaf writes the access log at -v 1 and up, or to --access-log FILE: "
                      "-v 0 turns it off"},
    {"app-dir", "Bayleaf imports the app from the current directory: cd there first"},
    {"ssl-keyfile", "Bayleaf serves no TLS: let nginx terminate it (README: Behind nginx)"},
    {"ssl-certfile", "Bayleaf serves no TLS: let nginx terminate it (README: Behind nginx)"},
};

/* Levenshtein distance of a[0..n) and b, capped at 9 (only small ones matter). */
static int distance(const char *a, size_t n, const char *b)
{
    size_t m = strlen(b);
    int row[BL_SUGGEST_NAME_MAX + 1];
    if (n > BL_SUGGEST_NAME_MAX || m > BL_SUGGEST_NAME_MAX)
        return 9;
    for (size_t j = 0; j <= m; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int up = row[j];
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[m] < 9 ? row[m] : 9;
}

/* The option whose name or alias is closest to name[0..n), if close enough. */
static const bl_option_t *closest(const char *name, size_t n, const char **spelling)
{
    size_t rows;
    const bl_option_t *opts = bl_config_options(&rows), *best = NULL;
    int best_d = 3; /* at most 2 edits, and fewer than a third of the name (0: itself) */
    for (size_t i = 0; i < rows; i++) {
        const char *names[2] = {opts[i].name, opts[i].alias};
        for (int k = 0; k < 2 && names[k] != NULL; k++) {
            int d = distance(name, n, names[k]);
            if (d < best_d && (size_t)d * 3 <= n) {
                best_d = d;
                best = &opts[i];
                *spelling = names[k];
            }
        }
    }
    return best;
}

int bl_option_suggest(const char *arg, char *out, size_t cap)
{
    if (strncmp(arg, "--", 2) != 0)
        return 0;
    const char *name = arg + 2;
    size_t n = strcspn(name, "=");
    for (size_t i = 0; i < sizeof(habits) / sizeof(habits[0]); i++) {
        if (strlen(habits[i].name) == n && strncmp(name, habits[i].name, n) == 0) {
            snprintf(out, cap, "%s", habits[i].hint);
            return 1;
        }
    }
    const char *spelling = NULL;
    const bl_option_t *o = closest(name, n, &spelling);
    if (o == NULL || (strlen(spelling) == n && strncmp(spelling, name, n) == 0))
        return 0; /* none, or "--flag=value" for a flag: the plain error says it */
    snprintf(out, cap, "did you mean --%s%s%s?", spelling, o->metavar ? " " : "",
             o->metavar ? o->metavar : "");
    return 1;
}
