"""Encoding of the gateway's messages: builders returning one message's fields.

Each builder returns the list of fields of one server->client message (a :data:`Msg`),
ready for :func:`~core.sim.protocol.framing.encode`. Field orders mirror ib_async
2.1.0's ``decoder.py`` at the negotiated server version; nothing here imports ib_async,
as the simulated gateway must serve any TWS API client. The order messages (openOrder,
orderStatus, completedOrder) live in :mod:`.orders`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import IntEnum
from zoneinfo import ZoneInfo

from core.sim.model import UNSET_DOUBLE, AccountPnL, Bar, Execution, Instrument
from core.sim.protocol.framing import Field, Out, fmt

Msg = list[Field]
"""One message's fields, message id first."""


class TickType(IntEnum):
    """The tick types the gateway streams (IB's numbering)."""

    BID_SIZE = 0
    BID = 1
    ASK = 2
    ASK_SIZE = 3
    LAST = 4
    LAST_SIZE = 5
    HIGH = 6
    LOW = 7
    VOLUME = 8
    CLOSE = 9
    OPEN = 14
    LAST_TIMESTAMP = 45
    DELAYED_BID = 66
    DELAYED_ASK = 67
    DELAYED_LAST = 68
    DELAYED_BID_SIZE = 69
    DELAYED_ASK_SIZE = 70
    DELAYED_LAST_SIZE = 71
    DELAYED_HIGH = 72
    DELAYED_LOW = 73
    DELAYED_VOLUME = 74
    DELAYED_CLOSE = 75
    DELAYED_OPEN = 76
    DELAYED_LAST_TIMESTAMP = 88


DELAYED_TICK = {
    TickType.BID: TickType.DELAYED_BID,
    TickType.ASK: TickType.DELAYED_ASK,
    TickType.LAST: TickType.DELAYED_LAST,
    TickType.BID_SIZE: TickType.DELAYED_BID_SIZE,
    TickType.ASK_SIZE: TickType.DELAYED_ASK_SIZE,
    TickType.LAST_SIZE: TickType.DELAYED_LAST_SIZE,
    TickType.HIGH: TickType.DELAYED_HIGH,
    TickType.LOW: TickType.DELAYED_LOW,
    TickType.VOLUME: TickType.DELAYED_VOLUME,
    TickType.CLOSE: TickType.DELAYED_CLOSE,
    TickType.OPEN: TickType.DELAYED_OPEN,
    TickType.LAST_TIMESTAMP: TickType.DELAYED_LAST_TIMESTAMP,
}
"""The tick type TWS sends instead of each live one with delayed data (types 3 and 4)."""


def multiplier_text(inst: Instrument) -> str:
    """IB sends an empty multiplier for stocks and forex, the number for futures."""
    if inst.multiplier == 1:
        return ""
    m = inst.multiplier
    return str(int(m)) if float(m).is_integer() else fmt(float(m))


def contract11(inst: Instrument, exchange: str | None = None) -> Msg:
    """conId..tradingClass without primaryExchange (openOrder, execDetails, position)."""
    return [
        inst.con_id,
        inst.symbol,
        inst.sec_type,
        inst.last_trade_date,
        0.0,
        "",
        multiplier_text(inst),
        inst.exchange if exchange is None else exchange,
        inst.currency,
        inst.local_symbol,
        inst.trading_class,
    ]


def next_valid_id(order_id: int) -> Msg:
    """nextValidId (9); exactly three fields, ib_async unpacks it during connect."""
    return [Out.NEXT_VALID_ID, 1, order_id]


def managed_accounts(accounts: Sequence[str]) -> Msg:
    """managedAccounts (15); must be non-empty or ib_async never becomes ready."""
    return [Out.MANAGED_ACCTS, 1, ",".join(accounts)]


def error(v: int, req_id: int, code: int, message: str, advanced_json: str = "") -> Msg:
    """errMsg (4); at >= 166 it carries advancedOrderRejectJson, without which it is dropped."""
    msg: Msg = [Out.ERR_MSG, 2, req_id, code, message]
    if v >= 166:
        msg.append(advanced_json)
    return msg


def current_time(epoch: int) -> Msg:
    """currentTime (49)."""
    return [Out.CURRENT_TIME, 1, epoch]


