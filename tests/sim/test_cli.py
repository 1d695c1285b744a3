"""``python -m core.sim`` as its own process."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import pytest
from ib_async import IB

from core.sim.__main__ import build_parser
from helpers import wait_for


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
async def test_cli_when_sigusr1_then_nightly_reset_drops_and_comes_back(ib_log_guard):
    ib_log_guard.expect("Peer closed connection|Connection reset by peer|Error 110[02]")
    ib_log_guard.expect("API connection failed|Make sure API port")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "core.sim",
        "--port",
        "0",
        "--reset-down",
        "0.3",
        "--reset-login",
        "0.3",
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
        dropped = asyncio.Event()
        ib.disconnectedEvent += dropped.set

        proc.send_signal(signal.SIGUSR1)

        await asyncio.wait_for(dropped.wait(), 5)
        codes: list[int] = []
        again = IB()
        again.errorEvent += lambda _r, code, _m, _c: codes.append(code)
        for _ in range(50):  # the port refuses connections for 0.3 s
            try:
                await again.connectAsync("127.0.0.1", int(match.group(1)), clientId=3, timeout=5)
                break
            except ConnectionRefusedError:
                await asyncio.sleep(0.1)
        await wait_for(lambda: 1102 in codes, what="1102 after the reset")
        assert codes.index(1100) < codes.index(1102)
        again.disconnect()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
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
