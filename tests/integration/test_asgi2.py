"""ASGI 2 double-callable applications are detected and served."""

import pytest


@pytest.mark.parametrize("spec, status, prefix", [
    ("asgi2:ClassApp", 200, b"asgi2-class "),
    ("asgi2:function_app", 201, b"asgi2-function "),
])
def test_asgi2_app(start_server, spec, status, prefix):
    server = start_server(spec)
    with server.connect() as conn:
        for path in ["/one", "/two/three"]:
            resp = conn.request("GET", path)
            assert resp.status == status
            assert resp.body == prefix + path.encode()
