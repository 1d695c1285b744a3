"""Where the window's parts are: its size on screen, its docks (:func:`build_docks`) and
their split, the grids' columns, kept across restarts and put back by View > Reset layout.

Apart from :class:`gui.mainwindow.MainWindow` because it is a concern of its own (what a
person arranged, and the default split that keeps the ticket's send button and the
emergency button in view on a 1366x768 laptop) that every new dock touches.
"""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget

from gui.widgets.form_scroll import VerticalScrollArea
from gui.widgets.positions_view import PositionsView
from gui.widgets.table_view import reset_grid_columns, restore_grid_columns, save_grid_columns

#: The window's size where the screen has room for it.
PREFERRED_SIZE = QSize(1600, 960)
_LEFT = Qt.DockWidgetArea.LeftDockWidgetArea
_RIGHT = Qt.DockWidgetArea.RightDockWidgetArea
_BOTTOM = Qt.DockWidgetArea.BottomDockWidgetArea
#: The docks by title, in the order they are added (and listed in the View menu): their
#: area, and whether the dock scrolls a form whose height must not squeeze its rows.
DOCKS: tuple[tuple[str, Qt.DockWidgetArea, bool], ...] = (
    ("Order ticket", _LEFT, False),  # scrolls its fields itself
    ("Risk", _LEFT, True),
    ("P&L", _RIGHT, False),
    ("Fills", _RIGHT, False),
    ("Audit", _RIGHT, False),
    ("Log", _RIGHT, False),
    ("Working orders", _BOTTOM, False),
)


def fit_to_screen(window: QWidget) -> None:
    """1600x960 where it fits, else the screen's available area (a 1366x768 laptop must
    see the emergency button and the status bar without moving the window)."""
    size = PREFERRED_SIZE
    screen = window.screen() or QGuiApplication.primaryScreen()
    if screen is not None:
        size = size.boundedTo(screen.availableGeometry().size())
    window.resize(size)


def build_docks(window: QMainWindow, widgets: Mapping[str, QWidget]) -> dict[str, QDockWidget]:
    """Each of :data:`DOCKS` around ``window``'s central widget, holding ``widgets[title]``:
    the ticket over the risk panel on the left, the chart and the fills / audit / log
    tabs on the right, working orders under the positions. Returns the docks by title."""
    window.setDockOptions(
        QMainWindow.DockOption.AnimatedDocks
        | QMainWindow.DockOption.AllowTabbedDocks
        | QMainWindow.DockOption.AllowNestedDocks
    )
    # Side columns run to the bottom; the bottom area sits under the positions only.
    window.setCorner(Qt.Corner.BottomLeftCorner, _LEFT)
    window.setCorner(Qt.Corner.BottomRightCorner, _RIGHT)
    docks = {
        title: add_dock(window, title, widgets[title], area, scroll=scroll)
        for title, area, scroll in DOCKS
    }
    window.tabifyDockWidget(docks["Fills"], docks["Audit"])
    window.tabifyDockWidget(docks["Audit"], docks["Log"])
    docks["Fills"].raise_()
    return docks


def add_dock(
    window: QMainWindow,
    title: str,
    widget: QWidget,
    area: Qt.DockWidgetArea,
    *,
    scroll: bool = False,
) -> QDockWidget:
    """A dock for ``widget`` in ``window``; ``scroll`` for a form whose height must not
    squeeze its rows (the ticket, the risk panel): on a small screen it scrolls instead,
    and it no longer sets the window's minimum height."""
    # Docked, the title bar reads "&" as a mnemonic ("P&&L" shows "P&L"); floated,
    # the title is a window's, plain text ("P&&L" showed both): follow the state.
    escaped = title.replace("&", "&&")
    dock = QDockWidget(escaped, window)
    dock.topLevelChanged.connect(
        lambda floating: dock.setWindowTitle(title if floating else escaped)
    )
    dock.setObjectName(f"dock_{title.lower().replace(' ', '_').replace('&', '')}")
    if scroll:
        dock.setWidget(VerticalScrollArea(widget, dock))
    else:
        dock.setWidget(widget)
    dock.setFeatures(
        QDockWidget.DockWidgetFeature.DockWidgetMovable
        | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        | QDockWidget.DockWidgetFeature.DockWidgetClosable
    )
    window.addDockWidget(area, dock)
    return dock


