"""Positions, orders, fills and audit models, fed with core's events."""

from __future__ import annotations

import math
from datetime import timedelta

from PySide6.QtCore import Qt

from core.events import AuditRecorded, OrderRejected, ReconciliationBreakFound
from gui import theme
from gui.models.audit import AuditModel
from gui.models.fills import FillsModel
from gui.models.orders import OrdersModel
from gui.models.positions import PositionsModel
from tests.gui.conftest import T0, make_fill, make_order, make_position

DISPLAY = Qt.ItemDataRole.DisplayRole
FG = Qt.ItemDataRole.ForegroundRole
BG = Qt.ItemDataRole.BackgroundRole


def text(model, key, column):
    return model.data(model.index(model.position(key), model.column_of(column)), DISPLAY)


def role(model, key, column, r):
    return model.data(model.index(model.position(key), model.column_of(column)), r)


# ----- positions ------------------------------------------------------------------------
def test_position_event_then_row_shows_its_values(qtbot):
    model = PositionsModel()
    model.on_position_changed(make_position(quantity=1200, avg_cost=181.237))
    model.flush()
    key = ("trend", 265598)
    assert text(model, key, "strategy") == "trend"
    assert text(model, key, "quantity") == "1,200"
    assert text(model, key, "avg_cost") == "181.24"
    assert text(model, key, "unrealized_pnl") == "+1,000.00"
    assert text(model, key, "market_value") == "19,000.00"


def test_position_update_then_data_changed_for_that_row_only(qtbot, signal_log):
    model = PositionsModel()
    model.on_position_changed(make_position(strategy="a"))
    model.on_position_changed(make_position(strategy="b"))
    model.on_position_changed(make_position(strategy="c"))
    model.flush()
    changed = signal_log(model.dataChanged)
    model.on_position_changed(make_position(strategy="b", last=191.0, unrealized_pnl=1100.0))
    model.flush()
    assert len(changed) == 1
    assert changed.calls[0][0].row() == changed.calls[0][1].row() == model.position(("b", 265598))
    cols = (changed.calls[0][0].column(), changed.calls[0][1].column())
    assert cols == (model.column_of("last"), model.column_of("unrealized_pnl"))


def test_gains_green_losses_red(qtbot):
    model = PositionsModel()
    model.on_position_changed(make_position(strategy="up", unrealized_pnl=5.0))
    model.on_position_changed(make_position(strategy="down", unrealized_pnl=-5.0))
    model.flush()
    assert role(model, ("up", 265598), "unrealized_pnl", FG) == theme.colour(theme.GAIN)
    assert role(model, ("down", 265598), "unrealized_pnl", FG) == theme.colour(theme.LOSS)


def test_missing_marks_show_placeholder_not_ib_placeholder_values(qtbot):
    model = PositionsModel()
    model.on_position_changed(
        make_position(last=None, market_value=math.nan, unrealized_pnl=1.7976931348623157e308)
    )
    model.flush()
    key = ("trend", 265598)
    for column in ("last", "market_value", "unrealized_pnl", "pct_nlv"):
        assert text(model, key, column) == "\N{EN DASH}"


def test_set_net_liquidation_then_percent_of_nlv_recomputed(qtbot, signal_log):
    model = PositionsModel()
    model.on_position_changed(make_position(market_value=25_000.0))
    model.flush()
    key = ("trend", 265598)
    assert text(model, key, "pct_nlv") == "\N{EN DASH}"
    changed = signal_log(model.dataChanged)
    model.set_net_liquidation(100_000.0)
    model.flush()
    assert text(model, key, "pct_nlv") == "25.00%"
    assert len(changed) == 1
    col = model.column_of("pct_nlv")
    assert (changed.calls[0][0].column(), changed.calls[0][1].column()) == (col, col)


