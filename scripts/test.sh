#!/bin/sh
# The whole test suite on a fresh Linux machine with Python 3.11+: install what it needs, run it.
# .ci/run calls exactly this. Pass pytest arguments through: scripts/test.sh -k money -x
#   - Python packages into .venv (the project with its test extras);
#   - Debian's Chromium and ChromeDriver for the browser tests (apt, when missing; needs root or sudo);
#   - the C compiler builds the Arcus emulator library during the tests themselves.
set -eu
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c 'import kktbridge, pytest, hypothesis, aiohttp, selenium' # fail here, clearly, if the install failed

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" = "0" ] || SUDO="sudo"
    echo "installing Debian's chromium and chromium-driver for the browser tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    log=$(mktemp)
    if ! $SUDO apt-get install -y -q chromium chromium-driver >"$log" 2>&1; then
        if ! { $SUDO apt-get update -q && $SUDO apt-get install -y -q chromium chromium-driver; } >"$log" 2>&1; then
            cat "$log" >&2
            echo "could not install chromium and chromium-driver (needed by the browser tests)" >&2
            exit 1
        fi
    fi
    rm -f "$log"
fi
export KKTBRIDGE_REQUIRE_BROWSER=1

# PostgreSQL for the tests that need it (the cloud store); the machine's default, overridable.
export KKTBRIDGE_TEST_POSTGRES="${KKTBRIDGE_TEST_POSTGRES:-postgresql://postgres@127.0.0.1:5432/test}"

exec .venv/bin/python -m pytest "$@"
