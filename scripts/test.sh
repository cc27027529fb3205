#!/bin/sh
# The whole test suite on a fresh Linux machine with Python 3.11+: install what it needs, run it.
# .ci/run calls exactly this. Pass pytest arguments through: scripts/test.sh -k money -x
# The tests run in KKTBRIDGE_TEST_WORKERS processes (pytest-xdist; default 2, one per core of the CI machine:
# most tests wait on sockets and processes). `-n 0` after the script's name runs them in this one process.
#   - Python packages into .venv (the project with its test extras);
#   - Debian's Chromium and ChromeDriver for the browser tests: when missing, `apt-get install chromium
#     chromium-driver`, which needs root (run as root, or with sudo on PATH); installed already, no root is needed;
#   - the C compiler builds the Arcus emulator library during the tests themselves.
set -eu
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c "import kktbridge, pytest, hypothesis, aiohttp, selenium, sqlalchemy, alembic, aiosqlite, asyncpg, argon2, schemathesis, xdist" # fail here, clearly, if the install failed

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != "0" ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "the browser tests need chromium and chromedriver: install them as root (apt-get install chromium" \
                 "chromium-driver), or run this script as root" >&2
            exit 1
        fi
        SUDO="sudo"
    fi
    echo "installing Debian's chromium and chromium-driver with apt-get (needs root: ${SUDO:-as root}) for the" \
         "browser tests" >&2
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

exec .venv/bin/python -m pytest -n "${KKTBRIDGE_TEST_WORKERS:-2}" "$@"