def test_net_liquidation_updates_within_a_batch_are_applied_once_with_the_latest(qtbot, signal_log):
    model = PositionsModel()
    for i in range(3):
        model.on_position_changed(make_position(con_id=i + 1, market_value=10_000.0))
    model.flush()
    changed = signal_log(model.dataChanged)

    for nlv in range(100_000, 200_001, 1_000):  # an account-value burst in one frame
        model.set_net_liquidation(float(nlv))
    assert len(changed) == 0 and model.has_pending()
    model.flush()

    assert len(changed) == 1  # three adjacent rows, one range
    assert changed.calls[0][0].row() == 0 and changed.calls[0][1].row() == 2
    assert {text(model, ("trend", i + 1), "pct_nlv") for i in range(3)} == {"5.00%"}


def test_break_mark_cleared_when_a_reconciliation_no_longer_finds_it(qtbot):
    model = PositionsModel()
    for con_id in (1, 2):
        model.on_position_changed(make_position(con_id=con_id))
    model.flush()
    brk = {
        con_id: ReconciliationBreakFound("DU1", con_id, "X", 100.0, 0.0, "test")
        for con_id in (1, 2)
    }
    model.on_reconciliation_break(brk[1])
    model.on_reconciliation_break(brk[2])

    model.on_reconciled([brk[2]])
    model.flush()

    assert set(model.breaks()) == {2}
    assert role(model, ("trend", 1), "symbol", BG) is None
    assert role(model, ("trend", 2), "symbol", BG) == theme.BREAK_TINT


def test_stale_position_then_marker_shown(qtbot):
    model = PositionsModel()
    model.on_position_changed(make_position(stale=True))
    model.on_position_changed(make_position(strategy="fresh"))
    model.flush()
    assert text(model, ("trend", 265598), "stale") == "STALE"
    assert text(model, ("fresh", 265598), "stale") == ""


def test_external_strategy_row_highlighted(qtbot):
    model = PositionsModel()
    model.on_position_changed(make_position(strategy="external"))
    model.on_position_changed(make_position(strategy="trend"))
    model.flush()
    assert role(model, ("external", 265598), "symbol", BG) == theme.EXTERNAL_TINT
    assert role(model, ("trend", 265598), "symbol", BG) is None


def test_mark_break_then_rows_of_that_contract_highlighted_until_cleared(qtbot):
    model = PositionsModel()
    model.on_position_changed(make_position(strategy="a"))
    model.on_position_changed(make_position(strategy="b", con_id=1, symbol="MSFT"))
    model.flush()
    model.on_reconciliation_break(
        ReconciliationBreakFound("DU1", 265598, "AAPL", 200, 100, "missed fill")
    )
    model.flush()
    assert role(model, ("a", 265598), "symbol", BG) == theme.BREAK_TINT
    assert "missed fill" in role(model, ("a", 265598), "symbol", Qt.ItemDataRole.ToolTipRole)
    assert text(model, ("a", 265598), "stale") == "BREAK"  # a marker, not only a tint
    assert role(model, ("b", 1), "symbol", BG) is None
    assert text(model, ("b", 1), "stale") == ""
    model.clear_break(265598)
    model.flush()
    assert role(model, ("a", 265598), "symbol", BG) is None


def test_set_tick_then_prices_shown_with_tick_decimals(qtbot):
    model = PositionsModel()
    model.on_position_changed(
        make_position(con_id=7, symbol="EUR.USD", sec_type="CASH", last=1.084651)
    )
    model.flush()
    model.set_tick(7, 0.00005)
    model.flush()
    assert text(model, ("trend", 7), "last") == "1.08465"


# ----- orders ---------------------------------------------------------------------------
def test_working_order_then_row_inserted(qtbot):
    model = OrdersModel()
    model.on_order_updated(make_order())
    model.flush()
    assert model.rowCount() == 1
    assert text(model, (1, 11), "limit_price") == "189.50"
    assert text(model, (1, 11), "stop_price") == "\N{EN DASH}"


def test_order_first_seen_done_then_not_shown(qtbot):
    model = OrdersModel()
    model.on_order_updated(make_order(status="Filled", filled=100, remaining=0))
    model.flush()
    assert model.rowCount() == 0


