"""Every option of the installed Daphne (python3-daphne), read from its --help,
is listed by `bayleaf --help` and accepted by bayleaf's parser: with a sample
value and an application that does not exist, the error is about the app."""

import re
import socket
import subprocess

import pytest

from harness import BAYLEAF, PYTHON, bayleaf_only, server_env

pytestmark = bayleaf_only

BOGUS_APP = "no_such_module_xyz:application"

# A sample value per option (by long name); anything else gets one by metavar.
SAMPLES = {
    "--port": "0",
    "--bind": "127.0.0.1",
    "--websocket_timeout": "60",
    "--websocket_connect_timeout": "5",
    "--unix-socket": "{tmp}/cli.sock",
    "--fd": "{fd}",
    "--endpoint": "tcp:port=0:interface=127.0.0.1",
    "--verbosity": "1",
    "--http-timeout": "30",
    "--access-log": "{tmp}/access.log",
    "--log-fmt": "%(asctime)s %(levelname)s %(message)s",
    "--ping-interval": "20",
    "--ping-timeout": "30",
    "--application-close-timeout": "10",
    "--root-path": "/mount",
    "--proxy-headers-host": "X-Real-IP",
    "--proxy-headers-port": "X-Real-Port",
    "--server-name": "someserver",
}


def daphne_help():
    proc = subprocess.run([PYTHON, "-m", "daphne", "--help"], capture_output=True, text=True, timeout=60,
                          env=server_env(), stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def parse_options(text):
    """[(spellings, metavar or None)] from argparse's "options:" section."""
    section = re.split(r"^(?:optional arguments|options):\s*$", text, maxsplit=1, flags=re.M)
    assert len(section) == 2, f"no options section in:\n{text}"
    out = []
    for line in section[1].splitlines():
        m = re.match(r"^  (-\S.*?)(?:\s{2,}|$)", line)
        if not m:
            continue
        spellings, metavar = [], None
        for part in m.group(1).split(", "):
            name, _, arg = part.partition(" ")
            spellings.append(name)
            metavar = arg or metavar
        out.append((tuple(spellings), metavar))
    return out


def have_daphne():
    return subprocess.run([PYTHON, "-c", "import daphne.cli"], capture_output=True, timeout=60).returncode == 0


if not have_daphne():
    pytest.skip("Daphne (python3-daphne) is not installed", allow_module_level=True)
DAPHNE_OPTIONS = parse_options(daphne_help())


def test_daphne_help_was_understood():
    names = {n for spellings, _ in DAPHNE_OPTIONS for n in spellings}
    assert len(DAPHNE_OPTIONS) >= 20, DAPHNE_OPTIONS
    for expected in ("-p", "--port", "--proxy-headers", "--proxy-headers-host", "--no-server-name",
                     "--websocket_timeout", "-e", "--endpoint", "--fd", "-h"):
        assert expected in names, (expected, sorted(names))
    assert dict((s[-1], m) for s, m in DAPHNE_OPTIONS)["--proxy-headers"] is None
    assert dict((s[-1], m) for s, m in DAPHNE_OPTIONS)["--port"] == "PORT"


def bayleaf_help():
    proc = subprocess.run([BAYLEAF, "--help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("spellings,metavar", DAPHNE_OPTIONS, ids=[s[-1] for s, _ in DAPHNE_OPTIONS])
def test_daphne_option_is_listed(spellings, metavar):
    text = bayleaf_help()
    for name in spellings:
        assert re.search(rf"(^|[\s,]){re.escape(name)}([\s,=]|$)", text, re.M), \
            f"{name} (Daphne) missing from bayleaf --help"


def sample_value(long_name, metavar, tmp, fd):
    value = SAMPLES.get(long_name)
    if value is None:  # an option newer than this list: a guess by its metavar
        value = "10" if re.search(r"TIMEOUT|INTERVAL|SIZE|PORT|COUNT|LIMIT", metavar or "") else "x"
    return value.format(tmp=tmp, fd=fd)


@pytest.mark.parametrize("spellings,metavar", [o for o in DAPHNE_OPTIONS if o[0][-1] != "--help"],
                         ids=[s[-1] for s, _ in DAPHNE_OPTIONS if s[-1] != "--help"])
def test_daphne_option_is_accepted(spellings, metavar, short_dir):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        for name in spellings:
            argv = [name]
            if metavar is not None:
                argv.append(sample_value(spellings[-1], metavar, short_dir, listener.fileno()))
            # -p 0 first: no option below may need port 8000 to be free
            cmd = [BAYLEAF, "-p", "0", *argv, BOGUS_APP]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=short_dir,
                                  stdin=subprocess.DEVNULL, pass_fds=(listener.fileno(),), env=server_env())
            err = proc.stderr
            assert proc.returncode != 0, f"{cmd}: exited 0\n{err}"
            assert "no_such_module_xyz" in err, f"{cmd}: the error is not about the app:\n{err}"
            for word in ("unknown option", "needs a value", "unexpected argument", "invalid"):
                assert word not in err.lower(), f"{cmd}: {word!r}\n{err}"
    finally:
        listener.close()


def test_help_flags():
    for flag in ("-h", "--help"):
        proc = subprocess.run([BAYLEAF, flag], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0 and "--proxy-headers" in proc.stdout, proc


def test_proxy_options_together(short_dir):
    """The Daphne spelling of a proxied deployment."""
    cmd = [BAYLEAF, "-p", "0", "--proxy-headers", "--proxy-headers-host", "X-Real-IP", "--proxy-headers-port",
           "X-Real-Port", "--forwarded-allow-ips", "10.0.0.0/8,127.0.0.1", "--root-path", "/x", BOGUS_APP]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=short_dir, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0 and "no_such_module_xyz" in proc.stderr, proc.stderr
