"""A keyed, column-spec-driven table model with coalesced updates, and its proxy.

Each table declares its columns as data: a tuple of frozen :class:`Column` specs. Rows
are plain dicts keyed by one id (an order id, an exec id, a (strategy, con_id) pair);
fields named ``_x`` are hidden context for formatting (a change repaints the whole row),
fields named ``__x`` are payload (e.g. the source event) and never cause a repaint.
:meth:`KeyedTableModel.upsert` does not touch the view at once: updates arriving in a
burst are parked and applied together by a single-shot timer started on the first
pending update (at most one batch per ~16 ms frame; it is not a polling timer: it only
runs when something is pending). Applying a batch

* emits ``dataChanged`` only for rows whose values changed, spanning only the changed
  columns, and merges adjacent changed rows into one range (a batch scattered over
  more than :data:`MAX_SEPARATE_RUNS` runs emits one range spanning them);
* appends all new rows with one ``beginInsertRows``/``endInsertRows``.

:class:`TableProxy` sorts on the raw value (:data:`SORT_ROLE`, so ``9 < 10`` and missing
values go last in either direction) and filters on the displayed text plus any number
of named row predicates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QElapsedTimer,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QFont

from gui import theme
from gui.models.formatting import fmt_text, sort_value

Formatter = Callable[[Any, Mapping[str, Any]], str]
Colourer = Callable[[Any, Mapping[str, Any]], "QColor | None"]
AnyIndex = QModelIndex | QPersistentModelIndex

#: Raw value of a cell, for numeric sorting.
SORT_ROLE = Qt.ItemDataRole.UserRole
#: The row's key.
KEY_ROLE = Qt.ItemDataRole.UserRole + 1
#: The whole row dict (read-only by convention).
ROW_ROLE = Qt.ItemDataRole.UserRole + 2

LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
CENTER = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter

_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_EDIT = int(Qt.ItemDataRole.EditRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_SORT = int(SORT_ROLE)
_KEY = int(KEY_ROLE)
_ROW = int(ROW_ROLE)
#: Roles a view asks for every painted cell, answered from a per-cell cache: position
#: in the cached tuple.
_CELL_ROLES = {
    _DISPLAY: 0,
    int(Qt.ItemDataRole.ForegroundRole): 1,
    int(Qt.ItemDataRole.BackgroundRole): 2,
    int(Qt.ItemDataRole.FontRole): 3,
    int(Qt.ItemDataRole.TextAlignmentRole): 4,
}
_OTHER_ROLES = frozenset({_EDIT, _TOOLTIP, _SORT, _KEY, _ROW})
# Built once: combining Qt enum flags in Python costs microseconds per cell.
_NO_FLAGS = Qt.ItemFlag.NoItemFlags
_PLAIN_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
_EDITABLE_FLAGS = _PLAIN_FLAGS | Qt.ItemFlag.ItemIsEditable

#: Sorted grids re-sort at most this often while values change (see TableProxy).
RESORT_MS = 250
#: Default coalescing interval: one frame at 60 Hz.
FRAME_MS = 16
#: Beyond this many separate runs of changed rows, a batch emits one spanning signal.
MAX_SEPARATE_RUNS = 8


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a table, declared as data.

    Attributes
    ----------
    key: the row dict's key holding the raw value.
    title: header text.
    fmt: ``fmt(value, row) -> str`` for display.
    align: text alignment; numbers are right-aligned.
    colour: optional ``colour(value, row) -> QColor | None`` for the text.
    mono: draw with the monospace number font (defaults to True when right-aligned).
    editable: the cell may be edited (the model decides per row with ``is_editable``).
    width: preferred width in characters of the number font (views use it).
    tooltip: header tooltip.
    """

    key: str
    title: str
    fmt: Formatter = fmt_text
    align: Qt.AlignmentFlag = LEFT
    colour: Colourer | None = None
    mono: bool | None = None
    editable: bool = False
    width: int | None = None
    tooltip: str = ""

    @property
    def is_mono(self) -> bool:
        """Whether the number font applies."""
        if self.mono is not None:
            return self.mono
        return bool(self.align & Qt.AlignmentFlag.AlignRight)


