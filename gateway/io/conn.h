/* Private to the I/O thread: one client connection (conn.c, conn_write.c,
 * conn_http.c, conn_ws.c). */
#ifndef BAYLEAF_CONN_H
#define BAYLEAF_CONN_H

#include "bayleaf/bridge/bridge.h"
#include "bayleaf/proto/http_response.h"
#include "io.h"
#include "bayleaf/proto/ws_deflate.h"

/* Unwritten output above which a connection is no longer read (a client that
 * sends but does not read, e.g. a ping flood). */
#define BL_OUTPUT_HIGH_WATER (1024u * 1024u)

/* How often a connection that is not read looks for its client leaving. */
#define BL_HUP_CHECK_MS 1000

/* Body bytes read and dropped after an early response before we close instead. */
#define BL_DISCARD_LIMIT (4u * 1024u * 1024u)

typedef enum {
    TIMER_NONE,
    TIMER_HEADER,   /* a request head must complete */
    TIMER_IDLE,     /* keep-alive between requests */
    TIMER_RESPONSE, /* -t: the app must start a response */
    TIMER_LINGER,   /* after our FIN, wait a little for the client's */
    TIMER_WS,       /* the nearest WebSocket deadline (conn_ws.c: ws_due) */
    TIMER_BODY,     /* --body-timeout: not a timer_kind, the protocol's turn to act */
} timer_kind_t;

typedef enum {
    WS_NONE,      /* plain HTTP */
    WS_HANDSHAKE, /* the app decides: accept, refuse, or answer over HTTP */
    WS_OPEN,
    WS_CLOSING, /* we sent a close frame: waiting for the client's */
    WS_REFUSED, /* answered over HTTP */
} ws_phase_t;

/* How a connection ends. The phase only moves forward, and only through
 * bl_conn_end_after_writes (ENDING, LINGERING) and bl_conn_close (CLOSING). */
typedef enum {
    CONN_OPEN,
    CONN_ENDING,    /* ends once its writes are done: reading stopped */
    CONN_LINGERING, /* our FIN sent: input read and dropped until the client's */
    CONN_CLOSING,   /* uv_close called: memory is freed in the close callbacks */
} conn_phase_t;

/* The protocol spoken on a connection, h2o style: conn.c calls it through this
 * table and knows neither HTTP nor WebSocket. An upgrade swaps c->proto. NULL
 * entries do nothing (or the default said). */
typedef struct bl_conn_proto_s {
    /* A connection was accepted: its first deadline, its parser. */
    void (*on_open)(bl_conn_t *c);
    /* Bytes read (nread > 0). Returns nonzero when the connection was closed. */
    int (*on_read)(bl_conn_t *c, const char *data, size_t len);
    /* How many bytes to read now, at most max (the read-ahead bound). */
    size_t (*read_size)(bl_conn_t *c, size_t max);
    /* Before deciding to read: feeds input kept in rbuf; returns true while
     * some still waits (nothing more is read until it is fed). */
    bool (*replay_kept)(bl_conn_t *c);
    /* The client's input ended (UV_EOF or an error); returns true when the
     * protocol lets the connection go on half-closed (default: close). */
    bool (*on_input_end)(bl_conn_t *c, ssize_t err);
    /* The client half-closed with unread bytes (FIONREAD): whether they may
     * still complete a request. */
    bool (*input_may_complete)(bl_conn_t *c, int unread);
    /* A down event from Python (not CONSUMED: conn.c takes those). Takes ev. */
    void (*on_event)(bl_conn_t *c, bl_event_t *ev);
    /* The deadline of kind fell due (TIMER_LINGER excepted: conn.c's). */
    void (*on_timer)(bl_conn_t *c, timer_kind_t kind);
    /* The write backlog fell to the low-water mark; returns true when the
     * protocol went on (else reading resumes). */
    bool (*on_drain)(bl_conn_t *c);
    /* Shutdown without force: returns true when the protocol ends c itself. */
    bool (*on_shutdown)(bl_conn_t *c);
    /* The connection is closing (before its exchange is dropped). */
    void (*on_close)(bl_conn_t *c);
    /* An upgrade request's head (only the upgrade protocol has one): 0 when
     * it takes the connection (and sets c->proto), else the HTTP status to
     * refuse with. */
    int (*on_upgrade)(bl_conn_t *c, bl_head_t *head, bl_exchange_t *ex);
    /* Frees the protocol's state, from the close callback. */
    void (*free)(bl_conn_t *c);
    /* Every queued write completed (writes_pending fell to 0). */
    void (*on_written)(bl_conn_t *c);
} bl_conn_proto_t;

