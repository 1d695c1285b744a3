"""Frozen event dataclasses as ArcticDB-friendly DataFrames, and back.

The store's schema is the dataclasses' fields: :func:`records_to_frame` turns a list of
records into columns with dtypes ArcticDB stores well, :func:`frame_to_records` reads
them back. Times are UTC throughout. Also the store's own row forms: a P&L point as its
stored row (:class:`PnLRow`), the daily summaries' frame (:func:`daily_frame`), and one
row per execution of a fills frame that holds copies (:func:`one_row_per_execution`).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import typing
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from core.events import PnLChanged

T = TypeVar("T")

#: The ``strategy`` value of the account's own P&L series.
ACCOUNT_TOTAL = "*"

(
    _KIND_FLOAT,
    _KIND_OPT_FLOAT,
    _KIND_INT,
    _KIND_OPT_INT,
    _KIND_STR,
    _KIND_OPT_STR,
    _KIND_TIME,
    _KIND_OPT_TIME,
    _KIND_BOOL,
) = range(9)


def _kind(hint: Any) -> int:
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    if base is datetime:
        return _KIND_OPT_TIME if optional else _KIND_TIME
    if base is bool:
        return _KIND_BOOL
    if base is float:
        return _KIND_OPT_FLOAT if optional else _KIND_FLOAT
    if base is int:
        return _KIND_OPT_INT if optional else _KIND_INT
    return _KIND_OPT_STR if optional else _KIND_STR


_SCHEMAS: dict[type, list[tuple[str, int]]] = {}


def _schema(cls: type) -> list[tuple[str, int]]:
    schema = _SCHEMAS.get(cls)
    if schema is None:
        hints = typing.get_type_hints(cls)
        schema = [(f.name, _kind(hints[f.name])) for f in dataclasses.fields(cls)]
        _SCHEMAS[cls] = schema
    return schema


def to_utc(t: datetime) -> pd.Timestamp:
    """``t`` as a UTC Timestamp (a naive time is taken to be UTC)."""
    ts = pd.Timestamp(t)
    return ts.tz_localize(UTC) if ts.tzinfo is None else ts.tz_convert(UTC)


def records_to_frame(records: Sequence[Any], cls: type) -> pd.DataFrame:
    """Frozen event dataclasses as a DataFrame with ArcticDB-friendly dtypes.

    ``None`` in a float or int field becomes NaN (ints with None become float columns);
    times become ``datetime64[ns, UTC]``; enums their value.
    """
    cols: dict[str, Any] = {}
    for name, kind in _schema(cls):
        values = [getattr(r, name) for r in records]
        if kind == _KIND_TIME:
            cols[name] = pd.DatetimeIndex([to_utc(v) for v in values], tz=UTC)
        elif kind == _KIND_OPT_TIME:  # None is NaT
            cols[name] = pd.DatetimeIndex(
                [pd.NaT if v is None else to_utc(v) for v in values], tz=UTC
            )
        elif kind in (_KIND_FLOAT, _KIND_OPT_FLOAT, _KIND_OPT_INT):
            cols[name] = np.array(
                [math.nan if v is None else float(v) for v in values], dtype=np.float64
            )
        elif kind == _KIND_INT:
            cols[name] = np.array(values, dtype=np.int64)
        elif kind == _KIND_BOOL:
            cols[name] = np.array(values, dtype=bool)
        else:
            # None becomes "" (ArcticDB types an all-None column as string anyway).
            cols[name] = np.array(
                ["" if v is None else v.value if isinstance(v, enum.Enum) else v for v in values],
                dtype=object,
            )
    return pd.DataFrame(cols)


def frame_to_records(df: pd.DataFrame, cls: type[T]) -> list[T]:
    """The inverse of :func:`records_to_frame` (the ``time`` field may be the index)."""
    schema = _schema(cls)
    columns: dict[str, list[Any]] = {}
    for name, kind in schema:
        if name in df.columns:
            raw = df[name]
        elif name == df.index.name:
            raw = df.index.to_series()
        else:
            columns[name] = [None] * len(df)
            continue
        if kind == _KIND_TIME:
            columns[name] = [ts.to_pydatetime() for ts in utc_index(raw)]
        elif kind == _KIND_OPT_TIME:
            columns[name] = [None if ts is pd.NaT else ts.to_pydatetime() for ts in utc_index(raw)]
        elif kind == _KIND_FLOAT:
            columns[name] = [float(v) for v in raw]
        elif kind == _KIND_OPT_FLOAT:
            columns[name] = [None if v != v else float(v) for v in raw]
        elif kind == _KIND_INT:
            columns[name] = [int(v) for v in raw]
        elif kind == _KIND_OPT_INT:
            columns[name] = [None if v != v else int(v) for v in raw]
        elif kind == _KIND_BOOL:
            columns[name] = [bool(v) for v in raw]
        elif kind == _KIND_OPT_STR:
            columns[name] = [v if isinstance(v, str) and v else None for v in raw]
        else:
            columns[name] = [v if isinstance(v, str) else "" for v in raw]
    names = [n for n, _ in schema]
    return [
        cls(**dict(zip(names, row, strict=True))) for row in zip(*columns.values(), strict=True)
    ]


def utc_index(values: Any) -> pd.DatetimeIndex:
    """Times as a UTC DatetimeIndex (ArcticDB returns time columns tz-naive, in UTC)."""
    index = pd.DatetimeIndex(values)
    return index.tz_localize(UTC) if index.tz is None else index.tz_convert(UTC)


def empty_frame(cls: type) -> pd.DataFrame:
    """An empty frame of ``cls``'s columns, indexed by ``time`` when it has one."""
    df = records_to_frame([], cls)
    return df.set_index("time") if "time" in df.columns else df


