"""BENCHMARKS.md and benchmarks/chart.png from the measured figures."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from benchmarks.ops import Cell

ROOT = Path(__file__).resolve().parent.parent


def _ops_table(cells: list[Cell]) -> list[str]:
    lines = [
        "| provider | op | size | concurrency | store CPU µs/op | by-hand CPU µs/op"
        " | CPU ratio | store ops/s | by-hand ops/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in cells:
        lines.append(
            f"| {c.provider} | {c.op} | {c.size} | {c.concurrency} | {c.store_cpu_us:,.0f}"
            f" | {c.hand_cpu_us:,.0f} | **{c.cpu_ratio:.2f}** | {c.store_ops_s:,.0f}"
            f" | {c.hand_ops_s:,.0f} |"
        )
    return lines


def chart(cells: list[Cell], path: Path) -> bool:
    """A bar chart of the CPU ratios; False if matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    labels = [f"{c.provider} {c.op}\n{c.size} c={c.concurrency}" for c in cells]
    ratios = [c.cpu_ratio for c in cells]
    fig, ax = plt.subplots(figsize=(max(8, len(cells) * 0.55), 4.5))
    ax.bar(range(len(cells)), ratios, color=["#2a9d8f" if r <= 1.0 else "#e76f51" for r in ratios])
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(cells)), labels, rotation=90, fontsize=7)
    ax.set_ylabel("client CPU per op: store / by hand")
    ax.set_title("sessionstore vs hand-written SDK code (lower is better; 1.0 = same)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(results: dict[str, Any], quick: bool, root: Path = ROOT) -> Path:
    """Write ``root``/BENCHMARKS.md (and the chart) and return its path."""
    cells: list[Cell] = results["cells"]
    (root / "benchmarks").mkdir(exist_ok=True)
    has_chart = chart(cells, root / "benchmarks" / "chart.png")
    out = [
        "# Benchmarks",
        "",
        "Written by `python -m benchmarks` (the numbers below are from one run"
        f"{', --quick' if quick else ''}) against the local cloud of `localstack/`"
        f" on {platform.machine()}, Python {platform.python_version()}, a shared 2-core"
        " machine. Absolute times are noisy here: read the ratios, measured store vs by hand"
        " interleaved in the same run (medians of several runs).",
        "",
        "## Client CPU per operation and throughput",
        "",
        "Process user+sys CPU per operation (the emulators run in other processes), store"
        " vs the code a user writes by hand with the same SDK and stdlib `json`"
        " (`benchmarks/handwritten.py`).",
        "",
        *_ops_table(cells),
        "",
    ]
    if has_chart:
        out += ["![CPU ratio per cell](benchmarks/chart.png)", ""]
    out += [
        "## Requests per operation (counted at the HTTP layer)",
        "",
        "| operation | " + " | ".join(results["requests"]) + " |",
        "| --- |" + " --- |" * len(results["requests"]),
    ]
    ops = next(iter(results["requests"].values()))
    for op in ops:
        out.append(
            f"| {op} | "
            + " | ".join(str(counts[op]) for counts in results["requests"].values())
            + " |"
        )
    out += [
        "",
        "## Codecs",
        "",
        "| size | codec | stored bytes | ratio | encode ms | decode ms | encode MB/s"
        " | decode MB/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results["codecs"]:
        out.append(
            f"| {r['size']} | {r['codec']} | {r['bytes']:,} | {r['ratio']:.2f} |"
            f" {r['encode_ms']:.2f} | {r['decode_ms']:.2f} | {r['encode_mb_s']:,.0f}"
            f" | {r['decode_mb_s']:,.0f} |"
        )
    cold = results["coldstart"]
    out += [
        "",
        "## Cold start",
        "",
        f"- `import sessionstore`: {cold['import']['import_ms']:.0f} ms over a bare"
        f" interpreter, {cold['import']['modules']} modules, cloud SDK modules loaded:"
        f" {cold['import']['sdk_modules'] or 'none'}.",
        "",
        "| provider | fresh process to first save: store ms | by hand ms | ratio |",
        "| --- | --- | --- | --- |",
    ]
    for provider, f in cold["first_save"].items():
        out.append(f"| {provider} | {f['store_ms']:.0f} | {f['hand_ms']:.0f} | {f['ratio']:.2f} |")
    out += ["", "## Notes", "", *results.get("notes", []), ""]
    path = root / "BENCHMARKS.md"
    path.write_text("\n".join(out))
    return path
