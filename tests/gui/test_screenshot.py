"""``main.py --screenshot`` starts the whole console, waits for its data and saves it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtGui import QImage

ROOT = Path(__file__).resolve().parents[2]


def test_main_screenshot_writes_the_loaded_window(tmp_path: Path) -> None:
    out = tmp_path / "shot.png"
    env = {**os.environ, "IBCONSOLE_HOME": str(tmp_path / "home"), "QT_QPA_PLATFORM": "offscreen"}

    proc = subprocess.run(
        [
            sys.executable,
            "main.py",
            "--config",
            "resources/demo-config.toml",
            "--demo",
            "--screenshot",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert proc.returncode == 0, proc.stderr[-3000:]
    image = QImage(str(out))
    assert not image.isNull()
    assert image.width() >= 1200 and image.height() >= 700
    assert "demo: 10 orders sent" in proc.stderr
    # taken once every position had its price, not after a fixed sleep
    assert "startup: loaded" in proc.stderr and "not fully loaded" not in proc.stderr
    # the console's own state landed where IBCONSOLE_HOME points, not in the user's home
    assert (tmp_path / "home" / "sim-gateway.json").exists()
    assert (tmp_path / "home" / "arctic").exists()


def test_sigterm_closes_the_console_the_orderly_way(tmp_path: Path) -> None:
    import signal
    import time

    env = {**os.environ, "IBCONSOLE_HOME": str(tmp_path / "home"), "QT_QPA_PLATFORM": "offscreen"}
    log = tmp_path / "console.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "main.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 60
            while "connected to 127.0.0.1" not in log.read_text():
                assert proc.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, "the console did not connect"
                time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log.read_text()
    assert code == 0, text[-3000:]
    # the shutdown ran in order: disconnect, then the embedded gateway saved and stopped
    after = text.split("closing the console", 1)[1]
    assert after.index("closed by the user") < after.index("stopped")
    assert (tmp_path / "home" / "sim-gateway.json").exists()
