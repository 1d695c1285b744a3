"""The simulated gateway's instruments: what reqContractDetails and reqMatchingSymbols know.

The default universe holds two dozen liquid US stocks and ETFs, the E-mini S&P 500
future (front and next quarterly contract) and EUR.USD on IDEALPRO. Contract ids are
IB's real conIds where we know them (AAPL 265598, MSFT 272093, SPY 756733, EUR.USD
12087792, ...); futures get stable made-up ids derived from their contract month, so
a saved state still finds its ES position after the front month was recomputed.

:meth:`Universe.synthetic` (or ``Universe.default(extra_symbols=n)``) makes an opt-in
universe of ``n`` made-up stocks for benchmarks and load tests: symbols ``XAAA``,
``XAAB``, ... with con_ids from :data:`SYNTHETIC_CON_ID_BASE`, prices and volatilities
spread deterministically, so the same ``n`` always gives the same instruments.

Trading hours are written in IB's format (``20261125:0400-20261125:2000;20261126:CLOSED``)
for the seven days starting at ``today``; exchange holidays are not modelled (every
weekday is a session). ``Universe.is_open`` answers the same question for any instant,
from the same rules, so the engine does not parse those strings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from core.sim.model import Instrument

__all__ = [
    "SYNTHETIC_CON_ID_BASE",
    "Universe",
    "es_front_months",
    "synthetic_symbol",
    "third_friday",
]

_EASTERN = "US/Eastern"
_CENTRAL = "US/Central"
_HOURS_DAYS = 7  # how many days the trading-hours strings cover

# Futures month codes, as in local symbols like "ESZ6".
_MONTH_CODES = {3: "H", 6: "M", 9: "U", 12: "Z"}

# Exchange aliases a client may send for the routing exchange of our futures.
_EXCHANGE_ALIASES = {"GLOBEX": "CME"}


@dataclass(frozen=True, slots=True)
class _StockSpec:
    symbol: str
    con_id: int
    primary: str
    long_name: str
    industry: str
    category: str
    price: float
    vol: float  # daily volatility
    adv: float  # average daily volume, shares


# conIds marked "real" are IB's as far as we know; the others are stable made-up ids.
_STOCKS: tuple[_StockSpec, ...] = (
    _StockSpec(
        "AAPL", 265598, "NASDAQ", "APPLE INC", "Technology", "Computers", 230.0, 0.017, 50e6
    ),
    _StockSpec(
        "MSFT", 272093, "NASDAQ", "MICROSOFT CORP", "Technology", "Software", 420.0, 0.015, 20e6
    ),
    _StockSpec(
        "AMZN", 3691937, "NASDAQ", "AMAZON.COM INC", "Communications", "Internet", 200.0, 0.02, 40e6
    ),
    _StockSpec(
        "GOOGL",
        208813719,
        "NASDAQ",
        "ALPHABET INC-CL A",
        "Communications",
        "Internet",
        170.0,
        0.018,
        25e6,
    ),
    _StockSpec(
        "META",
        107113386,
        "NASDAQ",
        "META PLATFORMS INC-CLASS A",
        "Communications",
        "Internet",
        580.0,
        0.022,
        12e6,
    ),
    _StockSpec(
        "NVDA", 4815747, "NASDAQ", "NVIDIA CORP", "Technology", "Semiconductors", 130.0, 0.03, 250e6
    ),
    _StockSpec(
        "TSLA",
        76792991,
        "NASDAQ",
        "TESLA INC",
        "Consumer, Cyclical",
        "Auto Manufacturers",
        250.0,
        0.035,
        90e6,
    ),
    _StockSpec(
        "NFLX", 15124833, "NASDAQ", "NETFLIX INC", "Communications", "Internet", 700.0, 0.022, 4e6
    ),
    _StockSpec(
        "INTC", 270639, "NASDAQ", "INTEL CORP", "Technology", "Semiconductors", 22.0, 0.028, 60e6
    ),
    _StockSpec(
        "AMD",
        4391,
        "NASDAQ",
        "ADVANCED MICRO DEVICES",
        "Technology",
        "Semiconductors",
        150.0,
        0.03,
        45e6,
    ),
    _StockSpec(
        "CSCO",
        268084,
        "NASDAQ",
        "CISCO SYSTEMS INC",
        "Communications",
        "Telecommunications",
        57.0,
        0.013,
        18e6,
    ),
    _StockSpec(
        "JPM", 1520593, "NYSE", "JPMORGAN CHASE & CO", "Financial", "Banks", 220.0, 0.014, 9e6
    ),
    _StockSpec(
        "BAC", 10098, "NYSE", "BANK OF AMERICA CORP", "Financial", "Banks", 42.0, 0.016, 35e6
    ),
    _StockSpec(
        "V",
        49462172,
        "NYSE",
        "VISA INC-CLASS A SHARES",
        "Financial",
        "Diversified Finan Serv",
        290.0,
        0.012,
        6e6,
    ),
    _StockSpec(
        "JNJ",
        8719,
        "NYSE",
        "JOHNSON & JOHNSON",
        "Consumer, Non-cyclical",
        "Pharmaceuticals",
        155.0,
        0.01,
        7e6,
    ),
    _StockSpec("XOM", 13977, "NYSE", "EXXON MOBIL CORP", "Energy", "Oil&Gas", 115.0, 0.014, 15e6),
    _StockSpec(
        "WMT", 13824, "NYSE", "WALMART INC", "Consumer, Non-cyclical", "Retail", 80.0, 0.011, 15e6
    ),
    _StockSpec(
        "PG",
        900001,
        "NYSE",
        "PROCTER & GAMBLE CO/THE",
        "Consumer, Non-cyclical",
        "Cosmetics/Personal Care",
        165.0,
        0.01,
        6e6,
    ),
    _StockSpec(
        "KO",
        8894,
        "NYSE",
        "COCA-COLA CO/THE",
        "Consumer, Non-cyclical",
        "Beverages",
        62.0,
        0.009,
        13e6,
    ),
    _StockSpec(
        "DIS", 6459, "NYSE", "WALT DISNEY CO/THE", "Communications", "Media", 95.0, 0.016, 9e6
    ),
    _StockSpec(
        "IBM",
        8314,
        "NYSE",
        "INTL BUSINESS MACHINES CORP",
        "Technology",
        "Computers",
        220.0,
        0.013,
        4e6,
    ),
    _StockSpec(
        "SPY", 756733, "ARCA", "SPDR S&P 500 ETF TRUST", "Funds", "Equity Fund", 590.0, 0.011, 45e6
    ),
    _StockSpec(
        "QQQ",
        320227571,
        "NASDAQ",
        "INVESCO QQQ TRUST SERIES 1",
        "Funds",
        "Equity Fund",
        510.0,
        0.014,
        35e6,
    ),
    _StockSpec(
        "IWM",
        9579970,
        "ARCA",
        "ISHARES RUSSELL 2000 ETF",
        "Funds",
        "Equity Fund",
        225.0,
        0.015,
        30e6,
    ),
)

_ES_PRICE = 5900.0
_ES_VOL = 0.011
_ES_ADV = 1_500_000.0
_EURUSD_CON_ID = 12087792
_EURUSD_PRICE = 1.08
_EURUSD_VOL = 0.005
_EURUSD_ADV = 5e9  # units of EUR a day on IDEALPRO, roughly


#: con_id of the first synthetic stock; far from IB's real ids and from our ES ids (620M).
SYNTHETIC_CON_ID_BASE = 900_000_000
_SYNTHETIC_MAX = 26**3  # XAAA..XZZZ
_SYNTHETIC_PRIMARIES = ("NASDAQ", "NYSE", "ARCA")
_SYNTHETIC_INDUSTRIES = (
    ("Technology", "Software"),
    ("Financial", "Banks"),
    ("Consumer, Non-cyclical", "Pharmaceuticals"),
    ("Energy", "Oil&Gas"),
    ("Industrial", "Machinery-Diversified"),
)


def synthetic_symbol(i: int) -> str:
    """The ``i``-th synthetic symbol: ``XAAA``, ``XAAB``, ..., ``XZZZ`` (0 <= i < 17,576)."""
    if not 0 <= i < _SYNTHETIC_MAX:
        raise ValueError(f"synthetic symbol index {i} outside 0..{_SYNTHETIC_MAX - 1}")
    letters = []
    for _ in range(3):
        i, r = divmod(i, 26)
        letters.append(chr(ord("A") + r))
    return "X" + "".join(reversed(letters))


def _synthetic_spec(i: int) -> _StockSpec:
    # Deterministic spreads without a random generator: prices from about 5 to 800
    # (log-spaced by a golden-ratio sequence), daily volatility 1%..4%, ADV 0.5M..20M.
    frac = (i * 0.6180339887498949) % 1.0
    price = round(5.0 * 160.0**frac, 2)
    vol = 0.01 + 0.03 * ((i * 0.7548776662466927) % 1.0)
    adv = 0.5e6 * 40.0 ** ((i * 0.5698402909980532) % 1.0)
    industry, category = _SYNTHETIC_INDUSTRIES[i % len(_SYNTHETIC_INDUSTRIES)]
    symbol = synthetic_symbol(i)
    return _StockSpec(
        symbol,
        SYNTHETIC_CON_ID_BASE + i,
        _SYNTHETIC_PRIMARIES[i % len(_SYNTHETIC_PRIMARIES)],
        f"SYNTHETIC {symbol} CORP",
        industry,
        category,
        price,
        round(vol, 4),
        round(adv, -3),
    )


def third_friday(year: int, month: int) -> dt.date:
    """The third Friday of a month: the last trading day of quarterly equity index futures."""
    first = dt.date(year, month, 1)
    # weekday(): Monday 0 ... Friday 4
    first_friday = first + dt.timedelta(days=(4 - first.weekday()) % 7)
    return first_friday + dt.timedelta(days=14)


def es_front_months(today: dt.date, count: int = 2) -> list[tuple[int, int]]:
    """The next ``count`` quarterly (year, month) pairs whose last trading day is not past."""
    out: list[tuple[int, int]] = []
    year, month = today.year, today.month
    # Start at the quarter month of this quarter, then walk forward.
    month = ((month - 1) // 3) * 3 + 3
    while len(out) < count:
        if third_friday(year, month) >= today:
            out.append((year, month))
        month += 3
        if month > 12:
            month -= 12
            year += 1
    return out


def _es_con_id(year: int, month: int) -> int:
    # Stable per contract month, so a saved ES position keeps its contract across restarts.
    return 620_000_000 + (year % 100) * 100 + month


# --- trading sessions ------------------------------------------------------------------

# A schedule: for a trade date, the (start, end) local datetimes of its session, or None.
_Session = tuple[dt.datetime, dt.datetime] | None
_Rule = Callable[[dt.date, bool], _Session]


def _stock_session(day: dt.date, liquid: bool) -> _Session:
    if day.weekday() >= 5:
        return None
    if liquid:
        return (dt.datetime.combine(day, dt.time(9, 30)), dt.datetime.combine(day, dt.time(16, 0)))
    return (dt.datetime.combine(day, dt.time(4, 0)), dt.datetime.combine(day, dt.time(20, 0)))


def _globex_session(day: dt.date, liquid: bool) -> _Session:
    # CME Globex: the session of trade date T runs from 17:00 CT on T-1 to 16:00 CT on T,
    # Monday to Friday (Sunday evening opens Monday's session).
    if day.weekday() >= 5:
        return None
    if liquid:
        return (dt.datetime.combine(day, dt.time(8, 30)), dt.datetime.combine(day, dt.time(15, 0)))
    start = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(17, 0))
    return (start, dt.datetime.combine(day, dt.time(16, 0)))


def _fx_session(day: dt.date, liquid: bool) -> _Session:
    # IDEALPRO: Sunday 17:15 to Friday 17:00 ET, a short break each day at 17:00-17:15.
    del liquid  # forex has no separate regular hours
    if day.weekday() >= 5:
        return None
    start = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(17, 15))
    return (start, dt.datetime.combine(day, dt.time(17, 0)))


def _session_rule(instrument: Instrument) -> tuple[_Rule, str]:
    if instrument.sec_type == "FUT":
        return _globex_session, instrument.time_zone_id
    if instrument.sec_type == "CASH":
        return _fx_session, instrument.time_zone_id
    return _stock_session, instrument.time_zone_id


def _hours_string(rule: _Rule, today: dt.date, liquid: bool, days: int = _HOURS_DAYS) -> str:
    # IB lists each session under the dates it spans and "CLOSED" for a calendar day on
    # which no session runs (Globex's Sunday evening belongs to Monday's session).
    entries: list[tuple[dt.datetime, str]] = []
    covered: set[dt.date] = set()
    for i in range(days):
        session = rule(today + dt.timedelta(days=i), liquid)
        if session is not None:
            start, end = session
            entries.append((start, f"{start:%Y%m%d:%H%M}-{end:%Y%m%d:%H%M}"))
            covered.update((start.date(), end.date()))
    for i in range(days):
        day = today + dt.timedelta(days=i)
        if day not in covered:
            entries.append((dt.datetime.combine(day, dt.time()), f"{day:%Y%m%d}:CLOSED"))
    entries.sort()
    return ";".join(text for _, text in entries)


# --- building instruments -----------------------------------------------------------------


def _stock(spec: _StockSpec, today: dt.date) -> Instrument:
    return Instrument(
        con_id=spec.con_id,
        symbol=spec.symbol,
        sec_type="STK",
        exchange="SMART",
        primary_exchange=spec.primary,
        currency="USD",
        min_tick=0.01,
        multiplier=1.0,
        local_symbol=spec.symbol,
        trading_class="NMS" if spec.primary == "NASDAQ" else spec.symbol,
        long_name=spec.long_name,
        industry=spec.industry,
        category=spec.category,
        time_zone_id=_EASTERN,
        trading_hours=_hours_string(_stock_session, today, liquid=False),
        liquid_hours=_hours_string(_stock_session, today, liquid=True),
        initial_price=spec.price,
        daily_volatility=spec.vol,
        min_size=1.0,
        size_increment=1.0,
    )


def _es(year: int, month: int, today: dt.date) -> Instrument:
    return Instrument(
        con_id=_es_con_id(year, month),
        symbol="ES",
        sec_type="FUT",
        exchange="CME",
        primary_exchange="CME",
        currency="USD",
        min_tick=0.25,
        multiplier=50.0,
        local_symbol=f"ES{_MONTH_CODES[month]}{year % 10}",
        trading_class="ES",
        long_name="E-mini S&P 500",
        industry="Indices",
        category="Broad Range Equity Index",
        time_zone_id=_CENTRAL,
        trading_hours=_hours_string(_globex_session, today, liquid=False),
        liquid_hours=_hours_string(_globex_session, today, liquid=True),
        initial_price=_ES_PRICE,
        daily_volatility=_ES_VOL,
        last_trade_date=f"{third_friday(year, month):%Y%m%d}",
        min_size=1.0,
        size_increment=1.0,
    )


def _eurusd(today: dt.date) -> Instrument:
    return Instrument(
        con_id=_EURUSD_CON_ID,
        symbol="EUR",
        sec_type="CASH",
        exchange="IDEALPRO",
        primary_exchange="IDEALPRO",
        currency="USD",
        min_tick=0.00005,
        multiplier=1.0,
        local_symbol="EUR.USD",
        trading_class="EUR.USD",
        long_name="European Monetary Union Euro",
        industry="",
        category="",
        time_zone_id=_EASTERN,
        trading_hours=_hours_string(_fx_session, today, liquid=False),
        liquid_hours=_hours_string(_fx_session, today, liquid=True),
        initial_price=_EURUSD_PRICE,
        daily_volatility=_EURUSD_VOL,
        min_size=1.0,
        size_increment=1.0,
    )


class Universe:
    """The instruments the simulated gateway knows, with IB-like lookups.

    Instruments keep their insertion order; ``con_id`` is unique.
    """

    def __init__(
        self,
        instruments: Iterable[Instrument],
        daily_volumes: dict[int, float] | None = None,
    ) -> None:
        self._by_id: dict[int, Instrument] = {}
        for inst in instruments:
            if inst.con_id in self._by_id:
                raise ValueError(f"duplicate con_id {inst.con_id} ({inst.symbol})")
            self._by_id[inst.con_id] = inst
        self._daily_volumes = dict(daily_volumes or {})

    @classmethod
    def default(cls, today: dt.date | None = None, *, extra_symbols: int = 0) -> Universe:
        """Two dozen US stocks/ETFs, the front two ES futures and EUR.USD, dated from ``today``.

        ``extra_symbols`` appends that many synthetic stocks (see :meth:`synthetic`).
        """
        today = today or dt.date.today()
        instruments = [_stock(spec, today) for spec in _STOCKS]
        volumes = {spec.con_id: spec.adv for spec in _STOCKS}
        for year, month in es_front_months(today, 2):
            es = _es(year, month, today)
            instruments.append(es)
            volumes[es.con_id] = _ES_ADV
        instruments.append(_eurusd(today))
        volumes[_EURUSD_CON_ID] = _EURUSD_ADV
        extra = cls.synthetic(extra_symbols, today) if extra_symbols else None
        if extra is not None:
            instruments.extend(extra)
            volumes.update(extra._daily_volumes)
        return cls(instruments, volumes)

    @classmethod
    def synthetic(cls, n: int, today: dt.date | None = None) -> Universe:
        """``n`` made-up US stocks (``XAAA``, ``XAAB``, ...), for benchmarks and load tests.

        Opt-in only: the default universe never contains them. The same ``n`` gives the
        same symbols, con_ids (from :data:`SYNTHETIC_CON_ID_BASE`), prices (about 5 to
        800), volatilities and volumes; a larger ``n`` extends a smaller one.
        """
        if not 0 <= n <= _SYNTHETIC_MAX:
            raise ValueError(f"n must be within 0..{_SYNTHETIC_MAX}, got {n}")
        today = today or dt.date.today()
        specs = [_synthetic_spec(i) for i in range(n)]
        return cls([_stock(spec, today) for spec in specs], {s.con_id: s.adv for s in specs})

    def by_con_id(self, con_id: int) -> Instrument | None:
        """The instrument with this contract id, or None."""
        return self._by_id.get(con_id)

    def daily_volume(self, con_id: int) -> float:
        """Typical daily volume (shares, contracts or units) of an instrument; for bars."""
        vol = self._daily_volumes.get(con_id)
        if vol:
            return vol
        inst = self._by_id.get(con_id)
        if inst is None:
            return 0.0
        # A plausible default for instruments someone added without a figure.
        return 1_000_000.0 if inst.sec_type == "STK" else 100_000.0

    def find(
        self,
        *,
        con_id: int = 0,
        symbol: str = "",
        sec_type: str = "",
        exchange: str = "",
        currency: str = "",
        last_trade_date: str = "",
        local_symbol: str = "",
    ) -> list[Instrument]:
        """Instruments matching a contract description, as reqContractDetails does.

        Empty strings and a zero ``con_id`` are wildcards. ``exchange`` matches the routing
        exchange (SMART for stocks) or the primary exchange; ``symbol``, ``currency`` and
        ``local_symbol`` ignore case. ``last_trade_date`` matches as a prefix (a contract
        month "202612" finds the December contract). A future asked for without a
        last-trade date matches every listed contract month, front first, as TWS answers
        an under-specified future (a plain ``Future("ES")`` is ambiguous, and clients list
        the months from it); a ``CONTFUT`` stands for the front contract only. Nothing
        found gives an empty list.
        """
        sym = symbol.upper()
        sec = sec_type.upper()
        exch = exchange.upper()
        exch = _EXCHANGE_ALIASES.get(exch, exch)
        cur = currency.upper()
        local = local_symbol.upper()
        want_front = False
        if sec == "CONTFUT":
            # A continuous future stands for the front contract.
            sec, want_front = "FUT", True
        found: list[Instrument] = []
        for inst in self._by_id.values():
            if con_id and inst.con_id != con_id:
                continue
            if sym and inst.symbol.upper() != sym:
                continue
            if sec and inst.sec_type != sec:
                continue
            if exch and exch not in (inst.exchange.upper(), inst.primary_exchange.upper()):
                continue
            if cur and inst.currency.upper() != cur:
                continue
            if local and inst.local_symbol.upper() != local:
                continue
            if last_trade_date and not inst.last_trade_date.startswith(last_trade_date):
                continue
            found.append(inst)
        if want_front:
            found = _front_only(found)
        return found  # insertion order: a future's months were added front first

    def search(self, pattern: str, limit: int = 16) -> list[Instrument]:
        """Instruments for reqMatchingSymbols: symbol prefix matches first, then long-name
        substring matches, at most ``limit``; only the front contract of a future."""
        pat = pattern.strip().upper()
        if not pat or limit <= 0:
            return []
        candidates = _front_only(list(self._by_id.values()))
        prefix = [i for i in candidates if i.symbol.upper().startswith(pat)]
        # Exact symbol first, then shorter symbols: "V" should list Visa before VZ.
        prefix.sort(key=lambda i: (i.symbol.upper() != pat, len(i.symbol)))
        seen = {i.con_id for i in prefix}
        by_name = [i for i in candidates if i.con_id not in seen and pat in i.long_name.upper()]
        return (prefix + by_name)[:limit]

    def is_open(self, con_id: int, when: float, liquid: bool = False) -> bool:
        """Whether the instrument trades at epoch second ``when`` (``liquid``: regular hours)."""
        inst = self._by_id.get(con_id)
        if inst is None:
            return False
        rule, tz_name = _session_rule(inst)
        local = dt.datetime.fromtimestamp(when, ZoneInfo(tz_name)).replace(tzinfo=None)
        # A session for trade date T may start on T-1's evening, so look at T and T+1.
        for offset in (0, 1):
            session = rule(local.date() + dt.timedelta(days=offset), liquid)
            if session is not None and session[0] <= local < session[1]:
                return True
        return False

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, con_id: object) -> bool:
        return con_id in self._by_id


def _front_only(instruments: list[Instrument]) -> list[Instrument]:
    """Drop every future that is not the earliest-expiring of its symbol in the list."""
    front: dict[str, Instrument] = {}
    for inst in instruments:
        if inst.sec_type == "FUT":
            cur = front.get(inst.symbol)
            if cur is None or inst.last_trade_date < cur.last_trade_date:
                front[inst.symbol] = inst
    return [i for i in instruments if i.sec_type != "FUT" or front.get(i.symbol) is i]
