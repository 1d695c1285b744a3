"""Every malformed request gets an IB-style error reply and the connection stays up.

A raw framed client (no ib_async between us and the socket) sends, for every request type
the gateway handles, a well-formed sample made by ib_async's own encoder, then broken
versions of it: cut short, cut after its request id, and each field in turn replaced by
garbage. After each batch a reqCurrentTime must still be answered on the same socket,
and no reply may be 322 (a handler that raised: a gateway bug, not a client error).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
import pytest_asyncio
from ib_async import Contract, LimitOrder, Stock
from ib_async.client import Client
from ib_async.objects import ExecutionFilter

from core.sim import SimGateway
from core.sim import protocol as p

VERSION = 178
ACCOUNT = "DU0000001"
GARBAGE = ("x", "", " ", "-1", "1e400", "nan", "9" * 30, "\x01")


def _samples() -> dict[p.In, list[str]]:
    """One well-formed message per request type, encoded by ib_async at ``VERSION``;
    each request id is distinctive (7000 + n) so its field can be found."""
    client = Client(SimpleNamespace())
    client.connState = Client.CONNECTED
    client._serverVersion = VERSION
    sent: list[list[str]] = []
    client.sendMsg = lambda msg: sent.append(msg.split("\0")[:-1])  # type: ignore[method-assign]
    aapl = Stock("AAPL", "SMART", "USD")
    calls = {
        p.In.REQ_MKT_DATA: lambda: client.reqMktData(7001, aapl, "", False, False, []),
        p.In.CANCEL_MKT_DATA: lambda: client.cancelMktData(7002),
        p.In.REQ_MARKET_DATA_TYPE: lambda: client.reqMarketDataType(3),
        p.In.REQ_CONTRACT_DATA: lambda: client.reqContractDetails(7003, aapl),
        p.In.REQ_MATCHING_SYMBOLS: lambda: client.reqMatchingSymbols(7004, "AA"),
        p.In.REQ_MARKET_RULE: lambda: client.reqMarketRule(26),
        p.In.REQ_HISTORICAL_DATA: lambda: client.reqHistoricalData(
            7005, aapl, "20261125 15:00:00 UTC", "1 D", "5 mins", "TRADES", 0, 1, False, []
        ),
        p.In.CANCEL_HISTORICAL_DATA: lambda: client.cancelHistoricalData(7006),
        p.In.REQ_HEAD_TIMESTAMP: lambda: client.reqHeadTimeStamp(7007, aapl, "TRADES", 0, 1),
        p.In.PLACE_ORDER: lambda: client.placeOrder(7008, aapl, LimitOrder("BUY", 1, 100.0)),
        p.In.CANCEL_ORDER: lambda: client.cancelOrder(7009, ""),
        p.In.REQ_GLOBAL_CANCEL: client.reqGlobalCancel,
        p.In.REQ_OPEN_ORDERS: client.reqOpenOrders,
        p.In.REQ_ALL_OPEN_ORDERS: client.reqAllOpenOrders,
        p.In.REQ_AUTO_OPEN_ORDERS: lambda: client.reqAutoOpenOrders(True),
        p.In.REQ_COMPLETED_ORDERS: lambda: client.reqCompletedOrders(False),
        p.In.REQ_EXECUTIONS: lambda: client.reqExecutions(
            7010, ExecutionFilter(time="20261125 15:00:00 UTC")
        ),
        p.In.REQ_IDS: lambda: client.reqIds(1),
        p.In.REQ_ACCT_DATA: lambda: client.reqAccountUpdates(True, ACCOUNT),
        p.In.REQ_ACCOUNT_UPDATES_MULTI: lambda: client.reqAccountUpdatesMulti(
            7011, ACCOUNT, "", False
        ),
        p.In.CANCEL_ACCOUNT_UPDATES_MULTI: lambda: client.cancelAccountUpdatesMulti(7012),
        p.In.REQ_ACCOUNT_SUMMARY: lambda: client.reqAccountSummary(7013, "All", "NetLiquidation"),
        p.In.CANCEL_ACCOUNT_SUMMARY: lambda: client.cancelAccountSummary(7014),
        p.In.REQ_POSITIONS: client.reqPositions,
        p.In.CANCEL_POSITIONS: client.cancelPositions,
        p.In.REQ_PNL: lambda: client.reqPnL(7015, ACCOUNT, ""),
        p.In.CANCEL_PNL: lambda: client.cancelPnL(7016),
        p.In.REQ_PNL_SINGLE: lambda: client.reqPnLSingle(7017, ACCOUNT, "", 265598),
        p.In.CANCEL_PNL_SINGLE: lambda: client.cancelPnLSingle(7018),
        p.In.REQ_CURRENT_TIME: client.reqCurrentTime,
        p.In.REQ_MANAGED_ACCTS: client.reqManagedAccts,
        p.In.REQ_USER_INFO: lambda: client.reqUserInfo(7019),
        p.In.SET_SERVER_LOGLEVEL: lambda: client.setServerLogLevel(3),
        p.In.REQ_MKT_DEPTH: lambda: client.reqMktDepth(7020, aapl, 5, False, []),
        p.In.CANCEL_MKT_DEPTH: lambda: client.cancelMktDepth(7021, False),
        p.In.REQ_MKT_DEPTH_EXCHANGES: client.reqMktDepthExchanges,
    }
    out: dict[p.In, list[str]] = {}
    for msg_id, call in calls.items():
        sent.clear()
        call()
        (fields,) = sent
        assert int(fields[0]) == msg_id
        out[msg_id] = fields
    return out


SAMPLES = _samples()


def _id_index(fields: list[str]) -> int | None:
    """Index of the request id field of a sample (7000..7099, or the order id)."""
    hits = [i for i, f in enumerate(fields) if f.isdigit() and 7000 <= int(f) < 7100]
    return hits[0] if hits else None


class RawClient:
    """A TWS API client on a bare socket: framed writes, decoded reads."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.frames = p.FrameReader(max_size=64 << 20)
        self.pending: list[list[str]] = []

    @classmethod
    async def connect(cls, gw: SimGateway, client_id: int = 1) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        raw = cls(reader, writer)
        writer.write(p.HELLO + p.frame_raw(f"v157..{VERSION}".encode()))
        assert (await raw.next())[0] == str(VERSION)
        raw.send([71, 2, client_id, ""])
        while (await raw.next())[0] != str(int(p.Out.MANAGED_ACCTS)):
            pass
        return raw

    def send(self, fields: list[object]) -> None:
        self.writer.write(p.encode([str(f) for f in fields]))

    async def next(self) -> list[str]:
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(1 << 16), 5)
            assert data, "the gateway closed the connection"
            self.pending += [p.split_fields(f) for f in self.frames.feed(data)]
        return self.pending.pop(0)

    async def fence(self) -> list[list[str]]:
        """Every message up to the answer of a reqCurrentTime sent now."""
        self.send([49, 1])
        got: list[list[str]] = []
        while True:
            msg = await self.next()
            if msg[0] == str(int(p.Out.CURRENT_TIME)):
                return got
            got.append(msg)

    def close(self) -> None:
        self.writer.close()


