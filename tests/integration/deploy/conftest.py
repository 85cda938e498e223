"""Fixtures of the deployment tests (the parent conftest's are reused)."""

import pytest

from server_fixtures import numbered_dirs

from .nginx_support import NginxFactory, have_nginx, make_cert


@pytest.fixture
def nginx(tmp_path):
    """nginx(example, upstream, tls=None, balancer=None) -> a running Nginx
    serving examples/deploy/<example>; every one is stopped at teardown."""
    factory = NginxFactory(numbered_dirs(tmp_path, "nginx"))
    try:
        yield factory
    finally:
        factory.close_all()


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory):
    """(cert, key) of a self-signed certificate for 127.0.0.1 and localhost."""
    if not have_nginx():
        pytest.skip("nginx not installed")
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def sock_path(short_dir):
    """A unix socket path short enough for sun_path."""
    return f"{short_dir}/bl.sock"
