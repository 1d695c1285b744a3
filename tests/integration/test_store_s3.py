"""The store's contract tests (``tests/unit/test_store.py``) against a local S3 server
(moto in its own process: see ``tests/moto_s3.py``); each test gets a fresh bucket.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("moto.server")
pytest.importorskip("boto3")

from moto_s3 import SECRET, MotoS3

_CONTRACT = Path(__file__).parents[1] / "unit" / "test_store.py"
_spec = importlib.util.spec_from_file_location("_store_contract", _CONTRACT)
assert _spec is not None and _spec.loader is not None
_contract = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_contract)

# Every contract test, collected here again with this module's ``store_uri``.
for _name in dir(_contract):
    if _name.startswith("test_") or _name in ("store", "fast_storage_lock"):
        globals()[_name] = getattr(_contract, _name)


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3]:
    """A moto S3 server in a child process on loopback."""
    server = MotoS3()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def store_uri(s3: MotoS3) -> str:
    """A fresh bucket on the local S3 server, as an ArcticDB URI."""
    return s3.new_bucket()


def test_s3_uri_when_logged_then_secret_redacted(store_uri: str) -> None:
    from core.store import Store

    assert SECRET not in repr(Store(store_uri))
