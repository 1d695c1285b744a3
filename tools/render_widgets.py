"""Render each console widget offscreen with realistic synthetic data, to PNG files.

    .venv/bin/python tools/render_widgets.py [OUTPUT_DIR]   # default /tmp/ibconsole-widgets

For looking at what the widgets look like without a gateway: every panel is fed the
same core events the live console receives.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd
from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget

from core.events import (
    AuditRecorded,
    FillRecorded,
    LimitUtilizationChanged,
    OrderUpdated,
    PnLChanged,
    PositionChanged,
    TradingState,
    TradingStateChanged,
)
from gui import theme
from gui.widgets.emergency_stop import EmergencyStopButton
from gui.widgets.fills_view import FillsView
from gui.widgets.halted_banner import HaltedBanner
from gui.widgets.log_view import AuditView, LogView
from gui.widgets.orders_view import OrdersView
from gui.widgets.pnl_chart import PnLChart
from gui.widgets.positions_view import PositionsView
from gui.widgets.risk_panel import RiskPanel

NOW = datetime.now(UTC).replace(microsecond=0)
UNSET = 1.7976931348623157e308

# symbol, con_id, sec_type, last, multiplier, tick
CONTRACTS = {
    "AAPL": (265598, "STK", 189.84, 1.0, 0.01),
    "MSFT": (272093, "STK", 415.32, 1.0, 0.01),
    "NVDA": (4815747, "STK", 881.86, 1.0, 0.01),
    "SPY": (756733, "STK", 512.47, 1.0, 0.01),
    "ES": (551601561, "FUT", 5187.25, 50.0, 0.25),
    "EUR.USD": (12087792, "CASH", 1.08465, 1.0, 0.00005),
    "TSLA": (76792991, "STK", 171.05, 1.0, 0.01),
}


def positions() -> list[PositionChanged]:
    rows = [
        ("trend", "AAPL", 400, 186.12, False),
        ("trend", "NVDA", -60, 902.40, False),
        ("trend", "ES", 2, 5171.50, False),
        ("meanrev", "MSFT", 150, 418.90, False),
        ("meanrev", "SPY", -200, 509.10, True),
        ("manual", "TSLA", 0, 0.0, False),
        ("manual", "EUR.USD", 125000, 1.08212, False),
        ("external", "AAPL", 100, 181.00, False),
    ]
    out = []
    for strategy, symbol, qty, avg, stale in rows:
        con_id, sec_type, last, mult, _tick = CONTRACTS[symbol]
        mv = qty * last * mult if qty else 0.0
        unreal = (last - avg) * qty * mult if qty else 0.0
        realized = {"TSLA": 842.5, "MSFT": -120.0, "AAPL": 310.0}.get(symbol, 0.0)
        daily = unreal * 0.6 + realized
        out.append(
            PositionChanged(
                strategy=strategy,
                account="DU1234567",
                con_id=con_id,
                symbol=symbol,
                sec_type=sec_type,
                currency="USD",
                multiplier=mult,
                quantity=qty,
                avg_cost=avg,
                last=None if symbol == "SPY" and stale else last,
                market_value=mv,
                unrealized_pnl=unreal,
                realized_pnl=realized,
                daily_pnl=daily if symbol != "EUR.USD" else None,
                commissions=2.5,
                stale=stale,
            )
        )
    return out


def orders() -> list[OrderUpdated]:
    specs = [
        (101, "trend", "AAPL", "BUY", 200, "LMT", 188.50, None, "Submitted", 0, ""),
        (102, "trend", "NVDA", "SELL", 40, "STP", None, 920.00, "PreSubmitted", 0, ""),
        (103, "meanrev", "MSFT", "SELL", 150, "LMT", 421.00, None, "Submitted", 50, ""),
        (104, "manual", "ES", "BUY", 1, "STP LMT", 5195.25, 5194.00, "PendingSubmit", 0, ""),
        (105, "meanrev", "SPY", "BUY", 200, "LMT", 505.00, None, "PendingCancel", 0, ""),
        (0, "external", "TSLA", "BUY", 50, "LMT", 165.00, None, "Submitted", 0, "placed in TWS"),
        (
            107,
            "manual",
            "AAPL",
            "BUY",
            5000,
            "MKT",
            None,
            None,
            "Inactive",
            0,
            "Order rejected: exceeds max order size",
        ),
        (108, "trend", "ES", "SELL", 1, "LMT", 5190.00, None, "Filled", 1, ""),
    ]
    out = []
    for i, (oid, strat, sym, action, qty, otype, lmt, stp, status, filled, msg) in enumerate(specs):
        con_id, sec_type, *_ = CONTRACTS[sym]
        out.append(
            OrderUpdated(
                order_id=oid,
                perm_id=900000 + i,
                client_id=1 if oid else 0,
                strategy=strat,
                account="DU1234567",
                con_id=con_id,
                symbol=sym,
                sec_type=sec_type,
                action=action,
                quantity=qty,
                order_type=otype,
                limit_price=lmt,
                stop_price=stp,
                tif="DAY" if i % 3 else "GTC",
                status=status,
                filled=filled,
                remaining=qty - filled,
                avg_fill_price=None,
                message=msg,
                time=NOW - timedelta(minutes=40 - 4 * i),
            )
        )
    return out


def fills() -> list[FillRecorded]:
    rng = np.random.default_rng(7)
    out = []
    names = ["AAPL", "NVDA", "MSFT", "ES", "SPY", "TSLA", "EUR.USD"]
    strategies = ["trend", "meanrev", "manual", "trend", "meanrev", "manual", "manual"]
    for i in range(28):
        j = i % len(names)
        sym = names[j]
        con_id, sec_type, last, mult, tick = CONTRACTS[sym]
        price = round(last * (1 + rng.normal(0, 0.002)) / tick) * tick
        qty = (
            25000.0
            if sym == "EUR.USD"
            else (1.0 if sym == "ES" else float(rng.integers(1, 30) * 10))
        )
        out.append(
            FillRecorded(
                exec_id=f"0000e0d5.6652{i:04x}.01.01",
                order_id=100 + i,
                perm_id=800000 + i,
                client_id=1,
                strategy=strategies[j],
                account="DU1234567",
                con_id=con_id,
                symbol=sym,
                sec_type=sec_type,
                currency="USD",
                exchange=["ISLAND", "ARCA", "CME", "IDEALPRO", "NYSE"][i % 5],
                side="BOT" if rng.random() > 0.5 else "SLD",
                quantity=qty,
                price=price,
                multiplier=mult,
                commission=None if i == 27 else round(0.35 + qty * 0.005, 2),
                realized_pnl=None if i % 3 else float(rng.normal(40, 300)),
                order_ref=strategies[j],
                time=NOW - timedelta(minutes=300 - 10 * i),
            )
        )
    return out


def pnl_history() -> pd.DataFrame:
    """A full session at 1 s: account plus three strategies."""
    n = 6 * 3600 + 30 * 60
    start = NOW - timedelta(seconds=n)
    t = pd.date_range(start, periods=n, freq="1s", tz="UTC")
    rng = np.random.default_rng(42)
    frames = []
    totals_r = np.zeros(n)
    totals_u = np.zeros(n)
    for name, drift, vol in (("trend", 0.18, 9.0), ("meanrev", -0.05, 6.0), ("manual", 0.04, 4.0)):
        walk = np.cumsum(rng.normal(drift, vol, n))
        realized = np.floor(np.cumsum(rng.normal(drift * 0.6, 1.0, n)) / 50) * 50
        unreal = walk - realized
        totals_r += realized
        totals_u += unreal
        frames.append(
            pd.DataFrame({"time": t, "strategy": name, "realized": realized, "unrealized": unreal})
        )
    frames.append(
        pd.DataFrame({"time": t, "strategy": None, "realized": totals_r, "unrealized": totals_u})
    )
    return pd.concat(frames, ignore_index=True)


def grab(widget: QWidget, out: Path, name: str, w: int, h: int) -> Path:
    widget.resize(w, h)
    widget.show()
    QApplication.processEvents()
    path = out / f"{name}.png"
    widget.grab().save(str(path))
    print(path)
    return path


def flush_all(*models) -> None:
    for m in models:
        m.flush()
    QApplication.processEvents()


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ibconsole-widgets")
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv)
    theme.apply_theme(app)

    # Positions
    pv = PositionsView()
    for _sym, (con_id, *_rest, tick) in CONTRACTS.items():
        pv.positions.set_tick(con_id, tick)
    for ev in positions():
        pv.positions.on_position_changed(ev)
    pv.positions.set_net_liquidation(1_254_310.55)
    pv.positions.mark_break(CONTRACTS["MSFT"][0], "IB 150, stored 100 (missed fill?)")
    flush_all(pv.positions)
    grab(pv, out, "positions", 1180, 330)
    pv.set_grouped(True)
    pv.tree.proxy.resort()
    grab(pv, out, "positions-grouped", 1180, 400)
    pv.set_grouped(False)

    # Orders (one modify pending)
    ov = OrdersView()
    for _sym, (con_id, *_rest, tick) in CONTRACTS.items():
        ov.orders.set_tick(con_id, tick)
    for ev in orders():
        ov.orders.on_order_updated(ev)
    flush_all(ov.orders)
    idx = ov.orders.index(0, ov.orders.column_of("limit_price"))
    ov.orders.setData(idx, 188.75)
    flush_all(ov.orders)
    grab(ov, out, "orders", 1180, 300)

    # Fills
    fv = FillsView()
    for _sym, (con_id, *_rest, tick) in CONTRACTS.items():
        fv.fills.set_tick(con_id, tick)
    fv.fills.load(fills())
    flush_all(fv.fills)
    grab(fv, out, "fills", 1180, 420)

    # P&L chart, with the crosshair placed mid-session
    chart = PnLChart()
    chart.load_history(pnl_history())  # the same seeded history the live point continues
    hist = pnl_history()
    last = hist[hist["strategy"].isna()].iloc[-1]
    chart.on_pnl_changed(
        PnLChanged(
            None,
            0.0,
            float(last["realized"]) + 25.0,
            float(last["unrealized"]) - 10.0,
            time=NOW + timedelta(seconds=1),
        )
    )
    chart.flush()
    chart.resize(1180, 440)
    chart.show()
    QApplication.processEvents()
    t_mid = (NOW - timedelta(hours=2, minutes=15)).timestamp()
    chart.show_crosshair_at(t_mid, chart.value_at(t_mid) or 0.0)
    QApplication.processEvents()
    grab(chart, out, "pnl_chart", 1180, 440)
    chart.show_breakdown.setChecked(True)
    chart.show_strategies.setChecked(False)
    chart._hide_crosshair()
    QApplication.processEvents()
    grab(chart, out, "pnl_chart_breakdown", 1180, 440)

    # Risk panel
    rp = RiskPanel(confirm=lambda q: True)
    rp.on_trading_state_changed(
        TradingStateChanged(
            "account", TradingState.ACTIVE, TradingState.REDUCING, "reset by operator", "gui"
        )
    )
    rp.on_trading_state_changed(
        TradingStateChanged(
            "meanrev", TradingState.REDUCING, TradingState.ACTIVE, "daily loss 80%", "risk"
        )
    )
    rp.on_trading_state_changed(
        TradingStateChanged("trend", TradingState.ACTIVE, TradingState.ACTIVE, "", "risk")
    )
    for scope, limit, value, lim in (
        ("account", "daily_loss", 4200.0, 10000.0),
        ("account", "max_gross_exposure", 1_480_000.0, 2_000_000.0),
        ("account", "drawdown_from_high", 9_100.0, 10_000.0),
        ("account", "orders_per_minute", 12, 60),
        ("meanrev", "max_position_value", 92_000.0, 100_000.0),
        ("trend", "max_position_value", 351_000.0, 500_000.0),
    ):
        rp.on_limit_utilization_changed(LimitUtilizationChanged(scope, limit, value, lim))
    grab(rp, out, "risk_panel", 560, 360)

    # Emergency stop: idle, armed, holding
    for state in ("idle", "armed", "holding"):
        stop = EmergencyStopButton()
        stop.resize(360, 64)
        stop.show()
        QApplication.processEvents()
        if state == "armed":
            stop.press_shortcut()
        elif state == "holding":
            stop._progress = 0.55
        stop.update()
        QApplication.processEvents()
        grab(stop, out, f"emergency_stop_{state}", 360, 64)
        stop.disarm()
        stop.close()

    # Halted banner above a grid
    host = QWidget()
    lay = QVBoxLayout(host)
    lay.setContentsMargins(0, 0, 0, 0)
    banner = HaltedBanner()
    banner.on_trading_state_changed(
        TradingStateChanged(
            "account",
            TradingState.HALTED,
            TradingState.ACTIVE,
            "emergency stop: 3 orders cancelled, 5 positions flattened",
            "gui",
        )
    )
    lay.addWidget(banner)
    lay.addStretch(1)
    grab(host, out, "halted_banner", 1180, 60)

    # Log and audit
    lv = LogView.with_handler("ibconsole.render")
    log = logging.getLogger("ibconsole.render")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    for i in range(12):
        log.info("position AAPL trend -> %d @ %.2f", 400 + i * 10, 189.84 + i * 0.01)
    log.warning("market data for SPY is stale (no tick for 31 s)")
    log.debug("tick storm: 12,340 ticks coalesced into 1 repaint")
    log.error("order 107 rejected: exceeds max order size (5,000 > 2,000)")
    log.info("reconnected to 127.0.0.1:4002 client 1 after 2 attempts")
    lv.set_min_level(logging.INFO)
    flush_all(lv.log_model)
    grab(lv, out, "log_view", 1180, 300)

    av = AuditView()
    for i, (actor, action, subject, result) in enumerate(
        (
            ("gui", "place", "BUY 200 AAPL LMT 188.50 DAY", "accepted"),
            ("trend", "place", "SELL 40 NVDA STP 920.00 GTC", "accepted"),
            ("gui", "modify", "AAPL #101 limit 188.50 -> 188.75", "accepted"),
            ("gui", "place", "BUY 5000 AAPL MKT DAY", "refused: exceeds max order size 2,000"),
            ("risk", "set_trading_state", "meanrev ACTIVE -> REDUCING", "daily loss 80%"),
            (
                "meanrev",
                "place",
                "BUY 100 SPY LMT 505.00",
                "refused: REDUCING allows only reducing orders",
            ),
            ("gui", "cancel", "SPY #105", "accepted"),
            ("system", "reconnect", "127.0.0.1:4002 client 1", "ok"),
            (
                "ib",
                "order_error",
                "MSFT #103",
                "error 201: Order rejected - reason: no trading permissions",
            ),
        )
    ):
        av.audit.on_audit_recorded(
            AuditRecorded(
                actor,
                action,
                subject,
                result,
                order_id=100 + i,
                time=NOW - timedelta(minutes=30 - 3 * i),
            )
        )
    flush_all(av.audit)
    grab(av, out, "audit_view", 1180, 300)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
