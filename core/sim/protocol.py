"""TWS API wire codec: framing, message ids, request parsers and message builders.

The TWS API is a stream of length-prefixed messages (4-byte big-endian length) whose
payload is a sequence of NUL-terminated UTF-8 fields. The first field is a message id;
client->server and server->client ids live in separate tables (:class:`In`,
:class:`Out`) because the numbers overlap (client 94 is reqPnLSingle, server 94 is pnl).

Field orders mirror ib_async 2.1.0 (``client.py`` encodes requests, ``decoder.py``
decodes our messages) at the negotiated server version. Nothing here imports ib_async:
the simulated gateway must serve any TWS API client.

Parsers take the list of string fields of one message and return a small dataclass;
builders return the list of fields of one message, ready for :func:`frame`.
"""

from __future__ import annotations

import json
import math
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import IntEnum
from typing import Any
from zoneinfo import ZoneInfo

from core.sim.model import (
    UNSET_DOUBLE,
    UNSET_INTEGER,
    AccountPnL,
    Bar,
    Execution,
    Instrument,
    OrderRequest,
    SimOrder,
    WhatIfResult,
)

MIN_CLIENT_VERSION = 157
"""Oldest server version this codec speaks (ib_async 2.1.0's minimum)."""
MAX_CLIENT_VERSION = 178
"""Newest server version this codec speaks (ib_async 2.1.0's maximum)."""
DEFAULT_SERVER_VERSION = 178

MAX_MESSAGE_SIZE = 1 << 20
"""Largest payload accepted from a client; TWS's own limit is 16 MB, no request is near 1 MB."""

HELLO = b"API\0"
UNSET_DOUBLE_WIRE = "1.7976931348623157E308"  # how TWS itself spells Double.MAX_VALUE

Field = str | int | float | bool | Decimal | None


class ProtocolError(Exception):
    """A client sent bytes that are not a valid TWS API message."""


# --- message ids ---------------------------------------------------------------------------


class In(IntEnum):
    """Message ids of client->server requests."""

    REQ_MKT_DATA = 1
    CANCEL_MKT_DATA = 2
    PLACE_ORDER = 3
    CANCEL_ORDER = 4
    REQ_OPEN_ORDERS = 5
    REQ_ACCT_DATA = 6
    REQ_EXECUTIONS = 7
    REQ_IDS = 8
    REQ_CONTRACT_DATA = 9
    REQ_MKT_DEPTH = 10
    CANCEL_MKT_DEPTH = 11
    REQ_NEWS_BULLETINS = 12
    CANCEL_NEWS_BULLETINS = 13
    SET_SERVER_LOGLEVEL = 14
    REQ_AUTO_OPEN_ORDERS = 15
    REQ_ALL_OPEN_ORDERS = 16
    REQ_MANAGED_ACCTS = 17
    REQ_FA = 18
    REPLACE_FA = 19
    REQ_HISTORICAL_DATA = 20
    EXERCISE_OPTIONS = 21
    REQ_SCANNER_SUBSCRIPTION = 22
    CANCEL_SCANNER_SUBSCRIPTION = 23
    REQ_SCANNER_PARAMETERS = 24
    CANCEL_HISTORICAL_DATA = 25
    REQ_CURRENT_TIME = 49
    REQ_REAL_TIME_BARS = 50
    CANCEL_REAL_TIME_BARS = 51
    REQ_FUNDAMENTAL_DATA = 52
    CANCEL_FUNDAMENTAL_DATA = 53
    REQ_GLOBAL_CANCEL = 58
    REQ_MARKET_DATA_TYPE = 59
    REQ_POSITIONS = 61
    REQ_ACCOUNT_SUMMARY = 62
    CANCEL_ACCOUNT_SUMMARY = 63
    CANCEL_POSITIONS = 64
    START_API = 71
    REQ_POSITIONS_MULTI = 74
    CANCEL_POSITIONS_MULTI = 75
    REQ_ACCOUNT_UPDATES_MULTI = 76
    CANCEL_ACCOUNT_UPDATES_MULTI = 77
    REQ_SEC_DEF_OPT_PARAMS = 78
    REQ_SOFT_DOLLAR_TIERS = 79
    REQ_FAMILY_CODES = 80
    REQ_MATCHING_SYMBOLS = 81
    REQ_MKT_DEPTH_EXCHANGES = 82
    REQ_SMART_COMPONENTS = 83
    REQ_NEWS_PROVIDERS = 85
    REQ_HEAD_TIMESTAMP = 87
    CANCEL_HEAD_TIMESTAMP = 90
    REQ_MARKET_RULE = 91
    REQ_PNL = 92
    CANCEL_PNL = 93
    REQ_PNL_SINGLE = 94
    CANCEL_PNL_SINGLE = 95
    REQ_HISTORICAL_TICKS = 96
    REQ_TICK_BY_TICK_DATA = 97
    CANCEL_TICK_BY_TICK_DATA = 98
    REQ_COMPLETED_ORDERS = 99
    REQ_USER_INFO = 104


