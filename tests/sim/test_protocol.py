"""The wire codec against ib_async's own encoder and decoder.

Requests are encoded by ``ib_async.client.Client`` (with its socket replaced by a list)
and parsed by ``core.sim.protocol``; every builder's output is decoded by ib_async's
real ``Decoder``. The autouse ``ib_log_guard`` fixture fails a test on any decoder
error, which is how ib_async reports a malformed message.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import struct
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ib_async import IB, ComboLeg, Contract, DeltaNeutralContract, Order, TagValue
from ib_async.client import Client
from ib_async.decoder import Decoder
from ib_async.objects import ExecutionFilter
from ib_async.order import PriceCondition, TimeCondition, VolumeCondition
from ib_async.util import UNSET_DOUBLE, UNSET_INTEGER

from core.sim import protocol as p
from core.sim.model import (
    AccountPnL,
    Bar,
    Execution,
    Instrument,
    OrderRequest,
    OrderState,
    SimOrder,
    WhatIfResult,
)

VERSIONS = [157, 163, 166, 170, 176, 178]


# --- helpers -------------------------------------------------------------------------------


def make_client(version: int) -> tuple[Client, list[list[str]]]:
    """An ib_async Client that 'sends' into a list of field lists."""
    client = Client(SimpleNamespace())
    client.connState = Client.CONNECTED
    client._serverVersion = version
    sent: list[list[str]] = []

    def capture(msg: str) -> None:
        fields = msg.split("\0")
        assert fields[-1] == ""
        sent.append(fields[:-1])

    client.sendMsg = capture  # type: ignore[method-assign]
    return client, sent


@dataclass
class Recorder:
    """A stand-in wrapper: records every wrapper call the Decoder makes."""

    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    defaultTimezone: dt.tzinfo = dt.UTC
    ib: Any = field(default_factory=lambda: SimpleNamespace(TimezoneTWS=None))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def record(*args: Any) -> None:
            self.calls.append((name, args))

        return record


def decode(version: int, msg: p.Msg) -> list[tuple[str, tuple[Any, ...]]]:
    """Frame ``msg`` with our encoder, unframe it as ib_async does, and decode it."""
    data = p.encode(msg)
    (size,) = struct.unpack(">I", data[:4])
    fields = data[4 : 4 + size].decode().split("\0")
    fields.pop()
    rec = Recorder()
    Decoder(rec, version).interpret(fields)  # type: ignore[arg-type]
    return rec.calls


def one_call(version: int, msg: p.Msg, name: str) -> tuple[Any, ...]:
    calls = decode(version, msg)
    assert [c[0] for c in calls] == [name], calls
    return calls[0][1]


AAPL = Instrument(
    con_id=265598,
    symbol="AAPL",
    sec_type="STK",
    exchange="SMART",
    primary_exchange="NASDAQ",
    currency="USD",
    min_tick=0.01,
    multiplier=1.0,
    local_symbol="AAPL",
    trading_class="NMS",
    long_name="APPLE INC",
    industry="Technology",
    category="Computers",
    time_zone_id="US/Eastern",
    trading_hours="20261125:0400-20261125:2000;20261126:CLOSED",
    liquid_hours="20261125:0930-20261125:1600;20261126:CLOSED",
    initial_price=190.0,
    daily_volatility=0.02,
)
ES = Instrument(
    con_id=495512563,
    symbol="ES",
    sec_type="FUT",
    exchange="CME",
    primary_exchange="CME",
    currency="USD",
    min_tick=0.25,
    multiplier=50.0,
    local_symbol="ESZ6",
    trading_class="ES",
    long_name="E-mini S&P 500",
    industry="",
    category="",
    time_zone_id="US/Central",
    trading_hours="20261125:1700-20261126:1600",
    liquid_hours="20261126:0830-20261126:1500",
    initial_price=5900.0,
    daily_volatility=0.011,
    last_trade_date="20261218",
)


def sim_order(**kw: Any) -> SimOrder:
    req = OrderRequest(
        order_id=kw.pop("order_id", 7),
        client_id=kw.pop("client_id", 3),
        con_id=AAPL.con_id,
        action=kw.pop("action", "BUY"),
        total_quantity=kw.pop("total_quantity", 100.0),
        order_type=kw.pop("order_type", "LMT"),
        lmt_price=kw.pop("lmt_price", 189.5),
        order_ref=kw.pop("order_ref", "stratégie"),
        extra=kw.pop("extra", {}),
        **{k: kw.pop(k) for k in list(kw) if k in OrderRequest.__dataclass_fields__},
    )
    return SimOrder(
        request=req, perm_id=kw.pop("perm_id", 1000001), state=OrderState.SUBMITTED, **kw
    )


# --- framing -------------------------------------------------------------------------------


def test_fmt_when_special_values_then_tws_spelling() -> None:
    assert p.fmt(True) == "1"
    assert p.fmt(False) == "0"
    assert p.fmt(None) == ""
    assert p.fmt(UNSET_DOUBLE) == "1.7976931348623157E308"
    assert p.fmt(math.inf) == "Infinite"
    assert p.fmt(1e16) == "10000000000000000"
    assert p.fmt(1e-05) == "0.00001"
    assert p.fmt(190.25) == "190.25"
    assert p.fmt(p.Out.PNL) == "94"
    assert p.fmt(Decimal("1.50")) == "1.50"


def test_frame_reader_when_split_anywhere_then_same_messages() -> None:
    data = p.encode([1, "a", "é"]) + p.encode([2]) + p.encode(["x" * 1000])
    for cut in range(len(data)):
        reader = p.FrameReader()
        out = reader.feed(data[:cut]) + reader.feed(data[cut:])
        assert [p.split_fields(x) for x in out] == [["1", "a", "é"], ["2"], ["x" * 1000]]


def test_frame_reader_when_oversized_then_protocol_error() -> None:
    reader = p.FrameReader(max_size=100)
    with pytest.raises(p.ProtocolError):
        reader.feed(struct.pack(">I", 101))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"v157..178", p.Hello(157, 178, "")),
        (b"v100..200 +PACEAPI", p.Hello(100, 200, "+PACEAPI")),
        (b"v178", p.Hello(178, 178, "")),
    ],
)
def test_parse_hello_when_valid_then_range(text: bytes, expected: p.Hello) -> None:
    assert p.parse_hello(text) == expected


@pytest.mark.parametrize("text", [b"", b"GET / HTTP/1.1", b"v..", b"v178..157", b"\xff\xfe"])
def test_parse_hello_when_garbage_then_protocol_error(text: bytes) -> None:
    with pytest.raises(p.ProtocolError):
        p.parse_hello(text)


def test_client_hello_is_what_ib_async_sends() -> None:
    client, _ = make_client(0)
    sent: list[bytes] = []
    client.conn = SimpleNamespace(sendMsg=sent.append)  # type: ignore[assignment]
    msg = b"API\0" + client._prefix(b"v%d..%d" % (client.MinClientVersion, client.MaxClientVersion))
    assert msg.startswith(p.HELLO)
    reader = p.FrameReader()
    (payload,) = reader.feed(msg[4:])
    assert p.parse_hello(payload) == p.Hello(157, 178)


# --- request parsing -----------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_simple_requests_parse(version: int) -> None:
    client, sent = make_client(version)
    client.clientId = 5
    client.startApi()
    client.reqMktData(
        11, Contract(symbol="AAPL", secType="STK", exchange="SMART"), "233", True, False, []
    )
    client.cancelMktData(11)
    client.reqMarketDataType(3)
    client.reqContractDetails(12, Contract(conId=265598))
    client.reqMatchingSymbols(13, "AA")
    client.reqHistoricalData(
        14, Contract(conId=1), "", "1 D", "5 mins", "TRADES", True, 2, False, []
    )
    client.cancelHistoricalData(14)
    client.cancelOrder(9, "")
    client.reqGlobalCancel()
    client.reqOpenOrders()
    client.reqAllOpenOrders()
    client.reqAutoOpenOrders(True)
    client.reqCompletedOrders(False)
    client.reqPositions()
    client.cancelPositions()
    client.reqAccountUpdates(True, "DU1")
    client.reqAccountUpdatesMulti(15, "DU1", "", False)
    client.cancelAccountUpdatesMulti(15)
    client.reqAccountSummary(16, "All", "NetLiquidation,$LEDGER:ALL")
    client.cancelAccountSummary(16)
    client.reqExecutions(17, ExecutionFilter(clientId=5, symbol="AAPL", side="BUY"))
    client.reqPnL(18, "DU1", "")
    client.cancelPnL(18)
    client.reqPnLSingle(19, "DU1", "", 265598)
    client.cancelPnLSingle(19)
    client.reqCurrentTime()
    client.reqIds(1)
    client.reqManagedAccts()
    client.setServerLogLevel(3)

    parsed = [p.parse_request(f, version) for f in sent]
    ids = [m for m, _ in parsed]
    reqs = [r for _, r in parsed]
    assert ids[0] == p.In.START_API and reqs[0] == p.StartApi(5, "")
    mkt = reqs[1]
    assert (mkt.req_id, mkt.contract.symbol, mkt.generic_tick_list, mkt.snapshot) == (
        11,
        "AAPL",
        "233",
        True,
    )
    assert reqs[2] == p.ReqId(11)
    assert reqs[3] == p.ReqMarketDataType(3)
    assert reqs[4].req_id == 12 and reqs[4].contract.con_id == 265598
    assert reqs[5] == p.ReqMatchingSymbols(13, "AA")
    hist = reqs[6]
    assert (
        hist.req_id,
        hist.duration,
        hist.bar_size,
        hist.what_to_show,
        hist.use_rth,
        hist.format_date,
    ) == (
        14,
        "1 D",
        "5 mins",
        "TRADES",
        True,
        2,
    )
    assert reqs[7] == p.ReqId(14)
    assert reqs[8] == p.CancelOrder(9, "")
    assert ids[9:15] == [
        p.In.REQ_GLOBAL_CANCEL,
        p.In.REQ_OPEN_ORDERS,
        p.In.REQ_ALL_OPEN_ORDERS,
        p.In.REQ_AUTO_OPEN_ORDERS,
        p.In.REQ_COMPLETED_ORDERS,
        p.In.REQ_POSITIONS,
    ]
    assert reqs[12] == p.ReqAutoOpenOrders(True)
    assert reqs[13] == p.ReqCompletedOrders(False)
    assert ids[15] == p.In.CANCEL_POSITIONS
    assert reqs[16] == p.ReqAccountUpdates(True, "DU1")
    assert reqs[17] == p.ReqAccountUpdatesMulti(15, "DU1", "", False)
    assert reqs[18] == p.ReqId(15)
    assert reqs[19] == p.ReqAccountSummary(16, "All", "NetLiquidation,$LEDGER:ALL")
    assert reqs[20] == p.ReqId(16)
    assert reqs[21] == p.ReqExecutions(17, p.ExecFilter(5, "", "", "AAPL", "", "", "BUY"))
    assert reqs[22] == p.ReqPnL(18, "DU1", "")
    assert reqs[23] == p.ReqId(18)
    assert reqs[24] == p.ReqPnLSingle(19, "DU1", "", 265598)
    assert reqs[25] == p.ReqId(19)
    assert ids[26:] == [
        p.In.REQ_CURRENT_TIME,
        p.In.REQ_IDS,
        p.In.REQ_MANAGED_ACCTS,
        p.In.SET_SERVER_LOGLEVEL,
    ]


def test_parse_request_when_unknown_id_then_unsupported() -> None:
    with pytest.raises(p.UnsupportedRequest):
        p.parse_request(["10000", "1"], 178)
    with pytest.raises(p.ProtocolError):
        p.parse_request(["x"], 178)
    with pytest.raises(p.ProtocolError):
        p.parse_request(["1", "11"], 178)


# --- placeOrder round trip -----------------------------------------------------------------

prices = st.one_of(
    st.just(UNSET_DOUBLE),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999"), places=2).map(float),
)
tag_values = st.lists(
    st.tuples(
        st.sampled_from(["maxPctVol", "startTime", "noTakeLiq", "x"]),
        st.text("abc0123: ", max_size=8),
    ).map(lambda t: TagValue(*t)),
    max_size=3,
)
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=20)
conditions = st.lists(
    st.one_of(
        st.builds(
            PriceCondition,
            price=st.floats(1, 1000),
            conId=st.integers(1, 10**6),
            exch=st.just("SMART"),
        ),
        st.builds(TimeCondition, time=st.just("20261125 10:00:00 US/Eastern")),
        st.builds(VolumeCondition, volume=st.integers(1, 10**6), conId=st.integers(1, 10**6)),
    ),
    max_size=2,
)


@st.composite
def orders(draw: st.DrawFn) -> tuple[Contract, Order]:
    kind = draw(st.sampled_from(["STK", "BAG", "FUT", "ATS"]))
    if kind == "BAG":
        contract = Contract(
            symbol="SPY",
            secType="BAG",
            exchange="SMART",
            currency="USD",
            comboLegs=[
                ComboLeg(conId=1, ratio=1, action="BUY", exchange="SMART"),
                ComboLeg(conId=2, ratio=2, action="SELL"),
            ],
        )
    elif kind == "FUT":
        contract = Contract(
            symbol="ES", secType="FUT", exchange="CME", lastTradeDateOrContractMonth="202612"
        )
    else:
        contract = Contract(
            conId=265598,
            symbol="AAPL",
            secType="STK",
            exchange="IBKRATS" if kind == "ATS" else "SMART",
        )
    if draw(st.booleans()):
        contract.deltaNeutralContract = DeltaNeutralContract(conId=5, delta=0.5, price=10.0)
    order_type = draw(
        st.sampled_from(
            [
                "MKT",
                "LMT",
                "STP",
                "STP LMT",
                "TRAIL",
                "REL",
                "PEG BENCH",
                "PEG MID",
                "PEG BEST",
                "VOL",
            ]
        )
    )
    order = Order(
        action=draw(st.sampled_from(["BUY", "SELL"])),
        totalQuantity=draw(st.sampled_from([1.0, 100.0, 12345.0, 0.5])),
        orderType=order_type,
        lmtPrice=draw(prices),
        auxPrice=draw(prices),
        tif=draw(st.sampled_from(["DAY", "GTC", "IOC", "OPG", ""])),
        orderRef=draw(texts),
        transmit=draw(st.booleans()),
        parentId=draw(st.integers(0, 10**6)),
        outsideRth=draw(st.booleans()),
        whatIf=draw(st.booleans()),
        ocaGroup=draw(texts),
        account=draw(st.sampled_from(["", "DU0000001"])),
        hidden=draw(st.booleans()),
        displaySize=draw(st.integers(0, 1000)),
        trailStopPrice=draw(prices),
        trailingPercent=draw(prices),
        goodTillDate=draw(st.sampled_from(["", "20261231 23:59:59 US/Eastern"])),
        algoStrategy=draw(st.sampled_from(["", "Adaptive", "Vwap"])),
        algoParams=draw(tag_values),
        hedgeType=draw(st.sampled_from(["", "D", "F"])),
        hedgeParam=draw(st.sampled_from(["", "0.5"])),
        scalePriceIncrement=draw(st.sampled_from([UNSET_DOUBLE, 0.05])),
        deltaNeutralOrderType=draw(st.sampled_from(["", "LMT"])),
        conditions=draw(conditions),
        orderMiscOptions=draw(tag_values),
        cashQty=draw(prices),
        minQty=draw(st.sampled_from([UNSET_INTEGER, 10])),
        volatility=0.3 if order_type == "VOL" else UNSET_DOUBLE,
        competeAgainstBestOffset=draw(st.sampled_from([UNSET_DOUBLE, math.inf, 0.02])),
    )
    if kind == "BAG":
        order.smartComboRoutingParams = draw(tag_values)
    return contract, order


def wire_text(value: Any) -> str:
    """A value as ib_async's Client.send formats it (makeEmpty=True)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if value == UNSET_DOUBLE:
            return ""
        return "Infinite" if value == math.inf else str(value)
    if isinstance(value, int):
        return "" if value == UNSET_INTEGER else str(value)
    if isinstance(value, list):
        return "".join(f"{v.tag}={v.value};" for v in value)
    return str(value)


