"""Run every benchmark and write results/results.md, results.json and PNG charts.

``python -m benchmarks.run`` for the full run (a few minutes);
``python -m benchmarks.run --quick`` for the CI smoke run, which proves the
suite works and writes to a temporary folder unless ``--out`` is given. The
targets are reported, never asserted: a benchmark is not a pass/fail test.
"""

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks import e2e, importtime, stores

HERE = Path(__file__).resolve().parent
OVERHEAD_NAMES = {
    "test_stdlib_floor": "stdlib floor (urlencode + json.loads)",
    "test_lattice_core": "lattice-stripe core (guard + encode + decode)",
    "test_lattice_client": "lattice-stripe Client.create (stub transport)",
    "test_stripe_sdk": "stripe SDK create (stub HTTP client)",
}


def _overhead(quick: bool) -> dict[str, dict[str, float]]:
    # pytest-benchmark's own report keeps every sample (megabytes): read, not kept.
    report = Path(tempfile.mkdtemp(prefix="lattice-bench-")) / "overhead.json"
    timing = (
        ["--benchmark-min-rounds=3", "--benchmark-max-time=0.02", "--benchmark-warmup=off"]
        if quick
        else ["--benchmark-min-rounds=30", "--benchmark-max-time=2.0", "--benchmark-warmup=on"]
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(HERE / "test_overhead.py"),
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "-W",
            "ignore::DeprecationWarning",
            f"--benchmark-json={report}",
            *timing,
        ],
        check=True,
        cwd=HERE.parent,
    )
    data = json.loads(report.read_text())
    return {
        OVERHEAD_NAMES[bench["name"]]: {
            "median_us": bench["stats"]["median"] * 1e6,
            "min_us": bench["stats"]["min"] * 1e6,
            "rounds": bench["stats"]["rounds"],
        }
        for bench in data["benchmarks"]
    }


def _memory(rounds: int, concurrent: int) -> list[dict[str, int]]:
    with e2e.LoopbackServer() as base:
        result = subprocess.run(
            [sys.executable, "-m", "benchmarks.memory", base, str(rounds), str(concurrent)],
            check=True,
            capture_output=True,
            text=True,
            cwd=HERE.parent,
        )
    samples: list[dict[str, int]] = json.loads(result.stdout)
    return samples


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {results['machine']}. Mode: {results['mode']}.",
        "",
        "## In-process overhead per create (transport stubbed)",
        "",
        "| contender | median µs | min µs | vs lattice Client |",
        "|---|---:|---:|---:|",
    ]
    overhead = results["overhead"]
    client = overhead[OVERHEAD_NAMES["test_lattice_client"]]["median_us"]
    for name, row in overhead.items():
        lines.append(
            f"| {name} | {row['median_us']:.1f} | {row['min_us']:.1f} | "
            f"{_ratio(row['median_us'], client):.2f}x |"
        )
    stripe_ratio = _ratio(overhead[OVERHEAD_NAMES["test_stripe_sdk"]]["median_us"], client)
    floor_ratio = _ratio(client, overhead[OVERHEAD_NAMES["test_stdlib_floor"]]["median_us"])
    lines += [
        "",
        f"- lattice-stripe is **{stripe_ratio:.1f}x** faster than the stripe SDK "
        f"(target ≥ 7x: {_verdict(stripe_ratio >= 7)}).",
        f"- lattice-stripe costs **{floor_ratio:.2f}x** the stdlib floor "
        f"(target ≤ 1.0x: {_verdict(floor_ratio <= 1.0)}).",
        "",
        "## End to end on loopback (same local server for all)",
        "",
    ]
    for family, bare in (("sync", "bare urllib3"), ("async", "bare aiohttp")):
        for mode, rows in results["e2e"][family].items():
            lines += [
                f"### {family}, {mode}",
                "",
                "| contender | requests/s | p50 ms | p99 ms | client CPU µs/req "
                "| vs bare | vs stripe |",
                "|---|---:|---:|---:|---:|---:|---:|",
            ]
            for name, row in rows.items():
                lines.append(
                    f"| {name} | {row['rps']:.0f} | {row['p50_ms']:.3f} | {row['p99_ms']:.3f} | "
                    f"{row['cpu_us']:.0f} | "
                    f"{_ratio(row['rps'], rows[bare]['rps']):.2f}x | "
                    f"{_ratio(row['rps'], rows['stripe SDK']['rps']):.2f}x |"
                )
            ours = rows["lattice-stripe"]["rps"]
            vs_bare = _ratio(ours, rows[bare]["rps"])
            vs_stripe = _ratio(ours, rows["stripe SDK"]["rps"])
            floor = rows[e2e.FLOOR[family]]["rps"]
            lines += [
                "",
                f"- vs bare transport {vs_bare:.2f}x (target ≥ 0.9x: {_verdict(vs_bare >= 0.9)}); "
                f"vs stripe {vs_stripe:.2f}x (target ≥ 2x: {_verdict(vs_stripe >= 2)}).",
                f"- the stdlib floor over the same bare transport reaches "
                f"{_ratio(floor, rows[bare]['rps']):.2f}x bare; lattice-stripe reaches "
                f"{_ratio(ours, floor):.2f}x the floor's requests/s.",
                f"- client CPU per request above the bare transport: stdlib floor "
                f"{rows[e2e.FLOOR[family]]['cpu_us'] - rows[bare]['cpu_us']:.0f} µs, "
                f"lattice-stripe {rows['lattice-stripe']['cpu_us'] - rows[bare]['cpu_us']:.0f} µs, "
                f"stripe SDK {rows['stripe SDK']['cpu_us'] - rows[bare]['cpu_us']:.0f} µs.",
            ]
            if mode == "sequential":
                # One request at a time: each costs the bare round trip plus the
                # client's extra work, so 0.9x bare needs a round trip of 9x that work.
                extra_ms = 1000 / ours - 1000 / rows[bare]["rps"]
                lines.append(
                    f"- a request here takes {extra_ms * 1000:.0f} µs longer than a bare POST; "
                    f"lattice-stripe reaches 0.9x the bare transport against any server whose "
                    f"round trip takes {9 * extra_ms:.2f} ms or more (this one: "
                    f"{1000 / rows[bare]['rps']:.2f} ms; Stripe's API: tens to hundreds of ms)."
                )
            lines.append("")
    lines += [
        "## Import time (fresh interpreters, best of several runs)",
        "",
        "| import | wall ms | -X importtime ms | vs stripe (wall) |",
        "|---|---:|---:|---:|",
    ]
    imports = results["import"]
    stripe_wall = imports["stripe"]["wall_ms"]
    for name, row in imports.items():
        importtime_ms = f"{row['importtime_ms']:.1f}" if "importtime_ms" in row else "n/a"
        lines.append(
            f"| {name} | {row['wall_ms']:.1f} | {importtime_ms} | "
            f"{_ratio(row['wall_ms'], stripe_wall):.2f}x |"
        )
    worst = max(_ratio(imports[name]["wall_ms"], stripe_wall) for name in importtime.CASES)
    cold = {name: imports[name]["wall_ms"] for name in importtime.COLD_START}
    attrs_alone = _ratio(imports["reference: attrs alone"]["wall_ms"], stripe_wall)
    lines += [
        "",
        f"- worst lattice-stripe import is {worst:.2f}x stripe's (target ≤ 0.2x: "
        f"{_verdict(worst <= 0.2)}).",
        f"- attrs alone, the core's one required dependency, costs {attrs_alone:.2f}x "
        "stripe's import; the transport libraries' own imports are the reference rows.",
        "- cold start (import + client + first create, stub transport): "
        + "; ".join(f"{name} {ms:.1f} ms" for name, ms in cold.items())
        + ".",
        "",
        "## Memory: rounds of concurrent async creates over one aiohttp session",
        "",
        "| round | peak RSS KiB | live objects after gc |",
        "|---:|---:|---:|",
    ]
    for sample in results["memory"]:
        lines.append(f"| {sample['round']} | {sample['peak_rss_kib']} | {sample['live_objects']} |")
    lines += [
        "",
        "## Webhook event stores: claims of new events (one process, and four at once)",
        "",
        *stores.markdown(results["stores"]),
    ]
    return "\n".join(lines) + "\n"


