"""The gateway's order handling: placing, cancelling and reporting orders and fills.

Handlers of placeOrder (what-if previews too), cancelOrder, reqGlobalCancel,
reqOpenOrders / reqAllOpenOrders / reqAutoOpenOrders, reqCompletedOrders,
reqExecutions and reqIds, and :meth:`OrderHandlers._emit`, which turns the engine's
events into openOrder / orderStatus / execDetails / error messages for the sessions
that see the order (its owner, and client 0 when it auto-binds).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from core.sim import protocol as p
from core.sim.model import (
    EngineEvent,
    ExecutionOccurred,
    OrderChanged,
    OrderError,
    OrderRejected,
    OrderState,
    SimOrder,
)
from core.sim.parts import GatewayParts, RequestRefused, Session
from core.sim.serve_market import parse_end_time

log = logging.getLogger("core.sim")


class OrderHandlers(GatewayParts):
    """Order request handlers and engine event delivery (a mixin of SimGateway)."""

    def _on_place_order(self, session: Session, po: p.PlaceOrder) -> None:
        assert session.client_id is not None
        cid = session.client_id
        req = po.request
        req.client_id = cid
        self._next_ids[cid] = max(self._next_ids.get(cid, 1), po.order_id + 1)
        self._schedule_save()
        inst = self._resolve_one(session, po.order_id, po.contract)
        if inst is None:
            return
        req.con_id = inst.con_id
        if not req.account and len(self.accounts) == 1:
            req.account = self.accounts[0]
        if req.what_if:
            try:
                result = self.engine.what_if(req)
            except OrderRejected as exc:
                session.send(p.error(session.version, po.order_id, exc.code, exc.message))
                return
            preview = SimOrder(request=req, perm_id=0, state=OrderState.PRE_SUBMITTED)
            session.send(
                p.open_order(session.version, preview, inst, "PreSubmitted", result, po.contract)
            )
            return
        if not req.account:
            req.account = self.accounts[0]
        try:
            events = self.engine.place(req)
        except OrderRejected as exc:
            log.info(
                "%s: order %d rejected: %d %s",
                session.describe(),
                po.order_id,
                exc.code,
                exc.message,
            )
            session.send(p.error(session.version, po.order_id, exc.code, exc.message))
            return
        self._contracts[(cid, po.order_id)] = po.contract
        self._emit(events)
        if self.engine.fill_delay_s > 0:
            # No market step may come soon (tests, a frozen market): match when due.
            loop = asyncio.get_running_loop()
            loop.call_later(self.engine.fill_delay_s + 0.001, self._match_now)

    def _match_now(self) -> None:
        if self._running:
            try:
                self._emit(self.engine.on_market())
            except Exception:
                log.exception("matching pass failed")

    def _on_cancel_order(self, session: Session, req: p.CancelOrder) -> None:
        assert session.client_id is not None
        try:
            events = self.engine.cancel(session.client_id, req.order_id)
        except OrderRejected as exc:
            session.send(p.error(session.version, req.order_id, exc.code, exc.message))
            return
        self._emit(events)

    def _on_req_global_cancel(self, session: Session, req: p.NoArgs) -> None:
        self._emit(self.engine.global_cancel())

    def _send_order(self, session: Session, order: SimOrder) -> None:
        inst = self.universe.by_con_id(order.request.con_id)
        if inst is None:
            return
        contract = self._contracts.get(order.key)
        session.send(p.open_order(session.version, order, inst, str(order.state), None, contract))
        session.send(p.order_status(order))

    def _on_req_open_orders(self, session: Session, req: p.NoArgs) -> None:
        # Client 0 sees every client's orders, as with TWS's master/auto-bind client.
        cid = None if session.client_id == 0 else session.client_id
        for order in self.engine.open_orders(cid):
            self._send_order(session, order)
        session.send(p.open_order_end())

    def _on_req_all_open_orders(self, session: Session, req: p.NoArgs) -> None:
        for order in self.engine.open_orders():
            self._send_order(session, order)
        session.send(p.open_order_end())

    def _on_req_auto_open_orders(self, session: Session, req: p.ReqAutoOpenOrders) -> None:
        if session.client_id != 0:
            session.send(
                p.error(
                    session.version,
                    -1,
                    321,
                    "Error validating request.-'bF' : cause - The API client is not "
                    "configured to allow auto-binding of orders (client id must be 0).",
                )
            )
            return
        session.auto_open_orders = req.auto_bind

    def _on_req_completed_orders(self, session: Session, req: p.ReqCompletedOrders) -> None:
        for order in self.engine.completed_orders():
            inst = self.universe.by_con_id(order.request.con_id)
            if inst is None:
                continue
            done = _ib_time(self.clock())
            session.send(
                p.completed_order(
                    session.version,
                    order,
                    inst,
                    done,
                    str(order.state),
                    self._contracts.get(order.key),
                )
            )
        session.send(p.completed_orders_end())

    def _on_req_executions(self, session: Session, req: p.ReqExecutions) -> None:
        f = req.filter
        since = None
        if f.time.strip():
            try:
                since = parse_end_time(f.time)
            except ValueError as exc:
                # A malformed filter field is a read error (320), which also ends the
                # client's request; silently ignoring it would replay everything.
                raise RequestRefused(f"execution filter time: {exc}", 320) from exc
        elif f.time:
            raise RequestRefused(f"execution filter time {f.time!r} is blank", 320)
        for ex in self.engine.executions(
            client_id=f.client_id,
            account=f.account,
            symbol=f.symbol,
            sec_type=f.sec_type,
            exchange=f.exchange,
            side=f.side,
            since=since,
        ):
            inst = self.universe.by_con_id(ex.con_id)
            if inst is None:
                continue
            session.send(p.exec_details(session.version, req.req_id, ex, inst))
            session.send(p.commission_report(ex))
        session.send(p.exec_details_end(req.req_id))

    def _on_req_ids(self, session: Session, req: p.ReqIds) -> None:
        assert session.client_id is not None
        session.send(p.next_valid_id(self._next_id(session.client_id)))

    def _order_audience(self, client_id: int) -> list[Session]:
        """The owner's session and every auto-binding client 0 (TWS's order visibility)."""
        out = []
        owner = self._by_client.get(client_id)
        if owner is not None and not owner.closed:
            out.append(owner)
        if client_id != 0:
            zero = self._by_client.get(0)
            if zero is not None and zero.auto_open_orders and not zero.closed:
                out.append(zero)
        return out

    def _emit(self, events: Iterable[EngineEvent]) -> None:
        """Translate engine events to messages, then push account changes once."""
        touched: set[str] = set()
        changed_any = False
        for event in events:
            changed_any = True
            if isinstance(event, OrderChanged):
                order = event.order
                for session in self._order_audience(order.request.client_id):
                    self._send_order(session, order)
            elif isinstance(event, ExecutionOccurred):
                ex = event.execution
                touched.add(ex.account)
                inst = self.universe.by_con_id(ex.con_id)
                if inst is None:
                    continue
                for session in self._order_audience(ex.client_id):
                    session.send(p.exec_details(session.version, -1, ex, inst))
                    session.send(p.commission_report(ex))
            elif isinstance(event, OrderError):
                owner = self._by_client.get(event.client_id)
                if owner is not None:
                    owner.send(p.error(owner.version, event.order_id, event.code, event.message))
        if touched:
            self._push_all_accounts()
        if changed_any:
            # Only order and account changes are worth a write; quotes are saved on stop.
            self._schedule_save()


def _ib_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%d %H:%M:%S") + " UTC"
