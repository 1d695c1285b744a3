"""TWS API wire framing: the handshake, length-prefixed frames and message ids.

The TWS API is a stream of length-prefixed messages (4-byte big-endian length) whose
payload is a sequence of NUL-terminated UTF-8 fields. The first field is a message id;
client->server and server->client ids live in separate tables (:class:`In`,
:class:`Out`) because the numbers overlap (client 94 is reqPnLSingle, server 94 is pnl).
A connection opens with ``API\\0`` and a framed version range (:func:`parse_hello`),
answered by :func:`server_hello`.

This module knows bytes and fields only; :mod:`.requests` decodes the fields of a
client's message and :mod:`.responses` / :mod:`.orders` build the gateway's messages.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import IntEnum

from core.sim.model import UNSET_DOUBLE

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
"""One wire field before encoding (see :func:`fmt`)."""


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
