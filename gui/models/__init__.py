"""Qt table models: declarative column specs, keyed rows, coalesced updates."""

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
