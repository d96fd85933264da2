"""Staying within a provider's limits: concurrency, requests and tokens per minute,
and waiting as a provider asks (``Retry-After``) or backing off when it does not say.

Pacing is GCRA (a virtual-scheduling leaky bucket with no burst): each reservation
starts no earlier than the previous one's theoretical arrival time plus its cost, so
over any window of W seconds a lane sends at most ``W * rate + 1`` units. Tokens are
reserved on an estimate before a call and corrected with the provider's reported usage
after it. A ``Retry-After`` from one call holds back the whole lane: a provider that
says "slow down" means the account, not one request.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from modelpin.model.providers import Provider

MAX_RETRY_AFTER = 600.0
"""A provider asking for more than ten minutes is treated as ten minutes."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP-date
    (RFC 9110 10.2.3). None if absent or unreadable; never negative."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        current = now if now is not None else time.time()
        seconds = when.timestamp() - current
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def backoff(attempt: int, rng: random.Random, base: float = 0.5, cap: float = 30.0) -> float:
    """Full-jitter exponential backoff for attempt 1, 2, ... (AWS architecture blog)."""
    return rng.uniform(0, min(cap, base * (2 ** (attempt - 1))))


@dataclass
class Pacer:
    """GCRA for one resource (requests or tokens) per minute."""

    per_minute: float
    tat: float = 0.0  # theoretical arrival time of the next unit, monotonic seconds

    @property
    def interval(self) -> float:
        return 60.0 / self.per_minute

    def reserve(self, amount: float, now: float) -> float:
        """Reserve ``amount`` units; returns the delay before they may be used."""
        start = max(now, self.tat)
        self.tat = start + amount * self.interval
        return start - now

    def adjust(self, delta: float, now: float) -> None:
        """Correct the last reservation by ``delta`` units (reported usage minus the
        estimate); credit never reaches back before ``now``."""
        self.tat = max(now, self.tat + delta * self.interval) if delta < 0 else \
            self.tat + delta * self.interval


@dataclass
class Lane:
    """One provider's share of the run: a concurrency gate and two pacers."""

    name: str
    provider: Provider
    requests: Pacer = field(init=False)
    tokens: Pacer = field(init=False)
    slots: asyncio.Semaphore = field(init=False)
    not_before: float = 0.0
    stats: dict[str, int] = field(default_factory=lambda: {"calls": 0, "retries": 0,
                                                           "tokens": 0})

    def __post_init__(self) -> None:
        self.requests = Pacer(self.provider.requests_per_minute)
        self.tokens = Pacer(self.provider.tokens_per_minute)
        self.slots = asyncio.Semaphore(self.provider.concurrency)

    async def admit(self, estimated_tokens: int) -> None:
        """Wait until a call of ``estimated_tokens`` may start (the caller holds a slot)."""
        while True:
            now = time.monotonic()
            if self.not_before > now:
                await asyncio.sleep(self.not_before - now)
                continue
            delay = max(self.requests.reserve(1, now), self.tokens.reserve(estimated_tokens, now))
            if delay > 0:
                await asyncio.sleep(delay)
            return

    def hold(self, seconds: float) -> None:
        """The provider asked to wait: no call of this lane starts before then."""
        self.not_before = max(self.not_before, time.monotonic() + seconds)


def http_date(seconds_from_now: float) -> str:
    """An HTTP-date ``seconds_from_now`` in the future (for tests and the fake server)."""
    when = datetime.now(UTC).timestamp() + seconds_from_now
    return email.utils.formatdate(when, usegmt=True)
