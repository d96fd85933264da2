"""The fleet dashboard renders every group, tenant and alias, and a browser shows it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

from modelpin.dashboard import DashboardMeta, DashboardRow, render_dashboard
from tests.dashboard.browser import dump_dom, screenshot

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
ISSUED = datetime(2026, 3, 25, 12, 0, tzinfo=UTC)


def _rows() -> list[DashboardRow]:
    return [
        DashboardRow("early", "beta", "primary", "chat", "canary", "gpt-a", "gpt-b", 10,
                     ISSUED - timedelta(hours=30), "pass", "640/650 = 0.985 (min 0.95)"),
        DashboardRow("standard", "acme", "primary", "chat", "rolled-back", "gpt-a", "gpt-b",
                     None, ISSUED - timedelta(minutes=90), "fail", "0.90 < 0.95",
                     reason="precision drop <script>alert(1)</script>"),
        DashboardRow("standard", "acme", "embedder", "embedding", "pinned", "emb-1", None,
                     None, None, "n/a", ""),
        DashboardRow("pioneers", "lab", "primary", "chat", "shadow", "gpt-a", "gpt-b", None,
                     ISSUED - timedelta(days=3, hours=2), "missing", "no evidence file",
                     frozen=True),
        DashboardRow("standard", "zeta", "primary", "chat", "paused", "gpt-a", "gpt-b", 25,
                     ISSUED - timedelta(hours=5), "pass", "", reason="waiting on INC-7"),
    ]


META = DashboardMeta(serial=42, commit="0123456789abcdef" * 2 + "01234567", issued_at=ISSUED,
                     expires_at=ISSUED + timedelta(days=7),
                     group_order=["pioneers", "early", "standard", "conservative"])


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str | None]] = []
        self.headings: list[str] = []
        self._in_h2 = False
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr" and any(k == "data-tenant" for k, _ in attrs):
            self.rows.append(dict(attrs))
        if tag == "h2":
            self._in_h2 = True
        if tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data: str) -> None:
        if self._in_h2 and data.strip():
            self.headings.append(data.strip())


def test_every_alias_has_a_row_grouped_in_dag_order() -> None:
    page = _Collect()
    page.feed(render_dashboard(_rows(), META))
    assert page.headings == [
        "pioneers", "(1 tenants)", "early", "(1 tenants)", "standard", "(2 tenants)",
    ]
    assert [(r["data-tenant"], r["data-alias"], r["data-stage"]) for r in page.rows] == [
        ("lab", "primary", "shadow"),
        ("beta", "primary", "canary"),
        ("acme", "embedder", "pinned"),
        ("acme", "primary", "rolled-back"),
        ("zeta", "primary", "paused"),
    ]
    assert page.scripts == 0, "values must be escaped, never executed"


def test_time_in_stage_and_details_are_shown() -> None:
    text = render_dashboard(_rows(), META)
    assert "1d 6h" in text  # beta: 30 hours at canary 10
    assert "1h 30m" in text  # acme: rolled back 90 minutes ago
    assert "3d 2h" in text
    assert "640/650 = 0.985 (min 0.95)" in text
    assert "&lt;script&gt;" in text


def test_headless_chromium_renders_the_dashboard(tmp_path: Path) -> None:
    page = tmp_path / "index.html"
    page.write_text(render_dashboard(_rows(), META), encoding="utf-8")
    dom = dump_dom(page)
    parsed = _Collect()
    parsed.feed(dom)
    assert len(parsed.rows) == 5
    assert parsed.scripts == 0
    assert 'id="serial">42<' in dom
    shot = screenshot(page, ARTIFACTS / "dashboard.png")
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank canvas


def test_compile_writes_the_dashboard_next_to_the_artifact(tmp_path: Path) -> None:
    from modelpin.cli import main
    from tests.fleetkit import NOW, FleetSpec, evidence, tenant

    spec = FleetSpec(tenants={})
    spec.add(tenant("p1", group="pioneers", pin="gpt-5-2026-03-14"))
    spec.add(tenant("e1", group="early", rollout={
        "candidate": "gpt-5-2026-03-14", "stage": "canary", "percent": 10,
        "since": "2026-03-24T00:00:00Z"}))
    spec.add(tenant("s1", group="standard", rollout={
        "candidate": "gpt-5-2026-03-14", "stage": "shadow", "since": "2026-03-24T00:00:00Z"}))
    spec.evidence.append(evidence("e1"))
    spec.evidence.append(evidence("s1", passed=500))  # 500/600 < 0.95: fails the gate
    root = spec.write(tmp_path / "repo")
    assert main(["compile", "--repo", str(root), "--now", NOW, "--serial", "7"]) == 0
    page = _Collect()
    dom = dump_dom(root / "dist" / "index.html")
    page.feed(dom)
    assert {(r["data-tenant"], r["data-stage"]) for r in page.rows} == {
        ("p1", "pinned"), ("e1", "canary"), ("s1", "shadow")}
    assert "600/600 passed (1.000)" in dom
    assert "evidence pass rate 0.833" in dom
    assert "1d 12h" in dom  # e1 and s1 entered their stage 36 hours before NOW
