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
    # the console's own state landed where IBCONSOLE_HOME points, not in the user's home
    assert (tmp_path / "home" / "sim-gateway.json").exists()
    assert (tmp_path / "home" / "arctic").exists()