class Out(IntEnum):
    """Message ids of server->client messages."""

    TICK_PRICE = 1
    TICK_SIZE = 2
    ORDER_STATUS = 3
    ERR_MSG = 4
    OPEN_ORDER = 5
    ACCT_VALUE = 6
    PORTFOLIO_VALUE = 7
    ACCT_UPDATE_TIME = 8
    NEXT_VALID_ID = 9
    CONTRACT_DATA = 10
    EXECUTION_DATA = 11
    MARKET_DEPTH = 12
    MARKET_DEPTH_L2 = 13
    MANAGED_ACCTS = 15
    HISTORICAL_DATA = 17
    TICK_GENERIC = 45
    TICK_STRING = 46
    CURRENT_TIME = 49
    CONTRACT_DATA_END = 52
    OPEN_ORDER_END = 53
    ACCT_DOWNLOAD_END = 54
    EXECUTION_DATA_END = 55
    TICK_SNAPSHOT_END = 57
    MARKET_DATA_TYPE = 58
    COMMISSION_REPORT = 59
    POSITION_DATA = 61
    POSITION_END = 62
    ACCOUNT_SUMMARY = 63
    ACCOUNT_SUMMARY_END = 64
    POSITION_MULTI = 71
    POSITION_MULTI_END = 72
    ACCOUNT_UPDATE_MULTI = 73
    ACCOUNT_UPDATE_MULTI_END = 74
    SYMBOL_SAMPLES = 79
    MKT_DEPTH_EXCHANGES = 80
    TICK_REQ_PARAMS = 81
    HEAD_TIMESTAMP = 88
    HISTORICAL_DATA_UPDATE = 90
    MARKET_RULE = 93
    PNL = 94
    PNL_SINGLE = 95
    COMPLETED_ORDER = 101
    COMPLETED_ORDERS_END = 102
    USER_INFO = 107


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


# --- framing -------------------------------------------------------------------------------


