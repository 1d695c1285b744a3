"""Reconciliation: IB's positions against the console's journalled book.

The console's positions are rebuilt from its own fills journal (ArcticDB); IB keeps its
own. They can differ: a trade made in TWS or by another client, a fill executed while
the console was down beyond IB's replay, an expiry or an assignment, or fills still on
their way to a slow store. :class:`Reconciliation` compares the two per contract,
reports each difference as a :class:`core.events.ReconciliationBreakFound` with its
likely cause, and resolves one on request by journalling an adjustment fill to a
strategy (``external`` by default), so that a restart reproduces the resolution.

It is kept apart from :mod:`core.portfolio` (which owns the book and P&L) because it is
a different question asked of the book: it reads the book through the narrow
:class:`Book` protocol and hands adjustment fills back through a callable, so it
depends on nothing above it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from eventkit import Event
from ib_async import IB, Contract

from core.events import (
    EXTERNAL,
    QTY_EPS,
    AuditRecorded,
    FillRecorded,
    PositionChanged,
    ReconciliationBreakFound,
    now_utc,
)
from core.marketdata import clean_price

if TYPE_CHECKING:
    from core.store import Store

log = logging.getLogger(__name__)

#: A difference with IB must still be there this much later to be reported as a break.
RECONCILE_CONFIRM_S = 1.0
#: How many times a moving difference is looked at again before it is reported anyway.
MAX_CONFIRM_LOOKS = 5
#: The order_ref of adjustment fills written by :meth:`Reconciliation.resolve_break`.
RECONCILIATION_REF = "reconciliation"


class BookPosition(Protocol):
    """What reconciliation reads of one (strategy, contract) position."""

    @property
    def con_id(self) -> int: ...
    @property
    def symbol(self) -> str: ...
    @property
    def account(self) -> str: ...
    @property
    def sec_type(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def multiplier(self) -> float: ...
    @property
    def avg_cost(self) -> float: ...


class Book(Protocol):
    """What reconciliation reads of the console's book (:class:`core.portfolio.PositionBook`)."""

    @property
    def marks(self) -> dict[int, float]: ...

    def quantities(self) -> dict[int, float]: ...

    def __iter__(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class _Adjust:
    symbol: str
    sec_type: str
    currency: str
    multiplier: float
    price: float


class Reconciliation:
    """Compares IB's positions in ``account`` with the stored ``book()`` and resolves
    the differences (see the module docstring).

    ``book`` returns the current book (it is replaced when the portfolio is restored);
    ``apply`` puts an adjustment fill into it. ``contract_info`` finds a contract IB no
    longer holds; ``audit`` records a resolution (and journals it, when it is the
    session's audit log), else it goes straight to the store's audit library.

    Events:
        * ``reconciliationBreak`` (brk: :class:`core.events.ReconciliationBreakFound`)
        * ``reconciled`` (breaks: list of them): a reconciliation finished; contracts
          not in the list match IB
    """

    def __init__(
        self,
        ib: IB,
        book: Callable[[], Book],
        apply: Callable[[FillRecorded], PositionChanged | None],
        store: Store | None = None,
        *,
        account: str = "",
        contract_info: Callable[[int], Contract | None] | None = None,
        audit: Callable[[AuditRecorded], Any] | None = None,
    ) -> None:
        self.ib = ib
        self._book = book
        self._apply = apply
        self.store = store
        self.account = account
        self.contract_info = contract_info
        self.audit = audit
        self.reconciliationBreak: Event = Event("reconciliationBreak")
        self.reconciled: Event = Event("reconciled")

    def report(self) -> list[ReconciliationBreakFound]:
        """Compare IB's positions with the sum of the strategies' stored positions.

        Returns (and emits as ``reconciliationBreak``) one break per contract whose
        quantities differ. Resolve one with :meth:`resolve_break`.
        """
        breaks = self.find_breaks()
        for brk in breaks:
            log.warning(
                "reconciliation break %s (%d): IB %g, stored %g: %s",
                brk.symbol,
                brk.con_id,
                brk.ib_quantity,
                brk.stored_quantity,
                brk.likely_cause,
            )
            self.reconciliationBreak.emit(brk)
        return breaks

    def find_breaks(self) -> list[ReconciliationBreakFound]:
        """The breaks :meth:`report` would report, without reporting them."""
        ib_qty: dict[int, float] = {}
        symbols: dict[int, str] = {}
        accounts: dict[int, str] = {}
        for p in self.ib.positions(self.account):
            c = p.contract
            ib_qty[c.conId] = ib_qty.get(c.conId, 0.0) + float(p.position)
            symbols[c.conId] = c.localSymbol if c.secType == "CASH" and c.localSymbol else c.symbol
            accounts[c.conId] = p.account
        book = self._book()
        stored = book.quantities()
        for pos in _positions(book):
            symbols.setdefault(pos.con_id, pos.symbol)
            accounts.setdefault(pos.con_id, pos.account)
        pending = self.store.pending_fills if self.store is not None else 0
        breaks = []
        for con_id in sorted(set(ib_qty) | set(stored)):
            theirs, ours = ib_qty.get(con_id, 0.0), stored.get(con_id, 0.0)
            if abs(theirs - ours) < QTY_EPS:
                continue
            brk = ReconciliationBreakFound(
                account=accounts.get(con_id, self.account),
                con_id=con_id,
                symbol=symbols.get(con_id, str(con_id)),
                ib_quantity=theirs,
                stored_quantity=ours,
                likely_cause=likely_cause(theirs, ours, pending),
            )
            breaks.append(brk)
        return breaks

    async def reconcile(
        self, settle: float = 0.0, *, confirm: float = RECONCILE_CONFIRM_S
    ) -> list[ReconciliationBreakFound]:
        """Reconcile after ``settle`` seconds (after a reconnect, let the replayed
        executions be journalled first); emits ``reconciled`` with the breaks.

        A difference is reported only once it has held still: seen the same at two
        looks ``confirm`` seconds apart with no fill waiting for the journal. IB's
        position update and the execution behind it arrive separately, so an order
        filling at that moment (the demo's, a strategy's) would otherwise show as a
        break that heals itself a moment later. A difference still moving after
        ``MAX_CONFIRM_LOOKS`` looks is reported as it stands.
        """
        if settle:
            await asyncio.sleep(settle)
        if confirm > 0:
            seen = _shape(self.find_breaks())
            for _ in range(MAX_CONFIRM_LOOKS):
                if not seen or not self.ib.isConnected():
                    break
                await asyncio.sleep(confirm)
                now = _shape(self.find_breaks())
                pending = self.store.pending_fills if self.store is not None else 0
                if now == seen and not pending:
                    break
                seen = now
        if not self.ib.isConnected():
            # ib_async forgets IB's positions when the link drops: every stored position
            # would read as a break. The reconnect reconciles again once IB has sent them.
            log.info("reconciliation skipped: not connected to IB (its positions unknown)")
            return []
        breaks = self.report()
        self.reconciled.emit(breaks)
        return breaks

    async def resolve_break(
        self, brk: ReconciliationBreakFound, strategy: str = EXTERNAL, *, actor: str = "gui"
    ) -> PositionChanged | None:
        """Attribute a break's difference to ``strategy`` (``external`` by default).

        The other strategies' positions are left as they are; ``strategy`` gets IB's
        quantity minus the stored sum, so the sum matches IB again.

        Writes an adjustment fill (exec_id ``recon-...``, order_ref ``reconciliation``,
        no commission) for the difference to the journal, so a restart reproduces it,
        priced at IB's average cost (else the mark, else the stored average cost), and
        audits it: through the ``audit`` callback when one was given (which journals
        it), else straight to the store's audit library. Raises
        :class:`core.store.StoreError` if it could not be journalled.
        """
        diff = brk.difference
        if abs(diff) < QTY_EPS:
            return None
        info = self._adjust_info(brk)
        fill = FillRecorded(
            exec_id=f"recon-{uuid.uuid4().hex}",
            order_id=0,
            perm_id=0,
            client_id=0,
            strategy=strategy,
            account=brk.account,
            con_id=brk.con_id,
            symbol=info.symbol,
            sec_type=info.sec_type,
            currency=info.currency,
            exchange="",
            side="BOT" if diff > 0 else "SLD",
            quantity=abs(diff),
            price=info.price,
            multiplier=info.multiplier,
            commission=0.0,
            realized_pnl=None,
            order_ref=RECONCILIATION_REF,
            time=now_utc(),
        )
        record = AuditRecorded(
            actor=actor,
            action="resolve_break",
            subject=f"{brk.symbol} ({brk.con_id}): IB {brk.ib_quantity:g}, stored "
            f"{brk.stored_quantity:g}; {fill.side} {fill.quantity:g} @ {fill.price:g} "
            f"attributed to {strategy}",
            result="adjusted",
            strategy=strategy,
        )
        if self.store is not None:
            await self.store.append_fills([fill])
            if self.audit is None:
                await self.store.append_audit([record])
        if self.audit is not None:
            # The audit trail journals it (the session's AuditLog writes to this same
            # store): writing it here as well would record the resolution twice.
            self.audit(record)
        log.info("reconciliation: %s", record.subject)
        return self._apply(fill)

    def _adjust_info(self, brk: ReconciliationBreakFound) -> _Adjust:
        contract: Contract | None = None
        avg_cost: float | None = None
        for p in self.ib.positions(self.account):
            if p.contract.conId == brk.con_id:
                contract = p.contract
                avg_cost = clean_price(p.avgCost)
        if contract is None and self.contract_info is not None:
            contract = self.contract_info(brk.con_id)
        book = self._book()
        stored = next((p for p in _positions(book) if p.con_id == brk.con_id), None)
        multiplier = (
            float(contract.multiplier or 1)
            if contract is not None
            else (stored.multiplier if stored is not None else 1.0)
        )
        price = None
        if avg_cost:
            price = avg_cost / multiplier
        if price is None:
            price = book.marks.get(brk.con_id)
        if price is None and stored is not None:
            price = stored.avg_cost
        return _Adjust(
            symbol=brk.symbol,
            sec_type=contract.secType
            if contract is not None
            else (stored.sec_type if stored else ""),
            currency=contract.currency
            if contract is not None
            else (stored.currency if stored else ""),
            multiplier=multiplier,
            price=price or 0.0,
        )


def _positions(book: Book) -> Iterable[BookPosition]:
    return iter(book)


def _shape(breaks: list[ReconciliationBreakFound]) -> set[tuple[int, float, float]]:
    """What makes two looks at the breaks the same: contract and both quantities."""
    return {(b.con_id, b.ib_quantity, b.stored_quantity) for b in breaks}


def likely_cause(ib_qty: float, stored: float, pending: int) -> str:
    """Why IB holds ``ib_qty`` where the journal holds ``stored`` (``pending``: fills
    not journalled yet), in words for the trader."""
    if pending:
        return (
            f"{pending} fills are not journalled yet (the store is slow or failing); "
            "they will be written on retry"
        )
    if abs(stored) < QTY_EPS:
        return (
            "a position the console never recorded: traded in TWS or by another client, "
            "transferred in, or from before the journal began"
        )
    if abs(ib_qty) < QTY_EPS:
        return (
            "closed outside the console, or expired, exercised or assigned; or the journal "
            "holds fills IB does not (another account, a reset paper/simulated account)"
        )
    return (
        "fills the console did not see (placed elsewhere, or executed while it was down "
        "beyond IB's execution replay), or a partial expiry/assignment"
    )
