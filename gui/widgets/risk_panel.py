"""Risk panel: the trading-state badge and one utilization bar per risk limit.

Fed by :class:`core.events.TradingStateChanged` and
:class:`core.events.LimitUtilizationChanged`. Bars are green below 70 % of the limit,
amber from 70 % and red from 90 % (:func:`gui.theme.utilization_band`). A bar's style is
re-polished only when its band changes; value changes just call ``update()``, which Qt
coalesces into one paint per frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from core.events import LimitUtilizationChanged, TradingState, TradingStateChanged
from core.precautions import DEFAULT_KEY, Precaution
from gui import theme
from gui.models.formatting import fmt_time, number

if TYPE_CHECKING:
    from core.session import ConsoleSession

ACCOUNT_SCOPE = "account"
BAR_STEPS = 1000

#: Limits whose values are money (shown without decimals) vs counts/ratios.
_MONEY_HINTS = ("exposure", "loss", "notional", "value", "drawdown", "margin", "pnl")


def exposures_by_strategy(
    rows: Iterable[Mapping[str, Any]],
    to_base: Callable[[float, str], tuple[float, str] | None] | None = None,
) -> tuple[dict[str, tuple[float, float]], set[str]]:
    """Gross and net market value per strategy, from the positions grid's rows (what
    :meth:`RiskPanel.set_exposures` shows), and the currencies left out.

    With ``to_base`` (core's ``RiskManager.in_base``) every value is in the account's base
    currency, as the limits judge it: a EUR and a JPY position are never added as one. A
    row in a currency with no exchange rate yet is left out and its currency returned.
    """
    out: dict[str, tuple[float, float]] = {}
    unconverted: set[str] = set()
    for row in rows:
        value = row.get("market_value")
        if not value or not row.get("quantity"):
            continue
        currency = row.get("currency") or ""
        if to_base is not None and currency:
            converted = to_base(value, currency)
            if converted is None:
                unconverted.add(currency)
                continue
            value = converted[0]
        gross, net = out.get(row["strategy"], (0.0, 0.0))
        out[row["strategy"]] = (gross + abs(value), net + value)
    return out, unconverted


def humanize_limit(name: str) -> str:
    """``"max_gross_exposure"`` -> ``"Max gross exposure"``."""
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _fmt_value(limit: str, value: float) -> str:
    if any(h in limit for h in _MONEY_HINTS) or abs(value) >= 1000:
        return number(value, 0)
    return number(value, 2).rstrip("0").rstrip(".")


def _repolish(widget: QWidget) -> None:
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)


class LimitRow(QWidget):
    """One limit: its name, figures and percentage on a line, the bar under them."""

    def __init__(self, parent: QWidget, scope: str, limit: str) -> None:
        super().__init__(parent)
        title = humanize_limit(limit)
        if scope != ACCOUNT_SCOPE:
            title = f"{scope} · {title}"
        self.name = QLabel(title, self)
        self.name.setToolTip(f"{scope}: {limit}")
        self.bar = QProgressBar(self)
        self.bar.setRange(0, BAR_STEPS)
        self.bar.setTextVisible(False)
        self.bar.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.bar.setProperty("band", "ok")
        self.figures = QLabel(self)
        self.figures.setProperty("role", "number")
        self.figures.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.figures.setStyleSheet(f"color: {theme.TEXT_DIM}; background: transparent;")
        self.percent = QLabel(self)
        self.percent.setProperty("role", "number")
        self.percent.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.percent.setMinimumWidth(48)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.setSpacing(8)
        top.addWidget(self.name)
        top.addStretch(1)
        top.addWidget(self.figures)
        top.addWidget(self.percent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(3)
        layout.addLayout(top)
        layout.addWidget(self.bar)
        # Its natural height, always: squeezed, the figures' commas read as points.
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.band = "ok"
        self.utilization = 0.0

    def apply(self, event: LimitUtilizationChanged) -> None:
        """Show the event's value, limit and utilization; recolour on a band change."""
        u = max(0.0, event.utilization)
        self.utilization = u
        self.bar.setValue(round(min(u, 1.0) * BAR_STEPS))
        self.figures.setText(
            f"{_fmt_value(event.limit, event.value)} / {_fmt_value(event.limit, event.limit_value)}"
        )
        self.percent.setText(f"{u * 100:.0f}%")
        band = theme.utilization_band(u)
        if band != self.band or not self.percent.styleSheet():
            self.band = band
            self.bar.setProperty("band", band)
            _repolish(self.bar)
            colour = theme.BAND_COLOURS[band] if band != "ok" else theme.TEXT
            weight = 700 if band == "breach" else 400
            self.percent.setStyleSheet(
                f"color: {colour}; font-weight: {weight}; background: transparent;"
            )


class RiskPanel(QWidget):
    """Trading-state badge, strategy state chips, limit bars, ACTIVE/REDUCING controls.

    Slots: :meth:`on_trading_state_changed`, :meth:`on_limit_utilization_changed`.

    Signals
    -------
    tradingStateRequested(str scope, str state): a person confirmed a move between
        ACTIVE and REDUCING (the window asks core, which audits it).

    ``confirm(question) -> bool`` asks before emitting; the default shows a dialog.
    """

    tradingStateRequested = Signal(str, str)

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        confirm: Callable[[str], bool] | None = None,
    ) -> None:
        super().__init__(parent)
        self._confirm = confirm or self._ask
        self._state: TradingState | None = None
        self._limits: dict[tuple[str, str], LimitRow] = {}
        self._chips: dict[str, QLabel] = {}

        self.badge = QLabel("UNKNOWN", self)
        self.badge.setObjectName("tradingStateBadge")
        self.badge.setProperty("state", "UNKNOWN")
        self.badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.badge.setMinimumWidth(130)
        self.reason_label = QLabel("waiting for the risk manager", self)
        self.reason_label.setProperty("role", "dim")
        self.reason_label.setWordWrap(True)
        self.reduce_button = QPushButton("Reduce only", self)
        self.reduce_button.setToolTip("REDUCING: only orders that shrink a position pass")
        self.reduce_button.clicked.connect(lambda: self._request(TradingState.REDUCING))
        self.resume_button = QPushButton("Resume", self)
        self.resume_button.setToolTip("ACTIVE: all orders that pass the limits")
        self.resume_button.clicked.connect(lambda: self._request(TradingState.ACTIVE))
        for w, name, text in (
            (self.badge, "tradingStateBadge", "Trading state"),
            (self.reason_label, "tradingStateReason", "Why the trading state"),
            (self.reduce_button, "riskReduceOnly", "Reduce only"),
            (self.resume_button, "riskResume", "Resume active trading"),
        ):
            w.setObjectName(name)
            w.setAccessibleName(text)

        head = QHBoxLayout()
        head.setSpacing(10)
        head.addWidget(self.badge)
        head_text = QVBoxLayout()
        head_text.setSpacing(2)
        section = QLabel("TRADING STATE", self)
        section.setProperty("role", "section")
        head_text.addWidget(section)
        head_text.addWidget(self.reason_label)
        head.addLayout(head_text, 1)
        # The controls on their own line: beside the badge they made the panel (and so
        # the window) too wide for a laptop screen.
        controls = QHBoxLayout()
        controls.setSpacing(8)
        controls.addStretch(1)
        controls.addWidget(self.reduce_button)
        controls.addWidget(self.resume_button)

        self.chips_layout = QHBoxLayout()
        self.chips_layout.setSpacing(6)
        self.chips_layout.addStretch(1)

        limits_title = QLabel("LIMITS", self)
        limits_title.setProperty("role", "section")
        self.limits_layout = QVBoxLayout()
        self.limits_layout.setSpacing(10)
        self.empty_label = QLabel("No limit reported yet", self)
        self.empty_label.setProperty("role", "dim")

        line = QFrame(self)
        line.setFrameShape(QFrame.Shape.HLine)
        line.setStyleSheet(f"color: {theme.BORDER}; background: {theme.BORDER}; max-height: 1px;")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.setSpacing(8)
        layout.addLayout(head)
        layout.addLayout(controls)
        layout.addLayout(self.chips_layout)
        layout.addWidget(line)
        layout.addWidget(limits_title)
        layout.addLayout(self.limits_layout)
        layout.addWidget(self.empty_label)
        # Precautionary caps per order (core.precautions): on unless the config says
        # "off", which shows here in amber so an open door is never silent.
        precautions_title = QLabel("PRECAUTIONS PER ORDER", self)
        precautions_title.setProperty("role", "section")
        precautions_title.setToolTip(
            "Caps on every order that opens or grows a position, per security type: size, "
            "value (quantity x price x multiplier) and distance of its price from the market. "
            'Set in [risk.precautions.TYPE] of the config; "off" turns one off.'
        )
        self.precautions_grid = QGridLayout()
        self.precautions_grid.setHorizontalSpacing(12)
        self.precautions_grid.setVerticalSpacing(2)
        self.precautions_empty = QLabel("none: every precautionary cap is off", self)
        self.precautions_empty.setStyleSheet(f"color: {theme.AMBER};")
        self.precautions_empty.setObjectName("precautionsOff")
        self._precaution_cells: dict[tuple[str, str], QLabel] = {}
        layout.addWidget(precautions_title)
        layout.addLayout(self.precautions_grid)
        layout.addWidget(self.precautions_empty)
        self.precautions_empty.hide()
        exposure_title = QLabel("EXPOSURE BY STRATEGY", self)
        exposure_title.setProperty("role", "section")
        self.exposure_label = QLabel("no positions", self)
        self.exposure_label.setProperty("role", "number")
        self.exposure_label.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(exposure_title)
        layout.addWidget(self.exposure_label)
        layout.addStretch(1)
        self._update_controls()

    def bind(self, session: ConsoleSession) -> None:
        """Show ``session``'s trading states, limits in use and precautionary caps."""
        risk = session.risk
        risk.tradingStateChanged += self.on_trading_state_changed
        risk.utilizationChanged += self.on_limit_utilization_changed
        if risk.precautions is not None:
            self.set_precautions(risk.precautions.describe())
        if risk.limits.is_empty():
            self.empty_label.setText("No account-level limit set ([risk] in the config)")
        for event in session.trading_state_events():
            self.on_trading_state_changed(event)

    # ----- slots ---------------------------------------------------------------------
    def on_trading_state_changed(self, event: TradingStateChanged) -> None:
        """Account scope drives the badge; strategy scopes get a chip each."""
        state = TradingState(event.state)
        if event.scope == ACCOUNT_SCOPE:
            self._state = state
            self.badge.setText(state.value)
            self.badge.setProperty("state", state.value)
            _repolish(self.badge)
            reason = event.reason or "no reason given"
            self.reason_label.setText(
                f"{reason} · since {fmt_time(event.time)} · by {event.changed_by}"
            )
            self._update_controls()
            return
        chip = self._chips.get(event.scope)
        if chip is None:
            chip = QLabel(self)
            chip.setProperty("chip", True)
            self._chips[event.scope] = chip
            self.chips_layout.insertWidget(self.chips_layout.count() - 1, chip)
        chip.setText(f"{event.scope}: {state.value}")
        chip.setToolTip(f"{event.reason} ({event.changed_by}, {fmt_time(event.time)})")
        chip.setProperty("state", state.value)
        _repolish(chip)

    def on_limit_utilization_changed(self, event: LimitUtilizationChanged) -> None:
        """Create or update the limit's bar."""
        key = (event.scope, event.limit)
        row = self._limits.get(key)
        if row is None:
            row = LimitRow(self, event.scope, event.limit)
            self._limits[key] = row
            self.limits_layout.addWidget(row)
            self.empty_label.hide()
        row.apply(event)

    def set_precautions(self, caps: list[tuple[str, Precaution]]) -> None:
        """Show the precautionary caps per security type (type, size, value, price band)."""
        while self.precautions_grid.count():
            item = self.precautions_grid.takeAt(0)
            if item is not None and item.widget() is not None:
                item.widget().deleteLater()
        self._precaution_cells.clear()
        for col, title in enumerate(("", "size", "value", "price ±")):
            head = QLabel(title, self)
            head.setProperty("role", "dim")
            head.setAlignment(Qt.AlignmentFlag.AlignRight)
            self.precautions_grid.addWidget(head, 0, col)
        any_on = False
        for row, (sec_type, cap) in enumerate(caps, start=1):
            name = QLabel("other" if sec_type == DEFAULT_KEY else sec_type, self)
            self.precautions_grid.addWidget(name, row, 0)
            for col, (key, value, fmt) in enumerate(
                (
                    ("max_order_quantity", cap.max_order_quantity, "{:,.0f}"),
                    ("max_order_value", cap.max_order_value, "{:,.0f}"),
                    ("max_price_pct", cap.max_price_pct, "{:g}%"),
                ),
                start=1,
            ):
                cell = QLabel(self)
                cell.setProperty("role", "number")
                cell.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if value is None:
                    cell.setText("off")
                    cell.setStyleSheet(f"color: {theme.AMBER}; font-weight: 600;")
                    cell.setToolTip(f"{sec_type} {key}: turned off in the config")
                else:
                    any_on = True
                    cell.setText(fmt.format(value))
                    cell.setToolTip(f"{sec_type} {key}")
                cell.setObjectName(f"precaution_{sec_type}_{key}")
                cell.setAccessibleName(f"{sec_type} {humanize_limit(key)}")
                self._precaution_cells[(sec_type, key)] = cell
                self.precautions_grid.addWidget(cell, row, col)
        self.precautions_empty.setVisible(not any_on)

    def precaution_text(self, sec_type: str, key: str) -> str | None:
        """What the panel shows for one cap ("2,000", "off"), None if not shown."""
        cell = self._precaution_cells.get((sec_type, key))
        return cell.text() if cell is not None else None

    def set_exposures(
        self, exposures: dict[str, tuple[float, float]], unconverted: Iterable[str] = ()
    ) -> None:
        """Gross and net market value per strategy (from the positions grid), in the base
        currency; ``unconverted``: currencies left out for want of an exchange rate."""
        missing = sorted(unconverted)
        note = (
            f"<div style='color:{theme.AMBER}'>{', '.join(missing)} not counted: "
            "no exchange rate from IB yet</div>"
            if missing
            else ""
        )
        if not exposures:
            self.exposure_label.setText(("no positions" if not missing else "") + note)
            return
        dim = theme.TEXT_DIM
        rows = "".join(
            f"<tr><td style='color:{dim}; padding-right:12px'>{name}</td>"
            f"<td align='right' style='padding-right:12px'>{gross:,.0f}</td>"
            f"<td align='right'>{net:+,.0f}</td></tr>"
            for name, (gross, net) in sorted(exposures.items(), key=lambda kv: -kv[1][0])
        )
        head = (
            f"<tr><td></td><td align='right' style='color:{dim}; padding-right:12px'>gross</td>"
            f"<td align='right' style='color:{dim}'>net</td></tr>"
        )
        self.exposure_label.setText(f"<table>{head}{rows}</table>{note}")

    # ----- queries -------------------------------------------------------------------
    def trading_state(self) -> TradingState | None:
        """The account's trading state last reported."""
        return self._state

    def limit_band(self, scope: str, limit: str) -> str | None:
        """``"ok"``, ``"warn"`` or ``"breach"`` for a limit, None if unknown."""
        row = self._limits.get((scope, limit))
        return row.band if row else None

    def limit_bar(self, scope: str, limit: str) -> QProgressBar | None:
        """The progress bar of a limit (for tests and screenshots)."""
        row = self._limits.get((scope, limit))
        return row.bar if row else None

    # ----- internals -----------------------------------------------------------------
    def _update_controls(self) -> None:
        state = self._state
        self.reduce_button.setEnabled(state is TradingState.ACTIVE)
        self.resume_button.setEnabled(state is TradingState.REDUCING)
        if state is TradingState.HALTED:
            self.resume_button.setToolTip("HALTED is reset from the banner, by a person")

    def _request(self, state: TradingState) -> None:
        question = (
            "Switch to REDUCING? Only orders that shrink a position will pass."
            if state is TradingState.REDUCING
            else "Resume ACTIVE trading? All orders within the limits will pass."
        )
        if self._confirm(question):
            self.tradingStateRequested.emit(ACCOUNT_SCOPE, state.value)

    def _ask(self, question: str) -> bool:
        answer = QMessageBox.question(self, "Trading state", question)
        return answer == QMessageBox.StandardButton.Yes
