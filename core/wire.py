"""The gate at the wire: every frame to TWS passes here, paced, and an order frame is
written only if the gate still admits it at that instant.

ib_async paces requests inside ``Client.sendMsg``, *after* ``IB.placeOrder`` has
returned: an order held there when the trading state tightened would still be written
seconds later, past HALTED. So the console owns pacing. :class:`WireGate` takes
ib_async's place in ``Client.sendMsg`` (ib_async's own throttle is switched off: one
number, :data:`MAX_MESSAGES_PER_SECOND`, paces the console) and:

* writes at most ``max_per_second`` frames in any second, the rest wait in order;
* asks each order frame's check (registered by the trade manager with :meth:`expect`
  just before ``placeOrder``) at the moment it is written, not when it was queued: a
  refusal drops the frame and is reported as :class:`FrameDropped`; an order frame with
  no check (``placeOrder`` called around the trade manager) is never written;
* lets cancels jump the queue, and a cancel of an order still waiting drops that order
  instead (it never reaches IB, and is reported so); a global cancel drops every waiting
  order frame;
* drops everything waiting when the connection goes: a frame queued on one connection
  is never written on the next (its order is reported as not sent, never resent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from eventkit import Event

from core.compat import take_over_sending

log = logging.getLogger(__name__)

#: IB disconnects a client that sends more than 50 messages a second; the console
#: writes at most this many. The risk gate's console-wide order cap reads the same number.
MAX_MESSAGES_PER_SECOND = 45

PLACE_ORDER = "3"
CANCEL_ORDER = "4"
REQ_GLOBAL_CANCEL = "58"

#: Asked when an order frame is about to be written: a reason to drop it, or None.
WireCheck = Callable[[], "str | None"]


@dataclass(frozen=True, slots=True)
class FrameDropped:
    """An order frame was not written; ``first_write`` means the order never left."""

    order_id: int
    reason: str
    first_write: bool


@dataclass(slots=True)
class _Frame:
    msg: str
    kind: str
    order_id: int = 0
    check: WireCheck | None = None


def _no_objection() -> str | None:
    return None


def _order_id(fields: list[str], index: int) -> int:
    try:
        return int(fields[index])
    except (IndexError, ValueError):
        return 0


class WireGate:
    """Owns the pacing of ``ib.client`` (see the module docstring).

    Events:
        * ``frameDropped`` (dropped: :class:`FrameDropped`)
        * ``orderWritten`` (order_id: int): an order's first frame reached the socket
    """

    def __init__(
        self,
        ib: Any,
        *,
        max_per_second: int = MAX_MESSAGES_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
        readonly: bool = False,
    ) -> None:
        if max_per_second < 1:
            raise ValueError(f"max_per_second: {max_per_second} must be at least 1")
        self.client = ib.client
        self.max_per_second = max_per_second
        self._clock = clock
        self.frameDropped: Event = Event("frameDropped")
        self.orderWritten: Event = Event("orderWritten")
        self._queue: deque[_Frame] = deque()
        self._times: deque[float] = deque()
        self._checks: dict[int, WireCheck] = {}
        self._written: set[int] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._what_if = False
        self.readonly = readonly  # no order, cancel or global cancel frame is written
        self._write = take_over_sending(ib, self._submit)  # one pacer: this one
        ib.disconnectedEvent += self._on_disconnected

    # -- what the trade manager uses -----------------------------------------------------

    def expect(self, order_id: int, check: WireCheck) -> None:
        """``check`` decides, when it is written, whether the next frame for
        ``order_id`` (a placement or a modification) may go out."""
        self._checks[order_id] = check

    @contextlib.contextmanager
    def what_if(self) -> Iterator[None]:
        """Within this block an order frame without a check is a whatIf preview (it
        never trades) and is written: ``IB.whatIfOrderAsync`` sends it synchronously."""
        self._what_if = True
        try:
            yield
        finally:
            self._what_if = False

    def forget(self, order_id: int) -> None:
        """Drop a check registered for a frame that was never submitted."""
        self._checks.pop(order_id, None)

    def was_written(self, order_id: int) -> bool:
        """True once the order's first frame reached the socket."""
        return order_id in self._written

    def keep_written(self, order_ids: set[int]) -> None:
        """Forget the written mark of every order but ``order_ids`` (the day's done
        orders, at a new trading day: the set must not grow all week)."""
        self._written &= order_ids

    @property
    def waiting(self) -> int:
        """Frames waiting for their turn."""
        return len(self._queue)

    def recheck(self) -> int:
        """Ask every waiting order frame's check now (the trading state tightened);
        returns how many were dropped."""
        kept: deque[_Frame] = deque()
        dropped = 0
        for frame in self._queue:
            reason = self._refusal(frame)
            if reason is None:
                kept.append(frame)
            else:
                self._drop(frame, reason)
                dropped += 1
        self._queue = kept
        return dropped

    # -- ib_async's sendMsg ------------------------------------------------------------

    def _submit(self, msg: str | None) -> None:
        if msg:
            fields = msg.split("\0", 3)
            kind = fields[0]
            if (
                self.readonly
                and not self._what_if
                and kind in (PLACE_ORDER, CANCEL_ORDER, REQ_GLOBAL_CANCEL)
            ):
                oid = _order_id(fields, 1 if kind == PLACE_ORDER else 2)
                self._drop(_Frame(msg, kind, oid), "read-only session: no order frame is written")
                return
            if kind == PLACE_ORDER:
                order_id = _order_id(fields, 1)
                check = self._checks.pop(order_id, None)
                if check is None and self._what_if:
                    check = _no_objection
                frame = _Frame(msg, kind, order_id, check)
                if check is None:
                    self._drop(frame, "not placed through the trade manager: no pre-trade check")
                    return
                self._queue.append(frame)
            elif kind == CANCEL_ORDER:
                self._cancel(_Frame(msg, kind, _order_id(fields, 2)))
            elif kind == REQ_GLOBAL_CANCEL:
                for frame in [f for f in self._queue if f.kind == PLACE_ORDER]:
                    self._queue.remove(frame)
                    self._drop(frame, "cancelled by a global cancel before it was written")
                self._queue.appendleft(_Frame(msg, kind))
            else:
                self._queue.append(_Frame(msg, kind))
        self._pump()

    def _cancel(self, cancel: _Frame) -> None:
        waiting = [
            f for f in self._queue if f.kind == PLACE_ORDER and f.order_id == cancel.order_id
        ]
        for frame in waiting:
            self._queue.remove(frame)
            self._drop(frame, "cancelled before it was written")
        if waiting and not self.was_written(cancel.order_id):
            return  # IB never saw the order: nothing to cancel there
        self._queue.appendleft(cancel)  # a way out never waits behind new orders

    def _pump(self) -> None:
        if self._timer is not None:
            self._timer.cancel()  # harmless when it is the timer running now
            self._timer = None
        if not self.client.isConnected():
            self._drop_all("the connection closed before it was written")
            return
        now = self._clock()
        times = self._times
        while times and now - times[0] >= 1.0:
            times.popleft()
        while self._queue and len(times) < self.max_per_second:
            frame = self._queue.popleft()
            reason = self._refusal(frame)
            if reason is not None:
                self._drop(frame, reason)
                continue
            self._write(frame.msg)
            times.append(now)
            if frame.kind == PLACE_ORDER and frame.order_id not in self._written:
                self._written.add(frame.order_id)
                self.orderWritten.emit(frame.order_id)
        if self._queue:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(max(0.0, times[0] + 1.0 - now), self._pump)

    def _refusal(self, frame: _Frame) -> str | None:
        if frame.check is None:
            return None
        try:
            return frame.check()
        except Exception as exc:  # a broken check must fail closed
            log.exception("wire check for order %d failed", frame.order_id)
            return f"the pre-trade check failed at the wire ({exc})"

    def _drop(self, frame: _Frame, reason: str) -> None:
        if frame.kind != PLACE_ORDER:
            log.warning("request not written: %s", reason)
            return
        first = frame.order_id not in self._written
        log.warning("order %d not written: %s", frame.order_id, reason)
        self.frameDropped.emit(FrameDropped(frame.order_id, reason, first))

    def _drop_all(self, reason: str) -> None:
        queue, self._queue = self._queue, deque()
        for frame in queue:
            self._drop(frame, reason)
        self._checks.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_disconnected(self) -> None:
        self._drop_all("the connection closed before it was written")
        self._times.clear()
