"""The trading-state machine: ACTIVE / REDUCING / HALTED per scope, persisted.

Scopes are the account (``"account"``), a strategy (its name) and one contract
(:func:`contract_scope`, used by the emergency stop). An order is governed by the
*stricter* of its account's, strategy's and contract's states (:meth:`effective`).

The allowed changes are a table (:data:`TRANSITIONS`), as NautilusTrader writes its
order-state table: ACTIVE and REDUCING move freely between each other and to HALTED;
HALTED is left only by :meth:`TradingStates.reset_halt`, a person's act confirmed by
typing :data:`RESUME_CONFIRMATION`. Every change records who made it and when, is a
:class:`core.events.TradingStateChanged` event and an audit record, and is saved to the
store, so a restarted console comes back in the state a person last left it in, with
that person's name and the original time (:meth:`TradingStates.restore`,
:meth:`TradingStates.events`).

:class:`HealthWatch` turns connection and market-data health into automatic REDUCING
that it lifts again itself, but only if it set it and nobody changed it since.

Events
------
* ``changed`` (change: :class:`core.events.TradingStateChanged`)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from eventkit import Event

from core.audit import AuditLog
from core.connection import ConnectionState, ConnectionStatusChanged
from core.events import TradingState, TradingStateChanged, now_utc
from core.tasks import Tasks

log = logging.getLogger(__name__)

__all__ = [
    "ACCOUNT",
    "RESUME_CONFIRMATION",
    "STATE_KEY",
    "TRANSITIONS",
    "HealthWatch",
    "ScopeState",
    "StateStore",
    "TradingStates",
    "contract_scope",
    "strategy_or_none",
    "stricter",
]

#: The scope name of account-wide limits and state.
ACCOUNT = "account"
#: What a person types to leave HALTED.
RESUME_CONFIRMATION = "RESUME"
#: The store key the trading states are saved under.
STATE_KEY = "risk.trading_state"

_RANK = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}
_A, _R, _H = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED

#: (from, to) -> how the change may be made: ``"set"`` by :meth:`TradingStates.set`,
#: ``"reset"`` only by :meth:`TradingStates.reset_halt`. A pair not listed is a no-op.
TRANSITIONS: dict[tuple[TradingState, TradingState], str] = {
    (_A, _R): "set",
    (_A, _H): "set",
    (_R, _A): "set",
    (_R, _H): "set",
    (_H, _A): "reset",
    (_H, _R): "reset",
}


def stricter(a: TradingState, b: TradingState) -> TradingState:
    """The stricter of two trading states (HALTED > REDUCING > ACTIVE)."""
    return a if _RANK[a] >= _RANK[b] else b


def looser_or_equal(a: TradingState, b: TradingState) -> bool:
    """True when ``a`` is no stricter than ``b``."""
    return _RANK[a] <= _RANK[b]


def contract_scope(con_id: int) -> str:
    """The scope name of one contract's trading state (used by the emergency stop)."""
    return f"contract:{con_id}"


def strategy_or_none(scope: str) -> str | None:
    """The strategy a scope names, or None for the account and contracts."""
    return None if scope == ACCOUNT or scope.startswith("contract:") else scope


class StateStore(Protocol):
    """Where the trading state is kept across restarts (``core.store.Store``)."""

    def save_state(self, key: str, value: Any) -> Awaitable[Any]:
        """Save a small JSON-like value under ``key``."""
        ...

    def load_state(self, key: str) -> Awaitable[Any]:
        """The value saved under ``key``, or None."""
        ...


@dataclass(slots=True)
class ScopeState:
    """One scope's state, why, who set it and when."""

    state: TradingState = TradingState.ACTIVE
    reason: str = ""
    changed_by: str = ""
    changed_at: datetime | None = None
    #: REDUCING set by :class:`HealthWatch`: it may lift it again.
    auto: bool = False


