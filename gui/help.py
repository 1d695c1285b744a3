"""The *Help* menu and the console's last line of defence against unexpected errors.

:class:`HelpMenu` adds *Help* to the window's menu bar: the keyboard shortcuts in force
(listed from :mod:`gui.shortcuts`, the table the actions are bound from), the log
folder, the config file (created from the packaged template on first use) and *About*
(versions, where the data and config live, which gateway the console talks to).

:class:`ErrorReporter` takes over ``sys.excepthook`` (exceptions in Qt slots and event
handlers, and in qasync's ``asyncSlot``), ``threading.excepthook`` and the asyncio
loop's exception handler (callbacks, and tasks started with :func:`gui.tasks.spawn`).
Each unexpected exception is logged with its traceback; the first of its kind is
also shown in a dialog that names the log file. Neither stops the console: Qt and
asyncio carry on with their next event, which is the safe thing to do for a GUI whose
orders live at the broker. The dialog is not modal and not repeated, so an error in a
paint handler cannot bury the window under dialogs.
"""

from __future__ import annotations

import asyncio
import html
import logging
import logging.handlers
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QObject, Qt, QUrl, Signal, qVersion
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

import resources
from core.config import (
    Settings,
    default_config_path,
    redact_uri,
    user_config_dir,
    user_data_dir,
    user_log_dir,
)
from core.events import ConnectionState, ConnectionStatusChanged
from core.session import ConsoleSession, SessionOptions
from gui import shortcuts, theme
from gui.desktop import app_version, library_versions

log = logging.getLogger(__name__)

#: Opens a file or folder with the desktop's default application; ``False`` on failure.
Opener = Callable[[Path], bool]


def open_with_desktop(path: Path) -> bool:
    """Open ``path`` in the desktop's file manager or editor."""
    return bool(QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))))


def log_file(settings: Settings | None = None) -> Path:
    """The file the console logs to: the settings' (what :func:`core.config.setup_logging`
    opened), else the root logger's rotating file, else the default."""
    if settings is not None:
        return settings.logging.file
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.handlers.RotatingFileHandler):
            return Path(handler.baseFilename)
    return user_log_dir() / "ibconsole.log"


# --------------------------------------------------------------------------- About


def gateway_description(opts: SessionOptions, status: ConnectionStatusChanged | None) -> str:
    """Which gateway the console talks to, and how (``status``: the connection's last,
    None before the session is up): the first thing to know when judging a screen."""
    if opts.port is None:  # the embedded simulated gateway
        where = f"{status.host}:{status.port}" if status is not None else "not started"
        text = f"simulated gateway, embedded ({where})"
    else:
        text = f"TWS / IB Gateway at {opts.host}:{opts.port}"
    if status is None:
        return text + " · not connected"
    text += f" · {status.state.value}"
    if status.state is ConnectionState.CONNECTED and status.server_version:
        text += f" · server version {status.server_version}"
    if status.accounts:
        # IB's paper accounts are the ones whose ids start with D (DU..., DF...).
        paper = all(a.upper().startswith("D") for a in status.accounts)
        kind = "paper" if paper else "LIVE"
        text += f" · {kind} account {', '.join(status.accounts)}"
    return text


def about_facts(
    opts: SessionOptions,
    config_path: Path,
    *,
    settings: Settings | None = None,
    status: ConnectionStatusChanged | None = None,
) -> list[tuple[str, str]]:
    """The About dialog's rows (label, value), also what *Copy* puts on the clipboard."""
    versions = library_versions()
    config = str(config_path)
    if not config_path.exists():
        config += " (not created yet: defaults in use)"
    rows = [
        ("Version", app_version()),
        ("Gateway", gateway_description(opts, status)),
        ("ib_async", versions["ib_async"]),
        ("PySide6", f"{pyside_version} (Qt {qVersion()})"),
        ("ArcticDB", versions["arcticdb"]),
        ("Python", sys.version.split()[0]),
        ("Config file", config),
        ("Data folder", str(user_data_dir())),
        ("Store", redact_uri(opts.store_uri) if opts.store_uri else "in memory (no journal)"),
    ]
    if opts.port is None and opts.sim_state_file is not None:
        rows.append(("Simulated gateway state", str(opts.sim_state_file)))
    rows += [
        ("Log file", str(log_file(settings))),
        ("Window layout", str(user_config_dir() / "layout.ini")),
    ]
    return rows


