"""A desk of consoles on one S3 store (moto in its own process) and one simulated gateway.

Real :class:`core.session.ConsoleSession`s, each with its own client id, writing to one
bucket: they start together on a new bucket, trade, and every execution the gateway made
is in the journal exactly once; each console's book covers the account (the other
console's strategies marked as its) with no reconciliation break; a console configured
with a writer name in use is refused; an S3 outage shows in the store's health and loses
nothing; a console killed with SIGKILL mid-write loses nothing and its lease expires.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio

pytest.importorskip("moto.server")
pytest.importorskip("boto3")

from moto_s3 import MotoS3

from core.config import default_writer
from core.contracts import create_stock_contract
from core.events import StoreHealthChanged
from core.orders import create_market_order
from core.portfolio import PositionBook
from core.session import ConsoleSession, SessionOptions
from core.store import Store, StoreError
from core.tradingday import trading_day_start
from helpers import wait_for

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

ACCOUNT = "DU0000001"


@pytest.fixture(autouse=True)
def fast_storage_lock() -> None:
    """New libraries: ArcticDB's symbol-list lock would wait 1 s for a contender."""
    from arcticdb.config import set_config_int

    set_config_int("StorageLock.WaitMs", 10)


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3]:
    server = MotoS3()
    try:
        yield server
    finally:
        server.stop()


def options(gateway: Any, uri: str, client_id: int, **kw: Any) -> SessionOptions:
    base: dict[str, Any] = {
        "port": gateway.port,
        "client_id": client_id,
        "account": ACCOUNT,
        "store_uri": uri,
        "store_lease_seconds": 3.0,
        "store_call_timeout": 2.0,
        "store_follow_seconds": 0.2,
    }
    return SessionOptions(**(base | kw))


@pytest_asyncio.fixture
async def sessions(ib_log_guard: Any) -> AsyncIterator[list[ConsoleSession]]:
    """Sessions the test starts; stopped at the end whatever happened."""
    # Quotes still on the wire when a session cancels its subscriptions at stop.
    ib_log_guard.expect(r"Unknown reqId")
    started: list[ConsoleSession] = []
    try:
        yield started
    finally:
        for session in reversed(started):
            await session.stop()


async def trade(session: ConsoleSession, symbol: str, action: str, qty: float, strategy: str):
    contract = await session.contracts.qualify(create_stock_contract(symbol))
    t = session.trades.place_order(contract, create_market_order(action, qty), strategy)
    await wait_for(t.isDone, timeout=10, what=f"{action} {qty} {symbol} done")
    assert t.orderStatus.status == "Filled", t.log
    return t


async def journal(uri: str) -> Any:
    """The fills journal as a third process would read it: every writer's raw rows."""
    async with Store(uri, writer="reader", lease_seconds=None) as reader:
        from core.events import FillRecorded

        raw = await reader._threads.read(
            "raw", reader._journals.read, "fills", None, None, FillRecorded
        )
        book = await reader.fills()
    return raw, book


def gateway_exec_ids(gateway: Any, client_id: int = 0) -> set[str]:
    return {ex.exec_id for ex in gateway.engine.executions(client_id=client_id)}


async def assert_journal_is_gateway(uri: str, raw: Any, gateway: Any, client_id: int = 0) -> None:
    """Every execution at the gateway is in the journal, exactly once."""
    expected = gateway_exec_ids(gateway, client_id)
    if sorted(raw["exec_id"]) == sorted(expected):
        return
    missing = expected - set(raw["exec_id"])
    by_client = {ex.exec_id: ex.client_id for ex in gateway.engine.executions()}
    async with Store(uri, writer="reader2", lease_seconds=None) as r2:
        lib = r2._lib("fills")
        listed = lib.list_symbols()
        full = lib._nvs.list_symbols(use_symbol_list=False)
        rows = {s: list(lib.read(s).data["exec_id"]) for s in full}
    raise AssertionError(
        f"missing {sorted(missing)} of clients {[by_client.get(m) for m in missing]}; "
        f"extra {sorted(set(raw['exec_id']) - expected)}; writers {set(raw['writer'])}; "
        f"listed {listed}; stored {rows}"
    )


def ib_quantities(gateway: Any) -> dict[int, float]:
    return {p.con_id: p.quantity for p in gateway.engine.positions(ACCOUNT)}


