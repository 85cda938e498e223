"""Stopping always ends: with the app's event loop blocked, the I/O thread enforces
the stop deadline (the Python stack logged, status 1) and a second signal stops at
once. SIGHUP never kills a lone process or a worker; the supervisor logs every
worker's exit."""

import os
import signal
import threading

from harness import bayleaf_only, free_port, wait_until
from proc_support import http_get

pytestmark = bayleaf_only

EXIT_WAIT = 60  # generous: only a hang fails; the deadline itself is a few seconds


def _block_the_loop(p, port):
    """GET /block in a thread (the app calls time.sleep(300) in the event loop);
    returns once the app is blocking."""
    def run():
        try:
            http_get(port, "/block?t=300", timeout=EXIT_WAIT + 30)
        except OSError:
            pass  # the server went away: expected

    threading.Thread(target=run, daemon=True).start()
    p.wait_for_text("blocking the loop", timeout=30)


def test_blocked_loop_sigterm_ends_at_the_deadline_with_the_stack(procs):
    port = free_port()
    p = procs.start(["-p", port, "--graceful-timeout", "1", "--application-close-timeout", "1"],
                    port=port)
    _block_the_loop(p, port)
    p.send_signal(signal.SIGTERM)
    rc = p.wait_exit(EXIT_WAIT)
    assert rc is not None, "SIGTERM did not end a server whose loop is blocked\n" + p.describe()
    assert rc == 1, p.describe()
    err = p.stderr
    assert "Shutdown did not finish 7 s after the stop signal" in err, p.describe()
    # then faulthandler's dump: the loop thread's stack names the blocking function
    dump = err[err.index("Shutdown did not finish"):]
    assert "Current thread" in dump and "in _sleep_in_the_loop" in dump, p.describe()
    assert dump.rstrip().endswith("Exiting with status 1"), p.describe()


def test_thread_that_holds_up_finalisation_ends_at_the_deadline(procs):
    """The loop ends, but Python's finalisation waits for a non-daemon thread:
    the deadline still holds once the I/O loop is gone."""
    port = free_port()
    p = procs.start(["-p", port, "--graceful-timeout", "1", "--application-close-timeout", "1"],
                    port=port)
    assert http_get(port, "/stray-thread") == (200, b"started")
    p.send_signal(signal.SIGTERM)
    rc = p.wait_exit(EXIT_WAIT)
    assert rc is not None, "a stray thread kept the server from exiting\n" + p.describe()
    assert rc == 1, p.describe()
    dump = p.stderr[p.stderr.index("Shutdown did not finish 7 s"):]
    assert "in _stray_thread_sleeps" in dump, p.describe()


def test_blocked_loop_second_signal_stops_at_once(procs, tmp_path):
    sock = os.path.join(str(tmp_path), "s.sock")
    port = free_port()
    # a graceful timeout that would outlast the test: only the second signal can end it
    p = procs.start(["-p", port, "-u", sock, "--graceful-timeout", "600"], port=port)
    _block_the_loop(p, port)
    p.send_signal(signal.SIGINT)
    p.wait_for_text("Received SIGINT, shutting down", timeout=30)
    assert p.alive()
    p.send_signal(signal.SIGINT)
    rc = p.wait_exit(EXIT_WAIT)
    assert rc is not None, "a second SIGINT did not end the server\n" + p.describe()
    assert rc == 1, p.describe()
    assert "Second signal: stopping at once" in p.stderr
    assert not os.path.exists(sock), "the socket file we created is removed"


def test_sighup_is_logged_and_ignored_by_a_lone_process(procs):
    port = free_port()
    p = procs.start(["-p", port], port=port)
    pid = int(http_get(port, "/pid")[1])
    p.send_signal(signal.SIGHUP)
    p.wait_for_text("Received SIGHUP: ignored", timeout=30)
    status, body = http_get(port, "/pid")
    assert status == 200 and int(body) == pid
    # and it still stops cleanly
    rc, killed = p.stop()
    assert rc == 0 and not killed, p.describe()


def test_workers_ignore_a_hangup_of_the_process_group(procs):
    port = free_port()
    p = procs.start(["-p", port, "--workers", "2", "-v", "2"], port=port)
    old = set(p.wait_workers(2))
    victim = min(old)
    # a hangup sent to a worker alone changes nothing
    os.kill(victim, signal.SIGHUP)
    p.wait_for_text(rf"Worker {victim}: SIGHUP ignored", timeout=30)
    assert victim in p.workers()
    # the terminal's hangup reaches the whole group: the supervisor replaces the
    # workers, which drain and exit 0 rather than die of the signal
    os.killpg(p.pid, signal.SIGHUP)
    p.wait_for_text("Reload complete", timeout=60)
    for pid in old:
        p.wait_for_text(rf"Worker {pid} exited with status 0", timeout=60)
    assert "SIGHUP)" not in p.stderr, p.describe()
    wait_until(lambda: len(p.workers()) == 2 and not set(p.workers()) & old, 60,
               message="two new workers")
    rc, killed = p.stop()
    assert rc == 0 and not killed, p.describe()


def test_supervisor_logs_a_worker_dying_while_its_replacement_starts(procs, tmp_path):
    """An old worker that dies while its replacement is still starting (during a
    reload) is logged like any other exit."""
    port = free_port()
    gate = tmp_path / "startup-open"
    gate.write_text("")
    p = procs.start(["-p", port, "--workers", "2"], env={"PROC_STARTUP_GATE": str(gate)},
                    port=port)
    old = p.wait_workers(2)
    gate.unlink()  # replacements stay in lifespan startup until the gate opens again
    p.send_signal(signal.SIGHUP)
    wait_until(lambda: p.log_count("Started worker") == 3, 30, message="a replacement starting")
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    for pid in old:
        p.wait_for_text(rf"Worker {pid} was killed by signal 9 \(SIGKILL\)", timeout=30)
    gate.write_text("")
    p.wait_for_text("Reload complete", timeout=60)
    wait_until(lambda: len(p.workers()) == 2, 60, message="two workers")
    rc, killed = p.stop()
    assert rc == 0 and not killed, p.describe()
