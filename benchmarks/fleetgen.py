"""Synthetic fleets of any size, shaped like the example fleet, for the benchmarks.

Deterministic for a seed: the same ``--tenants`` and ``--seed`` write byte-identical
trees. Tenants are spread over the four rollout groups with 1-3 aliases each (chat and
embedding), tool schemas on about a third, freezes and structured-error policies on a
few, and rollouts at every stage: shadow, canary at each ladder step (with manual
approvals in the conservative group), paused, rolled-back, and plain pins. Every rollout
in flight has passing BETS evidence, signed (a DSSE envelope, ``.dsse.json``) by an
evaluator key derived from the seed and listed in ``policies/evaluators.yaml``, so the gate
(``check``) accepts it as it would a real evaluator's. The tree validates with no errors
and no warnings at ``NOW``.

Usage::

    python -m benchmarks.fleetgen --tenants 10000 --out /tmp/fleet [--git] [--seed 7]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelpin import attestation, signing
from modelpin.load.layout import EVALUATORS, SIGNED_EVIDENCE_SUFFIX

NOW = "2026-11-22T00:00:00Z"
"""The time every benchmark evaluates at (``--now``)."""
NOW_DT = datetime(2026, 11, 22, tzinfo=UTC)
BASE_COMMIT_DATE = "2026-11-21T12:00:00Z"
"""Commit time of the generated fleet; a head commit with changes is made at ``NOW``."""

GROUPS: dict[str, dict[str, Any]] = {
    "pioneers": {"after": [], "ladder": [100], "soak": "0h", "approval": "none",
                 "shadow": "0h", "bets": (0.90, 50)},
    "early": {"after": ["pioneers"], "ladder": [10, 100], "soak": "24h", "approval": "none",
              "shadow": "24h", "bets": (0.95, 200)},
    "standard": {"after": ["early"], "ladder": [5, 25, 50, 100], "soak": "24h",
                 "approval": "none", "shadow": "24h", "bets": (0.95, 200)},
    "conservative": {"after": ["standard"], "ladder": [1, 5, 25, 50, 100], "soak": "72h",
                     "approval": "manual", "shadow": "72h", "bets": (0.98, 500)},
}
GROUP_WEIGHTS = {"pioneers": 3, "early": 12, "standard": 55, "conservative": 30}

MODELS: dict[str, dict[str, str]] = {
    "gpt-5-2026-01-10": {"provider": "openai", "kind": "chat", "released": "2026-01-10",
                         "deprecated_on": "2026-10-01"},
    "gpt-5-2026-09-14": {"provider": "openai", "kind": "chat", "released": "2026-09-14"},
    "claude-4-20260201": {"provider": "anthropic", "kind": "chat", "released": "2026-02-01"},
    "claude-4-5-20260915": {"provider": "anthropic", "kind": "chat", "released": "2026-09-15"},
    "text-embedding-4-2026-02-01": {"provider": "openai", "kind": "embedding",
                                    "released": "2026-02-01"},
    "text-embedding-4-2026-08-20": {"provider": "openai", "kind": "embedding",
                                    "released": "2026-08-20"},
}
WORKLOADS = ["chat", "json-extraction", "classification", "tool-agent", "retrieval"]
UPGRADES: list[dict[str, Any]] = [
    {"from": "gpt-5-2026-01-10", "to": "gpt-5-2026-09-14",
     "verdicts": {"chat": "compatible", "json-extraction": "needs-prompt-changes",
                  "classification": "compatible", "tool-agent": "compatible",
                  "retrieval": "compatible"},
     "notes": "wraps JSON in markdown fences unless the prompt forbids it"},
    {"from": "claude-4-20260201", "to": "claude-4-5-20260915",
     "verdicts": {"chat": "compatible", "json-extraction": "compatible",
                  "classification": "needs-prompt-changes", "tool-agent": "compatible",
                  "retrieval": "compatible"},
     "notes": "renames tool-call argument keys to camelCase"},
    {"from": "text-embedding-4-2026-02-01", "to": "text-embedding-4-2026-08-20",
     "verdicts": {"chat": "compatible", "json-extraction": "compatible",
                  "classification": "needs-prompt-changes", "tool-agent": "compatible",
                  "retrieval": "compatible"},
     "notes": "new vector space; indexes must be rebuilt before canary traffic"},
]
NEXT = {u["from"]: u["to"] for u in UPGRADES}
VERDICT = {(u["from"], w): v for u in UPGRADES for w, v in u["verdicts"].items()}
JUDGE = {"openai": "claude-4-20260201", "anthropic": "gpt-5-2026-09-14"}

STAGES = ("pinned", "shadow", "canary", "paused", "rolled-back")
STAGE_WEIGHTS = (50, 12, 25, 6, 7)
ROLLABLE = tuple(NEXT)

TOOL_SCHEMAS: list[tuple[str, dict[str, Any]]] = [
    ("lookup_order", {"type": "object", "required": ["order_id"],
                      "properties": {"order_id": {"type": "string"}}}),
    ("open_ticket", {"type": "object", "required": ["ticket_id", "status"],
                     "properties": {"ticket_id": {"type": "integer"},
                                    "status": {"enum": ["open", "pending", "closed"]}}}),
    ("book_flight", {"type": "object", "required": ["origin", "destination", "date"],
                     "properties": {"origin": {"type": "string", "pattern": "^[A-Z]{3}$"},
                                    "destination": {"type": "string",
                                                    "pattern": "^[A-Z]{3}$"},
                                    "date": {"type": "string", "format": "date"}},
                     "additionalProperties": False}),
    ("lookup_clause", {"type": "object", "required": ["clause_id"],
                       "properties": {"clause_id": {"type": "string"}},
                       "additionalProperties": False}),
]
NAMES = ["acme", "beta", "civic", "harbor", "lab", "meridian", "nimbus", "northwind",
         "orbit", "pixel", "quill", "river", "summit", "tidal", "umbra", "vertex"]
SUFFIXES = ["legal", "retail", "support", "bank", "travel", "health", "media", "notes",
            "labs", "cloud", "analytics", "energy"]
REASONS = ["p95 latency regression on canary (INC-{n})",
           "tool-call failure rate 2.1% vs 0.4% stable (INC-{n})",
           "waiting for prompt review (PR #{n})",
           "fraud-label drift: precision 0.91 -> 0.84 on canary (INC-{n})"]


def ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class AliasSpec:
    name: str
    kind: str
    pin: str
    stage: str = "pinned"
    candidate: str | None = None
    percent: float | None = None
    since: str | None = None
    reason: str | None = None
    ack: bool = False
    approvals: list[float] = field(default_factory=list)


@dataclass
class TenantSpec:
    id: str
    group: str
    workload: str
    suite: tuple[str, int]
    aliases: list[AliasSpec]
    tools: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    freeze: bool = False
    structured_error: bool = False
    owner: str | None = None


@dataclass
class Fleet:
    tenants: list[TenantSpec]
    seed: int

    def stage_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STAGES, 0)
        for tenant in self.tenants:
            for alias in tenant.aliases:
                counts[alias.stage] += 1
        return counts

    def canary_steps(self) -> set[tuple[str, float]]:
        return {(t.group, a.percent) for t in self.tenants for a in t.aliases
                if a.stage == "canary" and a.percent is not None}


def _pick_group(rng: random.Random) -> str:
    return rng.choices(list(GROUP_WEIGHTS), weights=list(GROUP_WEIGHTS.values()))[0]


def _rollout(rng: random.Random, tenant: TenantSpec, alias: AliasSpec, stage: str,
             i: int) -> None:
    """Put ``alias`` in ``stage`` (shadow | canary | paused | rolled-back)."""
    group = GROUPS[tenant.group]
    alias.stage = stage
    alias.candidate = NEXT[alias.pin]
    verdict = VERDICT.get((alias.pin, tenant.workload), "unknown")
    alias.ack = verdict == "needs-prompt-changes"
    alias.since = ts(NOW_DT - timedelta(hours=rng.randint(2, 24 * 20)))
    if stage in ("canary", "paused"):
        ladder = group["ladder"]
        alias.percent = ladder[i % len(ladder)] if stage == "canary" else rng.choice(ladder)
        if group["approval"] == "manual":
            alias.approvals = [s for s in ladder if s <= alias.percent]
    if stage in ("paused", "rolled-back"):
        alias.reason = rng.choice(REASONS).format(n=rng.randint(1000, 9999))


def generate(n: int, seed: int = 7) -> Fleet:
    """``n`` tenants; the same (n, seed) always gives the same fleet."""
    rng = random.Random(seed)
    tenants: list[TenantSpec] = []
    width = max(5, len(str(n)))
    for i in range(n):
        tid = f"{NAMES[i % len(NAMES)]}-{SUFFIXES[(i // len(NAMES)) % len(SUFFIXES)]}-{i:0{width}d}"
        group = _pick_group(rng)
        workload = rng.choice(WORKLOADS)
        suite = (f"{tid}-suite", rng.randint(1, 15))
        aliases: list[AliasSpec] = []
        chat_pins = ["gpt-5-2026-01-10", "claude-4-20260201", "gpt-5-2026-09-14",
                     "claude-4-5-20260915"]
        if workload == "retrieval":
            aliases.append(AliasSpec("search-embedder", "embedding",
                                     rng.choice(["text-embedding-4-2026-02-01"] * 3
                                                + ["text-embedding-4-2026-08-20"])))
            if rng.random() < 0.6:
                aliases.append(AliasSpec("answers", "chat", rng.choice(chat_pins)))
        else:
            aliases.append(AliasSpec("primary", "chat", rng.choices(chat_pins,
                                                                    weights=[5, 3, 1, 1])[0]))
            if rng.random() < 0.45:
                aliases.append(AliasSpec("embedder", "embedding", rng.choice(
                    ["text-embedding-4-2026-02-01", "text-embedding-4-2026-08-20"])))
            if rng.random() < 0.2:
                aliases.append(AliasSpec("classifier", "chat", rng.choice(chat_pins[:2])))
        tenant = TenantSpec(tid, group, workload, suite, aliases)
        if workload == "tool-agent" or rng.random() < 0.2:
            tenant.tools = rng.sample(TOOL_SCHEMAS, rng.randint(1, 2))
        tenant.freeze = rng.random() < 0.03
        tenant.structured_error = rng.random() < 0.1
        if rng.random() < 0.3:
            tenant.owner = f"team-{NAMES[rng.randrange(len(NAMES))]}@platform.example"
        for j, alias in enumerate(aliases):
            if alias.pin not in ROLLABLE:
                continue
            # The first few tenants cover every stage and every ladder step for sure.
            if i < 40:
                stage = STAGES[(i + j) % len(STAGES)]
            else:
                stage = rng.choices(STAGES, weights=STAGE_WEIGHTS)[0]
            if stage != "pinned":
                _rollout(rng, tenant, alias, stage, i + j)
        tenants.append(tenant)
    _cover_ladders(tenants)
    return Fleet(tenants, seed)


def _cover_ladders(tenants: list[TenantSpec]) -> None:
    """Make sure every group has a canary at every step of its ladder (small fleets)."""
    rng = random.Random(0)
    have = {(t.group, a.percent) for t in tenants for a in t.aliases if a.stage == "canary"}
    for group, spec in GROUPS.items():
        for k, step in enumerate(spec["ladder"]):
            if (group, step) in have:
                continue
            for tenant in tenants:
                spare = [a for a in tenant.aliases if a.stage == "pinned" and a.pin in ROLLABLE]
                if tenant.group == group and spare:
                    _rollout(rng, tenant, spare[0], "canary", k)
                    have.add((group, step))
                    break


def _pct(value: float) -> str:
    return f"{value:g}"


def tenant_yaml(t: TenantSpec) -> str:
    out = ["# yaml-language-server: $schema=../schemas/tenant.schema.json",
           f"id: {t.id}", f"group: {t.group}", f"workload: {t.workload}"]
    if t.freeze:
        out.append("freeze: true   # procurement freeze")
    if t.structured_error:
        out.append("failure_policy: structured-error")
    if t.owner:
        out.append(f"owner: {t.owner}")
    out.append(f"bets_suite: {{id: {t.suite[0]}, version: {t.suite[1]}}}")
    if t.tools:
        out.append("tools:")
        out.extend(f"  {name}: {json.dumps(schema)}" for name, schema in t.tools)
    out.append("aliases:")
    for a in t.aliases:
        out += [f"  {a.name}:", f"    kind: {a.kind}", f"    pin: {a.pin}"]
        if a.stage == "pinned":
            continue
        out += ["    rollout:", f"      candidate: {a.candidate}", f"      stage: {a.stage}"]
        if a.percent is not None:
            out.append(f"      percent: {_pct(a.percent)}")
        out.append(f"      since: {a.since}")
        if a.reason:
            out.append(f"      reason: {json.dumps(a.reason)}")
        if a.ack:
            out.append("      prompt_changes_ack: true")
        if a.approvals:
            out.append("      approvals:")
            out.extend(f"        - {{percent: {_pct(p)}, by: release-manager@platform.example, "
                       f"at: {a.since}}}" for p in a.approvals)
    return "\n".join(out) + "\n"


def evaluator_key(seed: int) -> Ed25519PrivateKey:
    """The fleet's BETS evaluator key: deterministic for a seed (benchmark data only)."""
    digest = hashlib.sha256(f"modelpin-benchmark-evaluator:{seed}".encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(digest)


def evidence_docs(t: TenantSpec) -> list[tuple[str, dict[str, Any]]]:
    """(path, BETS result) of the evidence of every rollout in flight (unsigned)."""
    docs = []
    min_rate, min_cases = GROUPS[t.group]["bets"]
    for a in t.aliases:
        if a.stage not in ("shadow", "canary", "paused") or a.candidate is None:
            continue
        cases = min_cases + 12
        passed = cases - int(cases * (1 - min_rate) / 2)
        provider = MODELS[a.pin]["provider"]
        failures = [{"case": f"c-{k:04d}", "kind": "tool-call-schema",
                     "detail": "argument 'status' missing"} for k in range(cases - passed)][:3]
        docs.append((f"evidence/{t.id}/{a.name}/{a.candidate}{SIGNED_EVIDENCE_SUFFIX}", {
            "tenant": t.id, "alias": a.name, "baseline": a.pin, "candidate": a.candidate,
            "suite": {"id": t.suite[0], "version": t.suite[1]},
            "judge": JUDGE[provider] if a.kind == "chat" else "claude-4-20260201",
            "run_at": ts(datetime.fromisoformat(a.since) - timedelta(hours=6)),
            "cases": cases, "passed": passed, "failures": failures}))
    return docs


def _group_line(name: str, spec: dict[str, Any]) -> str:
    after = ", ".join(spec["after"])
    ladder = ", ".join(_pct(s) for s in spec["ladder"])
    rate, cases = spec["bets"]
    return (f"  {name}: {{after: [{after}], ladder: [{ladder}], soak: {spec['soak']}, "
            f"approval: {spec['approval']}, shadow: {spec['shadow']}, "
            f"bets: {{min_pass_rate: {rate}, min_cases: {cases}}}}}")


def signed_evidence(t: TenantSpec, key: Ed25519PrivateKey) -> list[tuple[str, bytes]]:
    """(path, ``.dsse.json`` bytes) of every rollout in flight, signed with ``key``."""
    return [(rel, attestation.sign(doc, [key])) for rel, doc in evidence_docs(t)]


def evaluators_yaml(seed: int) -> str:
    public = signing.public_key_b64(evaluator_key(seed).public_key())
    return ("# Benchmark evaluator: its private key is derived from the fleet's seed "
            "(benchmarks/fleetgen.py), never trust it.\nthreshold: 1\nkeys:\n"
            f'  - {{name: benchmark-bets, public_key: "{public}"}}\n')


def policy_files(seed: int = 7) -> dict[str, str]:
    groups = "\n".join(_group_line(n, s) for n, s in GROUPS.items())
    files = {
        "policies/rollout-groups.yaml": "# Rollout groups (generated benchmark fleet)\n"
        f"groups:\n{groups}\nevidence_max_age: 30d\nsunset_warning_days: 60\n",
        "policies/artifact.yaml": "ttl: 7d\ndrain_seconds: 300\nthreshold: 1\n"
        "trusted_keys: []\n",
        EVALUATORS: evaluators_yaml(seed),
    }
    signals = Path(__file__).resolve().parents[1] / "policies" / "signals.yaml"
    if signals.is_file():
        files["policies/signals.yaml"] = signals.read_text(encoding="utf-8")
    for mid, model in MODELS.items():
        body = "".join(f"{k}: {v}\n" for k, v in model.items())
        files[f"model_versions/{mid}.yaml"] = (
            "# yaml-language-server: $schema=../schemas/model-version.schema.json\n"
            f"id: {mid}\n{body}")
    upgrades = []
    for u in UPGRADES:
        verdicts = ", ".join(f"{w}: {v}" for w, v in u["verdicts"].items())
        upgrades.append(f"  - from: {u['from']}\n    to: {u['to']}\n"
                        f"    verdicts: {{{verdicts}}}\n    notes: {u['notes']}\n")
    files["model_versions/compatibility.yaml"] = (
        f"workloads: [{', '.join(WORKLOADS)}]\nupgrades:\n" + "".join(upgrades))
    return files


def write(fleet: Fleet, root: Path) -> Path:
    """Write the fleet under ``root``; existing config folders are replaced."""
    root = Path(root)
    for top in ("policies", "model_versions", "tenants", "evidence"):
        shutil.rmtree(root / top, ignore_errors=True)
    for top in ("policies", "model_versions", "tenants", "evidence"):
        (root / top).mkdir(parents=True)
    for rel, text in policy_files(fleet.seed).items():
        (root / rel).write_text(text, encoding="utf-8")
    key = evaluator_key(fleet.seed)
    made: set[str] = set()
    tdir = str(root / "tenants")
    for t in fleet.tenants:
        with open(os.path.join(tdir, f"{t.id}.yaml"), "w", encoding="utf-8") as fh:
            fh.write(tenant_yaml(t))
        for rel, blob in signed_evidence(t, key):
            parent = os.path.join(str(root), os.path.dirname(rel))
            if parent not in made:
                os.makedirs(parent, exist_ok=True)
                made.add(parent)
            with open(os.path.join(str(root), rel), "wb") as fh:
                fh.write(blob)
    return root


def change_tenants(fleet: Fleet, root: Path, count: int, since: str = NOW) -> list[str]:
    """Rewrite ``count`` tenants with allowed transitions; returns their ids.

    Transitions allowed whatever the clock and upstream state: a pinned alias starts a
    shadow (compatible verdict, not frozen), a canary pauses at its step. The new
    evidence is signed with the fleet's evaluator key, trusted as of the base.
    """
    key = evaluator_key(fleet.seed)
    changed: list[str] = []
    step = max(1, len(fleet.tenants) // max(count, 1))
    for t in fleet.tenants[::step]:
        if len(changed) >= count:
            break
        for a in t.aliases:
            verdict = VERDICT.get((a.pin, t.workload))
            if a.stage == "pinned" and a.pin in ROLLABLE and not t.freeze and (
                verdict == "compatible"
            ):
                a.stage, a.candidate, a.since = "shadow", NEXT[a.pin], since
                break
            if a.stage == "canary":
                a.stage, a.since = "paused", since
                a.reason = "benchmark: paused for review"
                break
        else:
            continue
        (Path(root) / "tenants" / f"{t.id}.yaml").write_text(tenant_yaml(t), encoding="utf-8")
        for rel, blob in signed_evidence(t, key):
            path = Path(root) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blob)
        changed.append(t.id)
    return changed


def git(repo: Path, *args: str, date: str | None = None) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    if date:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          env=env, check=True)
    return proc.stdout.strip()


def commit_all(repo: Path, message: str, date: str = BASE_COMMIT_DATE) -> str:
    """Commit the whole tree (``git init`` first if needed); returns the commit id."""
    if not (Path(repo) / ".git").exists():
        git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A", "--", "policies", "model_versions", "tenants", "evidence")
    git(repo, "commit", "-q", "--no-verify", "-m", message, date=date)
    return git(repo, "rev-parse", "HEAD")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--git", action="store_true", help="commit the tree as a git repo")
    args = parser.parse_args(argv)
    fleet = generate(args.tenants, args.seed)
    write(fleet, args.out)
    if args.git:
        commit_all(args.out, f"benchmark fleet: {args.tenants} tenants, seed {args.seed}")
    counts = ", ".join(f"{k} {v}" for k, v in fleet.stage_counts().items())
    print(f"wrote {args.tenants} tenants to {args.out} (aliases: {counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
