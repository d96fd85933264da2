"""What is judged is what is published (SPEC 2.1 rule 8): pull requests on real git
repositories that try to make ``check`` judge other bytes than ``compile`` publishes,
or pass what publishing cannot publish. Every one is blocked at the offending path.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from tests.gate.harness import HEAD_DATE, Gate, PullRequest, Row, row_id

SECRET = "MODELPIN_GATE_SECRET_9c1e"
Edit = Callable[[PullRequest], None]


def _tenant_text(pr: PullRequest, tid: str) -> str:
    return pr.path(f"tenants/{tid}.yaml").read_text()


def linked_tenant(pr: PullRequest) -> None:
    """The tenant file replaced by a link to a copy outside the config folders."""
    pr.write_text("elsewhere/std-p.yaml", _tenant_text(pr, "std-p"))
    pr.symlink("tenants/std-p.yaml", "../elsewhere/std-p.yaml")


def linked_tenants_dir(pr: PullRequest) -> None:
    os.rename(pr.path("tenants"), pr.path("fleet-tenants"))
    pr.symlink("tenants", "fleet-tenants")


def link(rel: str, target: str) -> Edit:
    return lambda pr: pr.symlink(rel, target)


def write(rel: str, text: str) -> Edit:
    return lambda pr: pr.write_text(rel, text)


def submodule(pr: PullRequest) -> None:
    commit = pr.git("rev-parse", "HEAD")
    pr.git("update-index", "--add", "--cacheinfo", f"160000,{commit},tenants/vendored")
    pr.git("commit", "-q", "-m", "vendor tenants", date=HEAD_DATE)
    pr.path("tenants/vendored").mkdir()  # an uninitialised submodule: a clean work tree


def forced_cache(name: str) -> Edit:
    def edit(pr: PullRequest) -> None:
        pr.write_text(f".modelpin/cache/{name}", "\x80\x05N.")
        pr.git("add", "-f", ".modelpin/cache")
        pr.git("commit", "-q", "-m", "warm cache", date=HEAD_DATE)
    return edit


def artifact(**fields: str) -> Edit:
    def edit(pr: PullRequest) -> None:
        pr.write_yaml("policies/artifact.yaml",
                      {"drain_seconds": 300, "threshold": 1, "trusted_keys": [], **fields})
    return edit


def groups(change: Callable[[dict[str, object]], None]) -> Edit:
    return lambda pr: pr.edit_yaml("policies/rollout-groups.yaml", change)


def soak(value: str) -> Callable[[dict[str, object]], None]:
    def change(doc: dict[str, object]) -> None:
        doc["groups"]["standard"]["soak"] = value  # type: ignore[index]
    return change


def rollout_field(tid: str, key: str, value: object) -> Edit:
    def edit(pr: PullRequest) -> None:
        pr.set_rollout(tid, {**pr.rollout(tid), key: value})
        pr.write()
    return edit


def tools(tid: str, schema: object, raw: str | None = None) -> Edit:
    def edit(pr: PullRequest) -> None:
        pr.tenant(tid)["tools"] = {"lookup": schema}
        pr.write()
        if raw is not None:
            path = pr.path(f"tenants/{tid}.yaml")
            path.write_text(path.read_text().replace("RAW-SCHEMA", raw))
    return edit


def _deep(depth: int) -> str:
    text = '{"type": "object"}'
    for _ in range(depth):
        text = '{"type": "object", "properties": {"x": ' + text + "}}"
    return text


T = "tenants/std-p.yaml"
BLOCKED = [
    # regular files only (SPEC 1)
    Row("bytes/symlinked-tenant-file", linked_tenant, code="MP009", file=T),
    Row("bytes/symlinked-tenants-dir", linked_tenants_dir, code="MP009", file="tenants"),
    Row("bytes/dangling-link", link("tenants/ghost.yaml", "nowhere.yaml"), code="MP009",
        file="tenants/ghost.yaml"),
    Row("bytes/link-to-proc-self-environ", link("tenants/env.yaml", "/proc/self/environ"),
        code="MP009", file="tenants/env.yaml"),
    Row("bytes/linked-model-version",
        link("model_versions/gpt-5-2026-09-01.yaml", "gpt-5-2026-03-14.yaml"),
        code="MP009", file="model_versions/gpt-5-2026-09-01.yaml"),
    Row("bytes/linked-evidence-folder", link("evidence/std-zz", "std-a"), code="MP009",
        file="evidence/std-zz"),
    Row("bytes/linked-policies-file", link("policies/signals.yaml", "/etc/passwd"),
        code="MP009", file="policies/signals.yaml"),
    Row("bytes/submodule", submodule, code="MP009", file="tenants/vendored"),
    Row("bytes/hidden-tenant-file", write("tenants/.std-q.yaml", "id: std-q\n"),
        code="MP007", file="tenants/.std-q.yaml"),
    Row("bytes/hidden-folder", write("tenants/.drafts/std-q.yaml", "id: std-q\n"),
        code="MP007", file="tenants/.drafts/std-q.yaml"),
    Row("bytes/wrong-extension", write("tenants/std-q.yml", "id: std-q\n"), code="MP007",
        file="tenants/std-q.yml"),
    Row("bytes/notes-file", write("evidence/std-a/NOTES.txt", "trust me\n"), code="MP007",
        file="evidence/std-a/NOTES.txt"),
    Row("bytes/forced-added-cache-pickle", forced_cache("compile-cache.pickle"),
        code="MP009", file=".modelpin/cache/compile-cache.pickle"),
    Row("bytes/forced-added-snapshot", forced_cache("fleet-snapshot.json"),
        code="MP009", file=".modelpin/cache/fleet-snapshot.json"),
    # what publishing cannot publish (SPEC 2.1 rule 8)
    Row("publish/ttl-below-publish-period", artifact(ttl="12h"), code="MP012",
        file="policies/artifact.yaml", needle="ttl:"),
    Row("publish/ttl-below-twice-the-period", artifact(ttl="7d", publish_period="4d"),
        code="MP012", file="policies/artifact.yaml", needle="ttl:"),
    Row("publish/ttl-overflows", artifact(ttl="99999999999d"), code="MP012",
        file="policies/artifact.yaml", needle="ttl:"),
    Row("huge/soak-overflows", groups(soak("99999999999d")), code="MP012",
        file="policies/rollout-groups.yaml", needle="99999999999d"),
    Row("huge/since-9999-12-31-minus-1h",
        rollout_field("std-a", "since", "9999-12-31T23:59:59-01:00"), code="MP012",
        file="tenants/std-a.yaml", needle="since:"),
    Row("huge/percent-10e400", rollout_field("std-a", "percent", 10**400), code="MP012",
        file="tenants/std-a.yaml", needle="percent:"),
    Row("huge/percent-nan", rollout_field("std-a", "percent", float("nan")), code="MP012",
        file="tenants/std-a.yaml", needle="percent:"),
    Row("huge/tool-schema-1e30", tools("std-p", {"type": "number", "maximum": 1e30}),
        code="MP012", file=T, needle="maximum:"),
    Row("huge/tool-schema-deep", tools("std-p", "RAW-SCHEMA", raw=_deep(100)), code="MP012",
        file=T, needle="lookup:"),
]

ALLOWED = [
    Row("bytes/readme-at-folder-top", write("tenants/README.md", "# Our tenants\n")),
    Row("publish/shorter-publish-period", artifact(ttl="7d", publish_period="12h")),
]


@pytest.mark.parametrize("row", BLOCKED, ids=row_id)
def test_blocked(gate: Gate, row: Row) -> None:
    outcome = gate.blocked(row)
    found = outcome.find(row.code or "", row.file)
    if row.needle is None:  # a path, not a value: line 1, col 1, with a hint
        assert any(d["line"] == 1 and d["col"] == 1 and d["hint"] for d in found), (
            outcome.explain())


@pytest.mark.parametrize("row", ALLOWED, ids=row_id)
def test_allowed(gate: Gate, row: Row) -> None:
    gate.allowed(row)


def test_a_link_to_proc_self_environ_never_prints_the_environment(
        gate: Gate, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET, "value-that-must-not-leak")
    pr, outcome = gate.run(Row("env", link("tenants/env.yaml", "/proc/self/environ")))
    text = pr.check(fmt="text")
    for out in (outcome, text):
        assert out.exit_code == 1
        assert SECRET not in out.stdout + out.stderr
        assert "value-that-must-not-leak" not in out.stdout + out.stderr
        assert "/proc/self/environ" not in out.stdout + out.stderr