def fmt(value: Field) -> str:
    """Encode one field as TWS does.

    bool -> "1"/"0", None -> "", UNSET_DOUBLE -> TWS's own spelling, infinity ->
    "Infinite", other floats in plain decimal notation (never "1e+16", which not every
    client's number parser accepts).
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(int(value))  # int() so IntEnum members print as numbers
    if isinstance(value, float):
        if value == UNSET_DOUBLE:
            return UNSET_DOUBLE_WIRE
        if math.isinf(value):
            return "Infinite" if value > 0 else "-Infinite"
        if math.isnan(value):
            return ""
        text = repr(value)
        if "e" in text or "E" in text:
            text = format(Decimal(text), "f")
        return text
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def encode(fields: Iterable[Field]) -> bytes:
    """One framed message: length prefix + NUL-terminated fields."""
    payload = "".join(fmt(f) + "\0" for f in fields).encode("utf-8")
    return struct.pack(">I", len(payload)) + payload


def frame_raw(payload: bytes) -> bytes:
    """Length-prefix a raw payload (the handshake's version string has no trailing NUL)."""
    return struct.pack(">I", len(payload)) + payload


def split_fields(payload: bytes) -> list[str]:
    """Split one payload into its string fields (the terminating NUL of the last is dropped)."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"message is not UTF-8: {exc}") from exc
    parts = text.split("\0")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


class FrameReader:
    """Incremental reader of length-prefixed frames.

    ``feed`` bytes as they arrive; it returns every complete payload. A frame larger
    than ``max_size`` raises :class:`ProtocolError` before it is buffered, so a client
    announcing a 4 GB message cannot exhaust memory.
    """

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self.max_size = max_size
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the payloads of the frames now complete."""
        self._buf += data
        out: list[bytes] = []
        while len(self._buf) >= 4:
            (size,) = struct.unpack(">I", self._buf[:4])
            if size > self.max_size:
                raise ProtocolError(f"frame of {size} bytes exceeds limit {self.max_size}")
            if len(self._buf) < 4 + size:
                break
            out.append(bytes(self._buf[4 : 4 + size]))
            del self._buf[: 4 + size]
        return out

    @property
    def pending(self) -> int:
        """Bytes buffered but not yet part of a complete frame."""
        return len(self._buf)


@dataclass(frozen=True, slots=True)
class Hello:
    """The client's handshake: supported version range and connect options."""

    min_version: int
    max_version: int
    options: str = ""

    def accepts(self, server_version: int) -> bool:
        """Whether ``server_version`` lies in the client's range."""
        return self.min_version <= server_version <= self.max_version

    def negotiate(self, lowest: int, highest: int) -> int | None:
        """The highest version in both the client's range and ``lowest..highest``, as
        TWS answers the handshake; None when the ranges do not meet."""
        version = min(self.max_version, highest)
        return version if version >= max(self.min_version, lowest) else None


def parse_hello(payload: bytes) -> Hello:
    """Parse the framed version string after ``API\\0``: ``v157..178`` or ``v157..178 +OPT``.

    A single version ``v178`` is also accepted, as TWS does.
    """
    try:
        text = payload.decode("ascii").rstrip("\0")
    except UnicodeDecodeError as exc:
        raise ProtocolError("handshake is not ASCII") from exc
    versions, _, options = text.partition(" ")
    if not versions.startswith("v"):
        raise ProtocolError(f"bad handshake {text!r}")
    lo, sep, hi = versions[1:].partition("..")
    try:
        low = int(lo)
        high = int(hi) if sep else low
    except ValueError as exc:
        raise ProtocolError(f"bad version range {versions!r}") from exc
    if low > high:
        raise ProtocolError(f"empty version range {versions!r}")
    return Hello(low, high, options)


def connection_time(ts: float | None = None) -> str:
    """The handshake's connection time, ``YYYYMMDD HH:MM:SS TZ`` (the gateway runs on UTC)."""
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, UTC)
    return moment.strftime("%Y%m%d %H:%M:%S") + " UTC"


def server_hello(server_version: int, ts: float | None = None) -> bytes:
    """The handshake answer: one frame of ``<version>\\0<connection time>\\0``."""
    return encode([server_version, connection_time(ts)])


# --- request parsing -----------------------------------------------------------------------


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


# --- message builders ----------------------------------------------------------------------

Msg = list[Field]


def multiplier_text(inst: Instrument) -> str:
    """IB sends an empty multiplier for stocks and forex, the number for futures."""
    if inst.multiplier == 1:
        return ""
    m = inst.multiplier
    return str(int(m)) if float(m).is_integer() else fmt(float(m))


def _contract11(inst: Instrument, exchange: str | None = None) -> Msg:
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


