"""The command line, run as a user runs it: a real process."""

import json
import subprocess
import sys

from kktbridge import __version__


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kktbridge", *args], capture_output=True, text=True, timeout=60)


def test_version():
    done = run("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"kktbridge {__version__}"


def test_demo_prints_the_example_packet():
    done = run("demo")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["version"] == __version__
    pay, check = out["commands"]
    assert pay["type"] == "bnkCardPayment" and pay["sum"] == "12.00"
    assert check["receipt"]["total"] == "11.00" and check["receipt"]["taxation"] == "ПСН"


def test_no_command_prints_help():
    done = run()
    assert done.returncode == 2 and "demo" in done.stdout
