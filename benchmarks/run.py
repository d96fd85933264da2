"""One command, every performance target: ``python -m benchmarks.run``.

Generates fleets (``benchmarks/.out/``, git-ignored), measures each case as the median
of several runs next to its baseline measured in the same run, and prints the table
with the machine it ran on. A missed target is followed by the cProfile top entries of
the slow side. ``--quick`` (1,000 tenants, fewer repeats) finishes in about a minute;
``--full`` adds the 100,000-tenant scaling point.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # ``python benchmarks/run.py``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import (
    cases_bets,
    cases_bot,
    cases_check,
    cases_compile,
    cases_litellm,
    cases_router,
    cases_runtime,
    cases_validate,
    fleetgen,
    measure,
)
from benchmarks.measure import ROOT, Row, machine, profile_top, row, unavailable
from benchmarks.report import fmt_value, print_report, update_readme

OUT = ROOT / "benchmarks" / ".out"
LINEAR = "<= 1.15x"
"""Per-tenant cost at the larger size over the smaller: linear, within 15% noise."""


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rows: list[Row] = []
        self.profiles: dict[str, list[str]] = {}
        self.fleets: dict[int, tuple[Path, fleetgen.Fleet]] = {}
        self.scaling: dict[str, dict[int, float]] = {"validate": {}, "compile": {},
                                                     "resolve": {}, "floor": {}}
        self.started = time.perf_counter()
        self.failed: list[str] = []
        """Benchmarks whose measured command did not do what the case expects: the run
        still prints its table, then exits 1."""

    def log(self, message: str) -> None:
        elapsed = time.perf_counter() - self.started
        print(f"[{elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)

    def fleet(self, n: int, *, git: bool = False) -> tuple[Path, fleetgen.Fleet]:
        # The main fleet is a git repository from the start when check will need one.
        git = git or (n == self.args.tenants and "4" in self.wanted)
        if n in self.fleets and (not git or (self.fleets[n][0] / ".git").exists()):
            return self.fleets[n]
        root = self.args.out / f"fleet-{n}"
        spec = fleetgen.generate(n, self.args.seed)
        marker = root / ".generated"
        stamp = f"{n} {self.args.seed} {git}"
        if not (self.args.reuse and marker.exists() and marker.read_text() == stamp):
            start = time.perf_counter()
            shutil.rmtree(root, ignore_errors=True)
            fleetgen.write(spec, root)
            if git:
                fleetgen.commit_all(root, f"benchmark fleet: {n} tenants")
            marker.write_text(stamp)
            self.log(f"generated {n:,} tenants in {time.perf_counter() - start:.1f}s -> {root}")
        self.fleets[n] = (root, spec)
        return root, spec

    def add(self, rows: list[Row]) -> None:
        for r in rows:
            shown = "n/a" if r["value"] is None else f"{r['value']:.4g}"
            self.log(f"  {r['case']}: {r['metric']}: {shown} {r.get('note', '')}")
        self.rows.extend(rows)

    def profile(self, key: str, fn: Callable[[], Any]) -> None:
        if self.args.no_profile or key in self.profiles:
            return
        self.log(f"profiling {key}")
        try:
            self.profiles[key] = profile_top(fn, self.args.profile_top)
        except Exception as exc:  # a profile is a courtesy; never lose the table for it
            self.profiles[key] = [f"profile failed: {exc}"]

    # -- cases -------------------------------------------------------------------------

    def case_validate(self) -> None:
        n = self.args.tenants
        root, _ = self.fleet(n)
        self.log(f"case 1: validate vs parse floor at {n:,}")
        rows, m = cases_validate.validate_vs_floor(root, n, self.args.repeats)
        self.floor = m["floor"]
        self.scaling["validate"][n] = m["validate"]
        self.scaling["floor"][n] = m["floor"]
        self.add(rows)
        if rows[0]["met"] is False:
            self.profile("1 validate", lambda: cases_validate.validate_in_process(root))
        self.log(f"case 1: validate vs check-jsonschema at {n:,}")
        self.add(cases_validate.validate_vs_check_jsonschema(root, n, self.args.cjs_repeats))

    def case_compile(self) -> None:
        n = self.args.tenants
        root, _ = self.fleet(n)
        self.log(f"cases 2-3: compile at {n:,}")
        out = self.args.out / f"dist-{n}"
        rows, m = cases_compile.compile_cases(root, out, n, self.args.repeats,
                                              getattr(self, "floor", None))
        if m:
            self.scaling["compile"][n] = m["compile"]
        self.add(rows)
        if rows[0]["met"] is False:
            self.profile(rows[0]["case"], lambda: (
                cases_compile._clear(root, out), cases_compile.compile_in_process(root, out)))
        if len(rows) > 1 and rows[1]["met"] is False:
            self.profile(rows[1]["case"], lambda: (
                cases_compile.edit_one_tenant(root, 9_999),
                cases_compile.compile_in_process(root, out)))

    def case_check(self) -> None:
        n = self.args.tenants
        root, spec = self.fleet(n, git=True)
        self.log(f"case 4: check --base and explain at {n:,}")
        work = self.args.out / f"check-{n}"
        try:
            rows = cases_check.check_cases(root, spec, work, n, self.args.repeats)
        except cases_check.CheckFailed as exc:
            self.log(f"case 4 FAILED: {exc}")
            self.failed.append(f"4 check: {exc}")
            rows = [unavailable("4 check", f"check --base ({n:,} tenants)", "<= 2.5x",
                                f"FAILED: {exc}")]
        except Exception as exc:
            rows = [unavailable("4 check", f"check --base ({n:,} tenants)", "<= 2.5x", str(exc))]
        self.add(rows)
        if rows and rows[0]["met"] is False and not self.failed:
            base = fleetgen.git(work, "rev-parse", "HEAD~1")
            self.profile("4 check", lambda: cases_check.check_in_process(work, base))
        if len(rows) > 1 and rows[1]["met"] is False:
            tenant = rows[1].get("note", "").removeprefix("tenant ")
            self.profile("4 explain (in-process)",
                         lambda: cases_check.explain_in_process(work, tenant))

    def case_router(self) -> None:
        """Cases 5-8 come from ``benchmarks/router_cases.py`` (the router's own file)."""
        self.add(cases_router.router_rows(self.args.tenants, self.args.quick, self.log))

    def case_runtime(self) -> None:
        """Case runtime: the guard loop (breach -> stop on real parts, no false trips)."""
        self.log("case runtime: the guard loop (real routers, prometheus, redis, guard)")
        self.add(cases_runtime.runtime_rows(self.args.quick))

    def case_litellm(self) -> None:
        """Case 9: the LiteLLM hook's latency overhead (needs ``modelpin[litellm]``)."""
        self.log("case 9: LiteLLM proxy latency with and without the modelpin hook")
        self.add(cases_litellm.litellm_rows(100 if self.args.quick else 400, self.log))

    def case_scaling(self) -> None:
        for n in self.sizes:
            if n == self.args.tenants:
                continue
            root, _ = self.fleet(n)
            self.log(f"scaling: validate and compile at {n:,}")
            m = cases_validate.measure_floor_and_validate(root, self.args.scale_repeats(n),
                                                          warm_up=n <= 10_000)
            self.scaling["validate"][n] = m["validate"]
            self.scaling["floor"][n] = m["floor"]
            if cases_compile.available("compile"):
                out = self.args.out / f"dist-{n}"
                try:
                    value, _ = cases_compile.median_time(
                        lambda root=root, out=out: cases_compile.compile_in_process(root, out),
                        self.args.scale_repeats(n),
                        setup=lambda root=root, out=out: cases_compile._clear(root, out))
                    self.scaling["compile"][n] = value
                except Exception as exc:
                    self.log(f"  compile at {n:,} failed: {exc!r}")
        if "5" in self.wanted:
            for n in self.sizes:
                self.log(f"scaling: router resolve at {n:,}")
                try:
                    value = cases_router.resolve_time(n)
                except Exception as exc:
                    self.log(f"  resolve at {n:,} failed: {exc!r}")
                    continue
                if value is not None:
                    self.scaling["resolve"][n] = value
        for name, case in (("floor", "1 validate"), ("validate", "1 validate"),
                           ("compile", "2 compile"), ("resolve", "5 resolve")):
            points = sorted(self.scaling[name].items())
            for (n1, t1), (n2, t2) in itertools.pairwise(points):
                what = {"resolve": "time per resolve", "floor": "parse floor (reference)"
                        }.get(name, "time")
                self.add([row(case, f"scaling {n1:,} -> {n2:,} tenants: {what} growth",
                              t2 / t1, n2 / n1, unit="x",
                              target="report" if name == "floor" else LINEAR,
                              baseline_name="tenant growth",
                              note=f"{fmt_value(t1, 's')} -> {fmt_value(t2, 's')}")])
            if len(points) < 2:
                self.add([unavailable(case, f"scaling ({name})", LINEAR,
                                      "fewer than two sizes measured")])

    def case_bot(self) -> None:
        """Bot statistics under 24 hourly looks (a simulation; rates, not seconds)."""
        canaries = 200 if self.args.quick else 1000
        self.log(f"bot: {canaries} healthy + {canaries} regressed canaries, 24 looks")
        for r in cases_bot.run(canaries, self.args.seed):
            label = f"{r['feed']} data, {r['looks']} interval"
            self.add([
                row("bot", f"false rollbacks, healthy ({label})", r["false_rollbacks"], None,
                    target="<= 0.01" if r["looks"] == "sequential" else "report", unit="",
                    note=f"{canaries} canaries x 24 hourly looks"),
                row("bot", f"rolled back in a day, +3 pt ({label})", r["power"], None,
                    target="report", unit="",
                    note=f"median {r['median_hours']} h" if r["median_hours"] else ""),
            ])

    def case_bets(self) -> None:
        """BETS run throughput against the local provider (``benchmarks/cases_bets.py``)."""
        self.log("bets: 10,000 cases over 100 tenants" if not self.args.quick
                 else "bets: 1,000 cases over 10 tenants")
        self.add(cases_bets.run(self.args.out / "bets", self.args.quick, self.log))

    def run(self) -> int:
        a = self.args
        self.sizes = sorted({*a.sizes, a.tenants})
        wanted = (set(a.only.split(",")) if a.only
                  else {"1", "2", "4", "5", "9", "runtime", "scaling", "bot", "bets"})
        self.wanted = wanted
        info = machine()
        self.log(f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}")
        for key, case in (("1", self.case_validate), ("2", self.case_compile),
                          ("4", self.case_check), ("5", self.case_router),
                          ("9", self.case_litellm), ("runtime", self.case_runtime),
                          ("scaling", self.case_scaling),
                          ("bot", self.case_bot), ("bets", self.case_bets)):
            if key not in wanted:
                continue
            try:
                case()
            except Exception as exc:  # one broken case must not cost the whole table
                self.log(f"case {key} failed: {exc!r}")
                self.add([unavailable(key, case.__name__, "", f"failed: {exc!r}")])
        elapsed = time.perf_counter() - self.started
        command = "python -m benchmarks.run " + " ".join(sys.argv[1:])
        result = {"machine": info, "command": command.strip(), "elapsed_s": round(elapsed, 1),
                  "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "tenants": a.tenants, "clock": a.clock, "sizes": self.sizes, "rows": self.rows,
                  "profiles": self.profiles}
        print_report(result)
        if a.json:
            text = json.dumps(result, indent=2, default=str)
            if str(a.json) == "-":
                print(text)
            else:
                Path(a.json).write_text(text + "\n", encoding="utf-8")
        if self.failed:
            for failure in self.failed:
                print(f"BENCHMARK FAILED: {failure}", file=sys.stderr)
            return 1
        if a.readme:
            update_readme(ROOT / "benchmarks" / "README.md", result)
        return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    p.add_argument("--quick", action="store_true",
                   help="1,000 tenants, fewer repeats, no 100k point (about a minute)")
    p.add_argument("--full", "--scale", dest="full", action="store_true",
                   help="also measure the 100,000-tenant scaling point")
    p.add_argument("--tenants", type=int, default=None,
                   help="size of the main fleet (default 10,000; 1,000 with --quick)")
    p.add_argument("--repeats", type=int, default=None, help="runs per measurement")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--only", default="",
                   help="comma list of: 1 (validate), 2 (compile, incremental), "
                   "4 (check, explain), 5 (router cases 5-9), 9 (LiteLLM hook latency), "
                   "runtime (guard loop: breach -> stop, false trips), scaling, bot (false "
                   "rollbacks and power of the bot's statistics), bets (BETS run throughput "
                   "and memory)")
    p.add_argument("--json", default=None, metavar="PATH", help="write results ('-': stdout)")
    p.add_argument("--readme", action="store_true", help="write the table to benchmarks/README.md")
    p.add_argument("--out", type=Path, default=OUT, help="work directory (fleets, artifacts)")
    p.add_argument("--reuse", action="store_true", help="reuse fleets generated by a prior run")
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                   help="cpu: CPU seconds of the process and its children (steady on a "
                   "shared machine); wall: elapsed time")
    p.add_argument("--no-profile", action="store_true", help="no cProfile of missed targets")
    p.add_argument("--profile-top", type=int, default=12)
    args = p.parse_args(argv)
    if args.tenants is None:
        args.tenants = 1_000 if args.quick else 10_000
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    args.cjs_repeats = 1 if args.quick else 3
    if args.quick:
        args.sizes = [100, 1_000]
    else:
        args.sizes = [1_000, 10_000, *([100_000] if args.full else [])]

    def scale_repeats(n: int) -> int:
        return args.repeats if n <= 10_000 else 2

    args.scale_repeats = scale_repeats
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    measure.CLOCK = args.clock
    return Bench(args).run()


if __name__ == "__main__":
    sys.exit(main())