_ABSENT = object()
#: Kinds of row fields for change detection (column fields are their column number).
_PAYLOAD = -1
_HIDDEN = -2


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        if a == b:
            return True
    except Exception:  # exotic values that refuse to compare
        return False
    return isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)


class KeyedTableModel(QAbstractTableModel):
    """Rows keyed by id, columns declared by :class:`Column` specs, updates coalesced.

    Subclasses set ``columns`` (or pass them in) and may override the hooks
    :meth:`derive`, :meth:`row_background`, :meth:`row_foreground`, :meth:`row_tooltip`,
    :meth:`cell_font` and :meth:`is_editable`.

    Signals
    -------
    flushed(): a batch of pending updates has been applied (for totals and labels).
    """

    columns: tuple[Column, ...] = ()
    #: How a sorted view keeps up with changes (see :class:`TableProxy`): re-sort at
    #: most every ``resort_ms``; 0 lets Qt place each new or changed row at once, the
    #: better choice for tables that mostly grow (fills, journals): a new row costs a
    #: binary search instead of a full sort (~25 ms of the GUI thread at 500 rows).
    resort_ms: int = RESORT_MS
    flushed = Signal()

    def __init__(
        self,
        columns: tuple[Column, ...] | None = None,
        parent: QObject | None = None,
        *,
        frame_ms: int = FRAME_MS,
    ) -> None:
        super().__init__(parent)
        self._columns: tuple[Column, ...] = tuple(columns or type(self).columns)
        self._column_index = {c.key: i for i, c in enumerate(self._columns)}
        self._field_kinds: dict[str, int] = {}
        self._keys: list[Hashable] = []
        self._rows: list[dict[str, Any]] = []
        # Rendered cells per row (text, colour, background, font, alignment), filled on
        # first paint and dropped when the row changes: repaints of unchanged cells and
        # the several roles a view asks per cell cost one list lookup each.
        self._cells: list[list[tuple[Any, ...] | None] | None] = []
        self._index: dict[Hashable, int] = {}
        self._pending: dict[Hashable, dict[str, Any]] = {}
        self._rederive_all = False
        #: Bumped before every change is announced (proxies cache sort keys by it).
        self.generation = 0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(frame_ms)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self.flush)
        self._mono = theme.number_font()
        self._mono_italic = QFont(self._mono)
        self._mono_italic.setItalic(True)

    # ----- public API ---------------------------------------------------------------
    @property
    def column_specs(self) -> tuple[Column, ...]:
        """The column specs, in display order."""
        return self._columns

    def column_of(self, key: str) -> int:
        """The column number for a column key (``KeyError`` if unknown)."""
        return self._column_index[key]

    def upsert(self, key: Hashable, row: Mapping[str, Any]) -> None:
        """Insert or replace the row ``key``; applied with the next coalesced batch."""
        self._pending[key] = dict(row)
        self._schedule()

    def patch(self, key: Hashable, **fields: Any) -> bool:
        """Change some fields of an existing (or pending) row; False if there is none."""
        if key in self._pending:
            self._pending[key].update(fields)
        elif key in self._index:
            self._pending[key] = {**self._rows[self._index[key]], **fields}
        else:
            return False
        self._schedule()
        return True

    def rederive(self) -> None:
        """Re-derive every row with the next batch (after a change that :meth:`derive`
        reads from outside the rows, e.g. the account's net liquidation): at most once
        per batch however often it is called."""
        self._rederive_all = True
        self._schedule()

    def remove(self, key: Hashable) -> bool:
        """Remove the row ``key`` now (and drop any pending update for it)."""
        self._pending.pop(key, None)
        pos = self._index.get(key)
        if pos is None:
            return False
        self.generation += 1
        self.beginRemoveRows(QModelIndex(), pos, pos)
        del self._keys[pos]
        del self._rows[pos]
        del self._cells[pos]
        del self._index[key]
        for i in range(pos, len(self._keys)):
            self._index[self._keys[i]] = i
        self.endRemoveRows()
        return True

    def remove_where(self, predicate: Callable[[Mapping[str, Any]], bool]) -> int:
        """Remove every row (pending updates applied first) for which ``predicate`` is
        true, in one model reset; returns how many went."""
        self.flush()
        keep = [(k, r) for k, r in zip(self._keys, self._rows, strict=True) if not predicate(r)]
        dropped = len(self._keys) - len(keep)
        if dropped:
            self.reset(keep)
        return dropped

    def remove_first(self, count: int) -> None:
        """Remove the ``count`` oldest rows at once (for capped, append-only tables)."""
        count = min(count, len(self._keys))
        if count <= 0:
            return
        self.generation += 1
        self.beginRemoveRows(QModelIndex(), 0, count - 1)
        for key in self._keys[:count]:
            del self._index[key]
        del self._keys[:count]
        del self._rows[:count]
        del self._cells[:count]
        self._index = {k: i for i, k in enumerate(self._keys)}
        self.endRemoveRows()

    def reset(self, items: Iterable[tuple[Hashable, Mapping[str, Any]]] = ()) -> None:
        """Replace every row at once (one model reset); pending updates are dropped."""
        self._timer.stop()
        self._pending.clear()
        self._rederive_all = False
        self.generation += 1
        self.beginResetModel()
        self._keys = []
        self._rows = []
        self._index = {}
        for key, row in items:
            stored = self.derive(key, dict(row))
            if key in self._index:
                self._rows[self._index[key]] = stored
            else:
                self._index[key] = len(self._keys)
                self._keys.append(key)
                self._rows.append(stored)
        self._cells = [None] * len(self._rows)
        self.endResetModel()
        self.flushed.emit()

    def clear(self) -> None:
        """Remove every row."""
        self.reset(())

    def flush(self) -> None:
        """Apply pending updates now (the timer calls this; tests may too)."""
        self._timer.stop()
        if self._rederive_all:
            self._rederive_all = False
            for key, row in zip(self._keys, self._rows, strict=True):
                if key not in self._pending:
                    self._pending[key] = dict(row)
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        self.generation += 1
        changed: dict[int, tuple[int, int]] = {}
        new_keys: list[Hashable] = []
        new_rows: list[dict[str, Any]] = []
        last_col = len(self._columns) - 1
        for key, row in pending.items():
            row = self.derive(key, row)
            pos = self._index.get(key)
            if pos is None:
                new_keys.append(key)
                new_rows.append(row)
                continue
            old = self._rows[pos]
            self._rows[pos] = row
            self._cells[pos] = None
            span = self._changed_span(old, row, last_col)
            if span is not None:
                changed[pos] = span
        self._emit_changed(changed)
        if new_keys:
            self.generation += 1
            first = len(self._keys)
            self.beginInsertRows(QModelIndex(), first, first + len(new_keys) - 1)
            for offset, key in enumerate(new_keys):
                self._index[key] = first + offset
            self._keys.extend(new_keys)
            self._rows.extend(new_rows)
            self._cells.extend([None] * len(new_rows))
            self.endInsertRows()
        self.flushed.emit()

    def has_pending(self) -> bool:
        """Whether updates are waiting for the next batch."""
        return bool(self._pending) or self._rederive_all

    def row(self, key: Hashable) -> dict[str, Any] | None:
        """The applied row for ``key`` (pending updates not included), or None."""
        pos = self._index.get(key)
        return None if pos is None else self._rows[pos]

    def row_at(self, pos: int) -> dict[str, Any]:
        """The row at model row ``pos``."""
        return self._rows[pos]

    def key_at(self, pos: int) -> Hashable:
        """The key of model row ``pos``."""
        return self._keys[pos]

    def position(self, key: Hashable) -> int | None:
        """The model row number of ``key``, or None."""
        return self._index.get(key)

    def keys(self) -> list[Hashable]:
        """All keys, in model order."""
        return list(self._keys)

    def rows(self) -> list[dict[str, Any]]:
        """All rows, in model order."""
        return list(self._rows)

    def display_text(self, pos: int, column: int) -> str:
        """The text shown in a cell (used by the proxy's text filter)."""
        return self.cell_text(self._rows[pos], self._columns[column])

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    # ----- hooks for subclasses -----------------------------------------------------
    def derive(self, key: Hashable, row: dict[str, Any]) -> dict[str, Any]:
        """Fill in computed fields before a row is stored. Default: unchanged."""
        return row

    def cell_text(self, row: Mapping[str, Any], column: Column) -> str:
        """The text of a cell. Default: the column's formatter."""
        return column.fmt(row.get(column.key), row)

    def cell_colour(self, row: Mapping[str, Any], column: Column) -> QColor | None:
        """The text colour of a cell. Default: the column's colour, else the row's."""
        if column.colour is not None:
            c = column.colour(row.get(column.key), row)
            if c is not None:
                return c
        return self.row_foreground(row)

    def row_background(self, row: Mapping[str, Any]) -> QColor | None:
        """A background tint for the whole row, or None."""
        return None

    def row_foreground(self, row: Mapping[str, Any]) -> QColor | None:
        """A text colour for cells whose column gives none, or None."""
        return None

    def row_tooltip(self, row: Mapping[str, Any], column: Column) -> str | None:
        """A tooltip for a cell, or None."""
        return None

    def cell_font(self, row: Mapping[str, Any], column: Column) -> QFont | None:
        """The font for a cell, or None for the view's default."""
        return self._mono if column.is_mono else None

    def is_editable(self, row: Mapping[str, Any], column: Column) -> bool:
        """Whether an ``editable`` column's cell may be edited in this row."""
        return column.editable

    # ----- QAbstractTableModel ------------------------------------------------------
    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._keys)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._columns)

    def index(self, row: int, column: int, parent: AnyIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        # Qt's default checks hasIndex() through two more calls into Python
        # (rowCount, columnCount); views and proxies call index() for every cell.
        if 0 <= row < len(self._keys) and 0 <= column < len(self._columns) and not parent.isValid():
            return self.createIndex(row, column)
        return QModelIndex()

    def data(self, index: AnyIndex, role: int = _DISPLAY) -> Any:
        slot = _CELL_ROLES.get(role)
        if slot is not None:
            r = index.row()
            if not 0 <= r < len(self._rows):
                return None
            cells = self._cells[r]
            if cells is None:
                cells = self._cells[r] = [None] * len(self._columns)
            c = index.column()
            cell = cells[c]
            if cell is None:
                cell = cells[c] = self._render(r, c)
            return cell[slot]
        if role not in _OTHER_ROLES or not index.isValid():
            return None
        row = self._rows[index.row()]
        col = self._columns[index.column()]
        if role == _SORT:
            return sort_value(row.get(col.key))
        if role == _EDIT:
            return row.get(col.key)
        if role == _TOOLTIP:
            return self.row_tooltip(row, col)
        if role == _KEY:
            return self._keys[index.row()]
        return row  # ROW_ROLE

    def _render(self, r: int, c: int) -> tuple[Any, ...]:
        row = self._rows[r]
        col = self._columns[c]
        return (
            self.cell_text(row, col),
            self.cell_colour(row, col),
            self.row_background(row),
            self.cell_font(row, col),
            int(col.align),
        )

    def invalidate_cells(self) -> None:
        """Forget every rendered cell and repaint (after a change outside the rows)."""
        self._cells = [None] * len(self._rows)
        if self._rows:
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self._rows) - 1, len(self._columns) - 1)
            )

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self._columns):
            return None
        col = self._columns[section]
        if role == Qt.ItemDataRole.DisplayRole:
            return col.title
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return col.align
        if role == Qt.ItemDataRole.ToolTipRole:
            return col.tooltip or None
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return _NO_FLAGS
        col = self._columns[index.column()]
        if col.editable and self.is_editable(self._rows[index.row()], col):
            return _EDITABLE_FLAGS
        return _PLAIN_FLAGS

    # ----- internals ----------------------------------------------------------------
    def _schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def _changed_span(
        self, old: Mapping[str, Any], new: Mapping[str, Any], last_col: int
    ) -> tuple[int, int] | None:
        # Runs for every changed row of every batch (500 rows ten times a second in a
        # tick storm): each field's kind is looked up once, and payload fields (whole
        # events, slow to compare) are skipped before any comparison.
        kinds = self._field_kinds
        lo, hi = last_col + 1, -1
        for k, v in new.items():
            o = old.get(k, _ABSENT)
            if o is v:
                continue
            kind = kinds.get(k)
            if kind is None:
                kind = kinds[k] = (
                    _PAYLOAD if k.startswith("__") else self._column_index.get(k, _HIDDEN)
                )
            if kind == _PAYLOAD or _same(o, v):
                continue
            if kind == _HIDDEN:
                # A hidden field (tick size, flags) may affect any cell's look.
                return (0, last_col)
            lo, hi = min(lo, kind), max(hi, kind)
        if len(old) > len(new) and any(k not in new for k in old if not k.startswith("__")):
            return (0, last_col)  # a field went away
        return None if hi < 0 else (lo, hi)

    def _emit_changed(self, changed: dict[int, tuple[int, int]]) -> None:
        """One ``dataChanged`` per run of adjacent changed rows, over their column span.

        When a batch touches many scattered rows (a tick storm), one signal spans them
        all instead: a sorting proxy re-sorts once per ``dataChanged``, so hundreds of
        small signals would cost hundreds of re-sorts in one frame.
        """
        if not changed:
            return
        runs: list[tuple[int, int, int, int]] = []  # first row, last row, lo col, hi col
        for pos in sorted(changed):
            c_lo, c_hi = changed[pos]
            if runs and pos == runs[-1][1] + 1:
                first, _, lo, hi = runs[-1]
                runs[-1] = (first, pos, min(lo, c_lo), max(hi, c_hi))
            else:
                runs.append((pos, pos, c_lo, c_hi))
        if len(runs) > MAX_SEPARATE_RUNS:
            runs = [
                (
                    runs[0][0],
                    runs[-1][1],
                    min(r[2] for r in runs),
                    max(r[3] for r in runs),
                )
            ]
        for first, last, lo, hi in runs:
            self.dataChanged.emit(self.index(first, lo), self.index(last, hi))


