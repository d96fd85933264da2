"""The results table: a rich table on the terminal, a Markdown table in the README."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.measure import Row

CLOCKS = {"cpu": "CPU seconds (process + children), median of runs",
          "wall": "wall-clock seconds, median of runs"}
START, END = "<!-- results:start -->", "<!-- results:end -->"


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        if value < 0.001:
            return f"{value * 1e6:.2f} µs"
        return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.3f} s"
    if unit == "x":
        return f"{value:.2f}x"
    if unit in ("/s", "ops/s"):
        return f"{value:,.0f}/s"
    if unit in ("MiB", "MB", "KiB"):
        return f"{value:,.1f} {unit}"
    if unit in ("ms", "us", "µs"):
        return f"{value:,.3g} {unit}"
    if abs(value) >= 1000:
        return f"{value:,.0f} {unit}".strip()
    return f"{value:.4g} {unit}".strip()


def fmt_ratio(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.3g}x"


def fmt_met(met: bool | None) -> str:
    return {True: "yes", False: "NO", None: "-"}[met]


def _cells(r: Row) -> list[str]:
    unit = r.get("unit", "s") or ""
    base = fmt_value(r.get("baseline"), unit)
    if r.get("baseline_name") and r.get("baseline") is not None:
        base = f"{base} ({r['baseline_name']})"
    metric = r["metric"] + (f" [{r['note']}]" if r.get("note") else "")
    return [r["case"], metric, fmt_value(r.get("value"), unit), base,
            fmt_ratio(r.get("ratio")), r.get("target", ""), fmt_met(r.get("met"))]


def machine_line(m: dict[str, Any]) -> str:
    return (f"{m['cpu']}, {m['cores']} cores, {m.get('memory_gib')} GiB, {m['os']}, "
            f"{m['implementation']} {m['python']}, PyYAML {m['pyyaml']} "
            f"(libyaml {'yes' if m['libyaml'] else 'NO'}), pydantic {m['pydantic']}")


def missed(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.get("met") is False]


def print_report(result: dict[str, Any]) -> None:
    console = Console(width=200)
    table = Table(title=f"modelpin benchmarks — {result['tenants']:,} tenants",
                  show_lines=False)
    for name, justify in (("case", "left"), ("metric", "left"), ("median", "right"),
                          ("baseline", "right"), ("ratio", "right"), ("target", "left"),
                          ("met", "center")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in result["rows"]:
        cells = _cells(r)
        style = {"NO": "red", "yes": "green"}.get(cells[-1])
        table.add_row(*cells, style=style)
    console.print(table)
    console.print(f"machine: {machine_line(result['machine'])}")
    console.print(f"command: {result['command']}   elapsed: {result['elapsed_s']} s wall   "
                  f"times: {CLOCKS.get(result.get('clock', 'wall'), '')}")
    bad = missed(result["rows"])
    if bad:
        console.print(f"\n[bold red]{len(bad)} target(s) not met:[/]")
        for r in bad:
            console.print(f"  {r['case']}: {r['metric']}: ratio {fmt_ratio(r.get('ratio'))}"
                          f" (value {fmt_value(r.get('value'), r.get('unit', 's'))}),"
                          f" target {r['target']}")
    na = [r for r in result["rows"] if r.get("value") is None]
    if na:
        console.print(f"\n{len(na)} case(s) not measured:")
        for r in na:
            console.print(f"  {r['case']}: {r['metric']}: {r.get('note', '')}")
    for key, lines in result.get("profiles", {}).items():
        console.print(f"\ncProfile of {key} (top by own time):")
        for line in lines:
            console.print(f"  {line}", markup=False, highlight=False)


def markdown(result: dict[str, Any]) -> str:
    head = ["case", "metric", "median", "baseline", "ratio", "target", "met"]
    lines = [f"Measured {result['date']} with `{result['command']}` "
             f"({result['elapsed_s']} s) on: {machine_line(result['machine'])}. Times are "
             f"{CLOCKS.get(result.get('clock', 'wall'), '')}.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["rows"]:
        cells = [c.replace("|", "\\|") for c in _cells(r)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def update_readme(path: Path, result: dict[str, Any]) -> None:
    """Replace the results section of ``path`` (between the markers) with this run's."""
    text = path.read_text(encoding="utf-8") if path.exists() else f"{START}\n{END}\n"
    block = f"{START}\n{markdown(result)}\n{END}"
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _m: block, text,
                      flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
