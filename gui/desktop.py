"""The console as an installed desktop application: its version, the libraries it runs
on, and its Linux desktop entry. No Qt here, so ``ibconsole --version`` and
``ibconsole --install-desktop-entry`` answer without loading it.

The desktop entry follows the freedesktop.org specifications: the ``.desktop`` file
goes to ``$XDG_DATA_HOME/applications`` and the icon beside the user's icon theme;
``Exec`` and ``Icon`` are absolute paths, since a desktop session's ``PATH`` often
lacks ``~/.local/bin`` where pipx puts the command. ``StartupWMClass`` and the
application id Qt reports (:data:`APP_ID`) are the same name, so the taskbar groups
the running window under the entry's icon.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import resources

#: The distribution name, the command, the desktop file's id and the X11/Wayland app id.
APP_ID = "ibconsole"
#: What a checkout that was never installed reports as its version.
UNKNOWN_VERSION = "unknown (not installed)"
#: The libraries whose versions matter when a trader reports a problem.
LIBRARIES = ("ib_async", "PySide6-Essentials", "arcticdb", "qasync", "pyqtgraph", "pandas")


def app_version() -> str:
    """The console's version, from the installed distribution's metadata."""
    try:
        return metadata.version(APP_ID)
    except metadata.PackageNotFoundError:
        return UNKNOWN_VERSION


def library_versions(names: Sequence[str] = LIBRARIES) -> dict[str, str]:
    """Installed versions of ``names`` (``"not installed"`` for a missing one).

    Read from package metadata, not by importing: the GUI must not import ArcticDB.
    """
    versions: dict[str, str] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


# --------------------------------------------------------------------------- desktop entry


@dataclass(frozen=True, slots=True)
class DesktopEntryPaths:
    """Where the desktop entry and its icon are installed."""

    desktop_file: Path
    icon: Path


def desktop_entry_paths(env: Mapping[str, str] | None = None) -> DesktopEntryPaths:
    """``$XDG_DATA_HOME`` (default ``~/.local/share``) ``/applications/ibconsole.desktop``
    and ``/icons/hicolor/scalable/apps/ibconsole.svg``."""
    env = os.environ if env is None else env
    data_home = Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return DesktopEntryPaths(
        desktop_file=data_home / "applications" / f"{APP_ID}.desktop",
        icon=data_home / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg",
    )


def launch_command(argv0: str | None = None, executable: str | None = None) -> list[str]:
    """The command that starts this console again, as absolute paths.

    The installed ``ibconsole`` script when that is what runs; from a checkout
    (``python main.py``) the interpreter and the script.
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    executable = sys.executable if executable is None else executable
    script = Path(argv0).resolve()
    if script.suffix == ".py":
        return [str(Path(executable).absolute()), str(script)]
    return [str(script)]


# Characters that need a quoted argument, and those escaped inside the quotes
# (Desktop Entry Specification, "The Exec key").
_RESERVED = re.compile(r"[\s\"'\\><~|&;$*?#()`]")
_ESCAPED = re.compile(r"([\"`$\\])")


def exec_quote(arg: str) -> str:
    """One ``Exec`` argument, quoted as the Desktop Entry Specification requires."""
    arg = arg.replace("%", "%%")
    if not _RESERVED.search(arg):
        return arg
    return '"' + _ESCAPED.sub(r"\\\1", arg) + '"'


def desktop_entry_text(command: Sequence[str], icon: Path) -> str:
    """The packaged ``ibconsole.desktop`` with ``command`` and ``icon`` filled in."""
    exec_line = " ".join(exec_quote(a) for a in command)
    return (
        resources.read_text(resources.DESKTOP_ENTRY)
        .replace("@EXEC@", exec_line)
        .replace("@TRYEXEC@", command[0])
        .replace("@ICON@", str(icon))
    )


def install_desktop_entry(
    command: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> DesktopEntryPaths:
    """Install the desktop entry and icon for the current user; returns where.

    Installing again overwrites both (after an upgrade or a move of the venv).
    """
    paths = desktop_entry_paths(env)
    command = launch_command() if command is None else command
    paths.icon.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(resources.path("icons/app.svg"), paths.icon)
    paths.desktop_file.parent.mkdir(parents=True, exist_ok=True)
    paths.desktop_file.write_text(desktop_entry_text(command, paths.icon), encoding="utf-8")
    _refresh_caches(paths)
    return paths


def uninstall_desktop_entry(env: Mapping[str, str] | None = None) -> list[Path]:
    """Remove what :func:`install_desktop_entry` installed; returns the files removed."""
    paths = desktop_entry_paths(env)
    removed = []
    for path in (paths.desktop_file, paths.icon):
        if path.exists():
            path.unlink()
            removed.append(path)
    if removed:
        _refresh_caches(paths)
    return removed


def _refresh_caches(paths: DesktopEntryPaths) -> None:
    """Tell the desktop about the change where its tools are installed (menus pick
    new entries up on their own too, just later)."""
    tool = shutil.which("update-desktop-database")
    if tool:
        subprocess.run(
            [tool, str(paths.desktop_file.parent)], check=False, capture_output=True, timeout=30
        )
