"""`python -m services.simulator`: serve the simulated vendors until SIGTERM or SIGINT.

Prints exactly one line on stdout once listening, `simulator listening on http://HOST:PORT`;
callers (the test harness, `lifeline up`) read it to learn the port when `--port 0`.
"""

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from typing import cast, get_args

from services.simulator.app import DEFAULT_VENDORS, FORMATS, build_app
from services.simulator.logic import Format
from services.simulator.server import running

DEFAULT_PORT = 8410  # DESIGN.md "Default ports"


def _vendor(text: str) -> tuple[str, Format]:
    name, sep, fmt = text.partition("=")
    if not sep or not name or fmt not in FORMATS:
        formats = ", ".join(get_args(Format))
        raise argparse.ArgumentTypeError(f"expected NAME=FORMAT with FORMAT one of {formats}, got {text!r}")
    return name, cast(Format, fmt)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.simulator", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LIFELINE_SIMULATOR_PORT", DEFAULT_PORT)),
                        help="0 picks a free port (default: $LIFELINE_SIMULATOR_PORT or %(default)s)")
    parser.add_argument("--vendor", type=_vendor, action="append", metavar="NAME=FORMAT",
                        help="a simulated vendor (repeatable); default: "
                        + " ".join(f"{n}={f}" for n, f in DEFAULT_VENDORS.items()))
    parser.add_argument("--seed", type=int, default=0, help="seed of the flaky mode's random draws")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    vendors = dict(args.vendor) if args.vendor else None
    async with running(build_app(vendors, seed=args.seed), host=args.host, port=args.port) as sim:
        print(f"simulator listening on {sim.url}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        asyncio.run(serve(args))
    except OSError as error:  # typically the port is taken: say so plainly, no traceback
        print(f"simulator: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
