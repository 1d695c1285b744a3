"""``python -m core.sim`` as its own process."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import pytest
from ib_async import IB

from core.sim.__main__ import build_parser


def test_parser_when_defaults_then_loopback_4002() -> None:
    args = build_parser().parse_args([])
    assert (args.host, args.port, args.server_version, args.accounts) == (
        "127.0.0.1",
        4002,
        178,
        "DU0000001",
    )
    assert args.live_data is True
    assert build_parser().parse_args(["--no-live-data"]).live_data is False
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--server-version", "200"])


@pytest.mark.asyncio
async def test_cli_when_run_then_serves_and_saves_state_on_sigterm(tmp_path):
    state = tmp_path / "state.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "core.sim",
        "--port",
        "0",
        "--state",
        str(state),
        "--accounts",
        "DU7,DU8",
        "--seed",
        "5",
        "--log-level",
        "WARNING",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        match = re.search(r"on 127\.0\.0\.1:(\d+)", line)
        assert match, line
        ib = IB()
        await ib.connectAsync("127.0.0.1", int(match.group(1)), clientId=3, timeout=5)
        assert ib.managedAccounts() == ["DU7", "DU8"]
        ib.disconnect()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        assert state.exists()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.asyncio
async def test_cli_when_state_corrupt_then_exit_2_with_message(tmp_path):
    state = tmp_path / "state.json"
    state.write_text("garbage")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "core.sim",
        "--port",
        "0",
        "--state",
        str(state),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2
    assert str(state) in err.decode()
