"""Every generic consumer kind of Django Channels runs unchanged (apps/chproj)."""

import asyncio
import hashlib
import json
import os

import pytest
import websockets

from chtools import connect, handshake_status, recv, recv_json, run, stats, wait_stat
from harness import build_request, chunked, skip_server

ECHO_KINDS = ["async", "sync"]


# --------------------------------------------------------------------------
# WebsocketConsumer / AsyncWebsocketConsumer
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ECHO_KINDS)
def test_echo_text(chserver, kind):
    async def go():
        async with connect(chserver, f"/ws/{kind}/echo/") as ws:
            await ws.send("hello")
            assert await recv(ws) == "hello"
            await ws.send("grüße ✓ 😀")
            assert await recv(ws) == "grüße ✓ 😀"
            await ws.send("x" * 200_000)
            assert await recv(ws) == "x" * 200_000
            # many small messages, in order
            for i in range(50):
                await ws.send(f"m{i}")
            assert [await recv(ws) for _ in range(50)] == [f"m{i}" for i in range(50)]

    run(go())


@pytest.mark.parametrize("kind", ECHO_KINDS)
def test_echo_binary(chserver, kind):
    """Binary frames reach receive(bytes_data=...).

    Channels 4.0 (Debian 12) dispatches on `"text" in message`, so a
    websocket.receive event must carry only the key of its frame type, as
    Daphne and uvicorn send it: {"type": "websocket.receive", "bytes": b"..."}."""
    async def go():
        async with connect(chserver, f"/ws/{kind}/echo/") as ws:
            blob = bytes(range(256)) * 4
            await ws.send(blob)
            assert await recv(ws) == blob
            big = os.urandom(300 * 1024)
            await ws.send(big)
            assert await recv(ws) == big
            # text and binary interleaved
            await ws.send("after binary")
            assert await recv(ws) == "after binary"

    run(go())


@skip_server("daphne", reason="Daphne does not send empty messages (it tests message.get('text') for truth)")
@pytest.mark.parametrize("kind", ECHO_KINDS)
def test_echo_empty_messages(chserver, kind):
    async def go():
        async with connect(chserver, f"/ws/{kind}/echo/") as ws:
            await ws.send("")
            assert await recv(ws) == ""
            await ws.send(b"")
            assert await recv(ws) == b""

    run(go())


@pytest.mark.parametrize("kind,in_loop", [("async", True), ("sync", False)])
def test_where_consumer_code_runs(chserver, kind, in_loop):
    """AsyncWebsocketConsumer runs on the event loop; WebsocketConsumer in asgiref's thread pool."""
    async def go():
        async with connect(chserver, f"/ws/{kind}/echo/") as ws:
            await ws.send("where")
            assert await recv_json(ws) == {"in_loop": in_loop}

    run(go())


@pytest.mark.parametrize("kind", ECHO_KINDS)
def test_subprotocol_selected_by_consumer(chserver, kind):
    async def go():
        async with connect(chserver, f"/ws/{kind}/echo/", subprotocols=["other", "bayleaf.test.v2"]) as ws:
            assert ws.subprotocol == "bayleaf.test.v2"
            await ws.send("x")
            assert await recv(ws) == "x"
        async with connect(chserver, f"/ws/{kind}/echo/") as ws:
            assert ws.subprotocol is None

    run(go())


@pytest.mark.parametrize("kind", ECHO_KINDS)
def test_consumer_closes_with_code(chserver, kind):
    """self.close(code=...) reaches the client, then disconnect() runs with that code."""
    code = 4321 if kind == "async" else 4322
    before = stats(chserver).get(f"disconnect:{kind}-echo:{code}", 0)

    async def go():
        async with connect(chserver, f"/ws/{kind}/echo/") as ws:
            await ws.send(f"close:{code}")
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await recv(ws)
            return ws.close_code

    assert run(go()) == code
    wait_stat(chserver, f"disconnect:{kind}-echo:{code}", before + 1)


@pytest.mark.parametrize("kind", ECHO_KINDS)
def test_disconnect_runs_when_client_closes(chserver, kind):
    before = stats(chserver).get(f"disconnect:{kind}-echo:1000", 0)

    async def go():
        async with connect(chserver, f"/ws/{kind}/echo/") as ws:
            await ws.send("ping")
            assert await recv(ws) == "ping"
        # leaving the block sent a close frame with 1000

    run(go())
    wait_stat(chserver, f"disconnect:{kind}-echo:1000", before + 1)


