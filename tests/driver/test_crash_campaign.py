"""The crash campaign, short (issue 9): 4 clients per register on ATOL and Mercury at once, 60 receipts, 20 driver
kills and a few power cuts, run as the bench script runs (bench/crash_campaign.py, a process of its own).

Nothing in this campaign can make a receipt impossible (no paper, limits, an expired shift): every order must end
confirmed, with its one document, and every answer must name that document.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CAMPAIGN = Path(__file__).resolve().parents[2] / "bench" / "crash_campaign.py"


def test_a_short_crash_campaign_loses_doubles_and_contradicts_nothing(tmp_path):
    run = subprocess.run([sys.executable, str(CAMPAIGN), "--receipts", "60", "--clients", "4", "--kills", "20",
                          "--power-cuts", "6", "--seed", "9", "--print-latency", "0.1", "--drain", "20",
                          "--registers", "atol,mercury", "--dir", str(tmp_path), "--json"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout.splitlines()[-1])
    assert figures["sent"] == 60 and figures["driver_kills"] >= 20 and figures["power_cuts"] >= 6
    assert figures["per_register"]["atol"]["sent"] == figures["per_register"]["mercury"]["sent"] == 30
    summary = json.dumps({key: figures[key] for key in (
        "lost", "unanswered", "doubled", "disagreeing", "internal", "refused", "stray_documents", "refusal_reasons",
        "dir")}, ensure_ascii=False)
    assert figures["lost"] == 0, summary
    assert figures["doubled"] == 0, summary
    assert figures["disagreeing"] == 0, summary
    assert figures["internal"] == 0, summary
    assert figures["stray_documents"] == 0, summary
    assert figures["refused"] == 0, summary  # refused for good with nothing wrong but crashes: a receipt lost
    assert figures["confirmed"] == figures["documents"] == 60
