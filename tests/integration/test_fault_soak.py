"""The fault soak (benchmarks/bench_faults.py), short, as part of the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_fault_soak_then_nothing_lost_duplicated_reused_or_written_while_halted():
    run = subprocess.run(
        [sys.executable, "benchmarks/bench_faults.py", "--seconds", "30", "--seed", "7", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=220,
    )
    figures = {
        line[:47].strip(): int(line[47:].strip())
        for line in run.stdout.splitlines()
        if line.startswith("  ") and line[47:].strip().isdigit()
    }
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    # The run must have exercised what it reports on.
    assert figures["connection drops"] >= 2 and figures["emergency stops"] >= 1
    assert figures["gateway restarts"] >= 1
    assert figures["nightly resets (TWS restart, 1100-1102)"] >= 1
    assert figures["orders lost"] >= 1, "a drop mid-order must lose an order to look for"
    assert figures["lost orders reported"] == figures["orders lost"]
    assert figures["non-flattening orders written while HALTED"] == 0
    assert figures["fills lost"] == figures["fills duplicated"] == figures["ids reused"] == 0