def _x(extra: dict[str, str], name: str, default: Field = "") -> Field:
    """An echoed placeOrder field, or a default a TWS API decoder can parse."""
    value = extra.get(name)
    if value is None:
        return default
    # Clients send infinity as "Infinite"; decoders parse floats with float()/parseDouble,
    # which know "Infinity" only.
    return "Infinity" if value == "Infinite" else value


def _price(value: float | None) -> Field:
    return UNSET_DOUBLE if value is None else value


def _tag_values(extra: dict[str, str], name: str) -> Msg:
    pairs = json.loads(extra[name]) if name in extra else []
    msg: Msg = [len(pairs)]
    for tag, value in pairs:
        msg += [tag, value]
    return msg


def _combo(contract_legs: Sequence[Sequence[str]], extra: dict[str, str]) -> Msg:
    msg: Msg = [len(contract_legs)]
    for leg in contract_legs:
        msg += list(leg)
    prices = json.loads(extra["orderComboLegs"]) if "orderComboLegs" in extra else []
    msg += [len(prices), *prices]
    msg += _tag_values(extra, "smartComboRoutingParams")
    return msg


def _scale(extra: dict[str, str]) -> Msg:
    msg: Msg = [
        _x(extra, "scaleInitLevelSize"),
        _x(extra, "scaleSubsLevelSize"),
        _x(extra, "scalePriceIncrement"),
    ]
    increment = parse_float(str(_x(extra, "scalePriceIncrement")))
    if increment is not None and increment > 0:
        msg += [
            _x(extra, "scalePriceAdjustValue"),
            _x(extra, "scalePriceAdjustInterval"),
            _x(extra, "scaleProfitOffset"),
            _x(extra, "scaleAutoReset", False),
            _x(extra, "scaleInitPosition"),
            _x(extra, "scaleInitFillQty"),
            _x(extra, "scaleRandomPercent", False),
        ]
    hedge_type = _x(extra, "hedgeType")
    msg.append(hedge_type)
    if hedge_type:
        msg.append(_x(extra, "hedgeParam"))
    return msg


def _algo(extra: dict[str, str]) -> Msg:
    strategy = _x(extra, "algoStrategy")
    msg: Msg = [strategy]
    if strategy:
        msg += _tag_values(extra, "algoParams")
    return msg


def _peg_bench(order_type: str, extra: dict[str, str]) -> Msg:
    if order_type not in ("PEG BENCH", "PEGBENCH"):
        return []
    return [
        _x(extra, "referenceContractId", 0),
        _x(extra, "isPeggedChangeAmountDecrease", False),
        _x(extra, "peggedChangeAmount", 0.0),
        _x(extra, "referenceChangeAmount", 0.0),
        _x(extra, "referenceExchangeId"),
    ]


def _conditions(extra: dict[str, str]) -> Msg:
    conditions = json.loads(extra["conditions"]) if "conditions" in extra else []
    msg: Msg = [len(conditions)]
    for cond in conditions:
        msg += cond
    if conditions:
        msg += [_x(extra, "conditionsIgnoreRth", False), _x(extra, "conditionsCancelOrder", False)]
    return msg


def _delta_neutral_contract(contract: ContractSpec | None) -> Msg:
    if contract is not None and contract.delta_neutral is not None:
        return [True, *contract.delta_neutral]
    return [False]


def _peg_tail(extra: dict[str, str]) -> Msg:
    return [
        _x(extra, "minTradeQty"),
        _x(extra, "minCompeteSize"),
        _x(extra, "competeAgainstBestOffset"),
        _x(extra, "midOffsetAtWhole"),
        _x(extra, "midOffsetAtHalf"),
    ]


