"""How much of each standing risk limit is used, coalesced into few events.

:func:`utilizations` reads the exposure book and the limits (value / limit per scope and
limit); :class:`UtilizationReporter` emits only the ones that moved by
``step`` or more, crossed 100 %, or are seen for the first time, at most every
``interval`` seconds, so a tick storm is a handful of events for the risk panel.

Events
------
* ``utilizationChanged`` (utilization: :class:`core.events.LimitUtilizationChanged`)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from eventkit import Event

from core.events import LimitUtilizationChanged
from core.exposure import ExposureBook
from core.pretrade import LimitSet, pct_loss_limit

__all__ = ["CallLater", "UtilizationReporter", "utilizations"]

#: Schedules ``callback`` in ``delay`` seconds and returns a handle (only kept, to know
#: a publish is pending); raises RuntimeError when there is no running loop.
CallLater = Callable[[float, Callable[[], object]], object]


def _call_later(delay: float, callback: Callable[[], object]) -> asyncio.TimerHandle:
    return asyncio.get_running_loop().call_later(delay, callback)


def utilizations(book: ExposureBook, limits: LimitSet, now: float) -> list[LimitUtilizationChanged]:
    """Every standing limit's use now (value / limit), for each scope with limits."""
    out: list[LimitUtilizationChanged] = []
    for name, sb in book.scopes.items():
        lim = limits.active(name)
        if lim is None:
            continue

        def add(limit: str, value: float, limit_value: float | None, name: str = name) -> None:
            if limit_value is not None:
                out.append(LimitUtilizationChanged(name, limit, value, float(limit_value)))

        if lim.max_position_quantity is not None:
            top = max((abs(q) for q in sb.qty.values()), default=0.0)
            add("max_position_quantity", top, lim.max_position_quantity)
        if lim.max_position_notional is not None:
            top = max((abs(v) for v in sb.notional.values()), default=0.0)
            add("max_position_notional", top, lim.max_position_notional)
        add("max_gross_exposure", sb.gross, lim.max_gross_exposure)
        add("max_net_exposure", abs(sb.net), lim.max_net_exposure)
        add("max_working_orders", float(sb.working_count), lim.max_working_orders)
        if lim.max_orders_per_second is not None:
            add("max_orders_per_second", float(sb.recent(now)), lim.max_orders_per_second)
        loss = max(0.0, -(sb.pnl or 0.0))
        add("daily_loss_limit", loss, lim.daily_loss_limit)
        pct_limit = pct_loss_limit(book, lim)
        if pct_limit is not None:
            add("daily_loss_limit_pct", loss, pct_limit)
        drawdown = sb.hwm - sb.pnl if sb.pnl is not None else 0.0
        add("max_drawdown", drawdown, lim.max_drawdown)
    return out


class UtilizationReporter:
    """Coalesces utilization changes into ``utilizationChanged`` events.

    ``call_later`` schedules the coalesced publish (default: on the running loop);
    tests pass their own timer to fire it without waiting.
    """

    def __init__(
        self,
        book: ExposureBook,
        limits: Callable[[], LimitSet],
        clock: Callable[[], float],
        *,
        step: float = 0.01,
        interval: float = 0.1,
        call_later: CallLater = _call_later,
    ) -> None:
        self.book = book
        self._limits = limits
        self._clock = clock
        self.step = step
        self.interval = interval
        self._last: dict[tuple[str, str], float] = {}
        self.call_later = call_later
        self._handle: object | None = None
        self.utilizationChanged: Event = Event("utilizationChanged")

    def current(self) -> list[LimitUtilizationChanged]:
        """Every standing limit's use now."""
        return utilizations(self.book, self._limits(), self._clock())

    def publish(self) -> int:
        """Emit the utilizations that changed meaningfully; returns how many."""
        self._handle = None
        n = 0
        for u in self.current():
            k = (u.scope, u.limit)
            value = u.utilization
            last = self._last.get(k)
            if (
                last is None
                or abs(value - last) >= self.step
                or (value >= 1.0) != (last >= 1.0)
                or (value == 0.0) != (last == 0.0)
            ):
                self._last[k] = value
                self.utilizationChanged.emit(u)
                n += 1
        return n

    def dirty(self) -> None:
        """Something moved: publish within ``interval`` (when a loop runs)."""
        if self._handle is not None:
            return
        try:
            self._handle = self.call_later(self.interval, self.publish)
        except RuntimeError:
            return  # no loop: callers use publish() directly
