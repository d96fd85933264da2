"""One reader of rollbacks from git (``history.rollback_events``) and its two views: the
gate's records (``rollback_history``: which candidates each alias was rolled back from)
and the lifecycle's regrouping (``bot.history.rollbacks``: when each rollback landed on
main). On a real repository with a tenant rolled back, cleared and rolled back again, a
second alias rolled back beside one still rolled back, renamed tenant files (alone, and
together with a rollback), a rollback spelled with a YAML escape, and a side branch with
its own merge commit: both views are asserted explicitly and against each other."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.fleetkit import git, init_repo

from modelpin.bot import history as bot_history
from modelpin.load.history import RollbackEvent, rollback_events, rollback_history
from modelpin.load.history_cache import remembered_rollback_history

V1, V2 = "gpt-5-2026-03-14", "gpt-5-2026-04-02"
PADDING = "".join(f"# line {i} of the tenant's notes\n" for i in range(30))
"""Unchanged lines, so that git sees a renamed file as a rename."""


def _alias(rollout: str | None, cleared: str | None = None) -> str:
    text = "    pin: gpt-5-2026-01-10\n"
    if cleared:
        text += f"    cleared_rollbacks: [{cleared}]\n"
    if rollout:
        stage, candidate = rollout.split(":")
        text += (f"    rollout:\n      candidate: {candidate}\n      stage: {stage}\n"
                 "      since: 2026-03-20T00:00:00Z\n")
        if "rolled" in stage:
            text += "      reason: tool calls regressed\n"
    return text


def _tenant(tid: str, primary: str | None = None, second: str | None = None,
            cleared: str | None = None) -> str:
    return (f"id: {tid}\ngroup: early\n{PADDING}aliases:\n  primary:\n"
            f"{_alias(primary, cleared)}  second:\n{_alias(second)}")


def _at(day: int, hour: int = 0) -> str:
    return f"2026-01-{day:02d}T{hour:02d}:00:00Z"


def _time(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, tzinfo=UTC)


class Repo:
    def __init__(self, root: Path) -> None:
        self.root = init_repo(root)
        (root / "tenants").mkdir()
        self.commits: dict[str, str] = {}

    def write(self, tid: str, text: str) -> None:
        (self.root / "tenants" / f"{tid}.yaml").write_text(text)

    def commit(self, name: str, day: int, hour: int = 0) -> str:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "-m", name, date=_at(day, hour))
        self.commits[name] = git(self.root, "rev-parse", "HEAD")
        return self.commits[name]


def _history(tmp_path: Path) -> Repo:
    r = Repo(tmp_path / "repo")
    for tid in ("a", "b", "d", "f"):
        r.write(tid, _tenant(tid))
    r.write("g", _tenant("g", primary="rolled-back:" + V1))  # imported rolled back
    r.commit("fleet", 1)
    r.write("a", _tenant("a", primary="rolled-back:" + V1))
    r.commit("a rolls back V1", 2)
    r.write("a", _tenant("a"))
    r.commit("a clears the rollout", 3)
    r.write("a", _tenant("a", primary="canary:" + V2))
    r.commit("a starts V2", 4)
    r.write("a", _tenant("a", primary="rolled-back:" + V2))
    r.commit("a rolls back V2", 5)
    # b: primary rolled back; later its second alias too (primary still rolled back)
    r.write("b", _tenant("b", primary="rolled-back:" + V1))
    r.commit("b rolls back primary", 6)
    r.write("b", _tenant("b", primary="rolled-back:" + V1, second="rolled-back:" + V2))
    r.commit("b rolls back second", 7)
    # b -> c: a pure rename (its id with it); then a human clears the record in c
    (r.root / "tenants/b.yaml").unlink()
    r.write("c", _tenant("c", primary="rolled-back:" + V1, second="rolled-back:" + V2))
    r.commit("rename b to c", 8)
    r.write("c", _tenant("c", second="rolled-back:" + V2, cleared=V1))
    r.commit("c acknowledges primary", 9)
    # d: rolled back, then renamed to e while e's second alias rolls back (one commit)
    r.write("d", _tenant("d", primary="rolled-back:" + V1))
    r.commit("d rolls back primary", 10)
    (r.root / "tenants/d.yaml").unlink()
    r.write("e", _tenant("e", primary="rolled-back:" + V1, second="rolled-back:" + V2))
    r.commit("rename d to e and roll back second", 11)
    # a side branch: f rolls back there, main is merged into it, then it merges to main
    git(r.root, "checkout", "-q", "-b", "side")
    r.write("f", _tenant("f", primary="rolled-back:" + V1))
    r.commit("f rolls back on the side branch", 12)
    git(r.root, "checkout", "-q", "main")
    r.write("a", _tenant("a", primary="rolled-back:" + V2, second="canary:" + V1))
    r.commit("a starts V1 on second", 13)
    git(r.root, "checkout", "-q", "side")
    git(r.root, "merge", "-q", "--no-ff", "-m", "merge main into side", "main",
        date=_at(14))
    git(r.root, "checkout", "-q", "main")
    git(r.root, "merge", "-q", "--no-ff", "-m", "merge side", "side", date=_at(15))
    # h: a rollback spelled with a YAML escape (no changed line says "rolled-back")
    r.write("h", _tenant("h", primary="rolled-back:" + V1).replace(
        "stage: rolled-back", 'stage: "rolled\\x2dback"'))
    r.commit("h rolls back, escaped", 16)
    return r


def _landings(events: list[RollbackEvent]) -> list[tuple[str, str, str, datetime]]:
    return [(e.tenant, e.alias, e.candidate, e.committed_at) for e in events if e.landed]


def test_rollback_events_and_both_views(tmp_path: Path) -> None:
    r = _history(tmp_path)
    renamed = git(r.root, "log", "-1", "--format=", "--name-status", r.commits[
        "rename d to e and roll back second"])
    assert renamed.startswith("R"), "the fixture must give git a rename to detect"

    events = rollback_events(r.root, "main")
    assert events is not None
    assert _landings(events) == [
        ("g", "primary", V1, _time(1)),       # the first commit imports it rolled back
        ("a", "primary", V1, _time(2)),
        ("a", "primary", V2, _time(5)),       # rolled back again after a clear
        ("b", "primary", V1, _time(6)),
        ("b", "second", V2, _time(7)),        # beside primary, still rolled back
        ("d", "primary", V1, _time(10)),
        ("e", "second", V2, _time(11)),       # renamed from d: primary is not new
        ("f", "primary", V1, _time(15)),      # when the merge landed it on main
        ("h", "primary", V1, _time(16)),
    ]
    # versions read that still have a rollback are events, not landings
    assert ("b", "primary", _time(7)) in {(e.tenant, e.alias, e.committed_at)
                                          for e in events if not e.landed}
    assert ("c", "second", _time(9)) in {(e.tenant, e.alias, e.committed_at)
                                         for e in events if not e.landed}
    # the side branch's own commits never count
    assert not {_time(12), _time(14)} & {e.committed_at for e in events}

    # view 1: when each rollback landed, per tenant, newest first
    assert bot_history.rollbacks(r.root, "main") == {
        "g": [_time(1)], "a": [_time(5), _time(2)], "b": [_time(7), _time(6)],
        "d": [_time(10)], "e": [_time(11)], "f": [_time(15)], "h": [_time(16)]}
    # view 2: which candidates, and whether a rolled-back version already cleared it
    seen = rollback_history(r.root, "main")
    assert seen == {
        ("g", "primary"): {V1: False}, ("a", "primary"): {V1: False, V2: False},
        ("b", "primary"): {V1: False}, ("b", "second"): {V2: False},
        ("c", "second"): {V2: False}, ("d", "primary"): {V1: False},
        ("e", "primary"): {V1: False}, ("e", "second"): {V2: False},
        ("f", "primary"): {V1: False}, ("h", "primary"): {V1: False}}

    # they agree: every landing is on record, and every record landed (or was carried
    # into a renamed file: c and e hold rollbacks that landed as b and d)
    landed = {(t, a, c) for t, a, c, _ in _landings(events)}
    recorded = {(t, a, c) for (t, a), cands in seen.items() for c in cands}
    assert landed <= recorded
    assert recorded - landed == {("c", "second", V2), ("e", "primary", V1)}
    assert set(bot_history.rollbacks(r.root, "main")) == {t for t, _, _ in landed}


def test_a_range_reads_the_same_landings_as_the_whole_history(tmp_path: Path) -> None:
    """The first version read of each file is compared with its first parent's, so a
    scan of ``A..main`` (what ``explain``'s memo extends) finds the same landings as the
    whole history does after ``A``."""
    r = _history(tmp_path)
    whole = rollback_events(r.root, "main")
    assert whole is not None
    for name in ("a clears the rollout", "b rolls back primary", "rename b to c",
                 "d rolls back primary"):
        start = r.commits[name]
        after = {c for c in git(r.root, "rev-list", "--first-parent",
                                f"{start}..main").split()}
        part = rollback_events(r.root, f"{start}..main")
        assert part is not None
        assert _landings(part) == _landings([e for e in whole if e.commit in after]), name


def test_explains_memo_still_equals_reading_git(tmp_path: Path) -> None:
    r = _history(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    for rev in (r.commits["rename b to c"], r.commits["d rolls back primary"], "main"):
        assert remembered_rollback_history(r.root, rev, cache) == rollback_history(r.root,
                                                                                   rev)
