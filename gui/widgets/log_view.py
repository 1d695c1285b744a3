"""Log and audit views.

:class:`QtLogHandler` is a ``logging.Handler`` that forwards records to a
:class:`LogModel`. Records may be logged from any thread (executors, ib_async's reader):
the handler formats the record where it was logged and emits a Qt signal from a bridge
object that lives on the GUI thread, so Qt queues the delivery and the model is only
ever touched on the GUI thread. On the GUI thread itself the call is direct, and the
model's coalescing turns a burst into one repaint.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QWidget

from gui import theme
from gui.models.audit import AuditModel
from gui.models.base import LEFT, AppendOnlyModel, Column
from gui.models.formatting import fmt_text
from gui.widgets.table_view import FilteredTable

LEVELS = (
    ("Debug", logging.DEBUG),
    ("Info", logging.INFO),
    ("Warning", logging.WARNING),
    ("Error", logging.ERROR),
)
LEVEL_COLOURS = {
    "DEBUG": theme.TEXT_FAINT,
    "INFO": theme.TEXT_DIM,
    "WARNING": theme.AMBER,
    "ERROR": theme.LOSS,
    "CRITICAL": theme.LOSS,
}


def _fmt_time_ms(value: Any, row: Any = None) -> str:
    if not isinstance(value, datetime):
        return ""
    local = value.astimezone()
    return local.strftime("%H:%M:%S.") + f"{local.microsecond // 1000:03d}"


def _level_colour(value: Any, row: Any) -> QColor | None:
    name = LEVEL_COLOURS.get(str(value))
    return theme.colour(name) if name else None


def _message_colour(value: Any, row: Any) -> QColor | None:
    levelno = row.get("levelno", 0)
    if levelno >= logging.ERROR:
        return theme.colour(theme.LOSS)
    if levelno >= logging.WARNING:
        return theme.colour(theme.AMBER)
    return None


LOG_COLUMNS: tuple[Column, ...] = (
    Column("time", "Time", _fmt_time_ms, LEFT, mono=True, width=12),
    Column("level", "Level", fmt_text, LEFT, _level_colour, width=9),  # "WARNING" in full
    Column("logger", "Source", fmt_text, LEFT, width=18),
    Column("message", "Message", fmt_text, LEFT, _message_colour, width=60),
)


class LogModel(AppendOnlyModel):
    """Log records, newest last, capped at ``max_rows``.

    Slot: :meth:`on_record` takes the dict :class:`QtLogHandler` emits.
    """

    columns = LOG_COLUMNS

    def __init__(
        self, parent: QObject | None = None, *, max_rows: int = 5_000, frame_ms: int = 16
    ) -> None:
        super().__init__(LOG_COLUMNS, parent, max_rows=max_rows, frame_ms=frame_ms)

    def on_record(self, record: dict[str, Any]) -> None:
        """Append one formatted record (see :meth:`QtLogHandler.to_row`)."""
        self.append(record)

    def row_tooltip(self, row: Any, column: Column) -> str | None:
        if column.key == "message":
            return str(row.get("message") or "") or None
        if column.key == "logger":
            return str(row.get("logger") or "") or None
        return None


#: IB message codes ib_async logs as errors that only inform: 202 "Order Canceled"
#: confirms a cancel someone asked for.
IB_INFO_CODES = frozenset({202})
_IB_ERROR = re.compile(r"^Error (\d+), reqId")


class _Bridge(QObject):
    record = Signal(object)


class QtLogHandler(logging.Handler):
    """Forwards log records to a :class:`LogModel` on the GUI thread.

    Create it on the GUI thread. ``detach()`` (or closing the handler) removes it from
    every logger it was added to with :meth:`attach`.
    """

    def __init__(self, model: LogModel, level: int = logging.DEBUG) -> None:
        super().__init__(level)
        self._bridge = _Bridge()
        # AutoConnection: direct on the GUI thread, queued from any other thread.
        self._bridge.record.connect(model.on_record)
        self._loggers: list[logging.Logger] = []

    @staticmethod
    def to_row(record: logging.LogRecord, handler: logging.Handler | None = None) -> dict:
        """The plain dict a record becomes (computed on the logging thread)."""
        message = record.getMessage()
        if record.exc_info and handler is not None:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        level, levelno = record.levelname, record.levelno
        code = _IB_ERROR.match(message) if record.name.startswith("ib_async") else None
        if code is not None and int(code.group(1)) in IB_INFO_CODES:
            # ib_async logs every IB message as ERROR; a confirmed cancel is not one.
            level, levelno = "INFO", logging.INFO
        return {
            "time": datetime.fromtimestamp(record.created, UTC),
            "level": level,
            "levelno": levelno,
            "logger": record.name,
            "message": message,
        }

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._bridge.record.emit(self.to_row(record, self))
        except RuntimeError:
            pass  # the GUI is gone (shutdown); nothing to show the record in
        except Exception:
            self.handleError(record)

    def attach(self, logger: logging.Logger | str | None = None) -> QtLogHandler:
        """Add this handler to ``logger`` (the root logger by default); returns self."""
        target = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
        target.addHandler(self)
        self._loggers.append(target)
        return self

    def detach(self) -> None:
        """Remove this handler from the loggers it was attached to."""
        for target in self._loggers:
            target.removeHandler(self)
        self._loggers.clear()

    def close(self) -> None:
        self.detach()
        super().close()


class LogView(FilteredTable):
    """The log: minimum-level selector and text filter, newest first.

    ``LogView(model)`` shows an existing model; ``LogView.with_handler(...)`` builds a
    model and a :class:`QtLogHandler` attached to a logger.
    """

    def __init__(self, model: LogModel | None = None, parent: QWidget | None = None):
        model = model if model is not None else LogModel()
        super().__init__(model, parent, placeholder="Filter messages, sources…")
        self.log_model = model
        if model.parent() is None:
            model.setParent(self)
        self.handler: QtLogHandler | None = None
        self.level_combo = QComboBox(self)
        self.level_combo.setObjectName("logLevel")
        self.level_combo.setAccessibleName("Minimum log level shown")
        self.level_combo.setToolTip("Show log records at this level and above")
        for name, level in LEVELS:
            self.level_combo.addItem(name, level)
        self.level_combo.currentIndexChanged.connect(self._on_level_selected)
        self.toolbar.addWidget(self.level_combo)
        self.finish_toolbar()
        self.view.setWordWrap(False)
        self.view.sortByColumn(model.column_of("time"), Qt.SortOrder.DescendingOrder)
        self.set_min_level(logging.INFO)

    @classmethod
    def with_handler(
        cls,
        logger: logging.Logger | str | None = None,
        level: int = logging.DEBUG,
        parent: QWidget | None = None,
    ) -> LogView:
        """A view whose model is fed by a new handler attached to ``logger``."""
        view = cls(parent=parent)
        view.handler = QtLogHandler(view.log_model, level).attach(logger)
        view.destroyed.connect(view.handler.detach)
        return view

    def set_min_level(self, level: int) -> None:
        """Show records at ``level`` and above."""
        index = self.level_combo.findData(level)
        if index >= 0 and index != self.level_combo.currentIndex():
            self.level_combo.setCurrentIndex(index)
        self.proxy.set_predicate("level", lambda row: row.get("levelno", 0) >= level)

    def min_level(self) -> int:
        """The minimum level shown."""
        return int(self.level_combo.currentData())

    def _on_level_selected(self, index: int) -> None:
        self.set_min_level(int(self.level_combo.itemData(index)))


class AuditView(FilteredTable):
    """The audit trail, newest first, with a text filter."""

    def __init__(self, model: AuditModel | None = None, parent: QWidget | None = None):
        model = model if model is not None else AuditModel()
        super().__init__(model, parent, placeholder="Filter actor, action, symbol, result…")
        self.audit = model
        if model.parent() is None:
            model.setParent(self)
        self.finish_toolbar()
        self.view.sortByColumn(model.column_of("time"), Qt.SortOrder.DescendingOrder)
