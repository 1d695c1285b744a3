"""Run the simulated IB gateway on its own.

    python -m core.sim --host 127.0.0.1 --port 4002 [--state FILE] [--seed N]
                       [--accounts DU0000001,...] [--server-version 178]
                       [--tick-interval S] [--synthetic N] [--log-level INFO]
                       [--reset-down S] [--reset-login S] [--reset-data-lost]

``--synthetic N`` serves N made-up stocks (XAAA, XAAB, ...) instead of the default
universe, for benchmarks and load tests.

Stops cleanly (saving the state file, if any) on Ctrl+C or SIGTERM. ``kill -USR1 PID``
plays IB's nightly reset (:meth:`SimGateway.nightly_reset`): connections dropped and
refused for ``--reset-down`` seconds, then ``--reset-login`` seconds logged out of IB
(1100), then 1102 (1101 with ``--reset-data-lost``). POSIX only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from core.sim.protocol import DEFAULT_SERVER_VERSION, MAX_CLIENT_VERSION, MIN_CLIENT_VERSION
from core.sim.server import SimGateway, SimStateError
from core.sim.universe import Universe


def build_parser() -> argparse.ArgumentParser:
    """The command line of the standalone gateway."""
    parser = argparse.ArgumentParser(
        prog="python -m core.sim",
        description="Simulated Interactive Brokers gateway speaking the TWS API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4002, help="port to listen on (default 4002)")
    parser.add_argument("--state", metavar="FILE", help="JSON file keeping account state")
    parser.add_argument("--seed", type=int, default=0, help="seed of the price walk")
    parser.add_argument(
        "--accounts",
        default="DU0000001",
        help="comma-separated account ids (default DU0000001)",
    )
    parser.add_argument(
        "--server-version",
        type=int,
        default=DEFAULT_SERVER_VERSION,
        choices=range(MIN_CLIENT_VERSION, MAX_CLIENT_VERSION + 1),
        metavar=f"{{{MIN_CLIENT_VERSION}..{MAX_CLIENT_VERSION}}}",
        help=f"highest TWS API server version; each client gets the highest it also "
        f"speaks (default {DEFAULT_SERVER_VERSION})",
    )
    parser.add_argument(
        "--no-live-data",
        dest="live_data",
        action="store_false",
        help="a login without live market data: reqMarketDataType 3/4 stream the delayed "
        "tick types, 1/2 are refused with error 354",
    )
    parser.add_argument(
        "--tick-interval",
        type=float,
        default=0.25,
        help="seconds between market updates; 0 freezes the walk (default 0.25)",
    )
    parser.add_argument(
        "--initial-cash", type=float, default=1_000_000.0, help="starting cash per account"
    )
    parser.add_argument(
        "--synthetic",
        type=int,
        default=0,
        metavar="N",
        help="serve N made-up stocks (XAAA, XAAB, ...) instead of the default universe",
    )
    parser.add_argument(
        "--reset-down",
        type=float,
        default=60.0,
        metavar="S",
        help="nightly reset on SIGUSR1: seconds the port refuses connections (default 60)",
    )
    parser.add_argument(
        "--reset-login",
        type=float,
        default=10.0,
        metavar="S",
        help="nightly reset on SIGUSR1: seconds then logged out of IB, 1100 (default 10)",
    )
    parser.add_argument(
        "--reset-data-lost",
        action="store_true",
        help="nightly reset on SIGUSR1 ends with 1101 (market data lost) instead of 1102",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (default INFO)",
    )
    return parser


async def serve(args: argparse.Namespace) -> None:
    """Start the gateway and run until SIGINT/SIGTERM."""
    accounts = [a.strip() for a in args.accounts.split(",") if a.strip()]
    gateway = SimGateway(
        args.host,
        args.port,
        seed=args.seed,
        accounts=accounts,
        server_version=args.server_version,
        state_path=args.state,
        tick_interval=args.tick_interval,
        initial_cash=args.initial_cash,
        live_data=args.live_data,
        universe=Universe.synthetic(args.synthetic) if args.synthetic > 0 else None,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows has no add_signal_handler
            loop.add_signal_handler(sig, stop.set)

    def nightly_reset() -> None:
        gateway.nightly_reset(
            down_for=args.reset_down, relogin_for=args.reset_login, data_lost=args.reset_data_lost
        )

    usr1 = getattr(signal, "SIGUSR1", None)
    if usr1 is not None:
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(usr1, nightly_reset)
    await gateway.start()
    print(
        f"simulated IB gateway on {gateway.host}:{gateway.port} "
        f"(server version {gateway.server_version}, accounts {','.join(gateway.accounts)})",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await gateway.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m core.sim`` and the ``ibsim`` script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(serve(args))
    except SimStateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the port is taken
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
