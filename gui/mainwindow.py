"""The console's main window: docks, toolbar, status bar, menus, shortcuts, saved layout.

The window is layout and binding. It is built from the options the session will run
with (before the session exists, so it is on screen while the gateway starts); then
:meth:`MainWindow.bind` hands the whole session to each model and widget that shows
part of it (their ``bind(session)``: each subscribes to the core events it shows) and
to the :class:`gui.controller.ConsoleController`, which handles every command. Nothing
here polls: models coalesce bursts into one repaint a frame. Blocking work (the
store's history) runs in core's executor; the window only awaits it.

Where the parts live: the docks' arrangement, their default split and what a person
arranged in :mod:`gui.window_layout`; the toolbar (order actions, account, READ-ONLY
badge, stop button) in :mod:`gui.widgets.main_toolbar`; every command, and the question
about working orders when a person closes the window, in :mod:`gui.controller`. Here:
building and binding them, the menus, the status bar, and the ticket's keyboard entry.

Keyboard: F2 buy, F3 sell, Ctrl+L symbol, Ctrl+Shift+C cancel all working orders,
Ctrl+Shift+X emergency stop (press twice, or hold: see the button's docstring).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QMainWindow,
    QVBoxLayout,
    QWidget,
)

from core.config import GuiSettings, Settings, user_config_dir
from core.events import (
    MANUAL,
    ConnectionState,
    ConnectionStatusChanged,
    OrderRejected,
    PositionChanged,
    TradingState,
    TradingStateChanged,
)
from core.marketdata import Quote
from core.session import ConsoleSession, SessionOptions
from gui import shortcuts, theme
from gui.controller import READONLY_REASON, ConsoleController
from gui.help import HelpMenu
from gui.models.audit import AuditModel
from gui.models.base import TableProxy
from gui.models.fills import FillsModel
from gui.models.orders import OrdersModel
from gui.models.positions import PositionsModel
from gui.tasks import spawn
from gui.widgets.fills_view import FillsView
from gui.widgets.halted_banner import HaltedBanner
from gui.widgets.log_view import AuditView, LogView
from gui.widgets.main_toolbar import MainToolBar, action_tooltip
from gui.widgets.notifier import Notifier, rejection_text
from gui.widgets.order_ticket import OrderTicket
from gui.widgets.orders_view import OrdersView
from gui.widgets.pnl_chart import PnLChart
from gui.widgets.positions_view import PositionsView
from gui.widgets.risk_panel import RiskPanel, exposures_by_strategy
from gui.widgets.status_labels import ConnectionIndicator, accounts_text
from gui.widgets.store_indicator import StoreIndicator
from gui.window_layout import WindowLayout, build_docks, fit_to_screen

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """The console window for a session started with ``options`` and ``config`` (the
    loaded settings; None: defaults); ``settings`` keeps its layout. ``closing`` fires
    when the user closes it. :meth:`bind` shows a session in it."""

    closing = Signal()

    def __init__(
        self,
        options: SessionOptions,
        config: Settings | None = None,
        *,
        settings: QSettings | None = None,
    ) -> None:
        super().__init__()
        self.options = options
        self.config = config
        #: The commands on the bound session (None until :meth:`bind`).
        self.controller: ConsoleController | None = None
        #: The account orders go to (the bound session's; "" before).
        self._orders_account: Callable[[], str] = lambda: ""
        self.setWindowTitle("IB Console")
        self.setWindowIcon(theme.icon("app"))
        fit_to_screen(self)
        self._settings = settings or QSettings(
            str(user_config_dir() / "layout.ini"), QSettings.Format.IniFormat
        )
        self._user_closing = False
        self.readonly = False
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
        gui_settings = config.gui if config is not None else GuiSettings()
        #: Above this notional an order (or a modification raising it) is confirmed.
        self.confirm_above_notional = gui_settings.confirm_above_notional
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
        self.pnl_chart.setObjectName("pnlChart")
        self.pnl_chart.setAccessibleName("P&L chart")
        self.risk_panel.setObjectName("riskPanel")
        self.risk_panel.setAccessibleName("Risk")
        #: The docks by title (their arrangement: :func:`gui.window_layout.build_docks`).
        self.docks = build_docks(
            self,
            {
                "Order ticket": self.ticket,
                "Risk": self.risk_panel,
                "P&L": self.pnl_chart,
                "Fills": self.fills_view,
                "Audit": self.audit_view,
                "Log": self.log_view,
                "Working orders": self.orders_view,
            },
        )

        self.notifier = Notifier(self)
        self._build_toolbar()
        self._build_status_bar()
        self._build_menus()
        self._connect_widgets()
        self.window_layout = WindowLayout(
            self,
            self._settings,
            docks=self.docks,
            ticket=self.ticket,
            positions_view=self.positions_view,
            sound_action=self.sound_action,
        )
        self.window_layout.size_docks()
        self.window_layout.restore()
        if options.readonly:
            self.set_readonly(True)

    # -- construction -------------------------------------------------------------------

    def _build_toolbar(self) -> None:
        """The toolbar (:class:`gui.widgets.main_toolbar.MainToolBar`); its parts are
        the window's to connect and to test."""
        bar = self.toolbar = MainToolBar(self, readonly_reason=READONLY_REASON)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.buy_action, self.sell_action = bar.buy_action, bar.sell_action
        self.symbol_action, self.cancel_all_action = bar.symbol_action, bar.cancel_all_action
        self.account_strip, self.readonly_badge = bar.account_strip, bar.readonly_badge
        self.stop_button = bar.stop_button
        self.buy_action.triggered.connect(lambda: self._ticket_side("BUY"))
        self.sell_action.triggered.connect(lambda: self._ticket_side("SELL"))
        self.symbol_action.triggered.connect(self._focus_ticket)

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.connection_indicator = ConnectionIndicator(sb)
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
        for a in self.toolbar.trade_actions():
            trade.addAction(a)
        trade.addSeparator()
        self.stop_action = QAction(theme.icon("stop"), "Emergency stop…", self)
        trade.addAction(self.stop_action)
        trade.setToolTipsVisible(True)
        self.reset_halt_action = QAction("Reset HALTED…", self)
        trade.addAction(self.reset_halt_action)
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
        reset_layout.triggered.connect(self.reset_layout_to_default)
        view.addAction(reset_layout)
        shortcuts.tag(self.ticket, "send_order")  # Enter: the ticket handles it
        self.help_menu = HelpMenu(self, self.options, self.config)

    def _show_exposures(self) -> None:
        c = self.controller  # None before bind: values shown as the grid has them
        to_base = c.session.risk.in_base if c is not None else None
        self.risk_panel.set_exposures(*exposures_by_strategy(self.positions_model.rows(), to_base))

    def _connect_widgets(self) -> None:
        """What stays inside the window: the ticket loaded from a row, exposures."""
        # Gross and net exposure per strategy, once per coalesced grid update.
        self.positions_model.flushed.connect(self._show_exposures)
        self.positions_view.sendToTicketRequested.connect(self._position_to_ticket)
        self.fills_view.sendToTicketRequested.connect(
            lambda f: self.ticket.load(f.symbol, "SELL" if f.side == "BOT" else "BUY", f.quantity)
        )
        self.ticket.orderRefused.connect(lambda text: self.statusBar().showMessage(text, 10000))
        self.orders_view.entryRefused.connect(
            lambda text: self.statusBar().showMessage(f"Modify {text}", 10000)
        )

    # -- binding to core ----------------------------------------------------------------

    def bind(self, session: ConsoleSession) -> None:
        """Show ``session`` (whole, connected or not yet) and hand commands to it; once."""
        if self.controller is not None:
            raise RuntimeError("the window is bound to a session already")
        c = self.controller = ConsoleController(self, self, session)
        for part in (
            self.positions_model,
            self.orders_model,
            self.fills_model,
            self.audit_model,
            self.pnl_chart,
            self.risk_panel,
            self.halted_banner,
            self.store_indicator,
            self.help_menu,
            self.connection_indicator,
            self.account_strip,
            self.notifier,
        ):
            part.bind(session)
        self._bind_ticket(session)
        # commands
        self.positions_view.closeRequested.connect(lambda p: c.close_position(p, reverse=False))
        self.positions_view.reverseRequested.connect(lambda p: c.close_position(p, reverse=True))
        self.positions_view.resolveBreakRequested.connect(c.resolve_break)
        self.orders_view.cancelRequested.connect(c.cancel_order)
        self.orders_view.cancelAllRequested.connect(c.cancel_all)
        self.orders_view.modifyRequested.connect(c.modify_order)
        self.orders_view.confirm_modify = c.confirm_modify
        self.cancel_all_action.triggered.connect(c.cancel_all)
        self.stop_button.triggered.connect(c.emergency_stop)
        self.stop_action.triggered.connect(c.confirm_emergency_stop)
        self.halted_banner.resetRequested.connect(c.reset_halt)
        self.reset_halt_action.triggered.connect(c.reset_halt)
        self.risk_panel.tradingStateRequested.connect(c.set_trading_state)
        # what the window itself says
        conn = session.connection
        self._orders_account = lambda: session.trades.account
        conn.statusChanged += self._on_status_changed
        if conn.last_status is not None:
            self._on_status_changed(conn.last_status)
        # after a reconnect (IB's nightly reset): what was recovered (the log has it too)
        session.resynchronised += lambda e: self.statusBar().showMessage(e.describe(), 30000)
        session.trades.orderRejected += self._on_order_rejected
        contracts = session.contracts
        session.market.quotesUpdated += lambda quotes: self._learn_ticks(quotes, contracts.min_tick)
        session.risk.tradingStateChanged += self._on_trading_state
        for event in session.trading_state_events():
            self._on_trading_state(event)
        session.risk.publish_utilization()  # every limit's use, to the panel and ticket
        self._history_task = spawn(self._load_history(session), what="loading history")

    def _bind_ticket(self, session: ConsoleSession) -> None:
        """The order ticket: order entry, quotes, risk sizing, the trading state."""
        ticket = self.ticket
        ticket.entry = session.order_entry
        ticket.size_by_risk = session.size_by_risk
        ticket.size_button.setEnabled(not ticket.readonly)
        session.market.quotesUpdated += ticket.on_quotes
        # The ticket judges its order again at once when the state or a limit moves.
        session.risk.tradingStateChanged += ticket.on_trading_state_changed
        session.risk.utilizationChanged += ticket.reevaluate
        for event in session.trading_state_events():
            ticket.on_trading_state_changed(event)
        ticket.strategy.clear()
        ticket.strategy.addItems([MANUAL, *session.strategies.names])
        ticket.strategy.setCurrentText(MANUAL)

    async def _load_history(self, session: ConsoleSession) -> None:
        """The day so far from the journal: fills, and the P&L chart's points."""
        fills = await session.todays_fills()
        self.fills_model.load(fills)
        # The ticks the fills were recorded with: positions show their instrument's
        # decimals at once after a restart, before any quote teaches them (_learn_ticks).
        recorded = {f.con_id: f.min_tick for f in fills if f.min_tick}
        for con_id, tick in recorded.items():
            if con_id not in self._ticks_known:
                self.positions_model.set_tick(con_id, tick)
        pnl = await session.todays_pnl()
        if len(pnl):
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
        if self.controller is not None:  # the P&L of the prices just shown, not of 1 s ago
            self.controller.session.portfolio.publish_pnl()
        for model in (self.positions_model, self.orders_model, self.fills_model):
            model.flush()
        # Sorting is throttled (a full sort per change would cost a storm its frames):
        # what is on screen now is also in its order now.
        for view in self.findChildren(QAbstractItemView):
            proxy = view.model()
            if isinstance(proxy, TableProxy):
                proxy.resort()
        self.pnl_chart.flush()
        # A turn of Qt's event loop: the layouts follow the texts just set (a row count
        # otherwise shows "10 row", sized for the text before).
        await asyncio.sleep(0.05)

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
        self.connection_indicator.show_error(message)
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
        self.toolbar.set_readonly(readonly, why)  # Buy, Sell, Cancel all, stop, badge
        self.stop_action.setEnabled(not readonly)
        self.stop_action.setToolTip(action_tooltip(self.stop_action, why))
        self.setWindowTitle("IB Console — read-only" if readonly else "IB Console")

    # -- event handlers -----------------------------------------------------------------

    def _on_status_changed(self, status: ConnectionStatusChanged) -> None:
        """The gateway in the status bar, the status while not connected, the ticket
        offline while the link is down (the indicator shows the state itself)."""
        kind = "TWS / IB Gateway" if self.options.port else "simulated gateway"
        accounts = accounts_text(status.accounts, self._orders_account())
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

    def _learn_ticks(self, quotes: list[Quote], min_tick: Callable[[int], float | None]) -> None:
        """Learn each contract's tick once, so prices show with the right decimals."""
        for q in quotes:
            if q.con_id in self._ticks_known:
                continue
            tick = min_tick(q.con_id)
            if tick is None:
                continue
            self._ticks_known.add(q.con_id)
            for model in (self.positions_model, self.orders_model, self.fills_model):
                model.set_tick(q.con_id, tick)

    def _on_order_rejected(self, event: OrderRejected) -> None:
        self.statusBar().showMessage(rejection_text(event), 15000)

    def _set_sound(self, on: bool) -> None:
        self.notifier.sound = on
        self._settings.setValue("notifications/sound", on)

    def _on_trading_state(self, event: TradingStateChanged) -> None:
        if event.scope != "account":
            return
        self.stop_button.setEnabled(not self.readonly)
        if event.state is TradingState.HALTED:
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

    def modify_refused(self, order_id: int, field: str, value: float, reason: str) -> None:
        """Core refused the grid's modification: the cell opens again on the entry,
        flagged with ``reason`` (the ticket flags its fields the same way)."""
        self.orders_view.refuse_edit(order_id, field, value, reason)

    def working_orders_shown(self) -> int:
        """How many working orders the orders grid shows (the cancel-all question)."""
        return len(self.orders_model.working_order_ids())

    # -- layout -------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.window_layout.shown()

    def reset_layout_to_default(self) -> None:
        """View > Reset layout: the default split and columns."""
        self.window_layout.reset()

    def save_layout(self) -> None:
        """Remember dock positions, window geometry, the positions grouping and columns."""
        self.window_layout.save()

    def close_by_user(self) -> None:
        """Close as a person asked (File > Quit): working orders are asked about first."""
        self._user_closing = True
        try:
            self.close()
        finally:
            self._user_closing = False

    def closeEvent(self, event: QCloseEvent) -> None:
        # A person closing the window (its close button, File > Quit) is asked about
        # working orders; a signal (SIGTERM) or a test tearing down is not. Unbound (the
        # session never started), there is nothing to ask about.
        asked = event.spontaneous() or self._user_closing
        if asked and self.controller is not None and not self.controller.may_close():
            event.ignore()
            return
        self.save_layout()
        self.closing.emit()
        super().closeEvent(event)
