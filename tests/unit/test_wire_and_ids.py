"""The wire gate's pacing and last check, and order ids that never repeat."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from eventkit import Event

from core.orderids import OrderIdSequence
from core.wire import FrameDropped, WireGate
from helpers import wait_for

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
asyncio_test = pytest.mark.asyncio


class FakeConn:
    def __init__(self) -> None:
        self.written: list[list[str]] = []

    def sendMsg(self, data: bytes) -> None:
        (n,) = struct.unpack(">I", data[:4])
        assert n == len(data) - 4
        self.written.append(data[4:].decode().split("\0")[:-1])


class FakeClient:
    def __init__(self) -> None:
        self.conn = FakeConn()
        self.connected = True
        self.MaxRequests = 45
        self.seq = 1

    def isConnected(self) -> bool:
        return self.connected

    def _prefix(self, msg: bytes) -> bytes:
        return struct.pack(">I", len(msg)) + msg

    def getReqId(self) -> int:
        self.seq += 1
        return self.seq - 1

    def updateReqId(self, min_id: int) -> None:
        self.seq = max(self.seq, min_id)


class FakeIB:
    def __init__(self) -> None:
        self.client = FakeClient()
        self.disconnectedEvent = Event("disconnectedEvent")


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def place(order_id: int) -> str:
    return f"3\0{order_id}\0AAPL\0BUY\0"


def wire(max_per_second: int = 2) -> tuple[WireGate, FakeIB, Clock, list[FrameDropped]]:
    ib = FakeIB()
    clock = Clock()
    gate = WireGate(ib, max_per_second=max_per_second, clock=clock)
    dropped: list[FrameDropped] = []
    gate.frameDropped += dropped.append
    return gate, ib, clock, dropped


def kinds(ib: FakeIB) -> list[tuple[str, str]]:
    return [(f[0], f[1] if f[0] == "3" else f[-1]) for f in ib.client.conn.written]


@asyncio_test
async def test_ib_async_throttle_is_off_and_every_send_goes_through_the_gate():
    gate, ib, _, _ = wire()
    assert ib.client.MaxRequests == 0
    assert ib.client.sendMsg == gate._submit


@asyncio_test
async def test_order_frame_without_a_check_is_never_written():
    _gate, ib, _, dropped = wire()
    ib.client.sendMsg(place(7))
    assert ib.client.conn.written == []
    assert dropped == [FrameDropped(7, dropped[0].reason, True)]
    assert "no pre-trade check" in dropped[0].reason


@asyncio_test
async def test_check_is_asked_when_written_not_when_queued():
    gate, ib, clock, dropped = wire(max_per_second=1)
    state = {"halted": False}
    for oid in (1, 2):
        gate.expect(oid, lambda: "HALTED" if state["halted"] else None)
        ib.client.sendMsg(place(oid))
    assert kinds(ib) == [("3", "1")] and gate.waiting == 1
    state["halted"] = True  # the state tightens while order 2 waits
    clock.t += 1.0
    gate._pump()
    assert kinds(ib) == [("3", "1")]
    assert [(d.order_id, d.reason, d.first_write) for d in dropped] == [(2, "HALTED", True)]


@asyncio_test
async def test_recheck_drops_waiting_orders_at_once():
    gate, ib, _, dropped = wire(max_per_second=1)
    verdict: dict[int, str | None] = {1: None, 2: None, 3: None}
    for oid in verdict:
        gate.expect(oid, lambda oid=oid: verdict[oid])
        ib.client.sendMsg(place(oid))
    verdict[2] = "halted"
    assert gate.recheck() == 1
    assert [d.order_id for d in dropped] == [2] and gate.waiting == 1


@asyncio_test
async def test_cancel_of_a_waiting_order_drops_both_and_a_cancel_jumps_the_queue():
    gate, ib, _, dropped = wire(max_per_second=1)
    for oid in (1, 2, 3):
        gate.expect(oid, lambda: None)
        ib.client.sendMsg(place(oid))
    ib.client.sendMsg("4\x001\x002\x00")  # cancel order 2: never written
    ib.client.sendMsg("4\x001\x001\x00")  # cancel order 1: written, so the cancel goes first
    assert [d.order_id for d in dropped] == [2]
    assert "cancelled before it was written" in dropped[0].reason
    assert gate.waiting == 2  # cancel of 1, then order 3
    assert gate._queue[0].kind == "4"


@asyncio_test
async def test_global_cancel_drops_every_waiting_order_and_goes_first():
    gate, ib, _, dropped = wire(max_per_second=1)
    for oid in (1, 2, 3):
        gate.expect(oid, lambda: None)
        ib.client.sendMsg(place(oid))
    ib.client.sendMsg("6\x001\x00")  # some other request
    ib.client.sendMsg("58\x001\x00")
    assert sorted(d.order_id for d in dropped) == [2, 3]
    assert [f.kind for f in gate._queue] == ["58", "6"]


@asyncio_test
async def test_pacing_writes_at_most_the_rate_then_the_rest_in_order():
    gate, ib, clock, _ = wire(max_per_second=3)
    for oid in range(1, 8):
        gate.expect(oid, lambda: None)
        ib.client.sendMsg(place(oid))
    assert [k[1] for k in kinds(ib)] == ["1", "2", "3"]
    clock.t += 1.0
    gate._pump()
    assert [k[1] for k in kinds(ib)] == ["1", "2", "3", "4", "5", "6"]


@asyncio_test
async def test_pacing_timer_writes_the_rest_without_a_nudge():
    ib = FakeIB()
    gate = WireGate(ib, max_per_second=2)
    for oid in range(1, 6):
        gate.expect(oid, lambda: None)
        ib.client.sendMsg(place(oid))
    # Real time: the gate's own timer, two pacing windows of 1 s, writes the rest.
    await wait_for(lambda: len(kinds(ib)) == 5, timeout=10, what="the paced rest")
    assert [k[1] for k in kinds(ib)] == ["1", "2", "3", "4", "5"]


@asyncio_test
async def test_disconnect_drops_everything_waiting_never_writes_it_later():
    gate, ib, clock, dropped = wire(max_per_second=1)
    for oid in (1, 2):
        gate.expect(oid, lambda: None)
        ib.client.sendMsg(place(oid))
    ib.client.connected = False
    ib.disconnectedEvent.emit()
    ib.client.connected = True
    clock.t += 5
    gate._pump()
    assert kinds(ib) == [("3", "1")]
    assert [(d.order_id, d.first_write) for d in dropped] == [(2, True)]


@asyncio_test
async def test_a_failing_check_fails_closed():
    gate, ib, _, dropped = wire()

    def broken() -> str | None:
        raise RuntimeError("boom")

    gate.expect(1, broken)
    ib.client.sendMsg(place(1))
    assert ib.client.conn.written == []
    assert "failed at the wire" in dropped[0].reason


@asyncio_test
async def test_what_if_frames_pass_without_a_check():
    gate, ib, _, dropped = wire()
    with gate.what_if():
        ib.client.sendMsg(place(9))
    ib.client.sendMsg(place(10))
    assert kinds(ib) == [("3", "9")] and [d.order_id for d in dropped] == [10]


# -- order ids ---------------------------------------------------------------------------


def test_ids_stay_above_every_id_given_when_the_gateway_restarts_lower():
    ids = OrderIdSequence()
    client = FakeClient()
    first = [ids.next(client) for _ in range(3)]
    client.seq = 1  # a reconnect: ib_async restarts at the gateway's nextValidId
    assert ids.next(client) == first[-1] + 1
    assert client.seq == first[-1] + 2  # ib_async's own requests stay above too


def test_ids_persist_across_restarts_as_a_reservation(tmp_path: Path):
    path = tmp_path / "ids.json"
    ids = OrderIdSequence(path, block=10)
    used = [ids.next(FakeClient()) for _ in range(3)]
    assert json.loads(path.read_text()) == {"reserved": used[0] + 10}

    again = OrderIdSequence(path, block=10)  # a restart; the gateway says 1 again
    assert again.next(FakeClient()) > max(used)


def test_reservation_written_once_per_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    ids = OrderIdSequence(tmp_path / "ids.json", block=50)
    writes: list[int] = []
    real = ids._reserve
    monkeypatch.setattr(ids, "_reserve", lambda n: (writes.append(n), real(n)))
    client = FakeClient()
    for _ in range(120):
        ids.next(client)
    assert len(writes) == 3


def test_reservation_never_lowered_by_another_console(tmp_path: Path):
    path = tmp_path / "ids.json"
    path.write_text(json.dumps({"reserved": 5000}))
    ids = OrderIdSequence(path, block=10)
    ids.last = 0
    ids.reserved = 0
    ids.next(FakeClient())
    assert json.loads(path.read_text())["reserved"] == 5000


def test_damaged_reservation_refuses_to_start(tmp_path: Path):
    path = tmp_path / "ids.json"
    path.write_text("{not json")
    with pytest.raises(RuntimeError, match="risks reusing an order id"):
        OrderIdSequence(path)


def test_ids_seen_at_the_gateway_are_never_handed_out():
    ids = OrderIdSequence()
    ids.observe(500)
    assert ids.next(FakeClient()) == 501


def test_frames_parse_as_ib_async_writes_them() -> None:
    # ib_async puts the message id first and, for placeOrder, the order id second.
    from ib_async import IB, Order, Stock

    ib = IB()
    gate = WireGate(ib, max_per_second=5)
    seen: list[FrameDropped] = []
    gate.frameDropped += seen.append
    ib.client.connState = ib.client.CONNECTED
    ib.client.conn.sendMsg = lambda data: None  # type: ignore[method-assign]
    ib.client._serverVersion = 178
    try:
        ib.client.placeOrder(4242, Stock("AAPL", "SMART", "USD"), Order(orderType="MKT"))
    finally:
        ib.client.connState = ib.client.DISCONNECTED
    assert [d.order_id for d in seen] == [4242]
