/* Shadows libuv's header for the layers that must not use it (gateway/meson.build). */
#error "libuv belongs to the I/O thread: only gateway/io/ may include <uv.h> (see gateway/README.md, Layers)"