def _errors(messages: list[list[str]]) -> list[tuple[int, int, str]]:
    """(reqId, code, text) of the errMsg messages among ``messages``."""
    return [(int(m[2]), int(m[3]), m[4]) for m in messages if m[0] == str(int(p.Out.ERR_MSG))]


@pytest_asyncio.fixture
async def raw(gateway: SimGateway):
    client = await RawClient.connect(gateway)
    await client.fence()  # past the farm notices
    yield client
    client.close()


def test_samples_cover_every_request_the_gateway_handles() -> None:
    handled = set(SimGateway._handlers) - {p.In.START_API}
    assert handled == set(SAMPLES)


@pytest.mark.asyncio
async def test_sample_requests_when_well_formed_then_no_parse_error(raw):
    for msg_id, fields in SAMPLES.items():
        raw.send(fields)
        codes = [code for _, code, _ in _errors(await raw.fence())]
        assert 320 not in codes and 322 not in codes, (msg_id.name, codes)


@pytest.mark.parametrize("msg_id", list(SAMPLES), ids=lambda m: m.name)
@pytest.mark.asyncio
async def test_request_when_cut_short_then_error_320_with_its_id_and_connection_kept(raw, msg_id):
    fields = SAMPLES[msg_id]
    if len(fields) > 1:
        raw.send(fields[:1])  # the message id alone
        assert [(r, c) for r, c, _ in _errors(await raw.fence())] == [(-1, 320)]
    index = _id_index(fields)
    if index is not None and index + 1 < len(fields):
        raw.send(fields[: index + 1])  # cut right after its id: the reply carries it
        assert [(r, c) for r, c, _ in _errors(await raw.fence())] == [(int(fields[index]), 320)]
    raw.send(fields)
    assert 320 not in [c for _, c, _ in _errors(await raw.fence())]