def expected_extra(order: Order, key: str) -> str:
    if key == "softDollarTier.name":
        return order.softDollarTier.name
    if key == "softDollarTier.val":
        return order.softDollarTier.val
    return wire_text(getattr(order, key))


@pytest.mark.parametrize("version", VERSIONS)
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(shape=orders())
def test_place_order_round_trip(version: int, shape: tuple[Contract, Order]) -> None:
    contract, order = shape
    client, sent = make_client(version)
    client.placeOrder(42, contract, order)
    (fields,) = sent

    msg_id, po = p.parse_request(fields, version)

    assert msg_id == p.In.PLACE_ORDER
    req = po.request
    assert po.order_id == req.order_id == 42
    assert req.action == order.action
    assert req.total_quantity == order.totalQuantity
    assert req.order_type == order.orderType
    assert req.lmt_price == (None if order.lmtPrice == UNSET_DOUBLE else order.lmtPrice)
    assert req.aux_price == (None if order.auxPrice == UNSET_DOUBLE else order.auxPrice)
    assert req.tif == order.tif
    assert req.order_ref == order.orderRef
    assert req.oca_group == order.ocaGroup
    assert req.account == order.account
    assert req.transmit == order.transmit
    assert req.parent_id == order.parentId
    assert req.outside_rth == order.outsideRth
    assert req.what_if == order.whatIf
    assert po.contract.symbol == contract.symbol
    assert po.contract.sec_type == contract.secType
    assert len(po.contract.combo_legs) == len(contract.comboLegs)
    assert (po.contract.delta_neutral is not None) == (contract.deltaNeutralContract is not None)
    for key, raw in req.extra.items():
        if key in ("algoParams", "smartComboRoutingParams"):
            assert json.loads(raw) == [list(tv) for tv in getattr(order, key)]
        elif key == "conditions":
            assert len(json.loads(raw)) == len(order.conditions)
        elif key == "orderComboLegs":
            assert json.loads(raw) == []
        else:
            assert raw == expected_extra(order, key), key
    if order.algoStrategy:
        assert "algoParams" in req.extra

    # and back: the openOrder built from the parsed order decodes to the same order
    sim = SimOrder(request=req, perm_id=77, state=OrderState.SUBMITTED)
    ib = IB()
    decoder = Decoder(ib.wrapper, version)
    decoded: list[Order] = []
    ib.wrapper.openOrder = lambda oid, c, o, s: decoded.append(o)  # type: ignore[method-assign]
    decoder.interpret(
        p.split_fields(
            p.encode(p.open_order(version, sim, AAPL, "Submitted", contract=po.contract))[4:]
        )
    )
    (back,) = decoded
    assert back.orderId == 42
    assert back.orderRef == order.orderRef
    assert back.action == order.action
    assert back.totalQuantity == order.totalQuantity
    assert back.lmtPrice == order.lmtPrice
    assert back.auxPrice == order.auxPrice
    assert back.algoStrategy == order.algoStrategy
    if order.algoStrategy:
        assert back.algoParams == order.algoParams
    assert len(back.conditions) == len(order.conditions)
    assert back.hedgeType == order.hedgeType
    assert back.outsideRth == order.outsideRth
    assert back.whatIf == order.whatIf
    assert back.permId == 77


