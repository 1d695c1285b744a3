"""The positions grouped by strategy: a tree over :class:`PositionsModel`.

One top-level row per strategy shows the strategy's totals (market value, unrealized,
realized and daily P&L, % of net liquidation) and how many positions it holds; its
positions sit beneath, each cell answered by the flat model (same text, colours,
tints and STALE marker as the flat grid). The tree holds no data of its own: it maps
rows and forwards the flat model's signals, so one set of events feeds both views.

The flat model only appends rows and resets (positions never leave the grid during a
session: a flat position still carries the day's realized P&L); a removal is still
handled, as a reset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSize,
    Qt,
)
from PySide6.QtGui import QFont

from gui import theme
from gui.models.base import KEY_ROLE, ROW_ROLE, SORT_ROLE, Column
from gui.models.formatting import is_missing
from gui.models.positions import PositionsModel

AnyIndex = QModelIndex | QPersistentModelIndex

#: Columns a strategy row sums over its positions.
TOTAL_KEYS = ("market_value", "unrealized_pnl", "realized_pnl", "daily_pnl", "pct_nlv")
#: Columns whose totals are coloured as gains and losses.
PNL_KEYS = frozenset({"unrealized_pnl", "realized_pnl", "daily_pnl"})

_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole)
_BACKGROUND = int(Qt.ItemDataRole.BackgroundRole)
_FONT = int(Qt.ItemDataRole.FontRole)
_ALIGN = int(Qt.ItemDataRole.TextAlignmentRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_SIZE_HINT = int(Qt.ItemDataRole.SizeHintRole)
_SORT = int(SORT_ROLE)
_KEY = int(KEY_ROLE)
_ROW = int(ROW_ROLE)
_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
#: internalId of a strategy (top-level) row; a position row stores its group + 1.
_TOP = 0


class PositionsTreeModel(QAbstractItemModel):
    """Strategies with their totals, their positions beneath (see the module docstring).

    Keys of position rows (``KEY_ROLE``) are the flat model's; a strategy row's key is
    ``("strategy", name)`` and it has no row dict (``ROW_ROLE`` is None).
    """

    def __init__(
        self, source: PositionsModel, parent: QObject | None = None, *, row_height: int = 0
    ) -> None:
        super().__init__(parent)
        # Answered to SizeHintRole so Qt's delegate sizes rows without styling each
        # cell: the tree view asks again whenever its first row changes.
        self._size_hint = QSize(-1, row_height) if row_height > 0 else None
        self._source = source
        self._columns: tuple[Column, ...] = source.column_specs
        # What a change of positions can change on a strategy row: its totals and the
        # STALE count (not its name: a grid sorted by strategy need not re-sort).
        self._strategy_col = source.column_of("strategy")
        self._faint = theme.colour(theme.TEXT_FAINT)
        summary_cols = [source.column_of(k) for k in (*TOTAL_KEYS, "stale")]
        self._summary_span = (min(summary_cols), max(summary_cols))
        self._groups: list[str] = []
        self._members: list[list[int]] = []  # flat rows of each group, ascending
        self._where: dict[int, tuple[int, int]] = {}  # flat row -> (group, child)
        self._totals: list[dict[str, float | None] | None] = []
        self._bold = QFont(theme.ui_font())
        self._bold.setBold(True)
        self._bold_mono = QFont(theme.number_font())
        self._bold_mono.setBold(True)
        self._rebuild()
        source.modelReset.connect(self._on_reset)
        source.rowsRemoved.connect(self._on_reset)
        source.rowsInserted.connect(self._on_rows_inserted)
        source.dataChanged.connect(self._on_data_changed)

    # ----- public API ---------------------------------------------------------------
    @property
    def source(self) -> PositionsModel:
        """The flat positions model."""
        return self._source

    def strategies(self) -> list[str]:
        """The strategy rows, in model order."""
        return list(self._groups)

    def strategy_index(self, name: str, column: int = 0) -> QModelIndex:
        """The index of a strategy's row (invalid if it has none)."""
        group = self._group_of.get(name)
        return QModelIndex() if group is None else self.index(group, column)

    def totals(self, name: str) -> dict[str, float | None]:
        """A strategy's sums of :data:`TOTAL_KEYS` (None where no position has a value)."""
        totals = dict(self._group_totals(self._group_of[name]))
        del totals["stale"]
        return totals

    def source_row(self, index: AnyIndex) -> int | None:
        """The flat model row of a position index (None for a strategy row)."""
        if not index.isValid() or index.internalId() == _TOP:
            return None
        return self._members[index.internalId() - 1][index.row()]

    # ----- QAbstractItemModel -------------------------------------------------------
    def index(self, row: int, column: int, parent: AnyIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        if not 0 <= column < len(self._columns):
            return QModelIndex()
        if not parent.isValid():
            if 0 <= row < len(self._groups):
                return self.createIndex(row, column, _TOP)
            return QModelIndex()
        if parent.internalId() != _TOP:
            return QModelIndex()  # positions have no children
        group = parent.row()
        if 0 <= group < len(self._members) and 0 <= row < len(self._members[group]):
            return self.createIndex(row, column, group + 1)
        return QModelIndex()

    def parent(self, index: AnyIndex | None = None) -> Any:  # type: ignore[override]
        if index is None:  # QObject.parent()
            return super().parent()
        if not index.isValid() or index.internalId() == _TOP:
            return QModelIndex()
        return self.createIndex(index.internalId() - 1, 0, _TOP)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        if not parent.isValid():
            return len(self._groups)
        if parent.internalId() == _TOP and parent.column() == 0:
            return len(self._members[parent.row()])
        return 0

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return len(self._columns)

    def hasChildren(self, parent: AnyIndex = QModelIndex()) -> bool:  # noqa: B008
        return self.rowCount(parent) > 0

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        return _FLAGS if index.isValid() else Qt.ItemFlag.NoItemFlags

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        return self._source.headerData(section, orientation, role)

    def data(self, index: AnyIndex, role: int = _DISPLAY) -> Any:
        if not index.isValid():
            return None
        if role == _SIZE_HINT:
            return self._size_hint
        group_id = index.internalId()
        if group_id != _TOP:
            if role == _FOREGROUND and index.column() == self._strategy_col:
                return self._faint  # the strategy row above already names it
            flat = self._members[group_id - 1][index.row()]
            return self._source.data(self._source.index(flat, index.column()), role)
        return self._strategy_data(index.row(), self._columns[index.column()], role)

    # ----- strategy rows ------------------------------------------------------------
    def _strategy_data(self, group: int, column: Column, role: int) -> Any:
        key = column.key
        if role == _DISPLAY:
            if key == "strategy":
                return self._groups[group]
            if key == "symbol":
                n = len(self._members[group])
                return f"{n} position" if n == 1 else f"{n} positions"
            if key == "stale":
                stale = self._group_totals(group)["stale"]
                return f"{stale:.0f} STALE" if stale else ""
            if key in TOTAL_KEYS:
                return column.fmt(self._group_totals(group)[key], {"_decimals": 2})
            return ""
        if role == _FOREGROUND:
            if key in PNL_KEYS:
                return theme.pnl_colour(self._group_totals(group)[key])
            if key == "stale" and self._group_totals(group)["stale"]:
                return theme.colour(theme.AMBER)
            return None
        if role == _FONT:
            return self._bold_mono if column.is_mono else self._bold
        if role == _BACKGROUND:
            return theme.GROUP_TINT
        if role == _ALIGN:
            return int(column.align)
        if role == _SORT:
            if key == "strategy":
                return self._groups[group]
            if key == "symbol":
                return len(self._members[group])
            return self._group_totals(group).get(key)
        if role == _KEY:
            return ("strategy", self._groups[group])
        if role == _TOOLTIP and key in TOTAL_KEYS:
            return f"Total of the {self._groups[group]} strategy's positions"
        return None  # ROW_ROLE included: a strategy row has no row dict

    def _group_totals(self, group: int) -> dict[str, float | None]:
        """Sums of :data:`TOTAL_KEYS` and the count of stale open positions (``stale``),
        computed once per change of the group."""
        totals = self._totals[group]
        if totals is None:
            sums: dict[str, float | None] = dict.fromkeys(TOTAL_KEYS)
            stale = 0
            for flat in self._members[group]:
                row = self._source.row_at(flat)
                for k in TOTAL_KEYS:
                    v = row.get(k)
                    if not is_missing(v):
                        sums[k] = (sums[k] or 0.0) + v
                if row.get("stale") and row.get("quantity"):
                    stale += 1
            sums["stale"] = stale
            totals = self._totals[group] = sums
        return totals

    # ----- following the flat model -------------------------------------------------
    def _rebuild(self) -> None:
        self._groups, self._members, self._where = [], [], {}
        self._group_of: dict[str, int] = {}
        for flat in range(self._source.rowCount()):
            name = str(self._source.row_at(flat).get("strategy"))
            group = self._group_of.get(name)
            if group is None:
                group = self._group_of[name] = len(self._groups)
                self._groups.append(name)
                self._members.append([])
            self._where[flat] = (group, len(self._members[group]))
            self._members[group].append(flat)
        self._totals = [None] * len(self._groups)

    def _on_reset(self, *args: Any) -> None:
        self.beginResetModel()
        self._rebuild()
        self.endResetModel()

    def _on_rows_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        # One insertion per group and one for all new groups: at connect the flat model
        # takes in hundreds of positions in one batch, and each insertion signal costs
        # the proxy and the view a pass over their rows.
        batches: dict[str, list[int]] = {}
        for flat in range(first, last + 1):
            batches.setdefault(str(self._source.row_at(flat).get("strategy")), []).append(flat)
        grown: list[int] = []
        new: list[tuple[str, list[int]]] = []
        for name, flats in batches.items():
            group = self._group_of.get(name)
            if group is None:
                new.append((name, flats))
                continue
            start = len(self._members[group])
            self.beginInsertRows(self.index(group, 0), start, start + len(flats) - 1)
            for child, flat in enumerate(flats, start):
                self._where[flat] = (group, child)
            self._members[group].extend(flats)
            self._totals[group] = None
            self.endInsertRows()
            grown.append(group)
        if new:
            start = len(self._groups)
            self.beginInsertRows(QModelIndex(), start, start + len(new) - 1)
            for group, (name, flats) in enumerate(new, start):
                self._group_of[name] = group
                self._groups.append(name)
                self._members.append(flats)
                self._totals.append(None)
                for child, flat in enumerate(flats):
                    self._where[flat] = (group, child)
            self.endInsertRows()
        if grown:  # their position counts and totals
            hi = self._summary_span[1]
            self.dataChanged.emit(self.index(min(grown), 0), self.index(max(grown), hi))

    def _on_data_changed(
        self, top_left: QModelIndex, bottom_right: QModelIndex, roles: Sequence[int] = ()
    ) -> None:
        spans: dict[int, tuple[int, int]] = {}  # group -> (first child, last child)
        for flat in range(top_left.row(), bottom_right.row() + 1):
            where = self._where.get(flat)
            if where is None:
                continue
            group, child = where
            lo, hi = spans.get(group, (child, child))
            spans[group] = (min(lo, child), max(hi, child))
        if not spans:
            return
        lo_col, hi_col = top_left.column(), bottom_right.column()
        for group, (first, last) in spans.items():
            self._totals[group] = None
            parent = self.index(group, 0)
            self.dataChanged.emit(
                self.index(first, lo_col, parent), self.index(last, hi_col, parent)
            )
        lo, hi = self._summary_span
        self.dataChanged.emit(self.index(min(spans), lo), self.index(max(spans), hi))