def one_row_per_execution(df: pd.DataFrame) -> pd.DataFrame:
    """Per ``exec_id``, the last row with a commission, else the first row."""
    ids = df["exec_id"]
    if not ids.duplicated().any():
        return df
    n = len(df)
    position = np.arange(n)
    has = df["commission"].notna().to_numpy()
    # Higher is better: rows with a commission beat those without, later ones first;
    # without one, the first copy wins.
    score = np.where(has, n + position, -position)
    best = pd.Series(score).groupby(ids.to_numpy()).transform("max").to_numpy()
    return df[score == best]


@dataclasses.dataclass(frozen=True, slots=True)
class DailySummary:
    """One strategy's (or the account's, :data:`ACCOUNT_TOTAL`) figures for one day."""

    day: date
    strategy: str
    realized: float
    unrealized: float
    daily: float
    commissions: float
    fills: int


def daily_frame(summaries: Sequence[DailySummary]) -> pd.DataFrame:
    """Daily summaries as the ``daily`` library stores them: indexed by the UTC day."""
    return pd.DataFrame(
        {
            "strategy": np.array([s.strategy for s in summaries], dtype=object),
            "realized": np.array([s.realized for s in summaries], dtype=np.float64),
            "unrealized": np.array([s.unrealized for s in summaries], dtype=np.float64),
            "daily": np.array([s.daily for s in summaries], dtype=np.float64),
            "commissions": np.array([s.commissions for s in summaries], dtype=np.float64),
            "fills": np.array([s.fills for s in summaries], dtype=np.int64),
        },
        index=pd.DatetimeIndex([pd.Timestamp(s.day, tz=UTC) for s in summaries], name="day"),
    ).sort_index(kind="stable")


@dataclasses.dataclass(frozen=True, slots=True)
class PnLRow:
    """A P&L point as the ``pnl`` journal stores it (the account's series is ``*``)."""

    strategy: str
    daily: float
    realized: float
    unrealized: float
    total: float
    time: datetime

    @classmethod
    def of(cls, p: PnLChanged) -> PnLRow:
        """A P&L event as its stored row (the account's series is named ``*``)."""
        strategy = p.strategy if p.strategy is not None else ACCOUNT_TOTAL
        return cls(strategy, p.daily, p.realized, p.unrealized, p.total, p.time)