# --- builders decoded by ib_async ----------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_builders_decode_cleanly(version: int) -> None:
    assert one_call(version, p.next_valid_id(5), "nextValidId") == (5,)
    assert one_call(version, p.managed_accounts(["DU1", "DU2"]), "managedAccounts") == ("DU1,DU2",)
    args = one_call(version, p.error(version, 7, 201, "Order rejected"), "error")
    assert args[:3] == (7, 201, "Order rejected")
    assert one_call(version, p.current_time(1700000000), "currentTime") == (1700000000,)
    assert one_call(version, p.tick_price(3, 1, 190.25, 300.0), "priceSizeTick") == (
        3,
        1,
        190.25,
        300.0,
    )
    assert one_call(version, p.tick_size(3, 8, 12345.0), "tickSize") == (3, 8, 12345.0)
    assert one_call(version, p.tick_string(3, 45, "1700000000"), "tickString") == (
        3,
        45,
        "1700000000",
    )
    assert one_call(version, p.tick_req_params(3, 0.01, "SMART", 3), "tickReqParams") == (
        3,
        0.01,
        "SMART",
        3,
    )
    assert one_call(version, p.market_data_type(3, 1), "marketDataType") == (3, 1)
    assert one_call(version, p.tick_snapshot_end(3), "tickSnapshotEnd") == (3,)
    assert one_call(version, p.contract_details_end(4), "contractDetailsEnd") == (4,)
    assert one_call(version, p.open_order_end(), "openOrderEnd") == ()
    assert one_call(version, p.completed_orders_end(), "completedOrdersEnd") == ()
    assert one_call(version, p.exec_details_end(9), "execDetailsEnd") == (9,)
    assert one_call(version, p.position_end(), "positionEnd") == ()
    assert one_call(version, p.account_download_end("DU1"), "accountDownloadEnd") == ("DU1",)
    assert one_call(version, p.update_account_time(0), "updateAccountTime") == ("00:00",)
    assert one_call(
        version,
        p.update_account_value("NetLiquidation", "100.5", "USD", "DU1"),
        "updateAccountValue",
    ) == (
        "NetLiquidation",
        "100.5",
        "USD",
        "DU1",
    )
    assert one_call(
        version, p.account_update_multi(2, "DU1", "", "Cash", "5", "USD"), "accountUpdateMulti"
    ) == (
        2,
        "DU1",
        "",
        "Cash",
        "5",
        "USD",
    )
    assert one_call(version, p.account_update_multi_end(2), "accountUpdateMultiEnd") == (2,)
    assert one_call(
        version, p.account_summary(8, "DU1", "NetLiquidation", "1", "USD"), "accountSummary"
    ) == (
        8,
        "DU1",
        "NetLiquidation",
        "1",
        "USD",
    )
    assert one_call(version, p.account_summary_end(8), "accountSummaryEnd") == (8,)
    assert one_call(version, p.pnl(5, AccountPnL(1.0, 2.0, 3.0)), "pnl") == (5, 1.0, 2.0, 3.0)
    assert one_call(
        version, p.pnl_single(6, AccountPnL(1.0, 2.0, 3.0, 100.0, 19000.0)), "pnlSingle"
    ) == (
        6,
        100,
        1.0,
        2.0,
        3.0,
        19000.0,
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_contract_details_decode(version: int) -> None:
    for inst in (AAPL, ES):
        (req_id, cd) = one_call(
            version,
            p.contract_details(version, 4, inst, "SMART,NASDAQ", "LMT,MKT"),
            "contractDetails",
        )
        assert req_id == 4
        c = cd.contract
        assert (c.conId, c.symbol, c.secType, c.currency, c.primaryExchange) == (
            inst.con_id,
            inst.symbol,
            inst.sec_type,
            inst.currency,
            inst.primary_exchange,
        )
        assert cd.minTick == inst.min_tick
        assert cd.longName == inst.long_name
        assert cd.tradingHours == inst.trading_hours
        assert cd.liquidHours == inst.liquid_hours
        assert cd.timeZoneId == inst.time_zone_id
        assert c.lastTradeDateOrContractMonth == inst.last_trade_date
        assert c.multiplier == ("50" if inst is ES else "")
        if version >= 164:
            assert cd.minSize == inst.min_size
            assert cd.sizeIncrement == inst.size_increment


@pytest.mark.parametrize("version", VERSIONS)
def test_symbol_samples_decode(version: int) -> None:
    (req_id, descs) = one_call(version, p.symbol_samples(version, 9, [AAPL, ES]), "symbolSamples")
    assert req_id == 9
    assert [d.contract.symbol for d in descs] == ["AAPL", "ES"]
    assert descs[1].derivativeSecTypes == ["OPT", "FOP"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("format_date", "daily"), [(1, False), (2, False), (1, True)])
def test_historical_data_decode(version: int, format_date: int, daily: bool) -> None:
    bars = [Bar(1764000000 + 60 * i, 1.0, 2.0, 0.5, 1.5, 100.0, 1.2, 10) for i in range(3)]
    calls = decode(version, p.historical_data(5, bars, "a", "b", format_date, daily))
    assert [c[0] for c in calls] == ["historicalData"] * 3 + ["historicalDataEnd"]
    bar = calls[0][1][1]
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.average, bar.barCount) == (
        1.0,
        2.0,
        0.5,
        1.5,
        100.0,
        1.2,
        10,
    )
    from ib_async.util import parseIBDatetime

    parsed = parseIBDatetime(bar.date)
    if daily:
        assert parsed == dt.date(2025, 11, 24)
    else:
        assert parsed == dt.datetime.fromtimestamp(1764000000, dt.UTC)
    (_req_id, upd) = one_call(
        version, p.historical_data_update(5, bars[0], format_date, daily), "historicalDataUpdate"
    )
    assert (upd.open, upd.close, upd.high, upd.low) == (1.0, 1.5, 2.0, 0.5)


