"""The engine's account book: orders, executions, positions, portfolio, account values,
P&L and margins, as the wire side asks for them (conventions: :mod:`core.sim.engine`)."""

from __future__ import annotations

from core.sim.engine_base import (
    _EPS,
    _MARGIN_RATES,
    EngineParts,
)
from core.sim.model import (
    DONE_STATES,
    AccountPnL,
    Execution,
    Instrument,
    PortfolioItem,
    Position,
    SimOrder,
)

#: Seconds between two snapshots of the exchange rates (TWS refreshes account values
#: every few minutes).
RATES_REFRESH = 180.0

#: USD per unit of currencies no forex pair of the universe prices (a simulator's rough
#: figures: enough to value a foreign stock, not a market).
_APPROX_USD_RATES = {
    "EUR": 1.08,
    "GBP": 1.27,
    "CHF": 1.12,
    "JPY": 1 / 150,
    "CAD": 0.73,
    "AUD": 0.66,
    "HKD": 0.128,
}


class EngineBook(EngineParts):
    """Queries of the engine's book and the accounting they rest on (a mixin of Engine)."""

    def open_orders(self, client_id: int | None = None) -> list[SimOrder]:
        """Working (not done) orders, oldest first; ``client_id`` None means every client."""
        out = [
            o
            for o in self._orders.values()
            if o.state not in DONE_STATES
            and (client_id is None or o.request.client_id == client_id)
        ]
        out.sort(key=lambda o: o.perm_id)
        return out

    def completed_orders(self) -> list[SimOrder]:
        """Today's filled and cancelled orders, in the order they finished."""
        return [self._orders[k] for k in self._completed if k in self._orders]

    def order(self, client_id: int, order_id: int) -> SimOrder | None:
        """The order with this id (working or done today), or None."""
        return self._orders.get((client_id, order_id))

    def executions(
        self,
        *,
        client_id: int = 0,
        account: str = "",
        symbol: str = "",
        sec_type: str = "",
        exchange: str = "",
        side: str = "",
        since: float | None = None,
    ) -> list[Execution]:
        """Today's executions matching an IB ExecutionFilter (0 and "" match anything).

        ``side`` is "BUY"/"SELL" (or "BOT"/"SLD"); ``since`` is epoch seconds, inclusive.
        """
        want_side = {"BUY": "BOT", "SELL": "SLD"}.get(side.upper(), side.upper())
        out = []
        for ex in self._executions:
            inst = self.universe.by_con_id(ex.con_id)
            if client_id and ex.client_id != client_id:
                continue
            if account and ex.account != account:
                continue
            if inst is not None:
                if symbol and inst.symbol.upper() != symbol.upper():
                    continue
                if sec_type and inst.sec_type != sec_type.upper():
                    continue
                exchanges = {inst.exchange.upper(), inst.primary_exchange.upper()}
                if exchange and exchange.upper() not in exchanges | {ex.exchange.upper()}:
                    continue
            if want_side and ex.side != want_side:
                continue
            if since is not None and ex.time < since:
                continue
            out.append(ex)
        return out

    def positions(self, account: str | None = None) -> list[Position]:
        """Non-zero positions of ``account`` (None: every account), by account then con_id."""
        out = [
            Position(acct, con_id, p.qty, p.avg_cost)
            for (acct, con_id), p in sorted(self._positions.items())
            if abs(p.qty) > _EPS and (account is None or acct == account)
        ]
        return out

    def position(self, account: str, con_id: int) -> Position:
        """One position, zero (avg cost 0) when there is none: what to send after a close."""
        p = self._positions.get((account, con_id))
        if p is None or abs(p.qty) <= _EPS:
            return Position(account, con_id, 0.0, 0.0)
        return Position(account, con_id, p.qty, p.avg_cost)

    def portfolio(self, account: str) -> list[PortfolioItem]:
        """updatePortfolio rows: every non-zero position of ``account``, marked to market."""
        out = []
        for (acct, con_id), p in sorted(self._positions.items()):
            if acct != account or abs(p.qty) <= _EPS:
                continue
            inst = self._inst(con_id)
            mark = self.market.mark(con_id)
            value = p.qty * mark * inst.multiplier
            out.append(
                PortfolioItem(
                    account=acct,
                    con_id=con_id,
                    quantity=p.qty,
                    market_price=mark,
                    market_value=value,
                    average_cost=p.avg_cost,
                    unrealized_pnl=value - p.qty * p.avg_cost,
                    realized_pnl=p.realized,
                )
            )
        return out

    def account_values(self, account: str) -> list[tuple[str, str, str]]:
        """updateAccountValue rows (key, value, currency) of ``account``; values are strings.

        Raises KeyError for an unknown account.
        """
        acct = self._accounts[account]
        net_liq = self._net_liq(account)
        init, maint = self._margins(account)
        unrealized = sum(item.unrealized_pnl for item in self.portfolio(account))
        gross = stock = futures_pnl = 0.0
        for item in self.portfolio(account):
            inst = self._inst(item.con_id)
            if inst.sec_type == "FUT":
                # IB's totals carry no futures notional, only their P&L.
                futures_pnl += item.unrealized_pnl
            else:
                gross += abs(item.market_value)
                if inst.sec_type == "STK":
                    stock += item.market_value
        available = net_liq - init
        excess = net_liq - maint
        cushion = excess / net_liq if net_liq > 0 else 0.0

        def usd(key: str, value: float) -> tuple[str, str, str]:
            return (key, f"{value:.2f}", "USD")

        rows = [
            ("AccountCode", account, ""),
            ("AccountType", "INDIVIDUAL", ""),
            ("AccountReady", "true", ""),
            ("Currency", "USD", "USD"),
            usd("NetLiquidation", net_liq),
            usd("TotalCashValue", acct.cash),
            usd("SettledCash", acct.cash),
            usd("CashBalance", acct.cash),
            ("CashBalance", f"{acct.cash:.2f}", "BASE"),
            ("TotalCashBalance", f"{acct.cash:.2f}", "BASE"),
            ("NetLiquidationByCurrency", f"{net_liq:.2f}", "BASE"),
            usd("BuyingPower", max(available, 0.0) * 4),
            usd("AvailableFunds", available),
            usd("ExcessLiquidity", excess),
            usd("EquityWithLoanValue", net_liq),
            usd("GrossPositionValue", gross),
            usd("StockMarketValue", stock),
            usd("FuturesPNL", futures_pnl),
            usd("InitMarginReq", init),
            usd("MaintMarginReq", maint),
            usd("FullInitMarginReq", init),
            usd("FullMaintMarginReq", maint),
            usd("FullAvailableFunds", available),
            usd("FullExcessLiquidity", excess),
            usd("UnrealizedPnL", unrealized),
            usd("RealizedPnL", acct.realized),
            ("Cushion", f"{cushion:.6f}", ""),
            ("Leverage-S", f"{(gross / net_liq if net_liq > 0 else 0.0):.4f}", ""),
            ("DayTradesRemaining", "-1", ""),
        ]
        # Like TWS: one ExchangeRate per currency (base per unit of it), BASE's being 1.
        rows.append(("ExchangeRate", "1.00", "BASE"))
        rows += [("ExchangeRate", f"{r:.10g}", c) for c, r in self.exchange_rates().items()]
        return rows

    def exchange_rates(self) -> dict[str, float]:
        """USD (the accounts' base currency) per unit of every currency the universe has:
        from its forex pairs' marks (``EUR.USD`` gives EUR, ``USD.JPY`` gives JPY), else
        a fixed approximate rate; a currency with neither gets none, as TWS sends none
        for a currency it has no rate for.

        Like TWS's, the rates are a snapshot refreshed every ``RATES_REFRESH`` seconds,
        not a feed: following every forex tick made the account stream never fall
        silent, which no TWS does (and a silent, dead link could not be told apart)."""
        now = self._clock()
        cached = self._rates_snapshot
        if cached is not None and now - cached[0] < RATES_REFRESH:
            return dict(cached[1])
        rates = self._current_rates()
        self._rates_snapshot = (now, rates)
        return dict(rates)

    def _current_rates(self) -> dict[str, float]:
        currencies = {"USD"}
        rates = {"USD": 1.0}
        for inst in self.universe.find():
            currencies.add(inst.currency)
            if inst.sec_type != "CASH":
                continue
            currencies.add(inst.symbol)
            mark = self.market.mark(inst.con_id)
            if mark <= 0:
                continue
            if inst.currency == "USD":
                rates[inst.symbol] = mark
            elif inst.symbol == "USD":
                rates[inst.currency] = 1.0 / mark
        for cur in sorted(currencies - rates.keys()):
            if cur in _APPROX_USD_RATES:
                rates[cur] = _APPROX_USD_RATES[cur]
        return rates

    def pnl(self, account: str) -> AccountPnL:
        """reqPnL figures: daily (net liquidation change today), unrealized, realized."""
        acct = self._accounts[account]
        unrealized = sum(item.unrealized_pnl for item in self.portfolio(account))
        return AccountPnL(
            daily_pnl=self._net_liq(account) - acct.sod_net_liq,
            unrealized_pnl=unrealized,
            realized_pnl=acct.realized,
        )

    def pnl_single(self, account: str, con_id: int) -> AccountPnL:
        """reqPnLSingle figures for one position (zeros when there is none)."""
        p = self._positions.get((account, con_id))
        if p is None:
            return AccountPnL(0.0, 0.0, 0.0, 0.0, 0.0)
        inst = self._inst(con_id)
        value = p.qty * self.market.mark(con_id) * inst.multiplier
        return AccountPnL(
            daily_pnl=value - p.sod_value + p.day_flow,
            unrealized_pnl=value - p.qty * p.avg_cost,
            realized_pnl=p.realized,
            position=p.qty,
            value=value,
        )

    def _inst(self, con_id: int) -> Instrument:
        inst = self.universe.by_con_id(con_id)
        if inst is None:
            raise KeyError(f"con_id {con_id} is not in the universe")
        return inst

    def _net_liq(self, account: str) -> float:
        total = self._accounts[account].cash
        for (acct, con_id), p in self._positions.items():
            if acct != account or abs(p.qty) <= _EPS:
                continue
            inst = self._inst(con_id)
            value = p.qty * self.market.mark(con_id) * inst.multiplier
            total += value - p.qty * p.avg_price if inst.sec_type == "FUT" else value
        return total

    def _margins(
        self, account: str, extra: tuple[int, float, float] | None = None
    ) -> tuple[float, float]:
        """(initial, maintenance) margin of ``account``; ``extra`` = (con_id, signed qty,
        price) adds a hypothetical fill, valuing that position at the given price."""
        qtys: dict[int, float] = {
            con_id: p.qty for (acct, con_id), p in self._positions.items() if acct == account
        }
        prices: dict[int, float] = {}
        if extra is not None:
            con_id, signed, price = extra
            qtys[con_id] = qtys.get(con_id, 0.0) + signed
            prices[con_id] = price
        init = maint = 0.0
        for con_id, qty in qtys.items():
            if abs(qty) <= _EPS:
                continue
            inst = self._inst(con_id)
            price = prices.get(con_id) or self.market.mark(con_id)
            notional = abs(qty) * price * inst.multiplier
            rate_init, rate_maint = _MARGIN_RATES.get(inst.sec_type, (1.0, 1.0))
            init += notional * rate_init
            maint += notional * rate_maint
        return init, maint