/* Connection state bits (bl_conn_t.flags): read with bl_conn_has, written
 * with bl_conn_set/clear/put. The I/O thread alone touches them. */
enum {
    /* the current request/response (conn_http.c, reset per request) */
    BL_CONN_F_REQUEST_POSTED = 1u << 0,
    BL_CONN_F_BODY_FINAL_POSTED = 1u << 1,
    BL_CONN_F_MESSAGE_COMPLETE = 1u << 2,
    BL_CONN_F_RESP_STARTED = 1u << 3,
    BL_CONN_F_RESP_DONE = 1u << 4,
    BL_CONN_F_KEEP_ALIVE = 1u << 5,
    BL_CONN_F_HEAD_REQUEST = 1u << 6,
    BL_CONN_F_HTTP10 = 1u << 7,
    BL_CONN_F_EXPECT_CONTINUE = 1u << 8,
    BL_CONN_F_CONTINUE_SENT = 1u << 9,
    /* from the head to the body's end: its progress is watched (--body-timeout) */
    BL_CONN_F_BODY_WATCHED = 1u << 10,
    /* a pipelined request waits for the write backlog to drain */
    BL_CONN_F_NEXT_WAITING = 1u << 11,
    /* counted in server->nactive (--limit-concurrency) */
    BL_CONN_F_ACTIVE = 1u << 12,
    /* the parser stopped after a message: wait for the response */
    BL_CONN_F_PAUSED = 1u << 13,
    /* too much unconsumed body: reading stopped */
    BL_CONN_F_BODY_BLOCKED = 1u << 14,
    /* uv_read_start is in force */
    BL_CONN_F_READING = 1u << 15,
    /* a write backlog is watched (send_*) */
    BL_CONN_F_SEND_WATCHED = 1u << 16,
    /* not read: the socket is watched for the client leaving */
    BL_CONN_F_HUP_WATCHED = 1u << 17,
    /* the client's FIN was read (a half-close): nothing more comes */
    BL_CONN_F_INPUT_ENDED = 1u << 18,
    /* permessage-deflate agreed for the 101 */
    BL_CONN_F_WS_DEFLATE = 1u << 19,
};

struct bl_conn_s {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } h;
    uv_timer_t timer;
    uv_shutdown_t shutdown_req;
    bl_server_t *server;
    bl_listener_t *listener;
    const bl_conn_proto_t *proto;
    bl_conn_t *prev, *next;
    bl_http_parser_t parser;
    bl_exchange_t *ex; /* the request being served (a reference) */
    char *rbuf;        /* input kept while the parser waits for a response to end */
    size_t rlen, rcap; /* bytes kept, bytes allocated (bl_buf_reserve) */
    char *body;        /* request body bytes gathered during one read */
    size_t body_len, body_cap;
    int handles_open;
    timer_kind_t timer_kind;
    uint64_t timer_due; /* loop time (ms) timer_kind falls due */
    /* --send-timeout: the same timer watches a write backlog for progress */
    uint64_t send_since;  /* loop time its output last moved */
    uint64_t send_due;    /* loop time of the next look */
    uint64_t send_queued; /* bytes ever handed to uv_write */
    uint64_t send_mark;   /* of those, bytes written at the last look */
    /* --body-timeout: and a request body being read for progress */
    uint64_t body_since; /* loop time of its last bytes (or of reading resumed) */
    /* the current request/response */
    bl_framing_t framing;
    int status;
    uint64_t sent_body;
    uint64_t discarded; /* body bytes dropped after an early response */
    uint64_t clen;      /* the response's Content-Length (BL_FRAME_LENGTH) */
    char method[16];
    char *log_path;
    /* connection state */
    conn_phase_t phase; /* see the predicates below */
    unsigned flags;     /* BL_CONN_F_* */
    uint64_t hup_due;   /* loop time of the next look */
    size_t writes_pending;
    char client_host[64];
    int client_port;
    char log_host[72]; /* the access log's client: "host:port" after proxy headers, "" none */
    char server_host[108];
    int server_port;
    uint32_t send_outq; /* the socket's unsent/unread bytes at the last look */
    /* WebSocket (conn_ws.c) */
    ws_phase_t ws_phase;
    struct bl_ws_s *ws;    /* the session, from the 101 on */
    char ws_accept[32];    /* Sec-WebSocket-Accept for the 101 */
    uint64_t ws_started;   /* loop time (ms) of the upgrade request */
    uint64_t ws_last_read; /* loop time of the last bytes from the client */
    uint64_t ws_ping_sent; /* loop time of an unanswered ping, 0: none */
    uint64_t ws_pongs;     /* pongs seen when that ping went out */
    uint64_t ws_ping_end;  /* send_queued once that ping was queued */
    uint64_t ws_closing_since;
    uint64_t ws_fault_since; /* loop time a protocol fault was held for the app's reply, 0: none */
    bl_ws_deflate_params_t ws_deflate_params;
    struct bl_topic_peer_s *topic_peer; /* topics (conn_topics.c), from the first subscribe */
    struct bl_conn_file_s *file;        /* a body being sent from a file (conn_file.c) */
};

