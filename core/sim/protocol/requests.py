"""Decoding of client requests: one message's string fields -> a small dataclass.

:func:`parse_request` picks the parser by message id and turns every decoding fault
into :class:`MalformedRequest` (answered with error 320, the session stays) or
:class:`UnsupportedRequest` (a valid TWS API id the gateway does not simulate). Field
orders mirror ib_async 2.1.0's ``client.py`` at the negotiated server version;
:func:`parse_place_order` keeps every placeOrder field it does not model in
``OrderRequest.extra`` so that openOrder can echo it (:mod:`.orders`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.sim.model import UNSET_DOUBLE, OrderRequest
from core.sim.protocol.framing import In, ProtocolError


class FieldReader:
    """Reads one message's fields left to right, with typed accessors.

    Every accessor raises :class:`ProtocolError` when the message is too short or a
    field has the wrong type, so a parser error can never crash the gateway.
    """

    def __init__(self, fields: Sequence[str], start: int = 1) -> None:
        self.fields = fields
        self.pos = start
        self.request_id: int | None = None
        """The request's id (reqId or orderId) once :meth:`id` has read it."""

    def id(self) -> int:
        """The next field as the request's id (reqId/orderId), remembered for an error reply."""
        value = self.int()
        self.request_id = value
        return value

    def str(self) -> str:
        """The next field as text."""
        if self.pos >= len(self.fields):
            raise ProtocolError(f"message too short: {len(self.fields)} fields")
        value = self.fields[self.pos]
        self.pos += 1
        return value

    def int(self, default: int = 0) -> int:
        """The next field as an integer; empty gives ``default``."""
        text = self.str()
        if text == "":
            return default
        try:
            return int(text)
        except ValueError:
            try:
                as_float = float(text)
            except ValueError as exc:
                raise ProtocolError(f"field {self.pos - 1}: {text!r} is not an integer") from exc
            if not as_float.is_integer():
                raise ProtocolError(f"field {self.pos - 1}: {text!r} is not an integer") from None
            return int(as_float)

    def float(self) -> float | None:
        """The next field as a float; empty or UNSET_DOUBLE gives None."""
        text = self.str()
        return parse_float(text, self.pos - 1)

    def bool(self) -> bool:
        """The next field as a boolean ("1"/"0"; empty is False)."""
        text = self.str()
        if text in ("", "0", "false", "False"):
            return False
        if text in ("1", "true", "True"):
            return True
        try:
            return float(text) != 0
        except ValueError as exc:
            raise ProtocolError(f"field {self.pos - 1}: {text!r} is not a boolean") from exc

    def done(self) -> None:
        """Assert the whole message was consumed (a mismatch means a codec bug)."""
        if self.pos != len(self.fields):
            raise ProtocolError(
                f"message id {self.fields[0] if self.fields else '?'}: "
                f"{len(self.fields) - self.pos} unparsed fields left"
            )


def parse_float(text: str, index: int = -1) -> float | None:
    """A wire float: "" and UNSET_DOUBLE are None, "Infinite" is +inf."""
    if text == "":
        return None
    if text in ("Infinite", "Infinity", "inf"):
        return math.inf
    if text in ("-Infinite", "-Infinity", "-inf"):
        return -math.inf
    try:
        value = float(text)
    except ValueError as exc:
        raise ProtocolError(f"field {index}: {text!r} is not a number") from exc
    return None if value >= UNSET_DOUBLE else value


