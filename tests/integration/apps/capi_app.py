"""Apps whose messages change under bayleaf's feet while send() reads them
(tests/integration/test_capi_refs.py): the app's own code, run from inside
send() (a __bool__, an __index__, a dict subclass's keys()), drops a value
send() already looked up, then allocates objects of the same size, which take
the freed memory. send() must have held its own reference: what goes out is
what the message said when send() was called.

HTTP:       /body-dropped?n=N      N bytes "A"; more_body's __bool__ drops the body
WebSocket:  /close-reason-dropped  close 4000 with reason "r" * 100; the code's
                                   __index__ drops the reason
            /subprotocol-dropped   accept with subprotocol "chat-" + "x" * 40 in a
                                   dict subclass whose keys() drops it while
                                   send() copies the message
And apps whose code, run from inside send(), calls send() itself:
HTTP /start-reentered (the headers iterable sends a 201 start: the outer 200
start raises, its error type is the body), WebSocket /accept-reentered (the
headers iterable accepts: the outer accept raises, its error type is sent as
text) and /close-reentered (the code's __index__ closes with 4001: the outer
close raises ClientDisconnected).
"""

from urllib.parse import parse_qs

JUNK = []  # kept: the objects that reuse the freed memory


def fill(make, n):
    JUNK.extend(make(n) for _ in range(16))


class DropsBody:
    def __init__(self, msg, n):
        self.msg, self.n = msg, n

    def __bool__(self):
        del self.msg["body"]
        fill(lambda n: b"J" * n, self.n)
        return False


class DropsReason:
    def __init__(self, msg, code):
        self.msg, self.code = msg, code

    def __index__(self):
        n = len(self.msg.pop("reason"))
        fill(lambda n: "J" * n, n)
        return self.code


class DropsSubprotocol(dict):
    def __iter__(self):  # not dict's own: copying the dict calls keys()
        return iter(list(dict.keys(self)))

    def keys(self):
        sub = self.pop("subprotocol", None)
        if sub is not None:
            n = len(sub)
            del sub
            fill(lambda n: "J" * n, n)
        return dict.keys(self)


def fresh_bytes(n):
    return ("A" * n).encode()  # built at run time: no constant keeps it alive


def reentering(send, message):
    """A headers iterable whose iteration calls send(message) itself, as a
    careless app could; send() runs at call time, inside the outer send()."""
    def headers():
        send(message)
        return iter(())
    return HeadersIterable(headers)


class HeadersIterable:
    def __init__(self, make):
        self.make = make

    def __iter__(self):
        return self.make()


async def try_send(send, msg):
    """The error type send(msg) raised ("" if none)."""
    try:
        await send(msg)
        return ""
    except Exception as exc:  # noqa: BLE001 (reported to the client)
        return type(exc).__name__


async def http(scope, receive, send):
    await receive()
    if scope["path"] == "/start-reentered":
        inner = {"type": "http.response.start", "status": 201, "headers": [(b"x-inner", b"1")]}
        error = await try_send(send, {"type": "http.response.start", "status": 200,
                                      "headers": reentering(send, inner)})
        await send({"type": "http.response.body", "body": error.encode()})
        return
    n = int(parse_qs(scope["query_string"].decode()).get("n", ["400"])[0])
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(n).encode())]})
    msg = {"type": "http.response.body", "body": fresh_bytes(n)}
    msg["more_body"] = DropsBody(msg, n)
    await send(msg)


async def websocket(scope, receive, send):
    assert (await receive())["type"] == "websocket.connect"
    if scope["path"] == "/subprotocol-dropped":
        msg = DropsSubprotocol(type="websocket.accept", subprotocol="".join(["chat-", "x" * 40]))
        await send(msg)
        await receive()
        return
    if scope["path"] == "/accept-reentered":
        error = await try_send(send, {"type": "websocket.accept",
                                      "headers": reentering(send, {"type": "websocket.accept"})})
        await send({"type": "websocket.send", "text": error})
        await receive()
        return
    await send({"type": "websocket.accept"})
    if scope["path"] == "/close-reentered":
        class ClosesFirst:
            def __index__(self):
                send({"type": "websocket.close", "code": 4001})
                return 4002
        error = await try_send(send, {"type": "websocket.close", "code": ClosesFirst()})
        assert error == "ClientDisconnected", error
        return
    msg = {"type": "websocket.close", "reason": "".join(["r"] * 100)}
    msg["code"] = DropsReason(msg, 4000)
    await send(msg)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            done = msg["type"] == "lifespan.shutdown"
            await send({"type": msg["type"] + ".complete"})
            if done:
                return
    elif scope["type"] == "http":
        await http(scope, receive, send)
    elif scope["type"] == "websocket":
        await websocket(scope, receive, send)
