"""Timing, result rows and the machine description shared by every benchmark case.

A ``Row`` is one line of the table: a measured value (the median of several runs), the
baseline measured in the same run, their ratio ``value / baseline`` and the target that
ratio must meet. Rows are plain dicts so that ``benchmarks/router_cases.py`` can build
them without importing this module.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

Row = dict[str, Any]
"""{"case", "metric", "value", "baseline", "ratio", "target", "met"} plus optional
"unit", "baseline_name", "note", "runs", "profile"."""

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """A console script of the running interpreter's environment (``.venv/bin/<name>``)."""
    candidate = VENV_BIN / name
    return str(candidate) if candidate.exists() else name


def command_available(name: str) -> bool:
    """Whether ``modelpin <name>`` exists (commands may load lazily, or not exist yet)."""
    import click

    from modelpin.cli import cli

    try:
        return cli.get_command(click.Context(cli), name) is not None
    except ImportError:
        return False


def row(case: str, metric: str, value: float | None, baseline: float | None, *,
        target: str, unit: str = "s", baseline_name: str = "", note: str = "",
        runs: int = 0, ratio: float | None = None, met: bool | None = None) -> Row:
    """A table row; ``ratio`` defaults to value / baseline and ``met`` to the target."""
    if ratio is None and value is not None and baseline:
        ratio = value / baseline
    if met is None:
        met = meets(target, ratio if baseline is not None else value)
    return {"case": case, "metric": metric, "value": value, "baseline": baseline,
            "ratio": ratio, "target": target, "met": met, "unit": unit,
            "baseline_name": baseline_name, "note": note, "runs": runs}


def unavailable(case: str, metric: str, target: str, why: str) -> Row:
    return {"case": case, "metric": metric, "value": None, "baseline": None, "ratio": None,
            "target": target, "met": None, "unit": "", "baseline_name": "",
            "note": f"not available: {why}", "runs": 0}


def meets(target: str, number: float | None) -> bool | None:
    """``"<= 1.5"`` / ``">= 15"`` / ``"< 1"`` (the first token after the operator)."""
    if number is None:
        return None
    parts = target.split()
    if len(parts) < 2:
        return None
    op, raw = parts[0], parts[1].rstrip("xs,")
    try:
        limit = float(raw.replace(",", "").replace("_", ""))
    except ValueError:
        return None
    return {"<=": number <= limit, "<": number < limit, ">=": number >= limit,
            ">": number > limit}.get(op)


CLOCK = "cpu"
"""``cpu``: CPU seconds of this process and its finished children (user + system), which
stay put when neighbours load the machine; on an idle machine they equal wall time for
these single-threaded, page-cached workloads. ``wall``: ``time.perf_counter``."""


def clock() -> float:
    if CLOCK == "wall":
        return time.perf_counter()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def median_time(fn: Callable[[], Any], repeats: int,
                setup: Callable[[], Any] | None = None) -> tuple[float, list[float]]:
    """Median time of ``fn`` over ``repeats`` runs (``setup`` runs untimed before each)."""
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times), times


def run_command(
    argv: Sequence[str], *, cwd: Path | None = None, check_codes: Sequence[int] = (0,)
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Time of one subprocess run; raises ``RuntimeError`` on an unexpected exit code."""
    start = clock()
    proc = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = clock() - start
    if proc.returncode not in check_codes:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{Path(argv[0]).name} {argv[1] if len(argv) > 1 else ''} exited "
                           f"{proc.returncode}: {' | '.join(tail)}")
    return elapsed, proc


@contextlib.contextmanager
def quiet() -> Iterator[io.StringIO]:
    """Swallow stdout and stderr of in-process CLI calls."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        yield buf


def profile_top(fn: Callable[[], Any], limit: int = 12) -> list[str]:
    """cProfile ``fn`` once; the top entries by own time, one formatted line each."""
    prof = cProfile.Profile()
    prof.enable()
    try:
        fn()
    finally:
        prof.disable()
    table = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in table.values())
    entries = [f"total {total:.3f}s; by own time:"]

    def line(key: tuple[str, int, str], value: tuple[Any, ...]) -> str:
        (filename, lineno, func), (_cc, calls, tottime, cumtime, _) = key, value
        share = 100 * tottime / total if total else 0
        return (f"{tottime:7.3f}s {share:4.1f}% cum {cumtime:7.3f}s {calls:>9} calls  "
                f"{_short(filename)}:{lineno}({func})")

    by_own = sorted(table.items(), key=lambda kv: kv[1][2], reverse=True)
    entries += [line(k, v) for k, v in by_own[:limit]]
    ours = [(k, v) for k, v in table.items() if "modelpin/" in k[0]]
    entries.append("modelpin functions by cumulative time:")
    entries += [line(k, v) for k, v in sorted(ours, key=lambda kv: kv[1][3],
                                               reverse=True)[:limit]]
    return entries


def _short(filename: str) -> str:
    for marker in ("site-packages/", "compiler/", "lib/python"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, OS and Python: printed above the table."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    import pydantic
    import yaml

    return {"cpu": cpu, "cores": cores, "memory_gib": mem,
            "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "pyyaml": yaml.__version__, "libyaml": bool(getattr(yaml, "__with_libyaml__", False)),
            "pydantic": pydantic.VERSION}
