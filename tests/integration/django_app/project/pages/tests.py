"""Live-server tests on Bayleaf (run by ../../test_live_server.py through
`manage.py test pages`): the server sees the test database and serves
HTTP, WebSocket and static files."""
import asyncio
import json
import os
import urllib.error
import urllib.request

import websockets
from django.conf import settings
from django.contrib.auth.models import User

from bayleaf.devserver import find_binary
from bayleaf.testing import BayleafLiveServerTestCase, BayleafProcess


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers, response.read()


def ws_exchange(url, send=None):
    async def talk():
        async with websockets.connect(url, open_timeout=10, close_timeout=2) as ws:
            if send is not None:
                await ws.send(send)
            return await asyncio.wait_for(ws.recv(), 10)

    return asyncio.run(talk())


class LiveServerTests(BayleafLiveServerTestCase):
    def test_server_process_is_bayleaf(self):
        process = self._server_process
        self.assertIsInstance(process, BayleafProcess)
        self.assertTrue(process.is_alive())
        exe = os.readlink(f"/proc/{process.pid}/exe").removesuffix(" (deleted)")
        self.assertEqual(os.path.realpath(exe), os.path.realpath(find_binary()))
        status, headers, body = fetch(self.live_server_url + "/hello/")
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("Server"), "bayleaf")
        self.assertEqual(body, b"hello v1\n")

    def test_http_sees_test_database(self):
        self.assertTrue(str(settings.DATABASES["default"]["NAME"]).endswith("test_db.sqlite3"))
        User.objects.create_user("alice", password="pw")
        User.objects.create_user("bob", password="pw")
        status, _, body = fetch(self.live_server_url + "/users/")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), ["alice", "bob"])

    def test_database_is_flushed_between_tests(self):
        status, _, body = fetch(self.live_server_url + "/users/")
        self.assertEqual(json.loads(body), [])

    def test_websocket_echo(self):
        reply = ws_exchange(self.live_server_ws_url + "/ws/echo/", send="ping")
        self.assertEqual(reply, "echo: ping")

    def test_websocket_consumer_sees_test_database(self):
        User.objects.create_user("carol", password="pw")
        reply = ws_exchange(self.live_server_ws_url + "/ws/users/")
        self.assertEqual(json.loads(reply), ["carol"])

    def test_static_file(self):
        status, _, body = fetch(self.live_server_url + "/static/pages/hello.txt")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"static hello\n")


class NoStaticLiveServerTests(BayleafLiveServerTestCase):
    serve_static = False

    def test_static_not_served(self):
        with self.assertRaises(urllib.error.HTTPError) as caught:
            fetch(self.live_server_url + "/static/pages/hello.txt")
        self.assertEqual(caught.exception.code, 404)
        status, _, _ = fetch(self.live_server_url + "/hello/")
        self.assertEqual(status, 200)