class WindowLayout:
    """The layout of ``window``: its docks (by title), the ticket, the positions view
    and the sound toggle, kept in ``settings``."""

    def __init__(
        self,
        window: QMainWindow,
        settings: QSettings,
        *,
        docks: dict[str, QDockWidget],
        ticket: QWidget,
        positions_view: PositionsView,
        sound_action: QAction,
    ) -> None:
        self.window = window
        self.settings = settings
        self.docks = docks
        self.ticket = ticket
        self.positions_view = positions_view
        self.sound_action = sound_action
        self._default_state = QByteArray()
        self._size_docks_when_shown = True

    def size_docks(self) -> None:
        """The default split: the ticket whole (its send button in view), the risk panel
        below it, the chart over the fills, working orders under the positions."""
        w, docks = self.window, self.docks
        # 390: at 1366x768 the Fills grid shows time..price and the working orders
        # symbol..status, each without scrolling (their fitted default columns).
        w.resizeDocks([docks["Order ticket"], docks["P&L"]], [340, 390], Qt.Orientation.Horizontal)
        ticket, risk = docks["Order ticket"], docks["Risk"]
        title = ticket.sizeHint().height() - ticket.widget().sizeHint().height()
        want = self.ticket.sizeHint().height() + max(title, 0)
        # Both docks, summing to the column they share: given alone, Qt took part of the
        # ticket's height back for the risk panel (which scrolls) and the ticket's last
        # rows scrolled out of view at 1366x768.
        column = ticket.height() + risk.height()
        give = min(want, column - risk.minimumSizeHint().height())
        if risk.isVisible() and give > 0 and column - give > 0:
            w.resizeDocks([ticket, risk], [give, column - give], Qt.Orientation.Vertical)
        else:  # not laid out yet (applied again once shown), or no risk panel beside it
            w.resizeDocks([ticket], [want], Qt.Orientation.Vertical)
        w.resizeDocks([docks["P&L"], docks["Fills"]], [480, 420], Qt.Orientation.Vertical)
        w.resizeDocks([docks["Working orders"]], [330], Qt.Orientation.Vertical)

    def shown(self) -> None:
        """The window is on screen (its showEvent)."""
        if self._size_docks_when_shown:
            # Sizes given before the first layout are scaled to the window's final size,
            # which left the ticket's send button below the fold: apply them again now.
            self._size_docks_when_shown = False
            self.size_docks()

    def restore(self) -> None:
        """Put back what a person arranged (the default split remembered for Reset)."""
        w, settings = self.window, self.settings
        self._default_state = w.saveState()
        geometry = settings.value("window/geometry")
        state = settings.value("window/state")
        if geometry is not None:
            w.restoreGeometry(geometry)
        if state is not None:
            w.restoreState(state)
        self._size_docks_when_shown = state is None  # a person's own layout wins
        self.sound_action.setChecked(settings.value("notifications/sound", False) in (True, "true"))
        grouped = settings.value("positions/grouped", False)
        self.positions_view.set_grouped(grouped in (True, "true"))  # INI stores text
        restore_grid_columns(w, settings)

    def save(self) -> None:
        """Remember dock positions, window geometry, the positions grouping and columns."""
        w, settings = self.window, self.settings
        settings.setValue("window/geometry", w.saveGeometry())
        settings.setValue("window/state", w.saveState())
        settings.setValue("positions/grouped", self.positions_view.is_grouped())
        save_grid_columns(w, settings)
        settings.sync()

    def reset(self) -> None:
        """Back to the default split and every grid's default columns."""
        self.window.restoreState(self._default_state)
        reset_grid_columns(self.window)
