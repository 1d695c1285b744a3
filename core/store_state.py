"""The store's key/value state: small JSON values that must survive a restart.

Owns the ``state`` library's layout: one symbol per writer and key
(``"state.<writer>.<key>"``; writing one symbol from two processes is what ArcticDB does
not support), one row with a ``json`` column, and the fallback to the key saved before
writers were named (``"state.<key>"``). Risk's trading state is kept here. Kept apart from
:class:`core.store.Store` so the state's format is one small class's; the store runs it on
its writer thread, so a load sees every save awaited before.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pandas as pd

from core.arctic_io import read_or_none

STATE = "state"

_NAME_RE = re.compile(r"[^A-Za-z0-9_\-]")


def state_symbol(key: str, writer: str | None = None) -> str:
    """A state key's symbol: each writer has its own; without a writer, the old shared one."""
    name = _NAME_RE.sub("_", key)
    return f"state.{writer}.{name}" if writer else f"state.{name}"


class KeyValueState:
    """Saves and loads one writer's state values (blocking: the store's writer thread).

    ``library()`` gives the ``state`` library; ``check()`` runs before every save (the
    writer's lease).
    """

    def __init__(self, library: Callable[[], Any], writer: str, check: Callable[[], None]) -> None:
        self._library = library
        self._writer = writer
        self._check = check

    @staticmethod
    def encode(value: Any) -> str:
        """``value`` as saved (raises ``TypeError`` for one JSON cannot hold: on the
        caller's thread, before anything is written)."""
        return json.dumps(value)

    def save(self, key: str, text: str) -> None:
        """Save a value encoded by :meth:`encode` under ``key``."""
        self._check()
        self._library().write(state_symbol(key, self._writer), pd.DataFrame({"json": [text]}))

    def load(self, key: str, default: Any) -> Any:
        """The value saved under ``key``, or ``default``."""
        lib = self._library()
        # This writer's value; before writers were named, one value for every console.
        for symbol in (state_symbol(key, self._writer), state_symbol(key)):
            df = read_or_none(lib, symbol)
            if df is not None:
                return json.loads(df["json"].iloc[0])
        return default
