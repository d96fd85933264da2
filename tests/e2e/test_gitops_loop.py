"""The whole GitOps loop on real parts.

A config repository with a bare "origin"; pull requests judged by ``modelpin check``;
``modelpin compile`` signing with a key from ``modelpin keygen``; the table served over
local HTTP (with ETags, as GitHub Pages does); a ``Router`` polling that URL; the bot
pushing a rollback branch and opening its PR on the fake GitHub; and, once merged, the
router draining the candidate's sessions and cutting them over to stable.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelpin.cli import main
from modelpin.router import InMemorySessionStore, Router
from tests.bot.fake_github import FakeGitHub
from tests.fleetkit import FleetSpec, cohort, evidence, git, init_repo, telemetry, tenant

V_OLD, V_NEW = "gpt-5-2026-01-10", "gpt-5-2026-03-14"
T0 = "2026-03-24T12:00:00Z"  # the fleet as it is
T1 = "2026-03-25T10:00:00Z"  # PRs and the first merge
T2 = "2026-03-25T11:00:00Z"  # the bot sees a regression
DRAIN = 60


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class _Pages:
    """A static host for dist/: GET with ETag and If-None-Match -> 304, like Pages."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hits: list[int] = []
        pages = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = pages.root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                body = path.read_bytes()
                etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
                if self.headers.get("If-None-Match") == etag:
                    pages.hits.append(304)
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                pages.hits.append(200)
                self.send_response(200)
                self.send_header("ETag", etag)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/routing-table.dsse.json"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    server = FakeGitHub().start()
    monkeypatch.setenv("GITHUB_TOKEN", server.token)
    yield server
    server.stop()


def _edit_tenant(repo: Path, tid: str, alias: str, rollout: dict[str, Any]) -> None:
    path = repo / "tenants" / f"{tid}.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["aliases"][alias]["rollout"] = rollout
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _commit(repo: Path, message: str, date: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message, date=date)


