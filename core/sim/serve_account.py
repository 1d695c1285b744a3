"""The gateway's account data: values, portfolio, positions, summaries and P&L.

Handlers of reqAccountUpdates, reqAccountUpdatesMulti, reqAccountSummary,
reqPositions, reqPnL and reqPnLSingle (and their cancels), and the pushes that follow
fills and price moves. Each session remembers what it was last sent, so a push carries
only what changed, as TWS's do.
"""

from __future__ import annotations

from core.sim import protocol as p
from core.sim.parts import GatewayParts, Session

LEDGER_KEYS = ("CashBalance", "TotalCashBalance", "NetLiquidationByCurrency")


class AccountHandlers(GatewayParts):
    """Account request handlers and pushes (a mixin of SimGateway)."""

    def _account_of(self, name: str) -> str | None:
        if not name and len(self.accounts) == 1:
            return self.accounts[0]
        return name if name in self.accounts else None

    def _on_req_account_updates(self, session: Session, req: p.ReqAccountUpdates) -> None:
        if not req.subscribe:
            session.account_updates = None
            return
        account = self._account_of(req.account)
        if account is None:
            session.send(p.error(session.version, -1, 321, f"Invalid account: {req.account}"))
            return
        session.account_updates = account
        session.sent_values.clear()
        session.sent_portfolio.clear()
        self._push_account_updates(session, initial=True)
        session.send(p.account_download_end(account))

    def _on_req_account_updates_multi(
        self, session: Session, req: p.ReqAccountUpdatesMulti
    ) -> None:
        account = self._account_of(req.account)
        if account is None:
            session.send(
                p.error(session.version, req.req_id, 321, f"Invalid account: {req.account}")
            )
            return
        session.multi[req.req_id] = account
        self._push_multi(session, req.req_id, account)
        session.send(p.account_update_multi_end(req.req_id))

    def _on_cancel_account_updates_multi(self, session: Session, req: p.ReqId) -> None:
        session.multi.pop(req.req_id, None)

    def _on_req_account_summary(self, session: Session, req: p.ReqAccountSummary) -> None:
        tags = tuple(t.strip() for t in req.tags.split(",") if t.strip())
        session.summary[req.req_id] = tags
        self._push_summary(session, req.req_id, tags)
        session.send(p.account_summary_end(req.req_id))

    def _on_cancel_account_summary(self, session: Session, req: p.ReqId) -> None:
        session.summary.pop(req.req_id, None)

    def _on_req_positions(self, session: Session, req: p.NoArgs) -> None:
        session.positions = True
        session.sent_positions.clear()
        self._push_positions(session)
        session.send(p.position_end())

    def _on_cancel_positions(self, session: Session, req: p.NoArgs) -> None:
        session.positions = False

    def _on_req_pnl(self, session: Session, req: p.ReqPnL) -> None:
        account = self._account_of(req.account)
        if account is None:
            session.send(
                p.error(session.version, req.req_id, 321, f"Invalid account: {req.account}")
            )
            return
        session.pnl[req.req_id] = account
        self._push_pnl(session)

    def _on_cancel_pnl(self, session: Session, req: p.ReqId) -> None:
        session.pnl.pop(req.req_id, None)
        session.sent_pnl.pop(("", req.req_id), None)

    def _on_req_pnl_single(self, session: Session, req: p.ReqPnLSingle) -> None:
        account = self._account_of(req.account)
        if account is None or self.universe.by_con_id(req.con_id) is None:
            session.send(
                p.error(session.version, req.req_id, 321, "Invalid account or contract id")
            )
            return
        session.pnl_single[req.req_id] = (account, req.con_id)
        self._push_pnl(session)

    def _on_cancel_pnl_single(self, session: Session, req: p.ReqId) -> None:
        session.pnl_single.pop(req.req_id, None)
        session.sent_pnl.pop(("single", req.req_id), None)

    def _push_all_accounts(self) -> None:
        for session in self._live_sessions():
            if session.account_updates is not None:
                self._push_account_updates(session)
            for req_id, account in session.multi.items():
                self._push_multi(session, req_id, account)
            for req_id, tags in session.summary.items():
                self._push_summary(session, req_id, tags)
            if session.positions:
                self._push_positions(session)
            if session.pnl or session.pnl_single:
                self._push_pnl(session)

    def _push_account_updates(self, session: Session, initial: bool = False) -> None:
        account = session.account_updates
        if account is None:
            return
        sent_any = initial
        for key, value, currency in self.engine.account_values(account):
            k = (account, key, currency)
            if session.sent_values.get(k) != value:
                session.sent_values[k] = value
                session.send(p.update_account_value(key, value, currency, account))
                sent_any = True
        current = {item.con_id: item for item in self.engine.portfolio(account)}
        for con_id, item in current.items():
            inst = self.universe.by_con_id(con_id)
            if inst is None:
                continue
            row = (
                item.quantity,
                item.market_price,
                item.market_value,
                item.average_cost,
                item.unrealized_pnl,
                item.realized_pnl,
            )
            if session.sent_portfolio.get((account, con_id)) != row:
                session.sent_portfolio[(account, con_id)] = row
                session.send(p.update_portfolio(inst, *row, account))
                sent_any = True
        for acct, con_id in list(session.sent_portfolio):
            if acct == account and con_id not in current:
                # A closed position: IB sends it once more with quantity 0.
                del session.sent_portfolio[(acct, con_id)]
                inst = self.universe.by_con_id(con_id)
                if inst is None:
                    continue
                realized = self.engine.pnl_single(account, con_id).realized_pnl
                mark = self.market.mark(con_id)
                session.send(p.update_portfolio(inst, 0.0, mark, 0.0, 0.0, 0.0, realized, account))
                sent_any = True
        if sent_any:
            session.send(p.update_account_time(self.clock()))

    def _push_multi(self, session: Session, req_id: int, account: str) -> None:
        for key, value, currency in self.engine.account_values(account):
            k = (req_id, key, currency)
            if session.sent_multi.get(k) != value:
                session.sent_multi[k] = value
                session.send(p.account_update_multi(req_id, account, "", key, value, currency))

    def _summary_rows(self, tags: tuple[str, ...]) -> list[tuple[str, str, str, str]]:
        wanted = set(tags)
        ledger = any(t.startswith("$LEDGER") for t in tags)
        rows = []
        for account in self.accounts:
            for key, value, currency in self.engine.account_values(account):
                if currency == "BASE":
                    if ledger:
                        rows.append((account, key, value, currency))
                elif key in wanted or (ledger and key in ("UnrealizedPnL", "RealizedPnL")):
                    rows.append((account, key, value, currency))
            if ledger:
                net = dict((k, v) for k, v, c in self.engine.account_values(account) if c == "USD")
                for key in LEDGER_KEYS:
                    if key in net:
                        rows.append((account, key, net[key], "USD"))
        return rows

    def _push_summary(self, session: Session, req_id: int, tags: tuple[str, ...]) -> None:
        for account, key, value, currency in self._summary_rows(tags):
            k = (req_id, account, key, currency)
            if session.sent_summary.get(k) != value:
                session.sent_summary[k] = value
                session.send(p.account_summary(req_id, account, key, value, currency))

    def _push_positions(self, session: Session) -> None:
        current = {(pos.account, pos.con_id): pos for pos in self.engine.positions()}
        for key, pos in current.items():
            row = (pos.quantity, pos.avg_cost)
            inst = self.universe.by_con_id(pos.con_id)
            if inst is not None and session.sent_positions.get(key) != row:
                session.sent_positions[key] = row
                session.send(p.position(pos.account, inst, pos.quantity, pos.avg_cost))
        for key in list(session.sent_positions):
            if key not in current:
                del session.sent_positions[key]
                inst = self.universe.by_con_id(key[1])
                if inst is not None:
                    session.send(p.position(key[0], inst, 0.0, 0.0))

    def _push_pnl(self, session: Session) -> None:
        for req_id, account in session.pnl.items():
            value = self.engine.pnl(account)
            totals = (value.daily_pnl, value.unrealized_pnl, value.realized_pnl)
            if session.sent_pnl.get(("", req_id)) != totals:
                session.sent_pnl[("", req_id)] = totals
                session.send(p.pnl(req_id, value))
        for req_id, (account, con_id) in session.pnl_single.items():
            value = self.engine.pnl_single(account, con_id)
            row = (
                value.position,
                value.daily_pnl,
                value.unrealized_pnl,
                value.realized_pnl,
                value.value,
            )
            if session.sent_pnl.get(("single", req_id)) != row:
                session.sent_pnl[("single", req_id)] = row
                session.send(p.pnl_single(req_id, value))
