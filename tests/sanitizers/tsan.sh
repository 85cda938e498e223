#!/usr/bin/env bash
# ThreadSanitizer run of the thread boundary: builds Bayleaf with
# -fsanitize=thread (clang) into build-tsan, runs the C unit tests (the bridge's
# two-thread stress test among them), then HTTP and WebSocket integration,
# conformance and fault tests against build-tsan/bayleaf. Any race report
# fails the run (the test harness checks every server's stderr).
#
#   bash tests/sanitizers/tsan.sh            # build + unit + the default test set
#   bash tests/sanitizers/tsan.sh -k echo    # extra pytest arguments
#
# Environment: BAYLEAF_TSAN_DIR (default build-tsan), BAYLEAF_TSAN_TESTS (the
# pytest paths to run instead of the default set), CC (default clang).
set -euo pipefail
cd "$(dirname "$0")/../.."

BUILD=${BAYLEAF_TSAN_DIR:-build-tsan}
PY=/usr/bin/python3
export CC=${CC:-clang}

echo "==> tsan: configure and build $BUILD ($CC, -fsanitize=thread)"
if [ -f "$BUILD/meson-private/coredata.dat" ]; then
    meson setup --reconfigure "$BUILD" -Db_sanitize=thread -Db_lundef=false --buildtype=debug >/dev/null
else
    meson setup "$BUILD" -Db_sanitize=thread -Db_lundef=false --buildtype=debug >/dev/null
fi
meson compile -C "$BUILD"

# CPython's own allocator hides allocations from TSan: use malloc. halt_on_error=0
# lets a run show every race; exitcode makes the unit tests fail on any.
export PYTHONMALLOC=malloc
export TSAN_OPTIONS="halt_on_error=0 exitcode=66 second_deadlock_stack=1 history_size=4 suppressions=$PWD/tests/sanitizers/tsan.supp"

echo "==> tsan: C unit tests"
meson test -C "$BUILD" --print-errorlogs

DEFAULT_TESTS="tests/integration/test_body.py tests/integration/test_keepalive.py
tests/integration/test_concurrency.py tests/integration/test_disconnect.py
tests/integration/ws/test_ws_messages.py tests/integration/ws/test_ws_close.py
tests/integration/ws/test_ws_backpressure.py tests/conformance/test_rfc6455_fragmentation.py
tests/conformance/test_rfc6455_control.py tests/faults/test_blocked_loop.py
tests/faults/test_app_faults.py tests/faults/test_client_faults.py
tests/conformance/test_rfc6455_close.py tests/faults/test_churn.py"
# shellcheck disable=SC2086
set -- ${BAYLEAF_TSAN_TESTS:-$DEFAULT_TESTS} "$@"

echo "==> tsan: $# pytest arguments against $BUILD/bayleaf"
BAYLEAF_BIN=$PWD/$BUILD/bayleaf BAYLEAF_SANITIZED=1 BAYLEAF_CHURN_SCALE=0.05 \
    "$PY" -m pytest -q -p no:cacheprovider "$@"
echo "==> tsan: no data race reported"