def _wait_for_serial(router: Router, above: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        serial = router.status().serial
        if serial is not None and serial > above:
            return serial
        time.sleep(0.05)
    raise AssertionError(f"router stayed at serial {router.status().serial}")


def test_pr_check_compile_publish_route_bot_rollback_drain(
    tmp_path: Path, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    # --- a config repository with a bare origin and a real signing key ------------------
    keys = tmp_path / "keys"
    keys.mkdir()
    assert main(["keygen", "--out", str(keys)]) == 0
    snippet = yaml.safe_load(capsys.readouterr().out)
    public_key = snippet["trusted_keys"][0]["public_key"]
    spec = FleetSpec(tenants={})
    spec.artifact = {"ttl": "7d", "drain_seconds": DRAIN, "threshold": 1,
                     "trusted_keys": snippet["trusted_keys"]}
    spec.add(tenant("p1", group="pioneers", pin=V_NEW))
    spec.add(tenant("e1", group="early", rollout={
        "candidate": V_NEW, "stage": "canary", "percent": 10, "since": "2026-03-23T00:00:00Z"}))
    spec.add(tenant("s1", group="standard"))
    spec.add(tenant("s2", group="standard", rollout={
        "candidate": V_NEW, "stage": "canary", "percent": 5, "since": "2026-03-23T00:00:00Z"}))
    spec.evidence += [evidence("e1"), evidence("s1"), evidence("s2")]
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    repo = init_repo(tmp_path / "fleet")
    spec.write(repo)
    _commit(repo, "the fleet", T0)
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "main")
    key = str(keys / "modelpin-signing-key.pem")
    dist = tmp_path / "site"

    def compile_main(now: str) -> None:
        assert main(["compile", "--repo", str(repo), "--out", str(dist), "--key", key,
                     "--require-key", "--now", now]) == 0
        assert main(["verify", str(dist / "routing-table.dsse.json"), "--repo", str(repo),
                     "--now", now]) == 0

    compile_main(T0)
    pages = _Pages(dist)
    clock = [_ts(T0)]
    router = Router(pages.url, [public_key], state_file=tmp_path / "router-state.json",
                    session_store=InMemorySessionStore(max_sessions=100_000, ttl=86_400),
                    poll_interval=0.1, clock=lambda: clock[0])
    try:
        assert router.start().outcome == "accepted"
        first = router.status().serial
        assert first is not None
        # An unchanged table is answered 304 through the ETag. Asked here, explicitly:
        # whether the poll thread happens to poll between two compiles depends on how
        # fast this machine runs the next steps (that race made this assertion flaky).
        assert router.refresh().outcome == "unchanged"
        assert pages.hits[0] == 200 and 304 in pages.hits

        # --- a PR that starts a shadow passes check; one that skips a step fails --------
        git(repo, "checkout", "-q", "-b", "start-shadow")
        _edit_tenant(repo, "s1", "primary", {"candidate": V_NEW, "stage": "shadow",
                                             "since": T1})
        _commit(repo, "s1: shadow " + V_NEW, T1)
        assert main(["check", "--repo", str(repo), "--base", "main",
                     "--head", "start-shadow", "--now", T1]) == 0
        git(repo, "checkout", "-q", "main")
        git(repo, "checkout", "-q", "-b", "skip-step")
        _edit_tenant(repo, "s2", "primary", {"candidate": V_NEW, "stage": "canary",
                                             "percent": 50, "since": T1})
        _commit(repo, "s2: straight to 50", T1)
        capsys.readouterr()
        assert main(["check", "--repo", str(repo), "--base", "main", "--head", "skip-step",
                     "--now", T1]) == 1
        assert "MP101" in capsys.readouterr().out

        # --- merge the good PR: compile, publish, the router picks the new serial up ----
        git(repo, "checkout", "-q", "main")
        git(repo, "merge", "-q", "--no-ff", "-m", "Merge start-shadow", "start-shadow",
            date=T1)
        git(repo, "push", "-q", "origin", "main")
        compile_main(T1)
        clock[0] = _ts(T1)
        second = _wait_for_serial(router, first)
        shadow = router.resolve("s1", "primary", "sess-x")
        assert (shadow.model, shadow.shadow, shadow.serial) == (V_OLD, V_NEW, second)
        assert shadow.shadow_comparison_only

        # --- canary traffic: about 10% of sessions on the candidate, sticky -------------
        decisions = {f"s-{i}": router.resolve("e1", "primary", f"s-{i}") for i in range(4000)}
        on_canary = [s for s, d in decisions.items() if d.cohort == "canary"]
        assert all(decisions[s].model == V_NEW for s in on_canary)
        assert 0.08 < len(on_canary) / len(decisions) < 0.12

        # --- telemetry regresses: the bot pushes a rollback branch and opens a PR -------
        tele = tmp_path / "telemetry.json"
        tele.write_text(json.dumps(telemetry(
            cohort("e1", "primary", "stable"),
            cohort("e1", "primary", "canary", requests=6000, tool_calls=2400,
                   tool_call_failures=150, tasks=1200, tasks_completed=980, coercions=12,
                   downstream_errors=18))))
        assert main(["bot", "--repo", str(repo), "--telemetry", str(tele), "--now", T2,
                     "--push", "--github", f"{github.owner}/{github.repo}",
                     "--github-api", github.url]) == 0
        branch = "modelpin/rollback/e1/primary"
        (pr,) = github.pulls.values()
        assert pr["head"]["ref"] == branch and pr["base"]["ref"] == "main"
        assert "tool_call_failure_rate" in pr["body"]
        assert {label["name"] for label in pr["labels"]} >= {"modelpin", "rollback"}

        # --- the bot's PR passes the same gate; merge it, compile, publish --------------
        git(repo, "fetch", "-q", "origin")
        assert main(["check", "--repo", str(repo), "--base", "main",
                     "--head", f"origin/{branch}", "--now", T2]) == 0
        git(repo, "merge", "-q", "--ff-only", f"origin/{branch}")
        git(repo, "push", "-q", "origin", "main")
        # the router's clock first: it may load the table the moment it is published,
        # and the drain runs from that moment
        clock[0] = _ts(T2) + 5
        compile_main(T2)
        third = _wait_for_serial(router, second)

        # --- rollback: new sessions stable at once; candidate sessions drain ------------
        fresh = router.resolve("e1", "primary", "a-new-session")
        assert (fresh.model, fresh.cohort, fresh.serial) == (V_OLD, "stable", third)
        draining = [router.resolve("e1", "primary", s) for s in on_canary]
        assert all(d.model == V_NEW and not d.session_reset for d in draining)
        # The drain runs from when this router first applied the rollback (loaded at
        # T2 + 5), not from the rollout's `since` (SPEC 4).
        clock[0] = _ts(T2) + 5 + DRAIN - 1
        assert all(router.resolve("e1", "primary", s).model == V_NEW for s in on_canary)
        clock[0] = _ts(T2) + 5 + DRAIN
        cut = [router.resolve("e1", "primary", s) for s in on_canary]
        assert all(d.model == V_OLD and d.session_reset for d in cut)
        after = [router.resolve("e1", "primary", s) for s in on_canary]
        assert all(d.model == V_OLD and not d.session_reset for d in after)
        assert first < second < third
        assert {first, second, third} <= set(router.accepted_serials)
    finally:
        router.stop()
        pages.stop()
