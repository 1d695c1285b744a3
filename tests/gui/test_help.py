"""The Help menu (shortcuts, log folder, config file, About) and the error reporter."""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
from importlib import metadata
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

import resources
from core.session import SessionOptions
from gui import shortcuts
from gui.help import ErrorReporter, about_facts
from gui.mainwindow import MainWindow
from gui.tasks import spawn
from helpers import run_until


@pytest.fixture
def window(qapp, qtbot, tmp_path):
    """The console window before any session is bound (no gateway needed)."""
    options = SessionOptions(sim_state_file=tmp_path / "sim.json")
    w = MainWindow(options, settings=QSettings(str(tmp_path / "l.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    opened: list[Path] = []
    w.help_menu.opener = lambda path: opened.append(path) or True
    w.opened = opened  # type: ignore[attr-defined]
    yield w
    if w.help_menu.dialog is not None:
        w.help_menu.dialog.close()


def test_help_menu_offers_shortcuts_log_config_and_about(window):
    menus = {a.text(): a.menu() for a in window.menuBar().actions()}
    texts = [a.text() for a in menus["&Help"].actions() if not a.isSeparator()]
    assert texts == [
        "&Keyboard shortcuts",
        "Open &log folder",
        "Open &config file",
        "&About IB Console",
    ]


def test_window_carries_the_console_icon(window):
    image = window.windowIcon().pixmap(64, 64).toImage()

    drawn = [image.pixelColor(x, y) for x in range(image.width()) for y in range(image.height())]
    assert sum(c.alpha() > 0 for c in drawn) > 1000  # the icon's rounded square
    assert any(c.blue() > 200 and c.red() < 120 for c in drawn)  # its blue frame


def test_actions_take_their_keys_from_the_table(window):
    assert window.buy_action.shortcut() == shortcuts.get("buy").key_sequence()
    assert window.cancel_all_action.shortcut().toString() == "Ctrl+Shift+C"
    assert window.stop_button.shortcut is not None
    assert window.stop_button.shortcut.key() == shortcuts.get("emergency_stop").key_sequence()
    assert window.orders_view._cancel_shortcut.key().toString() == "Del"


def test_shortcuts_dialog_lists_the_active_keys(window):
    dialog = window.help_menu.show_shortcuts()

    rows = {keys: what for keys, what, _where in dialog.rows()}
    assert rows["F2"].startswith("Put the order ticket on the buy side")
    assert "Ctrl+Shift+X" in rows and "twice" in rows["Ctrl+Shift+X"]
    assert "Del" in rows and "Enter" in rows and "F1" in rows and "Ctrl+Q" in rows
    assert dialog.table.rowCount() == len(shortcuts.SHORTCUTS)  # every entry is bound


def test_shortcuts_dialog_leaves_out_disabled_actions(window):
    window.set_readonly(True)

    keys = [keys for keys, _what, _where in window.help_menu.show_shortcuts().rows()]

    assert "F2" not in keys and "F3" not in keys
    assert "Ctrl+Shift+X" in keys  # the emergency stop stays in read-only mode


def test_open_config_file_creates_it_from_the_template_once(window, tmp_path):
    config = tmp_path / "cfg" / "config.toml"
    window.help_menu.config_path = config

    assert window.help_menu.open_config_file() == config
    assert config.read_text() == resources.read_text("default-config.toml")
    assert window.opened == [config]

    config.write_text("[ib]\nport = 7497\n")
    window.help_menu.open_config_file()
    assert config.read_text() == "[ib]\nport = 7497\n"  # never overwritten


def test_open_log_folder_opens_where_the_log_file_is(window, tmp_path):
    handler = logging.handlers.RotatingFileHandler(tmp_path / "logs" / "x.log", delay=True)
    (tmp_path / "logs").mkdir()
    logging.getLogger().addHandler(handler)
    try:
        assert window.help_menu.open_log_folder() == tmp_path / "logs"
    finally:
        logging.getLogger().removeHandler(handler)
    assert window.opened == [tmp_path / "logs"]


def test_about_names_versions_gateway_and_where_things_live(window, isolated_home, tmp_path):
    facts = dict(about_facts(window.options, tmp_path / "config.toml"))

    assert facts["Version"] == metadata.version("ibconsole")
    assert facts["ib_async"] == metadata.version("ib_async")
    assert facts["ArcticDB"] == metadata.version("arcticdb")
    assert facts["PySide6"].startswith(metadata.version("PySide6-Essentials"))
    assert facts["Gateway"].startswith("simulated gateway, embedded")
    assert facts["Config file"].endswith("(not created yet: defaults in use)")
    assert facts["Data folder"] == str(isolated_home)
    assert facts["Simulated gateway state"] == str(tmp_path / "sim.json")

    dialog = window.help_menu.show_about()
    assert dialog.value_labels["Version"].text() == facts["Version"]
    dialog.copy()
    assert "ib_async: " in QApplication.clipboard().text()


def test_about_says_real_gateway_and_live_account(qapp):
    options = SessionOptions(host="10.0.0.5", port=7496)

    gateway = dict(about_facts(options, Path("c.toml")))["Gateway"]

    assert gateway == "TWS / IB Gateway at 10.0.0.5:7496 · not connected"


# --------------------------------------------------------------------------- errors


@pytest.fixture
def reporter(qloop, tmp_path):
    handler = logging.FileHandler(tmp_path / "console.log")
    logging.getLogger().addHandler(handler)
    r = ErrorReporter(log_path=tmp_path / "console.log")
    r.install(qloop)
    yield r
    r.uninstall()
    logging.getLogger().removeHandler(handler)
    if r.dialog is not None:
        r.dialog.close()


def _boom() -> None:
    raise ZeroDivisionError("boom in a slot")


def test_error_in_a_slot_is_logged_and_shown_once_and_the_console_runs_on(
    reporter, qloop, tmp_path, caplog
):
    later: list[bool] = []
    for _ in range(3):
        QTimer.singleShot(0, _boom)
    QTimer.singleShot(5, lambda: later.append(True))

    run_until(qloop, lambda: later and reporter.dialog is not None, what="the error dialog")

    box = reporter.dialog
    assert isinstance(box, QMessageBox) and box.isVisible()
    assert "ZeroDivisionError: boom in a slot" in box.text()
    assert str(tmp_path / "console.log") in box.informativeText()
    assert "_boom" in box.detailedText()  # the traceback
    assert [r.exc_info is not None for r in caplog.records if "boom" in r.getMessage()] == [
        True,
        False,
        False,
    ]  # the first with its traceback, the repeats as one line each
    assert "Traceback" in (tmp_path / "console.log").read_text()
    assert [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox)] == [box]


def test_failed_background_task_is_shown_naming_what_it_was_doing(reporter, qloop):
    async def lookup() -> None:
        await asyncio.sleep(0)
        raise LookupError("no such symbol")

    async def start() -> None:
        spawn(lookup(), what="looking up XYZ")

    qloop.run_until_complete(start())
    run_until(qloop, lambda: reporter.dialog is not None, what="the error dialog")

    assert "LookupError: no such symbol" in reporter.dialog.text()
    assert "looking up XYZ failed" in reporter.dialog.text()


def test_reporter_gives_the_hooks_back(qloop):
    import sys

    before = (sys.excepthook, qloop.get_exception_handler())
    r = ErrorReporter(dialogs=False)
    r.install(qloop)
    assert sys.excepthook == r.excepthook
    r.uninstall()
    assert (sys.excepthook, qloop.get_exception_handler()) == before
