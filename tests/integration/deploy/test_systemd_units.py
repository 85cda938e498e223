"""examples/deploy's systemd units: systemd-analyze verify accepts them (with
the built binary in ExecStart), their hardening and limits are there, and they
name the same paths as nginx.conf."""

import re
import shutil
import subprocess

import pytest

from harness import BAYLEAF

from .nginx_support import EXAMPLES

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
SHIPPED_BINARY = "/srv/mysite/venv/bin/bayleaf"


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_accepts_the_units(tmp_path):
    service = (EXAMPLES / "bayleaf.service").read_text()
    assert service.count(SHIPPED_BINARY) == 1
    (tmp_path / "bayleaf.service").write_text(service.replace(SHIPPED_BINARY, BAYLEAF))
    shutil.copy(EXAMPLES / "bayleaf.socket", tmp_path / "bayleaf.socket")
    proc = subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no", str(tmp_path / "bayleaf.socket"),
                           str(tmp_path / "bayleaf.service")], capture_output=True, text=True, timeout=60)
    out = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 0 and out == "", out


def directives(text):
    return {m.group(1): m.group(2) for m in re.finditer(r"^([A-Za-z]+)=(.*)$", text, re.M)}


def test_service_has_limits_environment_file_and_hardening():
    d = directives((EXAMPLES / "bayleaf.service").read_text())
    assert int(d["LimitNOFILE"]) >= 65536
    assert d["EnvironmentFile"].lstrip("-").startswith("/etc/")
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "PrivateTmp": "yes", "RestrictSUIDSGID": "yes"}.items():
        assert d.get(key) == value, key


def test_units_and_nginx_name_the_same_paths():
    service = (EXAMPLES / "bayleaf.service").read_text()
    socket_unit = (EXAMPLES / "bayleaf.socket").read_text()
    projects = set()
    for name in ("nginx.conf", "nginx-tcp.conf", "bayleaf.service"):
        projects |= set(re.findall(r"/srv/([a-z]+)/", (EXAMPLES / name).read_text()))
    assert projects == {"mysite"}
    sock = directives(socket_unit)["ListenStream"]
    assert f"server unix:{sock};" in (EXAMPLES / "nginx.conf").read_text()
    assert "ReadWritePaths=" + sock.rsplit("/", 1)[0] in service  # the socket's directory stays writable
    assert "listen [::]:80;" in (EXAMPLES / "nginx.conf").read_text()
