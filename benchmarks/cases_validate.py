"""Case 1: ``modelpin validate`` against the C-loader parse floor and check-jsonschema.

The parse floor is the least any YAML validator must do: walk the config folders, read
every file and ``yaml.load`` it with ``CSafeLoader``, keeping the results. modelpin does
that and more (duplicate keys, pydantic models, cross-file references), in the same
process, so the ratio is the price of validation over parsing.

check-jsonschema validates only the tenant files against the exported tenant schema;
``modelpin validate`` checks every file and every reference. Both run as the commands a
user types, as subprocesses, so both pay interpreter start-up.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from benchmarks.fleetgen import NOW
from benchmarks.measure import Row, median_time, quiet, row, run_command, tool, unavailable

CONFIG_DIRS = ("policies", "model_versions", "tenants", "evidence")
ARG_BYTES = 1 << 20
"""Bytes of file names per check-jsonschema process (xargs-style, under ARG_MAX)."""


def parse_floor(root: Path) -> list[Any]:
    """Walk, read and ``yaml.load(CSafeLoader)`` every config file under ``root``."""
    out = []
    base = str(root)
    for top in CONFIG_DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(base, top)):
            dirnames.sort()
            for name in sorted(filenames):
                with open(os.path.join(dirpath, name), "rb") as fh:
                    out.append(yaml.load(fh.read(), Loader=yaml.CSafeLoader))
    return out


def validate_in_process(root: Path) -> None:
    from modelpin.cli import main

    with quiet():
        code = main(["validate", "--repo", str(root), "--now", NOW])
    if code != 0:
        raise RuntimeError(f"modelpin validate exited {code} on {root}")


def measure_floor_and_validate(root: Path, repeats: int, *,
                               warm_up: bool = True) -> dict[str, Any]:
    """Interleaved medians, so that a noisy neighbour hits both sides alike."""
    if warm_up:  # imports, lazy caches, page cache
        parse_floor(root)
        validate_in_process(root)
    floor_times, validate_times = [], []
    for _ in range(repeats):
        floor_times.append(median_time(lambda: parse_floor(root), 1)[0])
        validate_times.append(median_time(lambda: validate_in_process(root), 1)[0])
    import statistics

    return {"floor": statistics.median(floor_times), "validate": statistics.median(validate_times),
            "floor_runs": floor_times, "validate_runs": validate_times}


def validate_vs_floor(root: Path, tenants: int, repeats: int) -> tuple[list[Row], dict[str, Any]]:
    m = measure_floor_and_validate(root, repeats)
    rows = [row("1 validate", f"validate vs parse floor ({tenants:,} tenants, in-process)",
                m["validate"], m["floor"], target="<= 1.5x", baseline_name="yaml CSafeLoader",
                runs=repeats)]
    return rows, m


def _batches(names: list[str]) -> list[list[str]]:
    batches: list[list[str]] = [[]]
    size = 0
    for name in names:
        if size + len(name) + 1 > ARG_BYTES and batches[-1]:
            batches.append([])
            size = 0
        batches[-1].append(name)
        size += len(name) + 1
    return batches


def validate_vs_check_jsonschema(root: Path, tenants: int, repeats: int) -> list[Row]:
    metric = f"validate vs check-jsonschema, tenant files ({tenants:,} tenants, subprocess)"
    target = "<= 0.2x (>= 5x faster)"
    cjs = tool("check-jsonschema")
    if not Path(cjs).exists():
        return [unavailable("1 validate", metric, target, "check-jsonschema is not installed")]
    with tempfile.TemporaryDirectory(prefix="mp-schemas-") as tmp:
        run_command([tool("modelpin"), "schema", "--out", tmp])
        schema = str(Path(tmp) / "tenant.schema.json")
        tenant_dir = root / "tenants"
        batches = _batches(sorted(os.listdir(tenant_dir)))

        def check_jsonschema() -> None:
            for batch in batches:
                run_command([cjs, "--schemafile", schema, *batch], cwd=tenant_dir)

        def modelpin_validate() -> None:
            run_command([tool("modelpin"), "validate", "--repo", str(root), "--now", NOW])

        cjs_times, mp_times = [], []
        for _ in range(repeats):
            mp_times.append(median_time(modelpin_validate, 1)[0])
            cjs_times.append(median_time(check_jsonschema, 1)[0])
    import statistics

    note = (f"check-jsonschema: {len(batches)} process(es); modelpin also checks evidence, "
            "models and cross-file references")
    return [row("1 validate", metric, statistics.median(mp_times), statistics.median(cjs_times),
                target=target, baseline_name="check-jsonschema", runs=repeats, note=note)]
