"""The closed loop, end to end on real parts (see ``scenario.py``): a canary that starts
failing tool calls at T is stopped at every router within seconds, its sessions drain
and are cut over with ``session_reset``, the rollback PR is opened once, and after the
merge and a compile the trip is cleared."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.guard.scenario import (
    BRANCH,
    CANDIDATE,
    Loop,
    Traffic,
    wait_for,
)


@pytest.mark.slow
def test_breach_to_stop_drain_pr_and_clear(tmp_path: Path) -> None:
    loop = Loop(tmp_path, drain_seconds=4)
    traffic: Traffic | None = None
    t0 = time.time()

    def phase(name: str) -> None:
        print(f"  {time.time() - t0:5.1f}s {name}")

    try:
        loop.start()
        phase("started")
        loop.start_guard("guard-1")
        loop.start_guard("guard-2")  # two guards at once: one trip, one PR
        traffic = Traffic(loop.gateways)
        traffic.start()
        phase("guards and traffic started")
        # healthy traffic: both cohorts get data, nothing trips
        wait_for(lambda: sum(e.cohort == "canary" for e in traffic.events) > 300, 30,
                 "healthy canary traffic")
        time.sleep(2)
        assert loop.store().load() == {}, "a healthy canary was tripped"
        assert len(traffic.watched) > 0

        phase("healthy phase over")
        breach = time.time()  # T: the candidate starts failing its tool calls
        loop.llm.broken.add(CANDIDATE)
        tripped_at = wait_for(lambda: loop.store().load(), 30, "the trip")
        stopped_everywhere = wait_for(
            lambda: all(s.get("trips") == ["acme/primary"] for s in loop.statuses()), 10,
            "every router to apply the trip")
        time.sleep(3)  # afterwards no router may put a new session on the candidate
        new = traffic.new_sessions()
        last_canary = max(e.t for e in new if e.cohort == "canary")
        # (an answer logged up to ~0.5 s late may have been resolved before the trip)
        after = [e for e in new if e.t > stopped_everywhere + 0.5]
        assert after and all(e.cohort == "stable" for e in after), "new sessions on canary"
        breach_to_stop = last_canary - breach
        assert breach_to_stop <= 30, breach_to_stop
        print(f"\nbreach -> trip {tripped_at - breach:.1f}s, breach -> last new canary "
              f"session {breach_to_stop:.1f}s, all routers applied at "
              f"{stopped_everywhere - breach:.1f}s")

        phase("stopped")
        # drained sessions: still canary inside the window, then one reset, then stable
        wait_for(lambda: sum(any(e.reset for e in evs) for evs in traffic.watched.values())
                 >= len(traffic.watched) // 2, 20, "drained sessions to be cut over")
        for sid, evs in traffic.watched.items():
            resets = [e for e in evs if e.reset]
            assert len(resets) <= 1, f"{sid} reset {len(resets)} times"
            if resets:
                cut = resets[0].t
                assert resets[0].cohort == "stable"
                assert all(e.cohort == "stable" for e in evs if e.t > cut)
                # never cut over before the drain window that began at the trip
                assert cut - tripped_at >= loop.drain_seconds - 1.5, cut - tripped_at

        phase("drained")
        # the rollback PR: exactly one, with the incident report, from the trip's guard
        wait_for(lambda: loop.github.pulls, 20, "the rollback PR")
        wait_for(lambda: all(t.pr_url for t in loop.store().load().values()), 20,
                 "the PR recorded in the trip")
        time.sleep(2)
        [pr] = loop.github.pulls.values()
        assert pr["head"]["ref"] == BRANCH
        assert "tool_call_failure_rate" in (pr["body"] or "")
        dispatches = [r for r in loop.github.requests if r.path.endswith("/dispatches")]
        assert len(dispatches) == 1
        assert dispatches[0].body["event_type"] == "modelpin-guard-trip"
        [trip] = loop.store().load().values()
        assert trip.candidate == CANDIDATE and trip.pr_url == pr["html_url"]

        phase("PR checked")
        # both guards killed (SIGKILL) and one restarted: the trip survives in Redis, the
        # new guard neither trips again nor opens a second PR
        for g in list(loop.guards):
            g.kill()
        loop.start_guard("guard-3")
        time.sleep(3)
        assert len(loop.github.pulls) == 1
        assert [t.by for t in loop.store().load().values()] == [trip.by]
        assert [e["event"] for e in loop.store().log()].count("trip") == 1
        phase("guards restarted")

        # a human merges, CI compiles: the table carries the rollback, the trip clears
        serial = loop.statuses()[0]["serial"]
        loop.merge_rollback()
        wait_for(lambda: all(s.get("serial", 0) > serial for s in loop.statuses()), 20,
                 "the routers to load the rollback table")
        wait_for(lambda: loop.store().load() == {}, 20, "the trip to clear")
        phase("trip cleared")
        log = loop.store().log()
        assert [e["event"] for e in log][:2] == ["clear", "trip"]
        assert "carries the rollback" in log[0]["why"] and log[0]["by"] == "guard-3"
        assert all(s.get("trips") == [] for s in loop.statuses())
        time.sleep(1.5)
        late = [e for e in traffic.new_sessions() if e.t > time.time() - 1.0]
        assert late and all(e.cohort == "stable" for e in late)
        # the restarted guard's own metrics
        text = httpx.get(loop.guard_metrics[2], timeout=2).text
        assert 'modelpin_guard_clears_total{why="table"} 1.0' in text
        assert "modelpin_guard_trips_total 0.0" in text
        assert not traffic.errors[:5], traffic.errors[:5]
    except BaseException:
        print(loop.logs())
        raise
    finally:
        if traffic is not None:
            traffic.finish()
        phase("traffic stopped")
        loop.stop()
        phase("loop stopped")
