"""The simulated gateway's state file: what survives a restart, and how it is written.

The state is JSON: the engine's accounts, positions, working and completed orders and
executions, plus each client's next order id. Writes are atomic (a temporary file in
the same folder, fsynced, then renamed) and debounced (:data:`STATE_SAVE_DELAY`), so a
burst of fills is one write; the gateway also writes on stop. A file that cannot be
read raises :class:`SimStateError`: the gateway never starts over silently on a
corrupt file, which would lose a trader's simulated book.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.sim.engine import Engine
from core.sim.market import Market
from core.sim.universe import Universe

log = logging.getLogger("core.sim")

STATE_SAVE_DELAY = 0.2
"""Debounce of state saves: a burst of fills is written once (and always on stop)."""
STATE_FORMAT = 1


class SimStateError(ValueError):
    """The gateway's state file cannot be read; carries the path. Never a silent reset."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"simulated gateway state file {path} is unusable: {reason}")
        self.path = path
        self.reason = reason


def snapshot(
    seed: int, accounts: list[str], next_ids: dict[int, int], engine: Engine
) -> dict[str, Any]:
    """The JSON-serialisable state of a gateway (see the module docstring)."""
    return {
        "format": STATE_FORMAT,
        "seed": seed,
        "accounts": accounts,
        "next_order_ids": {str(k): v for k, v in sorted(next_ids.items())},
        "engine": engine.to_state(),
    }


class StateFile:
    """One gateway's state file: :meth:`load` at start, :meth:`schedule` after changes,
    :meth:`write` on stop."""

    def __init__(self, path: Path, delay: float = STATE_SAVE_DELAY) -> None:
        self.path = path
        self.delay = delay
        self._handle: asyncio.TimerHandle | None = None

    def schedule(self, state: Callable[[], dict[str, Any]]) -> None:
        """Write ``state()`` after :attr:`delay` seconds, unless a write is already due."""
        if self._handle is not None:
            return
        loop = asyncio.get_running_loop()
        self._handle = loop.call_later(self.delay, self._write_later, state)

    def cancel(self) -> None:
        """Drop a scheduled write (the caller writes the final state itself)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _write_later(self, state: Callable[[], dict[str, Any]]) -> None:
        self._handle = None
        try:
            self.write(state())
        except Exception:
            log.exception("saving the simulated gateway state failed")

    def write(self, state: dict[str, Any]) -> None:
        """Write the state atomically: a temporary file in the same folder, then rename."""
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(state, indent=1, sort_keys=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def load(
        self, universe: Universe, market: Market, clock: Callable[[], float]
    ) -> tuple[Engine, dict[int, int]] | None:
        """The saved engine and next order ids by client; None when there is no file.

        Raises :class:`SimStateError` for a file that is not a readable state.
        """
        path = self.path
        if not path.exists():
            return None
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SimStateError(path, str(exc)) from exc
        if not isinstance(raw, dict) or raw.get("format") != STATE_FORMAT:
            raise SimStateError(path, "not a simulated gateway state (unknown format)")
        try:
            engine = Engine.from_state(raw["engine"], universe, market, clock=clock)
            next_ids = {int(k): int(v) for k, v in dict(raw.get("next_order_ids", {})).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise SimStateError(path, str(exc)) from exc
        # An id must never be reused, even if the saved counter lagged behind an order.
        for order in [*engine.open_orders(), *engine.completed_orders()]:
            cid, oid = order.key
            next_ids[cid] = max(next_ids.get(cid, 1), oid + 1)
        return engine, next_ids
