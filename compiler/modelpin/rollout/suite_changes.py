"""BETS suites in a pull request: every change shown, and a changed suite gets a new
version (SPEC 2.1 rule 2; docs/trust-boundary.md, "BETS suites").

Evidence names the suite it ran by id and version, so a version must name one content
for good. The rules, each a violation with the file and field it points at:

* ``MP126``: a suite whose bytes changed (``suite.yaml`` or ``cases.jsonl``: a case
  deleted, edited, reordered or re-wrapped, a threshold, the judge) keeps its base
  ``version`` or lowers it. At ``version`` of the head's ``suite.yaml``.
* ``MP127``: a suite removed (or renamed: removed under its old id) while a tenant of the
  base or the head names it in ``bets_suite``. Without the suite in the repository the
  gate could no longer bind evidence to its content. At the base's ``suite.yaml``.

Evidence binds to the content through ``suite_sha256`` (``gates.suite_digest_reasons``).
Every suite file added, removed or edited is listed, with what changed in it (fields of
``suite.yaml``; case ids removed, added and edited in ``cases.jsonl``). Pure: fleets in,
``Shown`` values out.
"""

from __future__ import annotations

from collections.abc import Iterable

from modelpin.load.layout import suite_paths
from modelpin.model.bets import SuiteSource
from modelpin.model.fleet import Fleet
from modelpin.rollout.shown_diff import Shown, lines

SUITE_RULES = {
    "MP126": ("a BETS suite whose bytes changed needs a new, higher version",
              "bump `version:` to {next} (a version names one content for good)"),
    "MP127": ("a BETS suite named by a tenant's bets_suite cannot be removed or renamed",
              "point the tenants' bets_suite at another suite first, in its own change"),
}
"""code -> (the rule, the hint): the one statement of the suite rules; the diagnostics
take their hints from here, and docs/trust-boundary.md ("BETS suites") lists them."""

MAX_IDS_SHOWN = 5


def suite_changes(base: Fleet, head: Fleet) -> tuple[list[Shown], list[Shown]]:
    """(shown, violations) of the suites. O(suites); a suite's cases are compared only
    when its bytes changed."""
    shown: list[Shown] = []
    violations: list[Shown] = []
    old_all, new_all = base.suite_sources, head.suite_sources
    for sid in sorted({*old_all, *new_all}):
        old, new = old_all.get(sid), new_all.get(sid)
        suite_file, cases_file = suite_paths(sid)
        if old is not None and new is not None and old.sha256 == new.sha256:
            continue
        if old is None and new is not None:
            shown.append(Shown(suite_file, (), f"BETS suite {sid} added at version "
                               f"{new.version}"))
            shown.append(Shown(cases_file, (), f"BETS suite {sid} added with "
                               f"{len(new.cases.cases)} cases"))
            continue
        if new is None and old is not None:
            for file in (suite_file, cases_file):
                shown.append(Shown(file, (), f"BETS suite {sid} v{old.version} removed"))
            users = sorted({t.id for fleet in (base, head) for t in fleet.tenants.values()
                            if t.bets_suite is not None and t.bets_suite.id == sid})
            if users:
                violations.append(Shown(suite_file, ("id",), (
                    f"BETS suite {sid} removed while {_names(users)} name(s) it in "
                    "bets_suite: evidence for it could no longer be bound to its content"),
                    "MP127", SUITE_RULES["MP127"][1]))
            continue
        assert old is not None and new is not None
        changed = [f for (f, d) in new.files if dict(old.files).get(f) != d]
        shown += _suite_yaml_lines(base, head, sid, suite_file) if suite_file in changed else []
        if cases_file in changed:
            shown.append(Shown(cases_file, (), f"BETS suite {sid}: {_cases_summary(old, new)}"))
        if new.version <= old.version:
            what = "keeps" if new.version == old.version else \
                f"lowers it from {old.version} to"
            files = " and ".join(f.rsplit("/", 1)[-1] for f in changed)
            violations.append(Shown(suite_file, ("version",), (
                f"BETS suite {sid} changed ({files}) but {what} version {new.version}: "
                f"evidence names a suite by id and version, so v{new.version} would name "
                "two contents"), "MP126", SUITE_RULES["MP126"][1].format(next=old.version + 1)))
    return shown, violations


def _names(ids: list[str]) -> str:
    more = f" and {len(ids) - MAX_IDS_SHOWN} more" if len(ids) > MAX_IDS_SHOWN else ""
    return ", ".join(ids[:MAX_IDS_SHOWN]) + more


def _suite_yaml_lines(base: Fleet, head: Fleet, sid: str, file: str) -> list[Shown]:
    found = lines(file, base.suites.get(sid), head.suites.get(sid))
    if not found:
        return [Shown(file, (), f"BETS suite {sid}: suite.yaml bytes changed (comments or "
                      "layout)")]
    return [Shown(s.file, s.path, f"BETS suite {sid}: {s.message}") for s in found]


def _cases_summary(old: SuiteSource, new: SuiteSource) -> str:
    before = {c.id: c for c in old.cases.cases}
    after = {c.id: c for c in new.cases.cases}
    removed = [i for i in before if i not in after]
    added = [i for i in after if i not in before]
    edited = [i for i in after if i in before and before[i] != after[i]]
    parts = [f"{len(before)} -> {len(after)} cases"]
    for verb, ids in (("removed", removed), ("added", added), ("edited", edited)):
        if ids:
            parts.append(f"{verb} {_listing(ids)}")
    if not (removed or added or edited):
        order = [c.id for c in old.cases.cases] != [c.id for c in new.cases.cases]
        parts.append("reordered" if order else "same cases, bytes changed (layout)")
    return "cases.jsonl: " + "; ".join(parts)


def _listing(ids: Iterable[str]) -> str:
    items = list(ids)
    more = f", ... ({len(items) - MAX_IDS_SHOWN} more)" if len(items) > MAX_IDS_SHOWN else ""
    return ", ".join(items[:MAX_IDS_SHOWN]) + more
