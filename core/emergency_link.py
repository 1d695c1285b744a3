"""The emergency stop's hold on the connection: notice a drop, wait for the reconnect.

A stop must not carry on in a session that has gone: orders it saw working and
positions it read may be stale after a reconnect. :class:`StopLink` counts socket
losses (a reconnect can complete between two polls, so "connected now" alone would miss
that the session changed); each round of the stop (:mod:`core.emergency`) begins a
generation, and every step checks it is still in it (:meth:`StopLink.check`), raising
:class:`LinkInterrupted` so the round is abandoned and started again once the connection
is back (:meth:`StopLink.wait_connected`, bounded, saying each second how long it will
still wait). Positions are read through it too, so a drop during the read interrupts
the round rather than passing off a timeout as IB's answer.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable

from ib_async import IB, Position

from core.emergency_report import EmergencyStopProgress, StopRun
from core.events import QTY_EPS

log = logging.getLogger("core.emergency")

__all__ = ["LinkInterrupted", "StopLink"]


class LinkInterrupted(Exception):
    """The connection went away in the middle of a step."""


class StopLink:
    """Follows the connection for the stop: drops, the round's generation, the reconnect.

    ``connection`` (a :class:`core.connection.Connection`) is read for its ``state``: the
    session counts as back once it is synchronised (orders, positions loaded); without
    it, ``ib.isConnected()`` alone decides. ``say`` publishes the stop's progress.
    """

    def __init__(
        self,
        ib: IB,
        connection: object | None,
        account: str,
        say: Callable[[EmergencyStopProgress], None],
    ) -> None:
        self.ib = ib
        self.connection = connection
        self.account = account
        self._say = say
        self._links_lost = 0
        self._generation = 0
        ib.disconnectedEvent += self._on_disconnected

    def _on_disconnected(self) -> None:
        self._links_lost += 1

    def begin_round(self) -> None:
        """A round starts in the session that is up now."""
        self._generation = self._links_lost

    def check(self) -> None:
        """Raise :class:`LinkInterrupted` if the session this round started in is gone."""
        if self._links_lost != self._generation or not self.ib.isConnected():
            raise LinkInterrupted("the connection was lost")

    def connected(self) -> bool:
        """True when connected and, with a Connection, synchronised."""
        if not self.ib.isConnected():
            return False
        state = getattr(self.connection, "state", None)
        # CONNECTED is set once the session is synchronised (orders, positions loaded)
        return state is None or str(state) in ("connected", "link lost")

    async def wait_connected(self, run: StopRun, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the connection; False (and a failure noted
        once per run) when it does not come back."""
        if self.connected():
            return True
        if run.gave_up_waiting:
            return False  # waited the whole bound once already: say so now, not later
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        log.warning("emergency stop: waiting for the connection to come back")
        said = -1
        while not self.connected():
            left = deadline - loop.time()
            if left <= 0:
                run.gave_up_waiting = True
                run.fail(
                    "connection",
                    "IB",
                    f"not connected, and no reconnect within {timeout:g}s",
                )
                return False
            if math.ceil(left) != said:
                said = math.ceil(left)
                self._say(
                    run.progress(
                        "waiting", f"waiting for the connection to IB (gives up in {said} s)"
                    )
                )
            await asyncio.sleep(0.05)
        return True

    async def positions(self, timeout: float) -> list[Position]:
        """The account's open positions, re-read from IB (``reqPositions``).

        Raises :class:`LinkInterrupted` when the connection drops before or while they
        are read, TimeoutError when IB does not answer within ``timeout`` seconds.
        """
        if not self.ib.isConnected():
            raise LinkInterrupted("not connected")
        links = self._links_lost
        try:
            positions = await asyncio.wait_for(self.ib.reqPositionsAsync(), timeout)
        except TimeoutError as exc:
            if not self.ib.isConnected() or links != self._links_lost:
                raise LinkInterrupted("disconnected while reading positions") from exc
            raise
        if links != self._links_lost:
            raise LinkInterrupted("disconnected while reading positions")
        return [
            p
            for p in positions
            if (not self.account or p.account == self.account) and abs(float(p.position)) > QTY_EPS
        ]
