"""What an order is judged on that comes from IB: its qualified contract and the account.

:class:`core.admission.OrderAdmission` judges every order on IB's qualified contract
(from cached contract details: conId, type, multiplier, tick, lot) and stamps it with the
console's account. :class:`OrderContracts` is where those come from:

* :meth:`qualify`: IB's qualified copy of a contract, its details cached (what a
  strategy calls before placing: ``contract = await trades.qualify(contract)``);
* :meth:`details`: the cached details admission looks an order's contract up in (by
  the contract, else by its conId);
* :meth:`prefetch`: a contract refused for want of details has them asked of IB in the
  background, so the next try may pass;
* :meth:`learn_working`: at a resync, the details of every working order's contract
  (restored after a restart, placed elsewhere), so it can be modified at once;
* :attr:`account`: the configured account (``--account``), else the first IB manages.

Apart from :class:`core.trading.TradeManager` (which offers ``qualify`` and ``account``
and delegates here) because these are lookups, not decisions: nothing here refuses or
sends an order.
"""

from __future__ import annotations

import logging
from typing import Protocol

from ib_async import IB, Contract, ContractDetails

from core.contracts import ContractError, ContractService
from core.tasks import Tasks

log = logging.getLogger(__name__)


class ConfiguredAccount(Protocol):
    """Where the configured account is read (the :class:`core.connection.Connection`)."""

    @property
    def account(self) -> str:
        """The account given with ``--account`` ("" for IB's first)."""
        ...


class OrderContracts:
    """The contract details and the account orders are judged on (module docstring).

    ``contracts`` is the session's details cache; ``configured`` gives the configured
    account (None: none, IB's first); ``tasks`` runs the background details requests.
    """

    def __init__(
        self,
        ib: IB,
        contracts: ContractService,
        *,
        configured: ConfiguredAccount | None,
        tasks: Tasks,
    ) -> None:
        self._ib = ib
        self.contracts = contracts
        self._configured = configured
        self._tasks = tasks

    @property
    def account(self) -> str:
        """The account every order goes to: the configured one (``--account``), else
        the first IB manages (the one the console watches); "" until connected."""
        configured = self._configured.account if self._configured is not None else ""
        if configured:
            return configured
        accounts = self._ib.managedAccounts() if self._ib.isConnected() else []
        return accounts[0] if accounts else ""

    async def qualify(self, contract: Contract) -> Contract:
        """IB's qualified copy of ``contract``, its details cached. Raises
        :class:`core.contracts.ContractError` when IB knows no such contract."""
        return await self.contracts.qualify(contract)

    def details(self, contract: Contract) -> ContractDetails | None:
        """The cached details of ``contract`` (else of its conId); None: not known."""
        found = self.contracts.cached(contract)
        if found is None and contract.conId:
            found = self.contracts.by_con_id(contract.conId)
        return found

    def prefetch(self, contract: Contract) -> None:
        """Ask IB for the details of a contract an order was refused for want of."""
        if not self._ib.isConnected():
            return
        try:
            self._tasks.spawn(self._fetch(contract), "contract details")
        except RuntimeError:
            pass  # no event loop: nothing to ask with

    async def learn_working(self) -> None:
        """Fetch the details of every working order's contract not known yet: such an
        order is modified on them, so they are learnt now, not when the trader edits."""
        for trade in self._ib.openTrades():
            contract = trade.contract
            if contract.conId and self.details(contract) is None:
                await self._fetch(Contract(conId=contract.conId))

    async def _fetch(self, contract: Contract) -> None:
        try:
            await self.contracts.details(contract)
        except (ContractError, ConnectionError) as exc:  # the order's refusal said why
            log.info("details of %s: %s", contract, exc)
