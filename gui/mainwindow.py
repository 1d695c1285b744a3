"""The console's main window: docks, toolbar, status bar, shortcuts, saved layout.

Core publishes immutable events (``core.events``); the window connects each to the
model or widget that shows it, once, in :meth:`MainWindow.attach`. Nothing here polls:
models coalesce bursts into one repaint a frame. Blocking work (the store's history)
runs in core's executor; the window only awaits it.

Keyboard: F2 buy, F3 sell, Ctrl+L symbol, Ctrl+Shift+C cancel all working orders,
Ctrl+Shift+X emergency stop (press twice, or hold: see the button's docstring).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any

from PySide6.QtCore import QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QShowEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSizePolicy,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from core.config import GuiSettings, user_config_dir
from core.connection import ConnectionState, ConnectionStatusChanged
from core.emergency import EmergencyStopProgress
from core.events import (
    MANUAL,
    AccountValuesChanged,
    FillRecorded,
    OrderRejected,
    PositionChanged,
    ReconciliationBreakFound,
    TradingState,
)
from core.marketdata import Quote
from core.orders import create_market_order
from core.session import ConsoleSession
from core.trading import OrderRefused
from gui import shortcuts, theme
from gui.help import HelpMenu
from gui.models.audit import AuditModel
from gui.models.fills import FillsModel
from gui.models.formatting import PLACEHOLDER, number
from gui.models.orders import OrdersModel
from gui.models.positions import PositionsModel
from gui.tasks import spawn
from gui.widgets.emergency_stop import EmergencyStopButton
from gui.widgets.fills_view import FillsView
from gui.widgets.form_scroll import VerticalScrollArea
from gui.widgets.halted_banner import HaltedBanner
from gui.widgets.log_view import AuditView, LogView
from gui.widgets.notifier import Notifier
from gui.widgets.order_ticket import OrderTicket
from gui.widgets.orders_view import OrdersView
from gui.widgets.pnl_chart import PnLChart
from gui.widgets.positions_view import PositionsView
from gui.widgets.risk_panel import RiskPanel
from gui.widgets.store_indicator import StoreIndicator

log = logging.getLogger(__name__)

#: Indicator colours by state: green is good, amber is working on it, red needs a person.
STATE_COLOURS = {
    ConnectionState.CONNECTED: theme.GAIN,
    ConnectionState.CONNECTING: theme.AMBER,
    ConnectionState.RECONNECTING: theme.AMBER,
    ConnectionState.LINK_LOST: theme.AMBER,
    ConnectionState.DISCONNECTED: theme.LOSS,
    ConnectionState.GIVEN_UP: theme.LOSS,
}

RESET_CONFIRMATION = "RESUME"
#: Why order-changing controls are off in read-only mode (their tooltips).
READONLY_REASON = "read-only mode (--readonly): this console changes no orders"


def _money(value: float | None) -> str:
    """Account-size figures in whole currency units (cents are noise at this scale)."""
    return PLACEHOLDER if value is None else f"{value:,.0f}"


class MainWindow(QMainWindow):
    """The console window; ``closing`` fires when the user closes it."""

    closing = Signal()

    def __init__(self, session: ConsoleSession, *, settings: QSettings | None = None) -> None:
        super().__init__()
        self.session = session
        self.setWindowTitle("IB Console")
        self.setWindowIcon(theme.icon("app"))
        self._fit_to_screen()
        self.setDockOptions(
            QMainWindow.DockOption.AnimatedDocks
            | QMainWindow.DockOption.AllowTabbedDocks
            | QMainWindow.DockOption.AllowNestedDocks
        )
        self._settings = settings or QSettings(
            str(user_config_dir() / "layout.ini"), QSettings.Format.IniFormat
        )
        self._stop_running = False
        self._closing_confirmed = False
        self._user_closing = False
        self.readonly = False
        self._last_status: ConnectionStatusChanged | None = None
        self._next_try_at: float | None = None
        # Counts down to the next connection attempt while retrying (stopped otherwise).
        self._retry_countdown = QTimer(self)
        self._retry_countdown.setInterval(1000)
        self._retry_countdown.timeout.connect(self._tick_countdown)
        self._history_task: asyncio.Task[None] | None = None
        self._ticks_known: set[int] = set()

        # models
        # Ten refreshes a second, as TWS does: each re-derives and repaints the changed
        # rows (~1 ms a row of Qt-to-Python cell calls, in bands), which a tick storm
        # would otherwise ask for every frame.
        self.positions_model = PositionsModel(self, frame_ms=100)
        self.orders_model = OrdersModel(self)
        # A fill changes its order too: batched on a different beat, the fills grid and
        # the orders grid (each a full repaint when a row arrives at the top) repaint
        # in separate passes of the loop rather than one ~17 ms pass.
        self.fills_model = FillsModel(self, frame_ms=50)
        self.audit_model = AuditModel(self)

        # central: HALTED banner over the positions grid
        self.halted_banner = HaltedBanner(self)
        self.positions_view = PositionsView(self.positions_model, self)
        central = QWidget(self)
        lay = QVBoxLayout(central)
        lay.setContentsMargins(6, 6, 6, 0)
        lay.setSpacing(6)
        lay.addWidget(self.halted_banner)
        lay.addWidget(self.positions_view, 1)
        self.setCentralWidget(central)

        # docks
        # The [gui] settings reach the ticket: its confirmation threshold and the size
        # each kind of instrument starts at (defaults when the session has no settings).
        gui_settings = session.settings.gui if session.settings is not None else GuiSettings()
        self.ticket = OrderTicket(
            None,
            confirm_above_notional=gui_settings.confirm_above_notional,
            default_quantity=gui_settings.default_quantity,
            parent=self,
        )
        self.orders_view = OrdersView(self.orders_model, self)
        self.fills_view = FillsView(self.fills_model, self)
        self.pnl_chart = PnLChart(self)
        self.risk_panel = RiskPanel(self)
        self.log_view = LogView.with_handler(None, logging.INFO, self)
        self.audit_view = AuditView(self.audit_model, self)
        for table, name, title in (
            (self.positions_view, "positions", "Positions"),
            (self.orders_view, "orders", "Working orders"),
            (self.fills_view, "fills", "Fills"),
            (self.log_view, "log", "Log"),
            (self.audit_view, "audit", "Audit"),
        ):
            table.name_controls(name, title)
        for w, name, text in (
            (self.positions_view.strategy_combo, "positionsStrategy", "Show strategy"),
            (self.positions_view.hide_flat, "positionsHideFlat", "Hide flat positions"),
            (self.positions_view.group_by_strategy, "positionsGrouped", "Group by strategy"),
        ):
            w.setObjectName(name)
            w.setAccessibleName(text)
        self.positions_view.tree.setObjectName("positionsTree")
        self.positions_view.tree.setAccessibleName("Positions by strategy")
        self.pnl_chart.setObjectName("pnlChart")
        self.pnl_chart.setAccessibleName("P&L chart")
        self.risk_panel.setObjectName("riskPanel")
        self.risk_panel.setAccessibleName("Risk")
        self.docks: dict[str, QDockWidget] = {}
        left = Qt.DockWidgetArea.LeftDockWidgetArea
        right = Qt.DockWidgetArea.RightDockWidgetArea
        bottom = Qt.DockWidgetArea.BottomDockWidgetArea
        # Side columns run to the bottom; the bottom area sits under the positions only.
        self.setCorner(Qt.Corner.BottomLeftCorner, left)
        self.setCorner(Qt.Corner.BottomRightCorner, right)
        self._dock("Order ticket", self.ticket, left)  # scrolls its fields itself
        self._dock("Risk", self.risk_panel, left, scroll=True)
        self._dock("P&L", self.pnl_chart, right)
        self._dock("Fills", self.fills_view, right)
        self._dock("Audit", self.audit_view, right)
        self._dock("Log", self.log_view, right)
        self._dock("Working orders", self.orders_view, bottom)
        self.tabifyDockWidget(self.docks["Fills"], self.docks["Audit"])
        self.tabifyDockWidget(self.docks["Audit"], self.docks["Log"])
        self.docks["Fills"].raise_()
        self._size_docks()

        self.notifier = Notifier(self)
        self._build_toolbar()
        self._build_status_bar()
        self._build_menus()
        self._connect_widgets()
        self._restore_layout()
        if session.options.readonly:
            self.set_readonly(True)

    # -- construction -------------------------------------------------------------------

    def _fit_to_screen(self) -> None:
        """1600x960 where it fits, else the screen's available area (a 1366x768 laptop
        must see the emergency button and the status bar without moving the window)."""
        size = QSize(1600, 960)
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is not None:
            size = size.boundedTo(screen.availableGeometry().size())
        self.resize(size)

    def _dock(
        self, title: str, widget: QWidget, area: Qt.DockWidgetArea, *, scroll: bool = False
    ) -> QDockWidget:
        """A dock for ``widget``; ``scroll`` for a form whose height must not squeeze its
        rows (the ticket, the risk panel): on a small screen it scrolls instead, and it
        no longer sets the window's minimum height."""
        # Docked, the title bar reads "&" as a mnemonic ("P&&L" shows "P&L"); floated,
        # the title is a window's, plain text ("P&&L" showed both): follow the state.
        escaped = title.replace("&", "&&")
        dock = QDockWidget(escaped, self)
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
        self.addDockWidget(area, dock)
        self.docks[title] = dock
        return dock

    def _build_toolbar(self) -> None:
        bar = QToolBar("Main", self)
        bar.setObjectName("toolbar_main")
        bar.setMovable(False)
        bar.setFloatable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.buy_action = QAction(theme.icon("buy"), "Buy", self)
        shortcuts.bind(self.buy_action, "buy")
        self.buy_action.triggered.connect(lambda: self._ticket_side("BUY"))
        self.sell_action = QAction(theme.icon("sell"), "Sell", self)
        shortcuts.bind(self.sell_action, "sell")
        self.sell_action.triggered.connect(lambda: self._ticket_side("SELL"))
        self.symbol_action = QAction(theme.icon("ticket"), "Symbol", self)
        shortcuts.bind(self.symbol_action, "symbol")
        self.symbol_action.triggered.connect(self._focus_ticket)
        self.cancel_all_action = QAction(theme.icon("cancel"), "Cancel all", self)
        shortcuts.bind(self.cancel_all_action, "cancel_all")
        self.cancel_all_action.triggered.connect(self._cancel_all)
        for a, name in (
            (self.buy_action, "actionBuy"),
            (self.sell_action, "actionSell"),
            (self.symbol_action, "actionSymbol"),
            (self.cancel_all_action, "actionCancelAll"),
        ):
            a.setObjectName(name)
            a.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
            a.setToolTip(f"{a.text()} ({a.shortcut().toString()})")
            bar.addAction(a)
        spacer = QWidget(bar)
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        bar.addWidget(spacer)
        self.account_strip = QLabel("", bar)
        self.account_strip.setObjectName("accountStrip")
        self.account_strip.setAccessibleName("Account values")
        self.account_strip.setTextFormat(Qt.TextFormat.RichText)
        self.account_strip.setStyleSheet(f"font-family: '{theme.mono_family()}'; padding: 0 14px;")
        bar.addWidget(self.account_strip)
        # Read-only is a state of the whole window, shown where the eye goes first.
        self.readonly_badge = QLabel("READ-ONLY", bar)
        self.readonly_badge.setObjectName("readonlyBadge")
        self.readonly_badge.setAccessibleName("Read-only mode")
        self.readonly_badge.setToolTip(READONLY_REASON)
        self.readonly_badge.setStyleSheet(
            f"color: {theme.BG}; background: {theme.AMBER}; font-weight: 800;"
            " letter-spacing: 1px; border-radius: 4px; padding: 6px 12px; margin: 0 8px;"
        )
        self._readonly_badge_action = bar.addWidget(self.readonly_badge)
        self._readonly_badge_action.setVisible(False)
        self.stop_button = EmergencyStopButton(parent=bar)
        self.stop_button.setObjectName("emergencyStop")
        self.stop_button.setAccessibleName("Emergency stop: cancel every order, flatten")
        self.stop_button.setMinimumWidth(230)
        bar.addWidget(self.stop_button)

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.connection_indicator = QLabel("● starting", sb)
        self.connection_indicator.setStyleSheet(f"color: {theme.AMBER}; padding: 0 8px;")
        self.connection_indicator.setObjectName("connectionIndicator")
        self.connection_indicator.setAccessibleName("Connection state")
        self.gateway_label = QLabel("", sb)
        self.gateway_label.setObjectName("gatewayLabel")
        self.gateway_label.setAccessibleName("Gateway")
        self.gateway_label.setStyleSheet(f"color: {theme.TEXT_DIM}; padding: 0 8px;")
        self.store_indicator = StoreIndicator(sb)
        sb.addPermanentWidget(self.store_indicator)
        sb.addPermanentWidget(self.gateway_label)
        sb.addPermanentWidget(self.connection_indicator)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        quit_action = QAction("&Quit", self)
        shortcuts.bind(quit_action, "quit")
        quit_action.triggered.connect(self.close_by_user)
        file_menu.addAction(quit_action)
        trade = mb.addMenu("&Trade")
        for a in (self.buy_action, self.sell_action, self.symbol_action, self.cancel_all_action):
            trade.addAction(a)
        trade.addSeparator()
        stop = QAction(theme.icon("stop"), "Emergency stop…", self)
        stop.triggered.connect(self._confirm_emergency_stop)
        trade.addAction(stop)
        self.stop_action = stop
        trade.setToolTipsVisible(True)
        reset = QAction("Reset HALTED…", self)
        reset.triggered.connect(self._reset_halt)
        trade.addAction(reset)
        view = mb.addMenu("&View")
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        self.sound_action = QAction("Sound on fills and rejections", self)
        self.sound_action.setObjectName("actionSound")
        self.sound_action.setCheckable(True)
        self.sound_action.toggled.connect(self._set_sound)
        view.addAction(self.sound_action)
        view.addSeparator()
        reset_layout = QAction("Reset layout", self)
        reset_layout.triggered.connect(self._reset_layout)
        view.addAction(reset_layout)
        shortcuts.tag(self.ticket, "send_order")  # Enter: the ticket handles it
        self.help_menu = HelpMenu(self, self.session)

    def _connect_widgets(self) -> None:
        self.positions_model.flushed.connect(self._update_exposures)
        self.positions_view.sendToTicketRequested.connect(self._position_to_ticket)
        self.positions_view.closeRequested.connect(lambda p: self._close_position(p, reverse=False))
        self.positions_view.reverseRequested.connect(
            lambda p: self._close_position(p, reverse=True)
        )
        self.positions_view.resolveBreakRequested.connect(self._resolve_break)
        self.orders_view.cancelRequested.connect(self._cancel_order)
        self.orders_view.cancelAllRequested.connect(self._cancel_all)
        self.orders_view.modifyRequested.connect(self._modify_order)
        self.fills_view.sendToTicketRequested.connect(
            lambda f: self.ticket.load(f.symbol, "SELL" if f.side == "BOT" else "BUY", f.quantity)
        )
        self.stop_button.triggered.connect(self._emergency_stop)
        self.halted_banner.resetRequested.connect(self._reset_halt)
        self.risk_panel.tradingStateRequested.connect(self._set_trading_state)
        self.ticket.orderRefused.connect(lambda text: self.statusBar().showMessage(text, 10000))

    # -- wiring to core -----------------------------------------------------------------

    def attach(self, session: ConsoleSession) -> None:
        """Subscribe to the running core's events (once the session has started)."""
        s = session
        assert s.connection is not None and s.trades is not None
        s.connection.statusChanged += self._on_status_changed
        # after a reconnect (IB's nightly reset): what was recovered (the log has it too)
        s.resynchronised += lambda e: self.statusBar().showMessage(e.describe(), 30000)
        s.trading_day.dayStarted += lambda e: self.start_day(e.start)
        self.fills_model.start_day(s.trading_day.start)
        if s.connection.last_status is not None:
            self._on_status_changed(s.connection.last_status)
        self.ticket.entry = s.order_entry
        self.ticket.size_by_risk = s.size_by_risk if s.risk is not None else None
        self.ticket.size_button.setEnabled(s.risk is not None and not self.ticket.readonly)
        s.trades.orderUpdated += self.orders_model.on_order_updated
        s.trades.orderRejected += self._on_order_rejected
        s.trades.fillReceived += self.fills_model.on_fill_recorded
        s.foreignFillReceived += self.fills_model.on_fill_recorded
        if s.store is not None:
            s.store.healthEvent += self.store_indicator.on_store_health
            self.store_indicator.on_store_health(s.store.health())
        s.trades.fillReceived += self._notify_fill
        s.audit.recorded += self.audit_model.on_audit_recorded
        self.audit_model.load(list(s.audit.records))
        if s.market is not None:
            s.market.quotesUpdated += self.ticket.on_quotes
            s.market.quotesUpdated += self._on_quotes
            s.market.staleChanged += self._on_stale
        if s.account is not None:
            s.account.valuesChanged += self._on_account_values
            s.account.valuesChanged += self.positions_model.on_account_values
            self._on_account_values(s.account.values())
        if s.portfolio is not None:
            s.portfolio.positionChanged += self.positions_model.on_position_changed
            s.portfolio.pnlChanged += self.pnl_chart.on_pnl_changed
            s.portfolio.reconciliationBreak += self.positions_model.on_reconciliation_break
            s.portfolio.reconciled += self.positions_model.on_reconciled
            for event in s.position_events():
                self.positions_model.on_position_changed(event)
        elif s.account is not None:
            s.account.pnlChanged += self.pnl_chart.on_pnl_changed
        if s.risk is not None and s.risk.emergency is not None:
            s.risk.emergency.progress += self._on_stop_progress
        if s.risk is not None:
            s.risk.tradingStateChanged += self.risk_panel.on_trading_state_changed
            s.risk.tradingStateChanged += self.halted_banner.on_trading_state_changed
            s.risk.tradingStateChanged += self._on_trading_state
            # The ticket judges its order again at once when the state or a limit moves.
            s.risk.tradingStateChanged += self.ticket.on_trading_state_changed
            s.risk.utilizationChanged += self.risk_panel.on_limit_utilization_changed
            s.risk.utilizationChanged += self.ticket.reevaluate
            if s.risk.precautions is not None:
                self.risk_panel.set_precautions(s.risk.precautions.describe())
            if s.risk.limits.is_empty():
                self.risk_panel.empty_label.setText(
                    "No account-level limit set ([risk] in the config)"
                )
            for event in s.trading_state_events():
                self.risk_panel.on_trading_state_changed(event)
                self.halted_banner.on_trading_state_changed(event)
                self.ticket.on_trading_state_changed(event)
                self._on_trading_state(event)
            s.risk.publish_utilization()
        s.trades.republish_orders()  # the orders known before the window bound
        strategies = [MANUAL, *s.strategies.names] if s.strategies is not None else [MANUAL]
        self.ticket.strategy.clear()
        self.ticket.strategy.addItems(strategies)
        self.ticket.strategy.setCurrentText(MANUAL)
        self._history_task = spawn(self._load_history(), what="loading history")

    def start_day(self, start: datetime) -> None:
        """A new trading day: the grids and the chart drop the previous day's rows (the
        journal keeps them)."""
        self.fills_model.start_day(start)
        self.orders_model.start_day(start)
        self.pnl_chart.start_day(start)

    async def _load_history(self) -> None:
        s = self.session
        if s.store is None:
            return
        fills = await s.todays_fills()
        self.fills_model.load(fills)
        # The ticks the fills were recorded with: positions show their instrument's
        # decimals at once after a restart, before any quote teaches them (_on_quotes).
        recorded = {f.con_id: f.min_tick for f in fills if f.min_tick}
        for con_id, tick in recorded.items():
            if con_id not in self._ticks_known:
                self.positions_model.set_tick(con_id, tick)
        pnl = await s.todays_pnl()
        if pnl is not None and len(pnl):
            self.pnl_chart.load_history(pnl)

    async def wait_loaded(self, timeout: float = 10.0) -> None:
        """Wait until the window shows the session whole (for screenshots), then paint
        what is coalesced now.

        Whole means: the day's history loaded, a price for every open position and a
        quote for the ticket's instrument. Waits for exactly that (no fixed sleep), at
        most ``timeout`` seconds; what is still missing then is logged and the window
        is taken as it is.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._history_task is not None:
            await asyncio.wait_for(asyncio.shield(self._history_task), timeout)
        while missing := self._not_loaded():
            if loop.time() >= deadline:
                log.warning("window not fully loaded after %g s: %s", timeout, missing)
                break
            await asyncio.sleep(0.02)
        for model in (self.positions_model, self.orders_model, self.fills_model):
            model.flush()
        self.pnl_chart.flush()

    def _not_loaded(self) -> str:
        """What the window is still waiting for ("" when nothing)."""
        self.positions_model.flush()  # rows() is what has been taken in so far
        unpriced = [
            str(row.get("symbol"))
            for row in self.positions_model.rows()
            if row.get("quantity") and row.get("last") is None and not row.get("stale")
        ]
        if unpriced:
            return "no price yet for " + ", ".join(unpriced)
        ticket = self.ticket
        if ticket.info is not None and None in (ticket.bid_button.price, ticket.ask_button.price):
            return f"no quote yet for {ticket.info.symbol}"
        return ""

    def show_startup_error(self, message: str) -> None:
        """Say why the session could not start."""
        self.connection_indicator.setText(f"● not connected: {message}")
        self.connection_indicator.setStyleSheet(f"color: {theme.LOSS}; padding: 0 8px;")
        self.statusBar().showMessage(message)

    def set_readonly(self, readonly: bool) -> None:
        """Disable every action that changes orders, each saying why, and show the mode.

        Read-only means read-only: new orders, cancel, cancel all, modify, close and
        reverse, and the emergency stop (which cancels and flattens) are all off; the
        connection itself is read-only too, so IB would refuse them anyway.
        """
        self.readonly = readonly
        why = READONLY_REASON if readonly else ""
        self.ticket.set_readonly(readonly)
        self.orders_view.set_readonly(why)
        self.positions_view.set_readonly(why)
        for a in (
            self.buy_action,
            self.sell_action,
            self.cancel_all_action,
            self.stop_action,
        ):
            a.setEnabled(not readonly)
            default = a.text().rstrip("…")
            shortcut = a.shortcut().toString()
            a.setToolTip(why or (f"{default} ({shortcut})" if shortcut else default))
        self.stop_button.setEnabled(not readonly)
        self.stop_button.setToolTip(why or self.stop_button.toolTip())
        self._readonly_badge_action.setVisible(readonly)
        self.setWindowTitle("IB Console — read-only" if readonly else "IB Console")

    # -- event handlers -----------------------------------------------------------------

    def _on_status_changed(self, status: ConnectionStatusChanged) -> None:
        colour = STATE_COLOURS[status.state]
        self._last_status = status
        self._next_try_at = (
            time.monotonic() + status.next_retry_in
            if status.state is ConnectionState.RECONNECTING and status.next_retry_in
            else None
        )
        if self._next_try_at is not None:
            self._retry_countdown.start()
        else:
            self._retry_countdown.stop()
        self.connection_indicator.setText(f"● {self._status_words(status)}")
        self.connection_indicator.setToolTip(status.describe())
        self.connection_indicator.setStyleSheet(
            f"color: {colour}; font-weight: 600; padding: 0 8px;"
        )
        kind = "simulated gateway" if self.session.embedded else "TWS / IB Gateway"
        accounts = ", ".join(status.accounts)
        self.gateway_label.setText(
            f"{kind} {status.host}:{status.port} · client {status.client_id}"
            + (f" · {accounts}" if accounts else "")
        )
        if status.state is not ConnectionState.CONNECTED:
            self.statusBar().showMessage(status.describe(), 15000)
        elif self.statusBar().currentMessage().startswith(("connecting", "reconnecting")):
            self.statusBar().clearMessage()  # "connecting" must not linger once connected
        # The ticket says why nothing can be looked up or sent while the link is down.
        up = status.state in (ConnectionState.CONNECTED, ConnectionState.LINK_LOST)
        self.ticket.set_offline("" if up else f"not connected to the {kind}")

    def _status_words(self, status: ConnectionStatusChanged) -> str:
        """The indicator's words: the state, and while retrying the attempt and the
        seconds to the next try."""
        if status.state is not ConnectionState.RECONNECTING:
            return status.state.value
        words = f"not connected · attempt {status.attempt}"
        if self._next_try_at is not None:
            left = max(0.0, self._next_try_at - time.monotonic())
            words += f" · next try in {left:.0f} s"
        else:
            words += " · trying now"
        return words

    def _tick_countdown(self) -> None:
        status = self._last_status
        if status is None or status.state is not ConnectionState.RECONNECTING:
            self._retry_countdown.stop()
            return
        self.connection_indicator.setText(f"● {self._status_words(status)}")

    def _on_account_values(self, v: AccountValuesChanged) -> None:
        if v.currency:
            self.pnl_chart.set_currency(v.currency)
        daily = v.daily_pnl
        pnl_colour = theme.pnl_colour(daily)
        colour = pnl_colour.name() if pnl_colour is not None else theme.TEXT
        dim = theme.TEXT_DIM
        # P&L with cents, as the grid's totals and the chart show it.
        self.account_strip.setText(
            f"<span style='color:{dim}'>NetLiq</span> "
            f"{_money(v.net_liquidation)}"
            f" &nbsp; <span style='color:{dim}'>Cash</span> {_money(v.cash)}"
            f" &nbsp; <span style='color:{dim}'>BP</span> {_money(v.buying_power)}"
            f" &nbsp; <span style='color:{dim}'>IB day P&amp;L</span> "
            f"<span style='color:{colour}'>{number(daily, 2, sign=True)}</span>"
        )
        self.account_strip.setToolTip(
            "Net liquidation, cash and buying power as IB reports them; day P&L is IB's "
            "account P&L since its daily reset (the positions grid sums the console's own "
            "per-position figures, which can differ by commissions and timing)."
        )

    def _on_quotes(self, quotes: list[Quote]) -> None:
        """Learn each contract's tick once, so prices show with the right decimals."""
        contracts = self.session.contracts
        for q in quotes:
            if q.con_id in self._ticks_known or contracts is None:
                continue
            details = contracts.by_con_id(q.con_id)
            if details is None or not details.minTick:
                continue
            self._ticks_known.add(q.con_id)
            for model in (self.positions_model, self.orders_model, self.fills_model):
                model.set_tick(q.con_id, float(details.minTick))

    def _update_exposures(self) -> None:
        """Gross and net exposure per strategy, once per coalesced grid update."""
        out: dict[str, tuple[float, float]] = {}
        for row in self.positions_model.rows():
            value = row.get("market_value")
            if not value or not row.get("quantity"):
                continue
            gross, net = out.get(row["strategy"], (0.0, 0.0))
            out[row["strategy"]] = (gross + abs(value), net + value)
        self.risk_panel.set_exposures(out)

    def _on_stale(self, con_id: int, stale: bool) -> None:
        for key in list(self.positions_model.keys()):
            if isinstance(key, tuple) and key[1] == con_id:
                self.positions_model.patch(key, stale=stale)

    def _on_order_rejected(self, event: OrderRejected) -> None:
        self.orders_model.on_order_rejected(event)
        who = f"IB {event.code}" if event.code else "refused"
        text = f"Order {event.order_id or ''} {event.symbol}: {who}: {event.message}"
        self.statusBar().showMessage(text, 15000)
        self.notifier.notify("rejected", f"REJECTED  {text}")

    def _notify_fill(self, fill: FillRecorded) -> None:
        side = "BOUGHT" if fill.side == "BOT" else "SOLD"
        self.notifier.notify(
            "fill", f"{side} {fill.quantity:,g} {fill.symbol} @ {fill.price:,g} ({fill.strategy})"
        )

    def _set_sound(self, on: bool) -> None:
        self.notifier.sound = on
        self._settings.setValue("notifications/sound", on)

    def _on_trading_state(self, event: Any) -> None:
        if event.scope != "account":
            return
        if event.previous != event.state:
            self.notifier.notify("state", f"Trading {event.state.value}: {event.reason}")
        halted = event.state is TradingState.HALTED
        self.stop_button.setEnabled(not self.readonly)
        if halted:
            self.statusBar().showMessage(f"HALTED: {event.reason}", 30000)

    # -- commands -----------------------------------------------------------------------

    def _ticket_side(self, side: str) -> None:
        self.docks["Order ticket"].raise_()
        self.ticket.set_side(side)
        self.ticket.quantity.setFocus()
        self.ticket.quantity.selectAll()

    def _focus_ticket(self) -> None:
        self.docks["Order ticket"].raise_()
        self.ticket.focus_symbol()

    def _position_to_ticket(self, p: PositionChanged) -> None:
        side = "SELL" if p.quantity > 0 else "BUY"
        self.ticket.load(p.symbol, side, abs(p.quantity))
        self.ticket.strategy.setCurrentText(p.strategy)
        self._ticket_side(side)

    def _close_position(self, p: PositionChanged, *, reverse: bool) -> None:
        if self._refused_readonly() or not p.quantity:
            return
        side = "SELL" if p.quantity > 0 else "BUY"
        qty = abs(p.quantity) * (2 if reverse else 1)
        verb = "Reverse" if reverse else "Close"
        answer = QMessageBox.question(
            self,
            f"{verb} position",
            f"{verb} {p.strategy} {p.symbol} {p.quantity:+,.0f}:\n{side} {qty:,.0f} at market?",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        spawn(self._send_market(p.symbol, side, qty, p.strategy), what=f"{verb} {p.symbol}")

    def _resolve_break(self, brk: ReconciliationBreakFound) -> None:
        answer = QMessageBox.question(
            self,
            "Resolve reconciliation break",
            f"IB holds {brk.ib_quantity:,g} {brk.symbol}; the console's strategies hold "
            f"{brk.stored_quantity:,g}.\nLikely cause: {brk.likely_cause}.\n\n"
            f"Attribute the difference ({brk.difference:+,g}) to the external bucket? "
            "It is written to the journal and audited; no order is sent.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            spawn(self.resolve_break(brk), what=f"resolving the {brk.symbol} break")

    async def resolve_break(self, brk: ReconciliationBreakFound) -> None:
        """Attribute a break's difference to ``external`` (journalled, audited), then
        reconcile again so the highlight goes once IB and the journal agree."""
        portfolio = self.session.portfolio
        assert portfolio is not None
        try:
            await portfolio.resolve_break(brk, actor="gui")
        except Exception as exc:  # the journal refused it: nothing changed
            log.error("could not resolve the %s break: %s", brk.symbol, exc)
            QMessageBox.warning(self, "Break not resolved", str(exc))
            return
        await portfolio.reconcile(confirm=0)

    async def _send_market(self, symbol: str, side: str, qty: float, strategy: str) -> None:
        entry = self.session.order_entry
        assert entry is not None
        info = await entry.instrument(symbol)
        try:
            entry.place(info, create_market_order(side, qty), strategy)
        except OrderRefused as exc:
            QMessageBox.warning(self, "Order refused", "\n".join(exc.reasons))

    def _cancel_order(self, order_id: int) -> None:
        if self._refused_readonly():
            return
        trades = self.session.trades
        assert trades is not None
        trade = trades.trade_for_order_id(order_id)
        if trade is None:
            self.statusBar().showMessage(f"order {order_id} is not one of this session's", 8000)
            return
        try:
            trades.cancel_order(trade, actor="gui")
        except OrderRefused as exc:  # not connected, or not this client's order
            QMessageBox.warning(self, "Cancel not sent", "\n".join(exc.reasons))

    def _refused_readonly(self) -> bool:
        """True (and said in the status bar) when read-only forbids an order change."""
        if self.readonly:
            self.statusBar().showMessage(READONLY_REASON, 8000)
        return self.readonly

    def _cancel_all(self) -> None:
        if self._refused_readonly():
            return
        trades = self.session.trades
        if trades is None:
            return
        n = len(self.orders_model.working_order_ids())
        answer = QMessageBox.question(
            self, "Cancel all", f"Cancel every working order of the account ({n} shown)?"
        )
        if answer == QMessageBox.StandardButton.Yes:
            try:
                trades.cancel_all(actor="gui")
            except OrderRefused as exc:
                QMessageBox.warning(self, "Cancels not sent", "\n".join(exc.reasons))

    def _modify_order(self, order_id: int, field: str, value: float) -> None:
        if self._refused_readonly():
            return
        trades = self.session.trades
        assert trades is not None
        key = {"quantity": "quantity", "limit_price": "limit_price", "stop_price": "stop_price"}
        if field not in key:
            return
        try:
            trades.modify_order_fields(order_id, **{key[field]: value})
        except (OrderRefused, LookupError) as exc:
            QMessageBox.warning(self, "Modify refused", str(exc))

    def _set_trading_state(self, scope: str, state: str) -> None:
        risk = self.session.risk
        if risk is None:
            return
        risk.set_trading_state(scope, TradingState(state), reason="set in the risk panel", by="gui")

    def _confirm_emergency_stop(self) -> None:
        if self._refused_readonly():
            return
        answer = QMessageBox.warning(
            self,
            "Emergency stop",
            "Cancel every working order and flatten every position now?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self._emergency_stop()

    def _emergency_stop(self) -> None:
        if self._stop_running or self._refused_readonly():
            return
        risk = self.session.risk
        if risk is None:
            self.statusBar().showMessage("no risk manager: cancelling all orders only", 10000)
            if self.session.trades is not None:
                self.session.trades.cancel_all(actor="gui")
            return
        self._stop_running = True
        self.stop_button.set_busy_text("STOPPING…")
        self.statusBar().showMessage("EMERGENCY STOP: cancelling orders, then flattening…")
        spawn(self._run_emergency_stop(), what="emergency stop")

    async def _run_emergency_stop(self) -> None:
        risk = self.session.risk
        assert risk is not None
        try:
            summary = await risk.emergency_stop("emergency stop button", flatten=True)
        finally:
            self._stop_running = False
            self.stop_button.set_busy_text("")
        text = summary.describe() if hasattr(summary, "describe") else str(summary)
        box = QMessageBox(self)
        box.setObjectName("emergencyStopResult")
        if getattr(summary, "ok", True):
            self.statusBar().showMessage(f"Emergency stop done: {text.splitlines()[0]}", 30000)
            box.setIcon(QMessageBox.Icon.Information)
            box.setWindowTitle("Emergency stop")
            box.setText(text)
        else:
            # Said plainly, and kept on screen: a stop that could not finish leaves
            # orders or positions at IB that someone must deal with now.
            headline = (
                "The emergency stop could NOT finish. Trading stays HALTED here, but "
                "orders may still be working and positions open at IB: check TWS now."
            )
            self.statusBar().showMessage(f"EMERGENCY STOP INCOMPLETE: {headline}")
            box.setIcon(QMessageBox.Icon.Critical)
            box.setWindowTitle("Emergency stop incomplete")
            box.setText(headline)
            box.setInformativeText(text)
        box.setModal(False)
        box.show()
        self._last_stop_box = box
        self.stop_result = summary

    def _on_stop_progress(self, progress: EmergencyStopProgress) -> None:
        """What the running stop waits for, on the button and in the status bar."""
        if not self._stop_running:
            return
        self.stop_button.set_busy_text(progress.detail)
        self.statusBar().showMessage(f"EMERGENCY STOP: {progress.detail}")

    def _reset_halt(self) -> None:
        risk = self.session.risk
        if risk is None:
            return
        text, ok = QInputDialog.getText(
            self,
            "Reset HALTED",
            f"Trading is HALTED. Type {RESET_CONFIRMATION} to allow trading again:",
        )
        if not ok:
            return
        try:
            risk.reset_halt(by="gui", confirmation=text.strip())
        except ValueError as exc:
            QMessageBox.warning(self, "Not reset", str(exc))

    # -- layout -------------------------------------------------------------------------

    def _size_docks(self) -> None:
        """The default split: the ticket whole (its send button in view), the risk panel
        below it, the chart over the fills, working orders under the positions."""
        self.resizeDocks(
            [self.docks["Order ticket"], self.docks["P&L"]], [340, 430], Qt.Orientation.Horizontal
        )
        ticket = self.docks["Order ticket"]
        title = ticket.sizeHint().height() - ticket.widget().sizeHint().height()
        # Only the ticket: Qt shares out any difference in proportion to the sizes given,
        # so naming the risk panel too would shave the ticket.
        self.resizeDocks(
            [ticket], [self.ticket.sizeHint().height() + max(title, 0)], Qt.Orientation.Vertical
        )
        self.resizeDocks(
            [self.docks["P&L"], self.docks["Fills"]], [480, 420], Qt.Orientation.Vertical
        )
        self.resizeDocks([self.docks["Working orders"]], [330], Qt.Orientation.Vertical)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._size_docks_when_shown:
            # Sizes given before the first layout are scaled to the window's final size,
            # which left the ticket's send button below the fold: apply them again now.
            self._size_docks_when_shown = False
            self._size_docks()

    def _restore_layout(self) -> None:
        self._default_state = self.saveState()
        geometry = self._settings.value("window/geometry")
        state = self._settings.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        self._size_docks_when_shown = state is None  # a person's own layout wins
        self.sound_action.setChecked(
            self._settings.value("notifications/sound", False) in (True, "true")
        )
        grouped = self._settings.value("positions/grouped", False)
        self.positions_view.set_grouped(grouped in (True, "true"))  # INI stores text

    def save_layout(self) -> None:
        """Remember dock positions, window geometry and the positions grouping."""
        self._settings.setValue("window/geometry", self.saveGeometry())
        self._settings.setValue("window/state", self.saveState())
        self._settings.setValue("positions/grouped", self.positions_view.is_grouped())
        self._settings.sync()

    def _reset_layout(self) -> None:
        self.restoreState(self._default_state)

    def working_orders_at_ib(self) -> int:
        """Orders working at IB that this console sees (0 when not connected)."""
        conn = self.session.connection
        if conn is None or not conn.is_connected:
            return 0
        return len(conn.ib.openTrades())

    def ask_close_with_working_orders(self, n: int) -> str:
        """Ask what to do with ``n`` working orders: "cancel", "leave" or "stay"."""
        box = QMessageBox(self)
        box.setObjectName("closeWithWorkingOrders")
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Working orders")
        box.setText(
            f"{n} order{'s are' if n != 1 else ' is'} working at IB. Closing the console "
            "does not cancel them: they stay working at IB and can fill while it is closed."
        )
        cancel = box.addButton(f"Cancel {n} and close", QMessageBox.ButtonRole.DestructiveRole)
        leave = box.addButton("Close, leave them working", QMessageBox.ButtonRole.AcceptRole)
        stay = box.addButton("Don't close", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(stay)
        box.exec()
        clicked = box.clickedButton()
        return "cancel" if clicked is cancel else "leave" if clicked is leave else "stay"

    def close_by_user(self) -> None:
        """Close as a person asked (File > Quit): working orders are asked about first."""
        self._user_closing = True
        try:
            self.close()
        finally:
            self._user_closing = False

    def closeEvent(self, event: QCloseEvent) -> None:
        # A person closing the window (its close button, File > Quit) is asked about
        # working orders; a signal (SIGTERM) or a test tearing down is not.
        asked = event.spontaneous() or self._user_closing
        n = 0 if self._closing_confirmed or not asked else self.working_orders_at_ib()
        if n:
            choice = self.ask_close_with_working_orders(n)
            if choice == "stay":
                event.ignore()
                return
            if choice == "cancel" and not self.readonly:
                event.ignore()  # closed again once the cancels are confirmed
                spawn(self._cancel_then_close(), what="cancelling before closing")
                return
        self.save_layout()
        self.closing.emit()
        super().closeEvent(event)

    async def _cancel_then_close(self, timeout: float = 5.0) -> None:
        trades, conn = self.session.trades, self.session.connection
        if trades is not None and conn is not None:
            trades.cancel_all(actor="gui")
            self.statusBar().showMessage("cancelling every working order before closing…")
            for _ in range(round(timeout / 0.05)):  # bounded: closing must not hang
                if not (conn.is_connected and conn.ib.openTrades()):
                    break
                await asyncio.sleep(0.05)
            left = len(conn.ib.openTrades()) if conn.is_connected else 0
            if left:
                QMessageBox.warning(
                    self,
                    "Not all cancelled",
                    f"{left} order(s) not confirmed cancelled within {timeout:g} s; "
                    "they may still be working at IB. The console closes now.",
                )
        self._closing_confirmed = True
        self.close()
