"""Import time of lattice-stripe (core, and with each adapter) against the official SDK.

Each case runs in a fresh interpreter; the figure is the wall time of the
imports minus a bare interpreter's start-up, best of several runs, plus the
cumulative microseconds ``python -X importtime`` reports for the top module.
"""

import argparse
import statistics
import subprocess
import sys
import time

CASES: dict[str, str] = {
    "lattice_stripe (core)": "import lattice_stripe",
    "lattice_stripe + urllib3 adapter": "import lattice_stripe.adapters.urllib3",
    "lattice_stripe + aiohttp adapter": "import lattice_stripe.adapters.aiohttp",
    "stripe": "import stripe; stripe.StripeClient",
}

# What the imports above are made of, for reading them: the core's one
# required dependency and each transport library alone, and lattice-stripe's
# own cost in an app that has already imported its HTTP library (wall time
# over an interpreter that imported that library first).
REFERENCES: dict[str, tuple[str, str]] = {
    "reference: attrs alone": ("import attrs", "pass"),
    "reference: urllib3 alone": ("import urllib3", "pass"),
    "reference: aiohttp alone": ("import aiohttp", "pass"),
    "lattice_stripe + urllib3 adapter, urllib3 already imported": (
        "import urllib3; import lattice_stripe.adapters.urllib3",
        "import urllib3",
    ),
    "lattice_stripe + aiohttp adapter, aiohttp already imported": (
        "import aiohttp; import lattice_stripe.adapters.aiohttp",
        "import aiohttp",
    ),
}

# Cold start: import, build a client, create one session over an in-process
# stub (the first call pays for lazily built decoders and lazy imports).
_PARAMS = "{'customer': 'cus_1', 'return_url': 'https://example.com/account'}"
_BODY = (
    'b\'{"id":"bps_1","object":"billing_portal.session","configuration":'
    '"bpc_1","created":1,"customer":"cus_1","livemode":false,'
    '"url":"https://billing.stripe.com/p/session/test_x"}\''
)
COLD_START: dict[str, str] = {
    "lattice_stripe: import + Client + first create": (
        "from lattice_stripe import Client, HttpResponse\n"
        f"reply = HttpResponse(status=200, body={_BODY})\n"
        "class Stub:\n"
        "    def send(self, request): return reply\n"
        "    def close(self): pass\n"
        f"Client('sk_test_1', transport=Stub()).billing_portal.sessions.create({_PARAMS})\n"
    ),
    "stripe: import + StripeClient + first create": (
        "import stripe\n"
        "class Stub(stripe.HTTPClient):\n"
        "    name = 'stub'\n"
        f"    def request(self, *args, **kwargs): return {_BODY}.decode(), 200, {{}}\n"
        "    def close(self): pass\n"
        "client = stripe.StripeClient('sk_test_1', http_client=Stub())\n"
        f"client.v1.billing_portal.sessions.create({_PARAMS})\n"
    ),
}


def _wall(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def _importtime(statement: str) -> float:
    """Cumulative µs of the slowest top-level import in the -X importtime report."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        check=True,
        capture_output=True,
        text=True,
    )
    best = 0.0
    for line in result.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit() and not parts[2].startswith("  "):
            best = max(best, float(parts[1]))
    return best


def _best(code: str, runs: int) -> float:
    """The fastest of ``runs`` fresh interpreters: noise on a shared machine only adds time."""
    return min(_wall(code) for _ in range(runs))


def run(runs: int) -> dict[str, dict[str, float]]:
    """Import cost per case, in milliseconds: best of ``runs`` wall times, median -X importtime."""
    baseline = _best("pass", runs)
    results: dict[str, dict[str, float]] = {}
    for name, code in CASES.items():
        wall = _best(code, runs) - baseline
        cumulative = statistics.median(_importtime(code) for _ in range(runs))
        results[name] = {"wall_ms": wall * 1000, "importtime_ms": cumulative / 1000}
    for name, (code, base) in REFERENCES.items():
        results[name] = {"wall_ms": (_best(code, runs) - _best(base, runs)) * 1000}
    for name, code in COLD_START.items():
        results[name] = {"wall_ms": (_best(code, runs) - baseline) * 1000}
    return results


def main(argv: list[str] | None = None) -> None:
    """Print each case in ms and the two ratios the targets name (import, cold start)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="fresh interpreters per case")
    args = parser.parse_args(argv)
    results = run(args.runs)
    for name, row in results.items():
        print(f"{name}: {row['wall_ms']:.1f} ms")
    ours, theirs = (results[name]["wall_ms"] for name in COLD_START)
    core = results["lattice_stripe (core)"]["wall_ms"] / results["stripe"]["wall_ms"]
    print(f"import lattice_stripe / import stripe: {core:.2f}x (target <= 0.3x)")
    print(f"cold start lattice / SDK: {ours / theirs:.2f}x (target <= 0.4x)")


if __name__ == "__main__":
    main()