def test_done_order_lingers_then_leaves(qtbot):
    model = OrdersModel(done_linger_ms=60)
    model.on_order_updated(make_order())
    model.flush()
    model.on_order_updated(make_order(status="Filled", filled=100, remaining=0))
    model.flush()
    assert text(model, (1, 11), "status") == "Filled"  # visible for a moment
    qtbot.waitUntil(lambda: model.rowCount() == 0, timeout=1000)


def test_done_order_with_no_linger_then_removed_immediately(qtbot):
    model = OrdersModel(done_linger_ms=0)
    model.on_order_updated(make_order())
    model.on_order_updated(make_order(status="Cancelled"))
    assert model.rowCount() == 0


def test_orders_when_day_starts_then_finished_dropped_and_working_kept(qtbot):
    model = OrdersModel(done_linger_ms=60_000)
    model.on_order_updated(make_order(order_id=1, time=T0))  # a GTC order still working
    model.on_order_updated(make_order(order_id=2, time=T0))
    model.on_order_updated(make_order(order_id=2, status="Filled", filled=100, time=T0))
    model.flush()

    model.start_day(T0 + timedelta(hours=9))

    assert model.working_order_ids() == [1]
    assert model.rowCount() == 1


def test_manual_tws_order_without_order_id_keyed_by_perm_id(qtbot):
    model = OrdersModel()
    model.on_order_updated(make_order(order_id=0, client_id=0, perm_id=777))
    model.flush()
    assert model.keys() == [("perm", 777)]
    assert text(model, ("perm", 777), "order_id") == ""


def test_edit_price_then_modify_requested_and_row_unchanged_until_confirmed(qtbot, signal_log):
    model = OrdersModel()
    model.on_order_updated(make_order())
    model.flush()
    requests = signal_log(model.modifyRequested)
    index = model.index(0, model.column_of("limit_price"))
    assert model.flags(index) & Qt.ItemFlag.ItemIsEditable
    assert model.setData(index, 190.25)
    model.flush()
    assert requests.calls == [(11, "limit_price", 190.25)]
    assert model.row((1, 11))["limit_price"] == 189.5  # the order itself is unchanged
    assert model.data(index, DISPLAY) == "190.25"  # shown as requested (italic, amber)
    assert model.data(index, FG) == theme.colour(theme.AMBER)
    model.on_order_updated(make_order(limit_price=190.25))
    model.flush()
    assert model.row((1, 11))["limit_price"] == 190.25
    assert model.row((1, 11))["_requested"] is None
    assert model.data(index, FG) is None


def test_edit_quantity_then_modify_requested(qtbot, signal_log):
    model = OrdersModel()
    model.on_order_updated(make_order())
    model.flush()
    requests = signal_log(model.modifyRequested)
    assert model.setData(model.index(0, model.column_of("quantity")), "150")
    assert requests.calls == [(11, "quantity", 150.0)]


def test_edit_with_invalid_or_unchanged_value_then_no_request(qtbot, signal_log):
    model = OrdersModel()
    model.on_order_updated(make_order())
    model.flush()
    requests = signal_log(model.modifyRequested)
    index = model.index(0, model.column_of("limit_price"))
    assert not model.setData(index, "abc")
    assert not model.setData(index, -1)
    assert not model.setData(index, 189.5)
    assert len(requests) == 0


def test_rejected_modify_then_requested_mark_cleared(qtbot):
    model = OrdersModel()
    model.on_order_updated(make_order())
    model.flush()
    model.setData(model.index(0, model.column_of("limit_price")), 150.0)
    model.flush()
    model.on_order_rejected(OrderRejected(11, "manual", "AAPL", 0, "price too far"))
    model.flush()
    assert model.row((1, 11))["_requested"] is None
    assert model.row((1, 11))["message"] == "price too far"


def test_editable_cells_follow_order_type_and_state(qtbot):
    model = OrdersModel(done_linger_ms=10_000)
    model.on_order_updated(make_order(order_type="MKT", limit_price=None))
    model.flush()
    flags = lambda col: model.flags(model.index(0, model.column_of(col)))  # noqa: E731
    assert not flags("limit_price") & Qt.ItemFlag.ItemIsEditable
    assert not flags("stop_price") & Qt.ItemFlag.ItemIsEditable
    assert flags("quantity") & Qt.ItemFlag.ItemIsEditable
    assert not flags("symbol") & Qt.ItemFlag.ItemIsEditable
    model.on_order_updated(make_order(order_type="MKT", limit_price=None, status="Filled"))
    model.flush()
    assert not flags("quantity") & Qt.ItemFlag.ItemIsEditable


