"""One run's imperative shell: provider clients, the journal, the event loop.

Everything that can be refused is refused before the first call: a model whose provider
is not in ``policies/providers.yaml``, a provider whose API key variable is unset, a
missing ``openai`` package. The journal lives at ``<out>/journal/<run>.jsonl`` where
``<run>`` hashes what is run (targets, suites, judges): the same command resumes, a
different one starts its own journal.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelpin.bets.client import ProviderClient
from modelpin.bets.journal import Journal, JournalError
from modelpin.bets.limits import Lane
from modelpin.bets.plan import Target
from modelpin.bets.runner import Runner, TargetResult, count_cases
from modelpin.model.fleet import Fleet
from modelpin.model.tenant import format_time

ProgressFactory = Callable[[int], tuple[Callable[[], None] | None, Callable[[], None]]]


class RunRefused(Exception):
    """The run cannot start (providers, keys, journal); nothing was called."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def run_id(targets: list[Target]) -> str:
    ident = [[t.tenant, t.alias, t.baseline, t.candidate, t.suite.id, t.suite.version,
              t.suite.judge, t.suite.judge_threshold, t.suite_sha256] for t in targets]
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:16]


class RunSession:
    def __init__(self, fleet: Fleet, repo: Path, targets: list[Target], out: Path,
                 fixed_time: bool, clock: datetime, workers: int | None) -> None:
        self.fleet = fleet
        self.repo = repo
        self.targets = targets
        self.out = out
        self.fixed_time = fixed_time
        self.clock = clock
        self.workers = workers
        self.providers = self._providers()

    def _providers(self) -> dict[str, Any]:
        policy = self.fleet.providers
        models = {m for t in self.targets for m in (t.baseline, t.candidate, t.suite.judge)}
        needed = sorted({self.fleet.models[m].provider for m in models})
        if policy is None:
            raise RunRefused("policies/providers.yaml is missing",
                             "list each provider's base_url, api_key_env and limits there")
        missing = [p for p in needed if p not in policy.providers]
        if missing:
            raise RunRefused(f"provider(s) {', '.join(missing)} are not in "
                             "policies/providers.yaml", "add an entry per provider")
        unset = [f"{policy.providers[p].api_key_env} ({p})" for p in needed
                 if not os.environ.get(policy.providers[p].api_key_env)]
        if unset:
            raise RunRefused(f"API key variable(s) not set: {', '.join(unset)}",
                             "export the provider's key in the named environment variable")
        return {p: policy.providers[p] for p in needed}

    def execute(self, progress: ProgressFactory) -> tuple[list[TargetResult], datetime,
                                                          dict[str, Any]]:
        header = {"run": run_id(self.targets), "run_at": format_time(self.clock)}
        path = self.out / "journal" / f"{header['run']}.jsonl"
        try:
            journal = Journal(path, header)
        except (JournalError, OSError) as exc:
            raise RunRefused(f"cannot use the journal: {exc}",
                             f"remove {path} to start the run over") from None
        run_at = self.clock if self.fixed_time else datetime.fromisoformat(
            str(journal.header["run_at"]).replace("Z", "+00:00")).astimezone(UTC)
        total = sum(count_cases(self.repo / "bets" / t.suite.id / "cases.jsonl")
                    for t in self.targets)
        advance, stop = progress(total)
        # The CLI turns the cyclic GC off for short commands; a run is long and its HTTP
        # and asyncio objects do form cycles: without the GC, memory grows with every call.
        gc.enable()
        try:
            results, stats = asyncio.run(self._run(journal, advance))
        finally:
            stop()
            journal.close()
        stats["resumed_from_journal"] = journal.resumed
        return results, run_at, stats

    async def _run(self, journal: Journal, advance: Callable[[], None] | None
                   ) -> tuple[list[TargetResult], dict[str, Any]]:
        lanes = {name: Lane(name, provider) for name, provider in self.providers.items()}
        clients = {name: ProviderClient(lane, os.environ[lane.provider.api_key_env])
                   for name, lane in lanes.items()}
        workers = self.workers or min(4096, 2 * sum(p.concurrency
                                                    for p in self.providers.values()))
        runner = Runner(self.fleet, self.repo, clients, journal, workers=workers,
                        on_case=advance)
        try:
            results = await runner.run(self.targets)
        finally:
            for client in clients.values():
                await client.close()
        stats: dict[str, Any] = {"paid": runner.paid, "reused": runner.reused,
                                 "providers": {n: dict(lane.stats) for n, lane in lanes.items()}}
        return results, stats
