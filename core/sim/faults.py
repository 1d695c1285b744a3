"""Fault injection: the failures of a real gateway, played on demand.

Tests and the ``ibsim`` console call these on a running :class:`~core.sim.server.SimGateway`:
dropped and refused connections, a rejected order, delayed fills, frozen market data,
a pacing violation, IB connectivity lost and restored (1100/1101/1102), and the nightly
restart of TWS / IB Gateway with its logged-out window.
"""

from __future__ import annotations

import asyncio
import logging

from core.sim import protocol as p
from core.sim.parts import (
    FARM_NOTICES,
    MSG_CONNECTIVITY_LOST,
    MSG_PACING,
    MSG_RESTORED_DATA_KEPT,
    MSG_RESTORED_DATA_LOST,
    GatewayParts,
)

log = logging.getLogger("core.sim")


class FaultInjection(GatewayParts):
    """The gateway's fault controls (a mixin of SimGateway; see the module docstring)."""

    async def drop_connections(self) -> None:
        """Abort every client connection now, as a network failure would."""
        sessions = list(self._sessions)
        log.warning("fault: dropping %d connection(s)", len(sessions))
        for session in sessions:
            session.abort()
        # Let the sessions' tasks see the close before returning.
        await asyncio.sleep(0)

    def refuse_connections(self, seconds: float) -> None:
        """Stop listening for ``seconds``: new connections are refused, open ones stay."""
        log.warning("fault: refusing connections for %.1f s", seconds)
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._refuse_handle is not None:
            self._refuse_handle.cancel()
        loop = asyncio.get_running_loop()
        # The coroutine is created only when due, so a stop() in between leaves none unawaited.
        self._refuse_handle = loop.call_later(seconds, lambda: self._spawn(self._relisten()))

    async def _relisten(self) -> None:
        self._refuse_handle = None
        if self._running and self._server is None:
            await self._listen()
            log.warning("fault over: accepting connections again on port %d", self.port)

    def reject_next_order(self, code: int, message: str) -> None:
        """The next placeOrder is rejected with IB error ``code`` and ``message``."""
        log.warning("fault: next order will be rejected with %d", code)
        self.engine.reject_next(code, message)

    def delay_fills(self, ms: float) -> None:
        """Orders fill no sooner than ``ms`` milliseconds after they were placed."""
        log.warning("fault: fills delayed by %.0f ms", ms)
        self.engine.fill_delay_s = max(0.0, ms / 1000.0)

    def freeze_market_data(self, frozen: bool = True) -> None:
        """Stop (or resume) the price walk: no new ticks reach subscribers."""
        log.warning("fault: market data %s", "frozen" if frozen else "unfrozen")
        self.market.frozen = frozen
        self._announce_data_types()

    def send_pacing_violation(self, req_id: int = -1) -> None:
        """Send error 100 (pacing violation) to every client."""
        log.warning("fault: pacing violation to every client")
        self._broadcast_error(req_id, 100, MSG_PACING)

    def connectivity_lost(self) -> None:
        """Send error 1100 (IB-side connectivity lost) to every client; sockets stay open."""
        log.warning("fault: connectivity to IB lost")
        self._broadcast_error(-1, 1100, MSG_CONNECTIVITY_LOST)

    def connectivity_restored(self, data_lost: bool = False) -> None:
        """Send 1102 (restored, data maintained) or 1101 (restored, data lost)."""
        log.warning("fault over: connectivity restored (data %s)", "lost" if data_lost else "kept")
        if data_lost:
            self._broadcast_error(-1, 1101, MSG_RESTORED_DATA_LOST)
        else:
            self._broadcast_error(-1, 1102, MSG_RESTORED_DATA_KEPT)

    def nightly_reset(
        self, *, down_for: float = 60.0, relogin_for: float = 10.0, data_lost: bool = False
    ) -> asyncio.Task[None]:
        """Play TWS / IB Gateway's nightly restart; returns the task playing it (await it
        to wait for the end).

        1. Every API connection is dropped and the port refuses connections for
           ``down_for`` seconds (TWS is restarting).
        2. The port listens again, but for ``relogin_for`` seconds TWS is not logged in
           to IB: clients that connect hear 1100 and the data farms broken (2103, 2105)
           instead of the farm OK notices; the market walk pauses and no market data
           goes out. Orders, positions and executions survive (they live at IB).
        3. IB is back: 1102 "data maintained" (or, with ``data_lost``, 1101: every market
           data and depth subscription is forgotten and must be requested again), the
           farm OK notices, and market data flows again.

        IB's message codes page names the nightly server reset among the causes of 1100
        and documents 1101 (restored, market data requests lost: resubmit) and 1102
        (restored, data maintained), and 2103/2105 (a data farm connection broken; outside
        that reset, usually the ISP): https://interactivebrokers.github.io/tws-api/message_codes.html
        """
        if down_for < 0 or relogin_for < 0:
            raise ValueError("nightly_reset: durations must not be negative")
        if self._reset_task is not None and not self._reset_task.done():
            log.warning("fault: a nightly reset is already under way")
            return self._reset_task
        task = asyncio.ensure_future(self._play_nightly_reset(down_for, relogin_for, data_lost))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        self._reset_task = task
        return task

    async def _play_nightly_reset(self, down_for: float, relogin_for: float, lost: bool) -> None:
        log.warning(
            "fault: nightly reset (down %.1f s, logging in %.1f s, data %s)",
            down_for,
            relogin_for,
            "lost" if lost else "kept",
        )
        self._link_down = True
        if self._refuse_handle is not None:  # this reset decides when to listen again
            self._refuse_handle.cancel()
            self._refuse_handle = None
        if self._server is not None:
            self._server.close()
            self._server = None
        await self.drop_connections()
        try:
            await asyncio.sleep(down_for)
            if not self._running:
                return
            if self._server is None:
                await self._listen()
            log.warning("nightly reset: listening on port %d, not logged in to IB", self.port)
            await asyncio.sleep(relogin_for)
        finally:
            self._link_down = False
        if not self._running:
            return
        if lost:
            for session in self._sessions:
                session.mkt.clear()
                session.depth.clear()
        self.connectivity_restored(data_lost=lost)
        for session in self._live_sessions():
            for code, text in FARM_NOTICES:
                session.send(p.error(session.version, -1, code, text))
        # Subscribers (kept, or made while logged out) get the current quotes.
        self._push_quotes({sub.con_id for s in self._live_sessions() for sub in s.mkt.values()})
        log.warning("nightly reset over")

    @property
    def accepting(self) -> bool:
        """True while the port accepts new connections."""
        return self._server is not None

    @property
    def link_down(self) -> bool:
        """True while a nightly reset has TWS up but not logged in to IB."""
        return self._link_down

    def _broadcast_error(self, req_id: int, code: int, message: str) -> None:
        for session in self._live_sessions():
            session.send(p.error(session.version, req_id, code, message))