def open_order(
    v: int,
    order: SimOrder,
    inst: Instrument,
    status: str,
    what_if: WhatIfResult | None = None,
    contract: ContractSpec | None = None,
    warning_text: str = "",
) -> Msg:
    """openOrder (5): about 127 fields at 178, no version field.

    Counters are numbers and booleans ``0``/``1`` (ib_async drops the message otherwise).
    The order's extra placeOrder fields are echoed as sent. ``contract`` is the client's
    contract (for combo legs and the delta-neutral contract), if known.
    """
    req = order.request
    e = req.extra
    legs = contract.combo_legs if contract is not None else []
    exchange = contract.exchange if contract is not None and contract.exchange else inst.exchange
    msg: Msg = [Out.OPEN_ORDER, req.order_id, *_contract11(inst, exchange)]
    msg += [
        req.action,
        req.total_quantity,
        req.order_type,
        _price(req.lmt_price),
        _price(req.aux_price),
        req.tif,
        req.oca_group,
        req.account,
        _x(e, "openClose"),
        _x(e, "origin", 0),
        req.order_ref,
        req.client_id,
        order.perm_id,
        req.outside_rth,
        _x(e, "hidden", False),
        _x(e, "discretionaryAmt", 0.0),
        _x(e, "goodAfterTime"),
        "",  # deprecated sharesAllocation
        _x(e, "faGroup"),
        _x(e, "faMethod"),
        _x(e, "faPercentage"),
    ]
    if v < 177:
        msg.append(_x(e, "faProfile"))
    dn_type = _x(e, "deltaNeutralOrderType")
    msg += [
        _x(e, "modelCode"),
        _x(e, "goodTillDate"),
        _x(e, "rule80A"),
        _x(e, "percentOffset"),
        _x(e, "settlingFirm"),
        _x(e, "shortSaleSlot", 0),
        _x(e, "designatedLocation"),
        _x(e, "exemptCode", -1),
        _x(e, "auctionStrategy", 0),
        _x(e, "startingPrice"),
        _x(e, "stockRefPrice"),
        _x(e, "delta"),
        _x(e, "stockRangeLower"),
        _x(e, "stockRangeUpper"),
        _x(e, "displaySize"),
        _x(e, "blockOrder", False),
        _x(e, "sweepToFill", False),
        _x(e, "allOrNone", False),
        _x(e, "minQty"),
        _x(e, "ocaType", 0),
        _x(e, "eTradeOnly", False),
        _x(e, "firmQuoteOnly", False),
        _x(e, "nbboPriceCap"),
        req.parent_id,
        _x(e, "triggerMethod", 0),
        _x(e, "volatility"),
        _x(e, "volatilityType"),
        dn_type,
        _x(e, "deltaNeutralAuxPrice"),
    ]
    if dn_type:
        msg += [
            _x(e, "deltaNeutralConId", 0),
            _x(e, "deltaNeutralSettlingFirm"),
            _x(e, "deltaNeutralClearingAccount"),
            _x(e, "deltaNeutralClearingIntent"),
            _x(e, "deltaNeutralOpenClose"),
            _x(e, "deltaNeutralShortSale", False),
            _x(e, "deltaNeutralShortSaleSlot", 0),
            _x(e, "deltaNeutralDesignatedLocation"),
        ]
    trail_stop = (
        order.trail_stop_price if order.trail_stop_price is not None else req.trail_stop_price
    )
    msg += [
        _x(e, "continuousUpdate", False),
        _x(e, "referencePriceType"),
        _price(trail_stop),
        _price(req.trailing_percent),
        "",  # basisPoints
        "",  # basisPointsType
        "",  # comboLegsDescrip
    ]
    msg += _combo(legs, e)
    msg += _scale(e)
    msg += [
        _x(e, "optOutSmartRouting", False),
        _x(e, "clearingAccount"),
        _x(e, "clearingIntent"),
        _x(e, "notHeld", False),
    ]
    msg += _delta_neutral_contract(contract)
    msg += _algo(e)
    msg += [_x(e, "solicited", False), req.what_if, status]
    if what_if is not None:
        w = what_if
        msg += [
            w.init_margin_before,
            w.maint_margin_before,
            w.equity_with_loan_before,
            w.init_margin_change,
            w.maint_margin_change,
            w.equity_with_loan_change,
            w.init_margin_after,
            w.maint_margin_after,
            w.equity_with_loan_after,
            w.commission,
            w.min_commission,
            w.max_commission,
            w.commission_currency,
        ]
    else:
        msg += [UNSET_DOUBLE] * 9 + [UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, ""]
    msg += [warning_text, _x(e, "randomizeSize", False), _x(e, "randomizePrice", False)]
    msg += _peg_bench(req.order_type, e)
    msg += _conditions(e)
    msg += [
        _x(e, "adjustedOrderType"),
        _x(e, "triggerPrice"),
        _price(trail_stop),
        _x(e, "lmtPriceOffset"),
        _x(e, "adjustedStopPrice"),
        _x(e, "adjustedStopLimitPrice"),
        _x(e, "adjustedTrailingAmount"),
        _x(e, "adjustableTrailingUnit", 0),
        _x(e, "softDollarTier.name"),
        _x(e, "softDollarTier.val"),
        "",  # softDollarTier.displayName
        _x(e, "cashQty"),
        _x(e, "dontUseAutoPriceForHedge", False),
        _x(e, "isOmsContainer", False),
        _x(e, "discretionaryUpToLimitPrice", False),
        _x(e, "usePriceMgmtAlgo", False),
    ]
    if v >= 159:
        msg.append(_x(e, "duration"))
    if v >= 160:
        msg.append(_x(e, "postToAts"))
    if v >= 162:
        msg.append(_x(e, "autoCancelParent", False))
    if v >= 170:
        msg += _peg_tail(e)
    return msg