async def test_two_consoles_on_a_new_bucket_then_nothing_lost_and_each_book_is_the_account(
    gateway: Any, s3: MotoS3, sessions: list[ConsoleSession]
) -> None:
    uri = s3.new_bucket()
    a, b = await asyncio.gather(  # the same instant, on a new bucket
        ConsoleSession.start(options(gateway, uri, 1)),
        ConsoleSession.start(options(gateway, uri, 2)),
    )
    sessions += [a, b]
    assert a.store is not None and b.store is not None
    assert a.store.writer != b.store.writer

    # Both trade at once: A's alpha and manual, B's beta and manual (same name as A's).
    async def desk_a() -> None:
        for i in range(6):
            await trade(a, ("AAPL", "MSFT")[i % 2], "BUY", 10 + i, "alpha")
        await trade(a, "AAPL", "SELL", 5, "manual")

    async def desk_b() -> None:
        for i in range(6):
            await trade(b, ("MSFT", "NVDA")[i % 2], ("BUY", "SELL")[i % 2], 7 + i, "beta")
        await trade(b, "AAPL", "BUY", 3, "manual")

    await asyncio.gather(desk_a(), desk_b())
    assert await a.trades.wait_journalled(10) == []
    assert await b.trades.wait_journalled(10) == []

    # Every execution at the gateway is in the journal exactly once.
    raw, book = await journal(uri)
    await assert_journal_is_gateway(uri, raw, gateway)
    assert set(raw[raw["client_id"] == 2]["writer"]) == {b.store.writer}

    # Positions rebuilt per strategy from the journal equal the gateway's.
    from core.events import FillRecorded
    from core.store import frame_to_records

    fills = frame_to_records(book, FillRecorded)
    rebuilt = PositionBook.rebuild(fills, trading_day_start(datetime.now(UTC)))
    per_contract: dict[int, float] = {}
    for p in rebuilt:
        per_contract[p.con_id] = per_contract.get(p.con_id, 0.0) + p.quantity
    assert {k: v for k, v in per_contract.items() if v} == ib_quantities(gateway)
    assert {p.strategy for p in rebuilt} == {"alpha", "beta", "manual"}

    # Each console's book is the account's: the other's strategies marked as its.
    bw = b.store.writer

    def a_sees_b() -> bool:
        return {p.strategy for p in a.portfolio.book} == {
            "alpha",
            "manual",
            f"beta@{bw}",
            f"manual@{bw}",
        }

    await wait_for(a_sees_b, timeout=10, what="B's fills in A's book")
    manual_a = {p.con_id: p.quantity for p in a.portfolio.book if p.strategy == "manual"}
    assert manual_a == {265598: -5}  # A's own manual position is only A's
    for session in (a, b):
        await wait_for(
            lambda s=session: (
                {p.contract.conId: float(p.position) for p in s.connection.ib.positions(ACCOUNT)}
                == ib_quantities(gateway)
            ),
            timeout=10,
            what="IB's positions at the client",
        )
        await wait_for(
            lambda s=session: not s.portfolio.reconciliation.find_breaks(),
            timeout=10,
            what="no break",
        )
    # Another console's fills are not written again in this console's journals.
    raw_after, _ = await journal(uri)
    assert len(raw_after) == len(raw)


async def test_console_when_writer_name_in_use_then_refused_naming_the_holder(
    gateway: Any, s3: MotoS3, sessions: list[ConsoleSession]
) -> None:
    uri = s3.new_bucket()
    a = await ConsoleSession.start(options(gateway, uri, 1))
    sessions.append(a)
    assert a.store is not None

    twin = options(gateway, uri, 3, store_writer=a.store.writer)
    with pytest.raises(StoreError, match="in use by client 1, account DU0000001") as refused:
        await ConsoleSession.start(twin)

    assert a.store.writer in str(refused.value) and f"pid {os.getpid()}" in str(refused.value)
    assert 3 not in gateway.client_ids  # refused before it connected: it sends nothing


async def test_s3_outage_when_trading_then_shown_in_store_state_and_nothing_lost(
    gateway: Any, sessions: list[ConsoleSession]
) -> None:
    outage = MotoS3()  # its own server: this test stops it
    try:
        uri = outage.new_bucket()
        # The lease is renewed every 2 s and other writers are looked for every 0.2 s:
        # both go on during the outage.
        a = await ConsoleSession.start(
            options(gateway, uri, 1, store_call_timeout=1.0, store_lease_seconds=6)
        )
        sessions.append(a)
        assert a.store is not None
        health: list[StoreHealthChanged] = []
        a.store.healthEvent += health.append
        await trade(a, "AAPL", "BUY", 10, "alpha")
        assert await a.trades.wait_journalled(10) == []

        outage.pause()
        lags: list[float] = []
        probe = asyncio.ensure_future(loop_lag(lags))
        for i in range(3):
            await trade(a, "MSFT", "BUY", 5 + i, "alpha")  # IB fills; S3 does not answer
        await wait_for(
            lambda: a.store is not None and a.store.state == "failing",
            timeout=10,
            what="the store reported failing",
        )
        assert a.store.pending_fills == 3
        assert any(h.state == "failing" and h.pending_fills == 3 for h in health)
        await asyncio.sleep(3)  # a few seconds of outage
        probe.cancel()
        outage.resume()
        # The console never froze: no store call held the loop (ArcticDB's has_symbol and
        # list_symbols hold the GIL while S3 is silent; the store does not call them).
        assert max(lags) < 0.5, f"the loop stalled {max(lags):.1f} s during the outage"

        assert await a.trades.wait_journalled(40) == []
        await wait_for(lambda: a.store is not None and a.store.state == "ok", timeout=10)
        assert health[-1].state == "ok" and health[-1].pending_fills == 0
        raw, _ = await journal(uri)
        await assert_journal_is_gateway(uri, raw, gateway)
    finally:
        for session in sessions:
            await session.stop()
        sessions.clear()
        outage.stop()


