"""The ``lattice-stripe`` command: ``emulator``, ``demo`` and ``portal-config apply``.

``emulator`` (a local Stripe) and ``demo`` (the whole loop) need the
``lattice-stripe[emulator]`` extra; both bind 127.0.0.1 only; ``--port 0``
picks a free port (the URL is printed).

``portal-config apply FILE.json [--dry-run]`` makes the portal configuration
declared in the file real (see ``configurations.ensure``), with the API key
from ``STRIPE_SECRET_KEY``. Exit status: 0 in sync (or applied), 1 an API or
network error, 2 a usage error (no key), 3 an invalid file, 4 changes pending
under ``--dry-run``.
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
    portal_config = commands.add_parser(
        "portal-config",
        help="declare the portal configuration in a JSON file and apply it",
        description="Portal configuration as code.",
    )
    actions = portal_config.add_subparsers(dest="action", required=True, metavar="ACTION")
    apply = actions.add_parser(
        "apply",
        help="create or update the configuration the file declares (key: STRIPE_SECRET_KEY)",
        description="Create the declared configuration, or update only what differs.",
    )
    apply.add_argument("file", type=Path, help="the configuration params, as JSON")
    apply.add_argument("--dry-run", action="store_true", help="print the changes, send none")
    apply.add_argument(
        "--key", help="the name this configuration is found by (default: the file's stem)"
    )
    apply.add_argument("--base-url", help="the API base URL (e.g. the local emulator's)")
    return parser


EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_INVALID_FILE = 3
EXIT_CHANGES_PENDING = 4


def _portal_config_apply(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import json
    import os

    from lattice_stripe import Client, LatticeStripeError, ValidationError
    from lattice_stripe.core.configuration import guard_configuration_create

    api_key = os.environ.get("STRIPE_SECRET_KEY")
    if not api_key:
        print("portal-config apply: set STRIPE_SECRET_KEY to your secret key", file=err)
        return EXIT_USAGE
    try:
        params = json.loads(args.file.read_text(encoding="utf-8"))
        checked = guard_configuration_create(params, allow_http_localhost=args.base_url is not None)
    except (OSError, ValueError) as error:  # ValidationError is a ValueError
        reason = error if isinstance(error, ValidationError) else type(error).__name__
        print(f"portal-config apply: invalid file {args.file}: {reason}", file=err)
        return EXIT_INVALID_FILE
    key = args.key or args.file.stem
    options = {} if args.base_url is None else {"base_url": args.base_url}
    try:
        with Client(api_key, allow_http_localhost=args.base_url is not None, **options) as client:
            del api_key
            result = client.billing_portal.configurations.ensure(
                checked, key=key, dry_run=args.dry_run
            )
    except (ValidationError, MissingDependencyError) as error:
        print(f"portal-config apply: {error}", file=err)
        return EXIT_USAGE
    except LatticeStripeError as error:
        print(f"portal-config apply: {type(error).__name__}: {error}", file=err)
        return EXIT_API_ERROR
    verb = "would" if args.dry_run else "did"
    found = "new" if result.configuration is None else result.configuration.id
    if result.in_sync:
        print(f"portal configuration '{key}' is in sync ({found})", file=out)
        return 0
    if result.created:
        print(f"portal configuration '{key}': {verb} create it ({found})", file=out)
    else:
        print(f"portal configuration '{key}' ({found}): {verb} change", file=out)
        for change in result.changes:
            print(f"  ~ {change}", file=out)
    return EXIT_CHANGES_PENDING if args.dry_run else 0


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
    if args.command == "portal-config":
        try:
            return _portal_config_apply(args, sys.stdout, sys.stderr)
        except ImportError as error:
            print(
                "lattice-stripe portal-config needs a transport "
                f"(pip install 'lattice-stripe[urllib3]'): {error}",
                file=sys.stderr,
            )
            return EXIT_USAGE
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
