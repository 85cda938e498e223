"""AuthMiddlewareStack (sessions in SQLite) and AllowedHostsOriginValidator (apps/chproj)."""

import json
import urllib.parse

import pytest

from chtools import USERS, connect, handshake_status, origin_of, recv_json, run


def login(server, username, password):
    """Log in through the project's login view; returns (status, sessionid cookie or None)."""
    form = urllib.parse.urlencode({"username": username, "password": password})
    conn = server.http()
    try:
        conn.request("POST", "/login/", body=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
        resp = conn.getresponse()
        resp.read()
        cookies = resp.headers.get_all("Set-Cookie") or []
    finally:
        conn.close()
    for cookie in cookies:
        name, _, rest = cookie.partition("=")
        if name.strip() == "sessionid":
            return resp.status, rest.split(";", 1)[0]
    return resp.status, None


def whoami_ws(server, cookie=None, **kw):
    headers = {"Cookie": cookie} if cookie else None

    async def go():
        async with connect(server, "/ws/whoami/", headers=headers, **kw) as ws:
            return await recv_json(ws)

    return run(go())


@pytest.mark.parametrize("username", sorted(USERS))
def test_session_user_reaches_consumer(chserver, username):
    status, session = login(chserver, username, USERS[username])
    assert status == 200 and session, "login view did not set a session cookie"
    # plain Django view sees the session too
    status, _, body = chserver.get("/whoami/", headers={"Cookie": f"sessionid={session}"})
    assert json.loads(body) == {"user": username, "authenticated": True}
    # the consumer gets the same user from AuthMiddlewareStack
    info = whoami_ws(chserver, f"csrftoken=abc; sessionid={session}; other=1")
    assert info == {"user": username, "authenticated": True, "session_key": session}


def test_anonymous_without_cookie(chserver):
    assert whoami_ws(chserver) == {"user": "", "authenticated": False, "session_key": None}


def test_unknown_session_is_anonymous(chserver):
    info = whoami_ws(chserver, "sessionid=thisisnotasessionkeythatexists0000")
    assert info["authenticated"] is False and info["user"] == ""


def test_wrong_password_gets_no_session(chserver):
    status, session = login(chserver, "alice", "wrong")
    assert status == 403 and session is None


def test_chat_messages_carry_the_session_user(chserver):
    _, session = login(chserver, "bob", USERS["bob"])

    async def go():
        async with connect(chserver, "/ws/async/chat/authroom/", headers={"Cookie": f"sessionid={session}"}) as bob, \
                connect(chserver, "/ws/async/chat/authroom/") as anon:
            await bob.send(json.dumps({"message": "from bob"}))
            got = await recv_json(anon)
            await anon.send(json.dumps({"message": "from nobody"}))
            return got, await recv_json(bob), await recv_json(bob)

    from_bob, echo_bob, from_anon = run(go())
    assert from_bob["user"] == "bob" and from_bob["message"] == "from bob"
    assert echo_bob == from_bob
    assert from_anon["user"] == "" and from_anon["message"] == "from nobody"


# --------------------------------------------------------------------------
# AllowedHostsOriginValidator (ALLOWED_HOSTS = 127.0.0.1, localhost)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("origin", ["http://evil.example", "https://127.0.0.1.evil.example:443",
                                    "http://attacker.test:{port}", "null"])
def test_foreign_origin_refused(chserver, origin):
    origin = origin.format(port=chserver.port)
    assert run(handshake_status(chserver, "/ws/async/echo/", origin=origin)) == 403
    assert run(handshake_status(chserver, "/ws/whoami/", origin=origin)) == 403


def test_missing_origin_refused(chserver):
    """AllowedHostsOriginValidator refuses a handshake without Origin (ALLOWED_HOSTS has no '*')."""
    assert run(handshake_status(chserver, "/ws/async/echo/", origin=None)) == 403


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_allowed_origin_accepted(chserver, host):
    async def go():
        async with connect(chserver, "/ws/async/echo/", origin=origin_of(chserver, host)) as ws:
            await ws.send("allowed")
            return await ws.recv()

    assert run(go()) == "allowed"
    assert whoami_ws(chserver, origin="https://localhost")["authenticated"] is False


def test_refused_origin_leaves_server_healthy(chserver):
    for _ in range(20):
        assert run(handshake_status(chserver, "/ws/sync/echo/", origin="http://evil.example")) == 403
    chserver.assert_serving("/whoami/")
