"""Qt table models: declarative column specs, keyed rows, coalesced updates.

Each model that shows part of a running session has ``bind(session)``: it subscribes to
the core events it shows and loads what the session knows already (the window calls
it once, in ``MainWindow.bind``). Tests drive the ``on_...`` slots directly.
"""

from gui.models.audit import AuditModel
from gui.models.base import (
    KEY_ROLE,
    ROW_ROLE,
    SORT_ROLE,
    AppendOnlyModel,
    Column,
    KeyedTableModel,
    TableProxy,
)
from gui.models.fills import FillsModel
from gui.models.orders import OrdersModel
from gui.models.positions import PositionsModel

__all__ = [
    "KEY_ROLE",
    "ROW_ROLE",
    "SORT_ROLE",
    "AppendOnlyModel",
    "AuditModel",
    "Column",
    "FillsModel",
    "KeyedTableModel",
    "OrdersModel",
    "PositionsModel",
    "TableProxy",
]
