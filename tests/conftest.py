"""Shared fixtures: emulators run as real processes, the way a person runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest


class EmulatorProcess:
    """`kktbridge emulate ...` in a child process; `info` is its ready line."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.process: subprocess.Popen | None = None
        self.info: dict = {}

    def start(self) -> dict:
        self.process = subprocess.Popen([sys.executable, "-m", "kktbridge", "emulate", *self.args],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"emulator did not start: {self.process.stderr.read()}")
        self.info = json.loads(line)
        return self.info

    def kill(self) -> None:
        """Power cut: SIGKILL, no cleanup."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def wait_dead(self, timeout: float = 10) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process:
            for stream in (self.process.stdout, self.process.stderr):
                if stream:
                    stream.close()


@pytest.fixture
def emulator_process() -> Iterator:
    started: list[EmulatorProcess] = []

    def spawn(*args: str) -> EmulatorProcess:
        emulator = EmulatorProcess(list(args))
        emulator.start()
        started.append(emulator)
        return emulator

    yield spawn
    for emulator in started:
        emulator.stop()


@pytest.fixture
def posix_only():
    if os.name != "posix":
        pytest.skip("pseudo-terminals need POSIX")


@pytest.fixture(scope="session")
def arccom_library(tmp_path_factory):
    """The arccom emulator library, compiled once per test session with the system C compiler."""
    from kktbridge.emulators.arcus.build import build_library

    return build_library(tmp_path_factory.mktemp("arccom"))
