"""Contracts, quotes and historical bars through ib_async."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from zoneinfo import ZoneInfo

import pytest
from ib_async import Contract, Forex, Future, Stock
from ib_async.objects import BarData

from core.sim import protocol as p
from helpers import wait_for


@pytest.mark.asyncio
async def test_contract_details_when_aapl_es_eurusd_then_full_details(ib, gateway):
    (aapl,) = await ib.reqContractDetailsAsync(Stock("AAPL", "SMART", "USD"))
    assert aapl.contract.conId == 265598
    assert aapl.contract.primaryExchange == "NASDAQ"
    assert aapl.minTick == 0.01
    assert aapl.timeZoneId == "US/Eastern"
    assert aapl.tradingHours and aapl.liquidHours
    assert aapl.longName
    assert aapl.minSize == 1 and aapl.sizeIncrement == 1

    (es,) = await ib.reqContractDetailsAsync(Future("ES", "202612", exchange="CME"))
    assert es.contract.multiplier == "50"
    assert es.minTick == 0.25
    assert es.contract.lastTradeDateOrContractMonth

    (eur,) = await ib.reqContractDetailsAsync(Forex("EURUSD"))
    assert eur.contract.secType == "CASH"
    assert eur.contract.exchange == "IDEALPRO"

    qualified = await ib.qualifyContractsAsync(Stock("MSFT", "SMART", "USD"))
    assert qualified[0].conId > 0


@pytest.mark.asyncio
async def test_contract_details_when_unknown_then_error_200(ib, ib_log_guard):
    ib_log_guard.expect("Error 200")
    ib_log_guard.expect("Unknown contract")
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, msg, c: errors.append((req_id, code))
    assert await ib.reqContractDetailsAsync(Stock("NOSUCH", "SMART", "USD")) == []
    assert await ib.qualifyContractsAsync(Stock("NOSUCH2", "SMART", "USD")) == [None]
    assert [code for _, code in errors] == [200, 200]
    assert all(req_id >= 0 for req_id, _ in errors)


@pytest.mark.asyncio
async def test_contract_details_when_future_without_expiry_then_every_listed_month(
    ib, gateway, ib_log_guard
):
    months = await ib.reqContractDetailsAsync(Future("ES", exchange="CME"))
    listed = sorted(
        i.local_symbol for i in gateway.universe if i.symbol == "ES" and i.sec_type == "FUT"
    )
    assert len(listed) >= 2
    assert sorted(d.contract.localSymbol for d in months) == listed
    expiries = [d.contract.lastTradeDateOrContractMonth for d in months]
    assert expiries == sorted(expiries)  # front month first
    assert len({d.contract.conId for d in months}) == len(months)

    # With an expiry (month or full date): that one contract.
    front = months[0].contract
    for expiry in (front.lastTradeDateOrContractMonth[:6], front.lastTradeDateOrContractMonth):
        (one,) = await ib.reqContractDetailsAsync(Future("ES", expiry, "CME"))
        assert one.contract.conId == front.conId

    # Qualifying the bare root is ambiguous, as with TWS; streaming it is error 200.
    ib_log_guard.expect("Ambiguous contract")
    ib_log_guard.expect("Error 200")
    assert await ib.qualifyContractsAsync(Future("ES", exchange="CME")) == [None]
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, msg, c: errors.append((req_id, code, msg))
    req_id = ib.client.getReqId()  # ib.reqMktData needs a conId, so ask as a raw client
    ib.client.reqMktData(req_id, Future("ES", exchange="CME"), "", False, False, [])
    await wait_for(lambda: bool(errors), what="ambiguous 200")
    assert errors == [(req_id, 200, "The contract description specified for ES is ambiguous.")]


@pytest.mark.asyncio
async def test_matching_symbols_when_prefix_then_descriptions(ib):
    found = await ib.reqMatchingSymbolsAsync("AA")
    assert found
    assert found[0].contract.symbol == "AAPL"
    assert "OPT" in found[0].derivativeSecTypes


@pytest.mark.asyncio
async def test_market_data_when_subscribed_then_streams_and_cancel_stops(ib, gateway, sim):
    contract = (await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD")))[0]
    ticker = ib.reqMktData(contract)
    await wait_for(lambda: not math.isnan(ticker.bid), what="first quote")
    assert ticker.bid < ticker.ask
    assert ticker.bidSize > 0 and ticker.askSize > 0
    assert ticker.last > 0 and ticker.close > 0
    assert ticker.minTick == 0.01
    gateway.set_price("AAPL", 250.0)
    await wait_for(lambda: ticker.last == 250.0, what="pushed price")
    assert ticker.bid == 249.99 and ticker.ask == 250.01
    assert ticker.lastTimestamp is not None
    updates = 0

    def count(_t: object) -> None:
        nonlocal updates
        updates += 1

    ticker.updateEvent += count
    gateway.step_market(20)
    await wait_for(lambda: updates > 0, what="walk ticks")
    ib.cancelMktData(contract)
    await sim.settle(ib)
    updates = 0
    gateway.step_market(20)
    gateway.set_price("AAPL", 260.0)
    await sim.settle(ib)
    assert updates == 0
    assert ticker.last != 260.0


@pytest.mark.asyncio
async def test_market_data_when_snapshot_then_one_set_and_end(ib):
    (contract,) = await ib.qualifyContractsAsync(Forex("EURUSD"))
    (ticker,) = await asyncio.wait_for(ib.reqTickersAsync(contract), 5)
    assert ticker.bid > 0 and ticker.ask > ticker.bid
    assert math.isnan(ticker.last)  # IDEALPRO quotes carry no trades


async def _stream(ib, sim, gateway, data_type: int, symbol: str = "MSFT"):
    """reqMarketDataType(data_type), then a streaming reqMktData: the settled ticker and
    every tick type it received."""
    ib.reqMarketDataType(data_type)
    contract = (await ib.qualifyContractsAsync(Stock(symbol, "SMART", "USD")))[0]
    ticker = ib.reqMktData(contract)
    types: set[int] = set()
    ticker.updateEvent += lambda t: types.update(tick.tickType for tick in t.ticks)
    await sim.settle(ib)
    gateway.step_market(5)
    await sim.settle(ib)
    return ticker, types


LIVE_TICKS = {1, 2, 4, 6, 7, 8, 9, 14}
DELAYED_TICKS = {66, 67, 68, 72, 73, 74, 75, 76}


@pytest.mark.parametrize("data_type", [1, 2, 3, 4])
@pytest.mark.asyncio
async def test_market_data_type_when_live_data_then_type_1_with_live_ticks(
    ib, sim, gateway, data_type
):
    """TWS since 970: live data, where available, is sent (and announced) as type 1."""
    ticker, types = await _stream(ib, sim, gateway, data_type)
    assert ticker.marketDataType == 1
    assert types & {1, 2} and types <= LIVE_TICKS
    assert ticker.bid > 0 and ticker.ask > ticker.bid


@pytest.mark.parametrize(("data_type", "served"), [(1, 1), (2, 2), (3, 1), (4, 2)])
@pytest.mark.asyncio
async def test_market_data_type_when_market_frozen_then_frozen_only_if_asked(
    ib, sim, gateway, data_type, served
):
    gateway.freeze_market_data(True)
    ticker, types = await _stream(ib, sim, gateway, data_type)
    assert ticker.marketDataType == served
    assert types <= LIVE_TICKS
    assert ticker.bid > 0


@pytest.mark.parametrize(
    ("data_type", "frozen", "served"), [(3, False, 3), (4, False, 3), (4, True, 4)]
)
@pytest.mark.asyncio
async def test_market_data_type_when_no_live_data_then_delayed_tick_types(
    sim, data_type, frozen, served
):
    gateway = await sim.gateway(live_data=False)
    ib = await sim.connect(gateway)
    gateway.freeze_market_data(frozen)
    ticker, types = await _stream(ib, sim, gateway, data_type, "AAPL")
    assert ticker.marketDataType == served
    assert types & {66, 67} and types <= DELAYED_TICKS
    quote = gateway.market.quote(265598)
    assert (ticker.bid, ticker.ask) == (quote.bid, quote.ask)  # ib_async maps 66/67
    assert ticker.bidSize == quote.bid_size and ticker.volume == quote.volume


@pytest.mark.parametrize("data_type", [1, 2])
@pytest.mark.asyncio
async def test_market_data_type_when_no_live_data_and_live_asked_then_354(
    sim, ib_log_guard, data_type
):
    ib_log_guard.expect("Error 354")
    gateway = await sim.gateway(live_data=False)
    ib = await sim.connect(gateway)
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, c: errors.append(code)
    ticker, types = await _stream(ib, sim, gateway, data_type)
    assert errors == [354]
    assert types == set() and math.isnan(ticker.bid)


@pytest.mark.asyncio
async def test_market_data_type_when_market_freezes_then_frozen_subscription_announced(
    ib, sim, gateway
):
    ticker, _ = await _stream(ib, sim, gateway, 2)
    assert ticker.marketDataType == 1
    gateway.freeze_market_data(True)
    await sim.settle(ib)
    assert ticker.marketDataType == 2
    gateway.freeze_market_data(False)
    await sim.settle(ib)
    assert ticker.marketDataType == 1


@pytest.mark.asyncio
async def test_market_data_when_unknown_then_error_200(ib, ib_log_guard):
    ib_log_guard.expect("Error 200")
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, c: errors.append(code)
    ib.reqMktData(Contract(conId=999_999_999, symbol="NOSUCH", secType="STK"))
    await wait_for(lambda: errors == [200], what="error 200")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("bar_size", "duration", "format_date"),
    [("1 min", "3600 S", 1), ("5 mins", "1 D", 2), ("1 hour", "2 D", 1), ("1 day", "1 M", 1)],
)
async def test_historical_bars_when_requested_then_bar_data(
    ib, gateway, bar_size, duration, format_date
):
    contract = Stock("AAPL", "SMART", "USD")
    end = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)  # a Wednesday afternoon
    bars = await ib.reqHistoricalDataAsync(
        contract, end, duration, bar_size, "TRADES", useRTH=False, formatDate=format_date
    )
    assert bars
    assert all(isinstance(b, BarData) for b in bars)
    assert all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) for b in bars)
    dates = [b.date for b in bars]
    assert dates == sorted(dates)
    if bar_size == "1 day":
        assert isinstance(dates[0], dt.date) and not isinstance(dates[0], dt.datetime)
    else:
        assert isinstance(dates[0], dt.datetime) and dates[-1] <= end


@pytest.mark.parametrize(("symbol", "zone"), [("AAPL", "US/Eastern"), ("ES", "US/Central")])
@pytest.mark.asyncio
async def test_historical_bars_when_format_1_then_exchange_zone_and_same_instants_as_2(
    ib, gateway, symbol, zone
):
    inst = gateway.universe.find(symbol=symbol)[0]
    contract = Contract(conId=inst.con_id, exchange=inst.exchange)
    end = dt.datetime(2026, 11, 25, 18, 0, tzinfo=dt.UTC)
    zoned, epoch = [
        await ib.reqHistoricalDataAsync(
            contract, end, "3600 S", "5 mins", "TRADES", useRTH=False, formatDate=fd
        )
        for fd in (1, 2)
    ]
    assert zoned and len(zoned) == len(epoch)
    assert {b.date.tzinfo for b in zoned} == {ZoneInfo(zone)}
    assert {b.date.tzinfo for b in epoch} == {dt.UTC}
    assert [b.date for b in zoned] == [b.date for b in epoch]  # the same instants
    assert zoned[-1].date.astimezone(dt.UTC) <= end


def test_bar_time_formats_are_tws_spelling() -> None:
    ts = int(dt.datetime(2026, 11, 25, 15, 30, tzinfo=dt.UTC).timestamp())
    assert p.format_bar_time(ts, 1, False, "US/Eastern") == "20261125 10:30:00 US/Eastern"
    assert p.format_bar_time(ts, 1, False, "US/Central") == "20261125 09:30:00 US/Central"
    assert p.format_bar_time(ts, 2, False, "US/Eastern") == str(ts)
    # A daily bar is the session's date where the exchange is, in either format.
    late = int(dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC).timestamp())
    assert p.format_bar_time(late, 1, True, "US/Eastern") == "20261125"
    assert p.format_bar_time(late, 2, True, "US/Eastern") == "20261125"


@pytest.mark.asyncio
async def test_historical_bars_when_bad_bar_size_then_error_162(ib, ib_log_guard):
    ib_log_guard.expect("Error 162")
    bars = await ib.reqHistoricalDataAsync(
        Stock("AAPL", "SMART", "USD"), "", "1 D", "7 fortnights", "TRADES", useRTH=False
    )
    assert list(bars) == []


@pytest.mark.asyncio
async def test_historical_bars_when_keep_up_to_date_then_updates(sim):
    # The gateway's clock is a Wednesday morning in New York, so the last hour has bars
    # whatever the wall clock says (the test used to be skipped outside market hours).
    now = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC).timestamp()
    gateway = await sim.gateway(clock=lambda: now)
    ib = await sim.connect(gateway, 1)
    contract = (await ib.qualifyContractsAsync(Contract(conId=265598)))[0]
    bars = await ib.reqHistoricalDataAsync(
        contract, "", "3600 S", "1 min", "TRADES", useRTH=False, keepUpToDate=True
    )
    assert bars
    seen: list[bool] = []
    bars.updateEvent += lambda b, has_new: seen.append(has_new)
    gateway.set_price(265598, bars[-1].close + 1.0)
    await wait_for(lambda: bool(seen), what="bar update")
    ib.cancelHistoricalData(bars)
