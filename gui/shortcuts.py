"""The console's keyboard shortcuts: one table the actions are bound from and the
*Help → Keyboard shortcuts* dialog is listed from, so the two cannot disagree.

:func:`bind` gives a ``QAction`` or ``QShortcut`` its keys from :data:`SHORTCUTS` and
tags it with the entry's name; :func:`tag` marks a widget that handles its key itself
(Enter in the ticket). :func:`active` walks a window for tagged objects and returns
those a trader can use now: a disabled action (Buy in a read-only console) is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence, QShortcut

#: The dynamic property that names an object's table entry.
PROPERTY = "ibconsole_shortcut"


@dataclass(frozen=True, slots=True)
class Shortcut:
    """One row of the table.

    ``keys`` is in Qt's portable text form (``"Ctrl+Shift+C"``); ``where`` says where
    the key works (``"anywhere"`` for application-wide shortcuts).
    """

    name: str
    keys: str
    what: str
    where: str = "anywhere"

    def key_sequence(self) -> QKeySequence:
        """The keys as a ``QKeySequence``."""
        return QKeySequence(self.keys)


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut("buy", "F2", "Put the order ticket on the buy side"),
    Shortcut("sell", "F3", "Put the order ticket on the sell side"),
    Shortcut("symbol", "Ctrl+L", "Jump to the ticket's symbol"),
    Shortcut("send_order", "Enter", "Send the ticket's order", "order ticket"),
    Shortcut("cancel_order", "Delete", "Cancel the selected working order", "working orders"),
    Shortcut("cancel_all", "Ctrl+Shift+C", "Cancel every working order (asks first)"),
    Shortcut(
        "emergency_stop",
        "Ctrl+Shift+X",
        "Emergency stop (press twice within 2 s): cancel every order, then flatten",
    ),
    Shortcut("shortcuts", "F1", "Show these keyboard shortcuts"),
    Shortcut("quit", "Ctrl+Q", "Quit (orders journalled, state saved)"),
)

_BY_NAME = {s.name: s for s in SHORTCUTS}


def get(name: str) -> Shortcut:
    """The table entry ``name``; ``KeyError`` for a name not in the table."""
    return _BY_NAME[name]


def tag(obj: QObject, name: str) -> None:
    """Mark ``obj`` as the one that answers entry ``name`` (it handles the key itself)."""
    get(name)  # a typo fails here, not silently in the help dialog
    obj.setProperty(PROPERTY, name)


def bind(obj: QAction | QShortcut, name: str) -> Shortcut:
    """Give ``obj`` the keys of entry ``name`` and tag it; returns the entry."""
    entry = get(name)
    if isinstance(obj, QAction):
        obj.setShortcut(entry.key_sequence())
    else:
        obj.setKey(entry.key_sequence())
    tag(obj, name)
    return entry


def _keys_of(obj: QObject, entry: Shortcut) -> QKeySequence:
    if isinstance(obj, QAction):
        return obj.shortcut()
    if isinstance(obj, QShortcut):
        return obj.key()
    return entry.key_sequence()


def _enabled(obj: QObject) -> bool:
    is_enabled = getattr(obj, "isEnabled", None)
    return bool(is_enabled()) if callable(is_enabled) else True


def active(root: QObject) -> list[tuple[Shortcut, str]]:
    """The shortcuts usable now in ``root`` and its children, in table order, each with
    its keys as the platform writes them (``"Ctrl+Shift+C"``, ``"⌘⇧C"`` on a Mac).

    An entry bound to several objects is listed once; one whose every object is
    disabled is not listed.
    """
    found: dict[str, str] = {}
    for obj in [root, *root.findChildren(QObject)]:
        name = obj.property(PROPERTY)
        if not isinstance(name, str) or name not in _BY_NAME or name in found:
            continue
        if not _enabled(obj):
            continue
        keys = _keys_of(obj, _BY_NAME[name])
        if keys.isEmpty():
            continue
        found[name] = keys.toString(QKeySequence.SequenceFormat.NativeText)
    return [(s, found[s.name]) for s in SHORTCUTS if s.name in found]