@pytest.mark.parametrize("msg_id", list(SAMPLES), ids=lambda m: m.name)
@pytest.mark.asyncio
async def test_request_when_any_field_is_garbage_then_answered_never_crashes(raw, msg_id):
    """Each field in turn replaced by each garbage value: no 322, the socket answers."""
    fields = SAMPLES[msg_id]
    for i in range(1, len(fields)):
        for junk in GARBAGE:
            raw.send([*fields[:i], junk, *fields[i + 1 :]])
        replies = await raw.fence()
        crashes = [e for e in _errors(replies) if e[1] == 322]
        assert not crashes, (msg_id.name, i, crashes)


@pytest.mark.parametrize(
    ("msg_id", "index", "value", "code"),
    [
        # The cases: a blank end time raised IndexError and nothing answered.
        (p.In.REQ_HISTORICAL_DATA, 15, " ", 162),
        (p.In.REQ_HISTORICAL_DATA, 16, "7 fortnights", 162),
        (p.In.REQ_HISTORICAL_DATA, 17, "0 D", 162),
        (p.In.REQ_HISTORICAL_DATA, 15, "20261125 15:00:00 Mars/Olympus", 162),
        (p.In.REQ_EXECUTIONS, 5, " ", 320),
        (p.In.REQ_EXECUTIONS, 5, "2026-11", 320),
        (p.In.REQ_ACCOUNT_UPDATES_MULTI, 3, "U999", 321),
        (p.In.REQ_PNL, 2, "U999", 321),
        (p.In.REQ_PNL_SINGLE, 4, "42", 321),
        (p.In.REQ_MKT_DATA, 4, "NOSUCH", 200),
        (p.In.REQ_CONTRACT_DATA, 4, "NOSUCH", 200),
        (p.In.REQ_HEAD_TIMESTAMP, 3, "NOSUCH", 200),
        (p.In.REQ_MKT_DEPTH, 4, "NOSUCH", 200),
    ],
)
@pytest.mark.asyncio
async def test_request_when_invalid_value_then_error_with_its_id(raw, msg_id, index, value, code):
    fields = list(SAMPLES[msg_id])
    req_id = int(fields[_id_index(fields) or 0])
    fields[index] = value
    raw.send(fields)
    errors = _errors(await raw.fence())
    assert [(r, c) for r, c, _ in errors] == [(req_id, code)], errors


@pytest.mark.asyncio
async def test_handler_when_it_raises_then_322_with_its_id_and_connection_kept(
    gateway, raw, monkeypatch
):
    def broken(self, session, req):  # type: ignore[no-untyped-def]
        raise RuntimeError("simulated bug")

    monkeypatch.setitem(SimGateway._handlers, p.In.REQ_USER_INFO, broken)
    raw.send(SAMPLES[p.In.REQ_USER_INFO])
    errors = _errors(await raw.fence())
    assert [(r, c) for r, c, _ in errors] == [(7019, 322)]
    assert "RuntimeError: simulated bug" in errors[0][2]


@pytest.mark.asyncio
async def test_request_before_start_api_then_refused_not_ignored(gateway):
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    raw = RawClient(reader, writer)
    writer.write(p.HELLO + p.frame_raw(b"v157..178"))
    await raw.next()
    raw.send(SAMPLES[p.In.REQ_CONTRACT_DATA])
    msg = await raw.next()
    assert (msg[0], msg[2], msg[3]) == ("4", "7003", "321")
    raw.close()


@pytest.mark.asyncio
async def test_historical_and_executions_with_blank_time_when_via_ib_async_then_end(
    ib, ib_log_guard
):
    """The issue's reproduction through ib_async: both requests return (empty) at once."""
    ib_log_guard.expect("Error 162")
    ib_log_guard.expect("Error 320")
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, msg, c: errors.append((req_id, code))
    bars = await asyncio.wait_for(
        ib.reqHistoricalDataAsync(Contract(conId=265598), " ", "1 D", "5 mins", "TRADES", False),
        5,
    )
    assert list(bars) == []
    fills = await asyncio.wait_for(ib.reqExecutionsAsync(ExecutionFilter(time=" ")), 5)
    assert fills == []
    assert [code for _, code in errors] == [162, 320]
    assert await ib.reqCurrentTimeAsync()
