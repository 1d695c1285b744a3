"""``ibconsole --install-desktop-entry``: the Linux menu entry and its icon."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import main
from gui.desktop import (
    desktop_entry_paths,
    exec_quote,
    install_desktop_entry,
    launch_command,
    uninstall_desktop_entry,
)

ROOT = Path(__file__).resolve().parents[2]


def _entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser["Desktop Entry"]


def test_install_writes_an_entry_that_starts_this_console_with_its_icon(tmp_path):
    env = {"XDG_DATA_HOME": str(tmp_path / "share")}
    command = [str(tmp_path / "my venv" / "bin" / "ibconsole")]

    paths = install_desktop_entry(command, env)

    assert paths.desktop_file == tmp_path / "share" / "applications" / "ibconsole.desktop"
    entry = _entry(paths.desktop_file)
    assert entry["Exec"] == f'"{command[0]}"'  # quoted: the path has a space
    assert entry["TryExec"] == command[0]
    assert entry["Icon"] == str(paths.icon)
    assert paths.icon.read_bytes() == (ROOT / "resources" / "icons" / "app.svg").read_bytes()
    assert (entry["Type"], entry["Name"], entry["StartupWMClass"]) == (
        "Application",
        "IB Console",
        "ibconsole",
    )
    validator = shutil.which("desktop-file-validate")
    if validator:  # the freedesktop.org checker, where installed
        check = subprocess.run([validator, str(paths.desktop_file)], capture_output=True)
        assert check.returncode == 0, check.stdout + check.stderr


def test_uninstall_removes_what_install_wrote(tmp_path):
    env = {"XDG_DATA_HOME": str(tmp_path)}
    paths = install_desktop_entry(["/opt/ibconsole/bin/ibconsole"], env)

    assert uninstall_desktop_entry(env) == [paths.desktop_file, paths.icon]
    assert not paths.desktop_file.exists() and not paths.icon.exists()
    assert uninstall_desktop_entry(env) == []


def test_default_location_is_the_users_share_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    paths = desktop_entry_paths({})
    assert paths.desktop_file == tmp_path / ".local/share/applications/ibconsole.desktop"
    assert paths.icon == tmp_path / ".local/share/icons/hicolor/scalable/apps/ibconsole.svg"


def test_launch_command_from_a_checkout_runs_main_py_with_this_python(tmp_path):
    script = tmp_path / "main.py"
    assert launch_command(str(script), "/venv/bin/python") == ["/venv/bin/python", str(script)]
    installed = tmp_path / "bin" / "ibconsole"
    assert launch_command(str(installed), "/venv/bin/python") == [str(installed)]


def test_exec_arguments_are_quoted_as_the_spec_says():
    assert exec_quote("/usr/bin/ibconsole") == "/usr/bin/ibconsole"
    assert exec_quote("/home/a b/ibconsole") == '"/home/a b/ibconsole"'
    assert exec_quote('/x/"q"$') == '"/x/\\"q\\"\\$"'
    assert exec_quote("/x/100%") == "/x/100%%"


def test_main_installs_and_removes_the_entry(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "argv", [str(ROOT / "main.py"), "--install-desktop-entry"])

    assert main.main(["--install-desktop-entry"]) == 0

    entry = _entry(tmp_path / "applications" / "ibconsole.desktop")
    assert entry["Exec"].endswith("main.py") and "python" in entry["Exec"]
    assert "installed" in capsys.readouterr().out
    assert main.main(["--uninstall-desktop-entry"]) == 0
    assert not (tmp_path / "applications" / "ibconsole.desktop").exists()
