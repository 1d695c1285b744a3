"""KeyedTableModel and TableProxy: inserts, targeted dataChanged, coalescing, sorting,
filtering, and placeholder rendering."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt

from gui.models.base import (
    RIGHT,
    SORT_ROLE,
    AppendOnlyModel,
    Column,
    KeyedTableModel,
    TableProxy,
)
from gui.models.formatting import (
    PLACEHOLDER,
    decimals_for_tick,
    fmt_money,
    fmt_pnl,
    fmt_price,
    fmt_quantity,
    number,
)

DISPLAY = Qt.ItemDataRole.DisplayRole
COLUMNS = (
    Column("name", "Name"),
    Column("qty", "Qty", fmt_quantity, RIGHT),
    Column("price", "Price", fmt_price, RIGHT),
    Column("pnl", "P&L", fmt_pnl, RIGHT),
)


def model_with(qtbot, rows: dict | None = None) -> KeyedTableModel:
    model = KeyedTableModel(COLUMNS)
    for key, row in (rows or {}).items():
        model.upsert(key, row)
    model.flush()
    return model


def test_upsert_new_key_when_flushed_then_one_rows_inserted(qtbot, signal_log):
    model = KeyedTableModel(COLUMNS)
    inserted = signal_log(model.rowsInserted)
    model.upsert("a", {"name": "a", "qty": 1})
    assert model.rowCount() == 0  # not applied until the frame
    model.flush()
    assert model.rowCount() == 1
    assert len(inserted) == 1
    assert model.data(model.index(0, 0), DISPLAY) == "a"


def test_upsert_existing_key_then_data_changed_for_that_row_and_changed_cells_only(
    qtbot, signal_log
):
    model = model_with(
        qtbot,
        {k: {"name": k, "qty": 1, "price": 10.0, "pnl": 0.0} for k in ("a", "b", "c")},
    )
    changed = signal_log(model.dataChanged)
    inserted = signal_log(model.rowsInserted)
    model.upsert("b", {"name": "b", "qty": 1, "price": 11.0, "pnl": 0.0})
    model.flush()
    assert len(changed) == 1
    top_left, bottom_right = changed.calls[0][0], changed.calls[0][1]
    assert (top_left.row(), bottom_right.row()) == (1, 1)
    price_col = model.column_of("price")
    assert (top_left.column(), bottom_right.column()) == (price_col, price_col)
    assert len(inserted) == 0


def test_upsert_identical_row_then_no_data_changed(qtbot, signal_log):
    model = model_with(qtbot, {"a": {"name": "a", "qty": 1, "pnl": math.nan}})
    changed = signal_log(model.dataChanged)
    model.upsert("a", {"name": "a", "qty": 1, "pnl": math.nan})
    model.flush()
    assert len(changed) == 0


def test_burst_of_1000_upserts_of_new_keys_then_one_insert_batch(qtbot, signal_log):
    model = KeyedTableModel(COLUMNS)
    inserted = signal_log(model.rowsInserted)
    flushed = signal_log(model.flushed)
    with qtbot.waitSignal(model.flushed, timeout=1000):
        for i in range(1000):
            model.upsert(i, {"name": f"s{i}", "qty": i})
        assert model.rowCount() == 0
    assert model.rowCount() == 1000
    assert len(inserted) == 1
    assert len(flushed) == 1
    assert not model.has_pending()  # one batch took it all: nothing left for another
    model.flush()
    assert len(flushed) == 1


def test_burst_of_1000_updates_to_existing_rows_then_one_data_changed(qtbot, signal_log):
    model = model_with(qtbot, {i: {"name": f"s{i}", "qty": 0} for i in range(1000)})
    changed = signal_log(model.dataChanged)
    with qtbot.waitSignal(model.flushed, timeout=1000):
        for i in range(1000):
            model.upsert(i, {"name": f"s{i}", "qty": i + 1})
    assert len(changed) == 1  # adjacent rows merge into one range
    top_left, bottom_right = changed.calls[0][0], changed.calls[0][1]
    assert (top_left.row(), bottom_right.row()) == (0, 999)
    qty = model.column_of("qty")
    assert (top_left.column(), bottom_right.column()) == (qty, qty)


def test_burst_of_1000_upserts_of_one_key_then_latest_wins_with_one_data_changed(qtbot, signal_log):
    model = model_with(qtbot, {"x": {"name": "x", "qty": 0}, "y": {"name": "y", "qty": 0}})
    changed = signal_log(model.dataChanged)
    with qtbot.waitSignal(model.flushed, timeout=1000):
        for i in range(1000):
            model.upsert("y", {"name": "y", "qty": i})
    assert len(changed) == 1
    assert changed.calls[0][0].row() == 1
    assert model.row("y")["qty"] == 999


def test_updates_to_non_adjacent_rows_then_one_data_changed_per_row(qtbot, signal_log):
    model = model_with(qtbot, {i: {"name": str(i), "qty": 0} for i in range(5)})
    changed = signal_log(model.dataChanged)
    model.upsert(0, {"name": "0", "qty": 1})
    model.upsert(3, {"name": "3", "qty": 1})
    model.flush()
    assert sorted(c[0].row() for c in changed.calls) == [0, 3]


def test_patch_changes_fields_of_existing_row(qtbot):
    model = model_with(qtbot, {"a": {"name": "a", "qty": 1, "price": 2.0}})
    assert model.patch("a", qty=5)
    assert not model.patch("missing", qty=5)
    model.flush()
    assert model.row("a") == {"name": "a", "qty": 5, "price": 2.0}


def test_payload_fields_change_then_no_repaint(qtbot, signal_log):
    model = model_with(qtbot, {"a": {"name": "a", "__event": object()}})
    changed = signal_log(model.dataChanged)
    model.upsert("a", {"name": "a", "__event": object()})
    model.flush()
    assert len(changed) == 0


def test_hidden_field_change_or_removal_then_whole_row_repainted(qtbot, signal_log):
    model = model_with(qtbot, {"a": {"name": "a", "qty": 1, "price": 2.0, "_tick": 2}})
    changed = signal_log(model.dataChanged)
    last = len(COLUMNS) - 1

    model.patch("a", _tick=4)
    model.flush()
    model.upsert("a", {"name": "a", "qty": 1, "price": 2.0})  # _tick gone
    model.flush()

    spans = [(c[0].column(), c[1].column()) for c in changed.calls]
    assert spans == [(0, last), (0, last)]


def test_nan_to_nan_is_no_change(qtbot, signal_log):
    model = model_with(qtbot, {"a": {"name": "a", "price": math.nan}})
    changed = signal_log(model.dataChanged)
    model.upsert("a", {"name": "a", "price": float("nan")})
    model.flush()
    assert len(changed) == 0


def test_remove_key_then_row_removed_and_later_keys_reindexed(qtbot, signal_log):
    model = model_with(qtbot, {k: {"name": k} for k in "abc"})
    removed = signal_log(model.rowsRemoved)
    assert model.remove("a")
    assert len(removed) == 1
    assert model.keys() == ["b", "c"]
    assert model.position("c") == 1
    model.upsert("c", {"name": "C"})
    model.flush()
    assert model.data(model.index(1, 0), DISPLAY) == "C"
    assert not model.remove("zzz")


def test_remove_key_with_pending_update_then_update_dropped(qtbot):
    model = model_with(qtbot, {"a": {"name": "a"}})
    model.upsert("a", {"name": "A"})
    model.remove("a")
    model.flush()
    assert model.rowCount() == 0


def test_reset_then_one_model_reset_and_pending_dropped(qtbot, signal_log):
    model = model_with(qtbot, {"a": {"name": "a"}})
    resets = signal_log(model.modelReset)
    model.upsert("z", {"name": "z"})
    model.reset([("b", {"name": "b"}), ("c", {"name": "c"})])
    model.flush()
    assert len(resets) == 1
    assert model.keys() == ["b", "c"]


def test_append_only_model_when_over_cap_then_oldest_rows_dropped(qtbot):
    model = AppendOnlyModel(COLUMNS, max_rows=10)
    for i in range(25):
        model.append({"name": f"r{i}"})
    model.flush()
    assert model.rowCount() == 10
    assert model.row_at(0)["name"] == "r15"
    assert model.row_at(9)["name"] == "r24"


def test_proxy_sort_numeric_on_raw_value_not_text(qtbot):
    model = model_with(
        qtbot, {k: {"name": k, "qty": q} for k, q in zip("abcd", (9, 100, 10, 1_000), strict=True)}
    )
    proxy = TableProxy(model)
    proxy.sort(model.column_of("qty"), Qt.SortOrder.AscendingOrder)
    order = [proxy.index(r, 0).data() for r in range(proxy.rowCount())]
    assert order == ["a", "c", "b", "d"]  # 9, 10, 100, 1,000 (text sort: "1,000" < "10")
    assert proxy.index(0, model.column_of("qty")).data(SORT_ROLE) == 9


def test_proxy_sort_missing_values_last_in_both_orders(qtbot):
    rows = {
        "a": {"name": "a", "pnl": 5.0},
        "b": {"name": "b", "pnl": None},
        "c": {"name": "c", "pnl": -3.0},
        "d": {"name": "d", "pnl": math.nan},
    }
    model = model_with(qtbot, rows)
    proxy = TableProxy(model)
    col = model.column_of("pnl")
    proxy.sort(col, Qt.SortOrder.AscendingOrder)
    assert [proxy.index(r, 0).data() for r in range(2)] == ["c", "a"]
    proxy.sort(col, Qt.SortOrder.DescendingOrder)
    assert [proxy.index(r, 0).data() for r in range(2)] == ["a", "c"]


def test_proxy_when_a_value_changes_then_resorted_soon_not_per_tick(qtbot):
    model = model_with(
        qtbot, {k: {"name": k, "qty": q} for k, q in zip("abc", (1, 2, 3), strict=True)}
    )
    proxy = TableProxy(model, resort_ms=200)
    proxy.sort(model.column_of("qty"), Qt.SortOrder.AscendingOrder)
    names = lambda: [proxy.index(r, 0).data() for r in range(proxy.rowCount())]  # noqa: E731
    model.upsert("a", {"name": "a", "qty": 5})
    model.flush()
    qtbot.waitUntil(lambda: names() == ["b", "c", "a"], timeout=1000)  # a lone change: at once
    model.upsert("b", {"name": "b", "qty": 9})
    model.flush()
    assert names() == ["b", "c", "a"]  # within the throttle window: not yet
    qtbot.waitUntil(lambda: names() == ["c", "a", "b"], timeout=1000)


def test_proxy_with_resort_ms_zero_then_resorted_on_every_change(qtbot):
    model = model_with(qtbot, {k: {"name": k, "qty": q} for k, q in zip("ab", (1, 2), strict=True)})
    proxy = TableProxy(model, resort_ms=0)
    proxy.sort(model.column_of("qty"), Qt.SortOrder.AscendingOrder)
    model.upsert("a", {"name": "a", "qty": 3})
    model.flush()
    assert [proxy.index(r, 0).data() for r in range(2)] == ["b", "a"]


def test_proxy_when_a_value_changes_then_filters_reapplied(qtbot):
    model = model_with(qtbot, {k: {"name": k, "qty": q} for k, q in zip("ab", (1, 2), strict=True)})
    proxy = TableProxy(model, resort_ms=50)
    proxy.set_predicate("open", lambda row: row["qty"] != 0)
    model.upsert("a", {"name": "a", "qty": 0})
    model.flush()
    qtbot.waitUntil(lambda: proxy.rowCount() == 1, timeout=1000)


def test_proxy_text_filter_keeps_rows_matching_every_word(qtbot):
    rows = {1: {"name": "AAPL trend"}, 2: {"name": "AAPL manual"}, 3: {"name": "MSFT trend"}}
    proxy = TableProxy(model_with(qtbot, rows))
    proxy.set_text_filter("aapl")
    assert proxy.rowCount() == 2
    proxy.set_text_filter("trend  aapl")
    assert proxy.rowCount() == 1
    proxy.set_text_filter("")
    assert proxy.rowCount() == 3


def test_proxy_text_filter_matches_displayed_text(qtbot):
    proxy = TableProxy(model_with(qtbot, {1: {"name": "x", "qty": 12345}}))
    proxy.set_text_filter("12,345")
    assert proxy.rowCount() == 1


def test_proxy_predicate_filters_rows_and_can_be_removed(qtbot):
    proxy = TableProxy(model_with(qtbot, {i: {"name": str(i), "qty": i} for i in range(6)}))
    proxy.set_predicate("even", lambda row: row["qty"] % 2 == 0)
    assert proxy.rowCount() == 3
    proxy.set_predicate("even", None)
    assert proxy.rowCount() == 6


def test_missing_values_render_as_placeholder_never_nan_or_ib_unset(qtbot):
    rows = {
        "none": {"name": None, "price": None, "pnl": None, "qty": None},
        "nan": {"name": "n", "price": math.nan, "pnl": math.inf, "qty": math.nan},
        "unset": {"name": "u", "price": 1.7976931348623157e308, "pnl": -1.7976931348623157e308},
    }
    model = model_with(qtbot, rows)
    texts = [
        model.data(model.index(r, c), DISPLAY)
        for r in range(model.rowCount())
        for c in range(1, model.columnCount())
    ]
    assert set(texts) == {PLACEHOLDER}
    assert model.data(model.index(0, 0), DISPLAY) == ""
    for text in texts:
        assert "nan" not in text.lower() and "e+308" not in text and "inf" not in text.lower()


def test_number_formats_thousands_and_decimals():
    assert number(1234567.891) == "1,234,567.89"
    assert number(-0.004) == "0.00"
    assert fmt_money(1e6) == "1,000,000.00"
    assert fmt_pnl(12.5) == "+12.50"
    assert fmt_pnl(-12.5) == "-12.50"
    assert fmt_pnl(0.001) == "0.00"


def test_price_decimals_follow_the_contract_tick():
    assert decimals_for_tick(0.01) == 2
    assert decimals_for_tick(0.25) == 2
    assert decimals_for_tick(0.00005) == 5
    assert decimals_for_tick(1) == 0
    assert decimals_for_tick(None) == 2
    assert fmt_price(1.084651, {"_decimals": 5}) == "1.08465"
    assert fmt_price(5187.25, {}) == "5,187.25"


def test_quantities_of_stocks_have_no_decimals_fx_keeps_fractions():
    assert fmt_quantity(1200.0, {"sec_type": "STK"}) == "1,200"
    assert fmt_quantity(-300.0, {"sec_type": "STK"}) == "-300"
    assert fmt_quantity(0.125, {"sec_type": "CRYPTO"}) == "0.125"
    assert fmt_quantity(25000.0, {"sec_type": "CASH"}) == "25,000"


def test_right_aligned_columns_use_the_number_font_and_alignment(qtbot):
    model = model_with(qtbot, {"a": {"name": "a", "qty": 1}})
    index = model.index(0, model.column_of("qty"))
    assert model.data(index, Qt.ItemDataRole.TextAlignmentRole) & Qt.AlignmentFlag.AlignRight
    assert model.data(index, Qt.ItemDataRole.FontRole).fixedPitch()
    assert model.data(model.index(0, 0), Qt.ItemDataRole.FontRole) is None
