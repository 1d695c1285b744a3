"""Account information: account values and account P&L as typed objects, by events.

ib_async already subscribes to account updates on connect; this module translates its
``accountValueEvent`` into :class:`core.events.AccountValuesChanged` and streams IB's
own account P&L (``reqPnL``) as :class:`core.events.PnLChanged` (strategy None).
IB's placeholder values never become figures. Values arrive one message at a time (a
dozen per account update); ``valuesChanged`` fires once per network packet that changed
a figure, not once per message.
"""

from __future__ import annotations

import logging

from eventkit import Event
from ib_async import IB, AccountValue, PnL

from core.connection import Connection
from core.events import AccountValuesChanged, PnLChanged
from core.orders import price_or_none


def _figure(value: object) -> float | None:
    """An account figure or P&L as a float; None when IB means "not set" (a P&L of -1
    is a loss of one, not a placeholder as in a tick)."""
    try:
        return price_or_none(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


log = logging.getLogger(__name__)

#: Account-value tags in the base currency that the headline figures use.
_TAGS = {
    "NetLiquidation": "net_liquidation",
    "TotalCashValue": "cash",
    "BuyingPower": "buying_power",
    "ExcessLiquidity": "excess_liquidity",
    "GrossPositionValue": "gross_position_value",
    "InitMarginReq": "init_margin",
    "MaintMarginReq": "maint_margin",
    "UnrealizedPnL": "unrealized_pnl",
    "RealizedPnL": "realized_pnl",
}


class AccountInfo:
    """Headline figures and P&L of one account.

    Events:
        * ``valuesChanged`` (values: :class:`core.events.AccountValuesChanged`)
        * ``pnlChanged`` (pnl: :class:`core.events.PnLChanged`): IB's account P&L
    """

    def __init__(self, ib: IB, account: str = "", connection: Connection | None = None) -> None:
        self.ib = ib
        self.account = account
        self.currency = "USD"
        self.valuesChanged: Event = Event("valuesChanged")
        self.pnlChanged: Event = Event("pnlChanged")
        self._figures: dict[str, float | None] = dict.fromkeys(_TAGS.values())
        self._daily_pnl: float | None = None
        self._pnl: PnL | None = None
        self._changed = False
        ib.accountValueEvent += self._on_account_value
        ib.pnlEvent += self._on_pnl
        ib.updateEvent += self._on_packet_done
        if connection is not None:
            connection.connected += self._on_connected

    def start(self) -> None:
        """Pick the account if not given, load current values and subscribe to P&L."""
        if not self.account:
            accounts = self.ib.managedAccounts()
            self.account = accounts[0] if accounts else ""
        for value in self.ib.accountValues(self.account):
            self._apply(value)
        self._emit_values()
        if self.account and self.ib.isConnected() and self._pnl is None:
            self._pnl = self.ib.reqPnL(self.account)

    def _on_connected(self, reconnect: bool) -> None:
        # ib_async forgets P&L subscriptions with its session state.
        self._pnl = None
        self.start()

    def values(self) -> AccountValuesChanged:
        """The latest headline figures."""
        return AccountValuesChanged(
            account=self.account,
            currency=self.currency,
            daily_pnl=self._daily_pnl,
            **self._figures,  # type: ignore[arg-type]
        )

    def value(self, tag: str, currency: str | None = None) -> float | None:
        """Any account value by IB's tag (e.g. "AvailableFunds"), as a float or None."""
        cur = currency or self.currency
        for v in self.ib.accountValues(self.account):
            if v.tag == tag and v.currency == cur:
                return _figure(v.value)
        return None

    def _apply(self, value: AccountValue) -> bool:
        if self.account and value.account != self.account:
            return False
        key = _TAGS.get(value.tag)
        if key is None or (value.currency and value.currency != self.currency):
            return False
        figure = _figure(value.value)
        if figure == self._figures[key]:
            return False
        self._figures[key] = figure
        return True

    def _on_account_value(self, value: AccountValue) -> None:
        if self._apply(value):
            self._changed = True

    def _on_packet_done(self) -> None:
        if self._changed:
            self._emit_values()

    def _emit_values(self) -> None:
        self._changed = False
        self.valuesChanged.emit(self.values())

    def _on_pnl(self, pnl: PnL) -> None:
        if pnl.account != self.account:
            return
        daily = _figure(pnl.dailyPnL)
        unreal = _figure(pnl.unrealizedPnL)
        real = _figure(pnl.realizedPnL)
        if daily != self._daily_pnl:
            self._daily_pnl = daily
            self._changed = True
        if daily is None and unreal is None and real is None:
            return  # IB's "no value yet"
        self.pnlChanged.emit(PnLChanged(None, daily or 0.0, real or 0.0, unreal or 0.0))

    def __repr__(self) -> str:
        return f"AccountInfo({self.account!r})"
