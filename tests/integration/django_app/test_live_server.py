"""bayleaf.testing: Channels' live-server test case on Bayleaf.  The Django tests
in project/pages/tests.py run through `manage.py test`: they create users in
the test database and the live bayleaf server (HTTP view, WebSocket consumer)
sees them; static files are served unless serve_static is False."""

import re
import subprocess

from djtools import assert_no_bayleaf_left, project_env
from harness import PYTHON, bayleaf_only, sanitizer_report

pytestmark = bayleaf_only

TIMEOUT = 240


def manage_test(project, *args, env=None):
    return subprocess.run([PYTHON, "manage.py", "test", *args], cwd=str(project),
                          env=project_env(env), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=TIMEOUT)


def test_live_server_test_case(project):
    proc = manage_test(project, "pages", "-v", "2")
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, report
    assert re.search(r"^Ran 7 tests", report, re.M), report
    assert re.search(r"^OK", report, re.M), report
    for name in ("test_http_sees_test_database", "test_websocket_consumer_sees_test_database",
                 "test_websocket_echo", "test_static_file", "test_static_not_served"):
        assert name in report, report  # it ran (and passed: "OK" above)
    # the development database was never touched, the test one is gone
    assert not (project / "db.sqlite3").exists()
    assert not (project / "test_db.sqlite3").exists()
    assert_no_bayleaf_left(project, timeout=1)
    assert not sanitizer_report(report), sanitizer_report(report)


def test_server_that_fails_to_start_fails_the_test(project):
    """bayleaf exiting at once (here: /bin/false) is an error of the test, not a hang."""
    proc = manage_test(project, "pages.tests.LiveServerTests.test_websocket_echo",
                       env={"BAYLEAF_BIN": "/bin/false"})
    report = proc.stdout + proc.stderr
    assert proc.returncode == 1, report
    assert "Bayleaf did not start" in report, report
    assert "exit status 1" in report, report