# ----- fills ----------------------------------------------------------------------------
def test_fill_recorded_then_row_with_side_and_value(qtbot):
    model = FillsModel()
    model.on_fill_recorded(make_fill(quantity=100, price=189.5))
    model.flush()
    assert text(model, "0001.01", "side") == "BUY"
    assert text(model, "0001.01", "notional") == "18,950.00"
    assert text(model, "0001.01", "commission") == "\N{EN DASH}"
    assert role(model, "0001.01", "side", FG) == theme.colour(theme.BUY)


def test_fill_replayed_with_commission_then_same_row_updated(qtbot):
    model = FillsModel()
    model.on_fill_recorded(make_fill())
    model.on_fill_recorded(make_fill(exec_id="0002.01", side="SLD"))
    model.flush()
    model.on_fill_recorded(make_fill(commission=1.05))
    model.flush()
    assert model.rowCount() == 2
    assert text(model, "0001.01", "commission") == "1.05"


def test_fills_load_replaces_rows(qtbot):
    model = FillsModel()
    model.on_fill_recorded(make_fill(exec_id="old"))
    model.flush()
    model.load([make_fill(exec_id=f"e{i}") for i in range(5)])
    assert model.rowCount() == 5
    assert "old" not in model


def test_fills_when_day_starts_then_previous_days_rows_dropped_and_late_replays_ignored(qtbot):
    model = FillsModel()
    model.on_fill_recorded(make_fill(exec_id="yesterday", time=T0))
    model.on_fill_recorded(make_fill(exec_id="today", time=T0 + timedelta(hours=10)))
    midnight = T0 + timedelta(hours=9)

    model.start_day(midnight)  # also applies the pending rows first
    model.on_fill_recorded(make_fill(exec_id="replayed", time=T0 + timedelta(hours=1)))
    model.on_fill_recorded(make_fill(exec_id="new", time=T0 + timedelta(hours=11)))
    model.flush()

    assert sorted(model.keys()) == ["new", "today"]


# ----- audit ----------------------------------------------------------------------------
def test_audit_records_appended_and_results_coloured(qtbot):
    model = AuditModel()
    model.on_audit_recorded(AuditRecorded("gui", "place", "BUY 100 AAPL", "accepted"))
    model.on_audit_recorded(AuditRecorded("gui", "place", "BUY 1e6 AAPL", "refused: size"))
    model.flush()
    col = model.column_of("result")
    assert model.data(model.index(0, col), FG) == theme.colour(theme.GAIN)
    assert model.data(model.index(1, col), FG) == theme.colour(theme.LOSS)


def test_audit_over_capacity_then_oldest_dropped(qtbot):
    model = AuditModel(max_rows=3)
    for i in range(5):
        model.on_audit_recorded(AuditRecorded("gui", "cancel", f"#{i}", "accepted"))
    model.flush()
    assert [r["subject"] for r in model.rows()] == ["#2", "#3", "#4"]


# ----- finished orders and audit actions, as a trader reads them ------------------------
def test_finished_order_then_side_and_status_dimmed_like_the_rest_of_the_row(qtbot):
    model = OrdersModel(done_linger_ms=10_000)
    model.on_order_updated(make_order())
    model.on_order_updated(make_order(order_id=12, perm_id=5012, action="SELL"))
    model.on_order_updated(make_order(order_id=13, perm_id=5013, action="SELL"))
    model.flush()
    assert role(model, (1, 11), "action", FG) == theme.colour(theme.BUY)
    model.on_order_updated(make_order(status="Filled", filled=100.0, remaining=0.0))
    model.on_order_updated(make_order(order_id=12, perm_id=5012, action="SELL", status="Cancelled"))
    model.flush()
    faint = theme.colour(theme.TEXT_FAINT)
    for key in ((1, 11), (1, 12)):
        for column in ("action", "status", "symbol"):
            assert role(model, key, column, FG) == faint, (key, column)
    # A working order keeps its colours.
    assert role(model, (1, 13), "action", FG) == theme.colour(theme.SELL)
    assert role(model, (1, 13), "status", FG) == theme.colour(theme.ACCENT)