def tick_price(req_id: int, tick_type: int, price: float, size: float, attrib: int = 0) -> Msg:
    """tickPrice (1): ``[1, 6, reqId, tickType, price, size, attrMask]``, exactly seven fields."""
    return [Out.TICK_PRICE, 6, req_id, tick_type, price, size, attrib]


def tick_size(req_id: int, tick_type: int, size: float) -> Msg:
    """tickSize (2)."""
    return [Out.TICK_SIZE, 6, req_id, tick_type, size]


def tick_string(req_id: int, tick_type: int, value: str) -> Msg:
    """tickString (46); tick type 45 carries the last trade's epoch seconds."""
    return [Out.TICK_STRING, 6, req_id, tick_type, value]


def tick_req_params(req_id: int, min_tick: float, bbo_exchange: str, permissions: int) -> Msg:
    """tickReqParams (81): sent once after reqMktData."""
    return [Out.TICK_REQ_PARAMS, req_id, min_tick, bbo_exchange, permissions]


def market_data_type(req_id: int, data_type: int) -> Msg:
    """marketDataType (58): 1 live, 2 frozen, 3 delayed, 4 delayed frozen."""
    return [Out.MARKET_DATA_TYPE, 1, req_id, data_type]


def update_mkt_depth(
    req_id: int, position: int, operation: int, side: int, price: float, size: float
) -> Msg:
    """updateMktDepth (12): operation 0 insert / 1 update / 2 delete, side 0 ask / 1 bid."""
    return [Out.MARKET_DEPTH, 1, req_id, position, operation, side, price, size]


def update_mkt_depth_l2(
    req_id: int,
    position: int,
    market_maker: str,
    operation: int,
    side: int,
    price: float,
    size: float,
    smart_depth: bool,
) -> Msg:
    """updateMktDepthL2 (13): as updateMktDepth, with the market maker (exchange) and the
    isSmartDepth flag (present from server version 146, so always here)."""
    return [
        Out.MARKET_DEPTH_L2,
        1,
        req_id,
        position,
        market_maker,
        operation,
        side,
        price,
        size,
        smart_depth,
    ]


def mkt_depth_exchanges(rows: Sequence[tuple[str, str, str, str, int]]) -> Msg:
    """mktDepthExchanges (80): (exchange, secType, listingExch, serviceDataType, aggGroup)
    per row; no version field."""
    out: Msg = [Out.MKT_DEPTH_EXCHANGES, len(rows)]
    for row in rows:
        out.extend(row)
    return out


def tick_snapshot_end(req_id: int) -> Msg:
    """tickSnapshotEnd (57)."""
    return [Out.TICK_SNAPSHOT_END, 1, req_id]


def contract_details(
    v: int,
    req_id: int,
    inst: Instrument,
    valid_exchanges: str,
    order_types: str,
    market_rule_id: int = 26,
) -> Msg:
    """contractDetails (10), field order of ib_async's decoder at version ``v``."""
    msg: Msg = [Out.CONTRACT_DATA]
    if v < 164:
        msg.append(8)  # version field, removed at 164
    msg += [
        req_id,
        inst.symbol,
        inst.sec_type,
        inst.last_trade_date,
        0.0,
        "",
        inst.exchange,
        inst.currency,
        inst.local_symbol,
        inst.trading_class,  # marketName
        inst.trading_class,
        inst.con_id,
        inst.min_tick,
    ]
    if v < 164:
        msg.append(inst.md_size_multiplier)
    msg += [
        multiplier_text(inst),
        order_types,
        valid_exchanges,
        1,  # priceMagnifier
        0,  # underConId
        inst.long_name,
        inst.primary_exchange,
        inst.last_trade_date[:6],  # contractMonth
        inst.industry,
        inst.category,
        "",  # subcategory
        inst.time_zone_id,
        inst.trading_hours,
        inst.liquid_hours,
        "",  # evRule
        "",  # evMultiplier
        0,  # secIdList count
        1,  # aggGroup
        inst.symbol if inst.sec_type == "FUT" else "",  # underSymbol
        "IND" if inst.sec_type == "FUT" else "",  # underSecType
        str(market_rule_id),  # marketRuleIds, one per valid exchange in TWS
        inst.last_trade_date,  # realExpirationDate
        "COMMON" if inst.sec_type == "STK" else "",  # stockType
    ]
    if v == 163:
        msg.append(inst.size_increment)
    if v >= 164:
        msg += [inst.min_size, inst.size_increment, inst.size_increment]
    return msg