async def loop_lag(lags: list[float]) -> None:
    """Record how late each 50 ms tick of the loop comes."""
    loop = asyncio.get_running_loop()
    while True:
        t = loop.time()
        await asyncio.sleep(0.05)
        lags.append(loop.time() - t - 0.05)


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from core.session import ConsoleSession, SessionOptions
    from core.contracts import create_stock_contract
    from core.orders import create_market_order

    async def main():
        port, uri = int(sys.argv[1]), sys.argv[2]
        s = await ConsoleSession.start(SessionOptions(port=port, client_id=7,
                                      account="DU0000001", store_uri=uri, store_lease_seconds=3.0))
        s.trades.fillReceived += lambda f: print("DURABLE", f.exec_id, flush=True)
        contract = await s.contracts.qualify(create_stock_contract("AAPL"))
        print("STARTED", flush=True)
        i = 0
        while True:
            s.trades.place_order(contract, create_market_order(("BUY", "SELL")[i % 2], 1), "kid")
            i += 1
            await asyncio.sleep(0.05)

    asyncio.run(main())
    """
)


async def test_console_killed_mid_write_then_nothing_lost_and_its_lease_expires(
    gateway: Any, s3: MotoS3, sessions: list[ConsoleSession]
) -> None:
    uri = s3.new_bucket()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        str(gateway.port),
        uri,
        stdout=asyncio.subprocess.PIPE,
        env=os.environ | {"PYTHONPATH": os.getcwd()},
    )
    durable: list[str] = []
    try:
        assert child.stdout is not None
        while len(durable) < 8:
            line = (await asyncio.wait_for(child.stdout.readline(), 60)).decode().split()
            assert line, "the child console ended early"
            if line[0] == "DURABLE":
                durable.append(line[1])
        child.send_signal(signal.SIGKILL)  # orders keep coming: mid-write
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()

    raw, _ = await journal(uri)
    assert set(durable) <= set(raw["exec_id"])  # every fill it reported durable is

    writer = default_writer(ACCOUNT, 7, "127.0.0.1", gateway.port)
    with pytest.raises(StoreError, match="in use by"):
        # the killed console's lease has not expired yet
        await ConsoleSession.start(options(gateway, uri, 7))
    await asyncio.sleep(3.5)
    again = await ConsoleSession.start(options(gateway, uri, 7))  # expired: the name is free
    sessions.append(again)
    assert again.store is not None and again.store.writer == writer
    await again.trades.resync()  # IB replays the day's executions: the missed ones land
    assert await again.trades.wait_journalled(10) == []

    raw, _ = await journal(uri)
    await assert_journal_is_gateway(uri, raw, gateway, client_id=7)


OPENER = textwrap.dedent(
    """
    import asyncio, sys, time
    from core.store import Store

    async def main():
        uri, writer, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3])
        time.sleep(max(0.0, start_at - time.time()))  # every process at the same instant
        async with Store(uri, writer=writer, lease_seconds=5) as store:
            print("OPENED", store.writer, flush=True)

    asyncio.run(main())
    """
)


async def test_new_bucket_when_processes_open_it_at_once_then_all_open(s3: MotoS3) -> None:
    uri = s3.new_bucket()
    start_at = time.time() + 4  # after the interpreters have imported ArcticDB
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            OPENER,
            uri,
            f"desk-{i}",
            str(start_at),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=os.environ | {"PYTHONPATH": os.getcwd()},
        )
        for i in range(3)
    ]
    outputs = [await asyncio.wait_for(p.communicate(), 60) for p in procs]

    for i, (p, (out, err)) in enumerate(zip(procs, outputs, strict=True)):
        assert p.returncode == 0, err.decode()[-2000:]
        assert out.decode().split() == ["OPENED", f"desk-{i}"]
