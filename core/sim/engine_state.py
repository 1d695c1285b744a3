"""The engine's saved state: accounts, positions, today's orders and executions as JSON
data, and back; a malformed state raises ``ValueError`` naming what is wrong."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any, Self

from core.sim.engine_base import (
    _STATE_VERSION,
    EngineParts,
    _Pos,
)
from core.sim.market import Market
from core.sim.model import (
    DONE_STATES,
    Execution,
    OrderRequest,
    OrderState,
    SimOrder,
)
from core.sim.universe import Universe


class EngineState(EngineParts):
    """Saving and restoring the engine (a mixin of Engine)."""

    def to_state(self) -> dict[str, Any]:
        """Everything needed to resume, JSON-serialisable (the market's quotes included)."""
        return {
            "version": _STATE_VERSION,
            "day": self._day,
            "accounts": list(self.accounts),
            "initial_cash": self.initial_cash,
            "fill_delay_s": self.fill_delay_s,
            "cash": {name: a.cash for name, a in self._accounts.items()},
            "realized": {name: a.realized for name, a in self._accounts.items()},
            "sod_net_liq": {name: a.sod_net_liq for name, a in self._accounts.items()},
            "positions": [
                {"account": acct, "con_id": con_id, **dataclasses.asdict(p)}
                for (acct, con_id), p in sorted(self._positions.items())
            ],
            "executions": [dataclasses.asdict(e) for e in self._executions],
            "working_orders": [_order_to_dict(o) for o in self.open_orders()],
            "completed_orders": [_order_to_dict(o) for o in self.completed_orders()],
            "held": [list(k) for k in sorted(self._held)],
            "commission_paid": [
                [cid, oid, paid] for (cid, oid), paid in sorted(self._commission_paid.items())
            ],
            "next_perm_id": self._next_perm_id,
            "exec_seq": self._exec_seq,
            "market": self.market.to_state(),
        }

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any],
        universe: Universe,
        market: Market,
        *,
        clock: Callable[[], float] = time.time,
        enforce_trading_hours: bool = False,
    ) -> Self:
        """Rebuild an engine saved by ``to_state``; the market gets its saved quotes back.

        Raises ValueError naming what is wrong when ``state`` is malformed. A state saved
        on an earlier day is rolled to today (DAY orders expire, executions are dropped).
        """
        if not isinstance(state, dict):
            raise ValueError("engine state must be a JSON object")
        if state.get("version") != _STATE_VERSION:
            raise ValueError(
                f"engine state version {state.get('version')!r} is not {_STATE_VERSION}"
            )
        try:
            engine = cls(
                universe,
                market,
                [str(a) for a in state["accounts"]],
                initial_cash=float(state["initial_cash"]),
                clock=clock,
                enforce_trading_hours=enforce_trading_hours,
            )
            engine.fill_delay_s = float(state["fill_delay_s"])
            for name in engine.accounts:
                acct = engine._accounts[name]
                acct.cash = float(state["cash"][name])
                acct.realized = float(state["realized"][name])
                acct.sod_net_liq = float(state["sod_net_liq"][name])
            for raw in state["positions"]:
                d = dict(raw)
                account, con_id = str(d.pop("account")), int(d.pop("con_id"))
                _require_account(engine, account)
                _require_instrument(universe, con_id)
                engine._positions[(account, con_id)] = _Pos(**{k: float(v) for k, v in d.items()})
            for raw in state["executions"]:
                engine._executions.append(Execution(**raw))
            for raw in state["working_orders"]:
                order = _order_from_dict(raw, universe)
                if order.state in DONE_STATES:
                    raise ValueError(f"working order {order.key} is in state {order.state}")
                engine._orders[order.key] = order
            for raw in state["completed_orders"]:
                order = _order_from_dict(raw, universe)
                if order.state not in DONE_STATES:
                    raise ValueError(f"completed order {order.key} is in state {order.state}")
                engine._orders[order.key] = order
                engine._completed.append(order.key)
            for cid, oid in state["held"]:
                if (int(cid), int(oid)) not in engine._orders:
                    raise ValueError(f"held order {(cid, oid)} is not a known order")
                engine._held.add((int(cid), int(oid)))
            for cid, oid, paid in state["commission_paid"]:
                engine._commission_paid[(int(cid), int(oid))] = float(paid)
            engine._next_perm_id = int(state["next_perm_id"])
            engine._exec_seq = int(state["exec_seq"])
            engine._day = str(state["day"])
            if "market" in state:
                market.restore(state["market"])
        except KeyError as exc:
            raise ValueError(f"malformed engine state: missing {exc}") from exc
        except (TypeError, AttributeError) as exc:
            raise ValueError(f"malformed engine state: {exc}") from exc
        engine._roll_day_if_needed()
        return engine


def _order_to_dict(order: SimOrder) -> dict[str, Any]:
    return {
        "request": dataclasses.asdict(order.request),
        "perm_id": order.perm_id,
        "state": order.state.value,
        "filled": order.filled,
        "avg_fill_price": order.avg_fill_price,
        "last_fill_price": order.last_fill_price,
        "triggered": order.triggered,
        "trail_stop_price": order.trail_stop_price,
        "why_held": order.why_held,
        "created": order.created,
    }


def _order_from_dict(raw: dict[str, Any], universe: Universe) -> SimOrder:
    try:
        req = OrderRequest(**raw["request"])
        order = SimOrder(
            request=req,
            perm_id=int(raw["perm_id"]),
            state=OrderState(raw["state"]),
            filled=float(raw["filled"]),
            avg_fill_price=float(raw["avg_fill_price"]),
            last_fill_price=float(raw["last_fill_price"]),
            triggered=bool(raw["triggered"]),
            trail_stop_price=(
                None if raw["trail_stop_price"] is None else float(raw["trail_stop_price"])
            ),
            why_held=str(raw["why_held"]),
            created=float(raw["created"]),
        )
    except KeyError as exc:
        raise ValueError(f"malformed order in engine state: missing {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise ValueError(f"malformed order in engine state: {exc}") from exc
    _require_instrument(universe, req.con_id)
    return order


def _require_instrument(universe: Universe, con_id: int) -> None:
    if universe.by_con_id(con_id) is None:
        raise ValueError(f"engine state refers to con_id {con_id}, which is not in the universe")


def _require_account(engine: EngineParts, account: str) -> None:
    if account not in engine._accounts:
        raise ValueError(f"engine state refers to unknown account {account!r}")