def contract_details_end(req_id: int) -> Msg:
    """contractDetailsEnd (52)."""
    return [Out.CONTRACT_DATA_END, 1, req_id]


def symbol_samples(v: int, req_id: int, instruments: Sequence[Instrument]) -> Msg:
    """symbolSamples (79): the answer to reqMatchingSymbols."""
    msg: Msg = [Out.SYMBOL_SAMPLES, req_id, len(instruments)]
    for inst in instruments:
        derivs = (
            ["OPT", "FOP"]
            if inst.sec_type == "FUT"
            else (["OPT"] if inst.sec_type == "STK" else [])
        )
        msg += [inst.con_id, inst.symbol, inst.sec_type, inst.primary_exchange, inst.currency]
        msg += [len(derivs), *derivs]
        if v >= 176:
            msg += [inst.long_name, ""]
    return msg


def format_bar_time(ts: int, format_date: int, daily: bool, tz: str = "UTC") -> str:
    """A bar's date as TWS sends it: ``YYYYMMDD`` (the session's date in ``tz``) for
    daily bars; otherwise epoch seconds for formatDate 2, or for formatDate 1 the time
    in ``tz`` (the exchange's zone) followed by the zone's name,
    ``20261125 09:30:00 US/Eastern``."""
    if daily:
        return datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%Y%m%d")
    if format_date == 2:
        return str(int(ts))
    return format_zoned_time(ts, tz)


def format_zoned_time(ts: float, tz: str = "UTC") -> str:
    """``YYYYMMDD HH:MM:SS <zone>``: an instant in ``tz``, as TWS writes date-times."""
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%Y%m%d %H:%M:%S") + " " + tz


def historical_data(
    req_id: int,
    bars: Sequence[Bar],
    start: str,
    end: str,
    format_date: int,
    daily: bool,
    tz: str = "UTC",
) -> Msg:
    """historicalData (17) with all bars, then (implicitly) the end: one message, as at 178.
    Bar times follow ``format_date`` in the exchange's zone ``tz``."""
    msg: Msg = [Out.HISTORICAL_DATA, req_id, start, end, len(bars)]
    for b in bars:
        msg += [
            format_bar_time(b.time, format_date, daily, tz),
            b.open,
            b.high,
            b.low,
            b.close,
            b.volume,
            b.wap,
            b.count,
        ]
    return msg


def historical_data_update(
    req_id: int, bar: Bar, format_date: int, daily: bool, tz: str = "UTC"
) -> Msg:
    """historicalDataUpdate (90): note the open, close, high, low order."""
    return [
        Out.HISTORICAL_DATA_UPDATE,
        req_id,
        bar.count,
        format_bar_time(bar.time, format_date, daily, tz),
        bar.open,
        bar.close,
        bar.high,
        bar.low,
        bar.wap,
        bar.volume,
    ]


def head_timestamp(req_id: int, ts: str) -> Msg:
    """headTimestamp (88)."""
    return [Out.HEAD_TIMESTAMP, req_id, ts]


def market_rule(rule_id: int, increments: Sequence[tuple[float, float]]) -> Msg:
    """marketRule (93): ``(lowEdge, increment)`` pairs."""
    msg: Msg = [Out.MARKET_RULE, rule_id, len(increments)]
    for low, inc in increments:
        msg += [low, inc]
    return msg


def format_exec_time(ts: float) -> str:
    """Execution time as TWS sends it, with its time zone: ``YYYYMMDD HH:MM:SS UTC``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%d %H:%M:%S") + " UTC"


def exec_details(v: int, req_id: int, ex: Execution, inst: Instrument) -> Msg:
    """execDetails (11); reqId -1 for live fills, the request's id for reqExecutions."""
    msg: Msg = [Out.EXECUTION_DATA, req_id, ex.order_id, *contract11(inst, ex.exchange)]
    msg += [
        ex.exec_id,
        format_exec_time(ex.time),
        ex.account,
        ex.exchange,
        ex.side,
        ex.shares,
        ex.price,
        ex.perm_id,
        ex.client_id,
        0,  # liquidation
        ex.cum_qty,
        ex.avg_price,
        ex.order_ref,
        "",  # evRule
        "",  # evMultiplier
        "",  # modelCode
        1,  # lastLiquidity: added liquidity
    ]
    if v >= 178:
        msg.append(False)  # pendingPriceRevision
    return msg


