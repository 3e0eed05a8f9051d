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
DEFAULT_ASYNC = e2e.LATTICE["async"][0]
"""The row of AsyncClient's default transport."""
OVERHEAD_NAMES = {
    "test_stdlib_floor": "stdlib floor (urlencode + json.loads)",
    "test_fair_floor": "fair floor (specialised encoder + json.loads)",
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
    fair_ratio = _ratio(client, overhead[OVERHEAD_NAMES["test_fair_floor"]]["median_us"])
    lines += [
        "",
        f"- lattice-stripe is **{stripe_ratio:.1f}x** faster than the stripe SDK "
        f"(target ≥ 7x: {_verdict(stripe_ratio >= 7)}).",
        f"- lattice-stripe costs **{fair_ratio:.2f}x** the fair floor "
        f"(target ≤ 2.0x: {_verdict(fair_ratio <= 2.0)}) and {floor_ratio:.2f}x the old "
        "stdlib floor (urlencode costs more than a specialised encoder, so that floor is lax).",
        "",
        "## End to end on loopback (same local server for all)",
        "",
        f"Defaults: `Client` sends through {e2e.LATTICE['sync'][0]}, `AsyncClient` through "
        f"{DEFAULT_ASYNC}. Targets: the default sync ≥ 1.0x bare urllib3 and ≥ 4x the SDK; "
        "the default async ≥ 1.0x bare aiohttp and ≥ 3x the SDK.",
        "",
    ]
    for family, modes in results["e2e"].items():
        kind = "async" if family.startswith("async") else "sync"
        bare = e2e.BARE[kind]
        default = e2e.LATTICE["sync"][0] if kind == "sync" else DEFAULT_ASYNC
        sdk_target = 4.0 if kind == "sync" else 3.0
        for mode, rows in modes.items():
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
                    f"{_ratio(row['rps'], rows[e2e.SDK]['rps']):.2f}x |"
                )
            ours = rows[default]
            lines.append("")
            if "100 ms" in family:
                lines.append(
                    f"- client CPU per create against a 100 ms server: {default} "
                    f"{ours['cpu_us']:.0f} µs, {bare} {rows[bare]['cpu_us']:.0f} µs, stripe SDK "
                    f"{rows[e2e.SDK]['cpu_us']:.0f} µs "
                    f"({_ratio(rows[e2e.SDK]['cpu_us'], ours['cpu_us']):.1f}x lattice-stripe's)."
                )
                lines.append("")
                continue
            vs_bare = _ratio(ours["rps"], rows[bare]["rps"])
            vs_stripe = _ratio(ours["rps"], rows[e2e.SDK]["rps"])
            fair = rows[e2e.FAIR_FLOOR[kind]]
            lines += [
                f"- {default} (default): vs {bare} **{vs_bare:.2f}x** (target ≥ 1.0x: "
                f"{_verdict(vs_bare >= 1.0)}); vs stripe **{vs_stripe:.2f}x** (target ≥ "
                f"{sdk_target:.0f}x: {_verdict(vs_stripe >= sdk_target)}); "
                f"{_ratio(ours['rps'], rows[e2e.LIMIT[kind]]['rps']):.2f}x the "
                f"{e2e.LIMIT[kind]}.",
                f"- client CPU per request: {bare} {rows[bare]['cpu_us']:.0f} µs, fair floor "
                f"over it {fair['cpu_us']:.0f} µs, stdlib floor over it "
                f"{rows[e2e.FLOOR[kind]]['cpu_us']:.0f} µs, "
                + ", ".join(
                    f"{name} {rows[name]['cpu_us']:.0f} µs"
                    for name in (*e2e.LATTICE[kind], e2e.SDK)
                )
                + ".",
                "",
            ]
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
    core_import = _ratio(imports["lattice_stripe (core)"]["wall_ms"], stripe_wall)
    worst = max(_ratio(imports[name]["wall_ms"], stripe_wall) for name in importtime.CASES)
    cold = {name: imports[name]["wall_ms"] for name in importtime.COLD_START}
    ours_cold, stripe_cold = cold.values()
    cold_ratio = _ratio(ours_cold, stripe_cold)
    attrs_alone = _ratio(imports["reference: attrs alone"]["wall_ms"], stripe_wall)
    lines += [
        "",
        f"- `import lattice_stripe` is **{core_import:.2f}x** `import stripe` (target ≤ 0.3x: "
        f"{_verdict(core_import <= 0.3)}); the worst lattice-stripe import (with an "
        f"adapter) is {worst:.2f}x.",
        f"- cold start (fresh interpreter: import + client + first create, stub transport) "
        f"is **{cold_ratio:.2f}x** the SDK's (target ≤ 0.4x: {_verdict(cold_ratio <= 0.4)}).",
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
        "e2e": e2e.run(*((40, 200, 1, 100) if quick else (1500, 3000, 3, 500))),
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