@dataclass(slots=True)
class ContractSpec:
    """A contract as a client describes it (possibly incomplete: conId 0, no currency...)."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade_date: str = ""
    strike: float = 0.0
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""
    include_expired: bool = False
    sec_id_type: str = ""
    sec_id: str = ""
    issuer_id: str = ""
    combo_legs: list[list[str]] = field(default_factory=list)
    delta_neutral: tuple[int, float, float] | None = None


def read_contract(r: FieldReader) -> ContractSpec:
    """The 12 contract fields every request carries (ib_async's Contract encoding)."""
    c = ContractSpec()
    c.con_id = r.int()
    c.symbol = r.str()
    c.sec_type = r.str()
    c.last_trade_date = r.str()
    c.strike = r.float() or 0.0
    c.right = r.str()
    c.multiplier = r.str()
    c.exchange = r.str()
    c.primary_exchange = r.str()
    c.currency = r.str()
    c.local_symbol = r.str()
    c.trading_class = r.str()
    return c


@dataclass(slots=True)
class StartApi:
    """startApi (71): the client id and its optional capabilities."""

    client_id: int
    optional_capabilities: str


@dataclass(slots=True)
class ReqMktData:
    """reqMktData (1): a streaming or snapshot market-data subscription."""

    req_id: int
    contract: ContractSpec
    generic_tick_list: str
    snapshot: bool
    regulatory_snapshot: bool
    options: str


@dataclass(slots=True)
class ReqMktDepth:
    """reqMktDepth (10): an order-book subscription, ``num_rows`` levels a side."""

    req_id: int
    contract: ContractSpec
    num_rows: int
    smart_depth: bool
    options: str


@dataclass(slots=True)
class CancelMktDepth:
    """cancelMktDepth (11)."""

    req_id: int
    smart_depth: bool


@dataclass(slots=True)
class ReqId:
    """A request (or cancel) carrying nothing but a request id."""

    req_id: int


@dataclass(slots=True)
class NoArgs:
    """A request with no arguments (reqOpenOrders, reqPositions, reqGlobalCancel...)."""


@dataclass(slots=True)
class ReqMarketDataType:
    """reqMarketDataType (59): 1 live, 2 frozen, 3 delayed, 4 delayed frozen."""

    market_data_type: int


@dataclass(slots=True)
class ReqContractDetails:
    """reqContractDetails (9)."""

    req_id: int
    contract: ContractSpec


@dataclass(slots=True)
class ReqMatchingSymbols:
    """reqMatchingSymbols (81): a symbol or name pattern."""

    req_id: int
    pattern: str


@dataclass(slots=True)
class ReqHistoricalData:
    """reqHistoricalData (20): bars ending at ``end_date_time`` ( = now)."""

    req_id: int
    contract: ContractSpec
    end_date_time: str
    bar_size: str
    duration: str
    use_rth: bool
    what_to_show: str
    format_date: int
    keep_up_to_date: bool
    chart_options: str


@dataclass(slots=True)
class PlaceOrder:
    """placeOrder: the contract as sent and the order (``request.con_id`` is the sent conId)."""

    order_id: int
    contract: ContractSpec
    request: OrderRequest


@dataclass(slots=True)
class CancelOrder:
    """cancelOrder (4); ``manual_cancel_time`` exists from server version 169."""

    order_id: int
    manual_cancel_time: str = ""


@dataclass(slots=True)
class ReqAutoOpenOrders:
    """reqAutoOpenOrders (15): client 0 asks to see every client's orders."""

    auto_bind: bool


@dataclass(slots=True)
class ReqCompletedOrders:
    """reqCompletedOrders (99)."""

    api_only: bool


@dataclass(slots=True)
class ReqAccountUpdates:
    """reqAccountUpdates (6): (un)subscribe to one account's values and portfolio."""

    subscribe: bool
    account: str


@dataclass(slots=True)
class ReqAccountUpdatesMulti:
    """reqAccountUpdatesMulti (76)."""

    req_id: int
    account: str
    model_code: str
    ledger_and_nlv: bool


@dataclass(slots=True)
class ReqAccountSummary:
    """reqAccountSummary (62): comma-separated tags, ``$LEDGER`` included."""

    req_id: int
    group: str
    tags: str


@dataclass(slots=True)
class ExecFilter:
    """reqExecutions' filter; empty / zero fields match everything."""

    client_id: int = 0
    account: str = ""
    time: str = ""
    symbol: str = ""
    sec_type: str = ""
    exchange: str = ""
    side: str = ""


@dataclass(slots=True)
class ReqExecutions:
    """reqExecutions (7): the day's executions matching a filter."""

    req_id: int
    filter: ExecFilter


@dataclass(slots=True)
class ReqPnL:
    """reqPnL (92): an account's daily, unrealized and realized P&L."""

    req_id: int
    account: str
    model_code: str


@dataclass(slots=True)
class ReqPnLSingle:
    """reqPnLSingle (94): one position's P&L."""

    req_id: int
    account: str
    model_code: str
    con_id: int


@dataclass(slots=True)
class ReqIds:
    """reqIds (8): asks for the next valid order id."""

    num_ids: int


@dataclass(slots=True)
class SetServerLogLevel:
    """setServerLogLevel (14): accepted and ignored."""

    level: int


@dataclass(slots=True)
class ReqMarketRule:
    """reqMarketRule (91): price increments of a market rule id."""

    market_rule_id: int


@dataclass(slots=True)
class ReqHeadTimestamp:
    """reqHeadTimeStamp (87): the earliest available data point."""

    req_id: int
    contract: ContractSpec
    use_rth: bool
    what_to_show: str
    format_date: int


Request = Any  # one of the dataclasses above; kept loose so dispatch tables stay simple


def _skip_version(r: FieldReader) -> None:
    r.str()


def _parse_start_api(r: FieldReader, v: int) -> StartApi:
    _skip_version(r)
    client_id = r.int()
    caps = r.str() if r.pos < len(r.fields) else ""
    return StartApi(client_id, caps)


def _parse_req_mkt_data(r: FieldReader, v: int) -> ReqMktData:
    _skip_version(r)
    req_id = r.id()
    c = read_contract(r)
    if c.sec_type == "BAG":
        for _ in range(r.int()):
            c.combo_legs.append([r.str(), r.str(), r.str(), r.str()])
    if r.bool():
        c.delta_neutral = (r.int(), r.float() or 0.0, r.float() or 0.0)
    generic = r.str()
    snapshot = r.bool()
    regulatory = r.bool()
    options = r.str()
    return ReqMktData(req_id, c, generic, snapshot, regulatory, options)


def _parse_req_mkt_depth(r: FieldReader, v: int) -> ReqMktDepth:
    _skip_version(r)
    req_id = r.id()
    c = read_contract(r)
    return ReqMktDepth(req_id, c, r.int(), r.bool(), r.str())


def _parse_cancel_mkt_depth(r: FieldReader, v: int) -> CancelMktDepth:
    _skip_version(r)
    return CancelMktDepth(r.id(), r.bool())


def _parse_versioned_req_id(r: FieldReader, v: int) -> ReqId:
    _skip_version(r)
    return ReqId(r.id())


def _parse_bare_req_id(r: FieldReader, v: int) -> ReqId:
    return ReqId(r.id())


def _parse_versioned_no_args(r: FieldReader, v: int) -> NoArgs:
    _skip_version(r)
    return NoArgs()


def _parse_bare_no_args(r: FieldReader, v: int) -> NoArgs:
    return NoArgs()


def _parse_req_market_data_type(r: FieldReader, v: int) -> ReqMarketDataType:
    _skip_version(r)
    return ReqMarketDataType(r.int())


def _parse_req_contract_details(r: FieldReader, v: int) -> ReqContractDetails:
    _skip_version(r)
    req_id = r.id()
    c = read_contract(r)
    c.include_expired = r.bool()
    c.sec_id_type = r.str()
    c.sec_id = r.str()
    if v >= 176:
        c.issuer_id = r.str()
    return ReqContractDetails(req_id, c)


def _parse_req_matching_symbols(r: FieldReader, v: int) -> ReqMatchingSymbols:
    return ReqMatchingSymbols(r.id(), r.str())


def _parse_req_historical_data(r: FieldReader, v: int) -> ReqHistoricalData:
    # No version field at the versions this codec speaks (dropped at server version 124).
    req_id = r.id()
    c = read_contract(r)
    c.include_expired = r.bool()
    end = r.str()
    bar_size = r.str()
    duration = r.str()
    use_rth = r.bool()
    what = r.str()
    format_date = r.int(1)
    if c.sec_type == "BAG":
        for _ in range(r.int()):
            c.combo_legs.append([r.str(), r.str(), r.str(), r.str()])
    keep = r.bool()
    chart_options = r.str()
    return ReqHistoricalData(
        req_id, c, end, bar_size, duration, use_rth, what, format_date, keep, chart_options
    )


def _parse_cancel_order(r: FieldReader, v: int) -> CancelOrder:
    _skip_version(r)
    order_id = r.id()
    manual = r.str() if v >= 169 else ""
    return CancelOrder(order_id, manual)


def _parse_req_auto_open_orders(r: FieldReader, v: int) -> ReqAutoOpenOrders:
    _skip_version(r)
    return ReqAutoOpenOrders(r.bool())


def _parse_req_completed_orders(r: FieldReader, v: int) -> ReqCompletedOrders:
    return ReqCompletedOrders(r.bool())


def _parse_req_account_updates(r: FieldReader, v: int) -> ReqAccountUpdates:
    _skip_version(r)
    return ReqAccountUpdates(r.bool(), r.str())


def _parse_req_account_updates_multi(r: FieldReader, v: int) -> ReqAccountUpdatesMulti:
    _skip_version(r)
    return ReqAccountUpdatesMulti(r.id(), r.str(), r.str(), r.bool())


def _parse_req_account_summary(r: FieldReader, v: int) -> ReqAccountSummary:
    _skip_version(r)
    return ReqAccountSummary(r.id(), r.str(), r.str())


def _parse_req_executions(r: FieldReader, v: int) -> ReqExecutions:
    _skip_version(r)
    req_id = r.id()
    f = ExecFilter(r.int(), r.str(), r.str(), r.str(), r.str(), r.str(), r.str())
    return ReqExecutions(req_id, f)


def _parse_req_pnl(r: FieldReader, v: int) -> ReqPnL:
    return ReqPnL(r.id(), r.str(), r.str())


def _parse_req_pnl_single(r: FieldReader, v: int) -> ReqPnLSingle:
    return ReqPnLSingle(r.id(), r.str(), r.str(), r.int())


def _parse_req_ids(r: FieldReader, v: int) -> ReqIds:
    _skip_version(r)
    return ReqIds(r.int())


def _parse_set_server_log_level(r: FieldReader, v: int) -> SetServerLogLevel:
    _skip_version(r)
    return SetServerLogLevel(r.int())


def _parse_req_market_rule(r: FieldReader, v: int) -> ReqMarketRule:
    return ReqMarketRule(r.int())


def _parse_req_head_timestamp(r: FieldReader, v: int) -> ReqHeadTimestamp:
    req_id = r.id()
    c = read_contract(r)
    c.include_expired = r.bool()
    use_rth = r.bool()
    what = r.str()
    return ReqHeadTimestamp(req_id, c, use_rth, what, r.int(1))


# Conditions: field count after condType, per ib_async's OrderCondition dataclasses.
_CONDITION_FIELDS = {1: 6, 3: 3, 4: 3, 5: 4, 6: 5, 7: 5}


def parse_place_order(r: FieldReader, v: int, client_id: int = 0) -> PlaceOrder:
    """Parse placeOrder (3) exactly as ib_async's ``Client.placeOrder`` encodes it at ``v``.

    Fields that map to :class:`OrderRequest` attributes go there; every other field is
    kept, as sent, under ib_async's ``Order`` attribute name in ``request.extra`` so
    that openOrder can echo it. Lists (algo params, combo legs, conditions) are kept as
    JSON arrays of strings.
    """
    e: dict[str, str] = {}

    def keep(*names: str) -> None:
        for name in names:
            e[name] = r.str()

    order_id = r.id()
    c = read_contract(r)
    c.sec_id_type = r.str()
    c.sec_id = r.str()
    action = r.str()
    total_quantity = r.float() or 0.0
    order_type = r.str()
    lmt_price = r.float()
    aux_price = r.float()
    tif = r.str()
    oca_group = r.str()
    account = r.str()
    keep("openClose", "origin")
    order_ref = r.str()
    transmit = r.bool()
    parent_id = r.int()
    keep("blockOrder", "sweepToFill", "displaySize", "triggerMethod")
    outside_rth = r.bool()
    keep("hidden")

    if c.sec_type == "BAG":
        for _ in range(r.int()):
            c.combo_legs.append([r.str() for _ in range(8)])
        e["orderComboLegs"] = json.dumps([r.str() for _ in range(r.int())])
        e["smartComboRoutingParams"] = json.dumps([[r.str(), r.str()] for _ in range(r.int())])

    r.str()  # deprecated sharesAllocation, always empty
    keep("discretionaryAmt", "goodAfterTime", "goodTillDate", "faGroup", "faMethod")
    keep("faPercentage")
    if v < 177:
        keep("faProfile")
    keep("modelCode", "shortSaleSlot", "designatedLocation", "exemptCode", "ocaType")
    keep("rule80A", "settlingFirm", "allOrNone", "minQty", "percentOffset", "eTradeOnly")
    keep("firmQuoteOnly", "nbboPriceCap", "auctionStrategy", "startingPrice", "stockRefPrice")
    keep("delta", "stockRangeLower", "stockRangeUpper", "overridePercentageConstraints")
    keep("volatility", "volatilityType", "deltaNeutralOrderType", "deltaNeutralAuxPrice")
    if e["deltaNeutralOrderType"]:
        keep("deltaNeutralConId", "deltaNeutralSettlingFirm", "deltaNeutralClearingAccount")
        keep("deltaNeutralClearingIntent", "deltaNeutralOpenClose", "deltaNeutralShortSale")
        keep("deltaNeutralShortSaleSlot", "deltaNeutralDesignatedLocation")
    keep("continuousUpdate", "referencePriceType")
    trail_stop_price = r.float()
    trailing_percent = r.float()
    keep("scaleInitLevelSize", "scaleSubsLevelSize", "scalePriceIncrement")
    increment = parse_float(e["scalePriceIncrement"])
    if increment is not None and increment > 0:
        keep("scalePriceAdjustValue", "scalePriceAdjustInterval", "scaleProfitOffset")
        keep("scaleAutoReset", "scaleInitPosition", "scaleInitFillQty", "scaleRandomPercent")
    keep("scaleTable", "activeStartTime", "activeStopTime", "hedgeType")
    if e["hedgeType"]:
        keep("hedgeParam")
    keep("optOutSmartRouting", "clearingAccount", "clearingIntent", "notHeld")
    if r.bool():
        c.delta_neutral = (r.int(), r.float() or 0.0, r.float() or 0.0)
    keep("algoStrategy")
    if e["algoStrategy"]:
        e["algoParams"] = json.dumps([[r.str(), r.str()] for _ in range(r.int())])
    keep("algoId")
    what_if = r.bool()
    keep("orderMiscOptions", "solicited", "randomizeSize", "randomizePrice")
    if order_type in ("PEG BENCH", "PEGBENCH"):
        keep("referenceContractId", "isPeggedChangeAmountDecrease", "peggedChangeAmount")
        keep("referenceChangeAmount", "referenceExchangeId")
    conditions: list[list[str]] = []
    for _ in range(r.int()):
        cond_type = r.int()
        if cond_type not in _CONDITION_FIELDS:
            raise ProtocolError(f"unknown order condition type {cond_type}")
        conditions.append([str(cond_type)] + [r.str() for _ in range(_CONDITION_FIELDS[cond_type])])
    if conditions:
        e["conditions"] = json.dumps(conditions)
        keep("conditionsIgnoreRth", "conditionsCancelOrder")
    keep("adjustedOrderType", "triggerPrice", "lmtPriceOffset", "adjustedStopPrice")
    keep("adjustedStopLimitPrice", "adjustedTrailingAmount", "adjustableTrailingUnit")
    keep("extOperator")
    e["softDollarTier.name"] = r.str()
    e["softDollarTier.val"] = r.str()
    keep("cashQty", "mifid2DecisionMaker", "mifid2DecisionAlgo", "mifid2ExecutionTrader")
    keep("mifid2ExecutionAlgo", "dontUseAutoPriceForHedge", "isOmsContainer")
    keep("discretionaryUpToLimitPrice", "usePriceMgmtAlgo")
    if v >= 158:
        keep("duration")
    if v >= 160:
        keep("postToAts")
    if v >= 162:
        keep("autoCancelParent")
    if v >= 166:
        keep("advancedErrorOverride")
    if v >= 169:
        keep("manualOrderTime")
    if v >= 170:
        if c.exchange == "IBKRATS":
            keep("minTradeQty")
        if order_type in ("PEG BEST", "PEGBEST"):
            keep("minCompeteSize", "competeAgainstBestOffset")
            if parse_float(e["competeAgainstBestOffset"]) == math.inf:
                keep("midOffsetAtWhole", "midOffsetAtHalf")
        elif order_type in ("PEG MID", "PEGMID"):
            keep("midOffsetAtWhole", "midOffsetAtHalf")
    r.done()

    request = OrderRequest(
        order_id=order_id,
        client_id=client_id,
        con_id=c.con_id,
        action=action,
        total_quantity=total_quantity,
        order_type=order_type,
        lmt_price=lmt_price,
        aux_price=aux_price,
        trailing_percent=trailing_percent,
        trail_stop_price=trail_stop_price,
        tif=tif,
        outside_rth=outside_rth,
        account=account,
        order_ref=order_ref,
        what_if=what_if,
        parent_id=parent_id,
        transmit=transmit,
        oca_group=oca_group,
        extra=e,
    )
    return PlaceOrder(order_id, c, request)


def _parse_place_order(r: FieldReader, v: int) -> PlaceOrder:
    return parse_place_order(r, v)


_PARSERS: dict[int, Callable[[FieldReader, int], Any]] = {
    In.START_API: _parse_start_api,
    In.REQ_MKT_DATA: _parse_req_mkt_data,
    In.CANCEL_MKT_DATA: _parse_versioned_req_id,
    In.PLACE_ORDER: _parse_place_order,
    In.CANCEL_ORDER: _parse_cancel_order,
    In.REQ_OPEN_ORDERS: _parse_versioned_no_args,
    In.REQ_ACCT_DATA: _parse_req_account_updates,
    In.REQ_EXECUTIONS: _parse_req_executions,
    In.REQ_IDS: _parse_req_ids,
    In.REQ_CONTRACT_DATA: _parse_req_contract_details,
    In.SET_SERVER_LOGLEVEL: _parse_set_server_log_level,
    In.REQ_AUTO_OPEN_ORDERS: _parse_req_auto_open_orders,
    In.REQ_ALL_OPEN_ORDERS: _parse_versioned_no_args,
    In.REQ_MANAGED_ACCTS: _parse_versioned_no_args,
    In.REQ_HISTORICAL_DATA: _parse_req_historical_data,
    In.CANCEL_HISTORICAL_DATA: _parse_versioned_req_id,
    In.REQ_CURRENT_TIME: _parse_versioned_no_args,
    In.REQ_GLOBAL_CANCEL: _parse_versioned_no_args,
    In.REQ_MARKET_DATA_TYPE: _parse_req_market_data_type,
    In.REQ_POSITIONS: _parse_versioned_no_args,
    In.REQ_ACCOUNT_SUMMARY: _parse_req_account_summary,
    In.CANCEL_ACCOUNT_SUMMARY: _parse_versioned_req_id,
    In.CANCEL_POSITIONS: _parse_versioned_no_args,
    In.REQ_ACCOUNT_UPDATES_MULTI: _parse_req_account_updates_multi,
    In.CANCEL_ACCOUNT_UPDATES_MULTI: _parse_versioned_req_id,
    In.REQ_MATCHING_SYMBOLS: _parse_req_matching_symbols,
    In.REQ_PNL: _parse_req_pnl,
    In.CANCEL_PNL: _parse_bare_req_id,
    In.REQ_PNL_SINGLE: _parse_req_pnl_single,
    In.CANCEL_PNL_SINGLE: _parse_bare_req_id,
    In.REQ_COMPLETED_ORDERS: _parse_req_completed_orders,
    In.REQ_MARKET_RULE: _parse_req_market_rule,
    In.REQ_HEAD_TIMESTAMP: _parse_req_head_timestamp,
    In.CANCEL_HEAD_TIMESTAMP: _parse_bare_req_id,
    In.REQ_USER_INFO: _parse_bare_req_id,
    In.REQ_MKT_DEPTH: _parse_req_mkt_depth,
    In.CANCEL_MKT_DEPTH: _parse_cancel_mkt_depth,
    In.REQ_MKT_DEPTH_EXCHANGES: _parse_bare_no_args,
}


def parse_request(fields: Sequence[str], server_version: int) -> tuple[In, Request]:
    """Parse one client message into ``(message id, request dataclass)``.

    Raises :class:`MalformedRequest` (carrying the request id when it could be read) for
    a message whose fields do not parse, and :class:`UnsupportedRequest` for well-formed
    ids this gateway does not implement. Nothing else escapes: the caller answers both
    with an error reply and keeps the connection.
    """
    if not fields:
        raise MalformedRequest(-1, -1, "empty message")
    try:
        msg_id = int(fields[0])
    except ValueError:
        raise MalformedRequest(-1, -1, f"bad message id {fields[0]!r}") from None
    parser = _PARSERS.get(msg_id)
    if parser is None:
        raise UnsupportedRequest(msg_id)
    reader = FieldReader(fields)
    try:
        request = parser(reader, server_version)
    except ProtocolError as exc:
        rid = reader.request_id if reader.request_id is not None else -1
        raise MalformedRequest(msg_id, rid, str(exc)) from exc
    except (ValueError, ArithmeticError, IndexError) as exc:  # a parser's own bug
        rid = reader.request_id if reader.request_id is not None else -1
        raise MalformedRequest(msg_id, rid, f"{type(exc).__name__}: {exc}") from exc
    return In(msg_id), request


class UnsupportedRequest(ProtocolError):
    """A message id the gateway does not implement (valid TWS API, but not simulated)."""

    def __init__(self, msg_id: int) -> None:
        super().__init__(f"unsupported request id {msg_id}")
        self.msg_id = msg_id


class MalformedRequest(ProtocolError):
    """A request whose fields do not parse: answered with error 320, the session stays.

    ``msg_id`` is the message id (-1 when unreadable) and ``req_id`` the request's id
    (reqId or orderId) when it was read before the fault, else -1.
    """

    def __init__(self, msg_id: int, req_id: int, reason: str) -> None:
        super().__init__(f"malformed message {msg_id}: {reason}")
        self.msg_id = msg_id
        self.req_id = req_id
        self.reason = reason