@skip_server("uvicorn", reason="uvicorn raises from send() after the client closed, so disconnect() never runs")
@pytest.mark.parametrize("kind", ECHO_KINDS)
def test_disconnect_runs_after_a_send_that_lost_the_race(chserver, kind):
    """The consumer sends while the client is already gone (its close frame got there
    first): Channels 4.0 does not expect send() to raise, so unless the server drops
    that late websocket.send (as Daphne does), the exception ends the consumer before
    websocket.disconnect is dispatched and disconnect() -- group_discard in a chat --
    never runs."""
    before = stats(chserver).get(f"disconnect:{kind}-echo:1000", 0)

    async def go():
        async with connect(chserver, f"/ws/{kind}/echo/") as ws:
            await ws.send("later:300:too late")
        # the block sent a close frame with 1000 and got the server's close back

    run(go())
    wait_stat(chserver, f"disconnect:{kind}-echo:1000", before + 1)
    chserver.assert_serving("/whoami/")


@pytest.mark.parametrize("kind", ECHO_KINDS)
def test_disconnect_runs_when_connection_drops(chserver, kind):
    """TCP connection dropped without a close frame: disconnect() runs with 1006."""
    before = stats(chserver).get(f"disconnect:{kind}-echo:1006", 0)

    async def go():
        ws = await connect(chserver, f"/ws/{kind}/echo/")
        await ws.send("ping")
        assert await recv(ws) == "ping"
        ws.transport.abort()
        await asyncio.sleep(0.05)

    run(go())
    wait_stat(chserver, f"disconnect:{kind}-echo:1006", before + 1)


def test_consumer_denies_in_connect(chserver):
    """close() in connect() before accept(): the handshake is refused with 403."""
    assert run(handshake_status(chserver, "/ws/deny/")) == 403
    chserver.assert_serving("/whoami/")


# --------------------------------------------------------------------------
# JsonWebsocketConsumer / AsyncJsonWebsocketConsumer
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kind,in_loop", [("ajson", True), ("json", False)])
def test_json_consumers(chserver, kind, in_loop):
    docs = [{"a": 1, "b": [1, 2, {"c": None}]}, [1, "two", 3.5], "just a string", 42,
            {"text": "ünïcødé ✓", "nested": {"deep": [True, False]}}]

    async def go():
        async with connect(chserver, f"/ws/{kind}/echo/") as ws:
            for doc in docs:
                await ws.send(json.dumps(doc))
                assert await recv_json(ws) == {"echo": doc, "kind": kind, "in_loop": in_loop}

    run(go())


@skip_server("uvicorn", reason="uvicorn 0.17 drops the connection (1006) when the app raises")
@pytest.mark.parametrize("kind", ["ajson", "json"])
def test_json_consumer_invalid_json_closes_connection(chserver, kind):
    """decode_json() raises inside the consumer: the server closes the connection
    (1011 internal error per the ASGI spec) and keeps serving."""
    async def go():
        async with connect(chserver, f"/ws/{kind}/echo/") as ws:
            await ws.send("{not json")
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await recv(ws)
            return ws.close_code

    assert run(go()) == 1011
    chserver.assert_serving("/whoami/")


# --------------------------------------------------------------------------
# URLRouter
# --------------------------------------------------------------------------

def test_url_router_path_converters(chserver):
    async def go():
        async with connect(chserver, "/ws/route/blue/42/") as ws:
            return await recv_json(ws)

    info = run(go())
    assert info == {"path": "/ws/route/blue/42/", "args": [], "kwargs": {"name": "blue", "num": 42}}


def test_url_router_regex_groups(chserver):
    async def go():
        async with connect(chserver, "/ws/re/summer-2024/") as ws:
            return await recv_json(ws)

    info = run(go())
    assert info["kwargs"] == {"slug": "summer", "year": "2024"}


def test_url_router_percent_encoded_kwarg(chserver):
    async def go():
        async with connect(chserver, "/ws/route/caf%C3%A9%20noir/7/") as ws:
            return await recv_json(ws)

    info = run(go())
    assert info["kwargs"] == {"name": "café noir", "num": 7}


def test_url_router_no_route(chserver):
    """URLRouter raises for an unknown path: the handshake fails, the server lives on."""
    async def go():
        try:
            async with connect(chserver, "/ws/nowhere/"):
                pass
        except websockets.exceptions.InvalidStatusCode as e:
            return e.status_code
        except (websockets.exceptions.InvalidHandshake, websockets.exceptions.ConnectionClosed, OSError) as e:
            return repr(e)
        return "accepted"

    result = run(go())
    assert result != "accepted"
    if isinstance(result, int):
        assert result >= 400
    chserver.assert_serving("/whoami/")