def open_order_end() -> Msg:
    """openOrderEnd (53)."""
    return [Out.OPEN_ORDER_END, 1]


def order_status(order: SimOrder, status: str | None = None, mkt_cap_price: float = 0.0) -> Msg:
    """orderStatus (3): no version field at these server versions."""
    req = order.request
    return [
        Out.ORDER_STATUS,
        req.order_id,
        status if status is not None else str(order.state),
        order.filled,
        order.remaining,
        order.avg_fill_price,
        order.perm_id,
        req.parent_id,
        order.last_fill_price,
        req.client_id,
        order.why_held,
        mkt_cap_price,
    ]


def completed_order(
    v: int,
    order: SimOrder,
    inst: Instrument,
    completed_time: str,
    completed_status: str,
    contract: ContractSpec | None = None,
) -> Msg:
    """completedOrder (101): only ever in answer to reqCompletedOrders."""
    req = order.request
    e = req.extra
    legs = contract.combo_legs if contract is not None else []
    exchange = contract.exchange if contract is not None and contract.exchange else inst.exchange
    msg: Msg = [Out.COMPLETED_ORDER, *_contract11(inst, exchange)]
    msg += [
        req.action,
        req.total_quantity,
        req.order_type,
        _price(req.lmt_price),
        _price(req.aux_price),
        req.tif,
        req.oca_group,
        req.account,
        _x(e, "openClose"),
        _x(e, "origin", 0),
        req.order_ref,
        order.perm_id,
        req.outside_rth,
        _x(e, "hidden", False),
        _x(e, "discretionaryAmt", 0.0),
        _x(e, "goodAfterTime"),
        _x(e, "faGroup"),
        _x(e, "faMethod"),
        _x(e, "faPercentage"),
    ]
    if v < 177:
        msg.append(_x(e, "faProfile"))
    dn_type = _x(e, "deltaNeutralOrderType")
    msg += [
        _x(e, "modelCode"),
        _x(e, "goodTillDate"),
        _x(e, "rule80A"),
        _x(e, "percentOffset"),
        _x(e, "settlingFirm"),
        _x(e, "shortSaleSlot", 0),
        _x(e, "designatedLocation"),
        _x(e, "exemptCode", -1),
        _x(e, "startingPrice"),
        _x(e, "stockRefPrice"),
        _x(e, "delta"),
        _x(e, "stockRangeLower"),
        _x(e, "stockRangeUpper"),
        _x(e, "displaySize"),
        _x(e, "sweepToFill", False),
        _x(e, "allOrNone", False),
        _x(e, "minQty"),
        _x(e, "ocaType", 0),
        _x(e, "triggerMethod", 0),
        _x(e, "volatility"),
        _x(e, "volatilityType"),
        dn_type,
        _x(e, "deltaNeutralAuxPrice"),
    ]
    if dn_type:
        msg += [
            _x(e, "deltaNeutralConId", 0),
            _x(e, "deltaNeutralShortSale", False),
            _x(e, "deltaNeutralShortSaleSlot", 0),
            _x(e, "deltaNeutralDesignatedLocation"),
        ]
    trail_stop = (
        order.trail_stop_price if order.trail_stop_price is not None else req.trail_stop_price
    )
    msg += [
        _x(e, "continuousUpdate", False),
        _x(e, "referencePriceType"),
        _price(trail_stop),
        _price(req.trailing_percent),
        "",  # comboLegsDescrip
    ]
    msg += _combo(legs, e)
    msg += _scale(e)
    msg += [_x(e, "clearingAccount"), _x(e, "clearingIntent"), _x(e, "notHeld", False)]
    msg += _delta_neutral_contract(contract)
    msg += _algo(e)
    msg += [
        _x(e, "solicited", False),
        str(order.state),
        _x(e, "randomizeSize", False),
        _x(e, "randomizePrice", False),
    ]
    msg += _peg_bench(req.order_type, e)
    msg += _conditions(e)
    msg += [
        _price(trail_stop),
        _x(e, "lmtPriceOffset"),
        _x(e, "cashQty"),
        _x(e, "dontUseAutoPriceForHedge", False),
        _x(e, "isOmsContainer", False),
        "",  # autoCancelDate
        order.filled,  # filledQuantity
        0,  # refFuturesConId
        _x(e, "autoCancelParent", False),
        "",  # shareholder
        False,  # imbalanceOnly
        False,  # routeMarketableToBbo
        0,  # parentPermId
        completed_time,
        completed_status,
    ]
    if v >= 170:
        msg += _peg_tail(e)
    return msg