class TradingStates:
    """The trading state of every scope, its transition table and its persistence.

    Parameters
    ----------
    store:
        Where the states are saved (None: memory only).
    audit:
        Where each change is recorded.
    now:
        Wall-clock time (aware) stamped on each change.
    """

    def __init__(
        self,
        *,
        store: StateStore | None = None,
        audit: AuditLog | None = None,
        now: Callable[[], datetime] = now_utc,
    ) -> None:
        self.store = store
        self.audit = audit or AuditLog()
        self._now = now
        self.changed: Event = Event("tradingStateChanged")
        self.account = ScopeState()
        self._scopes: dict[str, ScopeState] = {ACCOUNT: self.account}
        # contract scopes by conId too: the check asks per order, without a string
        self._contracts: dict[int, ScopeState] = {}
        self._tasks = Tasks("trading state")
        self._save_again = False
        #: Called when a scope changes because of health (HealthWatch forgets it).
        self.on_manual_change: Callable[[str], None] | None = None

    # -- reading ------------------------------------------------------------------------

    def get(self, scope: str) -> ScopeState | None:
        """The scope's record, or None when it was never set (ACTIVE)."""
        return self._scopes.get(scope)

    def state_of(self, scope: str = ACCOUNT) -> TradingState:
        """The trading state of one scope (ACTIVE when never set)."""
        s = self._scopes.get(scope)
        return s.state if s is not None else TradingState.ACTIVE

    def reason_of(self, scope: str = ACCOUNT) -> str:
        """Why ``scope`` is in its state (empty when ACTIVE by default)."""
        s = self._scopes.get(scope)
        return s.reason if s is not None else ""

    def effective(self, strategy: str, con_id: int | None = None) -> TradingState:
        """The stricter of the account's, the strategy's and the contract's states."""
        scopes = self._scopes
        state = self.account.state
        s = scopes.get(strategy)
        if s is not None:
            state = stricter(state, s.state)
        if con_id and self._contracts:
            c = self._contracts.get(con_id)
            if c is not None:
                state = stricter(state, c.state)
        return state

    def states(self) -> dict[str, TradingState]:
        """Every scope whose state is not ACTIVE, and the account's."""
        out = {ACCOUNT: self.account.state}
        for name, s in self._scopes.items():
            if s.state is not TradingState.ACTIVE:
                out[name] = s.state
        return out

    def events(self) -> list[TradingStateChanged]:
        """The states now as events, with the actor and time each was set (for a window
        that attaches late, or after a restart)."""
        out = []
        for scope, state in self.states().items():
            s = self._scopes[scope]
            out.append(
                TradingStateChanged(
                    scope,
                    state,
                    state,
                    s.reason or "no restriction in force",
                    s.changed_by or "risk",
                    time=s.changed_at or self._now(),
                )
            )
        return out

    # -- changing -----------------------------------------------------------------------

    def set(
        self,
        scope: str,
        state: TradingState | str,
        reason: str,
        by: str,
        *,
        auto: bool = False,
    ) -> bool:
        """Change ``scope`` to ``state``; False when it already was (same reason).

        ``auto`` marks a REDUCING that :class:`HealthWatch` may lift again.

        Raises
        ------
        ValueError
            An empty reason, or leaving HALTED other than by :meth:`reset_halt`.
        """
        return self._change(scope, TradingState(state), reason, by, auto=auto, reset=False)

    def _change(
        self, scope: str, state: TradingState, reason: str, by: str, *, auto: bool, reset: bool
    ) -> bool:
        if not reason.strip():
            raise ValueError("a trading state change needs a reason")
        s = self._scope(scope)
        previous = s.state
        how = TRANSITIONS.get((previous, state))
        if how == "reset" and not reset:
            raise ValueError(
                f"{scope} is HALTED: only reset_halt(...) with the confirmation "
                f"{RESUME_CONFIRMATION!r} leaves it"
            )
        s.auto = auto and state is TradingState.REDUCING
        if previous is state and s.reason == reason:
            return False
        s.state, s.reason, s.changed_by, s.changed_at = state, reason, by, self._now()
        if not auto and self.on_manual_change is not None:
            self.on_manual_change(scope)
        log.log(
            logging.WARNING if state is not TradingState.ACTIVE else logging.INFO,
            "trading state %s: %s -> %s (%s, by %s)",
            scope,
            previous,
            state,
            reason,
            by,
        )
        self.audit.record(
            by,
            "set_trading_state",
            f"{scope}: {previous} -> {state}",
            reason,
            strategy=strategy_or_none(scope),
        )
        self.changed.emit(
            TradingStateChanged(scope, state, previous, reason, by, time=s.changed_at)
        )
        self._persist()
        return True

    def reset_halt(
        self,
        by: str,
        confirmation: str,
        *,
        scope: str = ACCOUNT,
        to: TradingState | str = TradingState.ACTIVE,
        reason: str = "",
    ) -> None:
        """Leave HALTED: a person's explicit act, with ``confirmation`` typed as RESUME.

        Raises
        ------
        ValueError
            The confirmation is not :data:`RESUME_CONFIRMATION`, ``scope`` is not
            HALTED, or ``to`` is HALTED.
        """
        target = TradingState(to)
        if confirmation.strip() != RESUME_CONFIRMATION:
            self.audit.record(
                by,
                "reset_halt",
                scope,
                "refused: wrong confirmation text",
                strategy=strategy_or_none(scope),
            )
            raise ValueError(f"type {RESUME_CONFIRMATION} to confirm resetting the halt")
        if self.state_of(scope) is not TradingState.HALTED:
            raise ValueError(f"{scope} is {self.state_of(scope)}, not HALTED")
        if target is TradingState.HALTED:
            raise ValueError("reset_halt moves to ACTIVE or REDUCING")
        self._change(scope, target, reason or f"halt reset by {by}", by, auto=False, reset=True)
        self.audit.record(by, "reset_halt", scope, f"{target}", strategy=strategy_or_none(scope))

    def _scope(self, scope: str) -> ScopeState:
        s = self._scopes.get(scope)
        if s is None:
            s = self._scopes[scope] = ScopeState()
            if scope.startswith("contract:"):
                self._contracts[int(scope[9:])] = s
        return s

    # -- persistence --------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The saved form of every non-default trading state."""
        scopes = {}
        for name, s in self._scopes.items():
            if s.state is TradingState.ACTIVE and name != ACCOUNT:
                continue
            scopes[name] = {
                "state": str(s.state),
                "reason": s.reason,
                "by": s.changed_by,
                "time": s.changed_at.isoformat() if s.changed_at else None,
                "auto": s.auto,
            }
        return {"version": 1, "scopes": scopes}

    async def restore(self) -> dict[str, ScopeState]:
        """Load the saved states (call at start, before orders flow).

        Each scope comes back with the actor and time recorded when it was set; a
        restored non-ACTIVE state is an event (stamped with that original time and
        actor) and an audit record. Returns the restored scopes.
        """
        if self.store is None:
            return {}
        saved = await self.store.load_state(STATE_KEY)
        if not saved:
            return {}
        restored: dict[str, ScopeState] = {}
        for scope, entry in (saved.get("scopes") or {}).items():
            try:
                state = TradingState(entry["state"])
                when = entry.get("time")
                at = datetime.fromisoformat(when) if when else None
            except (KeyError, ValueError, TypeError, AttributeError):
                log.error("risk: ignoring unreadable saved state for %s: %r", scope, entry)
                continue
            s = self._scope(scope)
            previous = s.state
            s.state = state
            s.reason = str(entry.get("reason") or "")
            s.changed_by = str(entry.get("by") or "")
            s.changed_at = at
            s.auto = bool(entry.get("auto")) and state is TradingState.REDUCING
            restored[scope] = s
            if state is not previous:
                self.audit.record(
                    "system",
                    "set_trading_state",
                    f"{scope}: {previous} -> {state}",
                    f"restored: {s.reason}",
                    strategy=strategy_or_none(scope),
                )
                self.changed.emit(
                    TradingStateChanged(
                        scope,
                        state,
                        previous,
                        s.reason,
                        s.changed_by or "system",
                        time=at or self._now(),
                    )
                )
        return restored

    def _persist(self) -> None:
        if self.store is None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            log.warning("risk: no running loop; trading state not saved until flush()")
            self._save_again = True
            return
        self._save_again = True  # a running save loop goes round once more
        self._tasks.ensure("save", self._save_loop)

    async def _save_loop(self) -> None:
        assert self.store is not None
        delay = 0.2
        while True:
            self._save_again = False
            try:
                await self.store.save_state(STATE_KEY, self.snapshot())
            except Exception:
                log.exception("risk: could not save the trading state; retrying")
                self._save_again = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            if not self._save_again:
                return

    async def flush(self) -> None:
        """Wait until the current trading states are saved."""
        if self.store is None:
            return
        if not self._tasks.running("save") and not self._save_again:
            return
        await asyncio.shield(self._tasks.ensure("save", self._save_loop))


