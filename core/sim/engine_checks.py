"""The engine's pre-trade checks: what TWS refuses, with IB's codes and texts (the codes
are listed in :mod:`core.sim.engine`'s docstring), and the initial-margin check."""

from __future__ import annotations

import math

from core.sim.engine_base import (
    _EPS,
    MSG_MISSING_PARENT,
    MSG_MODIFY_MISMATCH,
    MSG_NO_SECURITY,
    MSG_REJECTED,
    MSG_TICK,
    MSG_UNSUPPORTED_TYPE,
    MSG_ZERO_SIZE,
    ORDER_TYPES,
    TIFS,
    EngineParts,
    _on_grid,
    _price,
)
from core.sim.model import (
    Instrument,
    OrderRejected,
    OrderRequest,
    OrderState,
    SimOrder,
)


class OrderChecks(EngineParts):
    """Validation of a new or modified order (a mixin of Engine)."""

    def _validate(self, req: OrderRequest, existing: SimOrder | None) -> Instrument:
        """Normalise ``req`` in place and check it; returns its instrument."""
        inst = self.universe.by_con_id(req.con_id)
        if inst is None:
            raise OrderRejected(200, MSG_NO_SECURITY)
        req.action = req.action.upper().strip()
        req.order_type = " ".join(req.order_type.upper().split())
        req.tif = (req.tif or "DAY").upper().strip()
        req.lmt_price = _price(req.lmt_price)
        req.aux_price = _price(req.aux_price)
        req.trailing_percent = _price(req.trailing_percent)
        req.trail_stop_price = _price(req.trail_stop_price)
        if req.action not in ("BUY", "SELL"):
            raise OrderRejected(201, MSG_REJECTED + f"Invalid action '{req.action}'")
        if req.order_type not in ORDER_TYPES:
            raise OrderRejected(387, MSG_UNSUPPORTED_TYPE + f" ({req.order_type})")
        if req.tif not in TIFS:
            raise OrderRejected(201, MSG_REJECTED + f"Invalid time in force '{req.tif}'")
        if req.account and req.account not in self._accounts:
            raise OrderRejected(201, MSG_REJECTED + f"Invalid account '{req.account}'")
        qty = req.total_quantity
        if qty == 0:
            raise OrderRejected(434, MSG_ZERO_SIZE)
        if qty < 0 or math.isnan(qty):
            raise OrderRejected(201, MSG_REJECTED + "The order quantity must be positive")
        if qty < inst.min_size - _EPS:
            raise OrderRejected(
                388,
                f"Order size {qty:g} is smaller than the minimum required size of "
                f"{inst.min_size:g}.",
            )
        n = qty / inst.size_increment
        if abs(n - round(n)) > 1e-6:
            raise OrderRejected(
                201,
                MSG_REJECTED + f"The order size {qty:g} is not a multiple of the size increment "
                f"{inst.size_increment:g} (minimum {inst.min_size:g})",
            )
        if req.order_type in ("LMT", "STP LMT"):
            if req.lmt_price is None or req.lmt_price <= 0:
                raise OrderRejected(201, MSG_REJECTED + "A limit order needs a positive price")
            if not _on_grid(req.lmt_price, inst.min_tick):
                raise OrderRejected(110, MSG_TICK)
        else:
            req.lmt_price = None  # a market order's price field carries nothing
        if req.order_type in ("STP", "STP LMT"):
            if req.aux_price is None or req.aux_price <= 0:
                raise OrderRejected(201, MSG_REJECTED + "A stop order needs a positive stop price")
            if not _on_grid(req.aux_price, inst.min_tick):
                raise OrderRejected(110, MSG_TICK)
        if req.order_type == "TRAIL":
            amount_ok = req.aux_price is not None and req.aux_price > 0
            pct_ok = req.trailing_percent is not None and 0 < req.trailing_percent < 100
            if not (amount_ok or pct_ok):
                raise OrderRejected(
                    201, MSG_REJECTED + "A trailing stop needs a trailing amount or percent"
                )
            if req.trail_stop_price is not None and not _on_grid(
                req.trail_stop_price, inst.min_tick
            ):
                raise OrderRejected(110, MSG_TICK)
        if req.parent_id:
            parent = self._orders.get((req.client_id, req.parent_id))
            if parent is None or parent.state == OrderState.CANCELLED:
                raise OrderRejected(10006, MSG_MISSING_PARENT + f" ({req.parent_id})")
        if existing is not None:
            old = existing.request
            if req.con_id != old.con_id or req.action != old.action:
                raise OrderRejected(105, MSG_MODIFY_MISMATCH)
            if qty < existing.filled - _EPS:
                raise OrderRejected(
                    201,
                    MSG_REJECTED
                    + f"The quantity {qty:g} is below the filled quantity {existing.filled:g}",
                )
        return inst

    def _check_margin(self, req: OrderRequest, inst: Instrument) -> None:
        account = req.account or self.accounts[0]
        signed = req.total_quantity if req.action == "BUY" else -req.total_quantity
        ref = self._reference_price(req, inst)
        init_before, _ = self._margins(account)
        init_after, _ = self._margins(account, extra=(inst.con_id, signed, ref))
        ewl = self._net_liq(account)
        if init_after > init_before + _EPS and init_after > ewl:
            raise OrderRejected(
                201,
                MSG_REJECTED + "YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED "
                f"POSITION YOUR EQUITY WITH LOAN VALUE [{ewl:.2f} USD] MUST EXCEED THE "
                f"INITIAL MARGIN [{init_after:.2f} USD]",
            )

    def _reference_price(self, req: OrderRequest, inst: Instrument) -> float:
        if req.lmt_price is not None:
            return req.lmt_price
        if req.order_type in ("STP", "STP LMT") and req.aux_price is not None:
            return req.aux_price
        q = self.market.quote(inst.con_id)
        touch = q.ask if req.action.upper() == "BUY" else q.bid
        return touch if touch > 0 else self.market.mark(inst.con_id)
