"""The console as a trader installs it: the built wheel in a fresh virtual environment.

The wheel is built from a copy of the working tree (a stale ``build/`` in the checkout
cannot leak into it) and installed into a new venv outside the checkout. Its
dependencies are the ones this test runs with, reached through a ``.pth`` line and
installed with ``--no-index``: no download, a few seconds, and pip still checks that
the wheel's requirements are met. The commands then run from a directory that is not
the checkout, so nothing can come from it by accident.

The installed console's screenshot is measured against the checkout's own (the same
command, run from the checkout): dark overall, the same colours region by region, and
the toolbar's coloured icons present. A wheel without its resources fails all three
(the style sheet missing stops it at start; a theme-less window is light; an
icon-less toolbar has no coloured pixels).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from ib_async import IB
from PySide6.QtGui import QImage

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
#: What is not source: never copied into the wheel's build tree.
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    ".screenshot-home",
    "screenshots",
)


@dataclass(frozen=True)
class Installed:
    """A venv with the wheel installed, and a working directory outside the checkout."""

    venv: Path
    cwd: Path

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(IBCONSOLE_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    return env


def _run(*cmd: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; its output is the failure message if it fails."""
    proc = subprocess.run(  # type: ignore[call-overload]
        [str(c) for c in cmd], capture_output=True, text=True, timeout=180, **kw
    )
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    base = tmp_path_factory.mktemp("packaging")
    src, dist, venv, cwd = (base / n for n in ("src", "dist", "venv", "elsewhere"))
    shutil.copytree(ROOT, src, ignore=NOT_SOURCE)
    cwd.mkdir()
    pip = (sys.executable, "-m", "pip")
    # The project's own setuptools (the test extra): no build environment to download.
    _run(*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, src)
    (wheel,) = dist.glob("ibconsole-*.whl")
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(_run(python, "-c", purelib).stdout.strip())
    here = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site / "_project_dependencies.pth").write_text("\n".join(sorted(here)) + "\n")
    _run(*pip, "--python", python, "install", "--no-index", "-q", wheel, cwd=cwd)
    yield Installed(venv, cwd)


def test_wheel_installs_the_console_its_resources_and_two_commands(installed, tmp_path):
    env = _env(tmp_path / "home")
    where = _run(
        installed.bin("python"),
        "-c",
        "import gui.theme, main, resources; "
        "print(gui.theme.__file__); print(main.__file__); print(resources.path('dark.qss'))",
        cwd=installed.cwd,
        env=env,
    ).stdout.split()
    for path in where:  # from the venv, not the checkout
        assert Path(path).is_relative_to(installed.venv), where
    packaged = {p.name for p in (Path(where[2]).parent / "icons").glob("*.svg")}
    assert packaged == {p.name for p in (ROOT / "resources" / "icons").glob("*.svg")}
    for name in ("default-config.toml", "dark.qss", "ibconsole.desktop"):
        assert (Path(where[2]).parent / name).is_file(), name

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    out = _run(installed.bin("ibconsole"), "--version", cwd=installed.cwd, env=env).stdout
    assert out.strip() == f"ibconsole {version}"
    assert "--screenshot" in _run(installed.bin("ibconsole"), "--help", env=env).stdout


def test_installed_console_looks_like_the_checkouts(installed, tmp_path):
    ours, theirs = tmp_path / "checkout.png", tmp_path / "installed.png"
    _run(sys.executable, "main.py", "--screenshot", ours, cwd=ROOT, env=_env(tmp_path / "a"))
    _run(
        installed.bin("ibconsole"),
        "--screenshot",
        theirs,
        cwd=installed.cwd,
        env=_env(tmp_path / "b"),
    )
    reference, picture = load_rgb(ours), load_rgb(theirs)
    assert picture.shape == reference.shape

    # dark theme: dark overall, like the checkout's (a theme-less window is ~220)
    assert luminance(reference) < 60
    assert abs(luminance(picture) - luminance(reference)) < 3
    # the same colours region by region (clock labels and the port differ a little)
    diff = np.abs(region_means(picture) - region_means(reference)).max(axis=2)
    assert diff.max() < 12, f"regions differ by up to {diff.max():.0f}: {np.argwhere(diff >= 12)}"
    # the toolbar's icons: blue and red arrows, the ticket, the cancel circle
    assert icon_pixels(reference) > 200, "the checkout's own toolbar has no icons"
    assert icon_pixels(picture) >= 0.9 * icon_pixels(reference)


# --------------------------------------------------------------------------- pictures
#: The window's size in every screenshot (MainWindow resizes itself to it offscreen).
SIZE = (1600, 960)
#: The toolbar's Buy / Sell / Symbol / Cancel all buttons (x0, y0, x1, y1): icons and
#: text only; the emergency stop, red whatever the theme, lies to the right.
TOOLBAR_BUTTONS = (0, 28, 440, 90)


def load_rgb(path: Path) -> np.ndarray:
    """The picture as an (height, width, 3) array of 0-255 floats."""
    image = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB888)
    assert not image.isNull(), f"{path} is not a picture"
    width, height, stride = image.width(), image.height(), image.bytesPerLine()
    raw = np.frombuffer(image.constBits(), dtype=np.uint8, count=stride * height)
    return raw.reshape(height, stride)[:, : width * 3].reshape(height, width, 3).astype(float)


def luminance(rgb: np.ndarray) -> float:
    """Mean relative luminance (0 black, 255 white) of the whole picture."""
    return float((rgb @ np.array([0.2126, 0.7152, 0.0722])).mean())


def region_means(rgb: np.ndarray, columns: int = 16, rows: int = 12) -> np.ndarray:
    """Mean colour of each cell of a ``columns`` x ``rows`` grid: (rows, columns, 3)."""
    h, w, _ = rgb.shape
    cells = rgb[: h - h % rows, : w - w % columns]
    return cells.reshape(rows, h // rows, columns, w // columns, 3).mean(axis=(1, 3))


def icon_pixels(rgb: np.ndarray, box: tuple[int, int, int, int] = TOOLBAR_BUTTONS) -> int:
    """Strongly coloured pixels in ``box``: the toolbar's blue and red icons. Button
    text and frames are grey in every theme, so without icons this is near zero."""
    x0, y0, x1, y1 = box
    part = rgb[y0:y1, x0:x1]
    saturation = part.max(axis=2) - part.min(axis=2)
    return int((saturation > 90).sum())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.asyncio
async def test_installed_ibsim_answers_an_ib_async_client(installed, tmp_path):
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        str(installed.bin("ibsim")),
        "--port",
        str(port),
        "--accounts",
        "DU4242",
        cwd=installed.cwd,
        env=_env(tmp_path / "home"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert re.search(rf"on 127\.0\.0\.1:{port}\b", line), line
        ib = IB()
        await ib.connectAsync("127.0.0.1", port, clientId=5, timeout=10)
        assert ib.managedAccounts() == ["DU4242"]
        ib.disconnect()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
