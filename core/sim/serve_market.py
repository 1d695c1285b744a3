"""The gateway's answers to market data requests: quotes, depth, contracts and history.

Handlers of reqMktData, reqMarketDataType, reqMktDepth, reqMktDepthExchanges,
reqContractDetails, reqMarketRule, reqMatchingSymbols, reqHistoricalData and
reqHeadTimestamp, and the pushes that follow each market step (changed ticks, depth
updates, kept-up-to-date bars). Also the parsers of IB's request values (bar size,
duration, date-time).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from core.sim import protocol as p
from core.sim.market import MAX_DEPTH_ROWS
from core.sim.model import Instrument, Quote
from core.sim.parts import (
    MSG_NO_SECURITY,
    MSG_NOT_SUBSCRIBED,
    DepthSub,
    GatewayParts,
    HistSub,
    MktSub,
    RequestRefused,
    Session,
)

ORDER_TYPES_STK = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,DEACTDIS,"
    "DEACTEOD,GAT,GTC,GTD,GTT,HID,IOC,LIT,LMT,MIT,MKT,MTL,NGCOMB,NONALGO,OCA,STP,STPLMT,"
    "TRAIL,WHATIF"
)
_EXCHANGES = {
    "STK": "SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,ISLAND,DRCTEDGE,BEX,BATS,EDGEA,IEX,NASDAQ",
    "FUT": "CME,QBALGO",
    "CASH": "IDEALPRO",
}
# The depth service TWS names per security type in mktDepthExchanges.
_DEPTH_SERVICE = {"STK": "Deep2", "FUT": "Deep", "CASH": "Deep"}
_BAR_UNITS = {"sec": 1, "secs": 1, "min": 60, "mins": 60, "hour": 3600, "hours": 3600}
_BAR_UNITS |= {"day": 86_400, "days": 86_400, "week": 7 * 86_400, "weeks": 7 * 86_400}
_BAR_UNITS |= {"month": 30 * 86_400, "months": 30 * 86_400}
_DURATION_UNITS = {"S": 1, "D": 86_400, "W": 7 * 86_400, "M": 30 * 86_400, "Y": 365 * 86_400}


class MarketDataHandlers(GatewayParts):
    """Market data request handlers and pushes (a mixin of SimGateway)."""

    def _resolve(self, c: p.ContractSpec) -> list[Instrument]:
        if c.con_id:
            inst = self.universe.by_con_id(c.con_id)
            return [inst] if inst is not None else []
        return self.universe.find(
            symbol=c.symbol,
            sec_type=c.sec_type,
            exchange=c.exchange,
            currency=c.currency,
            last_trade_date=c.last_trade_date,
            local_symbol=c.local_symbol,
        )

    def _resolve_one(self, session: Session, req_id: int, c: p.ContractSpec) -> Instrument | None:
        found = self._resolve(c)
        if len(found) == 1:
            return found[0]
        if found:
            text = f"The contract description specified for {c.symbol} is ambiguous."
        else:
            text = MSG_NO_SECURITY
        session.send(p.error(session.version, req_id, 200, text))
        return None

    def _served_data_type(self, requested: int) -> int | None:
        """The market data type TWS serves for ``requested`` (None: nothing to serve).

        As TWS since 970: where live data is available (``live_data``) it is sent as
        type 1 whatever was asked, frozen (2) only for a frozen market when 2 or 4 was
        asked; without live data, 3 and 4 give delayed (3) or delayed frozen (4) data
        with the delayed tick types, and 1 or 2 give nothing (error 354).
        """
        frozen = self.market.frozen and requested in (2, 4)
        if self.live_data:
            return 2 if frozen else 1
        if requested in (3, 4):
            return 4 if frozen else 3
        return None

    def _on_req_mkt_data(self, session: Session, req: p.ReqMktData) -> None:
        inst = self._resolve_one(session, req.req_id, req.contract)
        if inst is None:
            return
        data_type = self._served_data_type(session.market_data_type)
        if data_type is None:
            session.send(p.error(session.version, req.req_id, 354, MSG_NOT_SUBSCRIBED))
            return
        session.send(p.tick_req_params(req.req_id, inst.min_tick, "9c0001", 3))
        session.send(p.market_data_type(req.req_id, data_type))
        sub = MktSub(inst.con_id, session.market_data_type, data_type)
        if not self._link_down:  # logged out of IB: the first ticks come at 1102
            for msg in self._quote_ticks(req.req_id, inst, self.market.quote(inst.con_id), sub):
                session.send(msg)
        if req.snapshot or req.regulatory_snapshot:
            session.send(p.tick_snapshot_end(req.req_id))
        else:
            session.mkt[req.req_id] = sub

    def _on_cancel_mkt_data(self, session: Session, req: p.ReqId) -> None:
        session.mkt.pop(req.req_id, None)

    def _on_req_market_data_type(self, session: Session, req: p.ReqMarketDataType) -> None:
        # As documented by IB, the type applies to the market data requests that follow.
        if req.market_data_type not in (1, 2, 3, 4):
            raise RequestRefused(f"invalid market data type {req.market_data_type}")
        session.market_data_type = req.market_data_type

    def _announce_data_types(self) -> None:
        """After the market froze or thawed: subscriptions that asked for frozen data
        switch between live/delayed and frozen, announced with marketDataType."""
        for session in self._live_sessions():
            for req_id, sub in session.mkt.items():
                served = self._served_data_type(sub.requested)
                if served is not None and served != sub.data_type:
                    sub.data_type = served
                    session.send(p.market_data_type(req_id, served))

    @staticmethod
    def _quote_ticks(req_id: int, inst: Instrument, q: Quote, sub: MktSub) -> list[p.Msg]:
        """The ticks that changed since ``sub.last`` (updated in place); all at first.
        Delayed subscriptions get the delayed tick types (66 for 1, 67 for 2, ...)."""
        out: list[p.Msg] = []
        T = p.TickType
        last = sub.last
        wire: Callable[[p.TickType], int] = (
            (lambda t: p.DELAYED_TICK[t]) if sub.delayed else (lambda t: t)
        )

        def changed(tick: int, *values: float) -> bool:
            key = hash(values)
            if last.get(tick) == key:
                return False
            last[tick] = key
            return True

        if changed(T.BID, q.bid, q.bid_size):
            out.append(p.tick_price(req_id, wire(T.BID), q.bid, q.bid_size, 0))
        if changed(T.ASK, q.ask, q.ask_size):
            out.append(p.tick_price(req_id, wire(T.ASK), q.ask, q.ask_size, 0))
        if inst.sec_type != "CASH":  # IDEALPRO quotes carry no trades
            if q.last > 0 and changed(T.LAST, q.last, q.last_size, q.time):
                out.append(p.tick_price(req_id, wire(T.LAST), q.last, q.last_size, 0))
                out.append(p.tick_string(req_id, wire(T.LAST_TIMESTAMP), str(int(q.time))))
            if changed(T.VOLUME, q.volume):
                out.append(p.tick_size(req_id, wire(T.VOLUME), q.volume))
        for tick, value in ((T.HIGH, q.high), (T.LOW, q.low), (T.CLOSE, q.close), (T.OPEN, q.open)):
            if value > 0 and changed(tick, value):
                out.append(p.tick_price(req_id, wire(tick), value, 0.0, 0))
        return out

    def _on_req_mkt_depth(self, session: Session, req: p.ReqMktDepth) -> None:
        inst = self._resolve_one(session, req.req_id, req.contract)
        if inst is None:
            return
        if not self.live_data:  # TWS has no delayed depth
            session.send(p.error(session.version, req.req_id, 354, MSG_NOT_SUBSCRIBED))
            return
        if req.num_rows <= 0:
            raise RequestRefused(f"numRows must be positive, got {req.num_rows}")
        open_books = sum(len(s.depth) for s in self._live_sessions())
        if req.req_id not in session.depth and open_books >= self.max_depth_requests:
            text = (
                f"Max number ({self.max_depth_requests}) of market depth requests has been reached"
            )
            session.send(p.error(session.version, req.req_id, 309, text))
            return
        sub = DepthSub(
            inst.con_id,
            min(req.num_rows, MAX_DEPTH_ROWS),
            req.smart_depth,
            inst.primary_exchange or inst.exchange,
        )
        session.depth[req.req_id] = sub
        self._push_depth(session, req.req_id, sub)

    def _on_cancel_mkt_depth(self, session: Session, req: p.CancelMktDepth) -> None:
        session.depth.pop(req.req_id, None)

    def _on_req_mkt_depth_exchanges(self, session: Session, req: p.NoArgs) -> None:
        rows = sorted(
            {
                (i.primary_exchange or i.exchange, i.sec_type, "", _DEPTH_SERVICE[i.sec_type], 1)
                for i in self.universe
                if i.sec_type in _DEPTH_SERVICE
            }
        )
        session.send(p.mkt_depth_exchanges(rows))

    def _push_depth(self, session: Session, req_id: int, sub: DepthSub) -> None:
        """Send the changes of the book since what the client holds (all of it at first):
        insert (0) for new positions, update (1) for changed ones, delete (2) for gone."""
        bids, asks = self.market.depth(sub.con_id, sub.rows)
        for side, held, levels in ((1, sub.bids, bids), (0, sub.asks, asks)):
            now = [(lv.price, lv.size) for lv in levels]
            for pos in range(max(len(held), len(now))):
                if pos >= len(now):
                    op, (price, size) = 2, held[pos]
                elif pos >= len(held):
                    op, (price, size) = 0, now[pos]
                elif held[pos] != now[pos]:
                    op, (price, size) = 1, now[pos]
                else:
                    continue
                if sub.smart or sub.market_maker == "NASDAQ":
                    # TWS reports each level's exchange (market maker) for SMART depth and
                    # for NASDAQ's book; other books come as plain updateMktDepth.
                    msg = p.update_mkt_depth_l2(
                        req_id, pos, sub.market_maker, op, side, price, size, sub.smart
                    )
                else:
                    msg = p.update_mkt_depth(req_id, pos, op, side, price, size)
                session.send(msg)
            held[:] = now

    def _on_req_contract_details(self, session: Session, req: p.ReqContractDetails) -> None:
        found = self._resolve(req.contract)
        if not found:
            session.send(p.error(session.version, req.req_id, 200, MSG_NO_SECURITY))
            return
        for inst in found:
            session.send(
                p.contract_details(
                    session.version,
                    req.req_id,
                    inst,
                    _EXCHANGES.get(inst.sec_type, inst.exchange),
                    ORDER_TYPES_STK,
                    self._market_rule_id(inst.min_tick),
                )
            )
        session.send(p.contract_details_end(req.req_id))

    def _market_rule_id(self, tick: float) -> int:
        known = {0.01: 26, 0.25: 67, 0.00005: 239}
        rule = known.get(tick)
        if rule is None:
            rule = self._market_rules.setdefault(tick, 1000 + len(self._market_rules))
        else:
            self._market_rules[tick] = rule
        return rule

    def _on_req_market_rule(self, session: Session, req: p.ReqMarketRule) -> None:
        for tick, rule in self._market_rules.items():
            if rule == req.market_rule_id:
                session.send(p.market_rule(rule, [(0.0, tick)]))
                return
        session.send(p.market_rule(req.market_rule_id, [(0.0, 0.01)]))

    def _on_req_matching_symbols(self, session: Session, req: p.ReqMatchingSymbols) -> None:
        session.send(
            p.symbol_samples(session.version, req.req_id, self.universe.search(req.pattern))
        )

    def _on_req_historical_data(self, session: Session, req: p.ReqHistoricalData) -> None:
        inst = self._resolve_one(session, req.req_id, req.contract)
        if inst is None:
            return
        try:
            bar_size_s = parse_bar_size(req.bar_size)
            duration_s = parse_duration(req.duration)
            end = parse_end_time(req.end_date_time) if req.end_date_time else self.clock()
            bars = self.market.bars(
                inst.con_id, end, duration_s, bar_size_s, req.what_to_show or "TRADES", req.use_rth
            )
        except ValueError as exc:
            session.send(
                p.error(
                    session.version,
                    req.req_id,
                    162,
                    f"Historical Market Data Service error message:{exc}",
                )
            )
            return
        daily = bar_size_s >= 86_400
        # TWS writes the span's ends, and formatDate 1 bar times, in the exchange's zone.
        tz = inst.time_zone_id
        start_s = p.format_zoned_time(end - duration_s, tz)
        end_s = p.format_zoned_time(end, tz)
        session.send(
            p.historical_data(req.req_id, bars, start_s, end_s, req.format_date, daily, tz)
        )
        if req.keep_up_to_date:
            session.hist[req.req_id] = HistSub(
                inst.con_id, bar_size_s, req.what_to_show or "TRADES", req.use_rth, req.format_date
            )

    def _on_cancel_historical_data(self, session: Session, req: p.ReqId) -> None:
        session.hist.pop(req.req_id, None)

    def _on_req_head_timestamp(self, session: Session, req: p.ReqHeadTimestamp) -> None:
        inst = self._resolve_one(session, req.req_id, req.contract)
        if inst is None:
            return
        first = int(self.clock()) - 5 * 365 * 86_400
        text = str(first) if req.format_date == 2 else p.format_zoned_time(first, inst.time_zone_id)
        session.send(p.head_timestamp(req.req_id, text))

    def _push_quotes(self, changed: set[int]) -> None:
        if self._link_down:
            return
        quotes: dict[int, Quote] = {}
        for session in self._live_sessions():
            for req_id, sub in session.mkt.items():
                if sub.con_id not in changed:
                    continue
                q = quotes.get(sub.con_id)
                if q is None:
                    q = quotes[sub.con_id] = self.market.quote(sub.con_id)
                inst = self.universe.by_con_id(sub.con_id)
                if inst is None:
                    continue
                for msg in self._quote_ticks(req_id, inst, q, sub):
                    session.send(msg)
            for req_id, dsub in session.depth.items():
                if dsub.con_id in changed:
                    self._push_depth(session, req_id, dsub)
            for req_id, hsub in session.hist.items():
                if hsub.con_id in changed:
                    self._push_bar(session, req_id, hsub)

    def _push_bar(self, session: Session, req_id: int, sub: HistSub) -> None:
        try:
            bars = self.market.bars(
                sub.con_id, self.clock(), sub.bar_size_s, sub.bar_size_s, sub.what, sub.use_rth
            )
        except (KeyError, ValueError):
            return
        inst = self.universe.by_con_id(sub.con_id)
        if bars and inst is not None:
            daily = sub.bar_size_s >= 86_400
            session.send(
                p.historical_data_update(
                    req_id, bars[-1], sub.format_date, daily, inst.time_zone_id
                )
            )


# --- request value parsing -----------------------------------------------------------------


def parse_bar_size(text: str) -> int:
    """IB's barSizeSetting ("1 min", "5 mins", "1 hour", "1 day") in seconds."""
    m = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]+)\s*", text)
    if not m or m.group(2).lower() not in _BAR_UNITS or int(m.group(1)) <= 0:
        raise ValueError(f"invalid bar size {text!r}")
    return int(m.group(1)) * _BAR_UNITS[m.group(2).lower()]


