"""Small helpers for tests (importable as ``helpers``: tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest


async def wait_for(predicate: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
    """Poll ``predicate`` on the loop until true; fail the test with ``what`` on timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(0.01)