class HealthWatch:
    """Connection and market-data health as automatic REDUCING of a scope.

    IB's connectivity loss (1100, ``LINK_LOST``) or a lost socket moves the account to
    REDUCING; when the link is healthy again the account goes back to ACTIVE, but only
    if this watch moved it there and nobody changed it since. Stale market data for a
    contract moves the whole account to REDUCING when ``stale_action`` is
    ``"account"`` (the pre-trade check handles ``"contract"``).
    """

    def __init__(
        self,
        states: TradingStates,
        *,
        reduce_on_link_lost: bool = True,
        stale_action: str = "contract",
        symbol_of: Callable[[int], str] = str,
    ) -> None:
        self.states = states
        self.reduce_on_link_lost = reduce_on_link_lost
        self.stale_action = stale_action
        self._symbol_of = symbol_of
        self._reasons: dict[str, set[str]] = {}
        states.on_manual_change = self.forget

    def forget(self, scope: str) -> None:
        """Someone else set ``scope``: its health reasons no longer own its state."""
        self._reasons.pop(scope, None)

    def restored(self, scopes: dict[str, ScopeState]) -> None:
        """After :meth:`TradingStates.restore`: an automatic REDUCING stays liftable."""
        for scope, s in scopes.items():
            if s.auto:
                self._reasons.setdefault(scope, set()).add("restored")

    def on_connection_status(self, status: ConnectionStatusChanged) -> None:
        """LINK_LOST / a lost socket -> REDUCING; healthy -> back."""
        if not self.reduce_on_link_lost:
            return
        if status.state in (
            ConnectionState.LINK_LOST,
            ConnectionState.DISCONNECTED,
            ConnectionState.RECONNECTING,
            ConnectionState.GIVEN_UP,
        ):
            if status.state is ConnectionState.DISCONNECTED and status.reason.startswith(
                "closed by the user"
            ):
                return
            what = (
                "IB connectivity lost (1100)"
                if status.state is ConnectionState.LINK_LOST
                else f"connection {status.state.value}"
            )
            self.bad(ACCOUNT, "link", what)
        elif status.state is ConnectionState.CONNECTED:
            self.ok(ACCOUNT, "link", "connection healthy again")

    def on_stale(self, con_id: int, stale: bool) -> None:
        """Market data for a contract stopped (or resumed) updating."""
        if self.stale_action != "account":
            return
        sym = self._symbol_of(con_id)
        if stale:
            self.bad(ACCOUNT, f"stale:{con_id}", f"market data for {sym} is stale")
        else:
            self.ok(ACCOUNT, f"stale:{con_id}", f"market data for {sym} resumed")

    def bad(self, scope: str, tag: str, why: str) -> None:
        """``tag`` is unhealthy: REDUCING if the scope is ACTIVE."""
        reasons = self._reasons.setdefault(scope, set())
        reasons.add(tag)
        if self.states.state_of(scope) is TradingState.ACTIVE:
            self.states.set(scope, TradingState.REDUCING, why, "risk", auto=True)
        s = self.states.get(scope)
        if s is None or not s.auto:
            self._reasons.pop(scope, None)  # someone else owns this state

    def ok(self, scope: str, tag: str, why: str) -> None:
        """``tag`` is healthy again: back to ACTIVE when nothing else is wrong."""
        reasons = self._reasons.get(scope)
        if not reasons:
            return
        reasons.discard(tag)
        reasons.discard("restored")
        if reasons:
            return
        self._reasons.pop(scope, None)
        s = self.states.get(scope)
        if s is not None and s.auto and s.state is TradingState.REDUCING:
            self.states.set(scope, TradingState.ACTIVE, why, "risk")
