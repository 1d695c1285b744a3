"""Start-up figures: run with ``python benchmarks/bench_startup.py`` (``make bench``).

Starts the console as a trader does on a fresh profile (a new, empty
``IBCONSOLE_HOME``: no config, no journal, no gateway state), on its embedded simulated
gateway, offscreen, with ``--screenshot`` so it quits once loaded. Each run is a new
process; times are from just before the process is started to the console's own log
lines (``startup: ...`` in gui/app.py):

* **window shown**: the main window is on screen;
* **usable**: connected to the gateway, the ticket can send (issue 11's target: 2 s);
* **loaded**: the day's history, prices and quotes are on screen (``wait_loaded``);
* **exited**: the process ended (orderly shutdown included);
* **cpu**: the process's CPU time (user + system), which other work on the machine
  disturbs least: on a busy machine compare it, and the fastest run, between versions.

Bytecode is compiled once before the runs, as an installed console has it (the
development environment may set ``PYTHONDONTWRITEBYTECODE``; ``--no-bytecode`` measures
that case). Prints the median and the range of ``--runs`` runs. ``--checkout DIR``
measures another checkout (e.g. ``git worktree add /tmp/before HEAD~3``) the same way,
for before/after figures.
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKS = {
    "window shown": "startup: window shown",
    "usable": "startup: connected",
    "loaded": "startup: loaded",
}
TARGET_USABLE_S = 2.0


def log_times(log_file: Path) -> dict[str, float]:
    """Epoch seconds of each startup mark in the console's log (its local-time stamps)."""
    out: dict[str, float] = {}
    for line in log_file.read_text().splitlines():
        for name, text in MARKS.items():
            if text in line and name not in out:
                stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
                out[name] = stamp.timestamp()
    return out


def one_run(env: dict[str, str], root: Path = ROOT) -> dict[str, float]:
    """One start on a fresh profile: seconds from launch to each mark."""
    with tempfile.TemporaryDirectory(prefix="ibconsole-bench-") as home:
        run_env = {**env, "IBCONSOLE_HOME": home, "QT_QPA_PLATFORM": "offscreen"}
        shot = Path(home) / "shot.png"
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.time()
        proc = subprocess.run(
            [sys.executable, str(root / "main.py"), "--screenshot", str(shot)],
            cwd=root,
            env=run_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        ended = time.time()
        cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"console exited {proc.returncode}:\n{proc.stderr[-3000:]}")
        marks = log_times(Path(home) / "logs" / "ibconsole.log")
        missing = set(MARKS) - set(marks)
        if missing:
            raise SystemExit(f"no log line for {sorted(missing)}:\n{proc.stderr[-3000:]}")
        figures = {name: t - started for name, t in marks.items()}
        figures["exited"] = ended - started
        figures["cpu"] = (cpu.ru_utime - cpu_before.ru_utime) + (cpu.ru_stime - cpu_before.ru_stime)
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="compile every module from source on each run (PYTHONDONTWRITEBYTECODE)",
    )
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the tree to measure")
    args = parser.parse_args()
    root = args.checkout.resolve()
    env = dict(os.environ)
    if args.no_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for folder in ("core", "gui", "resources"):
            compileall.compile_dir(root / folder, quiet=1)
        compileall.compile_file(root / "main.py", quiet=1)
    one_run(env, root)  # warm the OS file cache (and write any missing bytecode)
    runs = [one_run(env, root) for _ in range(args.runs)]
    how = "from source" if args.no_bytecode else "with bytecode"
    print(f"console start-up on a fresh profile, {args.runs} runs ({how}), median [min-max]:")
    if root != ROOT:
        print(f"  (checkout {root})")
    for name in (*MARKS, "exited", "cpu"):
        values = [r[name] for r in runs]
        print(
            f"  {name:<13} {statistics.median(values):5.2f} s [{min(values):.2f}-{max(values):.2f}]"
        )
    usable = statistics.median(r["usable"] for r in runs)
    verdict = "within" if usable <= TARGET_USABLE_S else "OVER"
    print(f"  usable in {usable:.2f} s: {verdict} the {TARGET_USABLE_S:g} s target")


if __name__ == "__main__":
    main()
