"""The store's contract tests (``tests/unit/test_store.py``) against a local S3 server.

The server is moto's S3 in server mode, started by this module in **its own process** on
a free loopback port: moto's ``ThreadedMotoServer`` in the test process deadlocks with
ArcticDB, because ArcticDB's ``Arctic(...)``/``list_libraries`` holds the GIL while it
waits for the HTTP reply, so the server thread can never answer (seen as a hang in
``arcticdb/arctic.py list_libraries`` with the moto thread parked in ``select``).
ArcticDB does not create buckets: each test gets a fresh one, made with boto3.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")

_CONTRACT = Path(__file__).parents[1] / "unit" / "test_store.py"
_spec = importlib.util.spec_from_file_location("_store_contract", _CONTRACT)
assert _spec is not None and _spec.loader is not None
_contract = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_contract)

# Every contract test, collected here again with this module's ``store_uri``.
for _name in dir(_contract):
    if _name.startswith("test_") or _name in ("store", "fast_storage_lock"):
        globals()[_name] = getattr(_contract, _name)

ACCESS, SECRET = "test-access-key", "test-secret-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[tuple[str, int]]:
    """A moto S3 server in a child process on loopback; yields (host, port)."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto server did not start on port {port}")
                time.sleep(0.05)
        yield ("127.0.0.1", port)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def store_uri(s3_endpoint: tuple[str, int], monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the local S3 server, as an ArcticDB URI."""
    host, port = s3_endpoint
    # The AWS SDK would otherwise probe the EC2 metadata service.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    bucket = f"store-{uuid.uuid4().hex[:12]}"
    client: Any = boto3.client(
        "s3",
        endpoint_url=f"http://{host}:{port}",
        aws_access_key_id=ACCESS,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=bucket)
    return f"s3://{host}:{bucket}?port={port}&access={ACCESS}&secret={SECRET}&region=us-east-1"


def test_s3_uri_when_logged_then_secret_redacted(store_uri: str) -> None:
    from core.store import Store

    assert SECRET not in repr(Store(store_uri))