typedef struct {
    uv_write_t req;
    bl_conn_t *conn;
    bl_event_t *ev;   /* freed when written (its bytes are the payload) */
    char *mem;        /* freed when written */
    size_t accounted; /* bytes to take off ex->unsent */
    bl_exchange_t *ex;
    /* bl_conn_write_with: called once the bytes left (status < 0: they never will) */
    void (*release)(void *arg, bl_conn_t *c, int status);
    void *release_arg;
    char prefix[24];
} write_req_t;

static inline bool bl_conn_has(const bl_conn_t *c, unsigned flag)
{
    return (c->flags & flag) != 0;
}

static inline void bl_conn_set(bl_conn_t *c, unsigned flag)
{
    c->flags |= flag;
}

static inline void bl_conn_clear(bl_conn_t *c, unsigned flag)
{
    c->flags &= ~flag;
}

static inline void bl_conn_put(bl_conn_t *c, unsigned flag, bool on)
{
    if (on)
        bl_conn_set(c, flag);
    else
        bl_conn_clear(c, flag);
}

/* uv_close was called: no libuv call on the handles any more. */
static inline bool bl_conn_is_closing(const bl_conn_t *c)
{
    return c->phase == CONN_CLOSING;
}

/* Lingering or closing: nothing more is parsed, fed or written. */
static inline bool bl_conn_is_shut(const bl_conn_t *c)
{
    return c->phase >= CONN_LINGERING;
}

/* Ending (or shut): no new request, no new reading or deadline. */
static inline bool bl_conn_is_ending(const bl_conn_t *c)
{
    return c->phase >= CONN_ENDING;
}

/* What a connection's unwritten output is weighed for (bl_conn_output_over). */
typedef enum {
    OUTPUT_FOR_READING, /* reading more input (a client that does not read is not read) */
    OUTPUT_FOR_NEXT,    /* starting a pipelined request's work */
    OUTPUT_FOR_RESUME,  /* a write completed: has the client caught up? */
} output_use_t;

/* conn_topics.c: a WebSocket connection as a topics subscriber. */
/* A TOPIC_SUB / TOPIC_UNSUB event from the app (takes ev). */
void bl_conn_topics_event(bl_conn_t *c, bl_event_t *ev);
/* The connection stops receiving topic frames (closing): unsubscribes all. */
void bl_conn_topics_close(bl_conn_t *c);
/* From the close callback: frees the peer. */
void bl_conn_topics_free(bl_conn_t *c);
/* Its writes completed: queued topic frames may go. */
void bl_conn_topics_written(bl_conn_t *c);
/* The app sends a frame: topic frames queued before it go first. */
void bl_conn_topics_before_send(bl_conn_t *c);
/* ws_close for conn_topics.c (1013 for a slow subscriber, 1008 for limits). */
void bl_conn_ws_close(bl_conn_t *c, uint16_t code, const char *reason);

/* conn_ws.c: the WebSocket protocol, from the upgrade request on. */
extern const bl_conn_proto_t bl_conn_ws_proto;

/* conn.c */
void bl_conn_timer_set(bl_conn_t *c, timer_kind_t kind, double seconds);
/* Of the bytes ever handed to uv_write, those the client's kernel took
 * (TCP: acknowledged; unix socket: read). */
