"""ib_async's and asyncio's private internals the console uses (core.compat) still exist.

Fails loudly when an upgrade renames one, instead of the console failing quietly.
"""

from __future__ import annotations

import asyncio
import inspect
import struct

from ib_async import IB, Trade
from ib_async.client import Client

from core import compat


def test_socket_handlers_are_the_clients_and_take_what_the_connection_gives():
    ib = IB()
    on_data, on_closed = compat.socket_handlers(ib)
    assert on_data == ib.client._onSocketHasData
    assert on_closed == ib.client._onSocketDisconnected
    assert list(inspect.signature(on_data).parameters) == ["data"]
    assert len(inspect.signature(on_closed).parameters) == 1
    assert on_data in ib.client.conn.hasData  # what SlicedReader swaps out
    assert on_closed in ib.client.conn.disconnected


def test_sending_is_taken_over_and_frames_written_with_their_length_prefix():
    ib = IB()
    sent: list[str | None] = []
    written: list[bytes] = []
    write = compat.take_over_sending(ib, sent.append)
    assert ib.client.MaxRequests == 0
    ib.client.conn.sendMsg = written.append  # type: ignore[method-assign]
    ib.client.connState = Client.CONNECTED
    try:
        ib.client.reqCurrentTime()  # ib_async's send() must call sendMsg with one frame
    finally:
        ib.client.connState = Client.DISCONNECTED
    assert sent == ["49\x001\x00"]
    write("49\x001\x00")
    assert written == [struct.pack(">I", 5) + b"49\x001\x00"]


def test_the_wrappers_order_books_are_mappings_of_trades():
    ib = IB()
    trades, by_perm = compat.trades_by_key(ib), compat.trades_by_perm_id(ib)
    assert trades is ib.wrapper.trades and by_perm is ib.wrapper.permId2Trade
    trade = Trade()
    trades[(1, 7)] = trade
    assert ib.trades() == [trade]  # the public view reads the same book


def test_running_loop_can_be_set_and_read_back():
    loop = asyncio.new_event_loop()
    try:
        assert compat.current_running_loop() is None
        compat.set_running_loop(loop)
        assert asyncio.get_running_loop() is loop
    finally:
        compat.set_running_loop(None)
        loop.close()
    assert compat.current_running_loop() is None


def test_arcticdb_version_cache_can_be_forgotten(tmp_path):
    import arcticdb
    import pandas as pd

    lib = arcticdb.Arctic(f"lmdb://{tmp_path / 'a'}").get_library("l", create_if_missing=True)
    lib.write("s", pd.DataFrame({"v": [1]}))
    compat.forget_cached_versions(lib)
    assert list(lib.read("s").data["v"]) == [1]


def _working_trade(ib: IB) -> Trade:
    from ib_async import Contract, Order, OrderStatus

    trade = Trade(
        Contract(symbol="AAPL", secType="STK"),
        Order(orderId=4, clientId=1, action="BUY", totalQuantity=10, orderType="LMT"),
        OrderStatus(orderId=4, status="Submitted"),
        [],
        [],
    )
    ib.wrapper.clientId = 1
    compat.trades_by_key(ib)[(1, 4)] = trade
    return trade


def test_an_order_error_is_heard_before_ib_async_cancels_the_order(ib_log_guard):
    ib_log_guard.expect(r"Error 202|Canceled order")
    ib = IB()
    trade = _working_trade(ib)
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, message, contract: errors.append((req_id, code))
    asked: list[tuple[Trade, int, str]] = []

    def refused(t: Trade, code: int, message: str) -> str | None:
        asked.append((t, code, message))
        return "modification refused" if code == 201 else None

    compat.keep_working_on_refusal(ib, refused)
    ib.wrapper.error(4, 201, "Order rejected", "")  # what the decoder calls

    assert asked == [(trade, 201, "Order rejected")]
    assert trade.orderStatus.status == "Submitted"  # ib_async would say Cancelled
    assert (trade.log[-1].message, trade.log[-1].errorCode) == ("modification refused", 201)
    assert errors == [(4, 201)]

    ib.wrapper.error(4, 202, "Order Canceled", "")  # not a refusal: ib_async's handling
    assert trade.orderStatus.status == "Cancelled"
    assert errors == [(4, 201), (4, 202)]


def test_the_decoder_finds_the_error_handler_on_the_wrapper_at_each_message():
    # keep_working_on_refusal replaces the wrapper's error attribute: ib_async's decoder
    # must look it up by name for every message, not keep the method it found at start.
    ib = IB()
    trade = _working_trade(ib)
    compat.keep_working_on_refusal(ib, lambda t, code, message: "kept")
    ib.client.decoder.serverVersion = 178
    ib.client.decoder.interpret(["4", "2", "4", "201", "Order rejected", ""])

    assert trade.orderStatus.status == "Submitted"
    assert trade.log[-1].message == "kept"
