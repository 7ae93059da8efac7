"""BENCHMARKS.md and benchmarks/chart.png from the measured figures."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from benchmarks import local, openai_agents, serverless
from benchmarks.ops import Cell

ROOT = Path(__file__).resolve().parent.parent

#: What docs/DESIGN.md ("Performance") promises; the table shows what was counted next to it.
EXPECTED_REQUESTS = {
    "save": "1",
    "save (reject_stale, new)": "2",
    "save (reject_stale)": "2",
    "save (reject_stale, object written without tick metadata)": "3",
    "load": "1",
    "has": "1",
    "save (5 MB)": "1",
    "load (5 MB)": "1",
    "delete": "1",
    "load (absent)": "1",
    "has (absent)": "1",
    "delete (absent)": "1",
}


def _expected(op: str) -> str:
    if op.startswith("list ("):
        n = int(op.split("(")[1].split()[0])
        return str(math.ceil(n / 1000))
    return EXPECTED_REQUESTS.get(op, "?")


def _ops_table(cells: list[Cell]) -> list[str]:
    lines = [
        "| provider | op | size | conc. | store CPU µs/op | by-hand CPU µs/op"
        " | CPU ratio (rounds' range) | store ops/s | by-hand ops/s | throughput ratio |",
        "| --- | --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for c in cells:
        lo, hi = min(c.ratios), max(c.ratios)
        lines.append(
            f"| {c.provider} | {c.op} | {c.size} | {c.concurrency}"
            f" | {c.median('store_cpu_us'):,.0f} | {c.median('hand_cpu_us'):,.0f}"
            f" | **{c.cpu_ratio:.2f}** ({lo:.2f}-{hi:.2f})"
            f" | {c.median('store_ops_s'):,.0f} | {c.median('hand_ops_s'):,.0f}"
            f" | {c.ops_ratio:.2f} |"
        )
    return lines


def _summary(cells: list[Cell]) -> list[str]:
    by_size: dict[str, list[float]] = {}
    for c in cells:
        by_size.setdefault(c.size, []).append(c.cpu_ratio)
    over = [c for c in cells if round(c.cpu_ratio, 2) > 1.0]
    lines = [
        f"- CPU ratio store / by hand, median over the {len(cells)} cells: "
        + ", ".join(
            f"{size}: **{statistics.median(r):.2f}** ({min(r):.2f}-{max(r):.2f})"
            for size, r in by_size.items()
        )
        + ".",
        f"- Cells at or under 1.0: {len(cells) - len(over)} of {len(cells)}.",
        "- Noise of this run: the rounds of a cell spread by"
        f" {statistics.median(max(c.ratios) - min(c.ratios) for c in cells):.2f} (median over"
        " the cells of highest minus lowest round ratio).",
    ]
    if over:
        lines.append(
            "- Over 1.0: "
            + "; ".join(
                f"{c.provider} {c.op} {c.size} c={c.concurrency}: {c.cpu_ratio:.2f}"
                f" (rounds {min(c.ratios):.2f}-{max(c.ratios):.2f})"
                for c in over
            )
            + " (see the notes)."
        )
    return lines


def chart(cells: list[Cell], path: Path) -> bool:
    """Bar charts of the CPU and throughput ratios; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    labels = [f"{c.provider} {c.op} {c.size} c={c.concurrency}" for c in cells]
    x = range(len(cells))
    fig, (cpu_ax, ops_ax) = plt.subplots(2, 1, figsize=(max(9, len(cells) * 0.45), 8), sharex=True)
    ratios = [c.cpu_ratio for c in cells]
    errors = [
        [r - min(c.ratios) for r, c in zip(ratios, cells, strict=True)],
        [max(c.ratios) - r for r, c in zip(ratios, cells, strict=True)],
    ]
    cpu_ax.bar(
        x,
        ratios,
        yerr=errors,
        capsize=2,
        color=["#2a9d8f" if round(r, 2) <= 1.0 else "#e76f51" for r in ratios],
    )
    cpu_ax.axhline(1.0, color="black", linewidth=0.8)
    cpu_ax.set_ylabel("client CPU per op\nstore / by hand (lower is better)")
    cpu_ax.set_title("sessionstore vs hand-written SDK code, same emulator, same run")
    throughput = [c.ops_ratio for c in cells]
    ops_ax.bar(x, throughput, color=["#2a9d8f" if t >= 1.0 else "#e9c46a" for t in throughput])
    ops_ax.axhline(1.0, color="black", linewidth=0.8)
    ops_ax.set_ylabel("throughput\nstore / by hand (higher is better)")
    ops_ax.set_xticks(list(x), labels, rotation=90, fontsize=7)
    fig.text(
        0.01,
        0.005,
        "bars: median of the interleaved rounds; whiskers: lowest and highest round",
        fontsize=7,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _conditions(env: dict[str, Any]) -> list[str]:
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    return [
        f"- When: {env['date']}, {env['duration_s'] / 60:.1f} minutes"
        f"{' (`--quick`)' if env['quick'] else ''}.",
        f"- Machine: {env['machine']}, {env['cpus']} cores shared with other work;"
        f" load average (1 min) {env['load_start']:.1f} at the start,"
        f" {env['load_end']:.1f} at the end.",
        f"- Python {env['python']}; {versions}.",
        "- Servers: the emulators of `localstack/` on loopback (LocalStack S3, fake-gcs-server,"
        f" Azurite), bucket `{env.get('bucket', '?')}`, in their own processes: their CPU is"
        " not counted, their speed sets the throughput.",
        f"- Per cell: {env['rounds']} rounds; each round one batch of the store and one of"
        " the hand-written code (store first in even rounds), each batch saving and then"
        f" loading {env['ops']['10 KB']} snapshots of 10 KB or {env['ops']['1 MB']} of 1 MB.",
    ]


def write(results: dict[str, Any], quick: bool, root: Path = ROOT) -> Path:
    """Write ``root``/BENCHMARKS.md (and the chart) and return its path."""
    cells: list[Cell] = results["cells"]
    (root / "benchmarks").mkdir(exist_ok=True)
    has_chart = chart(cells, root / "benchmarks" / "chart.png")
    out = [
        "# Benchmarks",
        "",
        "What a user of a session store pays, side by side: each store against the code a"
        " user would write by hand with the same SDK and stdlib `json`"
        " (`benchmarks/handwritten.py`), against the same emulator, interleaved in the same"
        " run. These machines are shared and noisy: read the ratios, not the absolute"
        " times. Written by `python -m benchmarks`"
        f"{' --quick' if quick else ''} (see the end of this page).",
        "",
        "## Conditions of this run",
        "",
        *_conditions(results["env"]),
        "",
        "## Client CPU per operation and throughput",
        "",
        "CPU is the benchmark process's user+sys time (all its threads) per operation."
        " The ratio is store / by hand per round; the cell shows the median round and,"
        " in brackets, the lowest and highest round.",
        "",
        *_summary(cells),
        "",
        *_ops_table(cells),
        "",
    ]
    if has_chart:
        out += ["![CPU and throughput ratios per cell](benchmarks/chart.png)", ""]
    if results.get("calls"):
        out += [
            "### Work per operation, counted",
            "",
            "Function calls per operation at concurrency 1, counted by a profile hook in every"
            " thread (`benchmarks/calls.py`): unlike CPU time, they do not move with the"
            " machine's load. Python calls are the SDK's and the store's code; calls into C"
            " are mostly builtins (the store's JSON check makes about one per JSON value;"
            " all of `json.dumps` is one).",
            "",
            "| provider | size | op | store Python calls | by-hand Python calls"
            " | store C calls | by-hand C calls |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for row in results["calls"]:
            for op in ("save", "load"):
                out.append(
                    f"| {row['provider']} | {row['size']} | {op}"
                    f" | {row[f'{op} store py']:,.0f} | {row[f'{op} hand py']:,.0f}"
                    f" | {row[f'{op} store c']:,.0f} | {row[f'{op} hand c']:,.0f} |"
                )
        out.append("")
    requests = results["requests"]
    out += [
        "## Requests per operation",
        "",
        "Counted at each SDK's HTTP layer (botocore `before-send`, a response hook on the"
        " GCS client's `requests` session, Azure's `raw_request_hook`), not assumed.",
        "",
        "| operation | expected | " + " | ".join(requests) + " |",
        "| --- | ---: |" + " ---: |" * len(requests),
    ]
    for op in next(iter(requests.values())):
        counts = [requests[p].get(op) for p in requests]
        expected = _expected(op)
        marks = [str(n) if str(n) == expected else f"**{n}** (!)" for n in counts]
        out.append(f"| {op} | {expected} | " + " | ".join(marks) + " |")
    out += [
        "",
        "## Codecs",
        "",
        "Best of several timings in this process (noise only adds time). MB/s are megabytes"
        " of JSON per second (the"
        " stdlib's output size), so rows compare directly; ratio is JSON bytes / stored bytes.",
        "",
        "| size | codec | stored bytes | ratio | encode ms | decode ms | encode MB/s"
        " | decode MB/s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results["codecs"]:
        out.append(
            f"| {r['size']} | {r['codec']} | {r['bytes']:,} | {r['ratio']:.2f} |"
            f" {r['encode_ms']:.3f} | {r['decode_ms']:.3f} | {r['encode_mb_s']:,.0f}"
            f" | {r['decode_mb_s']:,.0f} |"
        )
    cold = results["coldstart"]
    imp = cold["import"]
    top = ", ".join(f"`{name}` {ms:.1f}" for ms, name in imp["top_self"])
    out += [
        "",
        "## Cold start",
        "",
        "Fresh interpreters with their bytecode cache (as after `pip install`), medians.",
        "",
        f"- `import sessionstore`: {imp['importtime_ms']:.0f} ms by `python -X importtime`"
        f" ({imp['import_ms']:.0f} ms of wall time over a bare interpreter),"
        f" {imp['modules']} modules loaded. Cloud SDK or HTTP client modules loaded:"
        f" **{', '.join(imp['sdk_modules']) or 'none'}**. Most self time (ms): {top}.",
        "",
        "| provider | import the store's module ms | import what the by-hand code imports ms |",
        "| --- | ---: | ---: |",
    ]
    for provider, i in cold["provider_imports"].items():
        out.append(f"| {provider} | {i['store_ms']:.0f} | {i['hand_ms']:.0f} |")
    out += [
        "",
        "A fresh process's first save, for both APIs, is in the next section.",
        "",
    ]
    if "serverless" in results:
        out += serverless.section(results["serverless"])
    if results.get("agents"):
        out += ["", *openai_agents.section(**results["agents"])]
    if results.get("local"):
        out += ["", *local.section(*results["local"])]
    out += ["", "## Notes", "", *results.get("notes", []), ""]
    out += [
        "## Reproduce",
        "",
        "```",
        'eval "$(localstack/up)"',
        ".venv/bin/pip install -e '.[all,bench]'",
        ".venv/bin/python -m benchmarks            # ~5 minutes on a quiet machine; --quick: ~2",
        ".venv/bin/python -m benchmarks.profile azure load 10KB [--calls]   # one cell, profiled",
        ".venv/bin/python -m benchmarks.serverless [--quick]   # only the Serverless section",
        ".venv/bin/python -m benchmarks.local [--quick]   # only the Local stores section",
        "```",
        "",
    ]
    path = root / "BENCHMARKS.md"
    path.write_text("\n".join(out))
    return path
