"""Cases 2 and 3: ``modelpin compile`` cold against the parse floor, and incremental.

Both run in-process through ``modelpin.cli.main`` (the parse floor is in-process too).
A cold compile starts with no output unit and no cache (``$XDG_CACHE_HOME/modelpin/...``);
an incremental compile follows a compile of the same tree with one tenant file edited.
"""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path
from typing import Any

from benchmarks.cases_validate import parse_floor
from benchmarks.fleetgen import NOW
from benchmarks.measure import Row, command_available, median_time, quiet, row, unavailable


def available(command: str) -> bool:
    return command_available(command)


def compile_in_process(root: Path, out: Path) -> None:
    from modelpin.cli import main

    with quiet() as buf:
        code = main(["compile", "--repo", str(root), "--out", str(out), "--now", NOW])
    if code != 0:
        tail = " | ".join(buf.getvalue().strip().splitlines()[-3:])
        raise RuntimeError(f"modelpin compile exited {code}: {tail}")


def _clear(root: Path, out: Path) -> None:
    from modelpin.cli.output_unit import releases_dir
    from modelpin.load.cache import cache_root

    if out.is_symlink():
        out.unlink()
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(releases_dir(out), ignore_errors=True)
    shutil.rmtree(cache_root(root), ignore_errors=True)


def edit_one_tenant(root: Path, i: int) -> None:
    """A real change to one tenant: its ``notes`` field (valid, not only a comment)."""
    tenants = sorted((root / "tenants").iterdir())
    path = tenants[(i * 7919) % len(tenants)]
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines()
             if not ln.startswith("notes: ")]
    lines.append(f'notes: "benchmark edit {i}"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def compile_cases(root: Path, out: Path, tenants: int, repeats: int,
                  floor: float | None) -> tuple[list[Row], dict[str, Any]]:
    cold_metric = f"compile cold vs parse floor ({tenants:,} tenants, in-process)"
    inc_metric = f"incremental compile, 1 tenant changed, vs cold ({tenants:,} tenants)"
    if not available("compile"):
        why = "no 'modelpin compile' command yet"
        return [unavailable("2 compile", cold_metric, "<= 2x", why),
                unavailable("3 incremental", inc_metric, "<= 0.15x", why)], {}
    try:
        if floor is None:
            floor = median_time(lambda: parse_floor(root), repeats)[0]
        compile_in_process(root, out)  # warm-up: imports of routing and signing
        cold, cold_runs = median_time(lambda: compile_in_process(root, out), repeats,
                                      setup=lambda: _clear(root, out))
        _clear(root, out)
        compile_in_process(root, out)
        counter = iter(range(10_000))
        incremental, inc_runs = median_time(
            lambda: compile_in_process(root, out), repeats,
            setup=lambda: edit_one_tenant(root, next(counter)))
    except Exception as exc:  # a command being written may crash: report, go on
        why = f"failed: {exc!r}"
        return [unavailable("2 compile", cold_metric, "<= 2x", why),
                unavailable("3 incremental", inc_metric, "<= 0.15x", why)], {}
    rows = [
        row("2 compile", cold_metric, cold, floor, target="<= 2x",
            baseline_name="yaml CSafeLoader", runs=repeats),
        row("3 incremental", inc_metric, incremental, cold, target="<= 0.15x",
            baseline_name="cold compile", runs=repeats,
            note=f"runs {', '.join(f'{t:.2f}' for t in inc_runs)} s"),
    ]
    return rows, {"compile": cold, "compile_runs": cold_runs, "incremental": incremental,
                  "floor": floor, "median": statistics.median(cold_runs)}