def completed_orders_end() -> Msg:
    """completedOrdersEnd (102): no version field."""
    return [Out.COMPLETED_ORDERS_END]


def format_exec_time(ts: float) -> str:
    """Execution time as TWS sends it, with its time zone: ``YYYYMMDD HH:MM:SS UTC``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%d %H:%M:%S") + " UTC"


def exec_details(v: int, req_id: int, ex: Execution, inst: Instrument) -> Msg:
    """execDetails (11); reqId -1 for live fills, the request's id for reqExecutions."""
    msg: Msg = [Out.EXECUTION_DATA, req_id, ex.order_id, *_contract11(inst, ex.exchange)]
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
        *_contract11(inst, inst.primary_exchange if inst.sec_type == "STK" else inst.exchange),
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


__all__ = [
    "DEFAULT_SERVER_VERSION",
    "DELAYED_TICK",
    "HELLO",
    "MAX_CLIENT_VERSION",
    "MAX_MESSAGE_SIZE",
    "MIN_CLIENT_VERSION",
    "UNSET_INTEGER",
    "ContractSpec",
    "FieldReader",
    "FrameReader",
    "Hello",
    "In",
    "MalformedRequest",
    "Out",
    "ProtocolError",
    "TickType",
    "UnsupportedRequest",
    "encode",
    "fmt",
    "parse_hello",
    "parse_place_order",
    "parse_request",
    "server_hello",
    "split_fields",
]
