"""Lifecycle: sunset shadows to successors, deprecations, regrouping from the rollbacks
in git, decommission reports; pure functions and ``modelpin lifecycle`` on real git with
the fake GitHub."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from modelpin.bot import history
from modelpin.bot.lifecycle import decommission_items, regroup_items, sunset_items
from modelpin.cli import main
from modelpin.load.fleet import load_fleet
from modelpin.load.tree import DirectoryTree
from modelpin.model.fleet import Fleet
from tests.fleetkit import NOW, FleetSpec, commit_all, evidence, git, init_repo, tenant

from .fake_github import FakeGitHub

TODAY = date(2026, 3, 25)
CLOCK = datetime(2026, 3, 25, 12, tzinfo=UTC)
OLD, NEW = "gpt-5-2026-01-10", "gpt-5-2026-03-14"


def _spec(*, successor: str | None = NEW, retires: str = "2026-04-30") -> FleetSpec:
    spec = FleetSpec(tenants={})
    spec.models[OLD].update(deprecated_on="2026-03-01", retires_on=retires)
    if successor:
        spec.models[OLD]["successor"] = successor
    spec.add(tenant("p1", group="pioneers", pin=NEW))
    spec.add(tenant("e1", group="early"))  # pinned to OLD, no rollout: gets a shadow
    spec.add(tenant("e2", group="early", rollout={
        "candidate": NEW, "stage": "canary", "percent": 10, "since": "2026-03-20T00:00:00Z"}))
    spec.evidence.append(evidence("e2"))
    return spec


def _fleet(tmp_path: Path, spec: FleetSpec) -> Fleet:
    spec.write(tmp_path / "fleet")
    result = load_fleet(DirectoryTree(tmp_path / "fleet"), CLOCK)
    assert result.fleet is not None, [d.message for d in result.diagnostics]
    return result.fleet


def test_sunset_proposes_shadows_to_the_successor(tmp_path: Path) -> None:
    items = sunset_items(_fleet(tmp_path, _spec()), TODAY)
    by = {(i.kind, i.subject): i for i in items}
    shadow = by[("shadow", "e1/primary")]
    assert shadow.target == NEW and shadow.branch == "modelpin/shadow/e1/primary"
    assert "retires on 2026-04-30 (in 36 days)" in shadow.why
    assert "a rollout of gpt-5-2026-03-14 is in flight (canary)" in by[("sunset", "e2/primary")].why
    assert "deprecated since 2026-03-01; pinned by 2 alias(es): e1/primary, e2/primary" in (
        by[("deprecated", OLD)].why)
    assert not any(i.subject.startswith("p1") for i in items)


def test_outside_the_window_or_without_successor_nothing_is_proposed(tmp_path: Path) -> None:
    far = sunset_items(_fleet(tmp_path, _spec(retires="2026-12-31")), TODAY)
    assert [i.kind for i in far] == ["deprecated"]
    none = sunset_items(_fleet(tmp_path, _spec(successor=None)), TODAY)
    (e1,) = [i for i in none if i.subject == "e1/primary"]
    assert e1.kind == "sunset" and not e1.proposes and "declares no successor" in e1.why


def test_regroup_after_two_rollbacks_in_180_days(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path, _spec())
    two = [CLOCK - timedelta(days=10), CLOCK - timedelta(days=100)]
    old = [CLOCK - timedelta(days=10), CLOCK - timedelta(days=200)]
    items = regroup_items(fleet, {"e1": two, "e2": old}, CLOCK)
    (item,) = items
    assert (item.subject, item.target) == ("e1", "standard")
    assert "2 rollbacks in the last 180 days" in item.why


def test_decommission_after_30_days_unused_naming_what_still_refers(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path, _spec())
    mentioned = {"claude-4-20260201": CLOCK - timedelta(days=31),
                 "emb-4-2026-02-01": CLOCK - timedelta(days=29), OLD: CLOCK}
    items = decommission_items(fleet, CLOCK, mentioned)
    (item,) = items
    assert item.subject == "claude-4-20260201"
    assert "not yet safe to decommission: no tenant file has named it since 2026-02-22" in (
        item.why)
    assert "still named as judge of BETS evidence" in item.why  # the judge of e2's evidence
    assert not item.safe
    (free,) = decommission_items(fleet, CLOCK, {"emb-4-2026-02-01": CLOCK - timedelta(days=40)})
    assert free.safe and free.why.startswith("safe to decommission: no tenant file has named")


def test_history_reads_rollbacks_from_first_parent_commits(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    spec = _spec()
    spec.write(repo)
    commit_all(repo, "fleet", date="2026-01-01T00:00:00Z")
    for day in ("2026-02-01", "2026-03-01"):
        for stage in ("canary", "rolled-back"):
            doc = yaml.safe_load((repo / "tenants/e1.yaml").read_text())
            doc["aliases"]["primary"]["rollout"] = {
                "candidate": NEW, "stage": stage, "percent": 10, "since": f"{day}T00:00:00Z",
                **({"reason": "tool calls"} if stage == "rolled-back" else {})}
            if stage == "rolled-back":
                del doc["aliases"]["primary"]["rollout"]["percent"]
            (repo / "tenants/e1.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
            commit_all(repo, stage, date=f"{day}T0{1 if stage == 'canary' else 2}:00:00Z")
    found = history.rollbacks(repo, "HEAD")
    assert found == {"e1": [datetime(2026, 3, 1, 2, tzinfo=UTC),
                            datetime(2026, 2, 1, 2, tzinfo=UTC)]}
    mentioned = history.last_mentioned(repo, "HEAD", {
        NEW: "model_versions/gpt-5-2026-03-14.yaml",
        "claude-4-20260201": "model_versions/claude-4-20260201.yaml"})
    assert mentioned[NEW] == datetime(2026, 2, 1, 1, tzinfo=UTC)  # first named by e1
    assert mentioned["claude-4-20260201"] == datetime(2026, 1, 1, tzinfo=UTC)  # file added


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    server = FakeGitHub().start()
    monkeypatch.setenv("GITHUB_TOKEN", server.token)
    yield server
    server.stop()


def test_lifecycle_command_opens_a_shadow_pr_that_check_passes(
    tmp_path: Path, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    repo = init_repo(tmp_path / "work")
    _spec().write(repo)
    commit_all(repo, "fleet", date="2026-01-01T00:00:00Z")
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "main")
    args = ["lifecycle", "--repo", str(repo), "--now", NOW, "--push", "--github",
            "acme/fleet", "--github-api", github.url, "--github-interval", "0"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "SHADOW       e1/primary" in out and "opened modelpin/shadow/e1/primary" in out
    (pr,) = github.pulls.values()
    assert pr["title"] == f"modelpin: shadow e1/primary on {NEW} ({OLD} retires)"
    git(repo, "fetch", "-q", "origin")
    shadowed = yaml.safe_load(git(repo, "show", "origin/modelpin/shadow/e1/primary:"
                                  "tenants/e1.yaml"))
    assert shadowed["aliases"]["primary"]["rollout"]["stage"] == "shadow"
    assert main(["check", "--repo", str(repo), "--base", "main", "--head",
                 "origin/modelpin/shadow/e1/primary", "--now", NOW]) == 0
    # the decommission report: emb-4 never named by a tenant, its file from January;
    # claude-4 neither, but it judged e2's evidence: reported, no issue
    (issue,) = github.issues.values()
    assert issue["title"] == "modelpin: emb-4-2026-02-01 is safe to decommission"
    assert "not yet safe to decommission" in out
    posts = [r for r in github.requests if r.method == "POST"]
    assert main(args) == 0  # a second run: nothing new
    assert [r for r in github.requests if r.method == "POST"] == posts


@pytest.mark.parametrize(
    ("successor", "message"),
    [("gpt-9", "unknown model version 'gpt-9' as successor of gpt-5-2026-01-10"),
     ("emb-4-2026-02-01", "successor 'emb-4-2026-02-01' is a embedding model"),
     (OLD, "a model version cannot be its own 'successor'")],
)
def test_successor_is_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                successor: str, message: str) -> None:
    _spec(successor=successor).write(tmp_path / "fleet")
    assert main(["validate", "--repo", str(tmp_path / "fleet"), "--now", NOW]) == 1
    out = capsys.readouterr().out
    assert f"model_versions/{OLD}.yaml:" in out and message in out


def test_lifecycle_proposes_a_regroup_after_two_rollbacks_on_main(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = init_repo(tmp_path / "r")
    spec = _spec(retires="2027-12-31")
    spec.write(repo)
    commit_all(repo, "fleet", date="2026-01-01T00:00:00Z")
    path = repo / "tenants/e1.yaml"
    for day in ("2026-02-01", "2026-03-01"):
        doc = yaml.safe_load(path.read_text())
        doc["aliases"]["primary"]["rollout"] = {
            "candidate": NEW, "stage": "rolled-back", "since": f"{day}T00:00:00Z",
            "reason": "tool calls regressed"}
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        commit_all(repo, "roll back", date=f"{day}T02:00:00Z")
        del doc["aliases"]["primary"]["rollout"]
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        commit_all(repo, "clear the rollout", date=f"{day}T03:00:00Z")
    # While the rollbacks are on record (SPEC 2.1 rule 7) a group change would clear the
    # candidate downstream of early: check refuses it, so the bot proposes nothing.
    assert main(["lifecycle", "--repo", str(repo), "--now", NOW, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "REFUSED by check: [MP124] group changed early -> standard" in out
    assert "+group: standard" not in out
    doc = yaml.safe_load(path.read_text())
    doc["aliases"]["primary"]["cleared_rollbacks"] = [NEW]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    commit_all(repo, "a human clears the record", date="2026-03-02T00:00:00Z")
    assert main(["lifecycle", "--repo", str(repo), "--now", NOW, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "REGROUP      e1: 2 rollbacks in the last 180 days (latest 2026-03-01): move from " \
        "early to standard" in out
    assert "-group: early" in out and "+group: standard" in out
    assert "e2:" not in out.split("REGROUP", 1)[1].split("\n")[0]
