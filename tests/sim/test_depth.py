"""Market depth (reqMktDepth, cancelMktDepth, reqMktDepthExchanges) through ib_async."""

from __future__ import annotations

import itertools

import pytest
from ib_async import Future, Stock, Ticker

from core.sim import SimGateway
from helpers import wait_for

AAPL = 265598


def _assert_sane_book(ticker: Ticker, gateway: SimGateway, con_id: int, rows: int) -> None:
    """Best first on both sides, one tick apart on the grid, level 0 = the quote."""
    tick = gateway.universe.by_con_id(con_id).min_tick  # type: ignore[union-attr]
    quote = gateway.market.quote(con_id)
    bids = [(lv.price, lv.size) for lv in ticker.domBids]
    asks = [(lv.price, lv.size) for lv in ticker.domAsks]
    assert len(bids) == len(asks) == rows
    assert bids[0] == (quote.bid, quote.bid_size)
    assert asks[0] == (quote.ask, quote.ask_size)
    assert bids[0][0] < asks[0][0]
    for side in (bids, asks):
        for price, size in side:
            assert size > 0
            assert abs(price / tick - round(price / tick)) < 1e-6, price
    assert all(round(a[0] - b[0], 6) == tick for a, b in itertools.pairwise(bids))
    assert all(round(b[0] - a[0], 6) == tick for a, b in itertools.pairwise(asks))


@pytest.mark.asyncio
async def test_depth_when_requested_then_five_levels_consistent_with_quote(ib, gateway):
    (aapl,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    gateway.set_price(AAPL, 200.0)
    ticker = ib.reqMktDepth(aapl, 5)
    await wait_for(lambda: len(ticker.domBids) == len(ticker.domAsks) == 5, what="book")
    _assert_sane_book(ticker, gateway, AAPL, 5)
    assert ticker.domBids[0].price == 199.99 and ticker.domAsks[0].price == 200.01


@pytest.mark.asyncio
async def test_depth_when_top_of_book_moves_then_book_follows(ib, gateway, sim):
    (aapl,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    gateway.set_price(AAPL, 200.0)
    ticker = ib.reqMktDepth(aapl, 5)
    await wait_for(lambda: len(ticker.domAsks) == 5, what="book")
    gateway.set_price(AAPL, 205.0)
    await wait_for(lambda: ticker.domBids[0].price == 204.99, what="book moved up")
    _assert_sane_book(ticker, gateway, AAPL, 5)
    for _ in range(30):  # the random walk: the book stays sane at every step
        gateway.step_market()
        await sim.settle(ib)
        _assert_sane_book(ticker, gateway, AAPL, 5)


@pytest.mark.asyncio
async def test_depth_when_future_ten_rows_then_updatemktdepth_on_quarter_ticks(ib, gateway):
    es_inst = gateway.universe.find(symbol="ES")[0]
    (es,) = await ib.qualifyContractsAsync(Future("ES", es_inst.last_trade_date, "CME"))
    ticker = ib.reqMktDepth(es, 10)
    await wait_for(lambda: len(ticker.domBids) == len(ticker.domAsks) == 10, what="book")
    _assert_sane_book(ticker, gateway, es.conId, 10)
    assert {t.marketMaker for t in ticker.domTicks} == {""}  # plain updateMktDepth


@pytest.mark.asyncio
async def test_depth_when_more_rows_than_served_then_ten(ib, gateway, sim):
    (aapl,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    ticker = ib.reqMktDepth(aapl, 50)
    await wait_for(lambda: len(ticker.domAsks) == 10, what="book")
    await sim.settle(ib)
    assert len(ticker.domBids) == 10


@pytest.mark.asyncio
async def test_depth_when_smart_then_l2_with_exchange(ib, gateway):
    (aapl,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    ticker = ib.reqMktDepth(aapl, 5, isSmartDepth=True)
    await wait_for(lambda: len(ticker.domAsks) == 5, what="book")
    assert {lv.marketMaker for lv in ticker.domBids + ticker.domAsks} == {"NASDAQ"}


@pytest.mark.asyncio
async def test_depth_when_cancelled_then_no_more_updates(ib, gateway, sim):
    (aapl,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    ticker = ib.reqMktDepth(aapl, 5)
    await wait_for(lambda: len(ticker.domAsks) == 5, what="book")
    ib.cancelMktDepth(aapl)
    await sim.settle(ib)
    seen = len(ticker.domTicks)
    session = next(iter(gateway._sessions))
    assert session.depth == {}
    gateway.set_price(AAPL, 250.0)
    await sim.settle(ib)
    assert len(ticker.domTicks) == seen
    assert ticker.domBids == [] and ticker.domAsks == []


@pytest.mark.asyncio
async def test_depth_exchanges_when_requested_then_listed(ib):
    rows = await ib.reqMktDepthExchangesAsync()
    pairs = {(r.exchange, r.secType) for r in rows}
    assert {("NASDAQ", "STK"), ("CME", "FUT"), ("IDEALPRO", "CASH")} <= pairs
    assert all(r.serviceDataType in ("Deep", "Deep2") for r in rows)


@pytest.mark.asyncio
async def test_depth_when_no_live_data_then_354(sim, ib_log_guard):
    ib_log_guard.expect("Error 354")
    gateway = await sim.gateway(live_data=False)
    ib = await sim.connect(gateway)
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, c: errors.append(code)
    (aapl,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    ticker = ib.reqMktDepth(aapl, 5)
    await sim.settle(ib)
    assert errors == [354] and ticker.domBids == []


@pytest.mark.asyncio
async def test_depth_when_over_the_limit_then_309_until_one_is_cancelled(
    ib, gateway, sim, ib_log_guard
):
    ib_log_guard.expect("Error 309")
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, msg, c: errors.append((req_id, code))
    contracts = await ib.qualifyContractsAsync(
        *(Stock(s, "SMART", "USD") for s in ("AAPL", "MSFT", "SPY", "NVDA"))
    )
    tickers = [ib.reqMktDepth(c, 5) for c in contracts]
    await sim.settle(ib)
    assert [len(t.domBids) for t in tickers] == [5, 5, 5, 0]
    assert [code for _, code in errors] == [309]
    ib.cancelMktDepth(contracts[0])
    fourth = ib.reqMktDepth(contracts[3], 5)
    await wait_for(lambda: len(fourth.domBids) == 5, what="a book after a cancel")