def _charts(results: dict[str, Any], out: Path) -> None:
    overhead = results["overhead"]
    figure, axis = plt.subplots(figsize=(9, 3.5))
    names = list(overhead)
    axis.barh(names, [overhead[name]["median_us"] for name in names], color="#4c72b0")
    axis.set_xlabel("µs per create (median, lower is better)")
    axis.set_title("In-process overhead per create")
    figure.tight_layout()
    figure.savefig(out / "overhead.png", dpi=110)
    plt.close(figure)

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, family in zip(axes, ("sync", "async"), strict=True):
        modes = list(results["e2e"][family])
        contenders = list(results["e2e"][family][modes[0]])
        width = 0.8 / len(contenders)
        for index, name in enumerate(contenders):
            axis.bar(
                [m + index * width for m in range(len(modes))],
                [results["e2e"][family][mode][name]["rps"] for mode in modes],
                width=width,
                label=name,
            )
        axis.set_xticks([m + width * (len(contenders) - 1) / 2 for m in range(len(modes))], modes)
        axis.set_ylabel("requests/s (higher is better)")
        axis.set_title(f"{family} end to end on loopback")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "e2e.png", dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    """Run the suite; print where the results went."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts, to prove it works")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    args = parser.parse_args(argv)
    out: Path = args.out or (
        Path(tempfile.mkdtemp(prefix="lattice-bench-")) if args.quick else HERE / "results"
    )
    out.mkdir(parents=True, exist_ok=True)
    quick = bool(args.quick)
    results: dict[str, Any] = {
        "machine": f"{platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()}, {platform.system()}",
        "mode": "quick (smoke only, numbers meaningless)" if quick else "full",
        "overhead": _overhead(quick),
        "e2e": e2e.run(*((60, 200, 1) if quick else (3000, 6000, 3))),
        "import": importtime.run(2 if quick else 15),
        "memory": _memory(*((2, 100) if quick else (10, 1000))),
        "stores": stores.run(50 if quick else 3000),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(_markdown(results))
    _charts(results, out)
    print(f"benchmark results written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
