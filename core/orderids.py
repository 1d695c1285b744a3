"""Order ids that are never used twice by this console.

ib_async starts every connection at the gateway's ``nextValidId``. When an order was
written just before a drop and never reached the gateway, the gateway's next valid id
is that lost order's id: the next order, perhaps another strategy's, would get it, and a
cancel aimed at the lost order would cancel the new one. So the console keeps its own
high-water mark: an id is at least one more than any id it ever handed out, on this
connection, a previous one, or a previous run.

Across runs the mark is kept in a small JSON file as a *reservation*: before an id
beyond the reserved block is handed out, the next block is written (atomically, by
rename), so a crash can skip ids but never repeat one, and the file is written once
per :attr:`OrderIdSequence.block` orders rather than once per order.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)


class ReqIdSource(Protocol):
    """ib_async's ``Client``: its request-id counter (shared by orders and requests)."""

    def getReqId(self) -> int: ...

    def updateReqId(self, minReqId: int) -> None: ...


class OrderIdSequence:
    """Hands out order ids above every id handed out before (see the module docstring).

    ``path=None`` keeps the mark in memory only: ids still never repeat within the
    process, across reconnects.
    """

    def __init__(self, path: Path | None = None, *, block: int = 100) -> None:
        if block < 1:
            raise ValueError(f"block: {block} must be at least 1")
        self.path = path
        self.block = block
        self.last = 0  # the highest id handed out
        self.reserved = self._load()

    def _load(self) -> int:
        if self.path is None or not self.path.exists():
            return 0
        try:
            value = int(json.loads(self.path.read_text())["reserved"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # A damaged file must not restart ids from the gateway's: refuse loudly.
            raise RuntimeError(
                f"order id reservation {self.path} is unreadable ({exc}); "
                "fix or remove it (removing it risks reusing an order id)"
            ) from exc
        self.last = value  # ids up to the reservation may have been used
        return value

    def next(self, client: ReqIdSource) -> int:
        """The next order id: above the client's counter and above every earlier id."""
        order_id = max(client.getReqId(), self.last + 1)
        client.updateReqId(order_id + 1)  # ib_async's own requests stay above it too
        if order_id > self.reserved:
            self._reserve(order_id + self.block)
        self.last = order_id
        return order_id

    def observe(self, order_id: int) -> None:
        """An id seen in use (an order reported by the gateway): never hand it out."""
        if order_id > self.last:
            self.last = order_id
            if order_id > self.reserved:
                self._reserve(order_id + self.block)

    def _reserve(self, up_to: int) -> None:
        self.reserved = up_to
        if self.path is None:
            return
        # Never lower a reservation another console on this machine wrote meanwhile.
        if self.path.exists():
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                up_to = max(up_to, int(json.loads(self.path.read_text())["reserved"]))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".order-ids.")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({"reserved": up_to}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        log.debug("order ids reserved up to %d in %s", up_to, self.path)
