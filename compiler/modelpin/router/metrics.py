"""Prometheus metrics of the router, labelled by router name.

The metric families are registered once per registry (several routers in one process
share them and differ by the ``router`` label). Nothing here is touched on the hot path
of a healthy request: only reloads and session-store faults count.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge


@dataclass(frozen=True, slots=True)
class _Families:
    reloads: Counter
    alarms: Counter
    store_errors: Counter
    serial: Gauge
    expires: Gauge
    stale: Gauge


_families: dict[int, _Families] = {}
_lock = threading.Lock()


def _families_for(registry: CollectorRegistry) -> _Families:
    with _lock:
        fam = _families.get(id(registry))
        if fam is None:
            fam = _Families(
                reloads=Counter(
                    "modelpin_router_reloads",
                    "Reload attempts by outcome (accepted, unchanged, or the rejection kind)",
                    ["router", "outcome"],
                    registry=registry,
                ),
                alarms=Counter(
                    "modelpin_router_alarms",
                    "Security alarms: serial-conflict (same serial, other payload), rollback",
                    ["router", "kind"],
                    registry=registry,
                ),
                store_errors=Counter(
                    "modelpin_router_session_store_errors",
                    "Requests decided without stickiness because the session store failed",
                    ["router"],
                    registry=registry,
                ),
                serial=Gauge(
                    "modelpin_router_table_serial",
                    "Serial of the table being served",
                    ["router"],
                    registry=registry,
                ),
                expires=Gauge(
                    "modelpin_router_table_expires_timestamp_seconds",
                    "expires_at of the table being served",
                    ["router"],
                    registry=registry,
                ),
                stale=Gauge(
                    "modelpin_router_table_stale",
                    "1 while the table being served has expired",
                    ["router"],
                    registry=registry,
                ),
            )
            _families[id(registry)] = fam
        return fam


class RouterMetrics:
    def __init__(self, name: str, registry: CollectorRegistry | None = None) -> None:
        fam = _families_for(registry if registry is not None else REGISTRY)
        self._fam = fam
        self._name = name
        self.store_errors = fam.store_errors.labels(name)
        self.serial = fam.serial.labels(name)
        self.expires = fam.expires.labels(name)
        self.stale = fam.stale.labels(name)

    def reload(self, outcome: str) -> None:
        self._fam.reloads.labels(self._name, outcome).inc()

    def alarm(self, kind: str) -> None:
        self._fam.alarms.labels(self._name, kind).inc()
