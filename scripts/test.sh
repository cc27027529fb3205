#!/bin/sh
# The whole test suite on a fresh Linux machine with Python 3.11+: install what it needs into .venv, run it.
# .ci/run calls exactly this. Pass pytest arguments through: scripts/test.sh -k money -x
set -eu
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c 'import kktbridge, pytest, hypothesis' # fail here, clearly, if the install did not work

# PostgreSQL for the tests that need it (the cloud store); the machine's default, overridable.
export KKTBRIDGE_TEST_POSTGRES="${KKTBRIDGE_TEST_POSTGRES:-postgresql://postgres@127.0.0.1:5432/test}"

exec .venv/bin/python -m pytest "$@"
