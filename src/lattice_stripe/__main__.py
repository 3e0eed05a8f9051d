"""The ``lattice-stripe`` command: ``emulator`` (a local Stripe) and ``demo`` (the whole loop).

Both need the ``lattice-stripe[emulator]`` extra. Both bind 127.0.0.1 only;
``--port 0`` picks a free port (the URL is printed).
"""

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from lattice_stripe.core.errors import MissingDependencyError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: the message names the fix.
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(
            f"invalid port {text[:20]!r}: use 0 to 65535 (0: any free port)"
        )
    return port


def _parser() -> argparse.ArgumentParser:
    from lattice_stripe import __version__

    parser = _Parser(
        prog="lattice-stripe", description="Local tools for lattice-stripe (test mode only)."
    )
    parser.add_argument("--version", action="version", version=f"lattice-stripe {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    emulator = commands.add_parser(
        "emulator",
        help="run the local Stripe emulator (portal API, hosted portal, webhooks)",
        description="Run a local, stateful Stripe stand-in on 127.0.0.1.",
    )
    emulator.add_argument(
        "--port", type=_port, default=12111, help="port, 0 for any free one (default: 12111)"
    )
    emulator.add_argument(
        "--seed", type=Path, help="a JSON seed file (default: the packaged seed.json)"
    )
    emulator.add_argument(
        "--webhook-url",
        help="where to POST signed webhook events (default: none, events are only logged)",
    )
    emulator.add_argument(
        "--api-key", help="the sk_test_ key clients must send (default: sk_test_emulator)"
    )
    emulator.add_argument(
        "--webhook-secret",
        help="the whsec_ secret that signs webhooks (default: whsec_emulator)",
    )
    emulator.add_argument(
        "--public-url",
        help="the address written into session URLs, when a proxy is in front "
        "(default: the address it listens on)",
    )
    demo = commands.add_parser(
        "demo",
        help="run the demo shop and the emulator, and print the URL to open",
        description="Run the demo shop against the local Stripe emulator.",
    )
    demo.add_argument(
        "--port", type=_port, default=8000, help="shop port, 0 for any free one (default: 8000)"
    )
    demo.add_argument(
        "--emulator-port",
        type=_port,
        default=12111,
        help="emulator port, 0 for any free one (default: 12111)",
    )
    demo.add_argument(
        "--seed", type=Path, help="a JSON seed file (default: the packaged seed.json)"
    )
    return parser


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Not available on Windows, where Ctrl+C raises KeyboardInterrupt instead.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
    try:
        yield
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


async def _emulator(args: argparse.Namespace, out: TextIO) -> None:
    from lattice_stripe.emulator import (
        DEFAULT_API_KEY,
        DEFAULT_WEBHOOK_SECRET,
        Emulator,
        load_seed,
        serve,
    )

    emulator = Emulator(
        api_key=args.api_key or DEFAULT_API_KEY,
        webhook_secret=args.webhook_secret or DEFAULT_WEBHOOK_SECRET,
        webhook_url=args.webhook_url,
        seed=load_seed(args.seed),
        public_url=args.public_url,
    )
    stop = asyncio.Event()
    with _stop_on_signals(stop):
        async with serve(emulator, port=args.port) as running:
            customers = ", ".join(emulator.store.customers)
            print(
                f"lattice-stripe emulator (test mode) on {running.url}\n"
                f"  API key:        {emulator.api_key}\n"
                f"  Webhook secret: {emulator.webhook_secret}\n"
                f"  Webhooks to:    {args.webhook_url or 'nowhere (pass --webhook-url)'}\n"
                f"  Customers:      {customers}\n"
                f'  Use it: Client(api_key, base_url="{running.url}", allow_http_localhost=True)\n'
                "Press Ctrl+C to stop.",
                file=out,
                flush=True,
            )
            await stop.wait()


async def _demo(args: argparse.Namespace, out: TextIO) -> None:
    from lattice_stripe.demo.server import run_demo
    from lattice_stripe.emulator import load_seed

    stop = asyncio.Event()
    with _stop_on_signals(stop):
        await run_demo(
            stop=stop,
            out=out,
            port=args.port,
            emulator_port=args.emulator_port,
            seed=load_seed(args.seed),
        )


def _explain(args: argparse.Namespace, error: Exception) -> str:
    from lattice_stripe.emulator import PortInUseError  # OSErrors come from running it

    if not isinstance(error, PortInUseError):
        return str(error)
    option = (
        "--emulator-port" if args.command == "demo" and error.server == "emulator" else "--port"
    )
    return f"{error.strerror}: stop what holds it, or pass {option} 0 for any free port"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    command = _emulator if args.command == "emulator" else _demo
    try:
        asyncio.run(command(args, sys.stdout))
    except KeyboardInterrupt:
        return 0
    except MissingDependencyError as error:
        print(f"lattice-stripe {args.command}: {error}", file=sys.stderr)
        return 2
    except ImportError as error:
        print(
            f"lattice-stripe {args.command} needs the emulator extra "
            f"(pip install 'lattice-stripe[emulator]'): {error}",
            file=sys.stderr,
        )
        return 2
    except (ValueError, OSError) as error:
        print(f"lattice-stripe {args.command}: {_explain(args, error)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
