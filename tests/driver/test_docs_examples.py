"""The curl examples of README.md and docs/driver.md, run as a reader runs them, against a driver with an emulated
register: each prints a receipt."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def curl_blocks(name: str) -> list[str]:
    text = (ROOT / name).read_text(encoding="utf-8")
    return [block for block in re.findall(r"```sh\n(.*?)```", text, re.S) if "curl " in block]


def answers(output: str) -> list:
    decoder, out, at = json.JSONDecoder(), [], 0
    while at < len(output):
        value, at = decoder.raw_decode(output, at)
        out.append(value)
    return out


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
@pytest.mark.parametrize("name", ["README.md", "docs/driver.md"])
async def test_the_curl_examples_print(stand, name):
    blocks = curl_blocks(name)
    assert blocks, f"{name} has no curl example"
    for block in blocks:
        script = block.replace("http://127.0.0.1:44735/", stand.url + "/")
        done = await asyncio.to_thread(subprocess.run, ["sh", "-e", "-c", script], capture_output=True, text=True,
                                       timeout=60, env={**os.environ, "TOKEN": stand.token})
        assert done.returncode == 0, done.stderr
        results = answers(done.stdout)
        assert len(results) == block.count("curl ") == 2  # one per header style
        for (result,) in results:
            assert result["success"].startswith("OK: чек") and "warnings" not in result, result
    assert len(stand.receipts()) == 2  # the same two packets everywhere (same BIT_ORDER_IDs): printed once
