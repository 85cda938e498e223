"""Debian's nginx in front of the server under test, run from a temporary prefix.

The site configuration is one of examples/deploy/nginx*.conf, used as shipped
except for the lines a test must change (listen port, upstream, static root,
optionally TLS and the trusted balancer). Everything nginx writes (pid, logs,
temp files) stays in the test's directory; the process group is always stopped.
"""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from harness import REPO, free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
EXAMPLES = REPO / "examples" / "deploy"
START_DEADLINE = 10.0

UNIX_UPSTREAM = "server unix:/run/bayleaf/bayleaf.sock;"
TCP_UPSTREAM = "server 127.0.0.1:8000;"
LISTEN = "    listen 80;\n"
STATIC = "alias /srv/mysite/static/;"
LISTEN6 = "    listen [::]:80;\n"
BALANCER = "# 10.0.0.0/8 1;"


def have_nginx():
    return os.access(NGINX, os.X_OK)


needs_nginx = pytest.mark.skipif(not have_nginx(), reason=f"nginx not installed ({NGINX})")


def _replace_once(text, old, new, what):
    if text.count(old) != 1:
        raise AssertionError(f"example config: expected one {what} line {old!r}")
    return text.replace(old, new)


def site_config(example, port, upstream, static_dir, tls=None, balancer=None):
    """The example's text with the test's port, upstream and static root.

    upstream: a unix socket path (str/Path) for nginx.conf, or a TCP port for
    nginx-tcp.conf. tls: (cert, key) to listen with TLS. balancer: an address
    or CIDR to trust as a TLS-terminating balancer (the geo block)."""
    text = (EXAMPLES / example).read_text()
    if isinstance(upstream, int):
        text = _replace_once(text, TCP_UPSTREAM, f"server 127.0.0.1:{upstream};", "upstream")
    else:
        text = _replace_once(text, UNIX_UPSTREAM, f"server unix:{upstream};", "upstream")
    listen = f"    listen 127.0.0.1:{port}{' ssl' if tls else ''};\n"
    if tls:
        listen += f"    ssl_certificate {tls[0]};\n    ssl_certificate_key {tls[1]};\n"
    text = _replace_once(text, LISTEN, listen, "listen")
    if LISTEN6 in text:  # the test listens on loopback only
        text = _replace_once(text, LISTEN6, "", "IPv6 listen")
    text = _replace_once(text, STATIC, f"alias {static_dir}/;", "static alias")
    if balancer:
        text = _replace_once(text, BALANCER, f"{balancer} 1;", "balancer")
    return text


def make_cert(directory):
    """A self-signed certificate for 127.0.0.1 / localhost: (cert, key) paths."""
    cert, key = Path(directory) / "cert.pem", Path(directory) / "key.pem"
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def client_ssl_context(cert):
    ctx = ssl.create_default_context(cafile=str(cert))
    return ctx


class Nginx:
    """One nginx master (+1 worker) in its own process group."""

    def __init__(self, workdir, site_text):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = None
        self.proc = None
        self.site_text = site_text
        self.error_log = self.dir / "error.log"
        self.access_log = self.dir / "access.log"

    def _main_config(self):
        d = self.dir
        user = "user root root;\n" if os.geteuid() == 0 else ""  # the test's sockets are private
        return (f"{user}worker_processes 1;\n"
                f"pid {d}/nginx.pid;\n"
                f"lock_file {d}/nginx.lock;\n"
                f"error_log {d}/error.log info;\n"
                "events { worker_connections 512; }\n"
                "http {\n"
                f"    access_log {d}/access.log;\n"
                f"    client_body_temp_path {d}/client_body;\n"
                f"    proxy_temp_path {d}/proxy;\n"
                f"    fastcgi_temp_path {d}/fastcgi;\n"
                f"    uwsgi_temp_path {d}/uwsgi;\n"
                f"    scgi_temp_path {d}/scgi;\n"
                f"    include {d}/site.conf;\n"
                "}\n")

    def start(self, port):
        self.port = port
        (self.dir / "site.conf").write_text(self.site_text)
        conf = self.dir / "nginx.conf"
        conf.write_text(self._main_config())
        cmd = [NGINX, "-p", f"{self.dir}/", "-c", str(conf), "-e", str(self.error_log),
               "-g", "daemon off;"]
        out = open(self.dir / "nginx.out", "wb")
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        finally:
            out.close()
        deadline = time.monotonic() + START_DEADLINE
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited at startup ({self.proc.returncode}):\n{self.describe()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"nginx not accepting on {port} after {START_DEADLINE}s:\n{self.describe()}")
            time.sleep(0.02)

    def describe(self):
        parts = []
        for name in ("nginx.out", "error.log"):
            p = self.dir / name
            if p.exists():
                parts.append(f"--- {name} ---\n{p.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    def errors(self):
        """error.log lines at level error or worse."""
        if not self.error_log.exists():
            return []
        return [l for l in self.error_log.read_text(errors="replace").splitlines()
                if any(f"[{lvl}]" in l for lvl in ("error", "crit", "alert", "emerg"))]

    def stop(self):
        """Graceful stop (SIGQUIT), then SIGTERM, then SIGKILL to the group."""
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: the master leads its own group
        for sig, wait in ((signal.SIGQUIT, 5), (signal.SIGTERM, 3)):
            if self.proc.poll() is not None:
                break
            try:
                self.proc.send_signal(sig)
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        try:
            os.killpg(pgid, signal.SIGKILL)  # a worker left behind by a killed master
        except (ProcessLookupError, PermissionError):
            pass


class NginxFactory:
    def __init__(self, tmp_factory):
        self._tmp = tmp_factory
        self.running = []

    def __call__(self, example, upstream, tls=None, balancer=None):
        d = Path(self._tmp())
        static = d / "static"
        static.mkdir()
        (static / "hello.txt").write_text("static hello\n")
        port = free_port()
        ng = Nginx(d / "nginx", site_config(example, port, upstream, static, tls=tls, balancer=balancer))
        self.running.append(ng)
        return ng.start(port)

    def close_all(self):
        for ng in self.running:
            ng.stop()
        self.running.clear()