def parse_duration(text: str) -> int:
    """IB's durationStr ("60 S", "1 D", "2 W", "1 M", "1 Y") in seconds."""
    m = re.fullmatch(r"\s*(\d+)\s*([SDWMY])\s*", text.upper())
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"invalid duration {text!r}")
    return int(m.group(1)) * _DURATION_UNITS[m.group(2)]


def parse_end_time(text: str) -> float:
    """An IB date-time: ``YYYYMMDD HH:MM:SS [TZ]``, ``YYYYMMDD-HH:MM:SS`` (UTC),
    ``YYYYMMDD`` or epoch seconds; a missing zone means UTC (the gateway's zone).

    Anything else (blank, truncated, an unknown zone) raises ``ValueError`` naming the text.
    """
    s = text.strip()
    try:
        if s.isdigit() and len(s) != 8:
            return datetime.fromtimestamp(float(s), UTC).timestamp()  # range-checked
        if "-" in s and " " not in s:
            return datetime.strptime(s, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC).timestamp()
        parts = s.split()
        if len(parts) == 1:
            return datetime.strptime(parts[0], "%Y%m%d").replace(tzinfo=UTC).timestamp()
        if len(parts) not in (2, 3):
            raise ValueError("expected date, time and an optional zone")
        moment = datetime.strptime(parts[0] + " " + parts[1], "%Y%m%d %H:%M:%S")
        zone: Any = _zone(parts[2]) if len(parts) > 2 else UTC
        return moment.replace(tzinfo=zone).timestamp()
    except (ValueError, OverflowError, OSError) as exc:
        raise ValueError(f"invalid date-time {text!r}: {exc}") from exc


def _zone(name: str) -> Any:
    try:
        return ZoneInfo(name)
    except Exception as exc:  # ZoneInfoNotFoundError, or a malformed key
        raise ValueError(f"unknown time zone {name!r}") from exc