def cell_data(index: QModelIndex | QPersistentModelIndex, role: int) -> Any:
    """``index.data(role)`` without PySide6's ``QModelIndex.data`` for keyed models.

    PySide6 6.12's ``QModelIndex.data()`` drops a reference to ``None`` each time it
    returns an invalid variant; called per painted cell, that frees ``None`` within
    minutes and crashes the interpreter. So unwrap proxies to the
    :class:`KeyedTableModel` and call its Python ``data`` directly.
    """
    model = index.model()
    while isinstance(model, QSortFilterProxyModel) and index.isValid():
        index = model.mapToSource(index)
        model = index.model()
    if isinstance(model, KeyedTableModel):
        return model.data(index, role)
    value = index.data(role)  # not ours: hope for a valid variant
    return value


class TableProxy(QSortFilterProxyModel):
    """Sorts on raw values and filters on text plus named row predicates.

    ``set_text_filter("aapl buy")`` keeps rows whose displayed cells contain every word;
    ``set_predicate("strategy", lambda row: row["strategy"] == "trend")`` adds a named
    row test (``None`` removes it).

    Re-sorting is throttled: when values change, rows are re-sorted (and filters
    re-applied) at once if the last re-sort is older than ``resort_ms``, else when it
    is. In a tick storm a grid sorted by P&L reorders at most 4 times a second, which a
    person can follow, instead of 60, which costs a full sort per frame.
    ``resort_ms=0`` gives Qt's own dynamic sorting (re-sort on every change).
    """

    def __init__(
        self,
        source: QAbstractItemModel | None = None,
        parent: QObject | None = None,
        *,
        resort_ms: int = RESORT_MS,
    ):
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.resort_ms = resort_ms
        self.setDynamicSortFilter(resort_ms <= 0)
        self._resort_timer = QTimer(self)
        self._resort_timer.setSingleShot(True)
        self._resort_timer.timeout.connect(self.resort)
        self._since_resort = QElapsedTimer()
        self.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self._words: list[str] = []
        self._sort_cache: list[tuple[Any, ...]] = []
        self._sort_cache_stamp: tuple[int, int, bool] | None = None
        self._predicates: dict[str, Callable[[Mapping[str, Any]], bool]] = {}
        self.setRecursiveFilteringEnabled(True)  # trees: a group shows if a row of it does
        if source is not None:
            self.setSourceModel(source)

    def setSourceModel(self, model: QAbstractItemModel) -> None:
        old = self.sourceModel()
        if old is not None and self.resort_ms > 0:
            old.dataChanged.disconnect(self._on_data_changed)
            old.rowsInserted.disconnect(self._schedule_resort)
        super().setSourceModel(model)
        if self.resort_ms > 0:
            model.dataChanged.connect(self._on_data_changed)
            model.rowsInserted.connect(self._schedule_resort)

    def resort(self) -> None:
        """Re-sort and re-filter now (the throttle calls this after changes)."""
        self._resort_timer.stop()
        self._since_resort.start()
        if self._words or self._predicates:
            self._change_filter(lambda: None)
        column = self.sortColumn()
        if column >= 0:
            self.sort(column, self.sortOrder())

    def _on_data_changed(self, top_left: QModelIndex, bottom_right: QModelIndex, *_: Any) -> None:
        if not (self._words or self._predicates):
            # A change outside the sort column cannot reorder rows: ticks move prices and
            # P&L, while a grid sorted by strategy or symbol stays put (a full sort of 500
            # rows costs ~40 ms of the GUI thread).
            column = self.sortColumn()
            if column < 0 or not top_left.column() <= column <= bottom_right.column():
                return
        self._schedule_resort()

    def _schedule_resort(self, *args: Any) -> None:
        if self._resort_timer.isActive():
            return

        elapsed = self._since_resort.elapsed() if self._since_resort.isValid() else self.resort_ms
        self._resort_timer.start(max(0, self.resort_ms - elapsed))

    def keyed_source(self) -> KeyedTableModel:
        """The source model (typed)."""
        model = self.sourceModel()
        assert isinstance(model, KeyedTableModel)
        return model

    def set_text_filter(self, text: str) -> None:
        """Keep rows whose visible text contains every whitespace-separated word."""
        words = [w.casefold() for w in text.split()]
        if words == self._words:
            return
        self._change_filter(lambda: setattr(self, "_words", words))

    def set_predicate(self, name: str, test: Callable[[Mapping[str, Any]], bool] | None) -> None:
        """Add, replace or (with None) remove a named row test."""

        def apply() -> None:
            if test is None:
                self._predicates.pop(name, None)
            else:
                self._predicates[name] = test

        self._change_filter(apply)

    def _change_filter(self, apply: Callable[[], None]) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.9
            self.beginFilterChange()
            apply()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:  # pragma: no cover - older Qt
            apply()
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: AnyIndex) -> bool:
        model = self.sourceModel()
        if not isinstance(model, KeyedTableModel):
            return self._tree_row_accepted(model, source_row, source_parent)
        if self._predicates:
            row = model.row_at(source_row)
            if not all(test(row) for test in self._predicates.values()):
                return False
        if not self._words:
            return True
        text = " ".join(
            model.display_text(source_row, c) for c in range(model.columnCount())
        ).casefold()
        return all(w in text for w in self._words)

    def _tree_row_accepted(
        self, model: QAbstractItemModel, source_row: int, source_parent: AnyIndex
    ) -> bool:
        """The filters over a tree of keyed rows (e.g. positions grouped by strategy):
        leaves carry their row dict in ``ROW_ROLE``; a group row (none) is shown when
        one of its rows is (recursive filtering)."""
        if not (self._words or self._predicates):
            return True
        row = model.data(model.index(source_row, 0, source_parent), ROW_ROLE)
        if row is None:
            return False
        if not all(test(row) for test in self._predicates.values()):
            return False
        if not self._words:
            return True
        texts = (
            model.data(model.index(source_row, c, source_parent), Qt.ItemDataRole.DisplayRole)
            for c in range(model.columnCount(source_parent))
        )
        text = " ".join(t for t in texts if isinstance(t, str)).casefold()
        return all(w in text for w in self._words)

    def lessThan(self, left: AnyIndex, right: AnyIndex) -> bool:
        keys = self._sort_keys(left.column())
        if keys is None:  # a tree: siblings compared by their sort values
            model = self.sourceModel()
            a = self._sort_key(model.data(left, SORT_ROLE), left.row())
            b = self._sort_key(model.data(right, SORT_ROLE), right.row())
        else:
            a, b = keys[left.row()], keys[right.row()]
        try:
            return a < b
        except TypeError:  # a column mixing text and numbers
            return str(a) < str(b)

    def _sort_keys(self, column: int) -> list[tuple[Any, ...]] | None:
        """One precomputed key per source row for ``column``, rebuilt when the model
        changed: a sort makes ~n log n comparisons, the keys cost n.

        A key is ``(present, value, row)``: missing values sort last whichever the
        order (Qt swaps the arguments for descending), and ties keep arrival order.
        """
        model = self.sourceModel()
        if not isinstance(model, KeyedTableModel):
            return None
        descending = self.sortOrder() == Qt.SortOrder.DescendingOrder
        stamp = (model.generation, column, descending)
        if self._sort_cache_stamp == stamp:
            return self._sort_cache
        key = model.column_specs[column].key
        keys = [self._sort_key(row.get(key), pos) for pos, row in enumerate(model.rows())]
        self._sort_cache, self._sort_cache_stamp = keys, stamp
        return keys

    def _sort_key(self, value: Any, pos: int) -> tuple[Any, ...]:
        """``(present, value, row)``: missing values last in either order, ties stable."""
        v = sort_value(value)
        descending = self.sortOrder() == Qt.SortOrder.DescendingOrder
        if v is None:
            return (0 if descending else 1, 0, pos)
        return (1 if descending else 0, v.casefold() if isinstance(v, str) else v, pos)


class AppendOnlyModel(KeyedTableModel):
    """A keyed model for journals (audit, log): rows are appended with a running number
    as key, and the oldest rows are dropped in one batch beyond ``max_rows``."""

    resort_ms = 0

    def __init__(
        self,
        columns: tuple[Column, ...] | None = None,
        parent: QObject | None = None,
        *,
        max_rows: int = 20_000,
        frame_ms: int = FRAME_MS,
    ) -> None:
        super().__init__(columns, parent, frame_ms=frame_ms)
        self.max_rows = max_rows
        self._seq = 0
        self.flushed.connect(self._trim)

    def append(self, row: Mapping[str, Any]) -> int:
        """Append a row (coalesced like any upsert); returns its key."""
        self._seq += 1
        self.upsert(self._seq, row)
        return self._seq

    def _trim(self) -> None:
        excess = len(self) - self.max_rows
        if excess > 0:
            self.remove_first(excess)
