"""The command line, run as a user runs it: a real process."""

import subprocess
import sys

from kktbridge import __version__


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kktbridge", *args], capture_output=True, text=True, timeout=60)


def test_version():
    done = run("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"kktbridge {__version__}"


def test_no_command_prints_help():
    done = run()
    assert done.returncode == 2 and "demo" in done.stdout and "driver" in done.stdout and "emulate" in done.stdout


def test_unknown_emulator_kind_is_refused():
    done = run("emulate", "shtrih")
    assert done.returncode == 2 and "invalid choice" in done.stderr
