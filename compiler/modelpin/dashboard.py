"""The static fleet dashboard (``dist/index.html``): what an operator opens mid-upgrade.

Pure rendering: rows in, one self-contained HTML page out (inline CSS, no scripts, no
external assets, every value escaped). ``compile`` builds the rows from the fleet and
the rollout engine and writes the page next to the artifact.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from modelpin.model.fleet import Fleet
from modelpin.rollout.gates import evidence_gate
from modelpin.rollout.reason import rollout_path
from modelpin.rollout.state import AliasState

EvidenceStatus = str
"""``pass`` | ``fail`` | ``missing`` | ``n/a`` (no rollout)."""


@dataclass(frozen=True)
class DashboardRow:
    group: str
    tenant: str
    alias: str
    kind: str
    stage: str
    """``pinned`` | ``shadow`` | ``canary`` | ``paused`` | ``rolled-back``."""
    stable: str
    candidate: str | None
    percent: float | None
    since: datetime | None
    evidence: EvidenceStatus
    evidence_detail: str
    frozen: bool = False
    reason: str | None = None


@dataclass(frozen=True)
class DashboardMeta:
    serial: int
    commit: str
    issued_at: datetime
    expires_at: datetime
    group_order: Sequence[str]


def dashboard_rows(fleet: Fleet, now: datetime) -> list[DashboardRow]:
    """One row per tenant and alias; evidence judged by the engine's own gate."""
    rows: list[DashboardRow] = []
    for tenant_id, tenant in fleet.tenants.items():
        group = fleet.policy.groups[tenant.group]
        for name, alias in tenant.aliases.items():
            state = AliasState.of(alias)
            rollout = alias.rollout
            evidence, detail = "n/a", ""
            if rollout is not None and state.in_flight:
                check = evidence_gate(fleet, tenant, name, alias.pin, rollout.candidate, group,
                                      now, rollout_path(name))
                if check.evidence is None:
                    evidence, detail = "missing", "no BETS evidence file"
                else:
                    evidence = "pass" if check.passes else "fail"
                    e = check.evidence
                    detail = (f"{e.passed}/{e.cases} passed ({e.pass_rate:.3f}), judge {e.judge}"
                              if check.passes else "; ".join(r.message for r in check.reasons))
            percent = state.percent if state.kind in ("canary", "paused") else None
            rows.append(DashboardRow(
                group=tenant.group, tenant=tenant_id, alias=name, kind=alias.kind,
                stage=state.kind, stable=alias.pin,
                candidate=rollout.candidate if rollout else None, percent=percent,
                since=rollout.since if rollout else None, evidence=evidence,
                evidence_detail=detail, frozen=tenant.freeze,
                reason=rollout.reason if rollout else None))
    return rows


def _age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return ""
    seconds = max(0, int((now - since).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {rest // 60}m"


def _time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;
color:#1d2330;background:#f6f7f9}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#5b6475;margin-bottom:16px}
.meta code{background:#e8ebf0;padding:1px 4px;border-radius:3px}
.counts span{display:inline-block;margin-right:14px}
table{border-collapse:collapse;width:100%;table-layout:fixed;background:#fff;
box-shadow:0 1px 2px #0001}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e6e8ec;vertical-align:top}
th{background:#eef1f5;font-weight:600;font-size:12px;text-transform:uppercase;color:#4a5263}
.stage{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}
.stage-pinned{background:#e8ebf0;color:#4a5263}.stage-shadow{background:#e7e3fb;color:#4b3aa8}
.stage-canary{background:#dff3e4;color:#1d6b34}.stage-paused{background:#fff1cc;color:#7a5800}
.stage-rolled-back{background:#fde2e1;color:#a11d17}
.ev-pass{color:#1d6b34}.ev-fail{color:#a11d17;font-weight:600}.ev-missing{color:#7a5800}.ev-na{color:#8a92a3}
.bar{width:90px;height:8px;background:#e6e8ec;border-radius:4px;display:inline-block;margin-right:6px}
.bar i{display:block;height:8px;border-radius:4px;background:#2f9e55}
.frozen{color:#2a5db0;font-size:12px;font-weight:600}.reason{color:#5b6475;font-size:12px}
code{font-size:12px}
"""


_PLAIN = re.compile(r"[A-Za-z0-9._ :/%()=,-]*")


def _escape(text: str) -> str:
    """``html.escape`` with a fast path: ids and model versions never need it."""
    return text if _PLAIN.fullmatch(text) else html.escape(text)


def render_dashboard(rows: Sequence[DashboardRow], meta: DashboardMeta) -> str:
    e = _escape
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.stage] = counts.get(row.stage, 0) + 1
    tenants = len({row.tenant for row in rows})
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>modelpin fleet · serial {meta.serial}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>modelpin fleet</h1>",
        f'<div class="meta">serial <code id="serial">{meta.serial}</code> · commit '
        f"<code>{e(meta.commit[:12])}</code> · issued {e(_time(meta.issued_at))} · "
        f"expires {e(_time(meta.expires_at))}</div>",
        f'<div class="counts"><span><b>{tenants}</b> tenants</span>'
        f"<span><b>{len(rows)}</b> aliases</span>"
        + "".join(
            f'<span class="stage stage-{e(stage)}">{e(stage)} {n}</span> '
            for stage, n in sorted(counts.items())
        )
        + "</div>",
    ]
    by_group: dict[str, list[DashboardRow]] = {}
    for row in rows:
        by_group.setdefault(row.group, []).append(row)
    order = [g for g in meta.group_order if g in by_group] + sorted(
        g for g in by_group if g not in meta.group_order
    )
    for group in order:
        group_rows = sorted(by_group[group], key=lambda r: (r.tenant, r.alias))
        out.append(f'<h2 id="group-{e(group)}">{e(group)} '
                   f'<small>({len({r.tenant for r in group_rows})} tenants)</small></h2>')
        out.append(
            '<table class="group"><thead><tr><th>tenant</th><th>alias</th><th>stage</th>'
            "<th>percent</th><th>stable</th><th>candidate</th><th>evidence</th>"
            "<th>time in stage</th></tr></thead><tbody>"
        )
        for r in group_rows:
            pct = ""
            if r.percent is not None:
                pct = (f'<span class="bar"><i style="width:{r.percent:g}%"></i></span>'
                       f"{r.percent:g}%")
            ev_class = "ev-na" if r.evidence == "n/a" else f"ev-{e(r.evidence)}"
            evidence = f'<span class="{ev_class}">{e(r.evidence)}</span>'
            if r.evidence_detail:
                evidence += f'<div class="reason">{e(r.evidence_detail)}</div>'
            tenant_cell = e(r.tenant) + (' <span class="frozen">frozen</span>' if r.frozen else "")
            stage = f'<span class="stage stage-{e(r.stage)}">{e(r.stage)}</span>'
            if r.reason:
                stage += f'<div class="reason">{e(r.reason)}</div>'
            out.append(
                f'<tr data-tenant="{e(r.tenant)}" data-alias="{e(r.alias)}" '
                f'data-stage="{e(r.stage)}"><td>{tenant_cell}</td><td>{e(r.alias)} '
                f'<small>({e(r.kind)})</small></td><td>{stage}</td><td>{pct}</td>'
                f"<td><code>{e(r.stable)}</code></td>"
                f"<td><code>{e(r.candidate or '')}</code></td><td>{evidence}</td>"
                f"<td>{e(_age(r.since, meta.issued_at))}</td></tr>"
            )
        out.append("</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
