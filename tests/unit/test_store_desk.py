"""A desk of consoles on one store: writer names, the lease, durability, health, and
other consoles' fills. On LMDB in a temporary directory (one process); the same things
across processes on S3 are in ``tests/integration/test_shared_store.py``."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import pytest_asyncio
from arcticdb.exceptions import NoSuchVersionException
from store_records import make_fill, make_position

from core.arctic_io import get_or_create_library
from core.config import Settings, default_writer
from core.events import FillRecorded, PnLChanged, StoreHealthChanged
from core.frames import records_to_frame
from core.lease import LeaseHeld, WriterLease
from core.store import FILLS, DailySummary, Store, StoreError
from core.store_series import SeriesBuffer
from helpers import wait_for

pytestmark = pytest.mark.asyncio


@pytest.fixture(autouse=True)
def fast_storage_lock() -> None:
    from arcticdb.config import set_config_int

    set_config_int("StorageLock.WaitMs", 10)


@pytest.fixture
def store_uri(tmp_path: Path) -> str:
    return f"lmdb://{tmp_path / 'arctic'}"


@pytest_asyncio.fixture
async def store(store_uri: str) -> AsyncIterator[Store]:
    s = Store(store_uri, writer="desk-a", flush_seconds=60, call_timeout=0.5)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def today_fill(i: int, **kw: Any) -> FillRecorded:
    return make_fill(i, time=datetime.now(UTC) - timedelta(seconds=100 - i), **kw)


# -- writer names --------------------------------------------------------------------------


async def test_default_writer_when_consoles_differ_by_client_or_account_then_names_differ() -> None:
    a = default_writer("DU0000001", 1, "127.0.0.1", 4002)
    b = default_writer("DU0000001", 2, "127.0.0.1", 4002)
    c = default_writer("DU0000002", 1, "127.0.0.1", 4002)
    no_account = default_writer("", 1, "127.0.0.1", 4002)

    assert len({a, b, c, no_account}) == 4
    assert a == default_writer("DU0000001", 1, "127.0.0.1", 4002)  # stable across restarts
    assert a.startswith("DU0000001-c1-") and "127_0_0_1_4002-c1-" in no_account
    assert Settings().store_writer == default_writer("", 1, "127.0.0.1", None)


async def test_writer_when_configured_then_used_and_checked() -> None:
    settings = Settings.model_validate({"store": {"writer": "desk-alice"}})
    assert settings.store_writer == "desk-alice"
    with pytest.raises(ValueError, match="letters, digits"):
        Settings.model_validate({"store": {"writer": "alice/bob"}})


# -- the lease (WriterLease on an in-memory library) ---------------------------------------


class FakeLibrary:
    """The part of an ArcticDB library a lease uses; ``meet`` makes the first look of
    each of two threads wait for the other (both see the lease free)."""

    def __init__(self, meet: threading.Barrier | None = None) -> None:
        self.symbols: dict[str, pd.DataFrame] = {}
        self.meet = meet
        self._met: set[int] = set()

    def read(self, symbol: str) -> Any:
        if self.meet is not None and threading.get_ident() not in self._met:
            self._met.add(threading.get_ident())
            self.meet.wait(5)
        if symbol not in self.symbols:
            raise NoSuchVersionException(f"no symbol {symbol}")
        return type("Item", (), {"data": self.symbols[symbol].copy()})()

    def write(self, symbol: str, df: pd.DataFrame, prune_previous_versions: bool) -> None:
        self.symbols[symbol] = df


async def test_lease_when_held_then_second_refused_naming_holder() -> None:
    lib = FakeLibrary()
    first = WriterLease(lib, "desk-a", lease_seconds=30, settle=0, description="client 1")
    second = WriterLease(lib, "desk-a", lease_seconds=30, settle=0, description="client 2")
    first.acquire()

    with pytest.raises(LeaseHeld) as refused:
        second.acquire()

    message = str(refused.value)
    assert "'desk-a'" in message and "client 1" in message and f"pid {first.pid}" in message
    assert first.host in message and "[store] writer" in message
    first.renew()  # the holder keeps it


async def test_lease_when_holder_killed_then_expires_and_is_taken_over() -> None:
    lib = FakeLibrary()
    now = [1000.0]
    killed = WriterLease(lib, "desk-a", lease_seconds=30, settle=0, clock=lambda: now[0])
    killed.acquire()  # ...and never renewed again: the process died
    late = WriterLease(lib, "desk-a", lease_seconds=30, settle=0, clock=lambda: now[0])

    now[0] += 29
    with pytest.raises(LeaseHeld):
        late.acquire()
    now[0] += 2
    late.acquire()

    assert lib.read("lease.desk-a").data["holder"].iloc[0] == late.holder
    with pytest.raises(LeaseHeld):  # the old holder, back, learns it at its next renewal
        killed.renew()


async def test_lease_when_two_take_a_free_lease_at_once_then_exactly_one_gets_it() -> None:
    lib = FakeLibrary(meet=threading.Barrier(2))
    leases = [WriterLease(lib, "desk-a", lease_seconds=30, settle=0.2) for _ in range(2)]
    outcome: dict[int, str] = {}

    def take(i: int) -> None:
        try:
            leases[i].acquire()
            outcome[i] = "held"
        except LeaseHeld:
            outcome[i] = "refused"

    threads = [threading.Thread(target=take, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    assert sorted(outcome.values()) == ["held", "refused"]


# -- opening -------------------------------------------------------------------------------


async def test_open_when_another_process_creates_the_library_first_then_no_error() -> None:
    class RacingArctic:
        """Creating fails as when another process created the library meanwhile."""

        def __init__(self) -> None:
            self.calls: list[str] = []

        def get_library(self, name: str, **kw: Any) -> str:
            self.calls.append("create" if kw.get("create_if_missing") else "get")
            if kw.get("create_if_missing"):
                raise ValueError(f"Library [{name}] already exists.")
            return f"lib:{name}"

    arctic = RacingArctic()

    assert get_or_create_library(arctic, "orders", None) == "lib:orders"
    assert arctic.calls == ["create", "get"]


async def test_open_when_the_other_process_has_not_written_the_library_yet_then_looks_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class SlowCreator:
        """The other process's library config lands only at the third look."""

        def __init__(self) -> None:
            self.calls: list[str] = []

        def get_library(self, name: str, **kw: Any) -> str:
            self.calls.append("create" if kw.get("create_if_missing") else "get")
            if kw.get("create_if_missing"):
                raise ValueError(f"Library [{name}] already exists.")
            if self.calls.count("get") < 3:
                raise KeyError(f"{name}: config not written yet")
            return f"lib:{name}"

    arctic = SlowCreator()
    monkeypatch.setattr("tenacity.nap.time.sleep", lambda _s: None)

    assert get_or_create_library(arctic, "orders", None) == "lib:orders"
    assert arctic.calls == ["create", "get", "get", "get"]


