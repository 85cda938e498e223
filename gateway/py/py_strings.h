/* Interned strings for every dict key and constant value the bridge builds. */
#ifndef BAYLEAF_PY_STRINGS_H
#define BAYLEAF_PY_STRINGS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define BL_STRINGS(X)                                                                              \
    X(type, "type")                                                                                \
    X(asgi, "asgi")                                                                                \
    X(version, "version")                                                                          \
    X(spec_version, "spec_version")                                                                \
    X(http_version, "http_version")                                                                \
    X(method, "method")                                                                            \
    X(scheme, "scheme")                                                                            \
    X(path, "path")                                                                                \
    X(raw_path, "raw_path")                                                                        \
    X(query_string, "query_string")                                                                \
    X(root_path, "root_path")                                                                      \
    X(headers, "headers")                                                                          \
    X(client, "client")                                                                            \
    X(server, "server")                                                                            \
    X(state, "state")                                                                              \
    X(extensions, "extensions")                                                                    \
    X(body, "body")                                                                                \
    X(more_body, "more_body")                                                                      \
    X(status, "status")                                                                            \
    X(trailers, "trailers")                                                                        \
    X(http, "http")                                                                                \
    X(http_request, "http.request")                                                                \
    X(http_disconnect, "http.disconnect")                                                          \
    X(http_response_start, "http.response.start")                                                  \
    X(http_response_body, "http.response.body")                                                    \
    X(v3_0, "3.0")                                                                                 \
    X(v2_5, "2.5")                                                                                 \
    X(v1_0, "1.0")                                                                                 \
    X(v1_1, "1.1")                                                                                 \
    X(create_future, "create_future")                                                              \
    X(set_result, "set_result")                                                                    \
    X(set_exception, "set_exception")                                                              \
    X(done, "done")                                                                                \
    X(cancelled, "cancelled")                                                                      \
    X(cancel, "cancel")                                                                            \
    X(future_blocking, "_asyncio_future_blocking")                                                 \
    X(websocket, "websocket")                                                                      \
    X(ws, "ws")                                                                                    \
    X(https, "https")                                                                              \
    X(wss, "wss")                                                                                  \
    X(ws_connect, "websocket.connect")                                                             \
    X(ws_receive, "websocket.receive")                                                             \
    X(ws_disconnect, "websocket.disconnect")                                                       \
    X(ws_accept, "websocket.accept")                                                               \
    X(ws_send, "websocket.send")                                                                   \
    X(ws_close, "websocket.close")                                                                 \
    X(ws_http_response, "websocket.http.response")                                                 \
    X(ws_http_response_start, "websocket.http.response.start")                                     \
    X(ws_http_response_body, "websocket.http.response.body")                                       \
    X(text, "text")                                                                                \
    X(bytes, "bytes")                                                                              \
    X(code, "code")                                                                                \
    X(reason, "reason")                                                                            \
    X(subprotocol, "subprotocol")                                                                  \
    X(subprotocols, "subprotocols")                                                                \
    X(topics_ext, "bayleaf.topics")                                                                \
    X(topics_subscribe, "bayleaf.subscribe")                                                       \
    X(topics_unsubscribe, "bayleaf.unsubscribe")                                                   \
    X(topics, "topics")                                                                            \
    X(conflate, "conflate")

#define BL_STRING_FIELD(name, text) PyObject *name;
typedef struct {
    BL_STRINGS(BL_STRING_FIELD)
} bl_strings_t;
#undef BL_STRING_FIELD

extern bl_strings_t bl_str;

/* 0 or -1 with a Python error set. */
int bl_strings_init(void);

#endif