def _execution(realized: float | None) -> Execution:
    return Execution(
        exec_id="0001.01",
        order_id=7,
        client_id=3,
        perm_id=1000001,
        con_id=AAPL.con_id,
        account="DU1",
        side="BOT",
        shares=100.0,
        price=190.01,
        cum_qty=100.0,
        avg_price=190.01,
        time=1764000000.0,
        exchange="NASDAQ",
        order_ref="stratégie",
        commission=1.0,
        commission_currency="USD",
        realized_pnl=realized,
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_exec_and_commission_decode(version: int) -> None:
    ex = _execution(None)
    ib = IB()
    decoder = Decoder(ib.wrapper, version)
    got: list[Any] = []
    ib.wrapper.execDetails = lambda req_id, c, e: got.append((req_id, c, e))  # type: ignore[method-assign]
    ib.wrapper.commissionReport = got.append  # type: ignore[method-assign]
    decoder.interpret(p.split_fields(p.encode(p.exec_details(version, -1, ex, AAPL))[4:]))
    decoder.interpret(p.split_fields(p.encode(p.commission_report(ex))[4:]))
    (req_id, c, e), report = got
    assert req_id == -1
    assert c.conId == AAPL.con_id and c.symbol == "AAPL"
    assert (e.execId, e.orderId, e.clientId, e.permId, e.side, e.shares, e.price) == (
        "0001.01",
        7,
        3,
        1000001,
        "BOT",
        100.0,
        190.01,
    )
    assert e.orderRef == "stratégie"
    assert e.time == dt.datetime.fromtimestamp(1764000000, dt.UTC)
    assert (report.execId, report.commission, report.currency) == ("0001.01", 1.0, "USD")
    assert report.realizedPNL == UNSET_DOUBLE  # the wrapper maps this to 0.0


@pytest.mark.parametrize("version", VERSIONS)
def test_position_portfolio_decode(version: int) -> None:
    (acct, c, qty, cost) = one_call(version, p.position("DU1", ES, -2.0, 295000.0), "position")
    assert (acct, c.conId, c.secType, c.multiplier, qty, cost) == (
        "DU1",
        ES.con_id,
        "FUT",
        "50",
        -2.0,
        295000.0,
    )
    args = one_call(
        version,
        p.update_portfolio(AAPL, 10.0, 191.0, 1910.0, 190.0, 10.0, 0.0, "DU1"),
        "updatePortfolio",
    )
    assert args[0].conId == AAPL.con_id
    assert args[1:] == (10.0, 191.0, 1910.0, 190.0, 10.0, 0.0, "DU1")


@pytest.mark.parametrize("version", VERSIONS)
def test_open_order_and_status_decode_into_ib_async_trade(version: int) -> None:
    order = sim_order(
        extra={
            "algoStrategy": "Adaptive",
            "algoParams": json.dumps([["adaptivePriority", "Normal"]]),
        }
    )
    ib = IB()
    ib.wrapper.clientId = 3
    decoder = Decoder(ib.wrapper, version)
    decoder.interpret(p.split_fields(p.encode(p.open_order(version, order, AAPL, "Submitted"))[4:]))
    decoder.interpret(p.split_fields(p.encode(p.order_status(order))[4:]))
    (trade,) = ib.wrapper.trades.values()
    assert trade.order.orderId == 7
    assert trade.order.clientId == 3
    assert trade.order.permId == 1000001
    assert trade.order.orderRef == "stratégie"
    assert trade.order.lmtPrice == 189.5
    assert trade.order.algoParams == [TagValue("adaptivePriority", "Normal")]
    assert trade.contract.symbol == "AAPL"
    assert trade.orderStatus.status == "Submitted"
    assert trade.orderStatus.remaining == 100.0


@pytest.mark.parametrize("version", VERSIONS)
def test_what_if_open_order_resolves_request(version: int) -> None:
    order = sim_order(what_if=True)
    result = WhatIfResult(1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 1.5, 1.0, 2.0, "USD")
    ib = IB()
    decoder = Decoder(ib.wrapper, version)
    ended: list[Any] = []
    ib.wrapper._endReq = lambda key, result=None, success=True: ended.append((key, result))  # type: ignore[method-assign]
    decoder.interpret(
        p.split_fields(p.encode(p.open_order(version, order, AAPL, "PreSubmitted", result))[4:])
    )
    ((key, state),) = ended
    assert key == 7
    assert float(state.initMarginChange) == 4.0
    assert state.commission == 1.5
    assert state.commissionCurrency == "USD"


@pytest.mark.parametrize("version", VERSIONS)
def test_completed_order_decode(version: int) -> None:
    order = sim_order(order_type="MKT", lmt_price=None)
    order.state = OrderState.FILLED
    order.filled = 100.0
    ib = IB()
    decoder = Decoder(ib.wrapper, version)
    ib.wrapper._results["completedOrders"] = []  # startReq would need an event loop
    decoder.interpret(
        p.split_fields(
            p.encode(p.completed_order(version, order, AAPL, "20261125 10:00:00 UTC", "Filled"))[4:]
        )
    )
    (trade,) = ib.wrapper._results["completedOrders"]
    assert trade.order.permId == 1000001
    assert trade.order.orderRef == "stratégie"
    assert trade.order.filledQuantity == 100.0
    assert trade.orderStatus.status == "Filled"
