"""ArcticDB calls as the store makes them: safe on a store other consoles share.

* Reads tolerate a symbol that does not exist (:func:`read_or_none`, :func:`read_many`)
  and a version its writer pruned while this process was reading it (:func:`with_retry`
  reads it again).
* Nothing here calls ``has_symbol``, ``get_description`` or the symbol-list
  ``list_symbols``: they hold Python's GIL while S3 is silent (the whole console would
  freeze on an outage); :func:`list_symbols` lists from storage instead.
* :func:`get_or_create_library` is safe when several processes open a new store at once.

ArcticDB itself is imported on first use (the store's threads), not with this module.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

import pandas as pd
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_fixed,
    wait_incrementing,
)

__all__ = [
    "get_or_create_library",
    "list_symbols",
    "missing",
    "read_batch",
    "read_many",
    "read_or_none",
    "vanished",
    "with_retry",
]

T = TypeVar("T")


def vanished(exc: BaseException) -> bool:
    """A read raced a prune of the version it had resolved (the writer appended)."""
    from arcticdb.exceptions import KeyNotFoundException

    return isinstance(exc, KeyNotFoundException)


def with_retry(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Read another writer's symbol: a read that lost its version to that writer's
    prune (it appended meanwhile) is simply read again."""
    retrying = Retrying(
        retry=retry_if_exception(vanished),
        stop=stop_after_attempt(5),
        wait=wait_fixed(0.05),
        reraise=True,
    )
    return retrying(fn, *args, **kwargs)


def missing(exc: BaseException) -> bool:
    """ArcticDB's "no such symbol" (a read of a symbol never written)."""
    from arcticdb.exceptions import NoSuchVersionException

    return isinstance(exc, NoSuchVersionException)


def read_or_none(lib: Any, symbol: str, **kwargs: Any) -> pd.DataFrame | None:
    """``lib.read(symbol).data``, or None when there is no such symbol.

    The store asks this way, never with ``has_symbol``: ArcticDB's ``has_symbol``,
    ``get_description`` and ``list_symbols`` hold Python's GIL while they wait for S3,
    so on an outage they would freeze every thread of the console, the window too;
    reads and writes let go of it.
    """
    try:
        return with_retry(lib.read, symbol, **kwargs).data
    except Exception as exc:
        if missing(exc):
            return None
        raise


def read_many(lib: Any, requests: list[Any]) -> dict[str, pd.DataFrame]:
    """Several reads in one call (``arcticdb.ReadRequest``s); symbols that do not
    exist are left out."""

    def batch() -> dict[str, pd.DataFrame]:
        out = {}
        for request, item in zip(requests, lib.read_batch(requests), strict=True):
            data = getattr(item, "data", None)
            if data is not None:
                out[request.symbol] = data
            elif "NO_SUCH_VERSION" not in str(getattr(item, "error_code", "")):
                # Raise ArcticDB's own exception, so a vanished version is read again.
                exc = getattr(item, "exception_type", None)
                if isinstance(exc, type) and issubclass(exc, Exception):
                    raise exc(f"{item}")
                raise RuntimeError(f"reading {request.symbol}: {item}")
        return out

    return with_retry(batch)


def list_symbols(lib: Any) -> list[str]:
    """Every live symbol of ``lib``, listed from the storage itself.

    Not ArcticDB's symbol list (its cached, compacted index of symbols): compactions by
    several processes at once, guarded by a lock that only waits a while for a
    contender, can leave out a symbol another process has just created, and a journal
    missing from the list is fills missing from the book. Listing the version keys is
    one LIST request per thousand symbols (a journal has one symbol per day and writer).
    Like ``list_symbols`` it holds the GIL while S3 answers: only history reads and
    opening use it; what runs periodically or on the write path knows its symbols from
    the desk's roster (``Store._writers``).
    """
    nvs = getattr(lib, "_nvs", None)  # the public list_symbols has no switch for it
    if nvs is None:
        return list(lib.list_symbols())
    return list(nvs.list_symbols(use_symbol_list=False))


def get_or_create_library(arctic: Any, name: str, options: Any) -> Any:
    """The library ``name``, created if missing; safe when several processes open a new
    store at once (one of them creates it, the others find it: no error)."""
    try:
        return arctic.get_library(name, create_if_missing=True, library_options=options)
    except ValueError as exc:
        if "already exists" not in str(exc):
            raise
    # Another process created it between our look and our create; until its config is
    # written, it may not open yet: look again, a little longer each time.
    retrying = Retrying(
        stop=stop_after_attempt(10),
        wait=wait_incrementing(start=0.05, increment=0.05),
        reraise=True,
    )
    return retrying(arctic.get_library, name)


def read_batch(lib: Any, symbols: list[tuple[date, str]]) -> list[pd.DataFrame]:
    """The ``(day, symbol)``s' frames in one call; a failed item raises ArcticDB's own
    exception (so :func:`with_retry` reads a vanished version again)."""
    out = []
    for item in lib.read_batch([s for _, s in symbols]):
        data = getattr(item, "data", None)
        if data is None:
            # A DataError: raise ArcticDB's own exception, so a vanished version retries.
            exc = getattr(item, "exception_type", None)
            if isinstance(exc, type) and issubclass(exc, Exception):
                raise exc(f"{item}")
            raise RuntimeError(f"reading {item}")
        out.append(data)
    return out
