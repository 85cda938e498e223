/* --metrics: a tiny HTTP responder on a thread and loop of its own, so that a
 * scrape or a health check is answered while the app blocks Python, while
 * lifespan startup runs (503) and while draining (503). GET /metrics: the
 * Prometheus text format (common/metrics.h); GET /ready: 200 once some worker
 * accepts, else 503. One request per connection. */
#ifndef BAYLEAF_IO_METRICS_HTTP_H
#define BAYLEAF_IO_METRICS_HTTP_H

#include <stdbool.h>

typedef struct bl_metrics_http_s bl_metrics_http_t;

/* Serves the listening socket fd (a dup of it: fd stays the caller's). NULL
 * after printing one error line. */
bl_metrics_http_t *bl_metrics_http_start(int fd, bool is_unix);
/* Stops the thread, closes its connections and frees m (NULL: nothing). */
void bl_metrics_http_stop(bl_metrics_http_t *m);

#endif
