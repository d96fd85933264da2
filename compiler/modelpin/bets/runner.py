"""Running the targets: every case against pin and candidate, then the judge.

Cases are streamed from each suite's ``cases.jsonl`` (never all in memory) and handed to
a fixed pool of workers, interleaved across targets so tenants progress together and
every provider lane stays busy. Each call goes through the journal first: an answer
already journaled (a resumed run, or the same request for another tenant sharing the
suite) is never paid again, and identical requests in flight are made once. Results are
folded into per-target tallies that keep only the failures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelpin.bets.checks import Answer, Failure, check_answer, judge_request, judge_score
from modelpin.bets.client import CallFailed, ProviderClient
from modelpin.bets.journal import Journal, call_key
from modelpin.bets.plan import Target
from modelpin.model.bets import FAILURE_KINDS, Case, Suite
from modelpin.model.fleet import Fleet

ACTIVE_TARGETS = 64
"""Suites read at once (open files); the next starts when one is done."""
JUDGE_MAX_TOKENS = 256


@dataclass
class CaseFailure:
    case: str
    kind: str
    detail: str
    expected: str
    got: str
    pin: str


@dataclass
class TargetResult:
    target: Target
    cases: int = 0
    passed: int = 0
    failures: list[CaseFailure] = field(default_factory=list)
    pin_failures: int = 0

    def by_kind(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(FAILURE_KINDS, 0)
        for failure in self.failures:
            counts[failure.kind] += 1
        return counts

    def unmet_requirements(self) -> list[str]:
        """The suite's per-kind pass rates this run missed."""
        out = []
        counts = self.by_kind()
        for kind, rate in sorted(self.target.suite.required_pass_rate.items()):
            got = 1 - counts[kind] / self.cases if self.cases else 0.0
            if got < rate:
                out.append(f"{kind}: {got:.3f} < {rate:g}")
        return out


def build_request(suite: Suite, case: Case, model: str) -> dict[str, Any]:
    """The chat-completions request body for ``case`` on ``model``."""
    messages: list[dict[str, Any]] = []
    if case.system is not None:
        messages.append({"role": "system", "content": case.system})
    messages.extend(m.model_dump(exclude_none=True, exclude_defaults=True) | {"role": m.role}
                    for m in case.messages)
    request: dict[str, Any] = {"model": model, "messages": messages,
                               "temperature": suite.temperature, "max_tokens": suite.max_tokens}
    if case.tools:
        request["tools"] = [t.model_dump(mode="json") for t in case.tools]
    return request


def read_cases(path: Path) -> Iterator[Case]:
    """The cases of a suite, one line at a time."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield Case.model_validate_json(line)


def count_cases(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


class Runner:
    def __init__(self, fleet: Fleet, repo: Path, clients: dict[str, ProviderClient],
                 journal: Journal, *, workers: int,
                 on_case: Callable[[], None] | None = None) -> None:
        self.fleet = fleet
        self.repo = repo
        self.clients = clients
        self.journal = journal
        self.workers = workers
        self.on_case = on_case
        self.inflight: dict[str, asyncio.Future[Answer]] = {}
        self.paid = 0
        self.reused = 0

    async def call(self, suite: Suite, case: Case, model: str,
                   request: dict[str, Any]) -> Answer:
        key = call_key(suite.id, suite.version, case.id, model, request)
        journaled = self.journal.get(key)
        if journaled is not None:
            self.reused += 1
            return Answer.from_json(journaled)
        pending = self.inflight.get(key)
        if pending is not None:
            self.reused += 1
            return await asyncio.shield(pending)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.inflight[key] = future
        try:
            client = self.clients[self.fleet.models[model].provider]
            answer = await client.complete(request)
            self.paid += 1
            self.journal.append(key, answer.to_json())
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it; no "never retrieved" noise
            raise
        finally:
            self.inflight.pop(key, None)
        future.set_result(answer)
        return answer

    async def run_case(self, target: Target, case: Case) -> tuple[Failure | None, str]:
        suite = target.suite
        pin, candidate = await asyncio.gather(
            self.call(suite, case, target.baseline, build_request(suite, case, target.baseline)),
            self.call(suite, case, target.candidate,
                      build_request(suite, case, target.candidate)),
            return_exceptions=True)
        if isinstance(pin, CallFailed):
            pin_outcome = f"error: {pin}"
        elif isinstance(pin, BaseException):
            raise pin
        else:
            pin_failure = check_answer(case, pin)
            pin_outcome = "passed" if pin_failure is None else f"{pin_failure.kind}: " \
                f"{pin_failure.detail}"
        if isinstance(candidate, CallFailed):
            return Failure("error", f"candidate call failed: {candidate}", got=str(candidate)), \
                pin_outcome
        if isinstance(candidate, BaseException):
            raise candidate
        failure = check_answer(case, candidate)
        if failure is None and case.golden is not None:
            failure = await self.judge(target, case, candidate)
        return failure, pin_outcome

    async def judge(self, target: Target, case: Case, answer: Answer) -> Failure | None:
        suite = target.suite
        request = {"model": suite.judge, "messages": judge_request(case, answer),
                   "temperature": 0, "max_tokens": JUDGE_MAX_TOKENS}
        try:
            verdict = await self.call(suite, case, suite.judge, request)
        except CallFailed as exc:
            return Failure("error", f"judge call failed: {exc}")
        scored = judge_score(verdict)
        if scored is None:
            return Failure("error", f"the judge gave no score: {verdict.describe()}")
        score, reason = scored
        if score < suite.judge_threshold:
            return Failure("judge-below-threshold",
                           f"judge score {score:.2f} < {suite.judge_threshold:g}: {reason}",
                           expected=case.golden or "", got=answer.describe())
        return None

    async def run(self, targets: list[Target]) -> list[TargetResult]:
        results = {t.label: TargetResult(t) for t in targets}
        queue: asyncio.Queue[tuple[Target, Case] | None] = asyncio.Queue(self.workers * 2)

        async def produce() -> None:
            for item in self._interleave(targets):
                await queue.put(item)
            for _ in range(self.workers):
                await queue.put(None)

        async def work() -> None:
            while (item := await queue.get()) is not None:
                target, case = item
                failure, pin_outcome = await self.run_case(target, case)
                tally = results[target.label]
                tally.cases += 1
                if not pin_outcome.startswith("passed"):
                    tally.pin_failures += 1
                if failure is None:
                    tally.passed += 1
                else:
                    tally.failures.append(CaseFailure(case.id, failure.kind, failure.detail,
                                                      failure.expected, failure.got,
                                                      pin_outcome))
                if self.on_case is not None:
                    self.on_case()

        await asyncio.gather(produce(), *(work() for _ in range(self.workers)))
        for tally in results.values():
            tally.failures.sort(key=lambda f: f.case)
        return [results[t.label] for t in targets]

    def _interleave(self, targets: list[Target]) -> Iterator[tuple[Target, Case]]:
        """Round-robin over a window of targets, each streaming its suite's cases."""
        waiting = list(reversed(targets))
        active: list[tuple[Target, Iterator[Case]]] = []
        while waiting or active:
            while waiting and len(active) < ACTIVE_TARGETS:
                target = waiting.pop()
                path = self.repo / "bets" / target.suite.id / "cases.jsonl"
                active.append((target, read_cases(path)))
            still: list[tuple[Target, Iterator[Case]]] = []
            for target, cases in active:
                case = next(cases, None)
                if case is not None:
                    still.append((target, cases))
                    yield target, case
            active = still