def exec_details_end(req_id: int) -> Msg:
    """execDetailsEnd (55)."""
    return [Out.EXECUTION_DATA_END, 1, req_id]


def commission_report(ex: Execution) -> Msg:
    """commissionReport (59): exactly eight fields; no realized P&L is UNSET_DOUBLE."""
    return [
        Out.COMMISSION_REPORT,
        1,
        ex.exec_id,
        ex.commission,
        ex.commission_currency,
        UNSET_DOUBLE if ex.realized_pnl is None else ex.realized_pnl,
        UNSET_DOUBLE,  # yield
        "",  # yieldRedemptionDate
    ]


def position(account: str, inst: Instrument, quantity: float, avg_cost: float) -> Msg:
    """position (61): exactly sixteen fields."""
    return [
        Out.POSITION_DATA,
        3,
        account,
        *contract11(inst, inst.primary_exchange if inst.sec_type == "STK" else inst.exchange),
        quantity,
        avg_cost,
    ]


def position_end() -> Msg:
    """positionEnd (62)."""
    return [Out.POSITION_END, 1]


def update_account_value(key: str, value: str, currency: str, account: str) -> Msg:
    """updateAccountValue (6)."""
    return [Out.ACCT_VALUE, 2, key, value, currency, account]


def update_portfolio(
    inst: Instrument,
    quantity: float,
    market_price: float,
    market_value: float,
    average_cost: float,
    unrealized_pnl: float,
    realized_pnl: float,
    account: str,
) -> Msg:
    """updatePortfolio (7): exactly twenty fields; primaryExchange instead of exchange."""
    return [
        Out.PORTFOLIO_VALUE,
        8,
        inst.con_id,
        inst.symbol,
        inst.sec_type,
        inst.last_trade_date,
        0.0,
        "",
        multiplier_text(inst),
        inst.primary_exchange,
        inst.currency,
        inst.local_symbol,
        inst.trading_class,
        quantity,
        market_price,
        market_value,
        average_cost,
        unrealized_pnl,
        realized_pnl,
        account,
    ]


def update_account_time(ts: float) -> Msg:
    """updateAccountTime (8): ``HH:MM``."""
    return [Out.ACCT_UPDATE_TIME, 1, datetime.fromtimestamp(ts, UTC).strftime("%H:%M")]


def account_download_end(account: str) -> Msg:
    """accountDownloadEnd (54): ends the first batch after reqAccountUpdates."""
    return [Out.ACCT_DOWNLOAD_END, 1, account]


def account_update_multi(
    req_id: int, account: str, model_code: str, key: str, value: str, currency: str
) -> Msg:
    """accountUpdateMulti (73)."""
    return [Out.ACCOUNT_UPDATE_MULTI, 1, req_id, account, model_code, key, value, currency]


def account_update_multi_end(req_id: int) -> Msg:
    """accountUpdateMultiEnd (74)."""
    return [Out.ACCOUNT_UPDATE_MULTI_END, 1, req_id]


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> Msg:
    """accountSummary (63)."""
    return [Out.ACCOUNT_SUMMARY, 1, req_id, account, tag, value, currency]


def account_summary_end(req_id: int) -> Msg:
    """accountSummaryEnd (64)."""
    return [Out.ACCOUNT_SUMMARY_END, 1, req_id]


def pnl(req_id: int, p: AccountPnL) -> Msg:
    """pnl (94): no version field."""
    return [Out.PNL, req_id, p.daily_pnl, p.unrealized_pnl, p.realized_pnl]


def pnl_single(req_id: int, p: AccountPnL) -> Msg:
    """pnlSingle (95): no version field."""
    return [
        Out.PNL_SINGLE,
        req_id,
        p.position,
        p.daily_pnl,
        p.unrealized_pnl,
        p.realized_pnl,
        p.value,
    ]


def user_info(req_id: int, white_branding_id: str = "") -> Msg:
    """userInfo (107)."""
    return [Out.USER_INFO, req_id, white_branding_id]