def test_http_protocol_router_falls_through_to_django(chserver):
    status, headers, body = chserver.get("/whoami/")
    assert status == 200
    assert json.loads(body) == {"user": "", "authenticated": False}
    status, _, _ = chserver.get("/no/such/page/")
    assert status == 404


# --------------------------------------------------------------------------
# AsyncHttpConsumer
# --------------------------------------------------------------------------

def test_async_http_consumer_response(chserver):
    status, headers, body = chserver.get("/ahttp/hello/")
    assert status == 200
    assert body == b"hello from AsyncHttpConsumer\n"
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["x-consumer"] == "hello"


@pytest.mark.parametrize("size", [0, 10, 3 * 1024 * 1024 + 5])
def test_async_http_consumer_request_body(chserver, size):
    body = os.urandom(size)
    status, _, data = chserver.request("POST", "/ahttp/hash/", body=body,
                                       headers={"Content-Type": "application/octet-stream"})
    assert status == 200
    assert json.loads(data) == {"method": "POST", "length": size, "sha256": hashlib.sha256(body).hexdigest()}


def test_async_http_consumer_chunked_request_body(chserver):
    pieces = [b"alpha-", b"beta-" * 5000, b"gamma"]
    with chserver.connect() as conn:
        conn.send(build_request("POST", "/ahttp/hash/", headers=[("Transfer-Encoding", "chunked")])
                  + chunked(*pieces))
        resp = conn.read_response()
        assert resp.status == 200
        assert json.loads(resp.body)["sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()
        # the connection is kept alive after a consumer's response
        again = conn.request("GET", "/ahttp/hello/")
        assert again.status == 200 and again.body == b"hello from AsyncHttpConsumer\n"


def _events(text):
    return [block for block in text.split("\n\n") if block]


def test_async_http_consumer_event_stream(chserver):
    """send_headers + send_body(more_body=True): the first event reaches the client
    while the consumer is still waiting, the rest follow after the release."""
    key = "stream1"
    with chserver.connect() as conn:
        conn.send(build_request("GET", f"/ahttp/events/{key}/3/", headers=[("Accept", "text/event-stream")]))
        head = conn.read_head()
        assert head.status == 200
        assert head.header("content-type") == "text/event-stream"
        assert head.header("cache-control") == "no-cache"
        assert head.header("content-length") is None
        assert "chunked" in head.header("transfer-encoding", "").lower()
        received = b""
        while b"\n\n" not in received:
            size = int(conn.read_until(b"\r\n")[:-2], 16)
            assert size > 0, "response ended before the consumer was released"
            received += conn.read_exact(size)
            assert conn.read_exact(2) == b"\r\n"
        assert _events(received.decode()) == ["event: hello\ndata: waiting"]
        assert conn.is_open_idle(0.3), "more data arrived before the release"

        status, _, body = chserver.get(f"/ahttp/release/{key}/")
        assert (status, body) == (200, b"released\n")

        rest = b""
        while True:
            size = int(conn.read_until(b"\r\n")[:-2], 16)
            if size == 0:
                assert conn.read_exact(2) == b"\r\n"
                break
            rest += conn.read_exact(size)
            assert conn.read_exact(2) == b"\r\n"
        assert _events(rest.decode()) == [f"id: {i}\ndata: event {i} of 3" for i in (1, 2, 3)] + [
            "event: end\ndata: bye"]
        # keep-alive after the streamed response
        again = conn.request("GET", "/ahttp/hello/")
        assert again.status == 200


@pytest.mark.parametrize("kind", ECHO_KINDS)
def test_sys_exit_in_a_consumer_closes_it_1011_only(chserver, kind):
    """sys.exit() in a consumer's handler (in the sync thread for the sync kind)
    ends that consumer with 1011; the server and the other sockets go on."""
    async def go():
        async with connect(chserver, f"/ws/{kind}/echo/") as side, \
                connect(chserver, f"/ws/{kind}/echo/") as ws:
            await ws.send("exit")
            with pytest.raises(websockets.ConnectionClosed) as info:
                await recv(ws)
            assert info.value.code == 1011, info.value
            await side.send("still here")
            assert await recv(side) == "still here"

    run(go())
    assert chserver.alive(), chserver.describe()
