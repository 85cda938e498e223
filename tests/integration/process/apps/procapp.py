"""A small ASGI app for the process tests (listeners, workers, signals).

HTTP:  /pid -> this process's pid; /env?name=X -> os.environ.get(X) as JSON;
       /slow?t=S -> prints "slow request started" to stderr, answers after S seconds; /block?t=S -> prints "blocking the loop"
       to stderr, then time.sleep(S) in the event loop (never answers in time);
       /stray-thread -> starts a non-daemon thread that sleeps 300 s;
       /child-fds -> the listening sockets a child process inherits (JSON list of
       fds; the child is exec'd with close_fds=False); anything else -> "hello".
WebSocket: accepts; on disconnect appends "<pid> <code>" to $PROC_MARKER.
Lifespan: sleeps $PROC_STARTUP_DELAY seconds; waits until the file $PROC_STARTUP_GATE
exists; fails while the file $PROC_FAIL_FILE exists; on shutdown sleeps
$PROC_SHUTDOWN_HANG seconds.
"""
import asyncio
import json
import os
import sys
import threading
import time
import urllib.parse

# Run in a child: the descriptors it holds that are listening sockets.
_CHILD_FDS = """
import json, os, socket
found = []
for name in os.listdir("/proc/self/fd"):
    fd = int(name)
    try:
        s = socket.socket(fileno=fd)
    except OSError:
        continue
    try:
        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            found.append(fd)
    except OSError:
        pass
    finally:
        s.detach()
print(json.dumps(found))
"""


async def _lifespan(receive, send):
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await asyncio.sleep(float(os.environ.get("PROC_STARTUP_DELAY") or 0))
            gate = os.environ.get("PROC_STARTUP_GATE")
            while gate and not os.path.exists(gate):
                await asyncio.sleep(0.05)
            fail = os.environ.get("PROC_FAIL_FILE")
            if fail and os.path.exists(fail):
                await send({"type": "lifespan.startup.failed", "message": "PROC_FAIL_FILE exists"})
                return
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await asyncio.sleep(float(os.environ.get("PROC_SHUTDOWN_HANG") or 0))
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _respond(send, body, status=200, ctype=b"text/plain"):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _stray_thread_sleeps():
    time.sleep(300)  # Python's finalisation waits for it


def _sleep_in_the_loop(seconds):
    print("blocking the loop", file=sys.stderr, flush=True)
    time.sleep(seconds)  # the app's bug: a blocking call in async code


async def _http(scope, receive, send):
    query = urllib.parse.parse_qs(scope.get("query_string", b"").decode())
    path = scope["path"]
    if path == "/pid":
        await _respond(send, str(os.getpid()).encode())
    elif path == "/env":
        value = os.environ.get(query.get("name", [""])[0])
        await _respond(send, json.dumps(value).encode(), ctype=b"application/json")
    elif path == "/block":
        _sleep_in_the_loop(float(query.get("t", ["60"])[0]))
        await _respond(send, b"unblocked")
    elif path == "/stray-thread":
        threading.Thread(target=_stray_thread_sleeps, name="stray").start()  # not a daemon
        await _respond(send, b"started")
    elif path == "/child-fds":
        child = await asyncio.create_subprocess_exec(sys.executable, "-c", _CHILD_FDS,
                                                     stdout=asyncio.subprocess.PIPE,
                                                     close_fds=False)
        out, _ = await child.communicate()
        await _respond(send, out.strip(), ctype=b"application/json")
    elif path == "/slow":
        print("slow request started", file=sys.stderr, flush=True)  # the tests wait for it
        await asyncio.sleep(float(query.get("t", ["1"])[0]))
        await _respond(send, b"slow done")
    else:
        await _respond(send, b"hello")


async def _websocket(scope, receive, send):
    while True:
        msg = await receive()
        if msg["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif msg["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": str(os.getpid())})
        elif msg["type"] == "websocket.disconnect":
            marker = os.environ.get("PROC_MARKER")
            if marker:
                with open(marker, "a") as f:
                    f.write(f"{os.getpid()} {msg.get('code')}\n")
            return


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
    elif scope["type"] == "http":
        await _http(scope, receive, send)
    elif scope["type"] == "websocket":
        await _websocket(scope, receive, send)
