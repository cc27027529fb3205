"""The command line, run as a user runs it: a real process."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_emulate_arcus_builds_into_a_relative_folder(tmp_path):
    done = subprocess.run([sys.executable, "-m", "kktbridge", "emulate", "arcus", "--build", "./arcus"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    library = Path(json.loads(done.stdout)["library"])
    assert library.is_absolute() and library.parent == tmp_path / "arcus" and library.is_file()


def test_separately_started_emulators_have_fn_numbers_of_their_own(emulator_process, tmp_path):
    first = emulator_process("atol", "--tcp", "127.0.0.1:0").info["fn_number"]
    second = emulator_process("mercury", "--http", "127.0.0.1:0").info["fn_number"]
    kept = emulator_process("atol", "--tcp", "127.0.0.1:0", "--state", str(tmp_path / "fn.json"))
    assert len({first, second, kept.info["fn_number"]}) == 3
    assert all(len(n) == 16 and n.isdigit() for n in (first, second))
    kept.stop()
    again = emulator_process("atol", "--tcp", "127.0.0.1:0", "--state", str(tmp_path / "fn.json"))
    assert again.info["fn_number"] == kept.info["fn_number"]  # a restart on the same state keeps its FN
    given = emulator_process("atol", "--tcp", "127.0.0.1:0", "--fn-number", "9999078900099999")
    assert given.info["fn_number"] == "9999078900099999"
@pytest.mark.parametrize("args", [
    ("driver", "--config", "{tmp}/k.toml", "add-device", "--kind", "atol", "--baudrate", "abc"),
    ("driver", "--config", "{tmp}/k.toml", "add-device", "--kind", "atol", "--tcp", "10.0.0.1:99999"),
    ("driver", "--config", "{tmp}/k.toml", "add-device", "--kind", "atol", "--token", "xyz"),
    ("emulate", "atol", "--fault", "bogus=1"),
    ("emulate", "atol", "--fault", "print_latency=abc"),
    ("emulate", "atol", "--fault", "drop_after_bytes=-3"),
    ("emulate", "atol", "--tcp", "127.0.0.1:99999"),
    ("emulate", "atol", "--control", "127.0.0.1:x"),
    ("emulate", "atol", "--password", "99999"),
    ("emulate", "atol", "--inn", "abc"),
    ("emulate", "atol", "--protocol", "v2"),
    ("emulate", "mercury", "--http", "127.0.0.1:70000"),
    ("emulate", "mercury", "--fault", "no_paper=maybe"),
    ("emulate", "mercury", "--fn-number", "123"),
    ("demo", "--driver-port", "abc"),
])
def test_a_mistake_on_the_command_line_is_one_line_and_exit_2(tmp_path, args):
    done = run(*(arg.format(tmp=tmp_path) for arg in args))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert args[-2].lstrip("-").split("-")[0] in lines[0] or "token" in lines[0], lines[0]


def test_a_file_that_is_not_the_emulators_state_is_one_line(tmp_path):
    (tmp_path / "state.json").write_text("not json", encoding="utf-8")
    done = run("emulate", "atol", "--tcp", "127.0.0.1:0", "--state", str(tmp_path / "state.json"))
    assert done.returncode == 1 and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
