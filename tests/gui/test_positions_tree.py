"""Positions grouped by strategy: strategy rows with totals, positions beneath, kept in
step with the flat grid; the grouped view filters, sorts and acts like the flat one."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt

from gui import theme
from gui.models.base import KEY_ROLE, ROW_ROLE
from gui.models.positions import PositionsModel
from gui.models.positions_tree import PositionsTreeModel
from gui.widgets.positions_view import PositionsView
from tests.gui.conftest import make_position

DISPLAY = Qt.ItemDataRole.DisplayRole
FG = Qt.ItemDataRole.ForegroundRole

BOOK = (
    # strategy, symbol, con_id, quantity, market value, unrealized, daily
    ("trend", "AAPL", 1, 100, 19_000.0, 50.0, 10.0),
    ("trend", "MSFT", 2, 0, 0.0, 0.0, -5.0),
    ("meanrev", "SPY", 3, -50, -25_000.0, -20.0, -30.0),
    ("trend", "NVDA", 4, 10, 1_200.0, 100.0, 40.0),
)


def feed(model: PositionsModel, rows=BOOK) -> None:
    for strategy, symbol, con_id, qty, mv, unreal, daily in rows:
        model.on_position_changed(
            make_position(
                strategy=strategy,
                symbol=symbol,
                con_id=con_id,
                quantity=qty,
                market_value=mv,
                unrealized_pnl=unreal,
                realized_pnl=0.0,
                daily_pnl=daily,
            )
        )
    model.flush()


def cell(model, index: QModelIndex, key: str, role=DISPLAY):
    source = model.source if isinstance(model, PositionsTreeModel) else model
    return model.data(index.siblingAtColumn(source.column_of(key)), role)


def children(model: PositionsTreeModel, name: str) -> list[str]:
    parent = model.strategy_index(name)
    return [cell(model, model.index(r, 0, parent), "symbol") for r in range(model.rowCount(parent))]


def make_tree(qtbot) -> tuple[PositionsModel, PositionsTreeModel]:
    flat = PositionsModel(frame_ms=0)
    tree = PositionsTreeModel(flat)
    feed(flat)
    return flat, tree


def test_one_row_per_strategy_with_its_positions_beneath(qtbot):
    _, tree = make_tree(qtbot)

    assert tree.strategies() == ["trend", "meanrev"]
    assert children(tree, "trend") == ["AAPL", "MSFT", "NVDA"]
    assert children(tree, "meanrev") == ["SPY"]
    trend = tree.strategy_index("trend")
    assert cell(tree, trend, "symbol") == "3 positions"
    assert tree.data(trend, ROW_ROLE) is None
    aapl = tree.index(0, 0, trend)
    assert tree.data(aapl, KEY_ROLE) == ("trend", 1)
    assert tree.rowCount(aapl) == 0


def test_strategy_row_shows_totals_coloured_as_gains_and_losses(qtbot):
    _, tree = make_tree(qtbot)
    trend, meanrev = tree.strategy_index("trend"), tree.strategy_index("meanrev")

    assert cell(tree, trend, "market_value") == "20,200.00"
    assert cell(tree, trend, "unrealized_pnl") == "+150.00"
    assert cell(tree, trend, "daily_pnl") == "+45.00"
    assert cell(tree, meanrev, "unrealized_pnl") == "-20.00"
    assert cell(tree, trend, "unrealized_pnl", FG) == theme.colour(theme.GAIN)
    assert cell(tree, meanrev, "unrealized_pnl", FG) == theme.colour(theme.LOSS)


def test_strategy_row_counts_its_stale_open_positions(qtbot):
    flat, tree = make_tree(qtbot)
    for con_id in (1, 2):  # AAPL (open) and MSFT (flat)
        flat.patch(("trend", con_id), stale=True)
    flat.flush()

    trend = tree.strategy_index("trend")
    assert cell(tree, trend, "stale") == "1 STALE"
    assert cell(tree, trend, "stale", FG) == theme.colour(theme.AMBER)
    assert cell(tree, tree.strategy_index("meanrev"), "stale") == ""


def test_position_change_updates_its_row_and_the_strategy_total(qtbot, signal_log):
    flat, tree = make_tree(qtbot)
    changed = signal_log(tree.dataChanged)

    feed(flat, [("trend", "NVDA", 4, 10, 1_300.0, 200.0, 140.0)])

    trend = tree.strategy_index("trend")
    nvda = tree.index(2, 0, trend)
    assert cell(tree, nvda, "unrealized_pnl") == "+200.00"
    assert cell(tree, trend, "unrealized_pnl") == "+250.00"
    touched = {(i.parent().isValid(), i.row()) for call in changed.calls for i in call[:2]}
    assert (True, 2) in touched  # the NVDA row under its strategy
    assert (False, trend.row()) in touched  # the strategy row's totals


def test_new_positions_join_their_strategy_or_start_a_new_one(qtbot, signal_log):
    flat, tree = make_tree(qtbot)
    inserted = signal_log(tree.rowsInserted)

    feed(
        flat,
        [
            ("meanrev", "QQQ", 5, 5, 2_000.0, 1.0, 1.0),
            ("pairs", "KO", 6, 7, 400.0, -2.0, -2.0),
        ],
    )

    assert children(tree, "meanrev") == ["SPY", "QQQ"]
    assert tree.strategies() == ["trend", "meanrev", "pairs"]
    assert cell(tree, tree.strategy_index("meanrev"), "symbol") == "2 positions"
    assert len(inserted) == 2


def test_reset_of_the_flat_grid_empties_the_tree(qtbot):
    flat, tree = make_tree(qtbot)
    flat.clear()
    assert tree.strategies() == []
    assert tree.rowCount() == 0


# ----- the grouped view -----------------------------------------------------------------
def grouped_view(qtbot) -> PositionsView:
    view = PositionsView(PositionsModel(frame_ms=0))
    qtbot.addWidget(view)
    feed(view.positions)
    view.group_by_strategy.click()
    view.tree.proxy.resort()  # what the throttle does within a quarter second
    return view


def group_index(view: PositionsView, name: str) -> QModelIndex:
    proxy = view.tree.proxy
    return next(
        proxy.index(g, 0) for g in range(proxy.rowCount()) if proxy.index(g, 0).data() == name
    )


def shown(view: PositionsView) -> dict[str, list[str]]:
    """Strategy -> symbols, as the grouped view shows them (sorted, filtered)."""
    proxy = view.tree.proxy
    sym = view.positions.column_of("symbol")
    out = {}
    for g in range(proxy.rowCount()):
        group = proxy.index(g, 0)
        out[group.data()] = [
            proxy.index(r, sym, group).data() for r in range(proxy.rowCount(group))
        ]
    return out


def test_group_toggle_switches_to_the_tree_and_back(qtbot):
    view = grouped_view(qtbot)
    assert view.is_grouped()
    assert view.stack.currentWidget() is view.tree
    assert shown(view) == {"meanrev": ["SPY"], "trend": ["AAPL", "MSFT", "NVDA"]}
    assert view.tree.isExpanded(view.tree.proxy.index(0, 0))

    view.group_by_strategy.click()
    assert not view.is_grouped()
    assert view.stack.currentWidget() is view.view


def test_filters_apply_to_the_grouped_view(qtbot):
    view = grouped_view(qtbot)

    view.filter_edit.setText("nvda")
    assert shown(view) == {"trend": ["NVDA"]}
    view.filter_edit.clear()

    view.hide_flat.setChecked(True)
    assert shown(view) == {"meanrev": ["SPY"], "trend": ["AAPL", "NVDA"]}

    view.strategy_combo.setCurrentText("meanrev")
    assert shown(view) == {"meanrev": ["SPY"]}


def test_sorting_orders_strategies_by_total_and_positions_within_each(qtbot):
    view = grouped_view(qtbot)

    view.tree.sortByColumn(view.positions.column_of("unrealized_pnl"), Qt.SortOrder.DescendingOrder)

    assert list(shown(view).items()) == [
        ("trend", ["NVDA", "AAPL", "MSFT"]),  # +150 total
        ("meanrev", ["SPY"]),  # -20
    ]


def test_double_click_and_context_menu_on_a_grouped_position(qtbot, signal_log):
    view = grouped_view(qtbot)
    tickets = signal_log(view.sendToTicketRequested)
    proxy = view.tree.proxy
    spy = proxy.index(0, 0, group_index(view, "meanrev"))

    view.tree.doubleClicked.emit(spy)
    view.tree.doubleClicked.emit(group_index(view, "trend"))  # a strategy row: no order

    assert [e.symbol for e in (c[0] for c in tickets.calls)] == ["SPY"]
    view.tree.selectionModel().select(
        spy,
        view.tree.selectionModel().SelectionFlag.ClearAndSelect
        | view.tree.selectionModel().SelectionFlag.Rows,
    )
    assert [e.symbol for e in view.selected_positions()] == ["SPY"]


def test_a_collapsed_strategy_stays_collapsed_when_positions_arrive(qtbot):
    view = grouped_view(qtbot)
    view.tree.collapse(group_index(view, "trend"))

    feed(view.positions, [("trend", "AMD", 7, 3, 300.0, 3.0, 3.0)])
    feed(view.positions, [("pairs", "KO", 8, 7, 400.0, -2.0, -2.0)])
    view.tree.proxy.resort()

    assert shown(view)["trend"] == ["AAPL", "MSFT", "NVDA", "AMD"]  # ties: arrival order
    assert not view.tree.isExpanded(group_index(view, "trend"))
    assert view.tree.isExpanded(group_index(view, "pairs"))
    assert view.tree.isExpanded(group_index(view, "meanrev"))