def test_audit_action_shown_as_words_with_the_raw_name_in_its_tooltip(qtbot):
    model = AuditModel()
    model.on_audit_recorded(
        AuditRecorded("risk", "set_trading_state", "meanrev: ACTIVE -> REDUCING", "loss 80%")
    )
    model.on_audit_recorded(AuditRecorded("gui", "place", "BUY 100 AAPL LMT 189.50", "sent"))
    model.flush()
    col = model.column_of("action")
    loud = model.index(0, col)
    assert model.data(loud, DISPLAY) == "Set trading state"
    assert model.data(loud, Qt.ItemDataRole.ToolTipRole) == "set_trading_state"
    assert model.data(loud, FG) == theme.colour(theme.AMBER)  # still stands out
    assert model.data(loud, Qt.ItemDataRole.FontRole).bold()
    assert model.data(model.index(1, col), DISPLAY) == "Place"
    assert model.data(model.index(1, col), FG) is None


def test_lost_order_stays_in_red_with_its_reason_while_not_sent_lingers(qtbot):
    from core.events import LOST, NOT_SENT

    model = OrdersModel(done_linger_ms=50, frame_ms=0)
    for oid in (1, 2):
        model.on_order_updated(make_order(order_id=oid))
    model.on_order_updated(make_order(order_id=1, status=LOST, message="the gateway lost it"))
    model.on_order_updated(make_order(order_id=2, status=NOT_SENT, message="HALTED"))
    model.flush()

    def lingered() -> bool:
        model.flush()
        return 2 not in [r["order_id"] for r in model.rows()]

    # The NOT_SENT order leaves after its linger; the LOST one, updated first, would have
    # left before it (same linger, Qt fires equal timers in the order started) had it one.
    qtbot.waitUntil(lingered, timeout=5000)
    assert [r["order_id"] for r in model.rows()] == [1]
    status = model.index(0, [c.key for c in model.columns].index("status"))
    assert model.data(status, Qt.ItemDataRole.ToolTipRole) == "the gateway lost it"
    assert (
        model.data(status, Qt.ItemDataRole.ForegroundRole).name() == theme.colour(theme.LOSS).name()
    )


def test_working_order_while_link_down_then_marked_unconfirmed_until_confirmed(qtbot):
    model = OrdersModel(frame_ms=0)
    model.on_order_updated(make_order())
    model.on_order_updated(make_order(link_down=True, message="link down: not confirmed"))
    model.flush()

    assert text(model, (1, 11), "status") == "link down · Submitted"
    status = model.index(0, [c.key for c in model.columns].index("status"))
    assert (
        model.data(status, Qt.ItemDataRole.ForegroundRole).name()
        == theme.colour(theme.AMBER).name()
    )
    assert model.working_order_ids() == [11]  # still counted as working (the quit prompt)

    model.on_order_updated(make_order())  # IB reports it again after the reconnect
    model.flush()
    assert text(model, (1, 11), "status") == "Submitted"


def test_order_ended_while_away_stays_while_one_ended_in_sight_lingers(qtbot):
    model = OrdersModel(done_linger_ms=50, frame_ms=0)
    for oid in (1, 2):
        model.on_order_updated(make_order(order_id=oid))
    model.on_order_updated(make_order(order_id=1, status="Cancelled", while_away=True))
    model.on_order_updated(make_order(order_id=2, status="Cancelled"))
    model.flush()

    def lingered() -> bool:
        model.flush()
        return 2 not in [r["order_id"] for r in model.rows()]

    qtbot.waitUntil(lingered, timeout=5000)
    assert [(r["order_id"], r["status"]) for r in model.rows()] == [(1, "Cancelled")]