# -- durable means durable -----------------------------------------------------------------


async def test_append_fills_when_append_does_not_read_back_then_error_and_kept(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = store._lib(FILLS)
    real_append = lib.append
    monkeypatch.setattr(lib, "append", lambda *a, **k: None)  # "succeeds", writes nothing
    fill = today_fill(1)

    with pytest.raises(StoreError, match="do not read back"):
        await store.append_fills([fill])
    assert store.pending_fills == 1

    monkeypatch.setattr(lib, "append", real_append)
    assert await store.append_fills([fill]) == 1
    assert store.pending_fills == 0
    assert list((await store.fills())["exec_id"]) == [fill.exec_id]


async def test_append_fills_when_write_lands_but_reply_lost_then_retry_writes_nothing_twice(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.append_fills([today_fill(0)])  # the symbol exists: its index is cached
    lib = store._lib(FILLS)
    real_append = lib.append

    def append_then_fail(*args: Any, **kwargs: Any) -> Any:
        real_append(*args, **kwargs)
        raise ConnectionError("connection reset before the reply")

    monkeypatch.setattr(lib, "append", append_then_fail)
    fill = today_fill(1)
    with pytest.raises(StoreError, match="connection reset"):
        await store.append_fills([fill])
    monkeypatch.setattr(lib, "append", real_append)

    assert await store.append_fills([fill]) == 1  # the retrying caller still handles it
    assert await store.append_fills([today_fill(2)]) == 1  # and later appends work
    raw = await store._threads.read("raw", store._journals.read, FILLS, None, None, FillRecorded)
    assert sorted(raw["exec_id"]) == sorted(today_fill(i).exec_id for i in range(3))


async def test_append_fills_when_store_hangs_then_timeout_reported_and_nothing_lost(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    health: list[StoreHealthChanged] = []
    store.healthEvent += health.append
    lib = store._lib(FILLS)
    real_append = lib.append
    release = threading.Event()

    def hung_append(*args: Any, **kwargs: Any) -> Any:
        release.wait(10)  # S3 unreachable: the call blocks
        return real_append(*args, **kwargs)

    monkeypatch.setattr(lib, "append", hung_append)
    first, second = today_fill(1), today_fill(2)

    with pytest.raises(StoreError, match=r"no answer from the store after 0\.5 s"):
        await store.append_fills([first])
    queued = asyncio.ensure_future(store.append_fills([second]))
    await wait_for(lambda: store.pending_fills == 2, what="the second fill queued")
    assert store.state == "failing"
    assert store.pending_fills == 2  # the one that timed out and the one queued behind it
    assert health[-1].state == "failing" and health[-1].pending_fills == 2

    release.set()  # S3 is back
    monkeypatch.setattr(lib, "append", real_append)
    assert await queued == 1  # it ran as soon as the hung call returned
    # The hung call wrote the first fill after its caller had been told it failed: the
    # caller's retry writes nothing again, and still gets it reported new.
    counts = [await store.append_fills([first]), await store.append_fills([second])]

    assert counts == [1, 0]
    assert store.pending_fills == 0 and store.state == "ok"
    assert health[-1].state == "ok" and health[-1].pending_fills == 0
    raw = await store._threads.read("raw", store._journals.read, FILLS, None, None, FillRecorded)
    assert sorted(raw["exec_id"]) == sorted([first.exec_id, second.exec_id])


async def test_fills_when_a_flush_hangs_then_not_delayed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    release, entered = threading.Event(), threading.Event()
    real_flush = SeriesBuffer._flush_sync

    def slow_flush(self: SeriesBuffer, *args: Any) -> None:
        entered.set()
        release.wait(10)
        real_flush(self, *args)

    monkeypatch.setattr(SeriesBuffer, "_flush_sync", slow_flush)
    store.record_pnl(PnLChanged(None, 1.0, 0.0, 1.0, datetime.now(UTC)))
    flushing = asyncio.ensure_future(store.flush())
    await wait_for(entered.is_set, what="the flush hung in its write")

    started = time.monotonic()
    assert await store.append_fills([today_fill(1)]) == 1
    assert time.monotonic() - started < 0.4  # not behind the flush (it is still hung)

    release.set()
    await flushing
    assert len(await store.pnl()) == 1


async def test_state_when_two_writers_save_one_key_then_each_keeps_its_own(
    store_uri: str,
) -> None:
    async with Store(store_uri, writer="desk-a") as a:
        await a.save_state("risk/trading_state", "HALTED")
    async with Store(store_uri, writer="desk-b") as b:
        await b.save_state("risk/trading_state", "ACTIVE")
    async with Store(store_uri, writer="desk-a") as a:
        assert await a.load_state("risk/trading_state") == "HALTED"


# -- the account's book across consoles ----------------------------------------------------


async def test_load_book_fills_when_another_writer_then_its_strategies_marked(
    store_uri: str,
) -> None:
    async with Store(store_uri, writer="desk-b") as b:
        await b.append_fills([today_fill(1, strategy="alpha")])
    async with Store(store_uri, writer="desk-a", flush_seconds=60) as a:
        await a.append_fills([today_fill(2, strategy="alpha")])

        book = await a.load_book_fills()
        a.record_positions([make_position("alpha@desk-b", 1, 100, datetime.now(UTC))])
        a.record_positions([make_position("alpha", 1, 100, datetime.now(UTC))])

        assert [f.strategy for f in book] == ["alpha@desk-b", "alpha"]
        assert [p.strategy for p in a._series.pos_buffer] == ["alpha"]  # theirs: their console's


async def test_follow_when_another_writer_appends_then_its_fills_emitted_once(
    store: Store,
) -> None:
    other = f"{datetime.now(UTC).date().isoformat()}.desk-b"
    lib = store._lib(FILLS)

    def theirs(fill: FillRecorded) -> None:
        lib.append(other, records_to_frame([fill], FillRecorded).set_index("time", drop=False))

    # desk-b's console registered at its open; desk-a's registration was lost to the
    # same instant (each overwrote the other's): desk-a adds itself again on renewal.
    store._lib("leases").write("roster", pd.DataFrame({"writer": ["desk-b"]}))
    store._registry.renew()
    assert sorted(store._registry.roster()) == ["desk-a", "desk-b"]
    before, after = today_fill(1), today_fill(3)
    theirs(before)
    seen: list[tuple[str, list[FillRecorded]]] = []
    store.foreignFillsEvent += lambda writer, fills: seen.append((writer, fills))

    store.follow(0.02)
    await wait_for(lambda: seen, what="the first look")  # the first look: the day so far
    await store.append_fills([today_fill(2)])  # this console's own: not followed
    theirs(after)
    await wait_for(lambda: len(seen) == 2, what="their new fill")
    looked = store._foreign.looks
    await wait_for(lambda: store._foreign.looks >= looked + 2, what="two more looks")

    assert seen == [("desk-b", [before]), ("desk-b", [after])]


async def test_daily_when_another_consoles_strategy_then_not_saved_here(store: Store) -> None:
    await store.load_book_fills()
    store._foreign.strategies.add("beta@desk-b")  # as load_book_fills marks them
    day = datetime.now(UTC).date()
    await store.save_daily(
        [DailySummary(day, "alpha", 1, 0, 1, 0, 1), DailySummary(day, "beta@desk-b", 2, 0, 2, 0, 1)]
    )

    assert list((await store.daily())["strategy"]) == ["alpha"]


async def test_append_when_lease_taken_over_then_nothing_written_and_state_says_so(
    store: Store,
) -> None:
    assert store._registry.lease is not None
    # Another console took the name (this one was cut off longer than the lease).
    usurper = WriterLease(store._lib("leases"), store.writer, settle=0, description="client 9")
    usurper._write(time.time() + 30, prune=False)
    store._registry.lease.valid_until = 0  # due for renewal: the next write checks first

    with pytest.raises(StoreError, match="in use by client 9"):
        await store.append_fills([today_fill(1)])
    with pytest.raises(StoreError, match="in use by client 9"):
        await store.append_fills([today_fill(2)])

    assert store.state == "lease lost" and store.pending_fills == 2
    assert len(await store.fills()) == 0
    with pytest.raises(StoreError, match="in use by client 9"):
        await store.close()  # says what it could not write; the usurper keeps its lease
    held = usurper.read()
    assert held is not None and held.holder == usurper.holder


async def test_wait_journalled_when_store_hangs_then_bounded_and_names_what_is_pending(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ib_async import IB, CommissionReport, Contract, Execution, Fill

    from core.trading import TradeManager

    lib = store._lib(FILLS)
    real_append = lib.append
    release = threading.Event()
    monkeypatch.setattr(lib, "append", lambda *a, **k: (release.wait(10), real_append(*a, **k)))
    tm = TradeManager(IB(), journal=store)
    execution = Execution(
        execId="e1",
        time=datetime.now(UTC),
        acctNumber="DU0000001",
        side="BOT",
        shares=10,
        price=100.0,
        clientId=1,
        orderId=7,
        orderRef="alpha",
    )
    contract = Contract(conId=1, symbol="X", secType="STK", currency="USD")
    tm.handle_fill_event(
        None, Fill(contract, execution, CommissionReport("e1", 1.0), execution.time)
    )

    started = time.monotonic()
    assert await tm.wait_journalled(0.3) == ["e1"]  # shutdown: bounded, and says what
    assert time.monotonic() - started < 1.0

    release.set()
    monkeypatch.setattr(lib, "append", real_append)
    assert await tm.wait_journalled(10) == []
    assert list((await store.fills())["exec_id"]) == ["e1"]


async def test_roster_when_another_console_overwrites_our_entry_then_we_add_ourselves_again(
    store: Store,
) -> None:
    import pandas as pd

    from core.lease import LEASES
    from core.store import ROSTER

    lib = store._lib(LEASES)
    lib.write(ROSTER, pd.DataFrame({"writer": ["other"]}))  # we are not on it
    real_write = lib.write
    clobbered: list[int] = []

    def racing_write(symbol: str, df: pd.DataFrame, **kw: Any) -> Any:
        result = real_write(symbol, df, **kw)
        if symbol == ROSTER and not clobbered:
            clobbered.append(1)  # the other console's write lands just after ours
            real_write(symbol, pd.DataFrame({"writer": ["other", "third"]}), **kw)
        return result

    lib.write = racing_write  # type: ignore[method-assign]
    try:
        store._registry.register()
    finally:
        lib.write = real_write  # type: ignore[method-assign]
    assert clobbered
    assert set(store._registry.roster()) == {"other", "third", store.writer}


def _refusing_roster_writes(lib: Any, refusals: int) -> tuple[list[float], Any]:
    """Make ``lib`` refuse the first ``refusals`` roster writes, as ArcticDB refuses one
    racing another process's; returns the times of every roster write and the real write."""
    from core.store import ROSTER

    real_write = lib.write
    tried: list[float] = []

    def refusing_write(symbol: str, df: pd.DataFrame, **kw: Any) -> Any:
        if symbol == ROSTER:
            tried.append(time.monotonic())
            if len(tried) <= refusals:
                raise RuntimeError("storage lock held by another writer")
        return real_write(symbol, df, **kw)

    lib.write = refusing_write
    return tried, real_write


async def test_roster_registration_retries_a_refused_write_until_it_is_read_back(
    store: Store,
) -> None:
    from core.lease import LEASES
    from core.store import ROSTER

    lib = store._lib(LEASES)
    lib.write(ROSTER, pd.DataFrame({"writer": ["other"]}))  # we are not on it
    tried, real_write = _refusing_roster_writes(lib, refusals=1)
    try:
        registered = store._registry.register()
    finally:
        lib.write = real_write
    # Refused, paused, written again, and only then seen on the roster (a third look).
    assert registered
    assert len(tried) == 2 and tried[1] > tried[0]
    assert set(store._registry.roster()) == {"other", store.writer}


async def test_roster_registration_gives_up_after_its_attempts_and_says_so(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    from core.lease import LEASES
    from core.store import ROSTER

    lib = store._lib(LEASES)
    lib.write(ROSTER, pd.DataFrame({"writer": ["other"]}))
    tried, real_write = _refusing_roster_writes(lib, refusals=10)
    try:
        registered = store._registry.register(attempts=3)
    finally:
        lib.write = real_write
    assert not registered
    assert len(tried) == 3  # one write per attempt, no more
    assert store._registry.roster() == ["other"]  # the other console's entry kept
    assert "not registered yet; again at the next renewal" in caplog.text
