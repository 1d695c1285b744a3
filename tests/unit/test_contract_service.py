"""core.contracts.ContractService: one request per contract, shared by concurrent callers."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import pytest
from ib_async import Contract, ContractDescription, ContractDetails, RequestError, Stock

from core.contracts import (
    AmbiguousContract,
    ContractCache,
    ContractError,
    ContractNotFound,
    ContractService,
    create_stock_contract,
)
from helpers import wait_for


def aapl_details(exchange: str = "NASDAQ") -> ContractDetails:
    return ContractDetails(
        contract=Stock(
            "AAPL", exchange, "USD", conId=265598, primaryExchange="NASDAQ", localSymbol="AAPL"
        ),
        minTick=0.01,
        longName="APPLE INC",
    )


@dataclass
class FakeIB:
    """Answers contract-details requests after a short delay, counting them."""

    answers: dict[str, list[ContractDetails]] = field(default_factory=dict)
    delay: float = 0.01
    calls: list[Contract] = field(default_factory=list)
    error: Exception | None = None
    hang: bool = False
    searches: list[str] = field(default_factory=list)

    async def reqContractDetailsAsync(self, contract: Contract) -> list[ContractDetails]:
        self.calls.append(contract)
        if self.hang:
            await asyncio.sleep(3600)
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        key = str(contract.conId) if contract.conId else contract.symbol
        return list(self.answers.get(key, []))

    async def reqMatchingSymbolsAsync(self, pattern: str) -> list[ContractDescription] | None:
        self.searches.append(pattern)
        if pattern == "timeout":
            return None
        return [ContractDescription(contract=aapl_details().contract)]


@pytest.fixture
def ib() -> FakeIB:
    return FakeIB(answers={"AAPL": [aapl_details()], "265598": [aapl_details()]})


@pytest.mark.asyncio
async def test_details_when_many_concurrent_callers_then_one_request(ib: FakeIB) -> None:
    service = ContractService(ib)

    results = await asyncio.gather(
        *[service.details(create_stock_contract("AAPL")) for _ in range(50)]
    )

    assert len(ib.calls) == 1
    assert service.requests_sent == 1
    assert all(r is results[0] for r in results)
    assert results[0].longName == "APPLE INC"


@pytest.mark.asyncio
async def test_details_when_asked_again_later_then_answered_from_cache(ib: FakeIB) -> None:
    service = ContractService(ib)
    await service.details(create_stock_contract("AAPL"))

    again = await service.details(create_stock_contract("AAPL"))
    by_con_id = await service.details(Contract(conId=265598, exchange="SMART"))

    assert len(ib.calls) == 1
    assert again.contract is not None and again.contract.conId == 265598
    assert by_con_id is again
    assert service.by_con_id(265598) is again
    assert len(service) == 1


@pytest.mark.asyncio
async def test_qualify_when_smart_request_then_qualified_copy_keeps_smart(ib: FakeIB) -> None:
    service = ContractService(ib)
    request = create_stock_contract("AAPL")

    qualified = await service.qualify(request)

    assert qualified.conId == 265598
    assert qualified.exchange == "SMART"
    assert qualified.primaryExchange == "NASDAQ"
    assert isinstance(qualified, Stock)
    assert request.conId == 0  # the argument is not modified


@pytest.mark.asyncio
async def test_details_when_unknown_then_contract_not_found_names_symbol_and_cached(
    ib: FakeIB,
) -> None:
    service = ContractService(ib)

    with pytest.raises(ContractNotFound, match="unknown contract 'NOPE'"):
        await service.details(create_stock_contract("NOPE"))
    with pytest.raises(ContractNotFound):
        await service.qualify(create_stock_contract("NOPE"))

    assert len(ib.calls) == 1


@pytest.mark.asyncio
async def test_details_when_ib_error_200_then_contract_not_found(ib: FakeIB) -> None:
    ib.error = RequestError(7, 200, "No security definition has been found for the request")
    service = ContractService(ib)

    with pytest.raises(ContractNotFound, match="ZZZZ"):
        await service.details(create_stock_contract("ZZZZ"))


@pytest.mark.asyncio
async def test_details_when_other_ib_error_then_contract_error_not_cached(ib: FakeIB) -> None:
    ib.error = RequestError(7, 321, "Error validating request")
    service = ContractService(ib)
    with pytest.raises(ContractError, match="error 321"):
        await service.details(create_stock_contract("AAPL"))
    ib.error = None

    details = await service.details(create_stock_contract("AAPL"))

    assert details.longName == "APPLE INC"
    assert len(ib.calls) == 2


@pytest.mark.asyncio
async def test_details_when_connection_lost_then_error_propagates_and_retry_asks_again(
    ib: FakeIB,
) -> None:
    ib.error = ConnectionError("Socket disconnect")
    service = ContractService(ib)
    with pytest.raises(ConnectionError):
        await service.details(create_stock_contract("AAPL"))
    ib.error = None

    await service.details(create_stock_contract("AAPL"))

    assert len(ib.calls) == 2


@pytest.mark.asyncio
async def test_details_when_no_answer_then_timeout_error_names_contract(ib: FakeIB) -> None:
    ib.hang = True
    service = ContractService(ib, timeout=0.05)

    with pytest.raises(ContractError, match=r"no answer from IB within 0\.05 s .*'AAPL'"):
        await service.details(create_stock_contract("AAPL"))


@pytest.mark.asyncio
async def test_details_when_one_caller_cancelled_then_others_still_answered(ib: FakeIB) -> None:
    ib.delay = 0.05
    service = ContractService(ib)
    first = asyncio.ensure_future(service.details(create_stock_contract("AAPL")))
    second = asyncio.ensure_future(service.details(create_stock_contract("AAPL")))
    await wait_for(lambda: ib.calls, what="the one request sent for both")

    first.cancel()
    details = await second

    assert details.longName == "APPLE INC"
    assert len(ib.calls) == 1


@pytest.mark.asyncio
async def test_details_when_several_matches_then_ambiguous_lists_candidates(ib: FakeIB) -> None:
    ib.answers["AAPL"] = [aapl_details("NASDAQ"), aapl_details("MEXI")]
    ib.answers["AAPL"][1].contract.currency = "MXN"  # type: ignore[union-attr]
    ib.answers["AAPL"][1].contract.conId = 38708077  # type: ignore[union-attr]
    service = ContractService(ib)

    with pytest.raises(AmbiguousContract) as excinfo:
        await service.details(Contract(symbol="AAPL", exchange="SMART"))

    assert "38708077" in str(excinfo.value)
    assert len(excinfo.value.candidates) == 2


@pytest.mark.asyncio
async def test_forget_when_called_then_next_request_asks_again(ib: FakeIB) -> None:
    service = ContractService(ib)
    await service.details(create_stock_contract("AAPL"))

    service.forget(create_stock_contract("AAPL"))
    await service.details(create_stock_contract("AAPL"))

    assert len(ib.calls) == 2


@pytest.mark.asyncio
async def test_cached_when_not_asked_yet_then_none_and_after_then_details(ib: FakeIB) -> None:
    service = ContractService(ib)
    assert service.cached(create_stock_contract("AAPL")) is None

    await service.details(create_stock_contract("AAPL"))

    assert service.cached(create_stock_contract("AAPL")) is not None


@pytest.mark.asyncio
async def test_search_when_pattern_then_descriptions(ib: FakeIB) -> None:
    service = ContractCache(ib)

    found = await service.search(" aap ")
    timed_out = await service.search("timeout")

    assert ib.searches == ["aap", "timeout"]
    assert found[0].contract is not None and found[0].contract.symbol == "AAPL"
    assert timed_out == []


@pytest.mark.asyncio
async def test_search_when_empty_pattern_then_value_error(ib: FakeIB) -> None:
    with pytest.raises(ValueError, match="pattern: must not be empty"):
        await ContractService(ib).search("  ")


@pytest.mark.asyncio
async def test_an_unknown_contract_is_the_callers_answer_not_an_error_in_the_log(
    ib: FakeIB, caplog: pytest.LogCaptureFixture
) -> None:
    service = ContractService(ib)
    with caplog.at_level(logging.ERROR):
        with pytest.raises(ContractNotFound):
            await service.details(create_stock_contract("NOPE"))
        await asyncio.sleep(0)  # the request task's done-callbacks have run
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.asyncio
async def test_min_tick_is_known_once_the_details_are(ib: FakeIB) -> None:
    service = ContractService(ib)
    assert service.min_tick(265598) is None  # nothing asked yet: no guess
    await service.details(create_stock_contract("AAPL"))
    assert service.min_tick(265598) == 0.01