class AboutDialog(QDialog):
    """Version, library versions, gateway and where everything lives; selectable, with
    a button that copies it all for a support request."""

    def __init__(self, facts: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About IB Console")
        self.facts = facts
        lay = QVBoxLayout(self)
        head = QHBoxLayout()
        logo = QLabel(self)
        logo.setPixmap(theme.icon("app").pixmap(56, 56))
        head.addWidget(logo, 0, Qt.AlignmentFlag.AlignTop)
        title = QLabel(
            "<span style='font-size: 15pt; font-weight: 600'>IB Console</span><br>"
            f"<span style='color: {theme.TEXT_DIM}'>A desktop trading console for "
            "Interactive Brokers</span>",
            self,
        )
        head.addWidget(title, 1)
        lay.addLayout(head)
        grid = QGridLayout()
        grid.setHorizontalSpacing(14)
        self.value_labels: dict[str, QLabel] = {}
        for row, (name, value) in enumerate(facts):
            key = QLabel(name, self)
            key.setStyleSheet(f"color: {theme.TEXT_DIM};")
            val = QLabel(value, self)
            val.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            val.setWordWrap(True)
            grid.addWidget(key, row, 0, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignRight)
            grid.addWidget(val, row, 1)
            self.value_labels[name] = val
        grid.setColumnStretch(1, 1)
        lay.addLayout(grid)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        copy = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        copy.setToolTip("Copy these facts, for a support request")
        copy.clicked.connect(self.copy)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.setMinimumWidth(620)

    def text(self) -> str:
        """The facts as plain text, one ``label: value`` per line."""
        return "\n".join(f"{name}: {value}" for name, value in self.facts)

    def copy(self) -> None:
        """Put :meth:`text` on the clipboard."""
        QGuiApplication.clipboard().setText(self.text())


# --------------------------------------------------------------------------- shortcuts


class ShortcutsDialog(QDialog):
    """The keyboard shortcuts in force in ``window``: keys, what they do, where."""

    def __init__(self, window: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent or window)
        self.setWindowTitle("Keyboard shortcuts")
        self.entries = shortcuts.active(window)
        table = self.table = QTableWidget(len(self.entries), 3, self)
        table.setHorizontalHeaderLabels(["Keys", "Does", "Where"])
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        table.setShowGrid(False)
        table.setWordWrap(False)  # one line a row: the texts are short
        for row, (entry, keys) in enumerate(self.entries):
            key_item = QTableWidgetItem(keys)
            key_item.setFont(theme.number_font())
            table.setItem(row, 0, key_item)
            table.setItem(row, 1, QTableWidgetItem(entry.what))
            table.setItem(row, 2, QTableWidgetItem(entry.where))
        header = table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        lay = QVBoxLayout(self)
        lay.addWidget(table)
        note = QLabel("Shortcuts of controls that are off (read-only mode) are not listed.", self)
        note.setStyleSheet(f"color: {theme.TEXT_DIM};")
        lay.addWidget(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        rows_height = sum(table.rowHeight(r) for r in range(table.rowCount()))
        table.setMinimumHeight(rows_height + header.height() + 4)
        self.resize(max(820, self.sizeHint().width()), self.sizeHint().height())

    def rows(self) -> list[tuple[str, str, str]]:
        """What the table shows: (keys, does, where) per row."""
        return [(keys, e.what, e.where) for e, keys in self.entries]


# --------------------------------------------------------------------------- the menu


class HelpMenu(QObject):
    """*Help* on ``window``'s menu bar.

    ``options`` and ``settings`` are what the session is started with; :meth:`bind`
    follows the running session's connection for *About*. ``config_path`` is the
    config file the console was started with (``--config``), else the user's default
    one. ``opener`` opens files and folders (the desktop's handler by default; tests
    replace it).
    """

    def __init__(
        self,
        window: QMainWindow,
        options: SessionOptions,
        settings: Settings | None = None,
        *,
        config_path: Path | None = None,
        opener: Opener = open_with_desktop,
    ) -> None:
        super().__init__(window)
        self.window = window
        self.options = options
        self.settings = settings
        #: The connection's last status (None until a session is bound and reports).
        self.status: ConnectionStatusChanged | None = None
        self.config_path = config_path or default_config_path()
        self.opener = opener
        menu = self.menu = window.menuBar().addMenu("&Help")
        self.shortcuts_action = QAction("&Keyboard shortcuts", window)
        shortcuts.bind(self.shortcuts_action, "shortcuts")
        self.shortcuts_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        self.shortcuts_action.triggered.connect(self.show_shortcuts)
        self.log_folder_action = QAction("Open &log folder", window)
        self.log_folder_action.triggered.connect(self.open_log_folder)
        self.config_action = QAction("Open &config file", window)
        self.config_action.triggered.connect(self.open_config_file)
        self.about_action = QAction(theme.icon("app"), "&About IB Console", window)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        self.about_action.triggered.connect(self.show_about)
        menu.addAction(self.shortcuts_action)
        menu.addSeparator()
        menu.addAction(self.log_folder_action)
        menu.addAction(self.config_action)
        menu.addSeparator()
        menu.addAction(self.about_action)
        self.dialog: QDialog | None = None

    def bind(self, session: ConsoleSession) -> None:
        """Follow ``session``'s connection (the gateway row of *About*)."""
        self.status = session.connection.last_status
        session.connection.statusChanged += self._on_status

    def _on_status(self, status: ConnectionStatusChanged) -> None:
        self.status = status

    def _show(self, dialog: QDialog) -> QDialog:
        # Not modal: the trader may need the window (or the emergency stop) meanwhile.
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.dialog = dialog
        dialog.show()
        dialog.raise_()
        return dialog

    def show_shortcuts(self) -> ShortcutsDialog:
        """Open the keyboard shortcuts dialog."""
        dialog = ShortcutsDialog(self.window)
        self._show(dialog)
        return dialog

    def show_about(self) -> AboutDialog:
        """Open the About dialog."""
        facts = about_facts(
            self.options, self.config_path, settings=self.settings, status=self.status
        )
        dialog = AboutDialog(facts, self.window)
        self._show(dialog)
        return dialog

    def open_log_folder(self) -> Path:
        """Open the folder of the log file; returns it."""
        folder = log_file(self.settings).parent
        folder.mkdir(parents=True, exist_ok=True)
        self._open(folder, "the log folder")
        return folder

    def open_config_file(self) -> Path:
        """Open the config file in the desktop's editor, first creating it from the
        packaged template if it does not exist (never overwriting one); returns it."""
        path = self.config_path
        if not path.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("x", encoding="utf-8") as out:
                    out.write(resources.read_text(resources.CONFIG_TEMPLATE))
            except FileExistsError:
                pass  # made meanwhile by someone else: theirs stays
            except OSError as exc:
                log.error("could not create the config file %s: %s", path, exc)
                QMessageBox.warning(self.window, "Config file", f"Could not create {path}:\n{exc}")
                return path
            log.info("created %s from the template", path)
        self._open(path, "the config file")
        self.window.statusBar().showMessage(
            f"{path}: changes take effect when the console next starts", 15000
        )
        return path

    def _open(self, path: Path, what: str) -> None:
        if not self.opener(path):
            log.warning("no application opened %s (%s)", what, path)
            QMessageBox.information(
                self.window,
                "Open " + what,
                f"No application could open {what}. It is here:\n{path}",
            )


# --------------------------------------------------------------------------- errors


def _signature(exc: BaseException) -> tuple[str, str, int]:
    """What makes two errors "the same": type and the line that raised it."""
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    return (
        type(exc).__qualname__,
        last.filename if last else "",
        last.lineno or 0 if last else 0,
    )


class ErrorReporter(QObject):
    """Logs every unexpected exception with its traceback and shows each kind once.

    Install with :meth:`install` once the application and the loop exist; the hooks it
    replaced come back with :meth:`uninstall`. ``log_path`` is the log file the dialog
    names (the root logger's rotating file by default); ``dialogs=False`` logs only
    (``--screenshot``).
    """

    #: (exception, what was going on), queued to the GUI thread from any thread.
    _reported = Signal(object, str)

    #: Repeats of one error logged in full before only every 100th is.
    REPEATS_LOGGED = 10

    def __init__(
        self,
        *,
        log_path: Path | None = None,
        dialogs: bool = True,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.log_path = log_path
        self.dialogs = dialogs
        self.counts: Counter[tuple[str, str, int]] = Counter()
        self.dialog: QMessageBox | None = None
        self._more = 0
        self._previous: tuple[Any, Any, Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reported.connect(self._show, Qt.ConnectionType.QueuedConnection)

    # -- hooks ---------------------------------------------------------------------------

    def install(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Route ``sys.excepthook``, ``threading.excepthook`` and ``loop``'s exception
        handler here."""
        self._previous = (sys.excepthook, threading.excepthook, None)
        sys.excepthook = self.excepthook
        threading.excepthook = self._thread_excepthook
        if loop is not None:
            self._previous = (*self._previous[:2], loop.get_exception_handler())
            self._loop = loop
            loop.set_exception_handler(self.loop_exception_handler)

    def uninstall(self) -> None:
        """Put back the hooks :meth:`install` replaced."""
        if self._previous is None:
            return
        sys.excepthook, threading.excepthook, handler = self._previous
        if self._loop is not None:
            self._loop.set_exception_handler(handler)
        self._previous = None
        self._loop = None

    def excepthook(
        self, etype: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        """``sys.excepthook``: Ctrl+C keeps its meaning; anything else is reported."""
        if issubclass(etype, KeyboardInterrupt):
            sys.__excepthook__(etype, value, tb)
            return
        if value.__traceback__ is None:
            value = value.with_traceback(tb)
        self.report(value)

    def _thread_excepthook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None or issubclass(args.exc_type, SystemExit):
            return
        name = args.thread.name if args.thread is not None else "a thread"
        self.report(args.exc_value, f"in {name}")

    def loop_exception_handler(
        self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]
    ) -> None:
        """The asyncio loop's exception handler: callbacks and spawned tasks."""
        exc = context.get("exception")
        if not isinstance(exc, Exception):
            # No exception ("Task was destroyed but it is pending", unclosed
            # transports) or a BaseException: asyncio's own wording, in the log.
            loop.default_exception_handler(context)
            return
        self.report(exc, str(context.get("message") or ""))

    # -- reporting -----------------------------------------------------------------------

    def report(self, exc: BaseException, context: str = "") -> None:
        """Log ``exc`` with its traceback; show it unless one like it was shown."""
        key = _signature(exc)
        self.counts[key] += 1
        n = self.counts[key]
        where = f" ({context})" if context else ""
        if n == 1:
            log.error(
                "unexpected error%s: %s: %s",
                where,
                type(exc).__name__,
                exc,
                exc_info=(type(exc), exc, exc.__traceback__),
            )
        elif n <= self.REPEATS_LOGGED or n % 100 == 0:
            log.error("unexpected error again (%d times)%s: %s: %s", n, where, key[0], exc)
        if n == 1 and self.dialogs:
            self._reported.emit(exc, context)

    def _show(self, exc: BaseException, context: str) -> None:
        if self.dialog is not None and self.dialog.isVisible():
            self._more += 1
            self.dialog.setInformativeText(self._informative())
            return
        self._more = 0
        parent = QApplication.activeWindow()
        box = QMessageBox(parent)
        box.setIcon(QMessageBox.Icon.Critical)
        box.setWindowTitle("IB Console: unexpected error")
        box.setTextFormat(Qt.TextFormat.RichText)
        what = html.escape(f"{type(exc).__name__}: {exc}")
        during = f"<br>{html.escape(context)}" if context else ""
        box.setText(f"<b>{what}</b>{during}")
        box.setInformativeText(self._informative())
        box.setDetailedText("".join(traceback.format_exception(exc)))
        open_logs = box.addButton("Open log folder", QMessageBox.ButtonRole.ActionRole)
        open_logs.clicked.connect(lambda: open_with_desktop(self._log_file().parent))
        box.addButton(QMessageBox.StandardButton.Close)
        # QMessageBox wraps its informative text to a narrow box, splitting the log
        # file's path; the text has its own line breaks, so it need not wrap.
        informative = box.findChild(QLabel, "qt_msgbox_informativelabel")
        if informative is not None:
            informative.setWordWrap(False)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.destroyed.connect(self._forget_dialog)
        self.dialog = box
        box.show()

    def _forget_dialog(self) -> None:
        self.dialog = None

    def _log_file(self) -> Path:
        return self.log_path or log_file()

    def _informative(self) -> str:
        text = (
            "The console keeps running. Before trading on, check the working orders<br>"
            "and positions; if anything looks wrong, use the emergency stop or TWS.<br><br>"
            "The full traceback is in the log file:<br>"
            f"<code>{html.escape(str(self._log_file()))}</code>"
        )
        if self._more:
            text += f"<br><br>{self._more} more error(s) since: see the log."
        return text