uint64_t bl_conn_acked(bl_conn_t *c);
/* A write left a backlog in libuv: --send-timeout starts watching it. */
void bl_conn_send_watch(bl_conn_t *c);
/* Drops c's reference to its exchange; tell_app: post a disconnect to it. */
void bl_conn_detach(bl_conn_t *c, bool tell_app);
/* Ends the connection once every write is done: FIN, then linger. */
void bl_conn_end_after_writes(bl_conn_t *c);
void bl_conn_update_reading(bl_conn_t *c);
/* Hands the input kept in rbuf to fn, rbuf emptied first (fn may keep more). */
void bl_conn_replay_kept(bl_conn_t *c, void (*fn)(bl_conn_t *c, const char *data, size_t len));
/* Appends input to rbuf; closes the connection when memory runs out (-ENOMEM). */
int bl_conn_input_keep(bl_conn_t *c, const char *data, size_t len);
/* The one owner of the output-limit policy: whether c's unwritten output
 * (libuv's write queue) is over the limit for use. */
bool bl_conn_output_over(const bl_conn_t *c, output_use_t use);
/* The app's read-ahead (events it has not taken) is over BL_BODY_HIGH_WATER:
 * nothing more is read or fed for it. */
bool bl_conn_readahead_full(const bl_conn_t *c);
/* Read-ahead room left for c's exchange under BL_BODY_HIGH_WATER. */
uint64_t bl_conn_readahead_room(bl_conn_t *c);

/* conn_write.c */
/* n bytes the app sent left (or never will): may wake a send() waiting on ex. */
void bl_conn_unsent_release(bl_exchange_t *ex, size_t n);
/* Frees a down event that will not be written, its app bytes released: every
 * drop path goes through it. */
void bl_conn_event_drop(bl_event_t *ev);
int bl_conn_write(bl_conn_t *c, uv_buf_t *bufs, unsigned nbufs, bl_event_t *ev, char *mem,
                  size_t accounted);
/* As bl_conn_write, for bytes someone else owns: release(arg, c, status) is
 * called once they were written or dropped (also before it returns, when
 * written at once). Returns the bytes queued in libuv (>= 0), or -1 (the
 * connection is closing). */
long bl_conn_write_with(bl_conn_t *c, uv_buf_t *bufs, unsigned nbufs,
                        void (*release)(void *arg, bl_conn_t *c, int status), void *arg);
void bl_conn_fail(bl_conn_t *c, int status);
void bl_conn_access_log(bl_conn_t *c, const char *what);
/* The access log line of an HTTP response (WebSockets write their own). */
void bl_conn_access_log_write(bl_conn_t *c);

/* conn_http.c: the HTTP/1 protocol, every connection's first. conn_ws.c
 * builds on it (the handshake and a refusal are HTTP). */
extern const bl_conn_proto_t bl_conn_http_proto;
/* Parses input until the parser pauses for a response; keeps the rest in rbuf. */
void bl_conn_http_parse(bl_conn_t *c, const char *data, size_t len);
int bl_conn_http_read(bl_conn_t *c, const char *data, size_t len);
bool bl_conn_http_input_may_complete(bl_conn_t *c, int unread);
void bl_conn_http_timer(bl_conn_t *c, timer_kind_t kind);
bool bl_conn_http_drain(bl_conn_t *c);
void bl_conn_http_free(bl_conn_t *c);
void bl_conn_send_response(bl_conn_t *c, bl_event_t *ev);
void bl_conn_send_body(bl_conn_t *c, bl_event_t *ev);

/* conn_file.c: a body from a file (SEND_FILE), written with sendfile(2). */
typedef struct bl_conn_file_s bl_conn_file_t;
typedef void (*bl_conn_file_done_cb)(bl_conn_t *c);
/* Takes ev (its file): writes sf->len bytes from sf->off once the queued
 * writes are done; done(c) when all went out (ev then went back up as
 * FILE_SENT). On a failure or a short file the connection is closed. */
void bl_conn_file_start(bl_conn_t *c, bl_event_t *ev, const bl_send_file_t *sf,
                        bl_conn_file_done_cb done);
/* The SEND_FILE's transfer is over (or had nothing to send): its file is
 * closed and the event goes back up as FILE_SENT. */
void bl_conn_file_sent(bl_event_t *ev);
/* Every queued write completed: the file may start. */
void bl_conn_file_written(bl_conn_t *c);
/* The connection closes: the transfer is dropped and its file closed. */
void bl_conn_file_abort(bl_conn_t *c);
/* Bytes of the file not yet sent (0: none is being sent). */
uint64_t bl_conn_file_left(const bl_conn_t *c);

#endif
